//! The `lms-admin` binary's library: HTTP wiring, sessions, the REST API,
//! embedded site assets and the command line.
//!
//! Where a request goes: [`router`] puts the security headers ([`csp`] for
//! pages), the session layer, the same-origin guard ([`csrf`]) and the gates
//! ([`guard`]: admin only, maintenance mode, pages) in front of everything,
//! then sends `/api/auth`
//! and `/api/admin` to the REST handlers in [`api`], `/api/fn/*` to the
//! server functions of the `app` crate, pages to Leptos, and anything else to
//! the site assets ([`assets`]). The gates decide from one endpoint table,
//! [`api::endpoints`]: the REST routes as registered plus the server
//! functions as derived from their types.
//!
//! REST handlers and server functions alike check the session themselves
//! and call one operation of `app::ops`, the operations layer that
//! validates, audits, calls the `lms_backup` engine and maps DTOs; only the
//! streaming of uploads and downloads is HTTP work of the handlers' own.
//!
//! The command line: [`cli`] (arguments, and the result every subcommand
//! ends with), [`serve`] (what each subcommand does) and `backup_cli` (the
//! engine's backup, restore and undo from a terminal).

pub mod api;
pub mod assets;
mod backup_cli;
pub mod cli;
pub mod csp;
pub mod csrf;
pub mod guard;
mod schedule_cli;
pub mod serve;
pub mod sessions;
mod token_cli;
pub mod token_gate;

use app::ssr::AppState;
use app::{shell, App};
use axum::http::{header, HeaderValue};
use axum::{Extension, Router};
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::SessionManagerLayer;
use tower_sessions_sqlx_store::PostgresStore;

/// The pages' routes, found once per process by drawing the app.
///
/// While Leptos draws the app to find its routes, it holds back the loading
/// of every resource in the process, not only of the drawing's own: a page
/// another router was streaming at that moment would wait forever for data
/// that never starts loading. Found once, before the first router serves,
/// the list is never drawn again while pages stream.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP application. Tests build it too, so everything the binary
/// serves is reachable from them.
pub fn router(state: AppState, sessions: SessionManagerLayer<PostgresStore>) -> Router {
    let routes = page_routes();
    let options = state.leptos_options.clone();
    let gates = guard::Gates::new(state.clone());
    let token_gate = gates.token_gate();
    let behind_tls = state.config.secure_cookies;
    let router = Router::new()
        .merge(api::router())
        .leptos_routes_with_context(&state, routes, csp::send_policy, move || {
            shell(options.clone())
        })
        .fallback(assets::fallback)
        .layer(axum::middleware::from_fn_with_state(
            gates.clone(),
            guard::pages,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gates.clone(),
            guard::admin_api,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gates,
            guard::maintenance,
        ))
        .layer(axum::middleware::from_fn(csrf::same_origin_only))
        .layer(sessions)
        // Before the session layer: a token request never uses a session.
        .layer(axum::middleware::from_fn_with_state(
            token_gate,
            token_gate::api_tokens,
        ))
        // Read by `ClientIp`, wherever a request's address is asked for.
        .layer(Extension(state.config.trusted_proxies.clone()))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(
            // Backup archives are compressed already; everything else (HTML,
            // JS, the wasm bundle, JSON) shrinks well.
            CompressionLayer::new().compress_when(
                DefaultPredicate::new()
                    .and(NotForContentType::const_new("application/octet-stream")),
            ),
        )
        .with_state(state);
    // Only behind TLS: a browser told so over plain HTTP would refuse the
    // console until the header expires.
    let router = if behind_tls {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(csp::HSTS),
        ))
    } else {
        router
    };
    router.layer(TraceLayer::new_for_http())
}
