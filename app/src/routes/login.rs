use leptos::prelude::*;
use leptos_router::components::Redirect;
use thaw::{
    Button, ButtonAppearance, ButtonType, Field, FieldContextInjection, FieldContextProvider,
    Input, InputRule, InputType, MessageBar, MessageBarBody, MessageBarIntent,
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
    // Rendered the same on the server and in the browser; a tab that signed
    // out says so once it runs (see `signed_out`).
    let notice = RwSignal::new(arrival_notice());
    let after = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("after"));
    Effect::new(move |_| {
        if signed_out::here() && matches!(after.as_deref(), None | Some("expired")) {
            notice.set(Some("You signed out. Sign in again to continue.".into()));
        }
    });
    view! {
        <main class="centered-page">
            <section class="login-panel" aria-labelledby="login-title">
                <h1 id="login-title">"LMS Admin"</h1>
                <p class="muted">"Sign in with an administrator account."</p>
                {move || {
                    notice
                        .get()
                        .map(|text| {
                            view! {
                                <div role="status">
                                    <MessageBar intent=MessageBarIntent::Info class="arrival-notice">
                                        <MessageBarBody>{text}</MessageBarBody>
                                    </MessageBar>
                                </div>
                            }
                        })
                }}
                <FieldContextProvider>
                    <SignInFields />
                </FieldContextProvider>
            </section>
        </main>
    }
}

/// The form itself; an empty field is pointed out here and nothing is sent.
#[component]
fn SignInFields() -> impl IntoView {
    let fields = FieldContextInjection::expect_context();
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
            signed_out::forget();
            let _ = window().location().set_href("/admin");
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !fields.validate() {
            return;
        }
        login.dispatch(Login {
            username: username.get_untracked(),
            password: password.get_untracked(),
        });
    };
    let required = |message: &str| {
        vec![InputRule::required_with_message(
            true.into(),
            message.to_owned().into(),
        )]
    };

    view! {
        <form on:submit=on_submit>
            <Field label="Username" name="username" required=true>
                <Input
                    value=username
                    rules=required("Enter your username.")
                    autocomplete="username"
                    autofocus=true
                />
            </Field>
            <Field label="Password" name="password" required=true>
                <Input
                    value=password
                    rules=required("Enter your password.")
                    input_type=InputType::Password
                    autocomplete="current-password"
                />
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
    }
}

/// Whether this tab signed out on purpose, kept in the tab's session
/// storage: a page left open behind it (or reached with Back) then finds no
/// session, and the sign-in page says "You signed out" rather than "Your
/// session ended".
pub mod signed_out {
    const KEY: &str = "lms-admin-signed-out";

    #[cfg(feature = "hydrate")]
    fn storage() -> Option<web_sys::Storage> {
        leptos::prelude::window().session_storage().ok().flatten()
    }

    /// Notes that this tab signed out.
    pub fn remember() {
        #[cfg(feature = "hydrate")]
        if let Some(s) = storage() {
            let _ = s.set_item(KEY, "1");
        }
    }

    /// Clears the note (after a sign-in).
    pub fn forget() {
        #[cfg(feature = "hydrate")]
        if let Some(s) = storage() {
            let _ = s.remove_item(KEY);
        }
    }

    /// This tab signed out and has not signed in since.
    pub fn here() -> bool {
        #[cfg(feature = "hydrate")]
        return storage().is_some_and(|s| s.get_item(KEY).ok().flatten().is_some());
        #[cfg(not(feature = "hydrate"))]
        false
    }
}
