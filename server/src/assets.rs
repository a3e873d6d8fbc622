//! Site assets (the wasm bundle, its JS glue, CSS, favicon). Release builds
//! compile them into the binary (`embed-site`), so `lms-admin` runs alone
//! from any directory, with the brotli and gzip copies the build made
//! (`cargo leptos build --precompress`), under an address that names the
//! bundle's version; other builds read them from the site directory that
//! cargo-leptos writes.

use app::shell;
use app::ssr::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::response::Response;

/// Serves a site file if there is one, else renders the app (whose router
/// answers unknown paths with a 404 page).
pub async fn fallback(uri: Uri, State(state): State<AppState>, request: Request<Body>) -> Response {
    #[cfg(feature = "embed-site")]
    if let Some(response) = embedded::serve(
        uri.path(),
        &state.leptos_options.output_name,
        request.headers(),
    ) {
        return response;
    }
    leptos_axum::file_and_error_handler_with_context(crate::csp::send_policy, shell)(
        uri,
        State(state),
        request,
    )
    .await
}

#[cfg(feature = "embed-site")]
mod embedded {
    use std::sync::OnceLock;

    use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    #[derive(rust_embed::Embed)]
    #[folder = "../target/site"]
    struct Site;

    /// The bundle's files (script, wasm, style), the ones its version names.
    const BUNDLE: [&str; 3] = ["js", "wasm", "css"];

    /// The bundle's version: the first 12 hex digits of a SHA-256 over its
    /// files' own (computed when the binary was built). Pages name the
    /// bundle under `/pkg/<version>/`, so a browser keeps it for good and a
    /// new release is a new address.
    pub fn version(output_name: &str) -> &'static str {
        static VERSION: OnceLock<String> = OnceLock::new();
        VERSION.get_or_init(|| {
            use sha2::Digest;
            let mut all = sha2::Sha256::new();
            for ext in BUNDLE {
                if let Some(file) = Site::get(&format!("pkg/{output_name}.{ext}")) {
                    all.update(file.metadata.sha256_hash());
                }
            }
            all.finalize()[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
    }

    /// Serves an embedded file: under the bundle's version for good
    /// (`immutable`), anything else revalidated on every load (304 when
    /// the browser's copy is current). The smallest encoding the browser
    /// accepts is sent as it was compressed at build time (brotli, then
    /// gzip); nothing is compressed per request.
    pub fn serve(path: &str, output_name: &str, request: &HeaderMap) -> Option<Response> {
        let path = path.trim_start_matches('/');
        let versioned = path
            .strip_prefix("pkg/")
            .and_then(|rest| rest.strip_prefix(version(output_name)))
            .and_then(|rest| rest.strip_prefix('/'));
        let (name, cache) = match versioned {
            Some(rest) => (format!("pkg/{rest}"), "public, max-age=31536000, immutable"),
            None => (path.to_owned(), "no-cache"),
        };
        let file = Site::get(&name)?;
        let mime = HeaderValue::from_str(file.metadata.mimetype()).ok()?;
        // Weak: the same content is sent in several encodings.
        let etag = HeaderValue::from_str(&format!(
            "W/\"{}\"",
            file.metadata.sha256_hash()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ))
        .ok()?;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, mime);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::ETAG, etag.clone());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if request.get(header::IF_NONE_MATCH) == Some(&etag) {
            return Some((StatusCode::NOT_MODIFIED, headers).into_response());
        }
        let accepted = accepted_encodings(request);
        let body = ["br", "gzip"]
            .into_iter()
            .filter(|encoding| accepted.contains(encoding))
            .find_map(|encoding| {
                let suffix = if encoding == "br" { "br" } else { "gz" };
                Site::get(&format!("{name}.{suffix}")).map(|f| (encoding, f.data))
            });
        let body = match body {
            Some((encoding, data)) => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
                data
            }
            None => file.data,
        };
        Some((StatusCode::OK, headers, body.into_owned()).into_response())
    }

    /// The encodings an `Accept-Encoding` header accepts (`q=0` refuses).
    fn accepted_encodings(request: &HeaderMap) -> Vec<&str> {
        request
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|item| {
                let mut parts = item.split(';').map(str::trim);
                let name = parts.next()?;
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                (!refused && !name.is_empty()).then_some(name)
            })
            .collect()
    }

    /// True when the build embedded a complete site (used by start-up checks).
    pub fn is_complete(output_name: &str) -> bool {
        BUNDLE
            .iter()
            .all(|ext| Site::get(&format!("pkg/{output_name}.{ext}")).is_some())
    }
}

/// Where pages name the bundle (`site_pkg_dir`): under its version when the
/// binary carries it, so it can be cached for good.
pub fn bundle_dir(output_name: &str) -> Option<String> {
    #[cfg(feature = "embed-site")]
    {
        Some(format!("pkg/{}", embedded::version(output_name)))
    }
    #[cfg(not(feature = "embed-site"))]
    {
        let _ = output_name;
        None
    }
}

/// Whether this binary carries its site assets, and if so whether they are complete.
pub fn embedded_site_status(output_name: &str) -> Option<bool> {
    #[cfg(feature = "embed-site")]
    {
        Some(embedded::is_complete(output_name))
    }
    #[cfg(not(feature = "embed-site"))]
    {
        let _ = output_name;
        None
    }
}
