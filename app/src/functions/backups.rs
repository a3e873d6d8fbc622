use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{
    BackupAdministrators, BackupComparison, BackupDetail, BackupSummary, FileCheck, JobInfo,
    LastSwitch, OperationStatus, ReleasedLock, RetentionProposal, RetentionReport, StartedBackup,
};
#[cfg(feature = "ssr")]
use crate::{ops, ssr::as_admin};

/// Starts a manual backup (202-like: returns at once with the job).
#[server(prefix = "/api/fn", endpoint = "create_backup", input = Json)]
pub async fn create_backup(notes: Option<String>) -> Result<StartedBackup, AppError> {
    as_admin(|state, admin| async move {
        ops::create_backup(&state, &admin, ops::NewBackup { notes }).await
    })
    .await
}

/// One backup with its manifest.
#[server(prefix = "/api/fn", endpoint = "get_backup", input = Json)]
pub async fn get_backup(id: i64) -> Result<BackupDetail, AppError> {
    as_admin(|state, admin| async move { ops::get_backup(&state, &admin, id.try_into()?).await })
        .await
}

/// Two backups compared table by table from their manifests alone.
#[server(prefix = "/api/fn", endpoint = "compare_backups", input = Json)]
pub async fn compare_backups(a: i64, b: i64) -> Result<BackupComparison, AppError> {
    as_admin(|state, admin| async move {
        ops::compare_backups(&state, &admin, a.try_into()?, b.try_into()?).await
    })
    .await
}

/// Deletes a backup (refused while another operation runs).
#[server(prefix = "/api/fn", endpoint = "delete_backup", input = Json)]
pub async fn delete_backup(id: i64) -> Result<(), AppError> {
    as_admin(|state, admin| async move { ops::delete_backup(&state, &admin, id.try_into()?).await })
        .await
}

/// Checks the backup files against the catalog: missing backups whose file
/// is back intact are completed again (audited).
#[server(prefix = "/api/fn", endpoint = "recheck_backups", input = Json)]
pub async fn recheck_backups() -> Result<FileCheck, AppError> {
    as_admin(|state, admin| async move { ops::recheck_backups(&state, &admin).await }).await
}

/// Lists again the backups in the off-site bucket the catalog does not list
/// (a new host), audited.
#[server(prefix = "/api/fn", endpoint = "import_from_offsite", input = Json)]
pub async fn import_from_offsite() -> Result<crate::models::OffsiteImport, AppError> {
    as_admin(|state, admin| async move { ops::import_from_offsite(&state, &admin).await }).await
}

/// What is running right now, and who started it.
#[server(prefix = "/api/fn", endpoint = "operation_status", input = Json)]
pub async fn get_operation_status() -> Result<OperationStatus, AppError> {
    as_admin(|state, admin| async move { ops::operation_status(&state, &admin).await }).await
}

/// One job and its progress.
#[server(prefix = "/api/fn", endpoint = "get_job", input = Json)]
pub async fn get_job(id: String) -> Result<JobInfo, AppError> {
    as_admin(|state, admin| async move { ops::job(&state, &admin, id.parse()?).await }).await
}

/// Releases the operation lock whoever holds it (audited).
#[server(prefix = "/api/fn", endpoint = "release_lock", input = Json)]
pub async fn release_lock() -> Result<ReleasedLock, AppError> {
    as_admin(|state, admin| async move { ops::release_lock(&state, &admin).await }).await
}

/// The administrators a backup holds, and whether the caller (and who
/// else) could sign in after restoring it.
#[server(prefix = "/api/fn", endpoint = "backup_administrators", input = Json)]
pub async fn get_backup_administrators(id: i64) -> Result<BackupAdministrators, AppError> {
    as_admin(|state, admin| async move {
        ops::backup_administrators(&state, &admin, id.try_into()?).await
    })
    .await
}

/// Starts restoring a backup over the LMS database. `confirm` must be true.
#[server(prefix = "/api/fn", endpoint = "restore_backup", input = Json)]
pub async fn restore_backup(id: i64, confirm: bool) -> Result<JobInfo, AppError> {
    as_admin(|state, admin| async move {
        let confirmation = ops::Confirmation { confirm };
        ops::restore_backup(&state, &admin, id.try_into()?, confirmation).await
    })
    .await
}

/// Starts a restore drill of backup `id` (the newest verified one without it).
#[server(prefix = "/api/fn", endpoint = "drill_backup", input = Json)]
pub async fn drill_backup(id: Option<i64>) -> Result<JobInfo, AppError> {
    as_admin(|state, admin| async move {
        let id = id.map(TryInto::try_into).transpose()?;
        ops::drill_backup(&state, &admin, id).await
    })
    .await
}

/// The restore (or undo) that the next undo would reverse, if any.
#[server(prefix = "/api/fn", endpoint = "last_restore", input = Json)]
pub async fn last_restore() -> Result<Option<LastSwitch>, AppError> {
    as_admin(|state, admin| async move { ops::last_restore(&state, &admin).await }).await
}

/// Swaps the database from before the last restore back in. `confirm` must be true.
#[server(prefix = "/api/fn", endpoint = "undo_restore", input = Json)]
pub async fn undo_restore(confirm: bool) -> Result<JobInfo, AppError> {
    as_admin(|state, admin| async move {
        ops::undo_restore(&state, &admin, ops::Confirmation { confirm }).await
    })
    .await
}

/// Pins a backup: retention keeps it until it is unpinned (audited).
#[server(prefix = "/api/fn", endpoint = "pin_backup", input = Json)]
pub async fn pin_backup(id: i64, reason: String) -> Result<BackupSummary, AppError> {
    as_admin(|state, admin| async move {
        ops::pin_backup(&state, &admin, id.try_into()?, ops::PinReason { reason }).await
    })
    .await
}

/// Unpins a backup: retention decides on it again (audited).
#[server(prefix = "/api/fn", endpoint = "unpin_backup", input = Json)]
pub async fn unpin_backup(id: i64) -> Result<BackupSummary, AppError> {
    as_admin(|state, admin| async move { ops::unpin_backup(&state, &admin, id.try_into()?).await })
        .await
}

/// What retention would delete now, with the policies in force or one
/// schedule's replaced by `proposal`. Changes nothing.
#[server(prefix = "/api/fn", endpoint = "retention_preview", input = Json)]
pub async fn retention_preview(
    proposal: Option<RetentionProposal>,
) -> Result<RetentionReport, AppError> {
    as_admin(|state, admin| async move { ops::retention_preview(&state, &admin, proposal).await })
        .await
}
