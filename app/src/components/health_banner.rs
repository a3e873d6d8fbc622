//! The health banner: whether backups still happen, against each enabled
//! schedule's recovery point objective. Green, amber or red, with the
//! reason and the newest verified backup's age in words, so backups that
//! stopped cannot go unnoticed.

use leptos::prelude::*;
use thaw::{MessageBar, MessageBarBody, MessageBarIntent, MessageBarTitle};

use super::console::Console;
use crate::functions::get_backup_health;
use crate::models::HealthState;

#[component]
pub fn HealthBanner() -> impl IntoView {
    let console = Console::expect();
    let health = Resource::new(
        move || (console.version(), console.operation.get()),
        |_| get_backup_health(),
    );
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let health = health.await.ok()?;
                let (intent, title) = match health.state {
                    HealthState::Green => (MessageBarIntent::Success, "Backups are on schedule"),
                    HealthState::Amber => (MessageBarIntent::Warning, "A scheduled backup failed"),
                    HealthState::Red => (MessageBarIntent::Error, "Backups need attention"),
                };
                let others = (health.schedules.len() > 1)
                    .then(|| {
                        view! {
                            <ul class="health-schedules">
                                {health
                                    .schedules
                                    .iter()
                                    .map(|s| {
                                        view! {
                                            <li data-state=s.state.as_str()>{s.reason.clone()}</li>
                                        }
                                    })
                                    .collect_view()}
                            </ul>
                        }
                    });
                Some(
                    view! {
                        <MessageBar
                            intent
                            class="health-banner"
                            attr:data-testid="health-banner"
                            attr:data-state=health.state.as_str()
                            attr:role=if health.state == HealthState::Red { "alert" } else { "status" }
                        >
                            <MessageBarBody>
                                <MessageBarTitle>{title}</MessageBarTitle>
                                <span class="health-reason">{health.reason.clone()}</span>
                                {others}
                            </MessageBarBody>
                        </MessageBar>
                    },
                )
            })}
        </Transition>
    }
}
