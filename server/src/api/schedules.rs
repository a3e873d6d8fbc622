//! `/api/admin/schedules`: schedules over REST, administrators only; the
//! same operations as the console's and the CLI's, with the same checks
//! and audit.

use app::error::AppError;
use app::models::{ScheduleForm, ScheduleList, SchedulePreview, ScheduleView};
use app::ops;
use app::ssr::{AdminUser, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.get_in_maintenance("/api/admin/schedules", list)
        .post("/api/admin/schedules", save)
        .post("/api/admin/schedules/preview", preview)
        .delete("/api/admin/schedules/{name}", remove)
}

/// `GET /api/admin/schedules` → `{server_zone, schedules}`.
async fn list(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<ScheduleList>, AppError> {
    Ok(Json(ops::list_schedules(&state, &admin).await?))
}

/// The expression and zone to preview.
#[derive(Deserialize)]
struct PreviewRequest {
    cron: String,
    #[serde(default)]
    timezone: Option<String>,
}

/// `POST /api/admin/schedules/preview {cron, timezone?}` → the next five due
/// times (`at`, and `in_zone` as the zone reads them); 422 naming the field.
async fn preview(
    admin: AdminUser,
    State(state): State<AppState>,
    body: Result<Json<PreviewRequest>, JsonRejection>,
) -> Result<Json<SchedulePreview>, AppError> {
    let request = super::json_body(body)?;
    Ok(Json(
        ops::preview_schedule(&state, &admin, &request.cron, request.timezone.as_deref()).await?,
    ))
}

/// `POST /api/admin/schedules {original?, name, cron, timezone?, notes_template?,
/// enabled, rpo_minutes?, policy: {keep_last, …}}` → 200 the schedule, added
/// (no `original`) or changed; 422 naming the field; 409 for a name taken.
async fn save(
    admin: AdminUser,
    State(state): State<AppState>,
    body: Result<Json<ScheduleForm>, JsonRejection>,
) -> Result<Json<ScheduleView>, AppError> {
    let form = super::json_body(body)?;
    Ok(Json(ops::save_schedule(&state, &admin, form).await?))
}

/// `DELETE /api/admin/schedules/{name}` → 204; 404 unknown. Its backups stay.
async fn remove(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    ops::remove_schedule(&state, &admin, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
