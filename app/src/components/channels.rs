//! Notification channels in the console: where messages go (without the
//! secrets), which events each is told about, whether its deliveries work;
//! add, change or remove one, and send a test that shows the receiver's
//! answer. Channels the environment configures are shown locked.

use leptos::prelude::*;
use thaw::{
    Badge, BadgeAppearance, BadgeColor, Button, ButtonAppearance, ButtonSize, DialogBody,
    DialogContent, DialogTitle, Field, Input, InputType, Select,
};

use super::console::Console;
use super::dialog::{CancelOr, ConsoleDialog};
use super::error_bar::ErrorBar;
use super::time::LocalTime;
use crate::functions::{list_channels, RemoveChannel, SaveChannel, TestChannel};
use crate::models::{ChannelForm, ChannelKind, ChannelView, NotifyEvent, WebhookFormat};

/// The notifications section of the backup card.
#[component]
pub fn ChannelsPanel() -> impl IntoView {
    let console = Console::expect();
    let channels = Resource::new(move || console.version(), |_| list_channels());
    // `Some(None)`: adding; `Some(Some(channel))`: changing that one.
    let editing = RwSignal::new(None::<Option<ChannelView>>);
    let remove = ServerAction::<RemoveChannel>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = remove.value().get() {
            console.toast_success("Removed the notification channel.".to_owned());
            console.refresh();
        }
    });
    view! {
        <details class="channels" data-testid="channels">
            <summary>"Notifications"</summary>
            <div class="section-head">
                <p class="muted">
                    "E-mail and webhooks told when a backup or its off-site copy fails, when no \
                    recent backup exists, when the lock is stuck, and about restores. Each \
                    message is sent once, and tried again until it is."
                </p>
                <Button size=ButtonSize::Small on_click=move |_| editing.set(Some(None))>
                    "Add channel"
                </Button>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading channels…"</p> }>
                {move || Suspend::new(async move {
                    match channels.await {
                        Err(e) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                        Ok(list) if list.is_empty() => {
                            view! {
                                <p class="muted">
                                    "No channel yet: nobody is told when something goes wrong."
                                </p>
                            }
                                .into_any()
                        }
                        Ok(list) => {
                            view! {
                                <ul class="token-list" aria-label="Notification channels">
                                    {list
                                        .into_iter()
                                        .map(|c| view! { <ChannelItem channel=c editing remove /> })
                                        .collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
            {move || {
                remove
                    .value()
                    .get()
                    .and_then(|r| r.err())
                    .map(|e| view! { <ErrorBar message=e.to_string() /> })
            }}
            <ChannelDialog editing />
        </details>
    }
}

#[component]
fn ChannelItem(
    channel: ChannelView,
    editing: RwSignal<Option<Option<ChannelView>>>,
    remove: ServerAction<RemoveChannel>,
) -> impl IntoView {
    let c = channel;
    let (state, color) = match (c.enabled, c.failing_since, c.last_delivered_at) {
        (false, _, _) => ("off", BadgeColor::Subtle),
        (true, Some(_), _) => ("failing", BadgeColor::Danger),
        (true, None, Some(_)) => ("working", BadgeColor::Success),
        (true, None, None) => ("nothing sent yet", BadgeColor::Informative),
    };
    let test = ServerAction::<TestChannel>::new();
    let name = c.name.clone();
    let test_label = format!("Send test to {}", c.name);
    let kind = match c.kind {
        ChannelKind::Email => "e-mail".to_owned(),
        ChannelKind::Webhook => format!("webhook, {} body", c.format),
    };
    let events = c
        .events
        .iter()
        .map(|e| e.words())
        .collect::<Vec<_>>()
        .join(", ");
    let failing = c.failing_since.map(|since| {
        let why = c.last_error.clone().unwrap_or_default();
        let tries = c.consecutive_failures;
        view! {
            <div>
                <dt>"Failing since"</dt>
                <dd class="failing">
                    <LocalTime at=since />
                    {format!(" ({tries} tries): {why}")}
                </dd>
            </div>
        }
    });
    let editable = (!c.from_env).then(|| {
        let edit_channel = c.clone();
        let edit_label = format!("Change channel {}", c.name);
        let remove_label = format!("Remove channel {}", c.name);
        let name = c.name.clone();
        view! {
            <Button
                size=ButtonSize::Small
                appearance=ButtonAppearance::Subtle
                on_click=move |_| editing.set(Some(Some(edit_channel.clone())))
                attr:aria-label=edit_label
            >
                "Change"
            </Button>
            <Button
                size=ButtonSize::Small
                appearance=ButtonAppearance::Subtle
                loading=remove.pending()
                on_click=move |_| {
                    remove.dispatch(RemoveChannel { name: name.clone() });
                }
                attr:aria-label=remove_label
            >
                "Remove"
            </Button>
        }
    });
    view! {
        <li class="token-item channel-item" data-channel=c.name.clone() data-state=state>
            <div class="schedule-head">
                <strong class="token-name">{c.name.clone()}</strong>
                <span class="muted">{kind}</span>
                <Badge color appearance=BadgeAppearance::Tint>
                    {state}
                </Badge>
                {c.from_env.then(|| view! {
                    <Badge color=BadgeColor::Subtle appearance=BadgeAppearance::Outline>
                        "set by environment"
                    </Badge>
                })}
            </div>
            <dl class="facts schedule-facts">
                <div>
                    <dt>"Sends to"</dt>
                    <dd class="channel-target">{c.shown_target.clone()}</dd>
                </div>
                <div>
                    <dt>"Told about"</dt>
                    <dd>{events}</dd>
                </div>
                <div>
                    <dt>"Last delivered"</dt>
                    <dd>
                        {match c.last_delivered_at {
                            Some(at) => view! { <LocalTime at /> }.into_any(),
                            None => view! { <span>"never"</span> }.into_any(),
                        }}
                        {(c.waiting > 0).then(|| format!(" · {} waiting", c.waiting))}
                    </dd>
                </div>
                {failing}
            </dl>
            <div class="row-actions">
                <Button
                    size=ButtonSize::Small
                    loading=test.pending()
                    on_click=move |_| {
                        test.dispatch(TestChannel { name: name.clone() });
                    }
                    attr:aria-label=test_label
                >
                    "Send test"
                </Button>
                {editable}
            </div>
            {move || {
                test.value()
                    .get()
                    .map(|answer| match answer {
                        Ok(a) if a.delivered => view! {
                            <p class="test-answer ok" role="status" data-testid="test-answer">
                                "Delivered. The receiver answered: " <code>{a.answer}</code>
                            </p>
                        }
                            .into_any(),
                        Ok(a) => view! {
                            <p class="test-answer failed" role="alert" data-testid="test-answer">
                                "Not delivered: " {a.answer}
                            </p>
                        }
                            .into_any(),
                        Err(e) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                    })
            }}
        </li>
    }
}

/// Add or change a channel. Secrets are write-only: the fields start empty,
/// and left empty on a change they keep what is stored.
#[component]
fn ChannelDialog(editing: RwSignal<Option<Option<ChannelView>>>) -> impl IntoView {
    let console = Console::expect();
    let open = RwSignal::new(false);
    let original = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new(ChannelKind::Webhook.as_str().to_owned());
    let format = RwSignal::new(WebhookFormat::Generic.as_str().to_owned());
    let url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let smtp = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let events: Vec<(NotifyEvent, RwSignal<bool>)> = NotifyEvent::CHOOSABLE
        .iter()
        .map(|e| (*e, RwSignal::new(false)))
        .collect();
    let events = StoredValue::new(events);
    let save = ServerAction::<SaveChannel>::new();
    // Filled from the channel being changed, or fresh, each time it opens.
    Effect::new(move |_| {
        let Some(target) = editing.get() else {
            open.set(false);
            return;
        };
        save.clear();
        url.set(String::new());
        secret.set(String::new());
        smtp.set(String::new());
        match target {
            Some(c) => {
                original.set(c.name.clone());
                name.set(c.name.clone());
                kind.set(c.kind.as_str().to_owned());
                format.set(c.format.as_str().to_owned());
                from.set(c.email_from.clone().unwrap_or_default());
                to.set(c.email_to.join(", "));
                events.with_value(|list| {
                    for (e, on) in list {
                        on.set(c.events.contains(e));
                    }
                });
            }
            None => {
                original.set(String::new());
                name.set(String::new());
                kind.set(ChannelKind::Webhook.as_str().to_owned());
                format.set(WebhookFormat::Generic.as_str().to_owned());
                from.set(String::new());
                to.set(String::new());
                events.with_value(|list| {
                    for (e, on) in list {
                        on.set(NotifyEvent::DEFAULTS.contains(e));
                    }
                });
            }
        }
        open.set(true);
    });
    Effect::new(move |_| {
        if !open.get() && editing.get_untracked().is_some() {
            editing.set(None);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            console.toast_success(format!("Saved notification channel \"{}\".", saved.name));
            console.refresh();
            editing.set(None);
        }
    });
    let is_email = move || kind.get() == ChannelKind::Email.as_str();
    let adding = move || original.with(|o| o.is_empty());
    let form = move || -> Result<ChannelForm, String> {
        let chosen: Vec<NotifyEvent> = events.with_value(|list| {
            list.iter()
                .filter(|(_, on)| on.get())
                .map(|(e, _)| *e)
                .collect()
        });
        if name.with(|n| n.trim().is_empty()) {
            return Err("name: say what it is, such as \"ops e-mail\".".into());
        }
        let email = is_email();
        if adding() {
            if email && smtp.with(|s| s.trim().is_empty()) {
                return Err("SMTP server: smtp://user:password@host:587 or smtps://….".into());
            }
            if !email && url.with(|s| s.trim().is_empty()) {
                return Err("URL: where the webhook is posted.".into());
            }
        }
        if email && (from.with(|s| s.trim().is_empty()) || to.with(|s| s.trim().is_empty())) {
            return Err("From and To: the sender, and who is told.".into());
        }
        if chosen.is_empty() {
            return Err("events: choose at least one.".into());
        }
        let optional = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(ChannelForm {
            name: name.get().trim().to_owned(),
            kind: kind.get().parse().unwrap_or(ChannelKind::Webhook),
            format: format.get().parse().unwrap_or(WebhookFormat::Generic),
            webhook_url: optional(url.get()),
            webhook_secret: optional(secret.get()),
            smtp_url: optional(smtp.get()),
            email_from: optional(from.get()),
            email_to: to
                .get()
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            events: chosen,
            enabled: true,
        })
    };
    let error = move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    let keep_hint = move || {
        (!adding()).then(|| view! {
        <p class="muted form-hint">"Secrets are not shown; leave them empty to keep the stored ones."</p>
    })
    };
    view! {
        <ConsoleDialog open labelled_by="channel-title" class="token-dialog channel-dialog">
            <DialogBody>
                <DialogTitle attr:id="channel-title">
                    {move || if adding() { "Add a notification channel" } else { "Change the notification channel" }}
                </DialogTitle>
                <DialogContent>
                    <div class="token-form">
                        <Field label="Name">
                            <Input value=name attr:autocomplete="off" placeholder="ops webhook" />
                        </Field>
                        <Field label="Kind">
                            <Select value=kind>
                                <option value="webhook">"Webhook"</option>
                                <option value="email">"E-mail"</option>
                            </Select>
                        </Field>
                        <Show
                            when=is_email
                            fallback=move || view! {
                                <Field label="URL (kept secret)">
                                    <Input
                                        value=url
                                        input_type=InputType::Password
                                        attr:autocomplete="off"
                                        placeholder="https://hooks.example.org/…"
                                    />
                                </Field>
                                <Field label="Body">
                                    <Select value=format>
                                        <option value="generic">"Generic JSON, signed"</option>
                                        <option value="slack">"Slack / Mattermost"</option>
                                        <option value="teams">"Microsoft Teams / Discord"</option>
                                    </Select>
                                </Field>
                                <Field label="Signing secret (optional, kept secret)">
                                    <Input value=secret input_type=InputType::Password attr:autocomplete="off" />
                                </Field>
                            }
                        >
                            <Field label="SMTP server (kept secret)">
                                <Input
                                    value=smtp
                                    input_type=InputType::Password
                                    attr:autocomplete="off"
                                    placeholder="smtp://user:password@mail.example.org:587"
                                />
                            </Field>
                            <Field label="From">
                                <Input value=from attr:autocomplete="off" placeholder="backups@example.org" />
                            </Field>
                            <Field label="To (comma-separated)">
                                <Input value=to attr:autocomplete="off" placeholder="ops@example.org" />
                            </Field>
                        </Show>
                        {keep_hint}
                        <fieldset class="token-scopes">
                            <legend>"Tell it about"</legend>
                            {events
                                .get_value()
                                .into_iter()
                                .map(|(event, on)| {
                                    view! {
                                        <label class="confirm-check">
                                            <input
                                                type="checkbox"
                                                prop:checked=move || on.get()
                                                on:change=move |ev| on.set(event_target_checked(&ev))
                                            />
                                            <span>{event.words()}</span>
                                        </label>
                                    }
                                })
                                .collect_view()}
                        </fieldset>
                        {move || form().err().map(|e| view! { <p class="muted form-hint">{e}</p> })}
                    </div>
                    {move || error().map(|e| view! { <ErrorBar message=e /> })}
                </DialogContent>
                <CancelOr on_cancel=move |_| editing.set(None)>
                    <Button
                        appearance=ButtonAppearance::Primary
                        loading=save.pending()
                        disabled=Signal::derive(move || form().is_err())
                        on_click=move |_| {
                            if let Ok(form) = form() {
                                save.dispatch(SaveChannel { name: original.get(), form });
                            }
                        }
                    >
                        "Save channel"
                    </Button>
                </CancelOr>
            </DialogBody>
        </ConsoleDialog>
    }
}
