use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use lms_backup::{Databases, Engine};
use sha2::Digest;

use super::{LoginLimiter, TrustedProxies};

/// Settings the web layer needs (the engine has its own).
#[derive(Debug, Clone)]
pub struct Config {
    /// Mark the session cookie `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// The bearer token `/metrics` asks for (`METRICS_TOKEN`); none: open.
    pub metrics_token: Option<BearerToken>,
    /// Requests each API token may make per minute (`API_TOKEN_RATE_LIMIT`).
    pub token_requests_per_minute: std::num::NonZeroU32,
}

/// A bearer token, kept as its SHA-256 only: never shown, never logged,
/// compared in constant time.
#[derive(Clone)]
pub struct BearerToken([u8; 32]);

impl BearerToken {
    pub fn new(token: &str) -> Self {
        BearerToken(sha2::Sha256::digest(token.as_bytes()).into())
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let presented: [u8; 32] = sha2::Sha256::digest(presented.trim().as_bytes()).into();
        bool::from(subtle::ConstantTimeEq::ct_eq(&presented[..], &self.0[..]))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

/// Everything a request handler or server function can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: Engine,
    pub login_limiter: Arc<LoginLimiter>,
    pub config: Arc<Config>,
}

impl AppState {
    /// The two databases.
    pub fn dbs(&self) -> &Databases {
        self.engine.dbs()
    }
}
