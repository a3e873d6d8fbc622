//! [`Console`]: what the pieces of the backup card share, provided as a
//! context by the card and read by each piece.

use leptos::prelude::*;
use thaw::{
    Toast, ToastBody, ToastIntent, ToastOptions, ToastPosition, ToastTitle, ToasterInjection,
};

use crate::error::AppError;
use crate::functions::get_storage_summary;
use crate::models::{JobInfo, JobStatus, Operation, OperationStatus, StorageSummary};

/// How long before the page was drawn a job must have ended for the page to
/// count as showing its outcome: a margin for the database's clock, which
/// stamps the job's end, against the web server's, which stamps the page.
const ENDED_BEFORE_DRAWN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// What the pieces of the card share: the live operation status, the
/// storage summary, a way to reload what is listed, and toasts.
#[derive(Clone, Copy)]
pub struct Console {
    pub status: ReadSignal<Option<OperationStatus>>,
    pub summary: Resource<Result<StorageSummary, AppError>>,
    /// The job shown in the status (id and status): lists reload when it
    /// changes, i.e. when an operation starts or ends.
    pub operation: Memo<Option<(String, JobStatus)>>,
    version: RwSignal<u64>,
    /// The backup this tab is restoring (named on the sign-in page after).
    pub restoring: RwSignal<Option<String>>,
    /// The job this tab last saw running (or started): its outcome is
    /// announced when it ends.
    pub watched: StoredValue<Option<JobInfo>>,
    /// The switch (restore or undo) this tab asked for, from the click on:
    /// a sign-out that arrives before the server's answer is still
    /// explained on the sign-in page.
    pub switching: StoredValue<Option<Operation>>,
    /// The name of the backup the watched job writes or restores, so its
    /// outcome can name it.
    pub watched_backup: StoredValue<Option<String>>,
    /// An operation this tab asked for whose job the status does not show
    /// yet (`Some("")` until the server answers with the job's id): the
    /// actions stay disabled in between instead of looking idle.
    pub starting: RwSignal<Option<String>>,
    /// Whether the list is reloading (Refresh shows it).
    pub loading: RwSignal<bool>,
    toaster: ToasterInjection,
}

impl Console {
    /// Builds the shared state around the live `status` and provides it to
    /// everything below (call it inside a `ToasterProvider`).
    pub fn provide(status: ReadSignal<Option<OperationStatus>>) -> Self {
        let version = RwSignal::new(0u64);
        // When the server drew the page (sent with it, so the browser has
        // the same instant).
        let drawn_at = SharedValue::new(super::time::browser::now).into_inner();
        // Everything listed reloads when an operation starts or ends. The
        // page is drawn before any status is known, and the first status
        // names the newest job even long after it ended: one that had ended
        // well before the page was drawn is already in what it lists, and
        // counts as none rather than reloading everything on every visit.
        let operation = Memo::new(move |_| {
            status.with(|s| {
                s.as_ref()
                    .and_then(|s| s.job.as_ref())
                    .filter(|j| {
                        j.finished_at
                            .is_none_or(|at| at + ENDED_BEFORE_DRAWN > drawn_at)
                    })
                    .map(|j| (j.id.clone(), j.status))
            })
        });
        let summary = Resource::new(
            move || (version.get(), operation.get()),
            |_| get_storage_summary(),
        );
        let console = Console {
            status,
            summary,
            operation,
            version,
            restoring: RwSignal::new(None),
            watched: StoredValue::new(None),
            switching: StoredValue::new(None),
            watched_backup: StoredValue::new(None),
            starting: RwSignal::new(None),
            loading: RwSignal::new(false),
            toaster: ToasterInjection::expect_context(),
        };
        provide_context(console);
        console
    }

    pub fn expect() -> Self {
        expect_context()
    }

    /// Reloads the list, the summary and the activity.
    pub fn refresh(&self) {
        self.version.update(|v| *v += 1);
    }

    /// The most characters a backup's notes may have, as the server is
    /// configured (`None` until the summary has loaded).
    pub fn max_notes_len(&self) -> Option<usize> {
        self.summary.with(|s| {
            s.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|s| s.max_notes_len)
        })
    }

    /// Tracks reloads (read it inside a resource's source).
    pub fn version(&self) -> u64 {
        self.version.get()
    }

    /// Why nothing that needs the backup directory (create, upload,
    /// restore) can be started right now, in words, if so.
    pub fn busy_reason(&self) -> Option<String> {
        if self.starting.with(Option::is_some) {
            return Some("Starting…".into());
        }
        let unavailable = self.status.with(|s| {
            s.as_ref()
                .is_some_and(|s| s.backup_dir_problem.is_some() && !s.maintenance)
        });
        if unavailable {
            return Some("The backup directory is unavailable (see above).".into());
        }
        self.lock_reason()
    }

    /// Why no operation at all can be started right now (maintenance, or
    /// another operation running), in words, if so.
    pub fn lock_reason(&self) -> Option<String> {
        self.status.with(|s| {
            let s = s.as_ref()?;
            if s.maintenance {
                return Some(
                    "The site is in maintenance: a restore is switching databases.".into(),
                );
            }
            s.is_locked.then(|| {
                let what = s.operation_type.map_or("operation", |o| o.as_str());
                let who = s.locked_by.clone().unwrap_or_else(|| "someone".into());
                let when = s
                    .locked_at
                    .map(|t| format!(" at {}", super::time::browser::local_string(t)))
                    .unwrap_or_default();
                format!("A {what} started by {who}{when} is running.")
            })
        })
    }

    /// Whether the running panel shows a job (it then says what runs, by
    /// whom and since when, so nothing else needs to repeat it).
    pub fn panel_shown(&self) -> bool {
        self.status.with(|s| {
            s.as_ref().is_some_and(|s| {
                s.is_locked
                    && s.job
                        .as_ref()
                        .is_some_and(|j| j.status == JobStatus::Running)
            })
        })
    }

    /// Announces the outcome of `job` when it ends.
    pub fn watch(&self, job: JobInfo) {
        self.watched.set_value(Some(job));
    }

    /// Like [`Console::watch`], naming the backup in the outcome.
    pub fn watch_backup(&self, job: JobInfo, name: String) {
        self.watched_backup.set_value(Some(name));
        self.watch(job);
    }

    pub fn toast_success(&self, message: String) {
        self.toast(ToastIntent::Success, "Done", message);
    }

    pub fn toast_info(&self, title: &'static str, message: String) {
        self.toast(ToastIntent::Info, title, message);
    }

    pub fn toast_warning(&self, title: &'static str, message: String) {
        self.toast(ToastIntent::Warning, title, message);
    }

    pub fn toast_error(&self, title: &'static str, message: String) {
        self.toast(ToastIntent::Error, title, message);
    }

    fn toast(&self, intent: ToastIntent, title: &'static str, message: String) {
        self.toaster.dispatch_toast(
            move || {
                view! {
                    <Toast>
                        <ToastTitle>{title}</ToastTitle>
                        <ToastBody>{message}</ToastBody>
                    </Toast>
                }
            },
            // Bottom left: the row actions sit at the right of the list.
            ToastOptions::default()
                .with_position(ToastPosition::BottomStart)
                .with_intent(intent)
                .with_timeout(std::time::Duration::from_secs(8)),
        );
    }
}
