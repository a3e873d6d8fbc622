use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{BackupDetail, JobInfo, OperationStatus, StartedBackup};

/// Starts a manual backup (202-like: returns at once with the job).
#[server(prefix = "/api/fn", endpoint = "create_backup", input = Json)]
pub async fn create_backup(notes: Option<String>) -> Result<StartedBackup, AppError> {
    use crate::models::BackupKind;
    use crate::ssr::*;
    use lms_backup::backup::BackupRequest;
    with_status(
        async {
            let (state, admin) = admin_from_context().await?;
            let actor = admin.actor();
            let request = BackupRequest {
                actor: &actor,
                notes: notes.as_deref(),
                kind: BackupKind::Manual,
            };
            Ok(state.engine.start_backup(request).await?.into())
        }
        .await,
    )
}

/// One backup with its manifest.
#[server(prefix = "/api/fn", endpoint = "get_backup", input = Json)]
pub async fn get_backup(id: i64) -> Result<BackupDetail, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            Ok(lms_backup::catalog::get(&state.dbs().control, id)
                .await?
                .into())
        }
        .await,
    )
}

/// Deletes a backup (refused while another operation runs).
#[server(prefix = "/api/fn", endpoint = "delete_backup", input = Json)]
pub async fn delete_backup(id: i64) -> Result<(), AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, admin) = admin_from_context().await?;
            state.engine.delete_backup(id, &admin.actor()).await?;
            Ok(())
        }
        .await,
    )
}

/// What is running right now, and who started it.
#[server(prefix = "/api/fn", endpoint = "operation_status", input = Json)]
pub async fn get_operation_status() -> Result<OperationStatus, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            Ok(state.engine.operation_status().await?.into())
        }
        .await,
    )
}

/// One job and its progress.
#[server(prefix = "/api/fn", endpoint = "get_job", input = Json)]
pub async fn get_job(id: String) -> Result<JobInfo, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            let id = id
                .parse()
                .map_err(|_| AppError::NotFound("job not found".into()))?;
            Ok(state.engine.job(id).await?.into())
        }
        .await,
    )
}

/// Releases the operation lock whoever holds it (audited).
#[server(prefix = "/api/fn", endpoint = "release_lock", input = Json)]
pub async fn release_lock() -> Result<(), AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, admin) = admin_from_context().await?;
            state.engine.force_release_lock(&admin.actor()).await?;
            Ok(())
        }
        .await,
    )
}

/// Starts restoring a backup over the LMS database. `confirm` must be true.
#[server(prefix = "/api/fn", endpoint = "restore_backup", input = Json)]
pub async fn restore_backup(id: i64, confirm: bool) -> Result<JobInfo, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, admin) = admin_from_context().await?;
            Ok(state
                .engine
                .start_restore(id, confirm, &admin.actor())
                .await?
                .into())
        }
        .await,
    )
}

/// Swaps the database from before the last restore back in. `confirm` must be true.
#[server(prefix = "/api/fn", endpoint = "undo_restore", input = Json)]
pub async fn undo_restore(confirm: bool) -> Result<JobInfo, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, admin) = admin_from_context().await?;
            Ok(state
                .engine
                .start_undo(confirm, &admin.actor())
                .await?
                .into())
        }
        .await,
    )
}
