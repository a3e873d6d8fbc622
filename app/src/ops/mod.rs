//! The operations layer: one function per thing the console does, shared by
//! the server functions (what the UI calls, in [`crate::functions`]) and the
//! REST routes (the documented API, in the `server` crate). Both are thin
//! adapters that read their inputs and call one function here, so the two
//! cannot drift.
//!
//! Each operation:
//! - takes an [`AdminUser`](crate::ssr::AdminUser) as proof of the admin
//!   check (the sign-in operations in `auth` are the only ones open to
//!   everyone);
//! - takes typed input from `inputs`, whose constructors hold all the
//!   validation (positive ids, confirmation, paging, limits, job ids);
//! - names the administrator as the actor of the audit log and of jobs;
//! - calls the engine and maps its answer to a DTO of [`crate::models`],
//!   its errors to [`AppError`](crate::error::AppError).
//!
//! Server only: the browser build has none of this.

mod auth;
mod backups;
mod downloads;
mod inputs;
mod jobs;
mod notify;
mod overview;
mod records;
mod restore;
mod retention;
mod schedules;
mod tokens;

pub use auth::{login, logout, whoami};
pub use backups::{
    compare_backups, create_backup, delete_backup, get_backup, import_from_offsite, list_backups,
    recheck_backups, upload_backup,
};
pub use downloads::{open_download, DownloadRequest, Part, ServedDownload};
pub use inputs::{
    ActivityFilter, ActivityLimit, BackupId, Confirmation, Credentials, JobId, NewBackup, Paging,
    PinReason, UploadName,
};
pub use jobs::{job, operation_status, release_lock};
pub use notify::{create_channel, delete_channel, list_channels, test_channel, update_channel};
pub use overview::{backup_health, database_overview, recent_activity, storage_summary};
pub use records::{
    discard_preview, list_recoveries, plan_recovery, preview, preview_backup, recover_records,
    switch_to_prepared, undo_recovery, RecordInput,
};
pub use restore::{
    backup_administrators, drill_backup, last_restore, restore_backup, undo_restore,
};
pub use retention::{pin_backup, prune_backups, retention_preview, unpin_backup};
pub use schedules::{list_schedules, preview_schedule, remove_schedule, save_schedule};
pub use tokens::{create_token, list_tokens, revoke_token};
