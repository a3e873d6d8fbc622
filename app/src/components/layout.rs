use leptos::prelude::*;
use thaw::{Button, ButtonAppearance};

use crate::functions::Logout;
use crate::models::CurrentUser;

/// The LMS admin frame: top bar with the product name and the signed-in
/// administrator, content below (which finds the administrator as a
/// `CurrentUser` context).
#[component]
pub fn AdminLayout(user: CurrentUser, children: Children) -> impl IntoView {
    provide_context(user.clone());
    view! {
        <div class="admin-shell">
            <header class="top-bar">
                <a class="brand" href="/admin">
                    "LMS Admin"
                </a>
                <nav aria-label="Administration">
                    <span class="nav-current">"Backup & Restore"</span>
                </nav>
                <div class="user-box">
                    <span class="user-name" title=user.username.clone()>
                        {user.display_name().to_owned()}
                    </span>
                    <SignOutButton />
                </div>
            </header>
            <main class="admin-content">{children()}</main>
        </div>
    }
}

/// Shown to signed-in users who are not administrators.
#[component]
pub fn AdminsOnly(user: CurrentUser) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::FORBIDDEN);
    }
    view! {
        <main class="centered-page">
            <section class="login-panel">
                <h1>"Administrators only"</h1>
                <p>
                    "You are signed in as " <strong>{user.username.clone()}</strong>
                    ", which is not an administrator account. The backup and restore console is \
                    for LMS administrators; ask one if you need a backup or a restore."
                </p>
                <SignOutButton />
            </section>
        </main>
    }
}

/// Ends the session and returns to the sign-in page.
#[component]
pub fn SignOutButton() -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if logout.value().get().is_some() {
            let _ = window().location().set_href("/login");
        }
    });
    view! {
        <Button
            appearance=ButtonAppearance::Secondary
            loading=logout.pending()
            on_click=move |_| {
                crate::routes::signed_out::remember();
                logout.dispatch(Logout {});
            }
        >
            "Sign out"
        </Button>
    }
}
