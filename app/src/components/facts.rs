//! A fact of a `<dl class="facts">`: a term and its value, the way the
//! console lists what it knows about a database, a backup or the catalog.

use leptos::prelude::*;

/// One term and its value.
#[component]
pub fn Fact(
    /// What the value is ("Size", "PostgreSQL").
    term: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <div>
            <dt>{term}</dt>
            <dd>{children()}</dd>
        </div>
    }
}
