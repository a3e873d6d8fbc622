//! The backup catalog: create, list, read, delete, upload, and the catalog
//! held against the backup directory's files (downloads are in
//! `downloads`).

use lms_backup::backup::BackupRequest;
use lms_types::BackupKind;
use tokio::io::AsyncRead;

use super::{BackupId, NewBackup, Paging, UploadName};
use crate::error::AppError;
use crate::models::{
    BackupComparison, BackupDetail, BackupList, BackupSummary, FileCheck, StartedBackup,
};
use crate::ssr::{AdminUser, AppState};

/// Starts a manual backup and returns at once with its job. Busy (409) while
/// another operation runs; rate-limited per administrator (429).
pub async fn create_backup(
    state: &AppState,
    admin: &AdminUser,
    input: NewBackup,
) -> Result<StartedBackup, AppError> {
    let actor = admin.actor();
    let started = state
        .engine
        .start_backup(BackupRequest {
            actor: &actor,
            notes: input.notes.as_deref(),
            kind: BackupKind::Manual,
        })
        .await?;
    Ok(started.into())
}

/// A page of the catalog, newest first.
pub async fn list_backups(
    state: &AppState,
    _admin: &AdminUser,
    paging: Paging,
) -> Result<BackupList, AppError> {
    let Paging { skip, limit } = paging.clamped();
    Ok(lms_backup::catalog::list(&state.dbs().control, skip, limit)
        .await?
        .into())
}

/// One backup with its manifest.
pub async fn get_backup(
    state: &AppState,
    _admin: &AdminUser,
    id: BackupId,
) -> Result<BackupDetail, AppError> {
    Ok(lms_backup::catalog::get(&state.dbs().control, id.get())
        .await?
        .into())
}

/// Two backups compared table by table from their manifests alone (no
/// restore); 422 when one has no record of its tables yet.
pub async fn compare_backups(
    state: &AppState,
    _admin: &AdminUser,
    a: BackupId,
    b: BackupId,
) -> Result<BackupComparison, AppError> {
    Ok(
        lms_backup::catalog::compare::compare(&state.dbs().control, a.get(), b.get())
            .await?
            .into(),
    )
}

/// Deletes a backup's files and catalog row (audited); 409 while another
/// operation runs or the backup is still being written.
pub async fn delete_backup(
    state: &AppState,
    admin: &AdminUser,
    id: BackupId,
) -> Result<(), AppError> {
    state.engine.delete_backup(id.get(), &admin.actor()).await?;
    Ok(())
}

/// Imports an archive made elsewhere, read from `archive` (at most
/// `MAX_BACKUP_SIZE`; `declared_len` refuses a larger one before reading).
/// The new backup is of kind `uploaded`.
pub async fn upload_backup(
    state: &AppState,
    admin: &AdminUser,
    archive: impl AsyncRead + Unpin + Send + 'static,
    declared_len: Option<u64>,
    original_name: Option<UploadName>,
) -> Result<BackupSummary, AppError> {
    let backup = state
        .engine
        .import_upload(
            archive,
            declared_len,
            original_name.as_ref().map(UploadName::get),
            &admin.actor(),
        )
        .await?;
    Ok(backup.into())
}

/// Holds the catalog against the backup directory (audited under the
/// administrator): missing backups whose file is back intact are completed
/// again, completed ones whose file is gone are marked missing. 503 while
/// the directory itself cannot be used.
pub async fn recheck_backups(state: &AppState, admin: &AdminUser) -> Result<FileCheck, AppError> {
    Ok(state
        .engine
        .check_backup_files(&admin.actor())
        .await?
        .into())
}

/// Lists again the backups whose manifests are in the off-site bucket and
/// not in the catalog (a new host); audited, one entry each.
pub async fn import_from_offsite(
    state: &AppState,
    admin: &AdminUser,
) -> Result<crate::models::OffsiteImport, AppError> {
    let report = state.engine.import_from_offsite(&admin.actor()).await?;
    Ok(crate::models::OffsiteImport {
        imported: report.imported.len(),
        already_listed: report.already_listed,
        refused: report
            .refused
            .into_iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect(),
    })
}
