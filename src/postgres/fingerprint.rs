//! Fingerprints: what a database holds, table by table, in a form that can be
//! compared after a restore. Per table: the exact row count and an
//! order-independent content hash, the sum of each row's 64-bit hash (a sum,
//! not XOR, under which two identical rows would cancel out). Per sequence:
//! its position.
//!
//! A row's hash comes from one of two [`HashMethod`]s, recorded per table so
//! a restore recomputes exactly what the backup computed.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::postgres::databases::quote_ident;
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
    /// How `hash` was computed (manifests written before there was a
    /// choice used [`HashMethod::Text`]).
    #[serde(default)]
    pub method: HashMethod,
}

/// How a row is hashed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashMethod {
    /// `hashtextextended(row::text, 0)`: the row's text form. Works for
    /// every type, but converting every value to text is slow (bytea
    /// becomes hex, jsonb is printed).
    #[default]
    Text,
    /// `hash_record_extended(ROW(...), 0)` over the columns, each hashed
    /// natively when its type is a built-in one whose hash depends only on
    /// the value (integers, text, bytea, jsonb, timestamps, uuid, ...), and
    /// through its text form otherwise (enums hash by OID, which a restore
    /// changes; some types have no hash at all). Several times faster.
    Columns,
}

/// Built-in types hashed natively by [`HashMethod::Columns`] (and arrays of
/// them): their hash is a function of the value alone, so it survives a dump
/// and restore.
pub(crate) const NATIVE_HASH_TYPES: &[&str] = &[
    "bool",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "text",
    "varchar",
    "bpchar",
    "char",
    "name",
    "bytea",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "jsonb",
    "inet",
    "cidr",
    "macaddr",
];

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
        out.push(table_fingerprint(&mut *conn, t, HashMethod::Columns).await?);
    }
    Ok(Fingerprint {
        tables: out,
        sequences: sequences(conn).await?,
    })
}

/// Fingerprints a database that nothing writes to (a freshly restored
/// copy), scanning up to `parallel` tables at once on separate connections.
/// Each table is hashed the way `expected` says it was (tables it does not
/// list with [`HashMethod::Columns`]).
pub async fn fingerprint_quiescent(
    pool: &PgPool,
    tables: &[TableRef],
    expected: Option<&Fingerprint>,
    parallel: usize,
) -> Result<Fingerprint> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    let work: Vec<(TableRef, HashMethod)> = tables
        .iter()
        .map(|t| {
            let method = expected
                .and_then(|e| {
                    e.tables
                        .iter()
                        .find(|x| x.schema == t.schema && x.name == t.name)
                })
                .map_or(HashMethod::Columns, |x| x.method);
            (t.clone(), method)
        })
        .collect();
    let out: Vec<TableFingerprint> = stream::iter(work)
        .map(|(t, method)| {
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await?;
                table_fingerprint(&mut conn, &t, method).await
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

/// Fingerprints one table (see [`HashMethod`]).
pub async fn table_fingerprint(
    conn: &mut PgConnection,
    t: &TableRef,
    method: HashMethod,
) -> Result<TableFingerprint> {
    let row_hash = match method {
        HashMethod::Text => "hashtextextended(t::text, 0)".to_owned(),
        HashMethod::Columns => {
            let columns = columns_for_hashing(&mut *conn, t).await?;
            format!("hash_record_extended(ROW({}), 0)", columns.join(", "))
        }
    };
    let (rows, hash): (i64, String) = sqlx::query_as(&format!(
        "SELECT count(*), coalesce(sum({row_hash}), 0)::text FROM {}.{} AS t",
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
        method,
    })
}

/// The table's columns in order as expressions for [`HashMethod::Columns`]:
/// the column itself when its type hashes natively, its text form otherwise.
async fn columns_for_hashing(conn: &mut PgConnection, t: &TableRef) -> Result<Vec<String>> {
    let columns: Vec<(String, bool)> = sqlx::query_as(
        "SELECT a.attname::text,
                ty.typnamespace = 'pg_catalog'::regnamespace
                AND (ty.typname = ANY($3)
                     OR (ty.typcategory = 'A' AND EXISTS (
                         SELECT 1 FROM pg_type el
                         WHERE el.oid = ty.typelem AND el.typnamespace = 'pg_catalog'::regnamespace
                           AND el.typname = ANY($3))))
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_type ty ON ty.oid = a.atttypid
         WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
    )
    .bind(&t.schema)
    .bind(&t.name)
    .bind(NATIVE_HASH_TYPES)
    .fetch_all(conn)
    .await?;
    Ok(columns
        .into_iter()
        .map(|(name, native)| {
            let column = format!("t.{}", quote_ident(&name));
            if native {
                column
            } else {
                format!("{column}::text")
            }
        })
        .collect())
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
            method: HashMethod::Columns,
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
