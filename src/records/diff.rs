//! The live database against a prepared copy, table by table and, where a
//! table has a primary key, row by row: rows only live (added since the
//! backup), only in the copy (deleted since), in both with other content
//! (changed since).
//!
//! Set-based, never row by row: each side first sums its rows' content
//! hashes into buckets (ranges of a one-column integer key, else the key's
//! hash; one `GROUP BY` per side, run at once on both databases); only the
//! buckets whose count or sum differ are then read key by key, so a few
//! thousand changed rows in a table of millions cost a second read that
//! sends those rows' keys and hashes alone.
//!
//! A preview's copy is summed by key ranges while it is restored, in the
//! scans that fingerprint it anyway ([`CopySums`]), so its comparison reads
//! only the live side of those tables.

use std::collections::{BTreeSet, HashMap};

use lms_types::records::{RecoverableRow, TableDiff};
use sqlx::PgPool;

use super::schema::{Schema, Table};
use super::words;
use crate::postgres::databases::{quote_ident, quote_literal};
use crate::postgres::fingerprint::{BucketSums, KeyRanges, HASH_BUCKETS_IN_MEMORY};
use crate::Result;

/// Rows of each kind described per table.
pub(crate) const SAMPLES: usize = 5;
/// Deleted rows offered for recovery per table.
const RECOVERABLE: usize = 200;
/// Buckets a table's rows are summed into at most: their hash table (about
/// 330 bytes a bucket at 65,536) stays within the `work_mem` of
/// [`HASH_BUCKETS_IN_MEMORY`].
const MAX_BUCKETS: i64 = 1 << 16;
/// Rows read by key in one go at most (the buckets are read in groups of
/// about this many rows), so memory stays flat whatever changed.
const ROWS_PER_READ: i64 = 400_000;

/// A prepared copy's side of its first comparison, taken while it was
/// restored: by table ("schema.name"), the key ranges it was summed by and
/// its sums, for the tables that could be (every column hashed natively,
/// summed before any migration changed the copy).
#[derive(Debug, Default)]
pub(crate) struct CopySums(HashMap<String, (KeyRanges, BucketSums)>);

impl CopySums {
    /// The sums of the tables planned in `ranges` that were summed.
    pub fn new(mut ranges: HashMap<String, KeyRanges>, sums: HashMap<String, BucketSums>) -> Self {
        CopySums(
            sums.into_iter()
                .filter_map(|(table, sums)| {
                    let ranges = ranges.remove(&table)?;
                    Some((table, (ranges, sums)))
                })
                .collect(),
        )
    }

    /// The ranges and sums of `copy_t`, when its comparison with `live_t`
    /// over `columns` can use them: the same one-column integer key, and
    /// every column of the copy compared (the sums hashed them all).
    fn for_table(
        &self,
        live_t: &Table,
        copy_t: &Table,
        columns: &[String],
    ) -> Option<(&KeyRanges, &BucketSums)> {
        let (ranges, sums) = self.0.get(&copy_t.qualified())?;
        let key = integer_key(copy_t)?;
        (integer_key(live_t) == Some(key)
            && ranges.column == key
            && columns.len() == copy_t.columns.len())
        .then_some((ranges, sums))
    }
}

/// Buckets a preview keeps of its copy's sums at most, over all tables
/// (some 70 bytes each: 18 MB), the largest tables first; the others are
/// compared by scanning both sides.
const COPY_SUMS_BUDGET: i64 = 1 << 18;

/// The key ranges each live table with a one-column integer key would be
/// compared by, now: what a preview sums its copy by as it restores it
/// (within [`COPY_SUMS_BUDGET`]). A table that cannot be planned is left
/// out (compared as any other).
pub(crate) async fn plan_ranges(live: &PgPool) -> HashMap<String, KeyRanges> {
    let schema = async { Schema::read(&mut *live.acquire().await?).await };
    let schema = match schema.await {
        Ok(schema) => schema,
        Err(e) => {
            tracing::debug!(error = %e, "no key ranges planned for the copy");
            return HashMap::new();
        }
    };
    let mut planned = Vec::new();
    for table in schema.tables.values() {
        let Some(column) = integer_key(table) else {
            continue;
        };
        if !table.columns.iter().all(|c| c.native_hash) {
            continue;
        }
        let plan = async {
            let count = bucket_count(row_estimate(live, table).await?);
            Ok::<_, crate::Error>((count, key_ranges(live, None, table, column, count).await?))
        };
        match plan.await {
            Ok((count, ranges)) => planned.push((count, table, ranges)),
            Err(e) => {
                tracing::debug!(error = %e, table = %table.qualified(), "no key ranges planned")
            }
        }
    }
    planned.sort_by_key(|(count, _, _)| std::cmp::Reverse(*count));
    let mut budget = COPY_SUMS_BUDGET;
    let mut out = HashMap::new();
    for (count, table, ranges) in planned {
        if count <= budget {
            budget -= count;
            out.insert(table.qualified(), ranges);
        }
    }
    out
}

/// Compares every table of `live` with the same table of `copy` (whose
/// side is taken from `sums` where they have it). Also says for how many
/// tables it was.
pub(crate) async fn compare(
    live: &PgPool,
    copy: &PgPool,
    sums: Option<&CopySums>,
) -> Result<(Vec<TableDiff>, usize)> {
    let (live_schema, copy_schema) = tokio::try_join!(
        async { Schema::read(&mut *live.acquire().await?).await },
        async { Schema::read(&mut *copy.acquire().await?).await },
    )?;
    let names: BTreeSet<_> = live_schema
        .tables
        .keys()
        .chain(copy_schema.tables.keys())
        .cloned()
        .collect();
    let mut out = Vec::with_capacity(names.len());
    let mut reused = 0;
    for name in names {
        let began = std::time::Instant::now();
        let diff = match (live_schema.table(&name), copy_schema.table(&name)) {
            (Some(l), Some(c)) => {
                let (diff, copy_side_reused) = compare_table(live, copy, l, c, sums).await?;
                reused += usize::from(copy_side_reused);
                diff
            }
            (Some(l), None) => one_side(live, l, true).await?,
            (None, Some(c)) => one_side(copy, c, false).await?,
            (None, None) => continue,
        };
        tracing::debug!(
            table = %format!("{}.{}", name.0, name.1),
            ms = began.elapsed().as_millis() as u64,
            added = diff.added,
            deleted = diff.deleted,
            changed = diff.changed,
            "compared a table"
        );
        out.push(diff);
    }
    Ok((out, reused))
}

fn empty(table: &Table) -> TableDiff {
    TableDiff {
        schema: table.schema.clone(),
        name: table.name.clone(),
        keyed: false,
        live_rows: None,
        copy_rows: None,
        added: 0,
        deleted: 0,
        changed: 0,
        differs: false,
        added_samples: vec![],
        deleted_samples: vec![],
        changed_samples: vec![],
        recoverable: vec![],
    }
}

/// A table in one database only (created or dropped since the backup).
async fn one_side(pool: &PgPool, table: &Table, live: bool) -> Result<TableDiff> {
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", table.sql_name()))
        .fetch_one(pool)
        .await?;
    let mut diff = empty(table);
    if live {
        diff.live_rows = Some(rows);
        diff.added = rows;
    } else {
        diff.copy_rows = Some(rows);
        diff.deleted = rows;
    }
    diff.differs = rows > 0;
    Ok(diff)
}

async fn compare_table(
    live: &PgPool,
    copy: &PgPool,
    live_t: &Table,
    copy_t: &Table,
    sums: Option<&CopySums>,
) -> Result<(TableDiff, bool)> {
    // The columns both have, alike (a column added since the backup is
    // left out of the content hash, not reported as every row changed).
    let columns: Vec<String> = live_t
        .columns
        .iter()
        .filter(|c| {
            copy_t
                .column(&c.name)
                .is_some_and(|o| o.type_sql == c.type_sql)
        })
        .map(|c| c.name.clone())
        .collect();
    let keyed = live_t.key.is_some() && live_t.key == copy_t.key;
    let cached = sums.and_then(|s| s.for_table(live_t, copy_t, &columns));
    let (buckets, count) = match cached {
        Some((ranges, _)) => (Buckets::Ranges(ranges.clone()), 0),
        None => {
            let estimate = row_estimate(live, live_t).await?;
            let count = if keyed { bucket_count(estimate) } else { 1 };
            (Buckets::choose(live, copy, live_t, count).await?, count)
        }
    };
    let buckets_sql = |t: &Table, filter: &str| {
        let bucket = if keyed {
            buckets.of_row(t)
        } else {
            "0".to_owned()
        };
        // A sum, as the fingerprint's: an exclusive or would cost no less,
        // and identical rows (no key) would cancel out.
        format!(
            "SELECT ({bucket})::int8, count(*)::int8,
                    coalesce(sum(hash_record_extended(ROW({}), 0)), 0)::text
             FROM {} t {filter} GROUP BY 1",
            t.hashed_columns("t", &columns).join(", "),
            t.sql_name()
        )
    };
    let began = std::time::Instant::now();
    let (live_buckets, copy_buckets) = match cached {
        Some((_, copy_buckets)) => (
            sums_in_halves(live, live_t, |filter| buckets_sql(live_t, filter)).await?,
            copy_buckets.clone(),
        ),
        None => {
            let (live_sql, copy_sql) = (buckets_sql(live_t, ""), buckets_sql(copy_t, ""));
            tokio::try_join!(
                fetch_planned::<(i64, i64, String)>(live, &live_sql, &[], Grouping::Hashed),
                fetch_planned::<(i64, i64, String)>(copy, &copy_sql, &[], Grouping::Hashed),
            )?
        }
    };
    let live_map: HashMap<i64, (i64, String)> = live_buckets
        .into_iter()
        .map(|(b, n, h)| (b, (n, h)))
        .collect();
    let copy_map: HashMap<i64, (i64, String)> = copy_buckets
        .into_iter()
        .map(|(b, n, h)| (b, (n, h)))
        .collect();
    let mut diff = empty(live_t);
    diff.keyed = keyed;
    diff.live_rows = Some(live_map.values().map(|(n, _)| n).sum());
    diff.copy_rows = Some(copy_map.values().map(|(n, _)| n).sum());
    let mut differing: Vec<(i64, i64)> = live_map
        .keys()
        .chain(copy_map.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|b| live_map.get(b) != copy_map.get(b))
        .map(|b| {
            let rows = live_map.get(b).map_or(0, |x| x.0) + copy_map.get(b).map_or(0, |x| x.0);
            (*b, rows)
        })
        .collect();
    let summed = began.elapsed();
    let count = count.max(live_map.len().max(copy_map.len()) as i64);
    tracing::debug!(
        table = %live_t.qualified(),
        ms = summed.as_millis() as u64,
        buckets = count,
        differing = differing.len(),
        copy_summed_while_restored = cached.is_some(),
        "summed the buckets of both sides"
    );
    if differing.is_empty() {
        return Ok((diff, cached.is_some()));
    }
    if !keyed {
        // No key to say which rows: the counts and that the content differs.
        diff.differs = true;
        let (l, c) = (diff.live_rows.unwrap_or(0), diff.copy_rows.unwrap_or(0));
        diff.added = (l - c).max(0);
        diff.deleted = (c - l).max(0);
        return Ok((diff, cached.is_some()));
    }
    differing.sort_unstable();
    let mut added = Vec::new();
    let mut deleted = Vec::new();
    let mut changed = Vec::new();
    let all_rows: i64 = differing.iter().map(|(_, n)| n).sum();
    let every_bucket = differing.len() as i64 * 2 > count && all_rows <= ROWS_PER_READ;
    // A one-column integer key is read as a number, and only the keys that
    // differ are spelled as JSON (building a JSON key for every row read
    // cost a third of the read).
    let integer_key = match &buckets {
        Buckets::Ranges(ranges) => Some(ranges.column.as_str()),
        Buckets::Hashed { .. } => None,
    };
    for group in groups(&differing, ROWS_PER_READ) {
        let rows_sql = |t: &Table| {
            let filter = if every_bucket {
                String::new()
            } else {
                buckets.filter(t)
            };
            let key = match integer_key {
                Some(column) => format!("t.{}::int8", quote_ident(column)),
                None => format!("{}::text", t.key_object("t").unwrap_or_default()),
            };
            format!(
                "SELECT {key}, hash_record_extended(ROW({}), 0) FROM {} t {filter}",
                t.hashed_columns("t", &columns).join(", "),
                t.sql_name()
            )
        };
        let (live_sql, copy_sql) = (rows_sql(live_t), rows_sql(copy_t));
        let binds = if every_bucket {
            vec![]
        } else {
            buckets.binds(&group)
        };
        let read = match integer_key {
            Some(column) => {
                let (l, c) = tokio::try_join!(
                    fetch_planned::<(i64, i64)>(live, &live_sql, &binds, Grouping::Planned),
                    fetch_planned::<(i64, i64)>(copy, &copy_sql, &binds, Grouping::Planned),
                )?;
                let spelled = |keys: Vec<i64>| -> Vec<String> {
                    keys.into_iter()
                        .map(|k| serde_json::json!({ column: k }).to_string())
                        .collect()
                };
                let (a, d, c) = classify(l, c);
                (spelled(a), spelled(d), spelled(c))
            }
            None => {
                let (l, c) = tokio::try_join!(
                    fetch_planned::<(String, i64)>(live, &live_sql, &binds, Grouping::Planned),
                    fetch_planned::<(String, i64)>(copy, &copy_sql, &binds, Grouping::Planned),
                )?;
                classify(l, c)
            }
        };
        added.extend(read.0);
        deleted.extend(read.1);
        changed.extend(read.2);
        if every_bucket {
            break;
        }
    }
    tracing::debug!(
        table = %live_t.qualified(),
        ms = (began.elapsed() - summed).as_millis() as u64,
        every_bucket,
        "read the differing buckets key by key"
    );
    diff.added = added.len() as i64;
    diff.deleted = deleted.len() as i64;
    diff.changed = changed.len() as i64;
    diff.added_samples = describe(live, live_t, added, SAMPLES).await;
    diff.changed_samples = describe(live, live_t, changed, SAMPLES).await;
    deleted.sort_unstable();
    let keys: Vec<serde_json::Value> = deleted
        .iter()
        .take(RECOVERABLE)
        .map(|k| serde_json::from_str(k).unwrap_or_default())
        .collect();
    let words = words::describe_many(copy, copy_t, &keys).await;
    diff.deleted_samples = words.iter().take(SAMPLES).cloned().collect();
    diff.recoverable = keys
        .iter()
        .zip(words)
        .map(|(key, words)| RecoverableRow {
            key: key_argument(key),
            words,
        })
        .collect();
    Ok((diff, cached.is_some()))
}

/// How a keyed table's rows are put into buckets.
enum Buckets {
    /// A one-column integer key: ranges of it, which the second read finds
    /// through the primary key's index.
    Ranges(KeyRanges),
    /// Any other key: its hash, masked.
    Hashed { mask: i64 },
}

/// About `count` ranges of `column` (a one-column integer key) over its
/// keys in `live` and, given, `copy`.
async fn key_ranges(
    live: &PgPool,
    copy: Option<&PgPool>,
    table: &Table,
    column: &str,
    count: i64,
) -> Result<KeyRanges> {
    let sql = format!(
        "SELECT min({c})::int8, max({c})::int8 FROM {}",
        table.sql_name(),
        c = quote_ident(column)
    );
    let span = |pool| sqlx::query_as::<_, (Option<i64>, Option<i64>)>(&sql).fetch_one(pool);
    let (a, b) = match copy {
        Some(copy) => tokio::try_join!(span(live), span(copy))?,
        None => (span(live).await?, (None, None)),
    };
    let low = a.0.into_iter().chain(b.0).min().unwrap_or(0);
    let high = a.1.into_iter().chain(b.1).max().unwrap_or(0);
    Ok(KeyRanges::spanning(column, low, high, count))
}

/// The column of a one-column integer primary key.
fn integer_key(table: &Table) -> Option<&str> {
    match table.key.as_deref() {
        Some([only]) => table
            .column(only)
            .filter(|c| matches!(c.type_sql.as_str(), "bigint" | "integer" | "smallint"))
            .map(|c| c.name.as_str()),
        _ => None,
    }
}

impl Buckets {
    /// Ranges for a one-column integer key (over the keys of `live` and
    /// `copy`), hashes otherwise; about `count` buckets.
    async fn choose(live: &PgPool, copy: &PgPool, table: &Table, count: i64) -> Result<Self> {
        match integer_key(table) {
            Some(column) => Ok(Buckets::Ranges(
                key_ranges(live, Some(copy), table, column, count).await?,
            )),
            None => Ok(Buckets::Hashed { mask: count - 1 }),
        }
    }

    /// The bucket of a row of `t`.
    fn of_row(&self, t: &Table) -> String {
        match self {
            Buckets::Ranges(ranges) => ranges.bucket_of("t"),
            Buckets::Hashed { mask } => format!(
                "hash_record_extended(ROW({}), 0) & {mask}",
                t.hashed_key("t").unwrap_or_default().join(", ")
            ),
        }
    }

    /// What the filter's parameters are for the buckets `group`: their
    /// numbers, or their first and last keys.
    fn binds(&self, group: &[i64]) -> Vec<Vec<i64>> {
        match self {
            Buckets::Ranges(ranges) => {
                let (first, last) = group.iter().map(|&n| ranges.keys_of(n)).unzip();
                vec![first, last]
            }
            Buckets::Hashed { .. } => vec![group.to_vec()],
        }
    }

    /// The rows of the buckets given by [`Self::binds`] (after `FROM t`).
    fn filter(&self, t: &Table) -> String {
        match self {
            Buckets::Ranges(ranges) => {
                let c = format!("t.{}", quote_ident(&ranges.column));
                format!(
                    "JOIN unnest($1::int8[], $2::int8[]) AS b(lo, hi) ON {c} BETWEEN b.lo AND b.hi"
                )
            }
            Buckets::Hashed { .. } => {
                format!("WHERE ({}) IN (SELECT unnest($1::int8[]))", self.of_row(t))
            }
        }
    }
}

/// Rows by key and content hash, live and in the copy: the keys only live
/// (added), only in the copy (deleted) and in both with other content
/// (changed).
fn classify<K: std::hash::Hash + Eq>(
    live_rows: Vec<(K, i64)>,
    copy_rows: Vec<(K, i64)>,
) -> (Vec<K>, Vec<K>, Vec<K>) {
    let mut copy_rows: HashMap<K, i64> = copy_rows.into_iter().collect();
    let (mut added, mut changed) = (Vec::new(), Vec::new());
    for (key, hash) in live_rows {
        match copy_rows.remove(&key) {
            None => added.push(key),
            Some(h) if h != hash => changed.push(key),
            Some(_) => {}
        }
    }
    (added, copy_rows.into_keys().collect(), changed)
}

/// Whether a query's `GROUP BY` must hash its groups.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// As the planner likes.
    Planned,
    /// Always by hashing, in memory, one process a side: the bucket sums
    /// (see [`HASH_BUCKETS_IN_MEMORY`]).
    Hashed,
}

/// A table's blocks below which its sums are not split ([`sums_in_halves`]).
const SPLIT_FROM_BLOCKS: i64 = 1024;

/// One side's bucket sums of a table when the other side's are already
/// known (summed while the copy was restored), so this is the only query
/// running: the table's blocks in two halves, each summed by a process of
/// its own in one shared snapshot (as pg_dump's parallel jobs share one),
/// the halves' sums added here. PostgreSQL's own parallel workers would
/// only scan (it takes an expression's groups for as many as rows, so it
/// sends every row to one process to be grouped). `sql` gives the sums'
/// query for a filter of rows.
async fn sums_in_halves(
    pool: &PgPool,
    table: &Table,
    sql: impl Fn(&str) -> String,
) -> Result<Vec<(i64, i64, String)>> {
    let mut first = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *first)
        .await?;
    let (snapshot, blocks, version): (String, i64, i32) = sqlx::query_as(
        "SELECT pg_export_snapshot(),
                pg_relation_size($1::regclass) / current_setting('block_size')::int8,
                current_setting('server_version_num')::int4",
    )
    .bind(table.sql_name())
    .fetch_one(&mut *first)
    .await?;
    sqlx::query(HASH_BUCKETS_IN_MEMORY)
        .execute(&mut *first)
        .await?;
    // Block ranges are read as such (a TID range scan) from PostgreSQL 14.
    if blocks < SPLIT_FROM_BLOCKS || version < 140_000 {
        let rows = sqlx::query_as(&sql("")).fetch_all(&mut *first).await?;
        first.commit().await?;
        return Ok(rows);
    }
    let mut second = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *second)
        .await?;
    sqlx::query(&format!(
        "SET TRANSACTION SNAPSHOT {}",
        quote_literal(&snapshot)
    ))
    .execute(&mut *second)
    .await?;
    sqlx::query(HASH_BUCKETS_IN_MEMORY)
        .execute(&mut *second)
        .await?;
    let half = blocks / 2;
    let (lower, upper) = (
        sql(&format!("WHERE t.ctid < '({half},0)'::tid")),
        sql(&format!("WHERE t.ctid >= '({half},0)'::tid")),
    );
    let (a, b) = tokio::try_join!(
        sqlx::query_as::<_, (i64, i64, String)>(&lower).fetch_all(&mut *first),
        sqlx::query_as::<_, (i64, i64, String)>(&upper).fetch_all(&mut *second),
    )?;
    first.commit().await?;
    second.commit().await?;
    let mut merged: HashMap<i64, (i64, i128)> = HashMap::with_capacity(a.len().max(b.len()));
    for (bucket, rows, sum) in a.into_iter().chain(b) {
        // A sum of 64-bit hashes over fewer than 2^63 rows fits in 128 bits.
        let sum: i128 = sum.parse().map_err(|_| {
            crate::Error::Io(std::io::Error::other(format!("a bucket's sum {sum:?}")))
        })?;
        let entry = merged.entry(bucket).or_default();
        entry.0 += rows;
        entry.1 += sum;
    }
    Ok(merged
        .into_iter()
        .map(|(bucket, (rows, sum))| (bucket, rows, sum.to_string()))
        .collect())
}

/// Runs a comparison query (`binds` are its parameters), in a transaction
/// of its own with the planner settings it needs: no JIT compilation,
/// which for these queries costs more than it saves (0.1 s of a 0.16 s
/// read of a thousand key ranges), and for the bucket sums a hash table in
/// memory (see [`Grouping::Hashed`]).
async fn fetch_planned<O>(
    pool: &PgPool,
    sql: &str,
    binds: &[Vec<i64>],
    grouping: Grouping,
) -> std::result::Result<Vec<O>, sqlx::Error>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut tx = pool.begin().await?;
    let settings = match grouping {
        Grouping::Planned => "SELECT set_config('jit', 'off', true)",
        Grouping::Hashed => HASH_BUCKETS_IN_MEMORY,
    };
    sqlx::query(settings).execute(&mut *tx).await?;
    let mut query = sqlx::query_as::<_, O>(sql);
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The first `n` of `keys` (in key order), described as the LMS would.
async fn describe(pool: &PgPool, table: &Table, mut keys: Vec<String>, n: usize) -> Vec<String> {
    keys.sort_unstable();
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .take(n)
        .map(|k| serde_json::from_str(k).unwrap_or_default())
        .collect();
    words::describe_many(pool, table, &keys).await
}

/// A key object as `--key` takes it: the value alone for a one-column
/// key, `column=value,...` otherwise.
fn key_argument(key: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match key.as_object() {
        Some(map) if map.len() == 1 => map.values().map(text).collect(),
        Some(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect::<Vec<_>>()
            .join(","),
        None => key.to_string(),
    }
}

/// About how many rows `table` has, as the planner estimates them: from
/// its statistics scaled to the table's current size, or from its size
/// alone when it was never analyzed (a freshly loaded table), so neither
/// an empty estimate (one bucket, read key by key in full) nor a count of
/// every row (0.05 s at 800,000 rows) is needed.
async fn row_estimate(pool: &PgPool, table: &Table) -> Result<f64> {
    let plan: serde_json::Value = sqlx::query_scalar(&format!(
        "EXPLAIN (FORMAT JSON) SELECT * FROM {}",
        table.sql_name()
    ))
    .fetch_one(pool)
    .await?;
    Ok(plan[0]["Plan"]["Plan Rows"]
        .as_f64()
        .unwrap_or(0.0)
        .max(0.0))
}

/// Buckets per table: about 32 rows each, the nearest power of two, at
/// most [`MAX_BUCKETS`]. Nearest rather than next: the planner's estimate
/// of a table never analyzed runs about a third high, which would otherwise
/// often double the buckets (at 800,000 rows: 0.59 s of sums against 0.53 s).
fn bucket_count(rows: f64) -> i64 {
    let wanted = (rows / 32.0).clamp(1.0, MAX_BUCKETS as f64);
    1 << (wanted.log2().round() as u32)
}

/// The buckets in groups of at most `limit` rows (a bucket larger than
/// that is a group of its own).
fn groups(buckets: &[(i64, i64)], limit: i64) -> Vec<Vec<i64>> {
    let mut out: Vec<Vec<i64>> = vec![];
    let mut rows = 0;
    for &(bucket, n) in buckets {
        match out.last_mut() {
            Some(group) if rows + n <= limit => {
                group.push(bucket);
                rows += n;
            }
            _ => {
                out.push(vec![bucket]);
                rows = n;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_grow_with_the_table_as_powers_of_two() {
        assert_eq!(bucket_count(0.0), 1);
        assert_eq!(bucket_count(100.0), 4);
        assert_eq!(bucket_count(1_000_000.0), 32_768);
        assert_eq!(
            bucket_count(1_100_000.0),
            32_768,
            "a third high, still as many"
        );
        assert_eq!(bucket_count(600_000.0), 16_384);
        assert_eq!(bucket_count(1e12), MAX_BUCKETS);
    }

    #[test]
    fn buckets_are_read_in_groups_of_bounded_rows() {
        let buckets = [(1, 5), (2, 5), (3, 20), (4, 1)];
        assert_eq!(groups(&buckets, 10), vec![vec![1, 2], vec![3], vec![4]]);
        assert_eq!(groups(&buckets, 100), vec![vec![1, 2, 3, 4]]);
    }
}
