use leptos::prelude::*;
use thaw::{
    Badge, BadgeAppearance, BadgeColor, Button, ButtonAppearance, ButtonSize, DialogActions,
    DialogBody, DialogContent, DialogTitle, Field, FieldValidationState, Input, InputRule,
    InputRuleTrigger, MessageBar, MessageBarBody, MessageBarIntent, Pagination, Table, TableBody,
    TableCell, TableHeader, TableRow,
};

use super::compare::CompareWith;
use super::console::Console;
use super::dialog::{open_for, CancelOr, ConfirmCheckbox, ConsoleDialog};
use super::error_bar::ErrorBar;
use super::facts::Fact;
use super::pin::{PinControl, PinState};
use super::restore_admins::RestoreAdmins;
use super::table_header::TableHeaderCell;
use super::time::{duration_words, LocalTime};
use crate::functions::{
    get_backup, list_backups, DeleteBackup, DrillBackup, PreviewBackup, RestoreBackup,
};
use crate::models::{
    human_bytes, table_label, thousands, BackupStatus, BackupSummary, DrillOutcome, OffsiteCopy,
    OffsiteState, Operation,
};

/// Rows per page of the list.
const PAGE_SIZE: i64 = 20;

/// The catalog, newest first, a page at a time, with what can be done to
/// each backup.
#[component]
pub fn BackupList() -> impl IntoView {
    let console = Console::expect();
    let page = RwSignal::new(1usize);
    let backups = Resource::new(
        move || (console.version(), console.operation.get(), page.get()),
        move |(_, _, page)| list_backups((page as i64 - 1) * PAGE_SIZE, PAGE_SIZE),
    );
    let restore = RwSignal::new(None::<BackupSummary>);
    let delete = RwSignal::new(None::<BackupSummary>);
    let details = RwSignal::new(None::<BackupSummary>);
    // Made here, not in the rows: the list's boundary cleans up what its
    // last drawing made as soon as it draws anew (a reload), while the rows
    // it drew stay on the page until the new ones are ready, and their
    // buttons still follow the status in between.
    let reason = Signal::derive(move || console.busy_reason());
    let actions = RowActions {
        restore,
        delete,
        details,
        reason,
        busy: Signal::derive(move || reason.with(Option::is_some)),
    };
    view! {
        <Transition
            fallback=|| view! { <p class="muted">"Loading backups…"</p> }
            set_pending=console.loading.write_only()
        >
            {move || Suspend::new(async move {
                match backups.await {
                    Ok(list) if list.backups.is_empty() && list.total == 0 => {
                        view! {
                            <div class="empty-state">
                                <p class="empty-title">"No backups yet"</p>
                                <p class="muted">
                                    "Create one now, or upload an archive made elsewhere. \
                                    Backups you create or upload are listed here."
                                </p>
                            </div>
                        }
                            .into_any()
                    }
                    Ok(list) => {
                        let pages = ((list.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1) as usize;
                        view! {
                            <BackupTable backups=list.backups actions />
                            {(pages > 1)
                                .then(|| {
                                    view! {
                                        <nav class="pager" aria-label="Backup list pages">
                                            <span class="muted">{format!("{} backups", list.total)}</span>
                                            <Pagination page page_count=pages />
                                        </nav>
                                    }
                                })}
                        }
                            .into_any()
                    }
                    Err(e) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                }
            })}
        </Transition>
        <RestoreDialog target=restore />
        <DeleteDialog target=delete />
        <DetailsDialog target=details />
    }
}

/// Which backup each dialog is about (None: closed).
#[derive(Clone, Copy)]
struct RowActions {
    restore: RwSignal<Option<BackupSummary>>,
    delete: RwSignal<Option<BackupSummary>>,
    details: RwSignal<Option<BackupSummary>>,
    /// Why no restore can start now, if so.
    reason: Signal<Option<String>>,
    busy: Signal<bool>,
}

#[component]
fn BackupTable(backups: Vec<BackupSummary>, actions: RowActions) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <Table attr:aria-labelledby="backups-title" class="backup-table">
                <TableHeader>
                    <TableRow>
                        <TableHeaderCell>"Name"</TableHeaderCell>
                        <TableHeaderCell>"Created"</TableHeaderCell>
                        <TableHeaderCell class="num">"Size"</TableHeaderCell>
                        <TableHeaderCell>"Kind"</TableHeaderCell>
                        <TableHeaderCell>"Status"</TableHeaderCell>
                        <TableHeaderCell>"By"</TableHeaderCell>
                        <TableHeaderCell>"Notes"</TableHeaderCell>
                        <TableHeaderCell>"Actions"</TableHeaderCell>
                    </TableRow>
                </TableHeader>
                <TableBody>
                    {backups
                        .into_iter()
                        .map(|b| view! { <BackupRow backup=b actions /> })
                        .collect_view()}
                </TableBody>
            </Table>
        </div>
    }
}

/// Where a backup's off-site copy is; a failed or missing one says why on
/// hover and focus (and in Details).
#[component]
fn OffsiteBadge(copy: OffsiteCopy) -> impl IntoView {
    let color = match copy.state {
        OffsiteState::Verified => BadgeColor::Success,
        OffsiteState::Pending | OffsiteState::Copying => BadgeColor::Informative,
        OffsiteState::Failed => BadgeColor::Danger,
        OffsiteState::Missing => BadgeColor::Warning,
    };
    let title = copy
        .error
        .clone()
        .unwrap_or_else(|| copy.state.words().to_owned());
    view! {
        <Badge
            color
            appearance=BadgeAppearance::Outline
            class="offsite-badge"
            attr:data-testid="offsite-badge"
            attr:data-state=copy.state.as_str()
            attr:title=title
            attr:tabindex="0"
        >
            {copy.state.words()}
        </Badge>
    }
}

/// A backup's newest restore drill: restore-tested, or failed (when and how
/// long on hover and focus, and in Details).
#[component]
fn DrillBadge(drill: DrillOutcome) -> impl IntoView {
    let (color, label) = if drill.succeeded {
        (BadgeColor::Success, "restore-tested")
    } else {
        (BadgeColor::Danger, "drill failed")
    };
    let title = drill.words(&drill.at.format("%Y-%m-%d %H:%M UTC").to_string());
    view! {
        <Badge
            color
            appearance=BadgeAppearance::Outline
            class="drill-badge"
            attr:data-testid="drill-badge"
            attr:data-state=if drill.succeeded { "tested" } else { "failed" }
            attr:title=title
            attr:tabindex="0"
        >
            {label}
        </Badge>
    }
}

fn status_color(status: BackupStatus) -> BadgeColor {
    match status {
        BackupStatus::Completed => BadgeColor::Success,
        BackupStatus::Running => BadgeColor::Informative,
        BackupStatus::Missing => BadgeColor::Warning,
        BackupStatus::Failed => BadgeColor::Danger,
    }
}

#[component]
fn BackupRow(backup: BackupSummary, actions: RowActions) -> impl IntoView {
    // A backup whose file is gone here but whose off-site copy is verified
    // is downloaded and restored from that copy.
    let completed = backup.status == BackupStatus::Completed
        || (backup.status == BackupStatus::Missing
            && backup
                .offsite
                .as_ref()
                .is_some_and(|c| c.state == OffsiteState::Verified));
    let deletable = backup.status != BackupStatus::Running;
    let id = backup.id;
    let reason = actions.reason;
    let download = completed.then(|| {
        view! {
            <a
                class="download"
                href=format!("/api/admin/backup/download/{id}")
                download=backup.filename.clone()
                aria-label=format!("Download {}", backup.filename)
            >
                "Download"
            </a>
        }
    });
    let checksum = backup.sha256.clone().filter(|_| completed).map(|sha| {
        view! {
            <span class="checksum" title=format!("SHA-256 {sha}") data-sha256=sha.clone()>
                {format!("✔ verified · sha256 {}…", &sha[..12])}
            </span>
        }
    });
    let (for_restore, for_delete, for_details) = (backup.clone(), backup.clone(), backup.clone());
    let notes_class = if backup
        .notes
        .as_deref()
        .is_some_and(|n| !n.trim().is_empty())
    {
        "notes"
    } else {
        "notes no-notes"
    };
    let name = backup.filename.clone();
    let (details_label, delete_label) = (format!("Details of {name}"), format!("Delete {name}"));
    view! {
        <TableRow class="backup-row" attr:data-backup-id=id.to_string()>
            <TableCell class="name-cell">
                <span class="filename" title=backup.filename.clone()>{backup.filename.clone()}</span>
                {checksum}
            </TableCell>
            <TableCell class="created-cell" attr:data-label="Created">
                <LocalTime at=backup.created_at relative=true />
            </TableCell>
            <TableCell class="num size-cell" attr:data-label="Size">
                {backup.size_bytes.map(human_bytes)}
            </TableCell>
            <TableCell attr:data-label="Kind">{backup.kind.words()}</TableCell>
            <TableCell attr:data-label="Status">
                <Badge color=status_color(backup.status) appearance=BadgeAppearance::Tint>
                    {backup.status.as_str()}
                </Badge>
                {backup.pin.clone().map(|p| view! {
                    <Badge
                        color=BadgeColor::Brand
                        appearance=BadgeAppearance::Outline
                        class="pinned-badge"
                        attr:data-testid="pinned-badge"
                        attr:title=format!("Pinned: {}", p.reason)
                    >
                        "pinned"
                    </Badge>
                })}
                {backup.offsite.clone().map(|copy| view! { <OffsiteBadge copy /> })}
                {backup.drill.clone().map(|drill| view! { <DrillBadge drill /> })}
            </TableCell>
            <TableCell class="by-cell" attr:data-label="By">
                <span class="clip" title=backup.created_by.clone()>{backup.created_by.clone()}</span>
            </TableCell>
            <TableCell class=notes_class attr:data-label="Notes">
                <span class="clip" title=backup.notes.clone()>{backup.notes.clone()}</span>
            </TableCell>
            <TableCell class="actions-cell">
                <div class="row-actions">
                    {download}
                    {completed
                        .then(|| {
                            view! {
                                <span title=move || reason.get().unwrap_or_default()>
                                    <Button
                                        size=ButtonSize::Small
                                        disabled=actions.busy
                                        on_click=move |_| actions.restore.set(Some(for_restore.clone()))
                                        attr:aria-label=format!("Restore {name}")
                                    >
                                        "Restore"
                                    </Button>
                                </span>
                            }
                        })}
                    <Button
                        size=ButtonSize::Small
                        appearance=ButtonAppearance::Subtle
                        on_click=move |_| actions.details.set(Some(for_details.clone()))
                        attr:aria-label=details_label
                    >
                        "Details"
                    </Button>
                    {deletable
                        .then(|| {
                            view! {
                                <Button
                                    size=ButtonSize::Small
                                    appearance=ButtonAppearance::Subtle
                                    on_click=move |_| actions.delete.set(Some(for_delete.clone()))
                                    attr:aria-label=delete_label
                                >
                                    "Delete"
                                </Button>
                            }
                        })}
                </div>
            </TableCell>
        </TableRow>
    }
}

/// The restore confirmation: what will happen, then a checkbox and the
/// backup's name typed out before the button works.
#[component]
fn RestoreDialog(target: RwSignal<Option<BackupSummary>>) -> impl IntoView {
    let console = Console::expect();
    let open = open_for(target);
    let understood = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let restore = ServerAction::<RestoreBackup>::new();
    let preview = ServerAction::<PreviewBackup>::new();
    Effect::new(move |_| {
        if let Some(Ok(job)) = preview.value().get() {
            console.watch(job);
            target.set(None);
            console.refresh();
        }
    });
    let detail = Resource::new(
        move || target.get().map(|b| b.id),
        |id| async move {
            match id {
                Some(id) => get_backup(id).await.ok(),
                None => None,
            }
        },
    );
    // A fresh start each time the dialog opens.
    Effect::new(move |_| {
        if target.with(Option::is_some) {
            understood.set(false);
            typed.set(String::new());
            restore.clear();
            preview.clear();
        }
    });
    Effect::new(move |_| {
        if let Some(Err(_)) = restore.value().get() {
            // Refused: nothing will switch.
            console.switching.set_value(None);
        }
        if let Some(Ok(job)) = restore.value().get() {
            console.watch(job);
            console
                .restoring
                .set(target.get_untracked().map(|b| b.filename));
            target.set(None);
            console.refresh();
        }
    });
    let name = move || target.with(|t| t.as_ref().map(|b| b.filename.clone()).unwrap_or_default());
    let ready = Signal::derive(move || understood.get() && typed.with(|t| t.trim() == name()));
    let error = move || restore.value().get().and_then(|r| r.err());
    view! {
        <ConsoleDialog open labelled_by="restore-title" class="restore-dialog">
                <DialogBody>
                    <DialogTitle attr:id="restore-title">"Restore this backup?"</DialogTitle>
                    <DialogContent>
                        <MessageBar intent=MessageBarIntent::Warning>
                            <MessageBarBody>
                                "All current data in the LMS database will be replaced by the \
                                data in this backup."
                            </MessageBarBody>
                        </MessageBar>
                        {move || {
                            target
                                .get()
                                .map(|b| {
                                    view! {
                                        <dl class="facts restore-facts">
                                            <div>
                                                <dt>"Backup"</dt>
                                                <dd class="filename">{b.filename.clone()}</dd>
                                            </div>
                                            <div>
                                                <dt>"Taken"</dt>
                                                <dd>
                                                    <LocalTime at=b.created_at relative=true />
                                                </dd>
                                            </div>
                                            <Fact term="By">{b.created_by.clone()}</Fact>
                                        </dl>
                                    }
                                })
                        }}
                        <Suspense fallback=|| view! { <p class="muted">"Reading what it holds…"</p> }>
                            {move || Suspend::new(async move {
                                let tables = detail.await?.manifest?.tables?;
                                let rows: i64 = tables.iter().map(|t| t.rows).sum();
                                Some(
                                    view! {
                                        <p data-testid="restore-summary">
                                            {format!(
                                                "It holds {} tables with {} rows in all.",
                                                tables.len(),
                                                thousands(rows),
                                            )}
                                        </p>
                                    },
                                )
                            })}
                        </Suspense>
                        <RestoreAdmins backup_id=Signal::derive(move || {
                            target.with(|t| t.as_ref().map(|b| b.id))
                        }) />
                        <ul class="restore-points">
                            <li>"The site switches over in about a second; meanwhile pages show a short maintenance notice."</li>
                            <li>"Everyone, you included, is signed out and signs in again."</li>
                            <li>"The current database is kept, so this restore can be undone."</li>
                        </ul>
                        <ConfirmCheckbox checked=understood label="I understand this will replace all current data" />
                        <Field label=Signal::derive(move || format!("Type the backup's name ({}) to confirm", name()))>
                            <Input
                                value=typed
                                rules=name_rules(Signal::derive(name))
                                attr:autocomplete="off"
                                attr:spellcheck="false"
                            />
                        </Field>
                        {move || error().map(|e| view! { <ErrorBar message=e.to_string() /> })}
                        <p class="muted preview-hint">
                            "Not sure? Preview changes restores it beside the live database first                             and shows what would come back, be lost and be reverted, without                             touching the site; from there single records can be brought back."
                        </p>
                        {move || preview.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBar message=e.to_string() /> })}
                    </DialogContent>
                    <CancelOr on_cancel=move |_| target.set(None)>
                        <Button
                            appearance=ButtonAppearance::Secondary
                            loading=preview.pending()
                            on_click=move |_| {
                                if let Some(b) = target.get_untracked() {
                                    preview.dispatch(PreviewBackup { id: b.id });
                                }
                            }
                        >
                            "Preview changes"
                        </Button>
                        <Button
                            appearance=ButtonAppearance::Primary
                            class="danger-button"
                            disabled=Signal::derive(move || !ready.get())
                            loading=restore.pending()
                            on_click=move |_| {
                                if let Some(b) = target.get_untracked() {
                                    console.switching.set_value(Some(Operation::Restore));
                                    console.restoring.set(Some(b.filename.clone()));
                                    restore.dispatch(RestoreBackup { id: b.id, confirm: true });
                                }
                            }
                        >
                            "Restore"
                        </Button>
                    </CancelOr>
                </DialogBody>
        </ConsoleDialog>
    }
}

/// The delete confirmation: what the backup is (so the right one goes),
/// with a warning when it is the newest verified backup.
#[component]
fn DeleteDialog(target: RwSignal<Option<BackupSummary>>) -> impl IntoView {
    let console = Console::expect();
    let open = open_for(target);
    let delete = ServerAction::<DeleteBackup>::new();
    // The newest verified backup, to warn before it goes.
    let newest_verified = Resource::new(
        move || target.with(|t| t.as_ref().map(|b| b.id)),
        |id| async move {
            id?;
            let list = list_backups(0, NEWEST_SCAN).await.ok()?;
            list.backups
                .into_iter()
                .find(|b| b.status == BackupStatus::Completed && b.sha256.is_some())
                .map(|b| b.id)
        },
    );
    Effect::new(move |_| {
        if target.with(Option::is_some) {
            delete.clear();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            if let Some(b) = target.get_untracked() {
                console.toast_success(format!("Deleted {}.", b.filename));
            }
            target.set(None);
            console.refresh();
        }
    });
    let error = move || delete.value().get().and_then(|r| r.err());
    view! {
        <ConsoleDialog open labelled_by="delete-title" class="delete-dialog">
                <DialogBody>
                    <DialogTitle attr:id="delete-title">"Delete this backup?"</DialogTitle>
                    <DialogContent>
                        {move || target.get().map(|b| view! { <DeleteFacts backup=b /> })}
                        <Suspense>
                            {move || Suspend::new(async move {
                                let newest = newest_verified.await?;
                                (target.with(|t| t.as_ref().map(|b| b.id)) == Some(newest))
                                    .then(|| {
                                        view! {
                                            <MessageBar intent=MessageBarIntent::Warning attr:data-testid="newest-warning">
                                                <MessageBarBody>
                                                    "This is the newest verified backup. Without it, the \
                                                    database can only go back to an older one."
                                                </MessageBarBody>
                                            </MessageBar>
                                        }
                                    })
                            })}
                        </Suspense>
                        <p>"The archive and its manifest are removed from the backup directory for good."</p>
                        {move || error().map(|e| view! { <ErrorBar message=e.to_string() /> })}
                    </DialogContent>
                    <CancelOr on_cancel=move |_| target.set(None)>
                        <Button
                            appearance=ButtonAppearance::Primary
                            class="danger-button"
                            loading=delete.pending()
                            on_click=move |_| {
                                if let Some(b) = target.get_untracked() {
                                    delete.dispatch(DeleteBackup { id: b.id });
                                }
                            }
                        >
                            "Delete backup"
                        </Button>
                    </CancelOr>
                </DialogBody>
        </ConsoleDialog>
    }
}

/// How many of the newest backups are searched for the newest verified one.
const NEWEST_SCAN: i64 = 100;

/// Name, time (the viewer's zone), size, notes and author of a backup about
/// to be deleted.
#[component]
fn DeleteFacts(backup: BackupSummary) -> impl IntoView {
    let b = backup;
    view! {
        <dl class="facts delete-facts" data-testid="delete-facts">
            <div>
                <dt>"Backup"</dt>
                <dd class="filename">{b.filename.clone()}</dd>
            </div>
            <div>
                <dt>"Taken"</dt>
                <dd>
                    <LocalTime at=b.created_at relative=true />
                </dd>
            </div>
            <Fact term="Size">{b.size_bytes.map(human_bytes).unwrap_or_else(|| "—".into())}</Fact>
            <Fact term="Status">{b.status.as_str()}</Fact>
            <Fact term="By">{b.created_by.clone()}</Fact>
            <Fact term="Notes">{b.notes.clone().unwrap_or_else(|| "—".into())}</Fact>
        </dl>
    }
}

/// The restore name field's checks: a hint as soon as the typed text
/// cannot become the name, and on leaving the field when it is not the name.
fn name_rules(name: Signal<String>) -> Vec<InputRule> {
    let mismatch = || FieldValidationState::Error("Does not match the backup's name.".into());
    vec![
        InputRule::validator(move |typed: &String, _| {
            let typed = typed.trim();
            if typed.is_empty() || name.with_untracked(|n| n.starts_with(typed)) {
                Ok(())
            } else {
                Err(mismatch())
            }
        })
        .with_trigger(InputRuleTrigger::Input),
        InputRule::validator(move |typed: &String, _| {
            let typed = typed.trim();
            if typed.is_empty() || name.with_untracked(|n| n == typed) {
                Ok(())
            } else {
                Err(mismatch())
            }
        })
        .with_trigger(InputRuleTrigger::Blur),
    ]
}

/// The manifest: versions, checksum, tables with row counts.
#[component]
fn DetailsDialog(target: RwSignal<Option<BackupSummary>>) -> impl IntoView {
    let open = open_for(target);
    let pins = PinState::for_dialog();
    // Made here, not in what the Suspend draws (see `PinState`).
    let console = Console::expect();
    let drill = ServerAction::<DrillBackup>::new();
    Effect::new(move |_| {
        if let Some(Ok(job)) = drill.value().get() {
            console.toast_success(format!(
                "Restore drill started: {} is being restored into a scratch database; the live \
                 database is not touched.",
                job.backup_name.unwrap_or_default()
            ));
            console.refresh();
            target.set(None);
        }
    });
    Effect::new(move |_| {
        if let Some(b) = target.get() {
            pins.show(&b);
        }
    });
    let detail = Resource::new(
        move || target.get().map(|b| b.id),
        |id| async move {
            match id {
                Some(id) => Some(get_backup(id).await),
                None => None,
            }
        },
    );
    view! {
        <ConsoleDialog open labelled_by="details-title" class="details-dialog">
                <DialogBody>
                    <DialogTitle attr:id="details-title" class="details-title">
                        <span
                            class="clip"
                            title=move || target.with(|t| t.as_ref().map(|b| b.filename.clone()))
                        >
                            {move || target.with(|t| t.as_ref().map(|b| b.filename.clone()).unwrap_or_default())}
                        </span>
                    </DialogTitle>
                    <DialogContent>
                        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                            {move || Suspend::new(async move {
                                let shown = detail.await?;
                                // Details that arrive after the dialog moved on are not drawn.
                                let wanted = target.with_untracked(|t| t.as_ref().map(|b| b.id));
                                match shown {
                                    Err(e) => Some(view! { <ErrorBar message=e.to_string() /> }.into_any()),
                                    Ok(d) if Some(d.summary.id) == wanted => {
                                        Some(view! { <ManifestView detail=d pins drill /> }.into_any())
                                    }
                                    Ok(_) => None,
                                }
                            })}
                        </Suspense>
                    </DialogContent>
                    <DialogActions>
                        <Button appearance=ButtonAppearance::Secondary on_click=move |_| target.set(None)>
                            "Close"
                        </Button>
                    </DialogActions>
                </DialogBody>
        </ConsoleDialog>
    }
}

#[component]
fn ManifestView(
    detail: crate::models::BackupDetail,
    pins: PinState,
    drill: ServerAction<DrillBackup>,
) -> impl IntoView {
    let b = detail.summary;
    let drill_words = match &b.drill {
        Some(d) => d.words(&d.at.format("%Y-%m-%d %H:%M UTC").to_string()),
        None => "never tested".to_owned(),
    };
    let drillable = b.status == BackupStatus::Completed;
    let comparable = drillable && detail.manifest.as_ref().is_some_and(|m| m.tables.is_some());
    let id = b.id;
    let for_pin = b.clone();
    let facts = detail.manifest.as_ref().map(|m| {
        let (server, dump, format) = (
            m.server_version.clone(),
            m.pg_dump_version.clone(),
            m.archive_version.clone(),
        );
        let took = duration_words((m.duration_ms / 1000) as i64);
        view! {
            <Fact term="PostgreSQL">{server}</Fact>
            <Fact term="pg_dump">{dump}</Fact>
            <Fact term="Archive format">{format}</Fact>
            <Fact term="Took">{took}</Fact>
        }
    });
    let encrypted_for = detail
        .manifest
        .as_ref()
        .and_then(|m| Some((m.encrypted_for.clone()?, m.kept_encrypted)));
    let tables = detail.manifest.and_then(|m| m.tables);
    view! {
        <dl class="facts manifest-facts">
            <div class="wide-fact">
                <dt>"Name"</dt>
                <dd class="filename">{b.filename.clone()}</dd>
            </div>
            <Fact term="Status">{b.status.as_str()}</Fact>
            <Fact term="Size">{b.size_bytes.map(human_bytes).unwrap_or_else(|| "—".into())}</Fact>
            {b.offsite.clone().map(|copy| view! {
                <div class="wide-fact" data-testid="offsite-fact">
                    <dt>"Copies"</dt>
                    <dd>
                        {match (copy.state, b.status == BackupStatus::Missing) {
                            (OffsiteState::Verified, false) => "Here and off-site (verified)".to_owned(),
                            (OffsiteState::Verified, true) => {
                                "Off-site only (verified): a download or restore fetches it back".to_owned()
                            }
                            (state, false) => format!("Here; {}", state.words()),
                            (state, true) => format!("Not here; {}", state.words()),
                        }}
                        {copy.error.map(|e| view! { <span class="offsite-error">{format!(" — {e}")}</span> })}
                    </dd>
                </div>
            })}
            {encrypted_for.map(|(keys, kept_encrypted)| view! {
                <div class="wide-fact" data-testid="encrypted-for">
                    <dt>
                        {if kept_encrypted {
                            "Encrypted (age) here and off-site, for"
                        } else {
                            "Off-site copy encrypted (age) for"
                        }}
                    </dt>
                    <dd class="keys">{keys}</dd>
                </div>
            })}
            <div class="wide-fact" data-testid="drill-fact">
                <dt>"Restore drill"</dt>
                <dd>
                    {drill_words}
                    {drillable.then(|| view! {
                        " "
                        <Button
                            size=ButtonSize::Small
                            loading=drill.pending()
                            on_click=move |_| {
                                drill.dispatch(DrillBackup { id: Some(id) });
                            }
                        >
                            "Run restore drill"
                        </Button>
                    })}
                    {move || drill.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBar message=e.to_string() /> })}
                </dd>
            </div>
            {b.original_name.map(|name| view! { <Fact term="Uploaded file">{name}</Fact> })}
            {facts}
            {b.notes.clone().map(|notes| view! {
                <div class="wide-fact">
                    <dt>"Notes"</dt>
                    <dd class="notes-full">{notes}</dd>
                </div>
            })}
        </dl>
        {b.sha256.map(|sha| view! { <p class="sha">"SHA-256 " <code>{sha}</code></p> })}
        <PinControl backup=for_pin state=pins />
        {comparable.then(|| view! { <CompareWith id /> })}
        {match tables {
            Some(tables) => {
                view! {
                    <Table class="stats-table" attr:aria-label="Tables in this backup">
                        <TableHeader>
                            <TableRow>
                                <TableHeaderCell>"Table"</TableHeaderCell>
                                <TableHeaderCell class="num">"Rows"</TableHeaderCell>
                            </TableRow>
                        </TableHeader>
                        <TableBody>
                            {tables
                                .into_iter()
                                .map(|t| {
                                    let name = table_label(&t.schema, &t.name);
                                    view! {
                                        <TableRow>
                                            <TableCell>{name}</TableCell>
                                            <TableCell class="num">{thousands(t.rows)}</TableCell>
                                        </TableRow>
                                    }
                                })
                                .collect_view()}
                        </TableBody>
                    </Table>
                }
                    .into_any()
            }
            None => {
                view! {
                    <p class="muted">
                        "No table record yet: an uploaded archive gets one at its first restore."
                    </p>
                }
                    .into_any()
            }
        }}
    }
}
