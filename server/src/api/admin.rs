//! `/api/admin/*`: administrators only. Each handler takes [`AdminUser`],
//! which answers 401/403 before the handler body runs.

use app::error::AppError;
use app::models::{BackupList, DatabaseOverview};
use app::ssr::{AdminUser, AppState};
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.get("/api/admin/database/overview", overview)
        .get("/api/admin/backup/list", list_backups)
}

/// `GET /api/admin/database/overview`: the LMS database right now.
async fn overview(
    _admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<DatabaseOverview>, AppError> {
    Ok(Json(
        lms_backup::overview::database_overview(&state.dbs.lms)
            .await?
            .into(),
    ))
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    skip: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    20
}

/// `GET /api/admin/backup/list?skip=&limit=`: `{backups, total}`, newest first.
async fn list_backups(
    _admin: AdminUser,
    State(state): State<AppState>,
    paging: Result<Query<Paging>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BackupList>, AppError> {
    let Query(paging) =
        paging.map_err(|_| AppError::BadRequest("skip and limit must be whole numbers".into()))?;
    Ok(Json(
        lms_backup::catalog::list(&state.dbs.control, paging.skip, paging.limit)
            .await?
            .into(),
    ))
}
