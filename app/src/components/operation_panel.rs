use leptos::prelude::*;
use thaw::{Button, ButtonSize, MessageBar, MessageBarBody, MessageBarIntent, ProgressBar};

use super::console::Console;
use super::time::{browser, duration_words, LocalTime};
use crate::error::AppError;
use crate::functions::ReleaseLock;
use crate::models::{JobInfo, JobStatus, Operation, OperationStatus};

/// What is running, for every admin in every tab and on every server:
/// operation, who started it and when, the phase, a real progress bar and
/// the time elapsed. Fed by [`poll_status`].
#[component]
pub fn OperationPanel(status: ReadSignal<Option<OperationStatus>>) -> impl IntoView {
    // Made once, here: the view below is drawn again at every poll.
    let cancel = ServerAction::<ReleaseLock>::new();
    move || {
        let status = status.get()?;
        let job = status.job.clone()?;
        let running = status.is_locked && job.status == JobStatus::Running;
        if running {
            let who = status.locked_by.clone().unwrap_or_default();
            let since = status.locked_at.unwrap_or(job.created_at);
            let percent = (job.progress * 100.0).round() as u32;
            let elapsed = duration_words((browser::now() - job.created_at).num_seconds());
            Some(
                view! {
                    <section class="operation-panel" aria-label="Running operation" data-job-id=job.id.clone()>
                        <p>
                            <strong>{running_title(&job)}</strong>
                            {format!(" — started by {who} at ")}
                            <LocalTime at=since />
                        </p>
                        <ProgressBar value=job.progress attr:aria-label=running_title(&job) />
                        <p class="muted" aria-live="polite">
                            <span class="phase">{lms_types::phases::words(job.kind, job.phase)}</span>
                            {format!(": {percent}% · {elapsed} elapsed")}
                        </p>
                        <JobNotes notes=job.notes.clone() />
                        {(job.kind == Operation::Drill).then(|| view! {
                            // A drill changes nothing: stopping it is always safe.
                            <Button
                                size=ButtonSize::Small
                                class="cancel-drill"
                                loading=cancel.pending()
                                on_click=move |_| {
                                    cancel.dispatch(ReleaseLock {});
                                }
                            >
                                "Cancel drill"
                            </Button>
                        })}
                    </section>
                }
                    .into_any(),
            )
        } else if matches!(job.status, JobStatus::Failed | JobStatus::Interrupted) {
            Some(
                view! {
                    <MessageBar intent=MessageBarIntent::Error attr:role="alert" class="last-failure">
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

/// What a job wants the administrator to know although it did not fail.
#[component]
fn JobNotes(notes: Vec<String>) -> impl IntoView {
    (!notes.is_empty()).then(|| {
        view! {
            <ul class="job-notes" data-testid="job-notes">
                {notes.into_iter().map(|note| view! { <li>{note}</li> }).collect_view()}
            </ul>
        }
    })
}

/// "Restore of backup_….dump in progress": what runs, naming the backup
/// it works on where there is one.
fn running_title(job: &JobInfo) -> String {
    match (job.kind, job.backup_name.as_deref()) {
        (Operation::Restore, Some(name)) => format!("Restore of {name} in progress"),
        (Operation::Undo, Some(name)) => format!("Undo of the restore of {name} in progress"),
        (Operation::Drill, Some(name)) => format!("Restore drill of {name} in progress"),
        (Operation::Preview, Some(name)) => format!("Preview of {name} in progress"),
        (Operation::Recover, Some(name)) => {
            format!("Recovery of records from {name} in progress")
        }
        (Operation::RecoverUndo, _) => "Undo of a record recovery in progress".to_owned(),
        (Operation::RecoverPlan, _) => "Planning a record recovery".to_owned(),
        (Operation::Discard, _) => "Discarding the prepared copy".to_owned(),
        (kind, _) => format!("{} in progress", title_case(kind.as_str())),
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
/// it to `status`; toasts the outcome of an operation seen running; when the
/// session ends (a restore signs everyone out) goes to the sign-in page,
/// naming the restored backup if this tab started the restore. Does nothing
/// during server rendering.
pub fn poll_status(status: WriteSignal<Option<OperationStatus>>, console: Console) {
    let seen_running = console.watched;
    let restoring = console.restoring;
    Effect::new(move |_| {
        let refresh = move || {
            leptos::task::spawn_local(async move {
                match crate::functions::get_operation_status().await {
                    Ok(s) => {
                        let shown = console.starting.with_untracked(|id| {
                            id.as_ref().is_some_and(|id| {
                                !id.is_empty() && s.job.as_ref().is_some_and(|j| &j.id == id)
                            })
                        });
                        if shown {
                            console.starting.set(None);
                        }
                        announce_outcome(&console, &s);
                        status.set(Some(s));
                    }
                    Err(AppError::Unauthorized(_)) => {
                        let seen = seen_running.get_value();
                        let kind = seen
                            .as_ref()
                            .map(|j| j.kind)
                            .or(console.switching.get_value());
                        // The backup, who and when, from the job this tab
                        // watched (any admin's), else what this tab started.
                        let backup = seen
                            .as_ref()
                            .and_then(|j| j.backup_name.clone())
                            .or_else(|| restoring.get_untracked())
                            .filter(|name| !name.is_empty());
                        let mut about = String::new();
                        if let Some(name) = backup {
                            about.push_str(&format!("&backup={}", url_escape(&name)));
                        }
                        if let Some(job) = &seen {
                            about.push_str(&format!(
                                "&by={}&at={}",
                                url_escape(&job.started_by),
                                url_escape(&browser::now().to_rfc3339())
                            ));
                        }
                        let after = match kind {
                            Some(Operation::Undo) => format!("after=undo{about}"),
                            Some(Operation::Restore) => format!("after=restore{about}"),
                            _ => "after=expired".to_owned(),
                        };
                        let _ = window().location().set_href(&format!("/login?{after}"));
                    }
                    Err(_) => {}
                }
            });
        };
        refresh();
        if let Ok(handle) = set_interval_with_handle(refresh, std::time::Duration::from_secs(1)) {
            on_cleanup(move || handle.clear());
        }
    });
}

/// Toasts how an operation this tab saw running ended.
fn announce_outcome(console: &Console, s: &OperationStatus) {
    let seen = console.watched;
    let Some(job) = s.job.clone() else { return };
    if job.status == JobStatus::Running {
        seen.set_value(Some(job));
        return;
    }
    let Some(was) = seen.get_value() else { return };
    if job.created_at < was.created_at {
        // An answer from before the watched job began: nothing to say yet.
        return;
    }
    if was.id != job.id {
        // Another job finished since; report nothing half-known.
        seen.set_value(None);
        return;
    }
    seen.set_value(None);
    let name = console.watched_backup.get_value().filter(|n| !n.is_empty());
    console.watched_backup.set_value(None);
    let message = job.message.clone().unwrap_or_default();
    let notes = job.notes.join(" ");
    if job.status == JobStatus::Succeeded {
        let what = match (job.kind, name) {
            (Operation::Backup, Some(name)) => format!("{name} is complete and verified."),
            (Operation::Backup, None) => "The backup is complete and verified.".to_owned(),
            (Operation::Restore, _) if job.backup_name.is_some() => format!(
                "The database was restored from {}.",
                job.backup_name.as_deref().unwrap_or_default()
            ),
            (Operation::Undo, _) if job.backup_name.is_some() => format!(
                "The restore of {} was undone.",
                job.backup_name.as_deref().unwrap_or_default()
            ),
            // The job's message says what the drill, preview or recovery
            // found or did.
            (
                Operation::Drill | Operation::Preview | Operation::Recover | Operation::RecoverUndo,
                _,
            ) => String::new(),
            (other, _) => format!("The {other} finished."),
        };
        let said = format!("{what} {message} {notes}").trim().to_owned();
        if job.notes.is_empty() {
            console.toast_success(said);
        } else {
            // Done, with something to read (a copy that failed, a check
            // that could not be made): not the plain green of all is well.
            console.toast_warning("Done, with a note", said);
        }
    } else {
        // A failed restore or undo switched nothing: a later sign-out is
        // not its doing.
        console.switching.set_value(None);
        console.toast_error(
            "Operation failed",
            format!("The {} {}: {message}", job.kind, job.status),
        );
    }
}

/// Percent-encodes a query value (generated backup names are plain, but be
/// safe with anything).
fn url_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
