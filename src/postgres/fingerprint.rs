//! Fingerprints: what a database holds, table by table, in a form that can be
//! compared after a restore. Per table: the exact row count and an
//! order-independent content hash, the sum of each row's 64-bit hash (a sum,
//! not XOR, under which two identical rows would cancel out). Per sequence:
//! its position.
//!
//! A row's hash comes from one of two [`HashMethod`]s, recorded per table so
//! a restore recomputes exactly what the backup computed.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};

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
    Ok(
        fingerprint_quiescent_summed(pool, tables, expected, parallel, &HashMap::new())
            .await?
            .0,
    )
}

/// [`fingerprint_quiescent`], each table named in `ranges` ("schema.name")
/// also summed by those ranges of its key (see [`table_fingerprint_summed`]).
pub async fn fingerprint_quiescent_summed(
    pool: &PgPool,
    tables: &[TableRef],
    expected: Option<&Fingerprint>,
    parallel: usize,
    ranges: &HashMap<String, KeyRanges>,
) -> Result<(Fingerprint, HashMap<String, BucketSums>)> {
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
    let out: Vec<(TableFingerprint, Option<BucketSums>)> = stream::iter(work)
        .map(|(t, method)| {
            let pool = pool.clone();
            let ranges = ranges.get(&format!("{}.{}", t.schema, t.name));
            async move {
                let mut conn = pool.acquire().await?;
                table_fingerprint_summed(&mut conn, &t, method, ranges).await
            }
        })
        .buffered(parallel.max(1))
        .try_collect()
        .await?;
    let mut sums = HashMap::new();
    let mut tables = Vec::with_capacity(out.len());
    for (t, summed) in out {
        if let Some(summed) = summed {
            sums.insert(format!("{}.{}", t.schema, t.name), summed);
        }
        tables.push(t);
    }
    let mut conn = pool.acquire().await?;
    Ok((
        Fingerprint {
            tables,
            sequences: sequences(&mut conn).await?,
        },
        sums,
    ))
}

/// Fingerprints one table (see [`HashMethod`]).
pub async fn table_fingerprint(
    conn: &mut PgConnection,
    t: &TableRef,
    method: HashMethod,
) -> Result<TableFingerprint> {
    Ok(table_fingerprint_summed(conn, t, method, None).await?.0)
}

/// Fingerprints one table and, given `ranges` of its key, also sums its
/// rows' hashes range by range, in the same scan: what a comparison with
/// another database needs of this side (see `records::diff`). Only when
/// every column hashes natively (a text form can depend on the session's
/// settings, which a later comparison may not share); else `None`.
pub async fn table_fingerprint_summed(
    conn: &mut PgConnection,
    t: &TableRef,
    method: HashMethod,
    ranges: Option<&KeyRanges>,
) -> Result<(TableFingerprint, Option<BucketSums>)> {
    let (row_hash, native) = match method {
        HashMethod::Text => ("hashtextextended(t::text, 0)".to_owned(), false),
        HashMethod::Columns => {
            let columns = columns_for_hashing(&mut *conn, t).await?;
            let native = columns.iter().all(|(_, native)| *native);
            let columns: Vec<String> = columns.into_iter().map(|(c, _)| c).collect();
            (
                format!("hash_record_extended(ROW({}), 0)", columns.join(", ")),
                native,
            )
        }
    };
    let table = format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name));
    let fingerprint = |rows, hash| TableFingerprint {
        schema: t.schema.clone(),
        name: t.name.clone(),
        rows,
        hash,
        size_bytes: t.size_bytes,
        method,
    };
    let Some(ranges) = ranges.filter(|_| native) else {
        let (rows, hash): (i64, String) = sqlx::query_as(&format!(
            "SELECT count(*), coalesce(sum({row_hash}), 0)::text FROM {table} AS t"
        ))
        .fetch_one(&mut *conn)
        .await?;
        return Ok((fingerprint(rows, hash), None));
    };
    // The table's sums are those of its ranges (exact: numeric).
    let mut tx = conn.begin().await?;
    sqlx::query(HASH_BUCKETS_IN_MEMORY)
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(i64, i64, String, i64, String)> = sqlx::query_as(&format!(
        "SELECT b, n, s::text, (sum(n) OVER ())::int8, (sum(s) OVER ())::text
         FROM (SELECT {}, count(*)::int8, sum({row_hash}) FROM {table} AS t GROUP BY 1) g(b, n, s)",
        ranges.bucket_of("t")
    ))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let (count, hash) = rows
        .first()
        .map_or((0, "0".to_owned()), |r| (r.3, r.4.clone()));
    let sums = rows.into_iter().map(|(b, n, s, _, _)| (b, n, s)).collect();
    Ok((fingerprint(count, hash), Some(sums)))
}

/// A table's rows summed by ranges of its key: (range, rows, sum of their
/// hashes as a decimal), one entry per range that has rows.
pub type BucketSums = Vec<(i64, i64, String)>;

/// Ranges of a one-column integer key, `2^shift` keys wide and aligned on
/// multiples of that: a row's range is its key shifted right, so any
/// database can sum its rows into the same ranges without knowing the
/// other's keys, and the rows of a range are found through the key's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRanges {
    pub column: String,
    pub shift: u32,
}

impl KeyRanges {
    /// About `count` ranges over the keys `low..=high`.
    pub fn spanning(column: &str, low: i64, high: i64, count: i64) -> Self {
        let span = (high as i128 - low as i128 + 1).max(1);
        let width = (span + count.max(1) as i128 - 1) / count.max(1) as i128;
        let shift = (128 - (width - 1).leading_zeros()).min(62);
        KeyRanges {
            column: column.to_owned(),
            shift,
        }
    }

    /// The range of a row of the table aliased `alias`.
    pub fn bucket_of(&self, alias: &str) -> String {
        format!(
            "({alias}.{}::int8 >> {})",
            quote_ident(&self.column),
            self.shift
        )
    }

    /// The first and the last key of range `n`.
    pub fn keys_of(&self, n: i64) -> (i64, i64) {
        let first = n << self.shift;
        (first, first | ((1i64 << self.shift) - 1))
    }
}

/// The settings (`SET LOCAL`, for the transaction) of a query that sums
/// rows into ranges or buckets: its groups hashed in memory by one process,
/// no JIT. PostgreSQL cannot estimate how many groups an expression makes,
/// takes them for as many as the rows and sorts every row, to disk, rather
/// than hash into the few thousand there are (at 800,000 rows: 0.9 s for
/// two databases at once against 0.55 s); the default 4 MB of `work_mem`
/// spills 65,536 groups to disk in 33 batches; parallel workers only add
/// processes where both databases are summed at once on the same cores;
/// and compiling such a query costs more than it saves.
pub(crate) const HASH_BUCKETS_IN_MEMORY: &str = "SELECT set_config('jit', 'off', true),
        set_config('enable_sort', 'off', true), set_config('work_mem', '32MB', true),
        set_config('max_parallel_workers_per_gather', '0', true)";

/// The table's columns in order as expressions for [`HashMethod::Columns`]:
/// the column itself when its type hashes natively, its text form otherwise
/// (and whether it is native).
async fn columns_for_hashing(conn: &mut PgConnection, t: &TableRef) -> Result<Vec<(String, bool)>> {
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
                (column, true)
            } else {
                (format!("{column}::text"), false)
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
    fn key_ranges_are_aligned_powers_of_two_covering_every_key() {
        let r = KeyRanges::spanning("id", 1, 800_000, 32_768);
        assert_eq!(r.shift, 5, "800,000 keys in 32,768 ranges: 32 a range");
        assert_eq!(r.bucket_of("t"), r#"(t."id"::int8 >> 5)"#);
        assert_eq!(r.keys_of(0), (0, 31));
        assert_eq!(r.keys_of(3), (96, 127));
        assert_eq!(r.keys_of(-1), (-32, -1), "keys below zero");
        assert_eq!(KeyRanges::spanning("id", 5, 5, 16).shift, 0);
        assert_eq!(KeyRanges::spanning("id", 0, 0, 0).shift, 0);
        let all = KeyRanges::spanning("id", i64::MIN, i64::MAX, 1);
        assert_eq!(all.shift, 62);
        assert_eq!(all.keys_of(i64::MIN >> 62), (i64::MIN, i64::MIN / 2 - 1));
        assert_eq!(all.keys_of(i64::MAX >> 62), (i64::MAX / 2 + 1, i64::MAX));
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
