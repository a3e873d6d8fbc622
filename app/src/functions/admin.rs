use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{BackupList, DatabaseOverview};

/// The LMS database right now: name, size, version, tables with row counts.
#[server(prefix = "/api/fn", endpoint = "database_overview", input = Json)]
pub async fn get_database_overview() -> Result<DatabaseOverview, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, _admin) = admin_from_context().await?;
            Ok(lms_backup::overview::database_overview(&state.dbs().lms)
                .await?
                .into())
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
