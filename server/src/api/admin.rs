//! `/api/admin/*`: administrators only. Each handler takes [`AdminUser`],
//! which answers 401/403 before the handler body runs, and calls one
//! operation of [`app::ops`].

use app::error::AppError;
use app::models::DatabaseOverview;
use app::ssr::{AdminUser, AppState};
use axum::extract::State;
use axum::Json;

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.get("/api/admin/database/overview", overview)
}

/// `GET /api/admin/database/overview`: the LMS database right now.
async fn overview(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<DatabaseOverview>, AppError> {
    Ok(Json(app::ops::database_overview(&state, &admin).await?))
}
