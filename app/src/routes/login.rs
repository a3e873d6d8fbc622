use leptos::prelude::*;
use leptos_router::components::Redirect;
use thaw::{
    Button, ButtonAppearance, ButtonType, Field, Input, InputType, MessageBar, MessageBarBody,
    MessageBarIntent,
};

use crate::components::LocalTime;
use crate::functions::{whoami, Login};
use chrono::{DateTime, Utc};

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
/// a session ends under it): for a restore or undo, which backup, who ran it
/// and when, as far as the console knew.
#[derive(Clone)]
struct ArrivalNotice {
    text: String,
    /// When the restore or undo signed everyone out (shown in the
    /// viewer's time).
    at: Option<DateTime<Utc>>,
    /// A restore or undo signed everyone out (not only this visitor).
    everyone: bool,
}

fn arrival_notice() -> Option<ArrivalNotice> {
    let query = leptos_router::hooks::use_query_map();
    let (after, backup, by, at) =
        query.with_untracked(|q| (q.get("after"), q.get("backup"), q.get("by"), q.get("at")));
    let backup = backup.filter(|b| !b.is_empty());
    let by = by
        .filter(|b| !b.is_empty())
        .map(|b| format!(" by {b}"))
        .unwrap_or_default();
    let at = at
        .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| at.to_utc());
    let text = match after.as_deref()? {
        "restore" => match backup {
            Some(name) => format!("The database was restored from {name}{by}."),
            None => format!("The database was restored{by}."),
        },
        "undo" => match backup {
            Some(name) => format!("The restore of {name} was undone{by}."),
            None => format!("The last restore was undone{by}."),
        },
        "expired" => {
            return Some(ArrivalNotice {
                text: "Your session ended. Sign in again to continue.".into(),
                at: None,
                everyone: false,
            })
        }
        _ => return None,
    };
    Some(ArrivalNotice {
        text,
        at,
        everyone: true,
    })
}

#[component]
fn LoginForm() -> impl IntoView {
    // Rendered the same on the server and in the browser; a tab that signed
    // out says so once it runs (see `signed_out`).
    let notice = RwSignal::new(arrival_notice());
    let after = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("after"));
    Effect::new(move |_| {
        if signed_out::here() && matches!(after.as_deref(), None | Some("expired")) {
            notice.set(Some(ArrivalNotice {
                text: "You signed out. Sign in again to continue.".into(),
                at: None,
                everyone: false,
            }));
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
                        .map(|ArrivalNotice { text, at, everyone }| {
                            view! {
                                <div role="status">
                                    <MessageBar intent=MessageBarIntent::Info class="arrival-notice">
                                        <MessageBarBody>
                                            {text}
                                            {at
                                                .map(|at| {
                                                    view! {
                                                        " At "
                                                        <LocalTime at />
                                                        "."
                                                    }
                                                })}
                                            {everyone
                                                .then_some(" Everyone was signed out: sign in again.")}
                                        </MessageBarBody>
                                    </MessageBar>
                                </div>
                            }
                        })
                }}
                <SignInFields />
            </section>
        </main>
    }
}

/// The form itself; an empty field is pointed out here and nothing is sent.
///
/// Checked here rather than with thaw's field rules: their registry
/// (`FieldContextProvider`) removes each field in a cleanup that can run
/// after the registry itself is gone, which panicked while the server was
/// streaming this page and left the browser waiting for the rest of it.
#[component]
fn SignInFields() -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    // Set by a submit with the field empty; the message goes once it is filled.
    let tried = RwSignal::new(false);
    let username_missing = move || tried.get() && username.with(|u| u.trim().is_empty());
    let password_missing = move || tried.get() && password.with(String::is_empty);
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
        tried.set(true);
        if username_missing() || password_missing() {
            return;
        }
        login.dispatch(Login {
            username: username.get_untracked(),
            password: password.get_untracked(),
        });
    };
    let missing = |text: &'static str| {
        view! {
            <p class="field-missing" role="alert">
                {text}
            </p>
        }
    };

    view! {
        <form on:submit=on_submit novalidate>
            <Field label="Username" name="username" required=true>
                <Input value=username autocomplete="username" autofocus=true />
            </Field>
            {move || username_missing().then(|| missing("Enter your username."))}
            <Field label="Password" name="password" required=true>
                <Input
                    value=password
                    input_type=InputType::Password
                    autocomplete="current-password"
                />
            </Field>
            {move || password_missing().then(|| missing("Enter your password."))}
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
    #[cfg(feature = "hydrate")]
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
