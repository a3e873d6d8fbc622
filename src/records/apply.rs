//! Carrying out a recovery plan, and undoing it.
//!
//! The plan's rows are inserted in one transaction on the live database, as
//! the application role, parents before children, with every constraint and
//! trigger active; sequences move forward past the inserted keys; what was
//! inserted is recorded (each row's key and the hash of its content) before
//! the transaction commits. Undo deletes exactly those rows in one
//! transaction, and refuses, naming the row, when one changed since or a
//! newer row refers to one.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::plan::{
    fetch_matching_on, insertion_order, matching_sql, refused, unkeyed_content, unkeyed_identity,
    Insert,
};
use super::schema::{Schema, Table};
use super::words;
use crate::postgres::databases::quote_ident;
use crate::{Error, Result};

/// Rows sent in one INSERT.
const ROWS_PER_INSERT: usize = 1_000;

/// What a recovery inserted into one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Inserted {
    pub schema: String,
    pub name: String,
    /// Each row: its identity and the MD5 of its content as inserted.
    pub rows: Vec<(String, String)>,
}

/// Inserts every row of `inserts` in order. On a refusal: the table and
/// PostgreSQL's error.
pub(crate) async fn insert_all(
    tx: &mut PgConnection,
    inserts: &[Insert],
) -> std::result::Result<(), (String, sqlx::Error)> {
    for insert in inserts {
        let table = &insert.table;
        let columns = table.insertable();
        let listed = columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let overriding = if table
            .columns
            .iter()
            .any(|c| c.identity_always && !c.generated)
        {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO {} ({listed}){overriding} SELECT {listed} FROM jsonb_to_recordset($1) AS {}",
            table.sql_name(),
            table.record_definition(&columns)
        );
        for chunk in insert.rows.chunks(ROWS_PER_INSERT) {
            let rows: Vec<Value> = chunk.iter().map(|(_, r)| r.clone()).collect();
            sqlx::query(&sql)
                .bind(Value::Array(rows))
                .execute(&mut *tx)
                .await
                .map_err(|e| (table.qualified(), e))?;
        }
    }
    Ok(())
}

/// Moves each sequence that feeds an inserted column past the largest
/// value inserted, so the application's next row does not collide with a
/// recovered one. Sequences never move back.
pub(crate) async fn move_sequences(tx: &mut PgConnection, inserts: &[Insert]) -> Result<usize> {
    let mut moved = 0;
    for insert in inserts {
        for column in &insert.table.columns {
            let sequence: Option<String> =
                sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
                    .bind(insert.table.sql_name())
                    .bind(&column.name)
                    .fetch_one(&mut *tx)
                    .await?;
            let Some(sequence) = sequence else {
                continue;
            };
            let Some(highest) = insert
                .rows
                .iter()
                .filter_map(|(_, r)| r.get(&column.name)?.as_i64())
                .max()
            else {
                continue;
            };
            let set: Option<i64> = sqlx::query_scalar(
                "SELECT setval($1::regclass, $2)
                 WHERE $2 > coalesce(pg_sequence_last_value($1::regclass), 0)",
            )
            .bind(&sequence)
            .bind(highest)
            .fetch_optional(&mut *tx)
            .await?;
            moved += set.is_some() as usize;
        }
    }
    Ok(moved)
}

/// Each of `identities`' row of `table` as it is now: identity → MD5 of
/// its content (`to_jsonb(row)::text`, which both sides spell alike).
pub(crate) async fn row_hashes(
    conn: &mut PgConnection,
    table: &Table,
    identities: &[String],
    lock: bool,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let lock = if lock { " FOR UPDATE OF t" } else { "" };
    for chunk in identities.chunks(5_000) {
        let rows: Vec<(String, String)> = match &table.key {
            Some(key) => {
                let sql = format!(
                    "SELECT {}::text, md5(to_jsonb(t)::text) FROM {} t
                     JOIN jsonb_to_recordset($1) AS {} ON {}{lock}",
                    table.key_object("t").unwrap_or_default(),
                    table.sql_name(),
                    table.record_definition(key),
                    Table::equal_on(key, "t", "k")
                );
                let keys: Vec<Value> = chunk
                    .iter()
                    .map(|i| serde_json::from_str(i).unwrap_or(Value::Null))
                    .collect();
                sqlx::query_as(&sql)
                    .bind(Value::Array(keys))
                    .fetch_all(&mut *conn)
                    .await?
            }
            None => {
                // (Row locks cannot be taken with the window numbering the
                // identical rows; the delete finds its rows again.)
                let sql = format!(
                    "SELECT {}::text, md5(to_jsonb(t)::text) FROM {} t
                     WHERE to_jsonb(t) IN (SELECT jsonb_array_elements($1))",
                    unkeyed_identity("t"),
                    table.sql_name()
                );
                let rows: Vec<Value> = chunk.iter().map(|i| unkeyed_content(i)).collect();
                sqlx::query_as(&sql)
                    .bind(Value::Array(rows))
                    .fetch_all(&mut *conn)
                    .await?
            }
        };
        out.extend(rows);
    }
    Ok(out)
}

/// Inserts the plan in one transaction and returns what was inserted;
/// `record` is called with it before the transaction commits (and the
/// commit is refused if recording fails).
pub(crate) async fn recover<F, Fut>(
    live: &PgPool,
    inserts: &[Insert],
    record: F,
) -> Result<(Vec<Inserted>, usize)>
where
    F: FnOnce(Vec<Inserted>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut tx = live.begin().await?;
    if let Err((table, e)) = insert_all(&mut tx, inserts).await {
        let blocker = refused(&table, &e);
        return Err(Error::Invalid(format!(
            "The live database refused the recovery in {table}: {} {}. Nothing was changed.",
            blocker.reason, blocker.row
        )));
    }
    let moved = move_sequences(&mut tx, inserts).await?;
    if let Err(e) = sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
        .execute(&mut *tx)
        .await
    {
        let blocker = refused("(deferred constraints)", &e);
        return Err(Error::Invalid(format!(
            "The live database refused the recovery: {} {}. Nothing was changed.",
            blocker.reason, blocker.row
        )));
    }
    let mut inserted = Vec::new();
    for insert in inserts {
        let identities: Vec<String> = insert.rows.iter().map(|(i, _)| i.clone()).collect();
        let hashes = row_hashes(&mut tx, &insert.table, &identities, false).await?;
        inserted.push(Inserted {
            schema: insert.table.schema.clone(),
            name: insert.table.name.clone(),
            rows: hashes.into_iter().collect(),
        });
    }
    #[cfg(feature = "testing")]
    crate::testing::pause_point("recover:before-commit").await;
    record(inserted.clone()).await?;
    tx.commit().await?;
    Ok((inserted, moved))
}

/// What an undo found.
pub(crate) struct Undone {
    pub deleted: Vec<(String, i64)>,
    /// Rows already gone (deleted by someone since).
    pub gone: i64,
}

/// Deletes the rows of `inserted` again in one transaction, unless one
/// changed since or a row not among them refers to one.
pub(crate) async fn undo(live: &PgPool, inserted: &[Inserted]) -> Result<Undone> {
    let schema = Schema::read(&mut *live.acquire().await?).await?;
    let mut tx = live.begin().await?;
    let mut present: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut gone = 0i64;
    for table_rows in inserted.iter().rev() {
        let name = (table_rows.schema.clone(), table_rows.name.clone());
        let table = schema.table(&name).ok_or_else(|| {
            Error::Invalid(format!(
                "The table {}.{} no longer exists; nothing was deleted.",
                name.0, name.1
            ))
        })?;
        let identities: Vec<String> = table_rows.rows.iter().map(|(i, _)| i.clone()).collect();
        let now = row_hashes(&mut tx, table, &identities, true).await?;
        for (identity, hash) in &table_rows.rows {
            match now.get(identity) {
                None => gone += 1,
                Some(h) if h == hash => present
                    .entry(name.clone())
                    .or_default()
                    .push(identity.clone()),
                Some(_) => {
                    let row = words::describe(live, table, &super::plan::key_of(identity)).await;
                    return Err(Error::Invalid(format!(
                        "{row} ({}) changed since it was recovered; undoing would lose that \
                         change, so nothing was deleted.",
                        table.qualified()
                    )));
                }
            }
        }
    }
    // A row added since that refers to a recovered one would be deleted
    // with it (or stop the delete): refuse, naming it.
    let recovered: BTreeMap<(String, String), BTreeSet<String>> = present
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect();
    for fk in &schema.foreign_keys {
        let Some(parents) = present.get(&fk.parent) else {
            continue;
        };
        let (Some(parent), Some(child)) = (schema.table(&fk.parent), schema.table(&fk.child))
        else {
            continue;
        };
        let parent_rows = fetch_rows(&mut tx, parent, parents).await?;
        let values: Vec<Value> = parent_rows
            .iter()
            .filter(|r| Table::values_of(&fk.parent_columns, r).is_some())
            .map(|r| {
                Value::Object(
                    fk.parent_columns
                        .iter()
                        .map(|c| (c.clone(), r.get(c).cloned().unwrap_or(Value::Null)))
                        .collect(),
                )
            })
            .collect();
        let referring = fetch_matching_on(
            &mut tx,
            &matching_sql(child, &fk.child_columns, parent, &fk.parent_columns),
            values,
        )
        .await?;
        let ours = recovered.get(&fk.child);
        if let Some((identity, _)) = referring
            .iter()
            .find(|(i, _)| !ours.is_some_and(|o| o.contains(i)))
        {
            let row = words::describe(live, child, &super::plan::key_of(identity)).await;
            return Err(Error::Invalid(format!(
                "{row} ({}) was added since and refers to a recovered row; undoing would delete \
                 or orphan it, so nothing was deleted.",
                child.qualified()
            )));
        }
    }
    let order = insertion_order(&schema, present.keys().cloned().collect());
    let mut deleted = Vec::new();
    for name in order.iter().rev() {
        let (Some(table), Some(identities)) = (schema.table(name), present.get(name)) else {
            continue;
        };
        let mut count = 0i64;
        for chunk in identities.chunks(5_000) {
            let values: Vec<Value> = chunk
                .iter()
                .map(|i| serde_json::from_str(i).unwrap_or(Value::Null))
                .collect();
            let done = match &table.key {
                Some(key) => sqlx::query(&format!(
                    "DELETE FROM {} t USING jsonb_to_recordset($1) AS {} WHERE {}",
                    table.sql_name(),
                    table.record_definition(key),
                    Table::equal_on(key, "t", "k")
                ))
                .bind(Value::Array(values))
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                None => {
                    let mut n = 0;
                    for row in chunk.iter().map(|i| unkeyed_content(i)) {
                        n += sqlx::query(&format!(
                            "DELETE FROM {t} WHERE ctid = (SELECT ctid FROM {t} x
                             WHERE to_jsonb(x) = $1 LIMIT 1)",
                            t = table.sql_name()
                        ))
                        .bind(row)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                    n
                }
            };
            count += done as i64;
        }
        deleted.push((table.qualified(), count));
    }
    tx.commit().await?;
    deleted.reverse();
    Ok(Undone { deleted, gone })
}

/// The rows of `identities` of `table`, as JSON.
async fn fetch_rows(
    conn: &mut PgConnection,
    table: &Table,
    identities: &[String],
) -> Result<Vec<Value>> {
    let Some(key) = &table.key else {
        return Ok(identities.iter().map(|i| unkeyed_content(i)).collect());
    };
    let keys: Vec<Value> = identities
        .iter()
        .map(|i| serde_json::from_str(i).unwrap_or(Value::Null))
        .collect();
    Ok(sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t) FROM {} t JOIN jsonb_to_recordset($1) AS {} ON {}",
        table.sql_name(),
        table.record_definition(key),
        Table::equal_on(key, "t", "k")
    ))
    .bind(Value::Array(keys))
    .fetch_all(&mut *conn)
    .await?)
}
