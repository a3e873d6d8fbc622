//! Router-level gates, in front of the checks every handler and server
//! function makes itself. They decide from the one endpoint table
//! ([`crate::api::endpoints`]):
//! - admin endpoints (REST and server functions alike) answer 401/403
//!   before the request body is even decoded;
//! - in maintenance mode only the endpoints marked for it answer;
//! - the console's pages redirect or refuse before they render, so the
//!   status code is right even though pages stream.

use std::sync::Arc;

use app::error::AppError;
use app::models::CurrentUser;
use app::ssr::{current_user, Access, AppState, ClientIp, SessionUser, VerifiedToken};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use lms_backup::users::Role;
use tower_sessions::Session;

use crate::api::{is_server_fn, Endpoints};
use crate::token_gate::{TokenGate, TokenLimiter};

/// What the gates consult: the application and its endpoint table (built
/// once, when the router is).
#[derive(Clone)]
pub struct Gates {
    state: AppState,
    endpoints: Arc<Endpoints>,
}

impl Gates {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            endpoints: Arc::new(crate::api::endpoints()),
        }
    }

    /// The API token gate, on the same endpoint table.
    pub fn token_gate(&self) -> TokenGate {
        TokenGate {
            limiter: Arc::new(TokenLimiter::new(
                self.state.config.token_requests_per_minute,
            )),
            state: self.state.clone(),
            endpoints: self.endpoints.clone(),
        }
    }
}

/// Middleware: admin-only API paths refuse everyone else up front.
pub async fn admin_api(
    State(Gates { state, endpoints }): State<Gates>,
    ip: ClientIp,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    // A request the token gate let through is a token's, checked there
    // against the route's scope; it carries no session.
    let by_token = request.extensions().get::<VerifiedToken>().is_some();
    if endpoints.access(path) == Access::Admins && !by_token {
        // require_admin's check, with the refused user at hand for the audit.
        let user = match current_user(&state, &session).await {
            Ok(Some(user)) => user,
            Ok(None) => return refusal(path, AppError::unauthorized()),
            Err(err) => return refusal(path, err),
        };
        if user.role != Role::Admin {
            let refused = SessionUser { user, ip: ip.0 };
            audit_refused(&state, &refused, request.method(), path).await;
            return refusal(path, AppError::admins_only());
        }
    }
    // Server functions are called with POST and a JSON body, never through
    // a GET that a link or an image could trigger.
    if is_server_fn(path) && request.method() != axum::http::Method::POST {
        tracing::warn!(method = %request.method(), path, "refused a server function call that is not a POST");
        return refusal(
            path,
            AppError::Forbidden("Server functions are called with POST from the console.".into()),
        );
    }
    let server_fn = is_server_fn(path);
    let response = next.run(request).await;
    if server_fn {
        return with_error_status(response).await;
    }
    response
}

/// A signed-in user who is not an administrator tried the console's API:
/// worth an audit entry, counted into one row per user and window so that
/// a script running under a student's session cannot flood the log
/// (strangers' 401s are not recorded at all: anyone can send those by the
/// thousand).
async fn audit_refused(state: &AppState, refused: &SessionUser, method: &Method, path: &str) {
    let actor = refused.actor();
    let target = format!("{method} {path}");
    lms_backup::audit::tally_or_log(
        &state.dbs().control,
        &lms_backup::audit::Refusal {
            actor: &actor,
            action: lms_types::AuditAction::AdminRefused,
            outcome: lms_types::AuditOutcome::Denied,
            source: &format!("user {}", refused.user.id),
            tried: &target,
            target: Some(&target),
            counted: "refused requests",
            distinct: "endpoints",
        },
    )
    .await;
}

/// Server functions answer every error with 500; this gives the answer the
/// status its [`AppError`] carries (a request that did not decode is a 400).
async fn with_error_status(response: Response) -> Response {
    const LIMIT: usize = 64 * 1024;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, LIMIT).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(err.status()) {
            parts.status = status;
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// An error answer in the form the caller decodes: server functions read
/// their own encoding of [`AppError`] (so the browser can tell a 401 from a
/// 503), everything else the JSON `{"error": {code, message}}`.
fn refusal(path: &str, err: AppError) -> Response {
    if !is_server_fn(path) {
        return err.into_response();
    }
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match serde_json::to_string(&err) {
        Ok(body) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(_) => err.into_response(),
    }
}

/// Middleware: while a restore swaps databases (maintenance mode, shared
/// by every instance through the control database), everything but the
/// endpoints marked for it (admin reads of the control database, so
/// administrators can follow the switch; the admin gate still applies) and
/// static assets answers 503 with Retry-After.
pub async fn maintenance(
    State(Gates { state, endpoints }): State<Gates>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let exempt = endpoints.in_maintenance(request.method(), path)
        || path.starts_with("/pkg/")
        || path == "/favicon.ico";
    if !exempt {
        if let Ok(Some(_)) = lms_backup::settings::maintenance(&state.dbs().control).await {
            let wants_json = path.starts_with("/api/");
            let mut response = if wants_json {
                refusal(
                    path,
                    AppError::Unavailable(
                        "The database is being restored. Try again in a few seconds.".into(),
                    ),
                )
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::response::Html(MAINTENANCE_PAGE),
                )
                    .into_response()
            };
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
            return response;
        }
    }
    next.run(request).await
}

const MAINTENANCE_PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"5\"><title>Back in a moment</title></head>\
<body style=\"font-family:system-ui,sans-serif;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0\">\
<main style=\"max-width:28rem;padding:1rem;text-align:center\"><h1>Back in a moment</h1>\
<p>The LMS database is being restored. This page reloads by itself in a few seconds.</p></main></body></html>";

/// Middleware: `/` and `/admin` send strangers to `/login`, `/login` sends
/// signed-in users on to `/admin`, and `/admin` answers non-admins with 403
/// (the page itself explains).
pub async fn pages(
    State(Gates { state, .. }): State<Gates>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let path = request.uri().path();
    if !matches!(path, "/" | "/admin" | "/login") {
        return next.run(request).await;
    }
    let user = match current_user(&state, &session).await {
        Ok(user) => user,
        Err(err) => return err.into_response(),
    };
    match (path, user) {
        ("/", _) => Redirect::to("/admin").into_response(),
        ("/admin", None) => Redirect::to("/login").into_response(),
        ("/login", Some(_)) => Redirect::to("/admin").into_response(),
        ("/admin", Some(user)) => {
            let admin = user.role == Role::Admin;
            // The page is drawn for the user found here (see `AdminPage`).
            request.extensions_mut().insert(CurrentUser::from(user));
            let mut response = next.run(request).await;
            if !admin {
                *response.status_mut() = StatusCode::FORBIDDEN;
            }
            response
        }
        _ => next.run(request).await,
    }
}
