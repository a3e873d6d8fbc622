//! The Content-Security-Policy of the console's pages: only this server's
//! own scripts run. Leptos gives every rendered response a fresh nonce and
//! puts it on the page's inline hydration scripts; [`send_policy`], called
//! in the rendering context of every page, sends the policy naming that
//! nonce. Styles may be inline (thaw injects its theme as `<style>` and
//! `style=` attributes); the wasm bundle needs `'wasm-unsafe-eval'` to be
//! instantiated. Nothing else is loaded from anywhere but this origin.

use axum::http::{header, HeaderValue};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

/// The policy for a page whose scripts carry `nonce`.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )
}

/// Sends the policy with the response being rendered, for the nonce Leptos
/// generated for it. Outside a page render (server functions) there is no
/// nonce, and nothing is sent.
pub fn send_policy() {
    let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<ResponseOptions>())
    else {
        return;
    };
    match HeaderValue::from_str(&policy(&nonce)) {
        Ok(value) => response.insert_header(header::CONTENT_SECURITY_POLICY, value),
        Err(e) => tracing::error!(error = %e, "the page's nonce makes no header value"),
    }
}

/// `Strict-Transport-Security`, sent only when TLS ends in front of the
/// server (`SECURE_COOKIES`): browsers then refuse plain HTTP to this host
/// for a year.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_need_the_nonce_and_nothing_runs_inline_without_it() {
        let policy = policy("abc123");
        let script = policy
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src "))
            .unwrap();
        assert_eq!(
            script,
            "script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'"
        );
    }
}
