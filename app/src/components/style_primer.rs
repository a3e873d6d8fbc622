use leptos::prelude::*;
use thaw::{
    Badge, Button, Card, CardHeader, ConfigProvider, Field, Input, MessageBar, MessageBarBody,
    Pagination, ProgressBar, Table, TableBody, TableCell, TableRow, Textarea, Theme,
};

/// The CSS of the thaw components the pages show, written into the document
/// head on the server.
///
/// thaw collects a component's CSS when the component is created. The pages
/// stream their content after the head has been sent, so CSS first needed
/// there would only arrive with hydration and the page would jump as it
/// restyled. Here one instance of each component is created (and its markup
/// thrown away) inside the head, so all of that CSS is in the first response.
///
/// thaw's collector is scoped to this element only. Shared by the whole page
/// it would be written to from several threads at once (every `Suspense`
/// re-checks its children on the thread its data arrived on), and thaw takes
/// its lock with `try_write`, panicking on contention: the page then never
/// finished streaming. Outside this scope thaw skips its server-side CSS, and
/// the browser adds whatever else a component needs when it first mounts.
#[component]
pub fn ThawStyles(theme_id: &'static str) -> impl IntoView {
    view! {
        <thaw::ssr::SSRMountStyleProvider>
            {create_each_component(theme_id)}
        </thaw::ssr::SSRMountStyleProvider>
    }
}

/// Creates one of each component (so thaw records its CSS) and drops the markup.
fn create_each_component(theme_id: &'static str) {
    let theme = RwSignal::new(Theme::light());
    let text = RwSignal::new(String::new());
    let page = RwSignal::new(1usize);
    let _markup = view! {
        <ConfigProvider theme theme_id>
            <Card>
                <CardHeader>""</CardHeader>
            </Card>
            <Button>""</Button>
            <Badge>""</Badge>
            <Field label="">
                <Input value=text />
            </Field>
            <Textarea value=text />
            <MessageBar>
                <MessageBarBody>""</MessageBarBody>
            </MessageBar>
            <ProgressBar value=0.0 />
            <Pagination page page_count=1usize />
            <Table>
                <TableBody>
                    <TableRow>
                        <TableCell>""</TableCell>
                    </TableRow>
                </TableBody>
            </Table>
        </ConfigProvider>
    };
}
