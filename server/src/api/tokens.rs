//! `/api/admin/tokens`: API tokens over REST, for a signed-in administrator
//! only (no token opens these routes); the same operations as the
//! console's and the CLI's, with the same checks and audit.

use app::error::AppError;
use app::models::{CreatedToken, TokenForm, TokenView};
use app::ops;
use app::ssr::{AdminUser, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::ApiRoutes;

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.get("/api/admin/tokens", list)
        .post("/api/admin/tokens", create)
        .delete("/api/admin/tokens/{name}", revoke)
}

/// `GET /api/admin/tokens` → every token, live ones first; no secrets.
async fn list(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<TokenView>>, AppError> {
    Ok(Json(ops::list_tokens(&state, &admin).await?))
}

/// `POST /api/admin/tokens {name, scopes, expires_days?}` → 201 `{token,
/// secret}`: the only answer that carries the secret; 422 for a bad field
/// (the message names it); 409 when a live token has the name.
async fn create(
    admin: AdminUser,
    State(state): State<AppState>,
    body: Result<Json<TokenForm>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    let form = super::json_body(body)?;
    Ok((
        StatusCode::CREATED,
        Json(ops::create_token(&state, &admin, form).await?),
    ))
}

/// `DELETE /api/admin/tokens/{name}` → 200 the token, revoked; 404 when no
/// live token has the name.
async fn revoke(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TokenView>, AppError> {
    Ok(Json(ops::revoke_token(&state, &admin, &name).await?))
}
