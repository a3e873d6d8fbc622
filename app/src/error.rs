//! The one error type the browser sees, and the one place where errors get
//! their HTTP status.

use serde::{Deserialize, Serialize};

/// An error a person can act on. Internal detail (SQL, stderr, paths) never
/// gets in here: it is logged where the error is converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Not signed in (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but refused by a rule (422).
    #[error("{0}")]
    Invalid(String),
    /// Another operation is in the way (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// The client was too slow sending the request (408).
    #[error("{0}")]
    TimedOut(String),
    /// Too many attempts (429).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// The service cannot answer right now (503).
    #[error("{0}")]
    Unavailable(String),
    /// No room on the backup disk for what was sent (507).
    #[error("{0}")]
    InsufficientStorage(String),
    /// Something failed on the server; details are in its log (500).
    #[error("{0}")]
    Internal(String),
    /// The call itself failed (network, encoding): raised by the server fn machinery.
    #[error("{0}")]
    Transport(String),
}

impl AppError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::BadRequest(_) => 400,
            AppError::Invalid(_) => 422,
            AppError::Conflict(_) => 409,
            AppError::TooLarge(_) => 413,
            AppError::TimedOut(_) => 408,
            AppError::RateLimited { .. } => 429,
            AppError::Unavailable(_) => 503,
            AppError::InsufficientStorage(_) => 507,
            AppError::Internal(_) | AppError::Transport(_) => 500,
        }
    }

    /// A stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::BadRequest(_) => "bad_request",
            AppError::Invalid(_) => "invalid",
            AppError::Conflict(_) => "conflict",
            AppError::TooLarge(_) => "too_large",
            AppError::TimedOut(_) => "timed_out",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable(_) => "unavailable",
            AppError::InsufficientStorage(_) => "insufficient_storage",
            AppError::Internal(_) => "internal",
            AppError::Transport(_) => "transport",
        }
    }

    pub fn unauthorized() -> Self {
        AppError::Unauthorized("Please sign in.".into())
    }

    pub fn admins_only() -> Self {
        AppError::Forbidden("This console is for administrators only.".into())
    }

    pub fn internal() -> Self {
        AppError::Internal(
            "Something went wrong on the server. The details are in the server log.".into(),
        )
    }
}

impl leptos::server_fn::error::FromServerFnError for AppError {
    type Encoder = leptos::server_fn::codec::JsonEncoding;

    fn from_server_fn_error(value: leptos::server_fn::error::ServerFnErrorErr) -> Self {
        use leptos::server_fn::error::ServerFnErrorErr as E;
        match value {
            // The caller's arguments did not decode: its fault, and the
            // decoder's wording stays out of the answer.
            E::Args(_) | E::MissingArg(_) => {
                AppError::BadRequest("The request is not what this call expects.".into())
            }
            // On the server this is a request body that did not decode (in
            // the browser it would be an answer that did not).
            #[cfg(feature = "ssr")]
            E::Deserialization(_) => {
                AppError::BadRequest("The request is not what this call expects.".into())
            }
            other => AppError::Transport(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
mod server {
    use super::AppError;
    use axum::response::{IntoResponse, Response};
    use lms_backup::Error;

    impl From<Error> for AppError {
        fn from(err: Error) -> Self {
            match err {
                Error::Invalid(m) => AppError::Invalid(m),
                Error::TooLarge(m) => AppError::TooLarge(m),
                Error::TimedOut(m) => AppError::TimedOut(m),
                Error::NotFound(what) => AppError::NotFound(format!("{what} not found")),
                Error::Conflict(m) | Error::Cancelled(m) => AppError::Conflict(m),
                busy @ Error::Busy(_) => AppError::Conflict(busy.to_string()),
                Error::RateLimited { message, retry_at } => AppError::RateLimited {
                    message,
                    retry_after_secs: (retry_at - chrono::Utc::now()).num_seconds().max(1) as u64,
                },
                Error::Tool(m) | Error::Config(m) => {
                    tracing::error!(error = %m, "configuration or tool problem");
                    AppError::Unavailable(m)
                }
                Error::StorageUnavailable(m) | Error::Offsite(m) => AppError::Unavailable(m),
                Error::InsufficientStorage(m) => AppError::InsufficientStorage(m),
                other => {
                    tracing::error!(error = ?other, "request failed");
                    AppError::internal()
                }
            }
        }
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status = http::StatusCode::from_u16(self.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({
                "error": { "code": self.code(), "message": self.to_string() }
            });
            let mut response = (status, axum::Json(body)).into_response();
            if let AppError::RateLimited {
                retry_after_secs, ..
            } = &self
            {
                if let Ok(v) = http::HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(http::header::RETRY_AFTER, v);
                }
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(AppError::unauthorized().status(), 401);
        assert_eq!(AppError::admins_only().status(), 403);
        assert_eq!(AppError::Conflict("busy".into()).status(), 409);
        assert_eq!(
            AppError::RateLimited {
                message: "slow down".into(),
                retry_after_secs: 3
            }
            .status(),
            429
        );
        assert_eq!(AppError::Invalid("no".into()).status(), 422);
        assert_eq!(AppError::InsufficientStorage("full".into()).status(), 507);
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn internal_errors_hide_their_detail() {
        let err: AppError = lms_backup::Error::Io(std::io::Error::other("/secret/path")).into();
        assert_eq!(err.status(), 500);
        assert!(!err.to_string().contains("/secret/path"));
    }
}
