use leptos::prelude::*;
use thaw::{Badge, BadgeAppearance, BadgeColor, Field, Input, Select};

use super::console::Console;
use super::time::LocalTime;
use crate::functions::recent_activity;
use crate::models::{ActivityKind, AuditOutcome};

/// How many audit entries the card shows.
const SHOWN: i64 = 25;

/// The recent audit entries: who did what, when, and how it ended;
/// narrowed to a kind and a person when the admin asks.
#[component]
pub fn ActivityList() -> impl IntoView {
    let console = Console::expect();
    // "" is every kind; otherwise a kind's one spelling.
    let kind = RwSignal::new(String::new());
    let person = RwSignal::new(String::new());
    let entries = Resource::new(
        move || {
            (
                console.version(),
                console.operation.get(),
                kind.get(),
                person.get(),
            )
        },
        |(_, _, kind, person)| {
            let kind = kind.parse::<ActivityKind>().ok();
            let person = Some(person).filter(|p| !p.trim().is_empty());
            recent_activity(SHOWN, kind, person)
        },
    );
    let filtered =
        move || !kind.get_untracked().is_empty() || !person.get_untracked().trim().is_empty();
    view! {
        <details class="activity">
            <summary>"Recent activity"</summary>
            <div class="activity-filters" role="group" aria-label="Filter the activity">
                <Field label="Kind">
                    <Select value=kind>
                        <option value="">"Everything"</option>
                        {ActivityKind::ALL
                            .iter()
                            .map(|k| view! { <option value=k.as_str()>{k.words()}</option> })
                            .collect_view()}
                    </Select>
                </Field>
                <Field label="Person">
                    <Input value=person placeholder="Anyone" />
                </Field>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(list) if list.is_empty() => {
                            let text = if filtered() {
                                "Nothing matches this filter."
                            } else {
                                "Nothing has been done yet."
                            };
                            view! { <p class="muted">{text}</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <ol class="activity-list" aria-label="Recent activity">
                                    {list
                                        .into_iter()
                                        .map(|e| {
                                            let ok = e.outcome == AuditOutcome::Success;
                                            view! {
                                                <li>
                                                    <LocalTime at=e.at />
                                                    <span class="actor">{e.actor.clone()}</span>
                                                    <span class="action">{e.action.words()}</span>
                                                    <span class="target">{e.target.clone()}</span>
                                                    <Badge
                                                        appearance=BadgeAppearance::Tint
                                                        color=if ok { BadgeColor::Success } else { BadgeColor::Danger }
                                                    >
                                                        {if ok { "done" } else { "failed" }}
                                                    </Badge>
                                                    <span class="detail muted">{e.detail.clone()}</span>
                                                </li>
                                            }
                                        })
                                        .collect_view()}
                                </ol>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p class="muted">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </details>
    }
}
