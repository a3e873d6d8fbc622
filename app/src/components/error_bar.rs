use leptos::prelude::*;
use thaw::{MessageBar, MessageBarBody, MessageBarIntent};

/// An error in a dialog or card, announced to screen readers.
#[component]
pub fn ErrorBar(message: String) -> impl IntoView {
    view! {
        <MessageBar intent=MessageBarIntent::Error attr:role="alert">
            <MessageBarBody>{message}</MessageBarBody>
        </MessageBar>
    }
}
