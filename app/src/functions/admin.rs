use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{ActivityEntry, BackupList, DatabaseOverview, StorageSummary};

/// The LMS database right now: name, size, version, tables with row counts.
#[server(prefix = "/api/fn", endpoint = "database_overview", input = Json)]
pub async fn get_database_overview() -> Result<DatabaseOverview, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            Ok(
                lms_backup::postgres::overview::database_overview(&state.dbs().lms)
                    .await?
                    .into(),
            )
        }
        .await,
    )
}

/// A page of the backup catalog, newest first.
#[server(prefix = "/api/fn", endpoint = "list_backups", input = Json)]
pub async fn list_backups(skip: i64, limit: i64) -> Result<BackupList, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            Ok(lms_backup::catalog::list(&state.dbs().control, skip, limit)
                .await?
                .into())
        }
        .await,
    )
}

/// The stored backups at a glance: count, bytes, free space, the last one.
#[server(prefix = "/api/fn", endpoint = "storage_summary", input = Json)]
pub async fn get_storage_summary() -> Result<StorageSummary, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            Ok(state.engine.storage_summary().await?.into())
        }
        .await,
    )
}

/// The most recent audited actions, newest first (at most 100).
#[server(prefix = "/api/fn", endpoint = "recent_activity", input = Json)]
pub async fn recent_activity(limit: i64) -> Result<Vec<ActivityEntry>, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            let entries =
                lms_backup::audit::recent(&state.dbs().control, limit.clamp(1, 100)).await?;
            Ok(entries.into_iter().map(Into::into).collect())
        }
        .await,
    )
}
