use leptos::prelude::*;
use leptos_router::components::Redirect;
use thaw::{
    Button, ButtonAppearance, ButtonType, Field, Input, InputType, MessageBar, MessageBarBody,
    MessageBarIntent,
};

use crate::functions::{whoami, Login};

/// The sign-in form. Signed-in visitors go straight on to `/admin`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let who = Resource::new(|| (), |_| whoami());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                match who.await {
                    Ok(Some(_)) => view! { <Redirect path="/admin" /> }.into_any(),
                    _ => view! { <LoginForm /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Why the visitor is here again, from `?after=…` (set by the console when
/// a session ends under it).
fn arrival_notice() -> Option<String> {
    let query = leptos_router::hooks::use_query_map();
    let (after, backup) = query.with_untracked(|q| (q.get("after"), q.get("backup")));
    match after.as_deref()? {
        "restore" => Some(match backup.filter(|b| !b.is_empty()) {
            Some(name) => format!(
                "The database was restored from {name}. Everyone was signed out: sign in again."
            ),
            None => "The database was restored. Everyone was signed out: sign in again.".into(),
        }),
        "undo" => {
            Some("The last restore was undone. Everyone was signed out: sign in again.".into())
        }
        "expired" => Some("Your session ended. Sign in again to continue.".into()),
        _ => None,
    }
}

#[component]
fn LoginForm() -> impl IntoView {
    let notice = arrival_notice();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let login = ServerAction::<Login>::new();
    let error = move || match login.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    // A full page load after sign-in, so the server renders the console with
    // the new session.
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            let _ = window().location().set_href("/admin");
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        login.dispatch(Login {
            username: username.get_untracked(),
            password: password.get_untracked(),
        });
    };

    view! {
        <main class="centered-page">
            <section class="login-panel" aria-labelledby="login-title">
                <h1 id="login-title">"LMS Admin"</h1>
                <p class="muted">"Sign in with an administrator account."</p>
                {notice
                    .map(|text| {
                        view! {
                            <div role="status">
                                <MessageBar intent=MessageBarIntent::Info class="arrival-notice">
                                    <MessageBarBody>{text}</MessageBarBody>
                                </MessageBar>
                            </div>
                        }
                    })}
                <form on:submit=on_submit>
                    <Field label="Username">
                        <Input value=username autocomplete="username" autofocus=true />
                    </Field>
                    <Field label="Password">
                        <Input value=password input_type=InputType::Password autocomplete="current-password" />
                    </Field>
                    {move || {
                        error()
                            .map(|message| {
                                view! {
                                    <MessageBar intent=MessageBarIntent::Error attr:role="alert">
                                        <MessageBarBody>{message}</MessageBarBody>
                                    </MessageBar>
                                }
                            })
                    }}
                    <Button
                        appearance=ButtonAppearance::Primary
                        button_type=ButtonType::Submit
                        loading=login.pending()
                        block=true
                    >
                        "Sign in"
                    </Button>
                </form>
            </section>
        </main>
    }
}
