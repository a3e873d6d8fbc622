//! Site assets (the wasm bundle, its JS glue, CSS, favicon). Release builds
//! compile them into the binary (`embed-site`), so `lms-admin` runs alone
//! from any directory; other builds read them from the site directory that
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
    if let Some(response) = embedded::serve(uri.path(), request.headers()) {
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
    use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    #[derive(rust_embed::Embed)]
    #[folder = "../target/site"]
    struct Site;

    /// Serves an embedded file. Browsers revalidate on every load (the
    /// bundle's name does not change between releases) and get 304 when
    /// their copy is current.
    pub fn serve(path: &str, request: &HeaderMap) -> Option<Response> {
        let file = Site::get(path.trim_start_matches('/'))?;
        let mime = HeaderValue::from_str(file.metadata.mimetype()).ok()?;
        let hash: String = file.metadata.sha256_hash()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let etag = HeaderValue::from_str(&format!("\"{hash}\"")).ok()?;
        let headers = [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag.clone()),
        ];
        if request.get(header::IF_NONE_MATCH) == Some(&etag) {
            return Some((StatusCode::NOT_MODIFIED, headers).into_response());
        }
        Some((StatusCode::OK, headers, file.data.into_owned()).into_response())
    }

    /// True when the build embedded a complete site (used by start-up checks).
    pub fn is_complete(output_name: &str) -> bool {
        Site::get(&format!("pkg/{output_name}.js")).is_some()
            && Site::get(&format!("pkg/{output_name}.wasm")).is_some()
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
