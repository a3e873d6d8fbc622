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
    if let Some(response) = embedded::serve(uri.path()) {
        return response;
    }
    leptos_axum::file_and_error_handler(shell)(uri, State(state), request).await
}

#[cfg(feature = "embed-site")]
mod embedded {
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    #[derive(rust_embed::Embed)]
    #[folder = "../target/site"]
    struct Site;

    pub fn serve(path: &str) -> Option<Response> {
        let file = Site::get(path.trim_start_matches('/'))?;
        let mime = HeaderValue::from_str(file.metadata.mimetype()).ok()?;
        Some(
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                ],
                file.data.into_owned(),
            )
                .into_response(),
        )
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
