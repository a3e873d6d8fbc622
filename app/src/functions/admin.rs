use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{
    ActivityEntry, ActivityKind, BackupHealth, BackupList, DatabaseOverview, StorageSummary,
};
#[cfg(feature = "ssr")]
use crate::{ops, ssr::as_admin};

/// The LMS database right now: name, size, version, tables with row counts.
#[server(prefix = "/api/fn", endpoint = "database_overview", input = Json)]
pub async fn get_database_overview() -> Result<DatabaseOverview, AppError> {
    as_admin(|state, admin| async move { ops::database_overview(&state, &admin).await }).await
}

/// A page of the backup catalog, newest first.
#[server(prefix = "/api/fn", endpoint = "list_backups", input = Json)]
pub async fn list_backups(skip: i64, limit: i64) -> Result<BackupList, AppError> {
    as_admin(|state, admin| async move {
        ops::list_backups(&state, &admin, ops::Paging { skip, limit }).await
    })
    .await
}

/// The stored backups at a glance: count, bytes, free space, the last one.
#[server(prefix = "/api/fn", endpoint = "storage_summary", input = Json)]
pub async fn get_storage_summary() -> Result<StorageSummary, AppError> {
    as_admin(|state, admin| async move { ops::storage_summary(&state, &admin).await }).await
}

/// How backups stand against their schedules' recovery point objectives
/// (the console's health banner).
#[server(prefix = "/api/fn", endpoint = "backup_health", input = Json)]
pub async fn get_backup_health() -> Result<BackupHealth, AppError> {
    as_admin(|state, admin| async move { ops::backup_health(&state, &admin).await }).await
}

/// The most recent audited actions, newest first (at most 100); only those
/// of `kind` and by `person` when given.
#[server(prefix = "/api/fn", endpoint = "recent_activity", input = Json)]
pub async fn recent_activity(
    limit: i64,
    #[server(default)] kind: Option<ActivityKind>,
    #[server(default)] person: Option<String>,
) -> Result<Vec<ActivityEntry>, AppError> {
    as_admin(|state, admin| async move {
        let filter = ops::ActivityFilter::new(kind, person)?;
        ops::recent_activity(&state, &admin, limit.into(), filter).await
    })
    .await
}
