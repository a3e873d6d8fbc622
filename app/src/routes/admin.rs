use leptos::prelude::*;
use leptos_router::components::Redirect;

use crate::components::{AdminLayout, AdminsOnly, BackupCard, OverviewCard};
use crate::models::CurrentUser;

/// `/admin`: the console for administrators, a clear refusal for everyone
/// else who is signed in, and the sign-in page for anyone who is not.
///
/// Who is signed in is known before the page renders (the server's page
/// guard found them), so the console is drawn at once rather than inside a
/// boundary waiting for it: each time such a boundary checked its children
/// again, the whole console was built anew, and the copies it threw away
/// could still be read while the page streamed. The user is sent with the
/// page, so hydration draws the same branch.
#[component]
pub fn AdminPage() -> impl IntoView {
    match SharedValue::new(signed_in_user).into_inner() {
        Some(user) if user.is_admin() => view! {
            <AdminLayout user>
                // What the admin acts on (and what runs) first;
                // the database at a glance below it.
                <BackupCard />
                <OverviewCard />
            </AdminLayout>
        }
        .into_any(),
        Some(user) => view! { <AdminsOnly user /> }.into_any(),
        // Reached without the server's page (a link followed in the
        // browser): the sign-in page sends a signed-in user back here.
        None => view! { <Redirect path="/login" /> }.into_any(),
    }
}

/// The user the page guard found for this request.
fn signed_in_user() -> Option<CurrentUser> {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CurrentUser>().cloned())
    }
    #[cfg(not(feature = "ssr"))]
    {
        None
    }
}
