//! Pinning a backup from its details: retention keeps a pinned backup,
//! whatever its policy says, until it is unpinned.

use leptos::prelude::*;
use thaw::{Button, ButtonAppearance, ButtonSize, Field, Input};

use super::console::Console;
use super::error_bar::ErrorBar;
use super::time::LocalTime;
use crate::functions::{PinBackup, UnpinBackup};
use crate::models::{BackupStatus, BackupSummary, PinInfo};

/// The pin state of the backup the Details dialog shows, with its actions.
/// Owned by the dialog, which lives as long as the page: the dialog's
/// content is built when the backup's details arrive, possibly after the
/// dialog has moved on, and nothing reactive may be created there then.
#[derive(Clone, Copy)]
pub struct PinState {
    pin: RwSignal<Option<PinInfo>>,
    reason: RwSignal<String>,
    pinning: ServerAction<PinBackup>,
    unpinning: ServerAction<UnpinBackup>,
}

impl PinState {
    /// The state of a Details dialog (call once, in the dialog).
    pub fn for_dialog() -> Self {
        let console = Console::expect();
        let state = PinState {
            pin: RwSignal::new(None),
            reason: RwSignal::new(String::new()),
            pinning: ServerAction::<PinBackup>::new(),
            unpinning: ServerAction::<UnpinBackup>::new(),
        };
        Effect::new(move |_| {
            if let Some(Ok(b)) = state.pinning.value().get() {
                state.pin.set(b.pin);
                state.reason.set(String::new());
                console.toast_success(format!("Pinned {}: retention keeps it.", b.filename));
                console.refresh();
            }
        });
        Effect::new(move |_| {
            if let Some(Ok(b)) = state.unpinning.value().get() {
                state.pin.set(b.pin);
                console.toast_success(format!(
                    "Unpinned {}: retention decides on it again.",
                    b.filename
                ));
                console.refresh();
            }
        });
        state
    }

    /// A fresh start for `backup` (each time the dialog shows one).
    pub fn show(&self, backup: &BackupSummary) {
        self.pin.set(backup.pin.clone());
        self.reason.set(String::new());
        self.pinning.clear();
        self.unpinning.clear();
    }
}

/// The pin of one backup: who pinned it, why and when, with Unpin; or a
/// reason field and Pin for a verified backup that is not pinned.
#[component]
pub fn PinControl(backup: BackupSummary, state: PinState) -> impl IntoView {
    let PinState {
        pin,
        reason,
        pinning,
        unpinning,
    } = state;
    let id = backup.id;
    let pinnable = matches!(
        backup.status,
        BackupStatus::Completed | BackupStatus::Missing
    );
    let name = backup.filename.clone();
    let error = move || {
        pinning
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| unpinning.value().get().and_then(|r| r.err()))
    };
    let pinned_view = move |p: PinInfo| {
        view! {
            <p class="pin-state">
                "Pinned: “" <span class="pin-reason">{p.reason}</span> "” by " {p.by} ", "
                <LocalTime at=p.at relative=true />
                ". Retention keeps it until it is unpinned."
            </p>
            <Button
                size=ButtonSize::Small
                appearance=ButtonAppearance::Secondary
                loading=unpinning.pending()
                on_click=move |_| {
                    unpinning.dispatch(UnpinBackup { id });
                }
            >
                "Unpin"
            </Button>
        }
    };
    let name_for_label = name.clone();
    view! {
        <section class="pin" data-testid="pin" aria-label=format!("Pin of {name}")>
            {move || match pin.get() {
                Some(p) => pinned_view(p).into_any(),
                None if pinnable => {
                    let label = format!("Pin {name_for_label}");
                    view! {
                        <form
                            class="pin-form"
                            on:submit=move |ev| {
                                ev.prevent_default();
                                pinning.dispatch(PinBackup { id, reason: reason.get_untracked() });
                            }
                        >
                            <Field label="Keep this backup whatever retention says, because…">
                                <Input
                                    value=reason
                                    placeholder="before the term upgrade"
                                    attr:maxlength="200"
                                    attr:autocomplete="off"
                                />
                            </Field>
                            <Button
                                size=ButtonSize::Small
                                appearance=ButtonAppearance::Secondary
                                loading=pinning.pending()
                                disabled=Signal::derive(move || reason.with(|r| r.trim().is_empty()))
                                attr:r#type="submit"
                                attr:aria-label=label
                            >
                                "Pin"
                            </Button>
                        </form>
                    }
                        .into_any()
                }
                None => view! { <p class="muted">"Only a verified backup can be pinned."</p> }.into_any(),
            }}
            {move || error().map(|e| view! { <ErrorBar message=e.to_string() /> })}
        </section>
    }
}
