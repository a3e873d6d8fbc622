//! Server-only pieces shared by the server functions and the REST routes:
//! application state, the session and the admin check.

mod auth;
mod limiter;
mod state;

pub use auth::{
    admin_from_context, current_user, request_context, require_admin, sign_in, sign_out, AdminUser,
    ClientIp, SessionUser,
};
pub use limiter::LoginLimiter;
pub use state::{AppState, Config};

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
