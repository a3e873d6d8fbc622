//! `/api/admin/backup/preview`, `/recover`: Preview changes (a backup
//! restored into a prepared copy and compared with the live database), the
//! switch to that copy, and record recovery from it with its undo.
//! Administrators only; each handler calls one operation of [`app::ops`].

use app::error::AppError;
use app::models::{JobInfo, Preview, RecoveryPlan, RecoveryRecord};
use app::ops::{self, Confirmation, RecordInput};
use app::ssr::{AdminUser, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.get_in_maintenance("/api/admin/backup/preview", preview)
        .delete("/api/admin/backup/preview", discard)
        .post("/api/admin/backup/preview/switch", switch)
        .post("/api/admin/backup/{id}/preview", start_preview)
        .post("/api/admin/backup/recover/plan", plan)
        .post("/api/admin/backup/recover/undo", undo)
        .post("/api/admin/backup/recover", recover)
        .get_in_maintenance("/api/admin/backup/recoveries", recoveries)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("The body is not the JSON expected: {e}")))
}

/// `POST /api/admin/backup/{id}/preview` → 202 job: the backup restored into
/// a prepared copy (replacing any earlier one) and compared with the live
/// database; 404 unknown, 409 busy, 422 when a gate refuses.
async fn start_preview(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobInfo>), AppError> {
    let job = ops::preview_backup(&state, &admin, id.parse()?).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `GET /api/admin/backup/preview` → the prepared copy (its database name,
/// backup, expiry) and, per table, the rows added, deleted and changed
/// since the backup; 404 when there is none.
async fn preview(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<Preview>, AppError> {
    ops::preview(&state, &admin)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound("There is no prepared copy.".into()))
}

/// `DELETE /api/admin/backup/preview` → 204: the prepared copy dropped; 409
/// busy, 422 when there is none.
async fn discard(admin: AdminUser, State(state): State<AppState>) -> Result<StatusCode, AppError> {
    ops::discard_preview(&state, &admin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/backup/preview/switch {"confirm": true}` → 202 job: the
/// prepared copy switched in (maintenance for a moment, undoable like a
/// restore); 400 without confirmation, 409 busy, 422 with no prepared copy.
async fn switch(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobInfo>), AppError> {
    let confirmation: Confirmation = serde_json::from_slice(&body).unwrap_or_default();
    let job = ops::switch_to_prepared(&state, &admin, confirmation).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `POST /api/admin/backup/recover/plan {"table", "key"}` → 200 the plan:
/// rows to insert per table (in order), rows left alone (unchanged or
/// changed since), blockers; nothing changes. 409 busy, 422 unknown table
/// or key, or no prepared copy.
async fn plan(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<RecoveryPlan>, AppError> {
    let input: RecordInput = json_body(&body)?;
    Ok(Json(ops::plan_recovery(&state, &admin, input).await?))
}

/// `POST /api/admin/backup/recover {"table", "key", "confirm": true,
/// "expect_rows"?}` → 202 job: the plan carried out in one transaction; 400
/// without confirmation, 409 busy, 422 unknown table or key.
async fn recover(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobInfo>), AppError> {
    let input: RecordInput = json_body(&body)?;
    let job = ops::recover_records(&state, &admin, input).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `POST /api/admin/backup/recover/undo {"confirm": true, "job_id"?}` → 202
/// job: the rows of that recovery (the newest without it) deleted again;
/// the job fails, naming the row, when one changed since.
async fn undo(
    admin: AdminUser,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<JobInfo>), AppError> {
    #[derive(serde::Deserialize, Default)]
    struct UndoBody {
        #[serde(default)]
        confirm: bool,
        job_id: Option<String>,
    }
    let asked: UndoBody = serde_json::from_slice(&body).unwrap_or_default();
    let job = asked.job_id.map(|j| j.parse()).transpose()?;
    let job = ops::undo_recovery(
        &state,
        &admin,
        job,
        Confirmation {
            confirm: asked.confirm,
        },
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// `GET /api/admin/backup/recoveries` → the newest record recoveries.
async fn recoveries(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<RecoveryRecord>>, AppError> {
    Ok(Json(ops::list_recoveries(&state, &admin).await?))
}
