//! The backup catalog (`backup_history` in the control database). A row is
//! `running` while its archive is written, `completed` once the archive has
//! been verified and its manifest written, `failed` otherwise, and `missing`
//! when its file is found gone from a backup directory that is otherwise
//! there (and `completed` again once the same file is back).

use chrono::{DateTime, Utc};
use lms_types::{BackupKind, BackupStatus, OffsiteState};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::audit::Actor;
use crate::storage::Manifest;
use crate::{Error, Result};

pub mod compare;

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Backup {
    pub id: i64,
    pub filename: String,
    pub kind: BackupKind,
    pub status: BackupStatus,
    /// Size and SHA-256 of its file as kept in the backup directory (the
    /// encrypted file's, when it is kept encrypted; the manifest has the
    /// plain archive's too).
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub notes: Option<String>,
    /// An upload's file name on the uploader's machine.
    pub original_name: Option<String>,
    pub created_by_id: Option<i64>,
    pub created_by_name: String,
    pub job_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The schedule that made it, while that schedule exists.
    pub schedule_id: Option<i64>,
    /// Why it is pinned (kept whatever retention says), if it is.
    pub pinned_reason: Option<String>,
    pub pinned_by_name: Option<String>,
    pub pinned_at: Option<DateTime<Utc>>,
    /// Where its off-site copy is (`None`: no target, or not a stored backup).
    pub offsite_state: Option<OffsiteState>,
    /// Why the last off-site attempt failed, in words.
    pub offsite_error: Option<String>,
    pub offsite_verified_at: Option<DateTime<Utc>>,
    /// Its newest restore drill: when it ended, whether it restored, and
    /// the recovery time it measured.
    pub drilled_at: Option<DateTime<Utc>>,
    pub drill_succeeded: Option<bool>,
    pub drill_ms: Option<i64>,
}

/// A catalog entry with its manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupDetail {
    #[serde(flatten)]
    pub backup: Backup,
    pub manifest: Option<Manifest>,
}

/// A page of the catalog, newest first, with the total count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupPage {
    pub backups: Vec<Backup>,
    pub total: i64,
}

/// Largest page a caller may ask for.
pub const MAX_PAGE: i64 = 200;

const COLUMNS: &str =
    "id, filename, kind, status, size_bytes, sha256, notes, original_name, created_by_id,
    created_by_name, job_id, created_at, completed_at, schedule_id, pinned_reason,
    pinned_by_name, pinned_at, offsite_state, offsite_error, offsite_verified_at,
    (SELECT d.finished_at FROM restore_drills d WHERE d.backup_id = backup_history.id
      ORDER BY d.finished_at DESC LIMIT 1) AS drilled_at,
    (SELECT d.succeeded FROM restore_drills d WHERE d.backup_id = backup_history.id
      ORDER BY d.finished_at DESC LIMIT 1) AS drill_succeeded,
    (SELECT d.duration_ms FROM restore_drills d WHERE d.backup_id = backup_history.id
      ORDER BY d.finished_at DESC LIMIT 1) AS drill_ms";

/// The catalog at a glance: how many backups are stored, how much they
/// take, and the newest one taken that has finished (completed or failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogStats {
    /// Completed backups (the ones on disk); running, failed and missing
    /// entries are not stored backups.
    pub count: i64,
    /// Bytes of the archives that are on disk (completed backups).
    pub stored_bytes: i64,
    pub last_finished: Option<Backup>,
    /// When the data of `last_finished` was taken (for an upload, the
    /// archive's own time, not the upload's).
    pub last_taken_at: Option<DateTime<Utc>>,
}

/// When an entry's data was taken: an uploaded archive's own creation time
/// when its manifest knows it, else when the entry was created.
const TAKEN_AT: &str = "coalesce((manifest->>'taken_at')::timestamptz, created_at)";

/// Counts and sums the catalog.
pub async fn stats(control: &PgPool) -> Result<CatalogStats> {
    let (count, stored_bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(size_bytes), 0)::bigint
         FROM backup_history WHERE status = $1",
    )
    .bind(BackupStatus::Completed)
    .fetch_one(control)
    .await?;
    let last: Option<(i64, DateTime<Utc>)> = sqlx::query_as(&format!(
        "SELECT id, {TAKEN_AT} FROM backup_history WHERE status = ANY($1)
         ORDER BY {TAKEN_AT} DESC, id DESC LIMIT 1"
    ))
    .bind([BackupStatus::Completed, BackupStatus::Failed])
    .fetch_optional(control)
    .await?;
    let (last_finished, last_taken_at) = match last {
        Some((id, taken)) => (Some(get_row(control, id).await?), Some(taken)),
        None => (None, None),
    };
    Ok(CatalogStats {
        count,
        stored_bytes,
        last_finished,
        last_taken_at,
    })
}

/// The completed entry whose archive has this SHA-256, if any (as kept, or
/// as the plain archive of one kept encrypted).
pub async fn with_sha256(control: &PgPool, sha256: &str) -> Result<Option<Backup>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM backup_history
         WHERE status = $1 AND (sha256 = $2 OR manifest->>'sha256' = $2)
         ORDER BY id LIMIT 1"
    ))
    .bind(BackupStatus::Completed)
    .bind(sha256)
    .fetch_optional(control)
    .await?)
}

/// Lists backups newest first. `limit` is clamped to 1..=[`MAX_PAGE`].
pub async fn list(control: &PgPool, skip: i64, limit: i64) -> Result<BackupPage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let skip = skip.max(0);
    let backups = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM backup_history ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT $2"
    ))
    .bind(skip)
    .bind(limit)
    .fetch_all(control)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM backup_history")
        .fetch_one(control)
        .await?;
    Ok(BackupPage { backups, total })
}

/// One backup with its manifest; [`Error::NotFound`] if there is none.
pub async fn get(control: &PgPool, id: i64) -> Result<BackupDetail> {
    let row: Option<(sqlx::types::Json<Option<Manifest>>,)> = sqlx::query_as(
        "SELECT coalesce(manifest, 'null'::jsonb) FROM backup_history WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(control)
    .await?;
    let Some((manifest,)) = row else {
        return Err(Error::NotFound("backup".into()));
    };
    let backup = get_row(control, id).await?;
    Ok(BackupDetail {
        backup,
        manifest: manifest.0,
    })
}

/// One catalog row.
pub async fn get_row<'e>(db: impl PgExecutor<'e>, id: i64) -> Result<Backup> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM backup_history WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| Error::NotFound("backup".into()))
}

/// Whether a file name is already in the catalog.
pub async fn name_taken<'e>(db: impl PgExecutor<'e>, filename: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM backup_history WHERE filename = $1)")
            .bind(filename)
            .fetch_one(db)
            .await?,
    )
}

/// What a new, still running entry records.
pub struct NewEntry<'a> {
    pub filename: &'a str,
    pub kind: BackupKind,
    pub notes: Option<&'a str>,
    pub actor: &'a Actor,
    pub job_id: Uuid,
}

/// Inserts a `running` entry.
pub async fn insert_running<'e>(db: impl PgExecutor<'e>, entry: NewEntry<'_>) -> Result<Backup> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO backup_history (filename, kind, status, notes, created_by_id, created_by_name, job_id)
         VALUES ($1, $2, $7, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(entry.filename)
    .bind(entry.kind)
    .bind(entry.notes)
    .bind(entry.actor.id)
    .bind(&entry.actor.name)
    .bind(entry.job_id)
    .bind(BackupStatus::Running)
    .fetch_one(db)
    .await?)
}

/// Marks an entry completed with its manifest (the last step of a backup).
pub async fn mark_completed(control: &PgPool, id: i64, manifest: &Manifest) -> Result<()> {
    sqlx::query(
        "UPDATE backup_history SET status = $6, size_bytes = $2, sha256 = $3,
                manifest = $4, completed_at = $5
         WHERE id = $1",
    )
    .bind(id)
    .bind(manifest.stored().0 as i64)
    .bind(manifest.stored().1)
    .bind(sqlx::types::Json(manifest))
    .bind(manifest.completed_at)
    .bind(BackupStatus::Completed)
    .execute(control)
    .await?;
    Ok(())
}

/// Replaces an entry's manifest, and the size and SHA-256 of its file as
/// kept (a file fetched back and kept encrypted).
pub async fn set_manifest(control: &PgPool, id: i64, manifest: &Manifest) -> Result<()> {
    let (size, sha256) = manifest.stored();
    sqlx::query(
        "UPDATE backup_history SET size_bytes = $2, sha256 = $3, manifest = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(size as i64)
    .bind(sha256)
    .bind(sqlx::types::Json(manifest))
    .execute(control)
    .await?;
    Ok(())
}

/// Sets an entry's status (`failed`, `missing`).
pub async fn set_status<'e>(db: impl PgExecutor<'e>, id: i64, status: BackupStatus) -> Result<()> {
    sqlx::query("UPDATE backup_history SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(db)
        .await?;
    Ok(())
}

/// Moves an entry from one status to another, if it still has the first
/// (several processes may look at the same files at once). True when this
/// call changed it.
pub async fn change_status<'e>(
    db: impl PgExecutor<'e>,
    id: i64,
    from: BackupStatus,
    to: BackupStatus,
) -> Result<bool> {
    let changed =
        sqlx::query("UPDATE backup_history SET status = $3 WHERE id = $1 AND status = $2")
            .bind(id)
            .bind(from)
            .bind(to)
            .execute(db)
            .await?
            .rows_affected();
    Ok(changed == 1)
}

/// How many entries the catalog has, whatever their status.
pub async fn count_all(control: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM backup_history")
        .fetch_one(control)
        .await?)
}

/// How many entries have the given status.
pub async fn count_with_status(control: &PgPool, status: BackupStatus) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM backup_history WHERE status = $1")
            .bind(status)
            .fetch_one(control)
            .await?,
    )
}

/// How many entries are missing their file here but have a verified
/// off-site copy.
pub async fn count_missing_kept_offsite(control: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM backup_history WHERE status = $1 AND offsite_state = $2",
    )
    .bind(BackupStatus::Missing)
    .bind(OffsiteState::Verified)
    .fetch_one(control)
    .await?)
}

/// How many entries have (or had) a file in the backup directory: the
/// completed and the missing ones.
pub async fn count_stored(control: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM backup_history WHERE status = ANY($1)")
            .bind([BackupStatus::Completed, BackupStatus::Missing])
            .fetch_one(control)
            .await?,
    )
}

/// Removes an entry.
pub async fn delete_row<'e>(db: impl PgExecutor<'e>, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM backup_history WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Every entry, newest first (what retention decides on).
pub async fn all(control: &PgPool) -> Result<Vec<Backup>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM backup_history ORDER BY created_at DESC, id DESC"
    ))
    .fetch_all(control)
    .await?)
}

/// Pins an entry (`Some(reason)`) or unpins it (`None`). Waits for a
/// retention pass that is deleting it (it holds the row) and then finds it
/// gone: a pin never lands on a backup retention is removing.
pub async fn set_pin(control: &PgPool, id: i64, pin: Option<(&str, &Actor)>) -> Result<Backup> {
    sqlx::query_as(&format!(
        "UPDATE backup_history
         SET pinned_reason = $2, pinned_by_name = $3,
             pinned_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(pin.map(|(reason, _)| reason))
    .bind(pin.map(|(_, actor)| actor.name.as_str()))
    .fetch_optional(control)
    .await?
    .ok_or_else(|| Error::NotFound("backup".into()))
}

/// Every entry with the given status, newest first.
pub async fn with_status(control: &PgPool, status: BackupStatus) -> Result<Vec<Backup>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM backup_history WHERE status = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(status)
    .fetch_all(control)
    .await?)
}

/// Re-creates a completed entry from a sidecar manifest (catalog rebuilt
/// from disk).
pub async fn import<'e>(control: impl PgExecutor<'e>, manifest: &Manifest) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO backup_history (filename, kind, status, size_bytes, sha256, manifest, notes,
                                     created_by_id, created_by_name, created_at, completed_at,
                                     original_name)
         VALUES ($1, $2, $11, $3, $4, $5, $6, $7, $8, $9, $10, $12) RETURNING id",
    )
    .bind(&manifest.filename)
    .bind(manifest.kind)
    .bind(manifest.stored().0 as i64)
    .bind(manifest.stored().1)
    .bind(sqlx::types::Json(manifest))
    .bind(&manifest.notes)
    .bind(manifest.created_by_id)
    .bind(&manifest.created_by_name)
    .bind(manifest.created_at)
    .bind(manifest.completed_at)
    .bind(BackupStatus::Completed)
    .bind(&manifest.original_name)
    .fetch_one(control)
    .await?)
}
