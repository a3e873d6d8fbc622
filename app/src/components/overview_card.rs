use leptos::prelude::*;
use thaw::{
    Card, CardHeader, MessageBar, MessageBarBody, MessageBarIntent, Table, TableBody, TableCell,
    TableHeader, TableRow,
};

use super::facts::Fact;
use super::table_header::TableHeaderCell;
use crate::functions::get_database_overview;
use crate::models::{human_bytes, table_label, thousands};

/// The LMS database at a glance: name, size, server version and every table
/// with its exact row count and size.
#[component]
pub fn OverviewCard() -> impl IntoView {
    let overview = Resource::new(|| (), |_| get_database_overview());
    view! {
        <Card class="panel">
            <CardHeader>
                <h2 id="overview-title">"Database overview"</h2>
            </CardHeader>
            <Suspense fallback=|| view! { <p class="muted">"Reading the database…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(o) => {
                            view! {
                                <dl class="facts">
                                    <Fact term="Database">{o.database.clone()}</Fact>
                                    <Fact term="Size">{human_bytes(o.size_bytes)}</Fact>
                                    <Fact term="PostgreSQL">{o.server_version.clone()}</Fact>
                                </dl>
                                <Table attr:aria-labelledby="overview-title" class="stats-table">
                                    <TableHeader>
                                        <TableRow>
                                            <TableHeaderCell>"Table"</TableHeaderCell>
                                            <TableHeaderCell class="num">"Rows"</TableHeaderCell>
                                            <TableHeaderCell class="num">"Size"</TableHeaderCell>
                                        </TableRow>
                                    </TableHeader>
                                    <TableBody>
                                        {o
                                            .tables
                                            .into_iter()
                                            .map(|t| {
                                                let name = table_label(&t.schema, &t.name);
                                                view! {
                                                    <TableRow>
                                                        <TableCell>{name}</TableCell>
                                                        <TableCell class="num">{thousands(t.rows)}</TableCell>
                                                        <TableCell class="num">{human_bytes(t.size_bytes)}</TableCell>
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
