//! Router-level gates, in front of the checks every handler and server
//! function makes itself:
//! - `/api/admin/*` and every server function but the public ones answer
//!   401/403 before the request body is even decoded;
//! - the console's pages redirect or refuse before they render, so the
//!   status code is right even though pages stream.

use app::ssr::{current_user, require_admin, AppState, ClientIp};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
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
    if needs_admin(request.uri().path()) {
        if let Err(err) = require_admin(&state, &session, ip).await {
            return err.into_response();
        }
    }
    next.run(request).await
}

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
        ("/admin", Some(user)) if user.role != lms_backup::users::Role::Admin => {
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
