//! Same-origin guard for every state-changing request.
//!
//! Browsers label cross-site requests (`Sec-Fetch-Site`, `Origin`,
//! `Referer`), and SameSite=Strict cookies already stay home; this layer
//! refuses anything a browser marks as coming from elsewhere, and bodies that
//! an HTML form on another site could send without a preflight. Clients that
//! are not browsers (curl, scripts) send none of these headers and pass;
//! requests with a verified API token are not checked at all.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::error::AppError;

/// Middleware: 403 for cross-site or form-encoded state-changing requests.
pub async fn same_origin_only(request: Request, next: Next) -> Response {
    // A request the API token gate let through carries no cookie a
    // cross-site page could ride on, and browsers cannot add a bearer
    // token to a cross-site request without a preflight.
    let by_token = request
        .extensions()
        .get::<app::ssr::VerifiedToken>()
        .is_some();
    if is_safe(request.method()) || by_token {
        return next.run(request).await;
    }
    if let Err(reason) = check(request.headers()) {
        tracing::warn!(method = %request.method(), path = request.uri().path(), reason, "refused a cross-site request");
        return AppError::Forbidden(
            "Cross-site requests are not accepted. Use the admin console itself.".into(),
        )
        .into_response();
    }
    next.run(request).await
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn check(headers: &HeaderMap) -> Result<(), &'static str> {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get(header::HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site, "same-origin" | "none") {
            return Err("Sec-Fetch-Site is not same-origin");
        }
    }
    let host = get(header::HOST);
    if let Some(origin) = get(header::ORIGIN) {
        if authority_of(origin) != host || host.is_none() {
            return Err("Origin does not match Host");
        }
    } else if let Some(referer) = get(header::REFERER) {
        if authority_of(referer) != host || host.is_none() {
            return Err("Referer does not match Host");
        }
    }
    if let Some(content_type) = get(header::CONTENT_TYPE) {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            essence.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
        ) {
            return Err("form-encoded body");
        }
    }
    Ok(())
}

/// `https://host:port/path` → `host:port`; `None` for "null" or garbage.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then_some(authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn same_origin_passes() {
        assert!(check(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ]))
        .is_ok());
        assert!(check(&headers(&[
            ("host", "a.example"),
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://a.example")
        ]))
        .is_ok());
        assert!(check(&headers(&[
            ("host", "a.example"),
            ("content-type", "application/json")
        ]))
        .is_ok());
    }

    #[test]
    fn cross_site_is_refused() {
        assert!(check(&headers(&[
            ("host", "a.example"),
            ("origin", "https://evil.example")
        ]))
        .is_err());
        assert!(check(&headers(&[("host", "a.example"), ("origin", "null")])).is_err());
        assert!(check(&headers(&[
            ("host", "a.example"),
            ("sec-fetch-site", "cross-site")
        ]))
        .is_err());
        assert!(check(&headers(&[
            ("host", "a.example"),
            ("sec-fetch-site", "same-site")
        ]))
        .is_err());
        assert!(check(&headers(&[
            ("host", "a.example"),
            ("referer", "https://evil.example/x")
        ]))
        .is_err());
        assert!(check(&headers(&[
            ("host", "a.example"),
            ("origin", "https://a.example.evil.example")
        ]))
        .is_err());
    }

    #[test]
    fn form_bodies_are_refused() {
        for ct in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain;charset=UTF-8",
        ] {
            let mut h = headers(&[("host", "a.example")]);
            h.insert("content-type", HeaderValue::from_str(ct).unwrap());
            assert!(check(&h).is_err(), "{ct}");
        }
    }

    #[test]
    fn authorities_are_extracted() {
        assert_eq!(
            authority_of("http://127.0.0.1:3000/admin"),
            Some("127.0.0.1:3000")
        );
        assert_eq!(authority_of("https://a.example"), Some("a.example"));
        assert_eq!(authority_of("null"), None);
    }
}
