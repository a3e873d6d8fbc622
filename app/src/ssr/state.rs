use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use lms_backup::{Databases, Engine};

use super::{LoginLimiter, TrustedProxies};

/// Settings the web layer needs (the engine has its own).
#[derive(Debug, Clone)]
pub struct Config {
    /// Mark the session cookie `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
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
