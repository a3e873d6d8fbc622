//! Restoring a backup over the LMS database, and undoing the last restore.
//! Both replace live data, so both need an explicit confirmation. Before
//! either, who could sign in afterwards.

use super::{BackupId, Confirmation};
use crate::error::AppError;
use crate::models::{BackupAdministrators, JobInfo, LastSwitch};
use crate::ssr::{AdminUser, AppState};

/// Starts restoring backup `id`: 400 without confirmation, 404 unknown, 409
/// busy, 422 when a gate refuses (checksum, archive version, permissions).
pub async fn restore_backup(
    state: &AppState,
    admin: &AdminUser,
    id: BackupId,
    confirmation: Confirmation,
) -> Result<JobInfo, AppError> {
    confirmation.require()?;
    let job = state
        .engine
        .start_restore(id.get(), true, &admin.actor())
        .await?;
    Ok(job.into())
}

/// Starts a restore drill of backup `id` (the newest verified one with
/// `None`): restored into a scratch database, checked and dropped; the live
/// database is never touched. 409 busy, 422 when there is nothing to drill.
pub async fn drill_backup(
    state: &AppState,
    admin: &AdminUser,
    id: Option<BackupId>,
) -> Result<JobInfo, AppError> {
    let job = state
        .engine
        .start_drill(id.map(BackupId::get), &admin.actor())
        .await?;
    Ok(job.into())
}

/// Starts swapping the database from before the last restore back in: 400
/// without confirmation, 409 busy, 422 when there is nothing to go back to.
pub async fn undo_restore(
    state: &AppState,
    admin: &AdminUser,
    confirmation: Confirmation,
) -> Result<JobInfo, AppError> {
    confirmation.require()?;
    let job = state.engine.start_undo(true, &admin.actor()).await?;
    Ok(job.into())
}

/// The administrators backup `id` holds and what restoring it would do to
/// who can sign in, the asking administrator first: 404 unknown, 422 when
/// the backup is not completed, its file is missing or changed, or it has
/// no readable users table.
pub async fn backup_administrators(
    state: &AppState,
    admin: &AdminUser,
    id: BackupId,
) -> Result<BackupAdministrators, AppError> {
    let you = admin.user().map(|u| u.username.as_str()).ok_or_else(|| {
        AppError::Forbidden("Only a signed-in administrator can ask this.".into())
    })?;
    let seen = state
        .engine
        .admins_after_restore(id.get(), Some(you))
        .await?;
    Ok(BackupAdministrators::new(seen, you))
}

/// The restore (or undo) an undo would reverse: which backup, who, when;
/// `None` when none has completed.
pub async fn last_restore(
    state: &AppState,
    _admin: &AdminUser,
) -> Result<Option<LastSwitch>, AppError> {
    let Some(job) = state.engine.last_switch().await? else {
        return Ok(None);
    };
    let backup = match job.backup_id {
        // A backup deleted since is named by its id alone.
        Some(id) => match lms_backup::catalog::get(&state.dbs().control, id).await {
            Ok(detail) => Some(detail.backup.filename),
            Err(lms_backup::Error::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(Some(LastSwitch {
        kind: job.kind,
        backup,
        restored_by: job.started_by_name,
        restored_at: job.finished_at.unwrap_or(job.created_at),
    }))
}
