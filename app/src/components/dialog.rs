use leptos::prelude::*;
use thaw::{Button, ButtonAppearance, Dialog, DialogActions, DialogSurface};

/// A dialog of the console: named by its title element (`labelled_by`),
/// keyboard focus kept inside, Escape and the backdrop close it; when it
/// closes, focus goes back to the control that opened it.
///
/// Its content stays mounted between openings (the component library mounts
/// a dialog once): whoever opens it resets the state the content shows, and
/// inputs are bound to properties, not attributes, so a reset is what they
/// show and hold (see [`ConfirmCheckbox`]).
#[component]
pub fn ConsoleDialog(
    open: RwSignal<bool>,
    labelled_by: &'static str,
    #[prop(optional)] class: &'static str,
    #[prop(default = true.into(), into)] mask_closeable: Signal<bool>,
    children: Children,
) -> impl IntoView {
    browser::return_focus_on_close(open);
    view! {
        <Dialog open mask_closeable>
            <DialogSurface attr:aria-labelledby=labelled_by class=class>
                <FocusScope open>{children()}</FocusScope>
            </DialogSurface>
        </Dialog>
    }
}

/// An open flag for a dialog about `target` (closing clears the target).
/// Each side is written only when it differs, so the two never chase each
/// other.
pub fn open_for<T: Clone + Send + Sync + 'static>(target: RwSignal<Option<T>>) -> RwSignal<bool> {
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        let wanted = target.with(Option::is_some);
        if open.get_untracked() != wanted {
            open.set(wanted);
        }
    });
    Effect::new(move |_| {
        if !open.get() && target.with_untracked(Option::is_some) {
            target.set(None);
        }
    });
    open
}

/// A checkbox whose ticked state is `checked`, bound to the input's
/// property: what is drawn, what the input holds and what a screen reader
/// announces always agree, also after the state is reset from outside (an
/// attribute binding stops following once the box has been clicked).
#[component]
pub fn ConfirmCheckbox(checked: RwSignal<bool>, label: &'static str) -> impl IntoView {
    view! {
        <label class="confirm-check">
            <input
                type="checkbox"
                prop:checked=move || checked.get()
                on:change=move |ev| checked.set(event_target_checked(&ev))
            />
            <span>{label}</span>
        </label>
    }
}

/// A dialog's buttons: Cancel, then the dialog's own action (`children`).
#[component]
pub fn CancelOr(
    /// Closes the dialog without doing anything.
    #[prop(into)]
    on_cancel: Callback<leptos::ev::MouseEvent>,
    children: Children,
) -> impl IntoView {
    view! {
        <DialogActions>
            <Button appearance=ButtonAppearance::Secondary on_click=move |e| on_cancel.run(e)>
                "Cancel"
            </Button>
            {children()}
        </DialogActions>
    }
}

/// Keeps keyboard focus inside a dialog: its first control takes focus when
/// it opens, and Tab / Shift+Tab wrap around within it. (Escape is handled
/// by the dialog itself.)
#[component]
fn FocusScope(#[prop(into)] open: Signal<bool>, children: Children) -> impl IntoView {
    let scope = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if open.get() {
            request_animation_frame(move || {
                if let Some(el) = scope.get_untracked() {
                    browser::focus_first(&el);
                }
            });
        }
    });
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Tab" {
            if let Some(el) = scope.get_untracked() {
                browser::wrap_tab(&el, &ev);
            }
        }
    };
    view! {
        <div class="focus-scope" node_ref=scope on:keydown=on_keydown>
            {children()}
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{FocusOptions, HtmlElement, KeyboardEvent};

    /// Remembers the focused control when `open` turns on and focuses it
    /// again (without scrolling) when it turns off, if it is still on the
    /// page; otherwise focus would fall to `<body>`.
    pub fn return_focus_on_close(open: RwSignal<bool>) {
        let opener = StoredValue::new_local(None::<HtmlElement>);
        Effect::new(move |was_open: Option<bool>| {
            let now = open.get();
            let was_open = was_open.unwrap_or(false);
            if now && !was_open {
                let active = document()
                    .active_element()
                    .and_then(|e| e.dyn_into::<HtmlElement>().ok())
                    .filter(|e| e.tag_name() != "BODY");
                opener.set_value(active);
            } else if !now && was_open {
                if let Some(el) = opener.get_value().filter(|e| e.is_connected()) {
                    let options = FocusOptions::new();
                    options.set_prevent_scroll(true);
                    let _ = el.focus_with_options(&options);
                }
                opener.set_value(None);
            }
            now
        });
    }

    const FOCUSABLE: &str =
        "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), \
        textarea:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex='-1'])";

    /// The controls a keyboard can reach, in order (hidden ones left out).
    fn focusables(scope: &HtmlElement) -> Vec<HtmlElement> {
        let Ok(list) = scope.query_selector_all(FOCUSABLE) else {
            return Vec::new();
        };
        (0..list.length())
            .filter_map(|i| list.item(i))
            .filter_map(|n| n.dyn_into::<HtmlElement>().ok())
            .filter(|e| e.offset_parent().is_some())
            .collect()
    }

    pub fn focus_first(scope: &HtmlElement) {
        if let Some(first) = focusables(scope).first() {
            let _ = first.focus();
        }
    }

    pub fn wrap_tab(scope: &HtmlElement, ev: &KeyboardEvent) {
        let items = focusables(scope);
        let (Some(first), Some(last)) = (items.first(), items.last()) else {
            ev.prevent_default();
            return;
        };
        let active = leptos::prelude::document().active_element();
        let at = |e: &HtmlElement| {
            active
                .as_ref()
                .is_some_and(|a| a == e.unchecked_ref::<web_sys::Element>())
        };
        let inside = active.as_ref().is_some_and(|a| scope.contains(Some(a)));
        if ev.shift_key() && (at(first) || !inside) {
            ev.prevent_default();
            let _ = last.focus();
        } else if !ev.shift_key() && (at(last) || !inside) {
            ev.prevent_default();
            let _ = first.focus();
        }
    }
}

#[cfg(not(feature = "hydrate"))]
mod browser {
    pub fn return_focus_on_close(_open: leptos::prelude::RwSignal<bool>) {}
    pub fn focus_first<T>(_scope: &T) {}
    pub fn wrap_tab<T, E>(_scope: &T, _ev: &E) {}
}
