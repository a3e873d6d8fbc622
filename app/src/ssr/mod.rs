//! Server-only pieces shared by the server functions and the REST routes:
//! application state, the session and the admin check, the two wrappers
//! every server function runs its operation in, and the [`Endpoint`] rows
//! the router's gates read.

mod auth;
mod client_ip;
mod endpoint;
mod limiter;
mod state;

use std::future::Future;

pub(crate) use auth::attach_user;
pub use auth::{
    admin_from_context, current_user, request_context, require_admin, AdminUser, SessionUser,
    VerifiedToken,
};
pub use client_ip::{ClientIp, TrustedProxies};
pub use endpoint::{Access, Endpoint};
pub use limiter::{LoginLimiter, MAX_USERNAME_BYTES};
pub use state::{AppState, BearerToken, Config};
use tower_sessions::Session;

use crate::error::AppError;

/// Gives a server function's error response the status that REST routes
/// would give the same error, so clients see one contract.
pub fn with_status<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(err) = &result {
        if let (Some(options), Ok(status)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(err.status()),
        ) {
            options.set_status(status);
        }
    }
    result
}

/// Runs an admin server function's operation: 401/403 unless the request
/// comes from an administrator, and the error's own status on the response.
pub async fn as_admin<T, F, Fut>(operation: F) -> Result<T, AppError>
where
    F: FnOnce(AppState, AdminUser) -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    with_status(
        async {
            let (state, admin) = admin_from_context().await?;
            operation(state, admin).await
        }
        .await,
    )
}

/// Runs a server function open to everyone (signing in and out) with the
/// request's state, session and address, and the error's own status.
pub async fn as_visitor<T, F, Fut>(operation: F) -> Result<T, AppError>
where
    F: FnOnce(AppState, Session, ClientIp) -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    with_status(
        async {
            let (state, session, ip) = request_context().await?;
            operation(state, session, ip).await
        }
        .await,
    )
}
