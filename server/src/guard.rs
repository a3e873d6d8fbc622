//! Router-level gates, in front of the checks every handler and server
//! function makes itself:
//! - `/api/admin/*` and every server function but the public ones answer
//!   401/403 before the request body is even decoded;
//! - the console's pages redirect or refuse before they render, so the
//!   status code is right even though pages stream.

use app::error::AppError;
use app::ssr::{current_user, AppState, ClientIp, SessionUser};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use lms_backup::users::Role;
use tower_sessions::Session;

/// Server functions anyone may call: signing in and out, and asking who is
/// signed in (which reveals nothing but the caller's own account).
pub const PUBLIC_SERVER_FNS: [&str; 3] = ["/api/fn/login", "/api/fn/logout", "/api/fn/whoami"];

fn needs_admin(path: &str) -> bool {
    path.starts_with("/api/admin/")
        || (path.starts_with("/api/fn/") && !PUBLIC_SERVER_FNS.contains(&path))
}

/// Middleware: admin-only API paths refuse everyone else up front.
pub async fn admin_api(
    State(state): State<AppState>,
    ip: ClientIp,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if needs_admin(path) {
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
    if path.starts_with("/api/fn/") && request.method() != axum::http::Method::POST {
        tracing::warn!(method = %request.method(), path, "refused a server function call that is not a POST");
        return refusal(
            path,
            AppError::Forbidden("Server functions are called with POST from the console.".into()),
        );
    }
    let server_fn = path.starts_with("/api/fn/");
    let response = next.run(request).await;
    if server_fn {
        return with_error_status(response).await;
    }
    response
}

/// A signed-in user who is not an administrator tried the console's API:
/// worth an audit entry (strangers' 401s are not recorded: anyone can send
/// those by the thousand).
async fn audit_refused(state: &AppState, refused: &SessionUser, method: &Method, path: &str) {
    let actor = refused.actor();
    let target = format!("{method} {path}");
    lms_backup::audit::record_or_log(
        &state.dbs().control,
        lms_backup::audit::Event {
            actor: &actor,
            action: lms_types::AuditAction::AdminRefused,
            target: Some(&target),
            outcome: lms_types::AuditOutcome::Denied,
            detail: Some("not an administrator"),
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
    if !path.starts_with("/api/fn/") {
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

/// Admin reads that touch only the control database (what is running, the
/// catalog, the audit log) stay available while the LMS database is being
/// switched, so administrators can follow it; the admin gate still applies.
fn readable_in_maintenance(method: &axum::http::Method, path: &str) -> bool {
    const SERVER_FNS: &[&str] = &[
        "/api/fn/operation_status",
        "/api/fn/get_job",
        "/api/fn/list_backups",
        "/api/fn/get_backup",
        "/api/fn/storage_summary",
        "/api/fn/recent_activity",
    ];
    if SERVER_FNS.contains(&path) {
        return true;
    }
    let Some(rest) = path.strip_prefix("/api/admin/backup/") else {
        return false;
    };
    method == axum::http::Method::GET
        && (matches!(rest, "status" | "list")
            || rest.starts_with("jobs/")
            || (!rest.contains('/') && rest.parse::<i64>().is_ok()))
}

/// Middleware: while a restore swaps databases (maintenance mode, shared
/// by every instance through the control database), everything but admin
/// reads of the control database and static assets answers 503 with
/// Retry-After.
pub async fn maintenance(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let exempt = readable_in_maintenance(request.method(), path)
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
    State(state): State<AppState>,
    session: Session,
    request: Request,
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
        ("/admin", Some(user)) if user.role != Role::Admin => {
            let mut response = next.run(request).await;
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_are_recognised() {
        assert!(needs_admin("/api/admin/backup/list"));
        assert!(needs_admin("/api/fn/list_backups"));
        assert!(!needs_admin("/api/fn/login"));
        assert!(!needs_admin("/api/auth/login"));
        assert!(!needs_admin("/admin"));
    }
}
