//! The backup catalog (`backup_history` in the control database).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::Result;

/// One catalog entry.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Backup {
    pub id: i64,
    pub filename: String,
    pub kind: String,
    pub status: String,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub notes: Option<String>,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A page of the catalog, newest first, with the total count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupPage {
    pub backups: Vec<Backup>,
    pub total: i64,
}

/// Largest page a caller may ask for.
pub const MAX_PAGE: i64 = 200;

/// Lists backups newest first. `limit` is clamped to 1..=[`MAX_PAGE`].
pub async fn list(control: &PgPool, skip: i64, limit: i64) -> Result<BackupPage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let skip = skip.max(0);
    let backups = sqlx::query_as(
        "SELECT id, filename, kind, status, size_bytes, sha256, notes, created_by_name,
                created_at, completed_at
         FROM backup_history ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT $2",
    )
    .bind(skip)
    .bind(limit)
    .fetch_all(control)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM backup_history")
        .fetch_one(control)
        .await?;
    Ok(BackupPage { backups, total })
}
