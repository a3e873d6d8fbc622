//! Retention: pins, the dry run of a policy before it is saved, and a pass
//! on demand.

use super::{BackupId, PinReason};
use crate::error::AppError;
use crate::models::{BackupSummary, RetentionProposal, RetentionReport};
use crate::ssr::{AdminUser, AppState};

/// Pins a backup: retention keeps it until it is unpinned (audited).
pub async fn pin_backup(
    state: &AppState,
    admin: &AdminUser,
    id: BackupId,
    reason: PinReason,
) -> Result<BackupSummary, AppError> {
    Ok(state
        .engine
        .pin_backup(id.get(), &reason.reason, &admin.actor())
        .await?
        .into())
}

/// Unpins a backup (audited).
pub async fn unpin_backup(
    state: &AppState,
    admin: &AdminUser,
    id: BackupId,
) -> Result<BackupSummary, AppError> {
    Ok(state
        .engine
        .unpin_backup(id.get(), &admin.actor())
        .await?
        .into())
}

/// What retention would delete now, with the policies in force or with
/// one schedule's replaced by `proposal`. Changes nothing.
pub async fn retention_preview(
    state: &AppState,
    _admin: &AdminUser,
    proposal: Option<RetentionProposal>,
) -> Result<RetentionReport, AppError> {
    let proposal = proposal.map(|p| lms_backup::retention::Proposal {
        schedule: p.schedule,
        policy: p.policy,
        timezone: p.timezone,
    });
    Ok(state.engine.retention_dry_run(proposal).await?.into())
}

/// Runs a retention pass now (what follows every backup anyway), under
/// the operation lock: 409 while another operation runs.
pub async fn prune_backups(
    state: &AppState,
    admin: &AdminUser,
) -> Result<RetentionReport, AppError> {
    Ok(state.engine.prune(&admin.actor()).await?.into())
}
