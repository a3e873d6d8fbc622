//! The prepared copy (Preview changes): what a restore of its backup would
//! bring back, lose and revert, table by table; from it, deleted records
//! brought back (plan first), a switch to the copy, or discarding it; and
//! the recent record recoveries, each undoable.

use leptos::prelude::*;
use thaw::{
    Button, ButtonAppearance, ButtonSize, DialogBody, DialogContent, DialogTitle, Field, Input,
    MessageBar, MessageBarBody, MessageBarIntent, Table, TableBody, TableCell, TableHeader,
    TableRow,
};

use super::console::Console;
use super::dialog::{CancelOr, ConfirmCheckbox, ConsoleDialog};
use super::error_bar::ErrorBar;
use super::facts::Fact;
use super::table_header::TableHeaderCell;
use super::time::LocalTime;
use crate::functions::{
    get_preview, list_recoveries, DiscardPreview, PlanRecovery, RecoverRecords, SwitchToPrepared,
    UndoRecovery,
};
use crate::models::{
    table_label, thousands, Operation, Preview, RecoverableRow, RecoveryPlan, RecoveryRecord,
    TableDiff,
};

/// Matching deleted rows listed at most.
const SHOWN_MATCHES: usize = 6;

/// The prepared copy, when there is one, and the recent recoveries.
#[component]
pub fn PreparedPanel() -> impl IntoView {
    let console = Console::expect();
    // Reloaded when a job that changes them starts or ends, not for every
    // job (a plan's own short job must not throw away the plan being read).
    let previews = last_job_of(
        console,
        &[
            Operation::Preview,
            Operation::Discard,
            Operation::Restore,
            Operation::Recover,
            Operation::RecoverUndo,
        ],
    );
    let recoveries_changed = last_job_of(console, &[Operation::Recover, Operation::RecoverUndo]);
    let preview = Resource::new(
        move || (console.version(), previews.get()),
        |_| get_preview(),
    );
    let recoveries = Resource::new(
        move || (console.version(), recoveries_changed.get()),
        |_| list_recoveries(),
    );
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match preview.await {
                    Ok(Some(p)) => view! { <PreparedCopy p /> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match recoveries.await {
                    Ok(list) if !list.is_empty() => view! { <Recoveries list /> }.into_any(),
                    Ok(_) => ().into_any(),
                    Err(e) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The newest job of one of `kinds` the status showed (id and status),
/// kept while other jobs run.
fn last_job_of(
    console: Console,
    kinds: &'static [Operation],
) -> Memo<Option<(String, crate::models::JobStatus)>> {
    Memo::new(
        move |previous: Option<&Option<(String, crate::models::JobStatus)>>| {
            let now = console.status.with(|s| {
                s.as_ref()
                    .and_then(|s| s.job.as_ref())
                    .filter(|j| kinds.contains(&j.kind))
                    .map(|j| (j.id.clone(), j.status))
            });
            now.or_else(|| previous.cloned().flatten())
        },
    )
}

#[component]
fn PreparedCopy(p: Preview) -> impl IntoView {
    let console = Console::expect();
    let discard = ServerAction::<DiscardPreview>::new();
    let switch_open = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(())) = discard.value().get() {
            console.refresh();
        }
    });
    let lines: Vec<(&'static str, String)> = [
        ("preview-come-back", p.would_come_back()),
        ("preview-lost", p.would_be_lost()),
        ("preview-reverted", p.would_be_reverted()),
    ]
    .into_iter()
    .filter_map(|(id, line)| line.map(|l| (id, format!("{l}."))))
    .collect();
    let same = lines.is_empty();
    let unkeyed = p.unkeyed_differences();
    let differing: Vec<TableDiff> = p.tables.iter().filter(|t| !t.is_same()).cloned().collect();
    // The records an administrator thinks of first (users, courses) lead.
    let mut by_rank: Vec<&TableDiff> = p.tables.iter().collect();
    by_rank.sort_by_key(|t| lms_types::records::rank(&t.schema, &t.name));
    let recoverable: Vec<(String, RecoverableRow)> = by_rank
        .into_iter()
        .flat_map(|t| {
            let table = format!("{}.{}", t.schema, t.name);
            t.recoverable
                .iter()
                .map(move |r| (table.clone(), r.clone()))
        })
        .collect();
    let busy = move || console.lock_reason().is_some();
    let title = format!("Preview of {}", p.backup_name);
    view! {
        <section class="prepared" aria-labelledby="prepared-title" data-testid="prepared">
            <h3 id="prepared-title">{title}</h3>
            <p class="muted">
                "The backup is restored beside the live database as a prepared copy and compared \
                with it row by row. Nothing has changed on the site."
            </p>
            <dl class="facts">
                <Fact term="Prepared copy">
                    <code data-testid="prepared-database">{p.database.clone()}</code>
                </Fact>
                <div>
                    <dt>"Compared"</dt>
                    <dd>
                        <LocalTime at=p.compared_at relative=true />
                        {format!(" (in {:.1} s)", p.compare_ms as f64 / 1000.0)}
                    </dd>
                </div>
                <div>
                    <dt>"Kept until"</dt>
                    <dd><LocalTime at=p.expires_at /></dd>
                </div>
            </dl>
            <div class="preview-lines" role="status">
                {lines
                    .into_iter()
                    .map(|(id, line)| view! { <p data-testid=id>{line}</p> })
                    .collect_view()}
                {same.then(|| view! {
                    <p data-testid="preview-same">"The live database holds exactly what the backup holds."</p>
                })}
                {(!unkeyed.is_empty()).then(|| view! {
                    <p class="muted">
                        {format!(
                            "Without a primary key, compared by row count and content only, and different: {}.",
                            unkeyed.join(", ")
                        )}
                    </p>
                })}
            </div>
            {(!differing.is_empty()).then(|| view! { <DiffTable tables=differing /> })}
            <p class="muted small">
                "The prepared copy can be read with any SQL client under the name above."
            </p>
            {(!recoverable.is_empty()).then(|| view! { <RecoverPicker rows=recoverable /> })}
            <OtherRecord />
            <div class="button-row">
                <Button
                    appearance=ButtonAppearance::Primary
                    class="danger-button"
                    disabled=Signal::derive(busy)
                    on_click=move |_| switch_open.set(true)
                >
                    "Switch to this copy…"
                </Button>
                <Button
                    appearance=ButtonAppearance::Secondary
                    disabled=Signal::derive(busy)
                    loading=discard.pending()
                    on_click=move |_| {
                        discard.dispatch(DiscardPreview {});
                    }
                >
                    "Discard copy"
                </Button>
            </div>
            {move || discard.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBar message=e.to_string() /> })}
            <SwitchDialog open=switch_open backup=p.backup_name.clone() />
        </section>
    }
}

/// The tables that differ, with a few of their rows.
#[component]
fn DiffTable(tables: Vec<TableDiff>) -> impl IntoView {
    let rows = |n: Option<i64>| n.map(thousands).unwrap_or_else(|| "—".into());
    let count = |n: i64| if n == 0 { String::new() } else { thousands(n) };
    view! {
        <Table class="stats-table diff-table" attr:aria-label="Tables that differ from the backup">
            <TableHeader>
                <TableRow>
                    <TableHeaderCell>"Table"</TableHeaderCell>
                    <TableHeaderCell class="num">"Live"</TableHeaderCell>
                    <TableHeaderCell class="num">"In backup"</TableHeaderCell>
                    <TableHeaderCell class="num">"Added since"</TableHeaderCell>
                    <TableHeaderCell class="num">"Deleted since"</TableHeaderCell>
                    <TableHeaderCell class="num">"Changed since"</TableHeaderCell>
                </TableRow>
            </TableHeader>
            <TableBody>
                {tables
                    .into_iter()
                    .map(|t| {
                        let samples: Vec<String> = t
                            .deleted_samples
                            .iter()
                            .map(|s| format!("deleted: {s}"))
                            .chain(t.added_samples.iter().map(|s| format!("added: {s}")))
                            .chain(t.changed_samples.iter().map(|s| format!("changed: {s}")))
                            .collect();
                        let label = table_label(&t.schema, &t.name);
                        let label = if t.keyed { label } else { format!("{label} (no key)") };
                        view! {
                            <TableRow>
                                <TableCell>
                                    {label}
                                    {(!samples.is_empty()).then(|| view! {
                                        <details class="samples">
                                            <summary>"Rows"</summary>
                                            <ul>
                                                {samples.into_iter().map(|s| view! { <li>{s}</li> }).collect_view()}
                                            </ul>
                                        </details>
                                    })}
                                </TableCell>
                                <TableCell class="num">{rows(t.live_rows)}</TableCell>
                                <TableCell class="num">{rows(t.copy_rows)}</TableCell>
                                <TableCell class="num lost">{count(t.added)}</TableCell>
                                <TableCell class="num back">{count(t.deleted)}</TableCell>
                                <TableCell class="num">{count(t.changed)}</TableCell>
                            </TableRow>
                        }
                    })
                    .collect_view()}
            </TableBody>
        </Table>
    }
}

/// Which record to bring back: deleted rows found by what they are called.
#[component]
fn RecoverPicker(rows: Vec<(String, RecoverableRow)>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let chosen = RwSignal::new(None::<(String, String)>);
    let rows = StoredValue::new(rows);
    // The first few rows whose words contain the query, and how many more.
    let found = Memo::new(move |_| {
        let q = query.get().trim().to_lowercase();
        rows.with_value(|rows| {
            let all: Vec<&(String, RecoverableRow)> = rows
                .iter()
                .filter(|(_, r)| q.is_empty() || r.words.to_lowercase().contains(&q))
                .collect();
            let more = all.len().saturating_sub(SHOWN_MATCHES);
            let shown: Vec<(String, RecoverableRow)> =
                all.into_iter().take(SHOWN_MATCHES).cloned().collect();
            (shown, more)
        })
    });
    let matches = move || found.get().0;
    let more = move || found.get().1;
    view! {
        <section class="recover" aria-labelledby="recover-title">
            <h4 id="recover-title">"Bring back deleted records"</h4>
            <p class="muted">
                "Pick a record deleted since the backup: it comes back with everything that \
                belongs to it (a course's lessons, enrollments and activity) and what it needs, \
                while everything else stays as it is now."
            </p>
            <Field label="Find by course title, username or e-mail">
                <Input value=query attr:autocomplete="off" attr:spellcheck="false" />
            </Field>
            <ul class="recover-matches" data-testid="recover-matches">
                {move || {
                    matches()
                        .into_iter()
                        .map(|(table, row)| {
                            let pick = (table.clone(), row.key.clone());
                            view! {
                                <li>
                                    <span>{row.words.clone()}</span>
                                    <Button
                                        size=ButtonSize::Small
                                        appearance=ButtonAppearance::Secondary
                                        on_click=move |_| chosen.set(Some(pick.clone()))
                                    >
                                        "Plan recovery"
                                    </Button>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            {move || (more() > 0).then(|| view! {
                <p class="muted small">{format!("{} more match; type more of the name to narrow them down.", more())}</p>
            })}
            {move || chosen.get().map(|(table, key)| view! { <PlanView table key on_done=chosen /> })}
        </section>
    }
}

/// A record by table and key, for rows the list does not offer.
#[component]
fn OtherRecord() -> impl IntoView {
    let table = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let chosen = RwSignal::new(None::<(String, String)>);
    view! {
        <details class="other-record">
            <summary>"Another record, by table and key"</summary>
            <div class="field-row">
                <Field label="Table (schema.table)">
                    <Input value=table attr:autocomplete="off" attr:spellcheck="false" />
                </Field>
                <Field label="Key (42, or col=value,col=value)">
                    <Input value=key attr:autocomplete="off" attr:spellcheck="false" />
                </Field>
                <Button
                    appearance=ButtonAppearance::Secondary
                    disabled=Signal::derive(move || table.with(|t| t.trim().is_empty()) || key.with(|k| k.trim().is_empty()))
                    on_click=move |_| chosen.set(Some((table.get_untracked(), key.get_untracked())))
                >
                    "Plan recovery"
                </Button>
            </div>
            {move || chosen.get().map(|(table, key)| view! { <PlanView table key on_done=chosen /> })}
        </details>
    }
}

/// The plan for one record, then the recovery.
#[component]
fn PlanView(
    table: String,
    key: String,
    on_done: RwSignal<Option<(String, String)>>,
) -> impl IntoView {
    let console = Console::expect();
    let plan = ServerAction::<PlanRecovery>::new();
    let recover = ServerAction::<RecoverRecords>::new();
    let understood = RwSignal::new(false);
    plan.dispatch(PlanRecovery {
        table: table.clone(),
        key: key.clone(),
    });
    Effect::new(move |_| {
        if let Some(Ok(job)) = recover.value().get() {
            console.watch(job);
            on_done.set(None);
            console.refresh();
        }
    });
    let (table, key) = (StoredValue::new(table), StoredValue::new(key));
    view! {
        <div class="recovery-plan" data-testid="recovery-plan" aria-live="polite">
            {move || match plan.value().get() {
                None => view! { <p class="muted">"Working out what belongs to it…"</p> }.into_any(),
                Some(Err(e)) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                Some(Ok(p)) => {
                    let rows = p.rows_to_insert();
                    let can_run = p.can_run();
                    view! {
                        <PlanFacts p />
                        {can_run.then(|| view! {
                            <ConfirmCheckbox checked=understood label="I understand these rows are inserted into the live database" />
                            <Button
                                appearance=ButtonAppearance::Primary
                                disabled=Signal::derive(move || !understood.get() || console.lock_reason().is_some())
                                loading=recover.pending()
                                on_click=move |_| {
                                    recover.dispatch(RecoverRecords {
                                        table: table.get_value(),
                                        key: key.get_value(),
                                        confirm: true,
                                        expect_rows: Some(rows),
                                    });
                                }
                            >
                                {format!("Recover {} rows", thousands(rows))}
                            </Button>
                        })}
                    }
                        .into_any()
                }
            }}
            {move || recover.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBar message=e.to_string() /> })}
        </div>
    }
}

#[component]
fn PlanFacts(p: RecoveryPlan) -> impl IntoView {
    let summary = match p.insert_words() {
        Some(words) => format!("Recovering {} inserts {words}.", p.root),
        None => format!(
            "{} and everything that belongs to it exist in the live database: nothing to insert.",
            p.root
        ),
    };
    let kept: Vec<String> = p
        .tables
        .iter()
        .filter(|t| t.unchanged + t.changed > 0)
        .map(|t| {
            let label = table_label(&t.schema, &t.name);
            match t.changed {
                0 => format!(
                    "{label}: {} exist live as in the backup",
                    thousands(t.unchanged)
                ),
                n => format!(
                    "{label}: {} exist live, {} of them changed since (left as they are)",
                    thousands(t.unchanged + n),
                    thousands(n)
                ),
            }
        })
        .collect();
    let changed: Vec<String> = p
        .tables
        .iter()
        .flat_map(|t| {
            t.changed_samples
                .iter()
                .map(|s| format!("changed since, left as it is: {s}"))
        })
        .collect();
    let needed: Vec<String> = p
        .tables
        .iter()
        .filter(|t| t.needed > 0)
        .map(|t| {
            format!(
                "{} {} it needs, deleted since",
                thousands(t.needed),
                table_label(&t.schema, &t.name)
            )
        })
        .collect();
    view! {
        <p data-testid="plan-summary">{summary}</p>
        {(!needed.is_empty()).then(|| view! { <p class="muted">{format!("Includes {}.", needed.join(", "))}</p> })}
        {(!kept.is_empty()).then(|| view! {
            <ul class="plan-kept">
                {kept.into_iter().chain(changed).map(|k| view! { <li>{k}</li> }).collect_view()}
            </ul>
        })}
        {(!p.blockers.is_empty()).then(|| view! {
            <MessageBar intent=MessageBarIntent::Error>
                <MessageBarBody>
                    <p>"The recovery is blocked; nothing would change:"</p>
                    <ul data-testid="plan-blockers">
                        {p.blockers
                            .iter()
                            .map(|b| view! { <li>{format!("{} {}: {}", b.table, b.row, b.reason)}</li> })
                            .collect_view()}
                    </ul>
                </MessageBarBody>
            </MessageBar>
        })}
    }
}

/// Switching the prepared copy in, as a restore would.
#[component]
fn SwitchDialog(open: RwSignal<bool>, backup: String) -> impl IntoView {
    let console = Console::expect();
    let understood = RwSignal::new(false);
    let switch = ServerAction::<SwitchToPrepared>::new();
    Effect::new(move |_| {
        if open.get() {
            understood.set(false);
            switch.clear();
        }
    });
    let restoring = backup.clone();
    Effect::new(move |_| match switch.value().get() {
        Some(Ok(job)) => {
            console.watch(job);
            console.restoring.set(Some(restoring.clone()));
            open.set(false);
            console.refresh();
        }
        Some(Err(_)) => console.switching.set_value(None),
        None => {}
    });
    view! {
        <ConsoleDialog open labelled_by="switch-title">
            <DialogBody>
                <DialogTitle attr:id="switch-title">"Switch to the prepared copy?"</DialogTitle>
                <DialogContent>
                    <MessageBar intent=MessageBarIntent::Warning>
                        <MessageBarBody>
                            {format!("All current data is replaced by the prepared copy of {backup}; what the preview says would be lost is set aside with the current database.")}
                        </MessageBarBody>
                    </MessageBar>
                    <ul class="restore-points">
                        <li>"The copy is checked against the backup once more, then switched in within about a second."</li>
                        <li>"Everyone, you included, is signed out and signs in again."</li>
                        <li>"The current database is kept, so this can be undone like a restore."</li>
                    </ul>
                    <ConfirmCheckbox checked=understood label="I understand this will replace all current data" />
                    {move || switch.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBar message=e.to_string() /> })}
                </DialogContent>
                <CancelOr on_cancel=move |_| open.set(false)>
                    <Button
                        appearance=ButtonAppearance::Primary
                        class="danger-button"
                        disabled=Signal::derive(move || !understood.get())
                        loading=switch.pending()
                        on_click=move |_| {
                            console.switching.set_value(Some(Operation::Restore));
                            switch.dispatch(SwitchToPrepared { confirm: true });
                        }
                    >
                        "Switch"
                    </Button>
                </CancelOr>
            </DialogBody>
        </ConsoleDialog>
    }
}

/// The recent record recoveries, the newest undoable.
#[component]
fn Recoveries(list: Vec<RecoveryRecord>) -> impl IntoView {
    let console = Console::expect();
    let undo = ServerAction::<UndoRecovery>::new();
    let target = RwSignal::new(None::<String>);
    let understood = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(job)) = undo.value().get() {
            console.watch(job);
            target.set(None);
            console.refresh();
        }
    });
    let open = super::dialog::open_for(target);
    view! {
        <section class="recoveries" aria-labelledby="recoveries-title">
            <h3 id="recoveries-title">"Record recoveries"</h3>
            <ul data-testid="recoveries">
                {list
                    .into_iter()
                    .map(|r| {
                        let job = r.job_id.clone();
                        let undone = r.undone_at.is_some();
                        view! {
                            <li>
                                <span>
                                    {format!("{} from {}: {}", r.root, r.backup_name, r.inserted_words())}
                                    " — " {r.recovered_by.clone()} ", " <LocalTime at=r.recovered_at relative=true />
                                    {undone.then_some(" (undone)")}
                                </span>
                                {(!undone).then(|| view! {
                                    <Button
                                        size=ButtonSize::Small
                                        appearance=ButtonAppearance::Secondary
                                        disabled=Signal::derive(move || console.lock_reason().is_some())
                                        on_click=move |_| {
                                            understood.set(false);
                                            target.set(Some(job.clone()));
                                        }
                                    >
                                        "Undo recovery"
                                    </Button>
                                })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <ConsoleDialog open labelled_by="undo-recovery-title">
                <DialogBody>
                    <DialogTitle attr:id="undo-recovery-title">"Undo this recovery?"</DialogTitle>
                    <DialogContent>
                        <p>
                            "Exactly the rows it inserted are deleted again, in one transaction. \
                            If one of them changed since, or a newer row refers to one, nothing \
                            is deleted and the reason is shown."
                        </p>
                        <ConfirmCheckbox checked=understood label="I understand the recovered rows are deleted" />
                        {move || undo.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBar message=e.to_string() /> })}
                    </DialogContent>
                    <CancelOr on_cancel=move |_| target.set(None)>
                        <Button
                            appearance=ButtonAppearance::Primary
                            class="danger-button"
                            disabled=Signal::derive(move || !understood.get())
                            loading=undo.pending()
                            on_click=move |_| {
                                undo.dispatch(UndoRecovery { job_id: target.get_untracked(), confirm: true });
                            }
                        >
                            "Undo recovery"
                        </Button>
                    </CancelOr>
                </DialogBody>
            </ConsoleDialog>
        </section>
    }
}
