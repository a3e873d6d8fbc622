use leptos::prelude::*;
use thaw::{
    Badge, BadgeColor, Button, ButtonAppearance, Card, CardHeader, Field, Input, MessageBar,
    MessageBarBody, MessageBarIntent, Table, TableBody, TableCell, TableHeader, TableHeaderCell,
    TableRow,
};

use super::operation_panel::{poll_status, OperationPanel};
use crate::functions::{list_backups, CreateBackup, DeleteBackup};
use crate::models::{human_bytes, BackupSummary, OperationStatus};

/// Backups of the LMS database: create one, follow it live, list, download
/// and delete them.
#[component]
pub fn BackupCard() -> impl IntoView {
    let (status, set_status) = signal(None::<OperationStatus>);
    poll_status(set_status);
    // The list reloads whenever an operation ends (or starts).
    let list_version = Memo::new(move |_| {
        status.with(|s| {
            s.as_ref()
                .and_then(|s| s.job.as_ref().map(|j| (j.id.clone(), j.status.clone())))
        })
    });
    let create = ServerAction::<CreateBackup>::new();
    let delete = ServerAction::<DeleteBackup>::new();
    let backups = Resource::new(
        move || {
            (
                list_version.get(),
                create.version().get(),
                delete.version().get(),
            )
        },
        |_| list_backups(0, 50),
    );
    let notes = RwSignal::new(String::new());
    let busy_reason = move || {
        status.with(|s| {
            let s = s.as_ref()?;
            s.is_locked.then(|| {
                format!(
                    "A {} started by {} at {} is running.",
                    s.operation_type.clone().unwrap_or_default(),
                    s.locked_by.clone().unwrap_or_default(),
                    s.locked_at
                        .map(|t| t.format("%H:%M UTC").to_string())
                        .unwrap_or_default()
                )
            })
        })
    };
    let action_error = move || {
        let failed = |r: Option<Result<_, crate::error::AppError>>| r.and_then(|r| r.err());
        failed(create.value().get().map(|r| r.map(|_| ()))).or_else(|| failed(delete.value().get()))
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            notes.set(String::new());
        }
    });

    view! {
        <Card class="panel">
            <CardHeader>
                <h2 id="backups-title">"Database Backup & Restore"</h2>
            </CardHeader>
            <p class="muted">
                "Verified PostgreSQL backups of the LMS database: every backup listed as \
                completed has been read back in full before it was accepted."
            </p>
            <form
                class="backup-actions"
                on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    let text = notes.get_untracked();
                    create.dispatch(CreateBackup { notes: (!text.trim().is_empty()).then_some(text) });
                }
            >
                <Field label="Notes for the new backup (optional)" class="notes-field">
                    <Input value=notes attr:maxlength="500" placeholder="e.g. before the term starts" />
                </Field>
                <span title=move || busy_reason().unwrap_or_default()>
                    <Button
                        appearance=ButtonAppearance::Primary
                        button_type=thaw::ButtonType::Submit
                        loading=create.pending()
                        disabled=Signal::derive(move || busy_reason().is_some())
                    >
                        "Create backup"
                    </Button>
                </span>
            </form>
            {move || {
                action_error()
                    .map(|e| {
                        view! {
                            <MessageBar intent=MessageBarIntent::Error attr:role="alert">
                                <MessageBarBody>{e.to_string()}</MessageBarBody>
                            </MessageBar>
                        }
                    })
            }}
            <OperationPanel status />
            <Transition fallback=|| view! { <p class="muted">"Loading backups…"</p> }>
                {move || Suspend::new(async move {
                    match backups.await {
                        Ok(list) if list.backups.is_empty() => {
                            view! {
                                <div class="empty-state">
                                    <p class="empty-title">"No backups yet"</p>
                                    <p class="muted">
                                        "Backups you create or upload will be listed here."
                                    </p>
                                </div>
                            }
                                .into_any()
                        }
                        Ok(list) => view! { <BackupTable backups=list.backups delete /> }.into_any(),
                        Err(e) => {
                            view! {
                                <MessageBar intent=MessageBarIntent::Error>
                                    <MessageBarBody>{e.to_string()}</MessageBarBody>
                                </MessageBar>
                            }
                                .into_any()
                        }
                    }
                })}
            </Transition>
        </Card>
    }
}

#[component]
fn BackupTable(backups: Vec<BackupSummary>, delete: ServerAction<DeleteBackup>) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <Table attr:aria-labelledby="backups-title">
                <TableHeader>
                    <TableRow>
                        <TableHeaderCell>"Name"</TableHeaderCell>
                        <TableHeaderCell>"Created"</TableHeaderCell>
                        <TableHeaderCell>"Size"</TableHeaderCell>
                        <TableHeaderCell>"Status"</TableHeaderCell>
                        <TableHeaderCell>"By"</TableHeaderCell>
                        <TableHeaderCell>"Notes"</TableHeaderCell>
                        <TableHeaderCell>"Actions"</TableHeaderCell>
                    </TableRow>
                </TableHeader>
                <TableBody>
                    {backups.into_iter().map(|b| view! { <BackupRow backup=b delete /> }).collect_view()}
                </TableBody>
            </Table>
        </div>
    }
}

#[component]
fn BackupRow(backup: BackupSummary, delete: ServerAction<DeleteBackup>) -> impl IntoView {
    let color = match backup.status.as_str() {
        "completed" => BadgeColor::Success,
        "running" => BadgeColor::Informative,
        "missing" => BadgeColor::Warning,
        _ => BadgeColor::Danger,
    };
    let id = backup.id;
    let name = backup.filename.clone();
    let download = (backup.status == "completed").then(|| {
        view! {
            <a class="download" href=format!("/api/admin/backup/download/{id}") download=backup.filename.clone()>
                "Download"
            </a>
        }
    });
    let checksum = backup.sha256.clone().map(|sha| {
        view! {
            <span class="checksum" title=format!("SHA-256 {sha}")>
                {format!("✔ verified · sha256 {}…", &sha[..12])}
            </span>
        }
    });
    let on_delete = move |_| {
        let sure = window()
            .confirm_with_message(&format!(
                "Delete {name}? The archive file is removed for good."
            ))
            .unwrap_or(false);
        if sure {
            delete.dispatch(DeleteBackup { id });
        }
    };
    view! {
        <TableRow>
            <TableCell>
                <span class="filename">{backup.filename.clone()}</span>
                {checksum}
            </TableCell>
            <TableCell>{backup.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}</TableCell>
            <TableCell class="num">{backup.size_bytes.map(human_bytes)}</TableCell>
            <TableCell>
                <Badge color>{backup.status.clone()}</Badge>
            </TableCell>
            <TableCell>{backup.created_by.clone()}</TableCell>
            <TableCell class="notes">{backup.notes.clone()}</TableCell>
            <TableCell>
                <div class="row-actions">
                    {download}
                    <Button appearance=ButtonAppearance::Subtle on_click=on_delete>
                        "Delete"
                    </Button>
                </div>
            </TableCell>
        </TableRow>
    }
}
