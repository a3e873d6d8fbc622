//! A column heading for the console's tables.
//!
//! thaw's `TableHeaderCell` wraps its text in a `<button>` (for sorting and
//! resizing, which these tables do not offer), so every heading became a
//! keyboard stop that does nothing. This one keeps thaw's look with plain
//! text.

use leptos::prelude::*;

/// A `<th scope="col">` styled like thaw's header cell.
#[component]
pub fn TableHeaderCell(
    /// Extra classes (`num` right-aligns a numeric column).
    #[prop(optional, into)]
    class: MaybeProp<String>,
    children: Children,
) -> impl IntoView {
    let class = move || match class.get() {
        Some(extra) => format!("thaw-table-header-cell {extra}"),
        None => "thaw-table-header-cell".to_owned(),
    };
    view! {
        <th class=class scope="col">
            <span class="thaw-table-header-cell__button table-heading">{children()}</span>
        </th>
    }
}
