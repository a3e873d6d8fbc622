//! API tokens in the console: what each may do, who made it, when it
//! expires and when it was last used; create one (its secret shown once, in
//! the dialog that created it) or revoke one.

use leptos::prelude::*;
use thaw::{
    Badge, BadgeAppearance, BadgeColor, Button, ButtonAppearance, ButtonSize, DialogBody,
    DialogContent, DialogTitle, Field, Input, Select,
};

use super::console::Console;
use super::dialog::{CancelOr, ConsoleDialog};
use super::error_bar::ErrorBar;
use super::time::LocalTime;
use crate::functions::{list_tokens, CreateToken, RevokeToken};
use crate::models::{TokenForm, TokenScope, TokenView};

/// The expiry the form offers first, in days.
const DEFAULT_EXPIRY_DAYS: &str = "90";

/// The API tokens section of the backup card.
#[component]
pub fn TokensPanel() -> impl IntoView {
    let console = Console::expect();
    let tokens = Resource::new(move || console.version(), |_| list_tokens());
    let creating = RwSignal::new(false);
    let revoke = ServerAction::<RevokeToken>::new();
    Effect::new(move |_| {
        if let Some(Ok(token)) = revoke.value().get() {
            console.toast_success(format!(
                "Revoked API token \"{}\": requests with it are refused from now on.",
                token.name
            ));
            console.refresh();
        }
    });
    view! {
        <details class="tokens" data-testid="tokens">
            <summary>"API tokens"</summary>
            <div class="section-head">
                <p class="muted">
                    "For pipelines: "<code>"Authorization: Bearer <token>"</code>
                    " on the backup routes a token's scopes open. Restoring is never among them."
                </p>
                <Button size=ButtonSize::Small on_click=move |_| creating.set(true)>
                    "Create token"
                </Button>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Err(e) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                        Ok(list) if list.is_empty() => {
                            view! { <p class="muted">"No API tokens."</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <ul class="token-list" aria-label="API tokens">
                                    {list
                                        .into_iter()
                                        .map(|t| view! { <TokenItem token=t revoke /> })
                                        .collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
            {move || {
                revoke
                    .value()
                    .get()
                    .and_then(|r| r.err())
                    .map(|e| view! { <ErrorBar message=e.to_string() /> })
            }}
            <TokenDialog open=creating />
        </details>
    }
}

#[component]
fn TokenItem(token: TokenView, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let t = token;
    let (state, color) = match (&t.revoked_at, t.live) {
        (Some(_), _) => ("revoked", BadgeColor::Subtle),
        (None, false) => ("expired", BadgeColor::Warning),
        (None, true) => ("live", BadgeColor::Success),
    };
    let name = t.name.clone();
    let revoke_label = format!("Revoke token {}", t.name);
    let live = t.live;
    view! {
        <li class="token-item" data-token=t.name.clone() data-state=state>
            <div class="schedule-head">
                <strong class="token-name">{t.name.clone()}</strong>
                {t
                    .scopes
                    .iter()
                    .map(|s| view! { <code class="scope" title=s.words()>{s.as_str()}</code> })
                    .collect_view()}
                <Badge color appearance=BadgeAppearance::Tint>
                    {state}
                </Badge>
            </div>
            <dl class="facts schedule-facts">
                <div>
                    <dt>"Created"</dt>
                    <dd>
                        <LocalTime at=t.created_at />
                        {format!(" by {}", t.created_by)}
                    </dd>
                </div>
                <div>
                    <dt>"Expires"</dt>
                    <dd>
                        {match t.expires_at {
                            Some(at) => view! { <LocalTime at /> }.into_any(),
                            None => view! { <span>"never (until revoked)"</span> }.into_any(),
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Last used"</dt>
                    <dd>
                        {match t.last_used_at {
                            Some(at) => view! { <LocalTime at /> }.into_any(),
                            None => view! { <span>"never"</span> }.into_any(),
                        }}
                    </dd>
                </div>
                {t
                    .revoked_at
                    .map(|at| {
                        view! {
                            <div>
                                <dt>"Revoked"</dt>
                                <dd>
                                    <LocalTime at />
                                    {format!(" by {}", t.revoked_by.clone().unwrap_or_default())}
                                </dd>
                            </div>
                        }
                    })}
            </dl>
            <Show when=move || live>
                <div class="row-actions">
                    <Button
                        size=ButtonSize::Small
                        appearance=ButtonAppearance::Subtle
                        loading=revoke.pending()
                        on_click={
                            let name = name.clone();
                            move |_| {
                                revoke.dispatch(RevokeToken { name: name.clone() });
                            }
                        }
                        attr:aria-label=revoke_label.clone()
                    >
                        "Revoke"
                    </Button>
                </div>
            </Show>
        </li>
    }
}

/// Create a token: name, scopes, expiry; then its secret, shown once.
#[component]
fn TokenDialog(open: RwSignal<bool>) -> impl IntoView {
    let console = Console::expect();
    let name = RwSignal::new(String::new());
    let scopes: [(TokenScope, RwSignal<bool>); 3] = [
        (TokenScope::BackupCreate, RwSignal::new(false)),
        (TokenScope::BackupRead, RwSignal::new(false)),
        (TokenScope::StatusRead, RwSignal::new(false)),
    ];
    let expires = RwSignal::new(DEFAULT_EXPIRY_DAYS.to_owned());
    let create = ServerAction::<CreateToken>::new();
    // A fresh start each time the dialog opens.
    Effect::new(move |_| {
        if open.get() {
            name.set(String::new());
            for (_, on) in scopes {
                on.set(false);
            }
            expires.set(DEFAULT_EXPIRY_DAYS.to_owned());
            create.clear();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            console.toast_success(format!("Created API token \"{}\".", created.token.name));
            console.refresh();
        }
    });
    let secret = move || create.value().get().and_then(|r| r.ok()).map(|c| c.secret);
    let form = move || -> Result<TokenForm, String> {
        let chosen: Vec<TokenScope> = scopes
            .iter()
            .filter(|(_, on)| on.get())
            .map(|(s, _)| *s)
            .collect();
        if name.with(|n| n.trim().is_empty()) {
            return Err("name: say who uses the token, such as \"deploy\".".into());
        }
        if chosen.is_empty() {
            return Err("scopes: choose at least one.".into());
        }
        Ok(TokenForm {
            name: name.get().trim().to_owned(),
            scopes: chosen,
            expires_days: expires.get().parse().ok(),
        })
    };
    let error = move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    view! {
        <ConsoleDialog open labelled_by="token-title" class="token-dialog">
            <DialogBody>
                <DialogTitle attr:id="token-title">"Create an API token"</DialogTitle>
                <DialogContent>
                    {move || match secret() {
                        Some(secret) => view! {
                            <div class="token-secret" data-testid="token-secret">
                                <p>
                                    <strong>"Copy this token now: it is not shown again."</strong>
                                    " Store it as a secret of the pipeline that uses it."
                                </p>
                                <label class="secret-field">
                                    <span>"Token"</span>
                                    <input
                                        type="text"
                                        readonly=true
                                        spellcheck="false"
                                        autocomplete="off"
                                        prop:value=secret
                                        on:focus=|ev| {
                                            #[cfg(feature = "hydrate")]
                                            {
                                                use wasm_bindgen::JsCast;
                                                if let Some(input) = ev
                                                    .target()
                                                    .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                                                {
                                                    input.select();
                                                }
                                            }
                                            #[cfg(not(feature = "hydrate"))]
                                            let _ = ev;
                                        }
                                    />
                                </label>
                            </div>
                        }
                            .into_any(),
                        None => view! {
                            <div class="token-form">
                                <Field label="Name (who uses it)">
                                    <Input value=name attr:autocomplete="off" placeholder="deploy" />
                                </Field>
                                <fieldset class="token-scopes">
                                    <legend>"It may"</legend>
                                    {scopes
                                        .into_iter()
                                        .map(|(scope, on)| {
                                            view! {
                                                <label class="confirm-check">
                                                    <input
                                                        type="checkbox"
                                                        prop:checked=move || on.get()
                                                        on:change=move |ev| on.set(event_target_checked(&ev))
                                                    />
                                                    <span>
                                                        {scope.words()} " " <code>{scope.as_str()}</code>
                                                    </span>
                                                </label>
                                            }
                                        })
                                        .collect_view()}
                                </fieldset>
                                <Field label="Expires">
                                    <Select value=expires>
                                        <option value="30">"in 30 days"</option>
                                        <option value="90">"in 90 days"</option>
                                        <option value="365">"in a year"</option>
                                        <option value="never">"never (until revoked)"</option>
                                    </Select>
                                </Field>
                                {move || form().err().map(|e| view! { <p class="muted form-hint">{e}</p> })}
                            </div>
                        }
                            .into_any(),
                    }}
                    {move || error().map(|e| view! { <ErrorBar message=e /> })}
                </DialogContent>
                {move || match secret() {
                    Some(_) => view! {
                        <div class="dialog-done">
                            <Button appearance=ButtonAppearance::Primary on_click=move |_| open.set(false)>
                                "Done"
                            </Button>
                        </div>
                    }
                        .into_any(),
                    None => view! {
                        <CancelOr on_cancel=move |_| open.set(false)>
                            <Button
                                appearance=ButtonAppearance::Primary
                                loading=create.pending()
                                disabled=Signal::derive(move || form().is_err())
                                on_click=move |_| {
                                    if let Ok(form) = form() {
                                        create.dispatch(CreateToken { form });
                                    }
                                }
                            >
                                "Create token"
                            </Button>
                        </CancelOr>
                    }
                        .into_any(),
                }}
            </DialogBody>
        </ConsoleDialog>
    }
}
