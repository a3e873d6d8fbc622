use leptos::prelude::*;
use thaw::{MessageBar, MessageBarBody, MessageBarIntent, ProgressBar};

use crate::models::OperationStatus;

/// What is running, for every admin in every tab: operation, who started it
/// and when, the phase and a real progress bar. Fed by [`poll_status`].
#[component]
pub fn OperationPanel(status: ReadSignal<Option<OperationStatus>>) -> impl IntoView {
    move || {
        let status = status.get()?;
        let job = status.job.clone()?;
        let running = status.is_locked && job.status == "running";
        if running {
            let who = status.locked_by.clone().unwrap_or_default();
            let since = status
                .locked_at
                .map(|t| t.format("%H:%M:%S UTC").to_string())
                .unwrap_or_default();
            let percent = (job.progress * 100.0).round() as u32;
            Some(
                view! {
                    <section class="operation-panel" aria-live="polite" aria-label="Running operation">
                        <p>
                            <strong>{format!("{} in progress", title_case(&job.kind))}</strong>
                            {format!(" — started by {who} at {since}")}
                        </p>
                        <ProgressBar value=job.progress />
                        <p class="muted">{format!("{}: {percent}%", title_case(&job.phase))}</p>
                    </section>
                }
                    .into_any(),
            )
        } else if job.status == "failed" || job.status == "interrupted" {
            Some(
                view! {
                    <MessageBar intent=MessageBarIntent::Error attr:role="alert">
                        <MessageBarBody>
                            {format!(
                                "The last {} {}: {}",
                                job.kind,
                                job.status,
                                job.message.clone().unwrap_or_default(),
                            )}
                        </MessageBarBody>
                    </MessageBar>
                }
                .into_any(),
            )
        } else {
            None
        }
    }
}

fn title_case(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// In the browser, asks the server every second what is running and writes
/// it to `status`. Does nothing during server rendering.
pub fn poll_status(status: WriteSignal<Option<OperationStatus>>) {
    Effect::new(move |_| {
        let refresh = move || {
            leptos::task::spawn_local(async move {
                if let Ok(s) = crate::functions::get_operation_status().await {
                    status.set(Some(s));
                }
            });
        };
        refresh();
        let _ = set_interval_with_handle(refresh, std::time::Duration::from_secs(1));
    });
}
