//! What the LMS database holds right now: name, size, server version and, per
//! table, the exact row count and size on disk.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::postgres::databases::quote_ident;
use crate::Result;

/// A snapshot of the LMS database for the overview card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseOverview {
    pub database: String,
    pub size_bytes: i64,
    pub server_version: String,
    pub tables: Vec<TableStats>,
}

/// One LMS table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableStats {
    pub schema: String,
    pub name: String,
    /// Exact, from `count(*)`.
    pub rows: i64,
    /// Heap, indexes and TOAST.
    pub size_bytes: i64,
}

/// Reads the overview in one REPEATABLE READ transaction, so every count
/// describes the same moment.
pub async fn database_overview(lms: &PgPool) -> Result<DatabaseOverview> {
    let mut tx = lms.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (database, size_bytes, server_version): (String, i64, String) = sqlx::query_as(
        "SELECT current_database(), pg_database_size(current_database()), current_setting('server_version')",
    )
    .fetch_one(&mut *tx)
    .await?;
    let listed: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg_toast%'
           AND c.relname <> '_sqlx_migrations'
         ORDER BY n.nspname, c.relname",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut tables = Vec::with_capacity(listed.len());
    for (schema, name, size_bytes) in listed {
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.{}",
            quote_ident(&schema),
            quote_ident(&name)
        ))
        .fetch_one(&mut *tx)
        .await?;
        tables.push(TableStats {
            schema,
            name,
            rows,
            size_bytes,
        });
    }
    tx.commit().await?;
    Ok(DatabaseOverview {
        database,
        size_bytes,
        server_version,
        tables,
    })
}
