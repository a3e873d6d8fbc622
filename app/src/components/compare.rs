//! Backup against backup, in Details: pick another backup and see which
//! tables differ between the two, from their manifests alone (nothing is
//! restored).

use leptos::prelude::*;
use thaw::{Field, Select, Table, TableBody, TableCell, TableHeader, TableRow};

use super::error_bar::ErrorBar;
use super::table_header::TableHeaderCell;
use crate::functions::{compare_backups, list_backups};
use crate::models::{table_label, thousands, BackupComparison, BackupStatus, TableChange};

/// How many of the newest backups can be picked.
const PICKABLE: i64 = 50;

/// "Compare with" another verified backup, and what differs.
#[component]
pub fn CompareWith(id: i64) -> impl IntoView {
    let others = Resource::new(|| (), |_| list_backups(0, PICKABLE));
    let chosen = RwSignal::new(String::new());
    let comparison = Resource::new(
        move || chosen.get(),
        move |other| async move {
            match other.parse::<i64>() {
                Ok(other) => Some(compare_backups(id, other).await),
                Err(_) => None,
            }
        },
    );
    view! {
        <section class="compare" aria-labelledby="compare-title">
            <h3 id="compare-title" class="compare-title">"Compare with another backup"</h3>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let list = match others.await {
                        Ok(list) => list.backups,
                        Err(e) => return view! { <ErrorBar message=e.to_string() /> }.into_any(),
                    };
                    let choices: Vec<_> = list
                        .into_iter()
                        .filter(|b| b.id != id && b.status == BackupStatus::Completed)
                        .collect();
                    if choices.is_empty() {
                        return view! {
                            <p class="muted">"There is no other verified backup to compare with."</p>
                        }
                            .into_any();
                    }
                    view! {
                        <Field label="Backup">
                            <Select value=chosen>
                                <option value="">"Choose a backup…"</option>
                                {choices
                                    .into_iter()
                                    .map(|b| {
                                        let label = format!(
                                            "{} ({})",
                                            b.filename,
                                            b.created_at.format("%Y-%m-%d %H:%M UTC")
                                        );
                                        view! { <option value=b.id.to_string()>{label}</option> }
                                    })
                                    .collect_view()}
                            </Select>
                        </Field>
                    }
                        .into_any()
                })}
            </Suspense>
            <Transition fallback=|| view! { <p class="muted">"Comparing…"</p> }>
                {move || Suspend::new(async move {
                    match comparison.await {
                        None => ().into_any(),
                        Some(Err(e)) => view! { <ErrorBar message=e.to_string() /> }.into_any(),
                        Some(Ok(c)) => view! { <ComparisonView c /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The totals, then every table that differs.
#[component]
fn ComparisonView(c: BackupComparison) -> impl IntoView {
    let same = c.count(TableChange::Same);
    let summary = format!(
        "From {} to {}: {} table{} changed, {} added, {} removed; {} the same{}.",
        c.older.created_at.format("%Y-%m-%d %H:%M"),
        c.newer.created_at.format("%Y-%m-%d %H:%M UTC"),
        c.count(TableChange::Changed),
        if c.count(TableChange::Changed) == 1 {
            ""
        } else {
            "s"
        },
        c.count(TableChange::Added),
        c.count(TableChange::Removed),
        same,
        match c.count(TableChange::Incomparable) {
            0 => String::new(),
            n => format!(", {n} that cannot be told apart (recorded by an older method)"),
        }
    );
    let differing: Vec<_> = c
        .tables
        .into_iter()
        .filter(|t| t.change != TableChange::Same)
        .collect();
    let rows = |r: Option<i64>| r.map(thousands).unwrap_or_else(|| "—".into());
    view! {
        <p class="compare-summary" data-testid="compare-summary">{summary}</p>
        {(!differing.is_empty()).then(|| view! {
            <Table class="stats-table" attr:aria-label="Tables that differ">
                <TableHeader>
                    <TableRow>
                        <TableHeaderCell>"Table"</TableHeaderCell>
                        <TableHeaderCell class="num">"Rows then"</TableHeaderCell>
                        <TableHeaderCell class="num">"Rows later"</TableHeaderCell>
                        <TableHeaderCell>"Change"</TableHeaderCell>
                    </TableRow>
                </TableHeader>
                <TableBody>
                    {differing
                        .into_iter()
                        .map(|t| {
                            let change = match (t.change, t.rows_moved()) {
                                (TableChange::Changed, Some(moved)) => moved,
                                (TableChange::Changed, None) => "content changed".to_owned(),
                                (TableChange::Added, _) => "new table".to_owned(),
                                (TableChange::Removed, _) => "table gone".to_owned(),
                                (_, _) => "cannot tell".to_owned(),
                            };
                            view! {
                                <TableRow>
                                    <TableCell>{table_label(&t.schema, &t.name)}</TableCell>
                                    <TableCell class="num">{rows(t.older_rows)}</TableCell>
                                    <TableCell class="num">{rows(t.newer_rows)}</TableCell>
                                    <TableCell>{change}</TableCell>
                                </TableRow>
                            }
                        })
                        .collect_view()}
                </TableBody>
            </Table>
        })}
    }
}
