//! Restoring a backup over the LMS database, and undoing the last restore.
//! Both replace live data, so both need an explicit confirmation.

use super::{BackupId, Confirmation};
use crate::error::AppError;
use crate::models::JobInfo;
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
