//! Fingerprints: what a database holds, table by table, in a form that can be
//! compared after a restore. Per table: the exact row count and an
//! order-independent content hash, the sum of each row's 64-bit hash (a sum,
//! not XOR, under which two identical rows would cancel out). Per sequence:
//! its position.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::db::quote_ident;
use crate::Result;

/// One table's contents, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFingerprint {
    pub schema: String,
    pub name: String,
    pub rows: i64,
    /// Sum of `hashtextextended(row::text, 0)` over all rows, as a decimal.
    pub hash: String,
    /// Size on disk when fingerprinted (for progress weights, not compared).
    pub size_bytes: i64,
}

/// A sequence's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceState {
    pub schema: String,
    pub name: String,
    pub last_value: i64,
    pub is_called: bool,
}

/// A whole database's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub tables: Vec<TableFingerprint>,
    pub sequences: Vec<SequenceState>,
}

/// A user table (partitions are covered by their parent).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
    pub size_bytes: i64,
}

/// Every user table, with its size, in a stable order.
pub async fn list_tables(conn: &mut PgConnection) -> Result<Vec<TableRef>> {
    Ok(sqlx::query_as(
        "SELECT n.nspname AS schema, c.relname AS name,
                CASE WHEN c.relkind = 'p'
                     THEN (SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint
                           FROM pg_inherits i WHERE i.inhparent = c.oid)
                     ELSE pg_total_relation_size(c.oid) END AS size_bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
         ORDER BY 1, 2",
    )
    .fetch_all(conn)
    .await?)
}

/// Fingerprints every table and sequence, as the connection's current
/// transaction sees them (run it inside the snapshot being described).
pub async fn fingerprint(conn: &mut PgConnection, tables: &[TableRef]) -> Result<Fingerprint> {
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        out.push(table_fingerprint(&mut *conn, t).await?);
    }
    Ok(Fingerprint {
        tables: out,
        sequences: sequences(conn).await?,
    })
}

/// Fingerprints a database that nothing writes to (a freshly restored
/// copy), scanning up to `parallel` tables at once on separate connections.
pub async fn fingerprint_quiescent(
    pool: &PgPool,
    tables: &[TableRef],
    parallel: usize,
) -> Result<Fingerprint> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let out: Vec<TableFingerprint> = stream::iter(tables.to_vec())
        .map(|t| {
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await?;
                table_fingerprint(&mut conn, &t).await
            }
        })
        .buffered(parallel.max(1))
        .try_collect()
        .await?;
    let mut conn = pool.acquire().await?;
    Ok(Fingerprint {
        tables: out,
        sequences: sequences(&mut conn).await?,
    })
}

async fn table_fingerprint(conn: &mut PgConnection, t: &TableRef) -> Result<TableFingerprint> {
    let (rows, hash): (i64, String) = sqlx::query_as(&format!(
        "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text FROM {}.{} AS t",
        quote_ident(&t.schema),
        quote_ident(&t.name)
    ))
    .fetch_one(&mut *conn)
    .await?;
    Ok(TableFingerprint {
        schema: t.schema.clone(),
        name: t.name.clone(),
        rows,
        hash,
        size_bytes: t.size_bytes,
    })
}

async fn sequences(conn: &mut PgConnection) -> Result<Vec<SequenceState>> {
    let names: Vec<(String, String)> = sqlx::query_as(
        "SELECT schemaname::text, sequencename::text FROM pg_sequences
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut sequences = Vec::with_capacity(names.len());
    for (schema, name) in names {
        let (last_value, is_called): (i64, bool) = sqlx::query_as(&format!(
            "SELECT last_value, is_called FROM {}.{}",
            quote_ident(&schema),
            quote_ident(&name)
        ))
        .fetch_one(&mut *conn)
        .await?;
        sequences.push(SequenceState {
            schema,
            name,
            last_value,
            is_called,
        });
    }
    Ok(sequences)
}

impl Fingerprint {
    /// What differs from `other`, in words (empty when the contents match).
    /// Sizes on disk are not compared: a restored table is usually smaller.
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        let mut diffs = Vec::new();
        let key = |s: &str, n: &str| format!("{s}.{n}");
        for t in &self.tables {
            match other
                .tables
                .iter()
                .find(|o| o.schema == t.schema && o.name == t.name)
            {
                None => diffs.push(format!("table {} is missing", key(&t.schema, &t.name))),
                Some(o) if o.rows != t.rows => diffs.push(format!(
                    "table {} has {} rows instead of {}",
                    key(&t.schema, &t.name),
                    o.rows,
                    t.rows
                )),
                Some(o) if o.hash != t.hash => diffs.push(format!(
                    "table {} has different contents",
                    key(&t.schema, &t.name)
                )),
                Some(_) => {}
            }
        }
        for o in &other.tables {
            if !self
                .tables
                .iter()
                .any(|t| t.schema == o.schema && t.name == o.name)
            {
                diffs.push(format!("table {} is unexpected", key(&o.schema, &o.name)));
            }
        }
        for s in &self.sequences {
            if !other.sequences.contains(s) {
                diffs.push(format!(
                    "sequence {} is at a different position",
                    key(&s.schema, &s.name)
                ));
            }
        }
        diffs
    }

    /// Total rows over all tables.
    pub fn total_rows(&self) -> i64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, rows: i64, hash: &str) -> TableFingerprint {
        TableFingerprint {
            schema: "public".into(),
            name: name.into(),
            rows,
            hash: hash.into(),
            size_bytes: 8192,
        }
    }

    #[test]
    fn differences_name_what_changed() {
        let a = Fingerprint {
            tables: vec![table("users", 3, "10"), table("courses", 1, "5")],
            sequences: vec![],
        };
        assert!(a.differences(&a.clone()).is_empty());
        let mut b = a.clone();
        b.tables[0].rows = 4;
        b.tables[1].hash = "6".into();
        b.tables[1].size_bytes = 1;
        let d = a.differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("users") && d[0].contains("4 rows"));
        assert!(d[1].contains("courses"));
        let mut c = a.clone();
        c.tables.pop();
        assert_eq!(a.differences(&c), ["table public.courses is missing"]);
    }
}
