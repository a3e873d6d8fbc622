//! Sign-in and sign-out over REST: the same operations of [`app::ops`] the
//! login page's server functions call.

use app::error::AppError;
use app::models::CurrentUser;
use app::ops::{self, Credentials};
use app::ssr::{AppState, ClientIp};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tower_sessions::Session;

use super::{json_body, ApiRoutes};

pub(super) fn routes(r: ApiRoutes) -> ApiRoutes {
    r.post("/api/auth/login", login)
        .post("/api/auth/logout", logout)
        .get("/api/auth/me", me)
}

/// `POST /api/auth/login {username, password}` → 200 with the user and a
/// session cookie; 401 with a generic message; 429 when rate-limited.
async fn login(
    State(state): State<AppState>,
    session: Session,
    ip: ClientIp,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<CurrentUser>, AppError> {
    let credentials = json_body(body)?;
    Ok(Json(ops::login(&state, &session, ip, credentials).await?))
}

/// `POST /api/auth/logout` → 204; the session is deleted on the server.
async fn logout(
    State(state): State<AppState>,
    session: Session,
    ip: ClientIp,
) -> Result<StatusCode, AppError> {
    ops::logout(&state, &session, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/auth/me` → the signed-in user, or 401.
async fn me(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<CurrentUser>, AppError> {
    ops::whoami(&state, &session)
        .await?
        .map(Json)
        .ok_or_else(AppError::unauthorized)
}
