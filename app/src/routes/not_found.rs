use leptos::prelude::*;

/// Any path the router does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="centered-page">
            <h1>"Page not found"</h1>
            <p>
                "There is nothing at this address. " <a href="/admin">"Go to the admin panel"</a>
            </p>
        </main>
    }
}
