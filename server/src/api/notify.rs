//! `/api/admin/channels`: notification channels over REST (the same
//! operations as the console's, with the same checks and audit). Secrets
//! are accepted, never returned.

use app::error::AppError;
use app::models::{ChannelForm, ChannelView, TestAnswer};
use app::ops;
use app::ssr::{AdminUser, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.get("/api/admin/channels", list)
        .post("/api/admin/channels", create)
        .put("/api/admin/channels/{name}", update)
        .delete("/api/admin/channels/{name}", remove)
        .post("/api/admin/channels/{name}/test", test)
}

/// `GET /api/admin/channels` → every channel, without secrets.
async fn list(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<ChannelView>>, AppError> {
    Ok(Json(ops::list_channels(&state, &admin).await?))
}

/// `POST /api/admin/channels {name, kind, …}` → 201 the channel; 422 for a
/// bad field (the message names it); 409 when the name is taken.
async fn create(
    admin: AdminUser,
    State(state): State<AppState>,
    body: Result<Json<ChannelForm>, JsonRejection>,
) -> Result<(StatusCode, Json<ChannelView>), AppError> {
    let form = super::json_body(body)?;
    Ok((
        StatusCode::CREATED,
        Json(ops::create_channel(&state, &admin, form).await?),
    ))
}

/// `PUT /api/admin/channels/{name}` → 200 the channel as changed (secrets
/// left out are kept); 409 for a channel the environment configures.
async fn update(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<ChannelForm>, JsonRejection>,
) -> Result<Json<ChannelView>, AppError> {
    let form = super::json_body(body)?;
    Ok(Json(
        ops::update_channel(&state, &admin, &name, form).await?,
    ))
}

/// `DELETE /api/admin/channels/{name}` → 204.
async fn remove(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    ops::delete_channel(&state, &admin, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/channels/{name}/test` → 200 `{delivered, answer}`: the
/// receiver's answer (status code, SMTP reply) or why it failed.
async fn test(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TestAnswer>, AppError> {
    Ok(Json(ops::test_channel(&state, &admin, &name).await?))
}
