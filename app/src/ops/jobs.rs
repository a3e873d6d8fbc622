//! What is running: the operation lock, jobs, and forcing the lock free.

use super::JobId;
use crate::error::AppError;
use crate::models::{JobInfo, OperationStatus, ReleasedLock};
use crate::ssr::{AdminUser, AppState};

/// The lock, its job (or the most recent one), maintenance mode, undo.
pub async fn operation_status(
    state: &AppState,
    _admin: &AdminUser,
) -> Result<OperationStatus, AppError> {
    Ok(state.engine.operation_status().await?.into())
}

/// One job with its phase, progress and message; 404 if there is none.
pub async fn job(state: &AppState, _admin: &AdminUser, id: JobId) -> Result<JobInfo, AppError> {
    Ok(state.engine.job(id.get()).await?.into())
}

/// Releases the operation lock whoever holds it (audited), and says what
/// was released.
pub async fn release_lock(state: &AppState, admin: &AdminUser) -> Result<ReleasedLock, AppError> {
    let released = state.engine.force_release_lock(&admin.actor()).await?;
    Ok(released.into())
}
