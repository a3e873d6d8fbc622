use leptos::prelude::*;
use thaw::{
    Card, CardHeader, MessageBar, MessageBarBody, MessageBarIntent, Table, TableBody, TableCell,
    TableHeader, TableHeaderCell, TableRow,
};

use crate::functions::list_backups;
use crate::models::human_bytes;

/// Backups of the LMS database: the catalog, newest first.
#[component]
pub fn BackupCard() -> impl IntoView {
    let backups = Resource::new(|| (), |_| list_backups(0, 20));
    view! {
        <Card class="panel">
            <CardHeader>
                <h2 id="backups-title">"Database Backup & Restore"</h2>
            </CardHeader>
            <p class="muted">
                "Verified PostgreSQL backups of the LMS database: every backup listed as \
                completed has been read back in full before it was accepted."
            </p>
            <Suspense fallback=|| view! { <p class="muted">"Loading backups…"</p> }>
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
                        Ok(list) => {
                            view! {
                                <Table attr:aria-labelledby="backups-title">
                                    <TableHeader>
                                        <TableRow>
                                            <TableHeaderCell>"Name"</TableHeaderCell>
                                            <TableHeaderCell>"Created"</TableHeaderCell>
                                            <TableHeaderCell>"Size"</TableHeaderCell>
                                            <TableHeaderCell>"Status"</TableHeaderCell>
                                        </TableRow>
                                    </TableHeader>
                                    <TableBody>
                                        {list
                                            .backups
                                            .into_iter()
                                            .map(|b| {
                                                view! {
                                                    <TableRow>
                                                        <TableCell>{b.filename}</TableCell>
                                                        <TableCell>
                                                            {b.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}
                                                        </TableCell>
                                                        <TableCell>{b.size_bytes.map(human_bytes)}</TableCell>
                                                        <TableCell>{b.status}</TableCell>
                                                    </TableRow>
                                                }
                                            })
                                            .collect_view()}
                                    </TableBody>
                                </Table>
                            }
                                .into_any()
                        }
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
            </Suspense>
        </Card>
    }
}
