//! Schedules in the console: each with its timing, next run (in its zone
//! and in the viewer's), what retention keeps and how the last run went;
//! a form that shows the next five runs and what the retention policy
//! would delete before anything is saved.

use leptos::prelude::*;
use thaw::{
    Badge, BadgeAppearance, BadgeColor, Button, ButtonAppearance, ButtonSize, DialogBody,
    DialogContent, DialogTitle, Field, Input,
};

use super::console::Console;
use super::dialog::{open_for, CancelOr, ConfirmCheckbox, ConsoleDialog};
use super::error_bar::ErrorBar;
use super::time::LocalTime;
use crate::functions::{
    list_schedules, preview_schedule, retention_preview, RemoveSchedule, SaveSchedule,
};
use crate::models::{Policy, RetentionProposal, ScheduleForm, ScheduleView};

/// The schedules section of the backup card.
#[component]
pub fn SchedulesPanel() -> impl IntoView {
    let console = Console::expect();
    let schedules = Resource::new(move || console.version(), |_| list_schedules());
    let editing = RwSignal::new(None::<ScheduleForm>);
    let server_zone = RwSignal::new(String::new());
    let remove = ServerAction::<RemoveSchedule>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = remove.value().get() {
            console.toast_success("Schedule removed; its backups stay.".into());
            console.refresh();
        }
    });
    view! {
        <section class="schedules" aria-labelledby="schedules-title" data-testid="schedules">
            <div class="section-head">
                <h3 id="schedules-title">"Schedules"</h3>
                <Button
                    size=ButtonSize::Small
                    on_click=move |_| {
                        editing
                            .set(
                                Some(ScheduleForm {
                                    enabled: true,
                                    cron: "30 2 * * *".into(),
                                    policy: Policy::default(),
                                    ..Default::default()
                                }),
                            )
                    }
                >
                    "Add schedule"
                </Button>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading schedules…"</p> }>
                {move || Suspend::new(async move {
                    match schedules.await {
                        Err(e) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                        Ok(list) => {
                            server_zone.set(list.server_zone.clone());
                            if list.schedules.is_empty() {
                                return view! {
                                    <p class="muted">
                                        "No schedule yet: backups happen only when someone starts one."
                                    </p>
                                }
                                    .into_any();
                            }
                            view! {
                                <ul class="schedule-list">
                                    {list
                                        .schedules
                                        .into_iter()
                                        .map(|s| view! { <ScheduleItem schedule=s editing remove /> })
                                        .collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
            {move || remove.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBar message=e.to_string() /> })}
            <ScheduleDialog target=editing server_zone />
        </section>
    }
}

#[component]
fn ScheduleItem(
    schedule: ScheduleView,
    editing: RwSignal<Option<ScheduleForm>>,
    remove: ServerAction<RemoveSchedule>,
) -> impl IntoView {
    let s = schedule;
    let form = ScheduleForm {
        original: Some(s.name.clone()),
        name: s.name.clone(),
        cron: s.cron.clone(),
        timezone: Some(s.timezone.clone()),
        notes_template: s.notes_template.clone(),
        enabled: s.enabled,
        rpo_minutes: s.rpo_seconds.map(|r| r / 60),
        policy: s.policy,
    };
    let name = s.name.clone();
    let next = match (s.next_run_at, s.next_run_in_zone.clone()) {
        (Some(at), Some(in_zone)) => view! {
            <span class="next-in-zone">{in_zone}</span>
            " · your time "
            <LocalTime at />
        }
        .into_any(),
        _ => view! { <span>"none (turned off)"</span> }.into_any(),
    };
    view! {
        <li class="schedule-item" data-schedule=s.name.clone()>
            <div class="schedule-head">
                <strong class="schedule-name">{s.name.clone()}</strong>
                <code>{s.cron.clone()}</code>
                <span class="muted">{s.timezone.clone()}</span>
                <Badge
                    color=if s.enabled { BadgeColor::Success } else { BadgeColor::Subtle }
                    appearance=BadgeAppearance::Tint
                >
                    {if s.enabled { "on" } else { "off" }}
                </Badge>
            </div>
            <dl class="facts schedule-facts">
                <div>
                    <dt>"Next run"</dt>
                    <dd>{next}</dd>
                </div>
                <div>
                    <dt>"Keeps"</dt>
                    <dd>{s.policy.describe()}</dd>
                </div>
                <div>
                    <dt>"Last run"</dt>
                    <dd>{s.last_run.clone().unwrap_or_else(|| "none yet".into())}</dd>
                </div>
            </dl>
            <div class="row-actions">
                <Button
                    size=ButtonSize::Small
                    appearance=ButtonAppearance::Subtle
                    on_click=move |_| editing.set(Some(form.clone()))
                    attr:aria-label=format!("Edit schedule {}", s.name)
                >
                    "Edit"
                </Button>
                <Button
                    size=ButtonSize::Small
                    appearance=ButtonAppearance::Subtle
                    loading=remove.pending()
                    on_click=move |_| {
                        remove.dispatch(RemoveSchedule { name: name.clone() });
                    }
                    attr:aria-label=format!("Remove schedule {}", s.name)
                >
                    "Remove"
                </Button>
            </div>
        </li>
    }
}

/// The six counts of a policy, as typed.
#[derive(Clone, Copy)]
struct KeepFields([RwSignal<String>; 6]);

const KEEP_LABELS: [&str; 6] = [
    "Keep the last",
    "Hourly",
    "Daily",
    "Weekly (ISO)",
    "Monthly",
    "Yearly",
];

impl KeepFields {
    fn new() -> Self {
        KeepFields(std::array::from_fn(|_| RwSignal::new(String::new())))
    }

    fn set(&self, p: &Policy) {
        let values = [
            p.keep_last,
            p.keep_hourly,
            p.keep_daily,
            p.keep_weekly,
            p.keep_monthly,
            p.keep_yearly,
        ];
        for (field, value) in self.0.iter().zip(values) {
            field.set(value.to_string());
        }
    }

    /// The policy typed, or what is wrong with it (naming the field).
    fn policy(&self) -> Result<Policy, String> {
        const FIELDS: [&str; 6] = [
            "keep-last",
            "keep-hourly",
            "keep-daily",
            "keep-weekly",
            "keep-monthly",
            "keep-yearly",
        ];
        let mut n = [0u32; 6];
        for (i, field) in self.0.iter().enumerate() {
            n[i] = field
                .with(|v| v.trim().parse::<u32>())
                .map_err(|_| format!("{}: a whole number, 0 or more.", FIELDS[i]))?;
        }
        let policy = Policy {
            keep_last: n[0],
            keep_hourly: n[1],
            keep_daily: n[2],
            keep_weekly: n[3],
            keep_monthly: n[4],
            keep_yearly: n[5],
        };
        match policy.problem() {
            Some(problem) => Err(problem),
            None => Ok(policy),
        }
    }
}

/// Add or change a schedule: the next five runs in its zone and in the
/// viewer's, and (for an existing one) the backups its policy would delete,
/// both shown before saving.
#[component]
fn ScheduleDialog(
    target: RwSignal<Option<ScheduleForm>>,
    server_zone: RwSignal<String>,
) -> impl IntoView {
    let console = Console::expect();
    let open = open_for(target);
    let name = RwSignal::new(String::new());
    let cron = RwSignal::new(String::new());
    let zone = RwSignal::new(String::new());
    let notes = RwSignal::new(String::new());
    let rpo = RwSignal::new(String::new());
    let enabled = RwSignal::new(true);
    let keep = KeepFields::new();
    let save = ServerAction::<SaveSchedule>::new();
    let original = Memo::new(move |_| target.with(|t| t.as_ref().and_then(|f| f.original.clone())));
    // A fresh start each time the dialog opens.
    Effect::new(move |_| {
        if let Some(form) = target.get() {
            name.set(form.name.clone());
            cron.set(form.cron.clone());
            zone.set(form.timezone.clone().unwrap_or_default());
            notes.set(form.notes_template.clone().unwrap_or_default());
            rpo.set(form.rpo_minutes.map(|m| m.to_string()).unwrap_or_default());
            enabled.set(form.enabled);
            keep.set(&form.policy);
            save.clear();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            console.toast_success(format!("Saved schedule \"{}\".", saved.name));
            target.set(None);
            console.refresh();
        }
    });
    let zone_given = move || Some(zone.get()).filter(|z| !z.trim().is_empty());
    let preview = Resource::new(
        move || (open.get(), cron.get(), zone_given()),
        |(open, cron, timezone)| async move {
            if !open {
                return None;
            }
            Some(preview_schedule(cron, timezone).await)
        },
    );
    let dry_run = Resource::new(
        move || (original.get(), keep.policy(), zone_given()),
        |(original, policy, timezone)| async move {
            let (Some(schedule), Ok(policy)) = (original, policy) else {
                return None;
            };
            Some(
                retention_preview(Some(RetentionProposal {
                    schedule: Some(schedule),
                    timezone,
                    policy,
                }))
                .await,
            )
        },
    );
    let form = move || -> Result<ScheduleForm, String> {
        let rpo_minutes =
            match rpo.get().trim() {
                "" => None,
                text => Some(text.parse::<i64>().map_err(|_| {
                    "rpo: whole minutes, or empty for twice the interval.".to_owned()
                })?),
            };
        Ok(ScheduleForm {
            original: original.get(),
            name: name.get(),
            cron: cron.get(),
            timezone: zone_given(),
            notes_template: Some(notes.get()).filter(|n| !n.trim().is_empty()),
            enabled: enabled.get(),
            rpo_minutes,
            policy: keep.policy()?,
        })
    };
    let title = move || match original.get() {
        Some(n) => format!("Change schedule {n}"),
        None => "Add a schedule".to_owned(),
    };
    let error = move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
            .or_else(|| form().err())
    };
    view! {
        <ConsoleDialog open labelled_by="schedule-title" class="schedule-dialog">
            <DialogBody>
                <DialogTitle attr:id="schedule-title">{title}</DialogTitle>
                <DialogContent>
                    <div class="schedule-form">
                        <Field label="Name">
                            <Input value=name attr:autocomplete="off" placeholder="nightly" />
                        </Field>
                        <Field label="When (cron: minute hour day month weekday, or @daily, @hourly…)">
                            <Input value=cron attr:autocomplete="off" attr:spellcheck="false" />
                        </Field>
                        <Field label=Signal::derive(move || {
                            format!("Time zone (IANA; empty: this server's, {})", server_zone.get())
                        })>
                            <Input value=zone attr:autocomplete="off" attr:spellcheck="false" placeholder="Europe/Berlin" />
                        </Field>
                        <section class="schedule-preview" aria-label="Next runs" data-testid="schedule-preview">
                            <h4>"Next runs"</h4>
                            <Suspense fallback=|| view! { <p class="muted">"Working them out…"</p> }>
                                {move || Suspend::new(async move {
                                    match preview.await? {
                                        Err(e) => Some(view! { <p class="field-error" role="alert">{e.to_string()}</p> }.into_any()),
                                        Ok(p) => Some(
                                            view! {
                                                <ol class="upcoming">
                                                    {p
                                                        .upcoming
                                                        .into_iter()
                                                        .map(|run| {
                                                            view! {
                                                                <li>
                                                                    <span class="in-zone">{run.in_zone}</span>
                                                                    <span class="muted">" · your time "</span>
                                                                    <LocalTime at=run.at />
                                                                </li>
                                                            }
                                                        })
                                                        .collect_view()}
                                                </ol>
                                            }
                                                .into_any(),
                                        ),
                                    }
                                })}
                            </Suspense>
                        </section>
                        <fieldset class="keep-fields">
                            <legend>"Retention: keep the last N, plus the newest backup of each of the newest…"</legend>
                            {keep
                                .0
                                .into_iter()
                                .zip(KEEP_LABELS)
                                .map(|(field, label)| {
                                    view! {
                                        <label class="keep-field">
                                            <span>{label}</span>
                                            <input
                                                type="number"
                                                min="0"
                                                max="10000"
                                                inputmode="numeric"
                                                prop:value=move || field.get()
                                                on:input=move |ev| field.set(event_target_value(&ev))
                                            />
                                        </label>
                                    }
                                })
                                .collect_view()}
                        </fieldset>
                        <section class="retention-preview" data-testid="retention-preview" aria-live="polite">
                            {move || match original.get() {
                                None => view! {
                                    <p class="muted">"A new schedule has no backups yet: saving deletes none."</p>
                                }
                                    .into_any(),
                                Some(_) => view! {
                                    <Suspense fallback=|| ()>
                                        {move || Suspend::new(async move {
                                            let report = match dry_run.await? {
                                                Ok(report) => report,
                                                Err(e) => return Some(view! { <ErrorBar message=e.to_string() /> }.into_any()),
                                            };
                                            Some(if report.removals.is_empty() {
                                                view! { <p>"Saving this policy deletes none of the existing backups."</p> }.into_any()
                                            } else {
                                                view! {
                                                    <p>{format!("Saving this policy deletes {} backups at the next pass:", report.removals.len())}</p>
                                                    <ul class="would-delete">
                                                        {report
                                                            .removals
                                                            .into_iter()
                                                            .map(|r| view! { <li><span class="filename">{r.filename}</span></li> })
                                                            .collect_view()}
                                                    </ul>
                                                }
                                                    .into_any()
                                            })
                                        })}
                                    </Suspense>
                                }
                                    .into_any(),
                            }}
                        </section>
                        <Field label="Recovery point objective in minutes (empty: twice the interval)">
                            <Input value=rpo attr:inputmode="numeric" />
                        </Field>
                        <Field label="Notes each backup gets ({schedule} and {due} are filled in)">
                            <Input value=notes />
                        </Field>
                        <ConfirmCheckbox checked=enabled label="Enabled: start backups at these times" />
                    </div>
                    {move || error().map(|e| view! { <ErrorBar message=e /> })}
                </DialogContent>
                <CancelOr on_cancel=move |_| target.set(None)>
                    <Button
                        appearance=ButtonAppearance::Primary
                        loading=save.pending()
                        disabled=Signal::derive(move || form().is_err())
                        on_click=move |_| {
                            if let Ok(form) = form() {
                                save.dispatch(SaveSchedule { form });
                            }
                        }
                    >
                        "Save schedule"
                    </Button>
                </CancelOr>
            </DialogBody>
        </ConsoleDialog>
    }
}
