//! A record recovery's plan, worked out before anything changes.
//!
//! From the record asked for, in the prepared copy: every row that refers to
//! it, recursively, by the database's own foreign keys (a course's lessons,
//! their attachments and activity, its enrollments); then, against the live
//! database, which of those rows are absent (to insert), present as in the
//! backup (left alone) or present and changed since (left alone, listed);
//! then the rows the inserted ones need that no longer exist live (a deleted
//! instructor's account), recursively; then what would block the insert: a
//! unique value now taken by another row, and whatever PostgreSQL itself
//! refuses when the plan is tried in a transaction that is rolled back.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use lms_types::records::{Blocker, PlanTable, RecoveryPlan};
use serde_json::Value;
use sqlx::PgPool;

use super::schema::{Schema, Table, TableName};
use super::words;
use crate::{Error, Result};

/// The record to bring back: a table and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRequest {
    /// `schema.table`, or a table name in `public`.
    pub table: String,
    pub key: RecordKey,
}

/// A primary key's value: the one column's, or each column's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Value(String),
    Columns(Vec<(String, String)>),
}

impl std::str::FromStr for RecordKey {
    type Err = Error;

    /// `42`, or `course_id=3,user_id=7` for a composite key.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::Invalid(
                "Give the record's key, e.g. 42 or course_id=3,user_id=7.".into(),
            ));
        }
        if !s.contains('=') {
            return Ok(RecordKey::Value(s.to_owned()));
        }
        s.split(',')
            .map(|pair| {
                let (column, value) = pair.split_once('=').ok_or_else(|| {
                    Error::Invalid(format!(
                        "\"{pair}\" is not column=value; give a composite key as course_id=3,user_id=7."
                    ))
                })?;
                let column = column.trim();
                if column.is_empty() {
                    return Err(Error::Invalid(format!("\"{pair}\" names no column.")));
                }
                Ok((column.to_owned(), value.trim().to_owned()))
            })
            .collect::<Result<Vec<_>>>()
            .map(RecordKey::Columns)
    }
}

/// The largest closure a recovery brings back: beyond it, a restore (or a
/// switch to the prepared copy) is the tool.
const MAX_ROWS: usize = 500_000;
/// Values sent in one query.
const CHUNK: usize = 5_000;

/// Rows of one table the plan inserts, in the live table's terms.
#[derive(Debug, Clone)]
pub(crate) struct Insert {
    pub table: Table,
    /// Each row's identity (its key object as text, or the whole row for a
    /// table without a primary key) and the row as the copy holds it.
    pub rows: Vec<(String, Value)>,
}

/// A plan and the rows it inserts, in order.
pub(crate) struct Planned {
    pub plan: RecoveryPlan,
    pub inserts: Vec<Insert>,
}

/// What the closure found of one table.
#[derive(Default)]
struct Found {
    /// identity → row, from the copy.
    rows: BTreeMap<String, Value>,
    /// Identities brought because an inserted row needs them.
    needed: BTreeSet<String>,
}

/// Works out the plan for `request` from `copy` (the prepared copy) into
/// `live`. `backup` is (id, name) of the backup the copy holds.
pub(crate) async fn plan(
    live: &PgPool,
    copy: &PgPool,
    request: &RecordRequest,
    backup: (i64, &str),
) -> Result<Planned> {
    let (live_schema, copy_schema) = tokio::try_join!(
        async { Schema::read(&mut *live.acquire().await?).await },
        async { Schema::read(&mut *copy.acquire().await?).await },
    )?;
    let root_table = copy_schema.find(&request.table).ok_or_else(|| {
        Error::Invalid(format!(
            "The backup has no table \"{}\"; give it as schema.table.",
            request.table
        ))
    })?;
    let root_name = (root_table.schema.clone(), root_table.name.clone());
    if live_schema.table(&root_name).is_none() {
        return Err(Error::Invalid(format!(
            "The table {} no longer exists in the live database: records cannot be brought back \
             into it (a restore, or switching to the prepared copy, can).",
            root_table.qualified()
        )));
    }
    let key_object = key_object(root_table, &request.key)?;
    let root_key = root_table.key.clone().unwrap_or_default();
    let roots = fetch_matching(
        copy,
        root_table,
        &root_key,
        root_table,
        &root_key,
        vec![key_object.clone()],
    )
    .await?;
    if roots.is_empty() {
        return Err(Error::Invalid(format!(
            "The backup holds no {} row with {}.",
            root_table.qualified(),
            words::by_key(&key_object)
        )));
    }
    let root_words = words::describe(copy, root_table, &key_object).await;

    // Everything that refers to the record, recursively, as the backup has it.
    let mut found: BTreeMap<TableName, Found> = BTreeMap::new();
    let mut total = 0usize;
    let mut frontier: Vec<(TableName, Vec<Value>)> = vec![(
        root_name.clone(),
        roots.iter().map(|(_, r)| r.clone()).collect(),
    )];
    found
        .entry(root_name.clone())
        .or_default()
        .rows
        .extend(roots);
    while let Some((parent, rows)) = frontier.pop() {
        for fk in copy_schema
            .foreign_keys
            .iter()
            .filter(|fk| fk.parent == parent)
        {
            let Some(child) = copy_schema.table(&fk.child) else {
                continue;
            };
            let Some(parent_table) = copy_schema.table(&fk.parent) else {
                continue;
            };
            let values = distinct_values(&fk.parent_columns, &rows);
            if values.is_empty() {
                continue;
            }
            let children = fetch_matching(
                copy,
                child,
                &fk.child_columns,
                parent_table,
                &fk.parent_columns,
                values,
            )
            .await?;
            let entry = found.entry(fk.child.clone()).or_default();
            let mut new = Vec::new();
            for (identity, row) in children {
                if let std::collections::btree_map::Entry::Vacant(slot) = entry.rows.entry(identity)
                {
                    slot.insert(row.clone());
                    new.push(row);
                }
            }
            total += new.len();
            if total > MAX_ROWS {
                return Err(too_large());
            }
            if !new.is_empty() {
                frontier.push((fk.child.clone(), new));
            }
        }
    }

    // Which of them exist live, as they were or changed.
    let mut blockers = Vec::new();
    let mut inserts: BTreeMap<TableName, BTreeMap<String, Value>> = BTreeMap::new();
    let mut unchanged: BTreeMap<TableName, i64> = BTreeMap::new();
    let mut changed: BTreeMap<TableName, Vec<String>> = BTreeMap::new();
    for (name, f) in &found {
        let Some(live_t) = live_schema.table(name) else {
            blockers.push(Blocker {
                table: format!("{}.{}", name.0, name.1),
                row: format!("{} rows", f.rows.len()),
                reason: "the table no longer exists in the live database".into(),
            });
            continue;
        };
        let present = present_live(live, live_t, &f.rows).await?;
        for (identity, row) in &f.rows {
            match present.get(identity) {
                None => {
                    inserts
                        .entry(name.clone())
                        .or_default()
                        .insert(identity.clone(), row.clone());
                }
                Some(live_row) if same_content(live_row, row) => {
                    *unchanged.entry(name.clone()).or_default() += 1;
                }
                Some(_) => changed
                    .entry(name.clone())
                    .or_default()
                    .push(identity.clone()),
            }
        }
    }

    // What the inserted rows need that is gone live, recursively.
    loop {
        let mut added = 0usize;
        for fk in &live_schema.foreign_keys {
            let Some(rows) = inserts.get(&fk.child) else {
                continue;
            };
            let refs = distinct_values(
                &fk.child_columns,
                &rows.values().cloned().collect::<Vec<_>>(),
            );
            if refs.is_empty() {
                continue;
            }
            let (Some(parent_live), Some(parent_copy)) =
                (live_schema.table(&fk.parent), copy_schema.table(&fk.parent))
            else {
                continue;
            };
            // As the parent's columns: what the foreign key looks for there.
            let wanted: Vec<Value> = refs
                .iter()
                .map(|v| rename(v, &fk.child_columns, &fk.parent_columns))
                .collect();
            let coming: BTreeSet<String> = inserts
                .get(&fk.parent)
                .map(|rows| {
                    rows.values()
                        .filter_map(|r| Table::values_of(&fk.parent_columns, r))
                        .collect()
                })
                .unwrap_or_default();
            let wanted: Vec<Value> = wanted
                .into_iter()
                .filter(|v| {
                    Table::values_of(&fk.parent_columns, v).is_some_and(|s| !coming.contains(&s))
                })
                .collect();
            let missing = missing_live(live, parent_live, &fk.parent_columns, wanted).await?;
            if missing.is_empty() {
                continue;
            }
            let from_copy = fetch_matching(
                copy,
                parent_copy,
                &fk.parent_columns,
                parent_copy,
                &fk.parent_columns,
                missing.clone(),
            )
            .await?;
            let got: BTreeSet<String> = from_copy
                .iter()
                .filter_map(|(_, r)| Table::values_of(&fk.parent_columns, r))
                .collect();
            for value in &missing {
                if Table::values_of(&fk.parent_columns, value).is_some_and(|s| !got.contains(&s)) {
                    blockers.push(Blocker {
                        table: parent_live.qualified(),
                        row: words::by_key(value),
                        reason: format!(
                            "recovered rows of {} refer to it ({}), but it is neither in the live \
                             database nor in the backup",
                            fk.child.1, fk.name
                        ),
                    });
                }
            }
            let entry = found.entry(fk.parent.clone()).or_default();
            let present =
                present_live(live, parent_live, &from_copy.iter().cloned().collect()).await?;
            for (identity, row) in from_copy {
                if let Some(live_row) = present.get(&identity) {
                    // Present by its key, but not by what the key refers to.
                    blockers.push(Blocker {
                        table: parent_live.qualified(),
                        row: words::describe(live, parent_live, &key_of(&identity)).await,
                        reason: format!(
                            "recovered rows need it as the backup has it, but it exists live with \
                             other values ({}); it is never overwritten",
                            differing_columns(live_row, &row).join(", ")
                        ),
                    });
                    continue;
                }
                if entry.rows.insert(identity.clone(), row.clone()).is_none() {
                    entry.needed.insert(identity.clone());
                    inserts
                        .entry(fk.parent.clone())
                        .or_default()
                        .insert(identity, row);
                    added += 1;
                }
            }
            total += added;
            if total > MAX_ROWS {
                return Err(too_large());
            }
        }
        if added == 0 {
            break;
        }
    }

    let order = insertion_order(&live_schema, inserts.keys().cloned().collect());
    let inserts: Vec<Insert> = order
        .iter()
        .filter_map(|name| {
            Some(Insert {
                table: live_schema.table(name)?.clone(),
                rows: inserts.remove(name)?.into_iter().collect(),
            })
        })
        .collect();

    // A unique value now taken by another row.
    for insert in &inserts {
        for (index, columns) in &insert.table.uniques {
            let values = distinct_values(
                columns,
                &insert
                    .rows
                    .iter()
                    .map(|(_, r)| r.clone())
                    .collect::<Vec<_>>(),
            );
            if values.is_empty() {
                continue;
            }
            let taken =
                fetch_matching(live, &insert.table, columns, &insert.table, columns, values)
                    .await?;
            for (identity, live_row) in taken.into_iter().take(20) {
                let Some(value) = Table::values_of(columns, &live_row) else {
                    continue;
                };
                let ours = insert
                    .rows
                    .iter()
                    .find(|(_, r)| Table::values_of(columns, r).as_deref() == Some(&value));
                let row = match ours {
                    Some((id, _)) => words::describe(copy, &insert.table, &key_of(id)).await,
                    None => String::new(),
                };
                blockers.push(Blocker {
                    table: insert.table.qualified(),
                    row,
                    reason: format!(
                        "its {} ({}) is now used by {} (unique index {index})",
                        columns.join(", "),
                        words::by_key(&Table::project(columns, &live_row)),
                        words::describe(live, &insert.table, &key_of(&identity)).await
                    ),
                });
            }
        }
    }

    // Whatever else PostgreSQL refuses (a check, a trigger, a deferred
    // constraint): the plan tried in a transaction that is rolled back.
    if blockers.is_empty() && !inserts.is_empty() {
        let mut tx = live.begin().await?;
        let tried = async {
            super::apply::insert_all(&mut tx, &inserts).await?;
            sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
                .execute(&mut *tx)
                .await
                .map_err(|e| (String::from("(deferred constraints)"), e))?;
            Ok::<_, (String, sqlx::Error)>(())
        }
        .await;
        tx.rollback().await?;
        if let Err((table, e)) = tried {
            blockers.push(refused(&table, &e));
        }
    }

    let mut tables = Vec::new();
    for insert in &inserts {
        let name = (insert.table.schema.clone(), insert.table.name.clone());
        let needed = found.get(&name).map_or(0, |f| f.needed.len()) as i64;
        let mut samples = Vec::new();
        for (identity, _) in insert.rows.iter().take(super::diff::SAMPLES) {
            samples.push(words::describe(copy, &insert.table, &key_of(identity)).await);
        }
        tables.push(plan_table(&name, insert.rows.len() as i64, needed, samples));
    }
    for name in found.keys() {
        let (kept, changed_rows) = (
            unchanged.get(name).copied().unwrap_or(0),
            changed.get(name).cloned().unwrap_or_default(),
        );
        if kept == 0 && changed_rows.is_empty() {
            continue;
        }
        let index = match tables.iter().position(|t: &PlanTable| {
            (t.schema.as_str(), t.name.as_str()) == (name.0.as_str(), name.1.as_str())
        }) {
            Some(i) => i,
            None => {
                tables.push(plan_table(name, 0, 0, vec![]));
                tables.len() - 1
            }
        };
        let live_t = live_schema.table(name);
        let mut samples = Vec::new();
        if let Some(live_t) = live_t {
            for identity in changed_rows.iter().take(super::diff::SAMPLES) {
                samples.push(words::describe(live, live_t, &key_of(identity)).await);
            }
        }
        let t = &mut tables[index];
        t.unchanged = kept;
        t.changed = changed_rows.len() as i64;
        t.changed_samples = samples;
    }
    Ok(Planned {
        plan: RecoveryPlan {
            backup_id: backup.0,
            backup_name: backup.1.to_owned(),
            table: root_table.qualified(),
            root: root_words,
            tables,
            blockers,
        },
        inserts,
    })
}

fn plan_table(name: &TableName, insert: i64, needed: i64, samples: Vec<String>) -> PlanTable {
    PlanTable {
        schema: name.0.clone(),
        name: name.1.clone(),
        insert,
        needed,
        unchanged: 0,
        changed: 0,
        insert_samples: samples,
        changed_samples: vec![],
    }
}

/// A refusal by PostgreSQL as a blocker: its message and detail (which
/// names the row: "Key (code)=(CS101) already exists.").
pub(crate) fn refused(table: &str, e: &sqlx::Error) -> Blocker {
    let (reason, row) = match e {
        sqlx::Error::Database(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            (
                db.message().to_owned(),
                pg.and_then(|p| p.detail()).unwrap_or_default().to_owned(),
            )
        }
        other => (other.to_string(), String::new()),
    };
    Blocker {
        table: table.to_owned(),
        row,
        reason: format!("the database refuses the insert: {reason}"),
    }
}

fn too_large() -> Error {
    Error::Invalid(format!(
        "The record and what belongs to it come to more than {MAX_ROWS} rows: too much to bring \
         back record by record. Restore the backup, or switch to the prepared copy, instead."
    ))
}

/// The key object `{"column": "value"}` of the root record.
fn key_object(table: &Table, key: &RecordKey) -> Result<Value> {
    let columns = table.key.as_ref().ok_or_else(|| {
        Error::Invalid(format!(
            "{} has no primary key, so a record of it cannot be named; recover a record of a \
             table it belongs to instead.",
            table.qualified()
        ))
    })?;
    let pairs: Vec<(String, String)> = match key {
        RecordKey::Value(v) if columns.len() == 1 => vec![(columns[0].clone(), v.clone())],
        RecordKey::Value(_) => {
            return Err(Error::Invalid(format!(
                "{} has a composite key ({}): give it as {}.",
                table.qualified(),
                columns.join(", "),
                columns
                    .iter()
                    .map(|c| format!("{c}=…"))
                    .collect::<Vec<_>>()
                    .join(",")
            )))
        }
        RecordKey::Columns(pairs) => {
            let given: BTreeSet<&str> = pairs.iter().map(|(c, _)| c.as_str()).collect();
            let wanted: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
            if given != wanted || pairs.len() != columns.len() {
                return Err(Error::Invalid(format!(
                    "The key of {} is ({}); give each of its columns once.",
                    table.qualified(),
                    columns.join(", ")
                )));
            }
            pairs.clone()
        }
    };
    Ok(Value::Object(
        pairs
            .into_iter()
            .map(|(c, v)| (c, Value::String(v)))
            .collect(),
    ))
}

/// The key object of a row identity (its key object's text; for a table
/// without a primary key, the row itself, described by all its columns).
pub(crate) fn key_of(identity: &str) -> Value {
    serde_json::from_str(identity).unwrap_or(Value::Null)
}

/// Each distinct combination of `columns` in `rows` with no NULL, as
/// objects of those columns.
fn distinct_values(columns: &[String], rows: &[Value]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    rows.iter()
        .filter_map(|r| {
            let text = Table::values_of(columns, r)?;
            seen.insert(text).then(|| Table::project(columns, r))
        })
        .collect()
}

/// `{from[i]: v}` → `{to[i]: v}`.
fn rename(value: &Value, from: &[String], to: &[String]) -> Value {
    Value::Object(
        from.iter()
            .zip(to)
            .map(|(f, t)| (t.clone(), value.get(f).cloned().unwrap_or(Value::Null)))
            .collect(),
    )
}

/// The row of `table` as an identity: its key object, or for a table
/// without a primary key the whole row.
fn identity_sql(table: &Table, alias: &str) -> String {
    table
        .key_object(alias)
        .unwrap_or_else(|| unkeyed_identity(alias))
}

/// A row of a table without a primary key is known by its content and
/// which of the identical rows it is: `[row, n]`.
pub(crate) fn unkeyed_identity(alias: &str) -> String {
    format!(
        "jsonb_build_array(to_jsonb({alias}), row_number() OVER (PARTITION BY to_jsonb({alias})))"
    )
}

/// The content part of a row identity of a table without a primary key.
pub(crate) fn unkeyed_content(identity: &str) -> Value {
    match serde_json::from_str::<Value>(identity) {
        Ok(Value::Array(mut parts)) if !parts.is_empty() => parts.swap_remove(0),
        _ => Value::Null,
    }
}

/// Rows of `table` whose `columns` equal those of one of `values` (objects
/// keyed by `values_table`'s column names, in `columns`' order), as
/// (identity, row).
pub(crate) async fn fetch_matching(
    pool: &PgPool,
    table: &Table,
    columns: &[String],
    values_table: &Table,
    value_columns: &[String],
    values: Vec<Value>,
) -> Result<Vec<(String, Value)>> {
    if values.is_empty() {
        return Ok(vec![]);
    }
    let sql = matching_sql(table, columns, values_table, value_columns);
    let mut conn = pool.acquire().await?;
    fetch_matching_on(&mut conn, &sql, values).await
}

/// The query of [`fetch_matching`]: rows of `table` joined to the values.
pub(crate) fn matching_sql(
    table: &Table,
    columns: &[String],
    values_table: &Table,
    value_columns: &[String],
) -> String {
    let on: Vec<String> = columns
        .iter()
        .zip(value_columns)
        .map(|(c, v)| {
            format!(
                "t.{} = k.{}",
                crate::postgres::databases::quote_ident(c),
                crate::postgres::databases::quote_ident(v)
            )
        })
        .collect();
    format!(
        "SELECT {}::text, to_jsonb(t) FROM {} t JOIN jsonb_to_recordset($1) AS {} ON {}",
        identity_sql(table, "t"),
        table.sql_name(),
        values_table.record_definition(value_columns),
        on.join(" AND ")
    )
}

/// [`fetch_matching`]'s query `sql` run on `conn` (inside a transaction).
pub(crate) async fn fetch_matching_on(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for chunk in values.chunks(CHUNK) {
        let rows: Vec<(String, Value)> = sqlx::query_as(sql)
            .bind(Value::Array(chunk.to_vec()))
            .fetch_all(&mut *conn)
            .await?;
        for (identity, row) in rows {
            if seen.insert(identity.clone()) {
                out.push((identity, row));
            }
        }
    }
    Ok(out)
}

/// Which of `rows` (identity → row, from the copy) exist live: identity →
/// the live row.
async fn present_live(
    live: &PgPool,
    table: &Table,
    rows: &BTreeMap<String, Value>,
) -> Result<HashMap<String, Value>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let found = match &table.key {
        Some(key) => {
            let keys: Vec<Value> = rows
                .keys()
                .map(|k| serde_json::from_str(k).unwrap_or(Value::Null))
                .collect();
            fetch_matching(live, table, key, table, key, keys).await?
        }
        None => {
            let mut out = Vec::new();
            let all: Vec<Value> = rows.values().cloned().collect();
            for chunk in all.chunks(CHUNK) {
                let mut found: Vec<(String, Value)> = sqlx::query_as(&format!(
                    "SELECT {}::text, to_jsonb(t) FROM {} t
                     WHERE to_jsonb(t) IN (SELECT jsonb_array_elements($1))",
                    unkeyed_identity("t"),
                    table.sql_name()
                ))
                .bind(Value::Array(chunk.to_vec()))
                .fetch_all(live)
                .await?;
                out.append(&mut found);
            }
            out
        }
    };
    Ok(found.into_iter().collect())
}

/// Which of `values` (objects of `columns`) no row of `table` has live.
async fn missing_live(
    live: &PgPool,
    table: &Table,
    columns: &[String],
    values: Vec<Value>,
) -> Result<Vec<Value>> {
    if values.is_empty() {
        return Ok(vec![]);
    }
    let on: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "p.{q} = k.{q}",
                q = crate::postgres::databases::quote_ident(c)
            )
        })
        .collect();
    let sql = format!(
        "SELECT to_jsonb(k) FROM jsonb_to_recordset($1) AS {}
         WHERE NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
        table.record_definition(columns),
        table.sql_name(),
        on.join(" AND ")
    );
    let mut out = Vec::new();
    for chunk in values.chunks(CHUNK) {
        let mut rows: Vec<Value> = sqlx::query_scalar(&sql)
            .bind(Value::Array(chunk.to_vec()))
            .fetch_all(live)
            .await?;
        out.append(&mut rows);
    }
    Ok(out)
}

/// The same content where both rows have the column (a column added since
/// the backup is not a change of the row).
fn same_content(live: &Value, copy: &Value) -> bool {
    differing_columns(live, copy).is_empty()
}

fn differing_columns(live: &Value, copy: &Value) -> Vec<String> {
    match (live.as_object(), copy.as_object()) {
        (Some(l), Some(c)) => c
            .iter()
            .filter(|(k, v)| l.get(*k).is_some_and(|lv| lv != *v))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => vec!["(row)".into()],
    }
}

/// `tables` with every table after the tables its foreign keys point to
/// (self-references aside; a cycle keeps the remaining tables' order, the
/// insert then relies on deferrable constraints).
pub(crate) fn insertion_order(schema: &Schema, tables: BTreeSet<TableName>) -> Vec<TableName> {
    let mut left: Vec<TableName> = tables.into_iter().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            !schema
                .foreign_keys
                .iter()
                .any(|fk| &fk.child == t && fk.parent != *t && left.contains(&fk.parent))
        });
        let next = left.remove(ready.unwrap_or(0));
        out.push(next);
    }
    out
}
