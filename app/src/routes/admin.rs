use leptos::prelude::*;
use leptos_router::components::Redirect;
use thaw::{MessageBar, MessageBarBody, MessageBarIntent};

use crate::components::{AdminLayout, AdminsOnly, BackupCard, OverviewCard};
use crate::functions::whoami;

/// `/admin`: the console for administrators, a clear refusal for everyone
/// else who is signed in, and the sign-in page for anyone who is not.
#[component]
pub fn AdminPage() -> impl IntoView {
    let who = Resource::new(|| (), |_| whoami());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match who.await {
                    Ok(Some(user)) if user.is_admin() => {
                        view! {
                            <AdminLayout user>
                                // What the admin acts on (and what runs) first;
                                // the database at a glance below it.
                                <BackupCard />
                                <OverviewCard />
                            </AdminLayout>
                        }
                            .into_any()
                    }
                    Ok(Some(user)) => view! { <AdminsOnly user /> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login" /> }.into_any(),
                    Err(e) => {
                        view! {
                            <main class="centered-page">
                                <MessageBar intent=MessageBarIntent::Error>
                                    <MessageBarBody>{e.to_string()}</MessageBarBody>
                                </MessageBar>
                            </main>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
