//! The API token gate: `Authorization: Bearer <token>` on the REST routes
//! a token's scopes open, and nowhere else.
//!
//! A request with a bearer token is decided here, before the session layer
//! sees it: its cookies are dropped (a token never borrows a browser's
//! session), and it is refused unless the route takes a token, the token is
//! live and one of its scopes opens the route. A request that passes
//! carries [`VerifiedToken`], which the admin extractor turns into the
//! token's actor and which exempts it from the browser same-origin check
//! (a browser cannot send a cross-site `Authorization` header without a
//! preflight this server never grants). Tokens are rate-limited each, and
//! bad tokens per client address. `/metrics` keeps its own bearer token.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use app::error::AppError;
use app::ssr::{AppState, ClientIp, VerifiedToken};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::api::Endpoints;

/// Bad tokens a client address may present in a burst (then one more every
/// six seconds): enough for a pipeline with a typo to say so, too few to
/// matter to anyone guessing.
const BAD_TOKEN_BURST: u32 = 10;

/// Keys kept before idle ones are dropped.
const MAX_KEYS: usize = 10_000;

/// Requests per token, and bad tokens per client address.
pub struct TokenLimiter {
    per_token: DefaultKeyedRateLimiter<String>,
    bad_per_ip: DefaultKeyedRateLimiter<Option<IpAddr>>,
}

impl TokenLimiter {
    /// `per_minute` requests per token (all at once, then evenly).
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self {
            per_token: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            bad_per_ip: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(NonZeroU32::new(10).expect("not zero"))
                    .allow_burst(NonZeroU32::new(BAD_TOKEN_BURST).expect("not zero")),
            ),
        }
    }

    /// Counts one request under `key`; `Some(seconds)` to wait when the
    /// key's allowance is spent.
    fn wait<K: std::hash::Hash + Eq + Clone>(
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Option<u64> {
        if limiter.len() > MAX_KEYS {
            limiter.retain_recent();
        }
        limiter.check_key(key).err().map(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }
}

/// What the gate consults.
#[derive(Clone)]
pub struct TokenGate {
    pub state: AppState,
    pub endpoints: Arc<Endpoints>,
    pub limiter: Arc<TokenLimiter>,
}

/// Middleware: decides every request that presents a bearer token.
pub async fn api_tokens(
    State(gate): State<TokenGate>,
    ip: ClientIp,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    // `/metrics` answers its own token (METRICS_TOKEN).
    let Some(presented) = presented.filter(|_| path != "/metrics") else {
        return next.run(request).await;
    };
    let Some(scope) = gate.endpoints.token_scope(request.method(), path) else {
        tracing::warn!(method = %request.method(), path, "refused an API token outside the routes tokens open");
        return AppError::Forbidden(
            "API tokens work only on the REST routes their scopes open (creating a backup, \
             reading backups, reading what is running). Use the console for anything else."
                .into(),
        )
        .into_response();
    };
    let grant = match gate.state.engine.authenticate_token(presented).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            // Counted only when bad, so a good pipeline never runs out.
            if let Some(wait) = TokenLimiter::wait(&gate.limiter.bad_per_ip, &ip.0) {
                return too_many(wait);
            }
            tracing::warn!(path, client = ?ip.0, "refused an unknown, expired or revoked API token");
            let mut response = AppError::Unauthorized(
                "This API token is unknown, expired or revoked. An administrator can create a new \
                 one in the console (API tokens) or with `lms-admin token create`."
                    .into(),
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return response;
        }
        Err(e) => return AppError::from(e).into_response(),
    };
    if !grant.allows(scope) {
        let what = format!("{} {path}", request.method());
        gate.state
            .engine
            .audit_token_refused(&grant, ip.0.map(|ip| ip.to_string()), &what)
            .await;
        return AppError::Forbidden(format!(
            "The API token \"{}\" does not have the scope {scope} that {what} needs.",
            grant.name
        ))
        .into_response();
    }
    if let Some(wait) = TokenLimiter::wait(&gate.limiter.per_token, &grant.name) {
        return too_many(wait);
    }
    request.headers_mut().remove(header::COOKIE);
    request.extensions_mut().insert(VerifiedToken(grant));
    next.run(request).await
}

/// The token of an `Authorization: Bearer …` value (the scheme in any case).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn too_many(wait: u64) -> Response {
    AppError::RateLimited {
        message: format!("Too many requests with this API token. Try again in {wait} seconds."),
        retry_after_secs: wait,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values_are_read() {
        assert_eq!(bearer("Bearer lmsa_x"), Some("lmsa_x"));
        assert_eq!(bearer("bearer  lmsa_x "), Some("lmsa_x"));
        assert_eq!(bearer("Basic dXNlcg=="), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn each_token_has_its_own_allowance() {
        let limiter = TokenLimiter::new(NonZeroU32::new(2).unwrap());
        let a = "a".to_owned();
        assert_eq!(TokenLimiter::wait(&limiter.per_token, &a), None);
        assert_eq!(TokenLimiter::wait(&limiter.per_token, &a), None);
        assert!(TokenLimiter::wait(&limiter.per_token, &a).is_some_and(|w| w >= 1));
        assert_eq!(
            TokenLimiter::wait(&limiter.per_token, &"b".to_owned()),
            None
        );
    }
}
