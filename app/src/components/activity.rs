use leptos::prelude::*;
use thaw::{Badge, BadgeAppearance, BadgeColor};

use super::console::Console;
use super::time::LocalTime;
use crate::functions::recent_activity;
use crate::models::AuditOutcome;

/// How many audit entries the card shows.
const SHOWN: i64 = 25;

/// The recent audit entries: who did what, when, and how it ended.
#[component]
pub fn ActivityList() -> impl IntoView {
    let console = Console::expect();
    let entries = Resource::new(
        move || (console.version(), console.operation.get()),
        |_| recent_activity(SHOWN),
    );
    view! {
        <details class="activity">
            <summary>"Recent activity"</summary>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="muted">"Nothing has been done yet."</p> }.into_any()
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
