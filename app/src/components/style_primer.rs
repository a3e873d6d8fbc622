use leptos::prelude::*;
use thaw::{
    Badge, Button, Card, CardHeader, Field, Input, MessageBar, MessageBarBody, Pagination,
    ProgressBar, Table, TableBody, TableCell, TableRow, Textarea,
};

/// thaw adds each component's CSS to the document head when the component
/// first renders on the server. The pages stream their content after the
/// head has been sent, so CSS first needed there would only arrive with
/// hydration, and the page would jump as it restyled. One hidden instance
/// of each component the pages show, rendered before anything streams, puts
/// all of that CSS in the first response.
#[component]
pub fn StylePrimer() -> impl IntoView {
    let text = RwSignal::new(String::new());
    let page = RwSignal::new(1usize);
    view! {
        <div hidden aria-hidden="true" class="style-primer">
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
        </div>
    }
}
