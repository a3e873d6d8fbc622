//! The LMS admin console's pages, components, server functions and the
//! operations layer behind them.
//!
//! - [`routes`]: one page per file (`/login`, `/admin`).
//! - [`components`]: the pieces pages are built from (cards, layout, the
//!   backup card's shared `Console` state and its error bar).
//! - [`functions`]: server functions, the browser's way in: each checks the
//!   session and calls one operation.
//! - `ops` (server only): the operations layer, one function per thing the
//!   console does. It validates typed input, names the admin in the audit
//!   log, calls the `lms_backup` engine and maps the answer to a DTO; the
//!   server functions and the `server` crate's REST routes both call it, so
//!   the two cannot drift.
//! - [`models`]: the data both sides exchange.
//! - [`error`]: the one error type and its HTTP mapping.
//! - `ssr` (server only): state, sessions, the admin check whose
//!   `AdminUser` the operations require, the server functions' wrappers
//!   and the endpoint rows the router's gates read.

pub mod components;
pub mod error;
pub mod functions;
pub mod models;
#[cfg(feature = "ssr")]
pub mod ops;
pub mod routes;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;
use thaw::{ConfigProvider, Theme};

/// The id of the one thaw theme, shared by the head's CSS and the page.
const THEME_ID: &str = "lms-admin";

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                // thaw's CSS goes before this marker, ahead of the app's own.
                <meta name="thaw-ui-style" />
                <components::ThawStyles theme_id=THEME_ID />
                <link rel="icon" href="/favicon.ico" />
                <link
                    rel="stylesheet"
                    id="leptos"
                    href=format!("/{}/{}.css", options.site_pkg_dir, options.output_name)
                />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The application: theme, routes, and the hydration marker tests wait for.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: a reliable signal
    // for end-to-end tests that the page is interactive.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    let theme = RwSignal::new(Theme::light());

    view! {
        <Title text="LMS Admin — Backup & Restore" />
        <ConfigProvider theme theme_id=THEME_ID>
            <Router>
                <Routes fallback=routes::NotFound>
                    <Route path=path!("/") view=routes::Home />
                    <Route path=path!("/login") view=routes::LoginPage />
                    <Route path=path!("/admin") view=routes::AdminPage />
                </Routes>
            </Router>
        </ConfigProvider>
    }
}
