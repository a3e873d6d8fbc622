//! What the console shows at a glance: the LMS database, the stored
//! backups, the audit log.

use super::{ActivityFilter, ActivityLimit};
use crate::error::AppError;
use crate::models::{ActivityEntry, DatabaseOverview, StorageSummary};
use crate::ssr::{AdminUser, AppState};

/// The LMS database right now: name, size, version, tables with row counts.
pub async fn database_overview(
    state: &AppState,
    _admin: &AdminUser,
) -> Result<DatabaseOverview, AppError> {
    Ok(
        lms_backup::postgres::overview::database_overview(&state.dbs().lms)
            .await?
            .into(),
    )
}

/// The stored backups: count, bytes, free space, the last one, and the
/// configured limits the console's forms follow.
pub async fn storage_summary(
    state: &AppState,
    admin: &AdminUser,
) -> Result<StorageSummary, AppError> {
    let summary = state.engine.storage_summary().await?;
    let next = state.engine.next_manual_backup_at(&admin.actor()).await?;
    Ok(StorageSummary::new(summary, state.engine.config(), next))
}

/// The most recent audited actions, newest first.
pub async fn recent_activity(
    state: &AppState,
    _admin: &AdminUser,
    limit: ActivityLimit,
    filter: ActivityFilter,
) -> Result<Vec<ActivityEntry>, AppError> {
    let entries =
        lms_backup::audit::recent(&state.dbs().control, limit.get(), filter.get()).await?;
    Ok(entries.into_iter().map(Into::into).collect())
}

/// How backups stand against their schedules' recovery point objectives.
pub async fn backup_health(
    state: &AppState,
    _admin: &AdminUser,
) -> Result<crate::models::BackupHealth, AppError> {
    Ok(state.engine.backup_health(chrono::Utc::now()).await?.into())
}
