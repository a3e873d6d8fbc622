use leptos::prelude::*;
use leptos_router::components::Redirect;

/// `/` has nothing of its own: the console lives at `/admin`, which sends
/// anyone not signed in on to `/login`.
#[component]
pub fn Home() -> impl IntoView {
    view! { <Redirect path="/admin" /> }
}
