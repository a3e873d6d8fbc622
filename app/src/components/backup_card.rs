use leptos::prelude::*;
use thaw::{
    Button, ButtonAppearance, Card, CardHeader, DialogBody, DialogContent, DialogTitle, Field,
    MessageBar, MessageBarBody, MessageBarIntent, MessageBarTitle, Textarea, ToasterProvider,
};

use super::activity::ActivityList;
use super::backup_list::BackupList;
use super::channels::ChannelsPanel;
use super::console::Console;
use super::dialog::{CancelOr, ConfirmCheckbox, ConsoleDialog};
use super::error_bar::ErrorBar;
use super::facts::Fact;
use super::health_banner::HealthBanner;
use super::operation_panel::{poll_status, OperationPanel};
use super::prepared::PreparedPanel;
use super::schedules::SchedulesPanel;
use super::time::{browser, LocalTime};
use super::tokens::TokensPanel;
use super::upload::UploadDialog;
use crate::functions::{
    last_restore, CreateBackup, ImportFromOffsite, RecheckBackups, UndoRestore,
};
use crate::models::{
    human_bytes, BackupStatus, LastSwitch, OffsiteTarget, Operation, OperationStatus,
};

/// Backups of the LMS database: everything an administrator does with them,
/// with whatever is running shown live.
#[component]
pub fn BackupCard() -> impl IntoView {
    view! {
        <ToasterProvider>
            <BackupConsole />
        </ToasterProvider>
    }
}

#[component]
fn BackupConsole() -> impl IntoView {
    let (status, set_status) = signal(None::<OperationStatus>);
    let console = Console::provide(status);
    poll_status(set_status, console);

    view! {
        <Card class="panel backup-card" attr:aria-labelledby="backups-title">
            <CardHeader>
                <h2 id="backups-title">"Database Backup & Restore"</h2>
            </CardHeader>
            <p class="muted">
                "Verified PostgreSQL backups of the LMS database. A backup listed as completed \
                has been read back in full; a restore is built beside the live database and \
                switched in within a second, and can be undone."
            </p>
            <HealthBanner />
            <SummaryLine />
            <StorageAlert />
            <ActionBar />
            <OperationPanel status />
            <PreparedPanel />
            <BackupList />
            <SchedulesPanel />
            <TokensPanel />
            <ChannelsPanel />
            <ActivityList />
        </Card>
    }
}

/// Last backup, stored total and free space.
#[component]
fn SummaryLine() -> impl IntoView {
    let console = Console::expect();
    view! {
        <Transition fallback=|| view! { <dl class="facts summary-facts" aria-busy="true"></dl> }>
            {move || Suspend::new(async move {
                let summary = console.summary.await.ok()?;
                let taken = summary.last_taken_at;
                let last = match summary.last_finished {
                    Some(b) => {
                        let outcome = if b.status == BackupStatus::Completed { "completed" } else { "failed" };
                        view! {
                            <span class=format!("outcome-{outcome}")>{outcome}</span>
                            " · "
                            <LocalTime at=taken.unwrap_or(b.created_at) relative=true />
                        }
                            .into_any()
                    }
                    None => view! { <span>"none yet"</span> }.into_any(),
                };
                Some(
                    view! {
                        <dl class="facts summary-facts">
                            <div>
                                <dt>"Last backup"</dt>
                                <dd data-testid="last-backup">{last}</dd>
                            </div>
                            <div>
                                <dt>"Stored backups"</dt>
                                <dd data-testid="stored">
                                    {format!(
                                        "{} {} · {}",
                                        summary.backups,
                                        if summary.backups == 1 { "backup" } else { "backups" },
                                        human_bytes(summary.stored_bytes),
                                    )}
                                </dd>
                            </div>
                            <div>
                                <dt>"Free disk space"</dt>
                                <dd data-testid="free-space">
                                    {summary
                                        .free_bytes
                                        .map(|b| human_bytes(b as i64))
                                        .unwrap_or_else(|| "unknown".into())}
                                </dd>
                            </div>
                            {summary.offsite.clone().map(|target| view! { <OffsiteFact target /> })}
                        </dl>
                        {summary
                            .offsite
                            .as_ref()
                            .and_then(|target| target.importable)
                            .map(|count| view! { <OffsiteImportPrompt count /> })}
                        {summary
                            .offsite
                            .and_then(|target| target.problem)
                            .map(|problem| {
                                view! {
                                    <MessageBar
                                        intent=MessageBarIntent::Error
                                        attr:role="alert"
                                        attr:data-testid="offsite-problem"
                                    >
                                        <MessageBarBody>
                                            <MessageBarTitle>"Off-site copies are not being made"</MessageBarTitle>
                                            {problem}
                                        </MessageBarBody>
                                    </MessageBar>
                                }
                            })}
                    },
                )
            })}
        </Transition>
    }
}

/// Where backups are copied off-site (never the credentials) and how many
/// copies are verified; what is wrong with the target is an alert below.
#[component]
fn OffsiteFact(target: OffsiteTarget) -> impl IntoView {
    let place = if target.prefix.is_empty() {
        format!("{} · {}", target.endpoint, target.bucket)
    } else {
        format!("{} · {}/{}", target.endpoint, target.bucket, target.prefix)
    };
    let copies = format!(
        "{} verified{}",
        target.verified,
        if target.unverified > 0 {
            format!(", {} not yet", target.unverified)
        } else {
            String::new()
        }
    );
    let healthy = target.problem.is_none().to_string();
    let title = place.clone();
    view! {
        <div class="wide-fact">
            <dt>"Off-site copies"</dt>
            <dd data-testid="offsite-target" data-healthy=healthy>
                <span class="clip" title=title>{place}</span>
                <span class="offsite-count">{copies}</span>
            </dd>
        </div>
    }
}

/// A new host: the bucket holds backups and this console lists none. The
/// administrator decides to list them (never done on its own).
#[component]
fn OffsiteImportPrompt(count: usize) -> impl IntoView {
    let console = Console::expect();
    let import = ServerAction::<ImportFromOffsite>::new();
    Effect::new(move |_| match import.value().get() {
        Some(Ok(done)) => {
            let refused = if done.refused.is_empty() {
                String::new()
            } else {
                format!(" Left out: {}.", done.refused.join("; "))
            };
            console.toast_info(
                "Imported from off-site",
                format!(
                    "{} listed again; a download or restore fetches its file from the off-site \
                     copy.{refused}",
                    match done.imported {
                        1 => "1 backup".to_owned(),
                        n => format!("{n} backups"),
                    }
                ),
            );
            console.refresh();
        }
        Some(Err(e)) => console.toast_error("Nothing imported", e.to_string()),
        None => {}
    });
    let backups = if count == 1 { "backup" } else { "backups" };
    view! {
        <MessageBar intent=MessageBarIntent::Info attr:data-testid="offsite-importable">
            <MessageBarBody>
                <MessageBarTitle>"Backups found off-site"</MessageBarTitle>
                {format!(
                    "The off-site bucket holds {count} {backups} and this console lists none (a new \
                     host?). List them to restore from their off-site copies.",
                )}
                " "
                <Button
                    appearance=ButtonAppearance::Secondary
                    loading=import.pending()
                    on_click=move |_| {
                        import.dispatch(ImportFromOffsite {});
                    }
                >
                    "Import from off-site"
                </Button>
            </MessageBarBody>
        </MessageBar>
    }
}

/// What is wrong with the backup directory, or the backups whose file is
/// missing from it (with a way to look for them again). Lists reload when
/// either changes, on whichever server the change was seen.
#[component]
fn StorageAlert() -> impl IntoView {
    let console = Console::expect();
    let storage = Memo::new(move |_| {
        console.status.with(|s| {
            s.as_ref().map(|s| {
                (
                    s.backup_dir_problem.clone(),
                    s.missing_backups,
                    s.missing_kept_offsite,
                )
            })
        })
    });
    Effect::new(move |before: Option<Option<(bool, i64)>>| {
        let now = storage.with(|s| s.as_ref().map(|(p, m, _)| (p.is_some(), *m)));
        if before.flatten().is_some_and(|b| Some(b) != now) {
            console.refresh();
        }
        now
    });
    let recheck = ServerAction::<RecheckBackups>::new();
    Effect::new(move |_| match recheck.value().get() {
        Some(Ok(check)) => {
            console.toast_info("Backup files checked", check.words());
            console.refresh();
        }
        Some(Err(e)) => console.toast_error("Backup files not checked", e.to_string()),
        None => {}
    });
    move || {
        let (problem, missing, kept_offsite) = storage.get()?;
        if let Some(problem) = problem {
            return Some(
                view! {
                    <MessageBar intent=MessageBarIntent::Error attr:role="alert" class="storage-alert">
                        <MessageBarBody attr:data-testid="backup-dir-problem">{problem}</MessageBarBody>
                    </MessageBar>
                }
                .into_any(),
            );
        }
        (missing > 0).then(|| {
            let backups = if missing == 1 {
                "backup is"
            } else {
                "backups are"
            };
            // A new host after an import from the bucket: nothing is wrong,
            // the files are off-site.
            let (intent, said) = if kept_offsite == missing {
                (
                    MessageBarIntent::Info,
                    format!(
                        "{missing} {backups} off-site only: their file is not in the backup \
                         directory here, and a download or restore fetches it back from its \
                         verified copy.",
                    ),
                )
            } else {
                let fetched = match kept_offsite {
                    0 => String::new(),
                    n => format!(
                        " {n} of them have a verified off-site copy, which a download or \
                         restore fetches back."
                    ),
                };
                (
                    MessageBarIntent::Warning,
                    format!(
                        "{missing} {backups} missing their file in the backup directory.{fetched} \
                         Once a file is back, checking again lists it as completed if it is the \
                         same archive (size and SHA-256).",
                    ),
                )
            };
            view! {
                <MessageBar intent class="storage-alert">
                    <MessageBarBody attr:data-testid="missing-backups">
                        {said}
                        " "
                        <Button
                            appearance=ButtonAppearance::Secondary
                            loading=recheck.pending()
                            on_click=move |_| {
                                recheck.dispatch(RecheckBackups {});
                            }
                        >
                            "Check files again"
                        </Button>
                    </MessageBarBody>
                </MessageBar>
            }
            .into_any()
        })
    }
}

/// Create, upload, refresh, undo: each disabled, with the reason, while
/// something else runs (undo needs no backup directory).
#[component]
fn ActionBar() -> impl IntoView {
    let console = Console::expect();
    let create_open = RwSignal::new(false);
    let upload_open = RwSignal::new(false);
    let undo_open = RwSignal::new(false);
    let reason = Signal::derive(move || console.busy_reason());
    let busy = Signal::derive(move || reason.get().is_some());
    let undo_reason = Signal::derive(move || console.lock_reason());
    let undo_busy = Signal::derive(move || undo_reason.get().is_some());
    let undo_available = move || {
        console
            .status
            .with(|s| s.as_ref().is_some_and(|s| s.undo_available))
    };
    view! {
        <div class="backup-actions" role="toolbar" aria-label="Backup actions">
            <CreateButton reason busy open=create_open />
            <span class="action" title=move || reason.get().unwrap_or_default()>
                <Button disabled=busy on_click=move |_| upload_open.set(true)>
                    "Upload backup"
                </Button>
            </span>
            <Button
                appearance=ButtonAppearance::Subtle
                loading=console.loading
                on_click=move |_| console.refresh()
            >
                "Refresh"
            </Button>
            <Show when=undo_available>
                <span class="action undo-action" title=move || undo_reason.get().unwrap_or_default()>
                    <Button disabled=undo_busy on_click=move |_| undo_open.set(true)>
                        "Undo last restore"
                    </Button>
                </span>
            </Show>
            // While the running panel shows the job, it says all of this.
            {move || {
                reason
                    .get()
                    .filter(|_| !console.panel_shown())
                    .map(|r| view! { <span class="busy-reason muted" data-testid="busy-reason">{r}</span> })
            }}
        </div>
        <CreateDialog open=create_open />
        <UploadDialog open=upload_open />
        <UndoDialog open=undo_open />
    }
}

/// Opens the create dialog; disabled while something else runs, or until
/// the hourly limit of manual backups lets this administrator start one
/// (saying when, in the viewer's time).
#[component]
fn CreateButton(
    reason: Signal<Option<String>>,
    busy: Signal<bool>,
    open: RwSignal<bool>,
) -> impl IntoView {
    let console = Console::expect();
    // The clock the limit is compared with: moves on in the browser, so the
    // button comes back when the time is reached.
    let now = RwSignal::new(browser::now());
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || now.set(browser::now()),
            std::time::Duration::from_secs(10),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    // Made here, not in what the boundary draws: the boundary's owner is
    // cleaned up as soon as it starts drawing anew, while the button it
    // drew stays on the page until the new one is ready, and that button's
    // attributes still follow `busy` in between.
    let limited = Signal::from(true);
    let button = move |limit: Option<chrono::DateTime<chrono::Utc>>| {
        let disabled = if limit.is_some() { limited } else { busy };
        view! {
            <span class="action" title=move || reason.get().unwrap_or_default()>
                <Button
                    appearance=ButtonAppearance::Primary
                    disabled
                    on_click=move |_| open.set(true)
                >
                    "Create backup"
                </Button>
            </span>
            {limit
                .map(|at| {
                    view! {
                        <span class="rate-limit muted" data-testid="rate-limit">
                            "Next manual backup possible at "
                            <LocalTime at />
                        </span>
                    }
                })}
        }
    };
    view! {
        <Transition fallback=move || button(None)>
            // The summary is awaited, as everywhere else, not read with
            // `get()`: one resource read synchronously in one boundary and
            // awaited in another (the summary line) is a pattern with reports
            // in Leptos's tracker of server-rendered streams that never end.
            {move || {
                let now = now.get();
                Suspend::new(async move {
                    let limit = console
                        .summary
                        .await
                        .ok()
                        .and_then(|s| s.next_manual_backup_at)
                        .filter(|at| *at > now);
                    button(limit)
                })
            }}
        </Transition>
    }
}

/// Optional notes, then the backup starts.
#[component]
fn CreateDialog(open: RwSignal<bool>) -> impl IntoView {
    let console = Console::expect();
    let notes = RwSignal::new(String::new());
    let create = ServerAction::<CreateBackup>::new();
    // The server's configured limit; it refuses longer notes in any case.
    let max_notes = move || console.max_notes_len();
    let too_long = move || max_notes().is_some_and(|max| notes.with(|n| n.chars().count() > max));
    Effect::new(move |_| {
        if let Some(Ok(started)) = create.value().get() {
            open.set(false);
            notes.set(String::new());
            console.starting.set(Some(started.job.id.clone()));
            console.watch_backup(started.job.clone(), started.backup.filename.clone());
            console.refresh();
            console.toast_info(
                "Backup started",
                format!("{} is being written and verified.", started.backup.filename),
            );
        }
    });
    // A fresh start each time the dialog opens.
    Effect::new(move |_| {
        if open.get() {
            notes.set(String::new());
            create.clear();
        }
    });
    let error = move || create.value().get().and_then(|r| r.err());
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if too_long() {
            return;
        }
        let text = notes.get_untracked();
        create.dispatch(CreateBackup {
            notes: (!text.trim().is_empty()).then_some(text),
        });
    };
    view! {
        <ConsoleDialog open labelled_by="create-title">
                <form on:submit=on_submit>
                    <DialogBody>
                        <DialogTitle attr:id="create-title">"Create a backup"</DialogTitle>
                        <DialogContent>
                            <p>
                                "A consistent snapshot of the whole LMS database. The site keeps \
                                working while it runs; it is verified before it is listed."
                            </p>
                            <Field label="Notes (optional)">
                                <Textarea
                                    value=notes
                                    placeholder="e.g. before the spring term opens"
                                    attr:maxlength=move || max_notes().map(|max| max.to_string())
                                    attr:rows="3"
                                />
                            </Field>
                            <p class=move || if too_long() { "notes-count over" } else { "notes-count muted" }>
                                {move || {
                                    let count = notes.with(|n| n.chars().count());
                                    match max_notes() {
                                        Some(max) => format!("{count} / {max}"),
                                        None => count.to_string(),
                                    }
                                }}
                            </p>
                            {move || error().map(|e| view! { <ErrorBar message=e.to_string() /> })}
                        </DialogContent>
                        <CancelOr on_cancel=move |_| open.set(false)>
                            <Button
                                appearance=ButtonAppearance::Primary
                                button_type=thaw::ButtonType::Submit
                                loading=create.pending()
                                disabled=Signal::derive(too_long)
                            >
                                "Start backup"
                            </Button>
                        </CancelOr>
                    </DialogBody>
                </form>
        </ConsoleDialog>
    }
}

/// Swaps the database from before the last restore back in.
#[component]
fn UndoDialog(open: RwSignal<bool>) -> impl IntoView {
    let console = Console::expect();
    let understood = RwSignal::new(false);
    let undo = ServerAction::<UndoRestore>::new();
    // Which restore this undoes, read each time the dialog opens.
    let last = Resource::new(
        move || open.get(),
        |open| async move {
            if open {
                last_restore().await.ok().flatten()
            } else {
                None
            }
        },
    );
    Effect::new(move |_| {
        if open.get() {
            understood.set(false);
            undo.clear();
        }
    });
    Effect::new(move |_| {
        if let Some(Err(_)) = undo.value().get() {
            // Refused: nothing will switch.
            console.switching.set_value(None);
            console.starting.set(None);
        }
        if let Some(Ok(job)) = undo.value().get() {
            console.starting.set(Some(job.id.clone()));
            console.watch(job);
            open.set(false);
            understood.set(false);
            console.restoring.set(Some(String::new()));
            console.refresh();
        }
    });
    let error = move || undo.value().get().and_then(|r| r.err());
    view! {
        <ConsoleDialog open labelled_by="undo-title">
                <DialogBody>
                    <DialogTitle attr:id="undo-title">"Undo the last restore?"</DialogTitle>
                    <DialogContent>
                        <MessageBar intent=MessageBarIntent::Warning>
                            <MessageBarBody>
                                "The database as it was just before the last restore comes back. \
                                Everything written since that restore is set aside with the \
                                current database (so this can be undone in turn)."
                            </MessageBarBody>
                        </MessageBar>
                        <Suspense fallback=|| view! { <p class="muted">"Reading which restore this undoes…"</p> }>
                            {move || Suspend::new(async move {
                                last.await.map(|l| view! { <UndoneRestore last=l /> })
                            })}
                        </Suspense>
                        <p>"Everyone, you included, is signed out and signs in again."</p>
                        <ConfirmCheckbox checked=understood label="I understand the data written since the restore is set aside" />
                        {move || error().map(|e| view! { <ErrorBar message=e.to_string() /> })}
                    </DialogContent>
                    <CancelOr on_cancel=move |_| open.set(false)>
                        <Button
                            appearance=ButtonAppearance::Primary
                            class="danger-button"
                            loading=undo.pending()
                            disabled=Signal::derive(move || !understood.get())
                            on_click=move |_| {
                                console.switching.set_value(Some(Operation::Undo));
                                console.starting.set(Some(String::new()));
                                undo.dispatch(UndoRestore { confirm: true });
                            }
                        >
                            "Undo restore"
                        </Button>
                    </CancelOr>
                </DialogBody>
        </ConsoleDialog>
    }
}

/// Which restore an undo reverses: the backup, who restored it, and when
/// (or, after an undo, that one).
#[component]
fn UndoneRestore(last: LastSwitch) -> impl IntoView {
    let what = match (last.kind, last.backup) {
        (Operation::Undo, _) => view! { <Fact term="Undoes">"the last undo"</Fact> }.into_any(),
        (_, Some(name)) => view! {
            <Fact term="Undoes the restore of">
                <span class="filename">{name}</span>
            </Fact>
        }
        .into_any(),
        (_, None) => {
            view! { <Fact term="Undoes the restore of">"a backup deleted since"</Fact> }.into_any()
        }
    };
    view! {
        <dl class="facts undo-facts" data-testid="undone-restore">
            {what}
            <Fact term="By">{last.restored_by}</Fact>
            <div>
                <dt>"When"</dt>
                <dd>
                    <LocalTime at=last.restored_at relative=true />
                </dd>
            </div>
        </dl>
    }
}
