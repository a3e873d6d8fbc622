//! Sign-in and sign-out over REST (the same functions the login page's
//! server functions call).

use app::error::AppError;
use app::models::CurrentUser;
use app::ssr::{current_user, sign_in, sign_out, AppState, ClientIp};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use tower_sessions::Session;

use super::{json_body, ApiRoutes};

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.post("/api/auth/login", login)
        .post("/api/auth/logout", logout)
        .get("/api/auth/me", me)
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

/// `POST /api/auth/login {username, password}` → 200 with the user and a
/// session cookie; 401 with a generic message; 429 when rate-limited.
async fn login(
    State(state): State<AppState>,
    session: Session,
    ip: ClientIp,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<CurrentUser>, AppError> {
    let body = json_body(body)?;
    let user = sign_in(&state, &session, ip, &body.username, &body.password).await?;
    Ok(Json(user.into()))
}

/// `POST /api/auth/logout` → 204; the session is deleted on the server.
async fn logout(
    State(state): State<AppState>,
    session: Session,
    ip: ClientIp,
) -> Result<StatusCode, AppError> {
    sign_out(&state, &session, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/auth/me` → the signed-in user, or 401.
async fn me(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<CurrentUser>, AppError> {
    current_user(&state, &session)
        .await?
        .map(|u| Json(u.into()))
        .ok_or_else(AppError::unauthorized)
}
