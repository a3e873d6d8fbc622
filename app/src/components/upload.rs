use leptos::prelude::*;
use thaw::{
    Button, ButtonAppearance, DialogActions, DialogBody, DialogContent, DialogTitle, MessageBar,
    MessageBarBody, MessageBarIntent, ProgressBar, Upload, UploadDragger,
};

use super::console::Console;
use super::dialog::ConsoleDialog;
use crate::models::{human_bytes, BackupSummary};

/// Where an upload stands (only the browser ever sends).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum State {
    Idle,
    Sending { name: String, sent: f64, total: f64 },
    Checking { name: String },
    Failed(String),
}

/// "Upload backup": pick or drop a `pg_dump -Fc` archive; its size is checked
/// here first, then the file streams to `POST /api/admin/backup/upload` with
/// a progress bar, and the server reads it through before accepting it.
#[component]
pub fn UploadDialog(open: RwSignal<bool>) -> impl IntoView {
    let console = Console::expect();
    let state = RwSignal::new(State::Idle);
    let sending = move || matches!(state.get(), State::Sending { .. } | State::Checking { .. });
    // Closing the dialog forgets a finished or failed attempt.
    Effect::new(move |_| {
        let finished = state.with_untracked(|s| matches!(s, State::Failed(_)));
        if !open.get() && finished {
            state.set(State::Idle);
        }
    });
    // A refusal is in the activity log now: show it there.
    Effect::new(move |_| {
        if state.with(|s| matches!(s, State::Failed(_))) {
            console.refresh();
        }
    });
    let on_files = move |files: thaw::FileList| {
        let Some(file) = files.get(0) else { return };
        let max = console
            .summary
            .get_untracked()
            .and_then(Result::ok)
            .map(|s| s.max_backup_size)
            .unwrap_or(u64::MAX);
        match browser::check(file, max) {
            Err(message) => state.set(State::Failed(message)),
            Ok(file) => browser::send(file, state, move |backup: BackupSummary| {
                open.set(false);
                console.refresh();
                console.toast_success(format!(
                    "Uploaded and verified as {}. It can now be restored.",
                    backup.filename
                ));
            }),
        }
    };
    let limit = move || {
        console
            .summary
            .get()
            .and_then(Result::ok)
            .map(|s| format!(" Up to {}.", human_bytes(s.max_backup_size as i64)))
            .unwrap_or_default()
    };

    view! {
        <ConsoleDialog open labelled_by="upload-title" mask_closeable=Signal::derive(move || !sending())>
                <DialogBody>
                    <DialogTitle attr:id="upload-title">"Upload a backup"</DialogTitle>
                    <DialogContent>
                        <p>
                            "An archive made with " <code>"pg_dump -Fc"</code>
                            " (custom format) of an LMS database, for example one downloaded \
                            from another server. It is read through in full before it is \
                            listed; nothing is restored until you choose to." {limit}
                        </p>
                        <label for="upload-file" class="visually-hidden">"Backup archive to upload"</label>
                        <Upload
                            id="upload-file"
                            custom_request=on_files
                            accept=".dump,.backup,application/octet-stream"
                        >
                            <UploadDragger class="upload-drop">
                                <p class="upload-drop-text">"Drop the archive here, or"</p>
                                <Button appearance=ButtonAppearance::Primary class="choose-file">
                                    "Choose a file…"
                                </Button>
                            </UploadDragger>
                        </Upload>
                        {move || match state.get() {
                            State::Idle => None,
                            State::Sending { name, sent, total } => {
                                let fraction = if total > 0.0 { sent / total } else { 0.0 };
                                Some(
                                    view! {
                                        <div class="upload-progress" aria-live="polite">
                                            <p>
                                                {format!(
                                                    "Sending {name}: {} of {}",
                                                    human_bytes(sent as i64),
                                                    human_bytes(total as i64),
                                                )}
                                            </p>
                                            <ProgressBar value=fraction attr:aria-label="Upload progress" />
                                        </div>
                                    }
                                        .into_any(),
                                )
                            }
                            State::Checking { name } => {
                                Some(
                                    view! {
                                        <p class="upload-progress" aria-live="polite">
                                            {format!("Reading {name} through to check it…")}
                                        </p>
                                    }
                                        .into_any(),
                                )
                            }
                            State::Failed(message) => {
                                Some(
                                    view! {
                                        <MessageBar intent=MessageBarIntent::Error attr:role="alert">
                                            <MessageBarBody>{message}</MessageBarBody>
                                        </MessageBar>
                                    }
                                        .into_any(),
                                )
                            }
                        }}
                    </DialogContent>
                    <DialogActions>
                        <Button
                            appearance=ButtonAppearance::Secondary
                            on_click=move |_| {
                                browser::cancel();
                                state.set(State::Idle);
                                open.set(false);
                            }
                        >
                            {move || if sending() { "Cancel upload" } else { "Close" }}
                        </Button>
                    </DialogActions>
                </DialogBody>
        </ConsoleDialog>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::RefCell;

    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use web_sys::{ProgressEvent, XmlHttpRequest};

    use super::State;
    use crate::models::{human_bytes, BackupSummary};

    /// A request in flight and the callbacks it holds (they must live as
    /// long as it does).
    type InFlight = (XmlHttpRequest, Vec<Closure<dyn FnMut(JsValue)>>);

    thread_local! {
        static IN_FLIGHT: RefCell<Option<InFlight>> = const { RefCell::new(None) };
    }

    /// Refuses what cannot be accepted before a byte is sent.
    pub fn check(file: web_sys::File, max: u64) -> Result<gloo_file::File, String> {
        let file = gloo_file::File::from(file);
        if file.size() == 0 {
            return Err(format!(
                "{} is empty: choose a backup archive made with pg_dump -Fc.",
                file.name()
            ));
        }
        if file.size() > max {
            return Err(format!(
                "{} is {}, larger than the largest archive this server accepts ({}). \
                 Ask the operator to raise MAX_BACKUP_SIZE, or restore it with the command line.",
                file.name(),
                human_bytes(file.size() as i64),
                human_bytes(max as i64)
            ));
        }
        Ok(file)
    }

    /// Streams the file to the server, reporting progress into `state`.
    pub fn send(
        file: gloo_file::File,
        state: RwSignal<State>,
        on_done: impl Fn(BackupSummary) + 'static,
    ) {
        cancel();
        let name = file.name();
        let total = file.size() as f64;
        let fail = move |message: String| state.set(State::Failed(message));
        let Ok(xhr) = XmlHttpRequest::new() else {
            return fail("This browser cannot send files.".into());
        };
        // The file's own name goes along: the catalog keeps it, and the
        // activity log names a refused upload by it.
        let url = format!(
            "/api/admin/backup/upload?name={}",
            js_sys::encode_uri_component(&name)
        );
        if xhr
            .open_with_async("POST", &url, true)
            .and_then(|_| xhr.set_request_header("Content-Type", "application/octet-stream"))
            .is_err()
        {
            return fail("The upload could not be started.".into());
        }
        state.set(State::Sending {
            name: name.clone(),
            sent: 0.0,
            total,
        });
        let progress = {
            let name = name.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                let event: ProgressEvent = event.unchecked_into();
                let sent = event.loaded();
                if sent >= total {
                    state.set(State::Checking { name: name.clone() });
                } else {
                    state.set(State::Sending {
                        name: name.clone(),
                        sent,
                        total,
                    });
                }
            })
        };
        let load = {
            let xhr = xhr.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                let status = xhr.status().unwrap_or(0);
                let body = xhr.response_text().ok().flatten().unwrap_or_default();
                if status == 201 {
                    match serde_json::from_str::<BackupSummary>(&body) {
                        Ok(backup) => {
                            state.set(State::Idle);
                            on_done(backup);
                        }
                        Err(_) => fail("The server accepted the file but its answer was unreadable; refresh the list.".into()),
                    }
                } else {
                    fail(server_message(status, &body));
                }
                IN_FLIGHT.with(|f| f.borrow_mut().take());
            })
        };
        let error = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            fail("The upload was interrupted: the connection to the server failed. Nothing was kept; try again.".into());
            IN_FLIGHT.with(|f| f.borrow_mut().take());
        });
        if let Ok(upload) = xhr.upload() {
            upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        }
        xhr.set_onload(Some(load.as_ref().unchecked_ref()));
        xhr.set_onerror(Some(error.as_ref().unchecked_ref()));
        let blob: &web_sys::Blob = file.as_ref();
        if xhr.send_with_opt_blob(Some(blob)).is_err() {
            return fail("The upload could not be started.".into());
        }
        IN_FLIGHT.with(|f| *f.borrow_mut() = Some((xhr, vec![progress, load, error])));
    }

    /// Stops an upload in flight (the server removes what it received).
    pub fn cancel() {
        if let Some((xhr, _)) = IN_FLIGHT.with(|f| f.borrow_mut().take()) {
            let _ = xhr.abort();
        }
    }

    fn server_message(status: u16, body: &str) -> String {
        #[derive(serde::Deserialize)]
        struct Wrapper {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            message: String,
        }
        match serde_json::from_str::<Wrapper>(body) {
            Ok(w) => w.error.message,
            Err(_) if status == 0 => "The server could not be reached.".into(),
            Err(_) => format!("The server refused the file (HTTP {status})."),
        }
    }
}

/// Server rendering never sends files; these keep the component compiling.
#[cfg(not(feature = "hydrate"))]
mod browser {
    use leptos::prelude::*;

    use super::State;
    use crate::models::BackupSummary;

    pub struct File;

    pub fn check<F>(_file: F, _max: u64) -> Result<File, String> {
        Err("Uploads need the browser.".into())
    }

    pub fn send(_file: File, _state: RwSignal<State>, _on_done: impl Fn(BackupSummary) + 'static) {}

    pub fn cancel() {}
}
