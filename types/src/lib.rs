//! The console's vocabulary, shared by the engine, the DTOs, the UI and the
//! CLI: what operations there are, the states and phases of their jobs, the
//! kinds and states of backups, and what the audit log records.
//!
//! Each enum has exactly one spelling, used in the database (TEXT columns),
//! on the wire (JSON) and in URLs; no code compares those strings. The
//! phases of each long operation, with the words the console shows for
//! them and the share of the progress bar they cover, are tables here
//! ([`phases`]): the engine walks them, the UI reads them.

#[macro_use]
mod text_enum;

pub use text_enum::UnknownValue;

pub mod phases;
pub mod records;
pub mod retention;

pub use phases::{Phase, PhaseSpec};
pub use retention::Policy;

text_enum! {
    /// An operation that holds the operation lock (and, all but start-up
    /// recovery, is followed as a job of this kind).
    Operation {
        /// Dumping the LMS database into a verified archive.
        Backup => "backup",
        /// Replacing the LMS database with a backup's content.
        Restore => "restore",
        /// Swapping the database from before the last restore back in.
        Undo => "undo",
        /// Deleting one backup.
        Delete => "delete",
        /// Deleting the backups retention no longer keeps (`backup prune`;
        /// after a backup, retention runs inside the backup's own job).
        Cleanup => "cleanup",
        /// Start-up or watchdog repair after a crash (no job row).
        Recovery => "recovery",
        /// A restore drill: a backup restored into a scratch database,
        /// checked, then dropped; the live database is never touched.
        Drill => "drill",
        /// A backup restored into a prepared copy beside the live database
        /// (kept for review, never switched in by this job) and compared
        /// with the live database.
        Preview => "preview",
        /// Deleted records brought back from the prepared copy into the
        /// live database, inserted in one transaction.
        Recover => "recover",
        /// The records a recovery inserted, deleted again.
        RecoverUndo => "recover_undo",
        /// A recovery's plan worked out from the prepared copy; nothing
        /// changes.
        RecoverPlan => "recover_plan",
        /// The prepared copy dropped (by an administrator, or after its idle
        /// time).
        Discard => "discard",
    }
}

text_enum! {
    /// How backups stand against their recovery point objectives.
    HealthState {
        /// Every enabled schedule's newest verified backup is within its RPO.
        Green => "green",
        /// The RPO still holds, but a schedule's last run failed or was
        /// skipped.
        Amber => "amber",
        /// An RPO is breached, no schedule is enabled, or the operation
        /// lock is stuck.
        Red => "red",
    }
}

text_enum! {
    /// Where a job is in its life.
    JobStatus {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        /// Its process stopped or lost the lock before it could finish.
        Interrupted => "interrupted",
    }
}

impl JobStatus {
    /// The job has ended (whatever the outcome).
    pub fn is_finished(self) -> bool {
        !matches!(self, JobStatus::Running)
    }
}

text_enum! {
    /// Why a backup exists.
    BackupKind {
        /// Started by an administrator (rate-limited).
        Manual => "manual",
        /// Started on a schedule (not rate-limited).
        Scheduled => "scheduled",
        /// An archive made elsewhere and uploaded.
        Uploaded => "uploaded",
    }
}

impl BackupKind {
    /// The kind as the backup list shows it.
    pub fn words(self) -> &'static str {
        match self {
            BackupKind::Manual => "Manual",
            BackupKind::Scheduled => "Scheduled",
            BackupKind::Uploaded => "Uploaded",
        }
    }
}

text_enum! {
    /// Where a backup is in its life.
    BackupStatus {
        /// Being written; not usable yet.
        Running => "running",
        /// Written, read back in full, and described by its manifest.
        Completed => "completed",
        /// Its job failed; nothing of it is kept.
        Failed => "failed",
        /// Its file disappeared from the backup directory.
        Missing => "missing",
    }
}

text_enum! {
    /// Where a backup's off-site copy is (none while no target is
    /// configured).
    OffsiteState {
        /// To be copied (made before the target was configured, or
        /// waiting for its turn).
        Pending => "pending",
        /// Being sent or read back.
        Copying => "copying",
        /// Sent, read back in full, and its SHA-256 is the manifest's.
        Verified => "verified",
        /// The last attempt failed (the reason is kept); tried again later.
        Failed => "failed",
        /// Verified once, then found gone from the target; copied again
        /// later while the local file is there.
        Missing => "missing",
    }
}

impl OffsiteState {
    /// The state as the backup list shows it.
    pub fn words(self) -> &'static str {
        match self {
            OffsiteState::Pending => "off-site: pending",
            OffsiteState::Copying => "off-site: copying",
            OffsiteState::Verified => "off-site: verified",
            OffsiteState::Failed => "off-site: failed",
            OffsiteState::Missing => "off-site: missing",
        }
    }
}

text_enum! {
    /// How an audited action ended.
    AuditOutcome {
        Success => "success",
        Failure => "failure",
        /// Refused: not signed in as someone allowed to do it.
        Denied => "denied",
    }
}

text_enum! {
    /// What the audit log records.
    AuditAction {
        Login => "login",
        Logout => "logout",
        BackupCreate => "backup.create",
        BackupDownload => "backup.download",
        BackupDelete => "backup.delete",
        BackupUpload => "backup.upload",
        /// A backup deleted by retention (the detail names the rule), or a
        /// retention pass (`backup prune`).
        BackupCleanup => "backup.cleanup",
        /// A backup pinned (kept whatever retention says; the detail is the
        /// reason) or unpinned.
        BackupPin => "backup.pin",
        BackupUnpin => "backup.unpin",
        /// A completed backup's file was found gone from the backup
        /// directory (the entry is now `missing`).
        BackupMissing => "backup.missing",
        /// A missing backup's file was found back, intact (the entry is
        /// `completed` again).
        BackupFound => "backup.found",
        /// A backup's off-site copy made and verified, or failed (the
        /// detail says why).
        OffsiteCopy => "offsite.copy",
        /// A backup's off-site copy deleted (with the backup, or by
        /// retention).
        OffsiteDelete => "offsite.delete",
        /// A verified off-site copy found gone from the target.
        OffsiteMissing => "offsite.missing",
        /// A backup listed again from its off-site manifest (disaster
        /// recovery on a new host).
        OffsiteImport => "offsite.import",
        Restore => "restore",
        RestoreUndo => "restore.undo",
        LockForceRelease => "lock.force_release",
        /// A signed-in user who is not an administrator tried the console.
        AdminRefused => "admin.refused",
        /// An account made an active administrator with a new password
        /// from the command line (`lms-admin user grant-admin`).
        AdminGrant => "user.grant_admin",
        /// A schedule added, changed, turned off or removed.
        ScheduleCreate => "schedule.create",
        ScheduleEdit => "schedule.edit",
        ScheduleDisable => "schedule.disable",
        ScheduleRemove => "schedule.remove",
        /// A scheduled backup that could not start in time (the lock was
        /// held past the grace, the backup directory was away), or due
        /// times that passed while no server was running.
        ScheduleSkip => "schedule.skip",
        /// An API token created (the target is its name, the detail its
        /// scopes and expiry) or revoked.
        TokenCreate => "token.create",
        TokenRevoke => "token.revoke",
        /// An API token used on a route outside its scopes.
        TokenRefused => "token.refused",
        /// A notification channel made, changed or removed in the console
        /// (the target is its name), or sent a test (the detail is the
        /// receiver's answer).
        ChannelCreate => "channel.create",
        ChannelEdit => "channel.edit",
        ChannelRemove => "channel.remove",
        ChannelTest => "channel.test",
        /// A restore drill: a backup restored into a scratch database,
        /// checked and dropped (the detail is the outcome).
        RestoreDrill => "restore.drill",
        /// A backup restored into a prepared copy and compared with the
        /// live database.
        RestorePreview => "restore.preview",
        /// The prepared copy dropped (the detail says by whom or why).
        RestoreDiscard => "restore.discard",
        /// Records brought back from a prepared copy (the detail counts
        /// them per table), or those records deleted again.
        RecordsRecover => "records.recover",
        RecordsUndo => "records.undo",
        /// A recovery's plan worked out (nothing changed).
        RecordsPlan => "records.plan",
    }
}

text_enum! {
    /// What an API token may do. Each scope opens a few REST routes and
    /// nothing else; restoring is never in any scope.
    TokenScope {
        /// Start a backup (`POST /api/admin/backup/create`).
        BackupCreate => "backup:create",
        /// Read the catalog: the list and one backup's details.
        BackupRead => "backup:read",
        /// Read what is running: the operation status and a job.
        StatusRead => "status:read",
    }
}

impl TokenScope {
    /// What the scope allows, in the console's words.
    pub fn words(self) -> &'static str {
        match self {
            TokenScope::BackupCreate => "start a backup",
            TokenScope::BackupRead => "read the backup list and a backup's details",
            TokenScope::StatusRead => "read what is running and follow a job",
        }
    }
}

text_enum! {
    /// What the activity log can be narrowed to.
    ActivityKind {
        /// Backups created, downloaded, uploaded, deleted or cleaned up.
        Backups => "backups",
        /// Restores and their undos.
        Restores => "restores",
        /// Signing in and out, and API tokens created or revoked.
        SignIns => "sign_ins",
        /// Anything refused or failed.
        Refusals => "refusals",
    }
}

impl ActivityKind {
    /// The kind in the words of the activity log's filter.
    pub fn words(self) -> &'static str {
        match self {
            ActivityKind::Backups => "Backups",
            ActivityKind::Restores => "Restores",
            ActivityKind::SignIns => "Sign-ins",
            ActivityKind::Refusals => "Refusals",
        }
    }

    /// The actions of this kind (all of them for refusals, which are told
    /// apart by their outcome).
    pub fn actions(self) -> &'static [AuditAction] {
        use AuditAction::*;
        match self {
            ActivityKind::Backups => &[
                BackupCreate,
                BackupDownload,
                BackupDelete,
                BackupUpload,
                BackupCleanup,
                BackupPin,
                BackupUnpin,
                BackupMissing,
                BackupFound,
                OffsiteCopy,
                OffsiteDelete,
                OffsiteMissing,
                OffsiteImport,
                ScheduleCreate,
                ScheduleEdit,
                ScheduleDisable,
                ScheduleRemove,
                ScheduleSkip,
                ChannelCreate,
                ChannelEdit,
                ChannelRemove,
                ChannelTest,
            ],
            ActivityKind::Restores => &[
                Restore,
                RestoreUndo,
                RestoreDrill,
                RestorePreview,
                RestoreDiscard,
                RecordsRecover,
                RecordsUndo,
                RecordsPlan,
            ],
            ActivityKind::SignIns => &[Login, Logout, TokenCreate, TokenRevoke],
            ActivityKind::Refusals => AuditAction::ALL,
        }
    }
}

impl AuditAction {
    /// The action in the words of the activity log ("created backup").
    pub fn words(self) -> &'static str {
        match self {
            AuditAction::Login => "signed in",
            AuditAction::Logout => "signed out",
            AuditAction::BackupCreate => "created backup",
            AuditAction::BackupDownload => "downloaded backup",
            AuditAction::BackupDelete => "deleted backup",
            AuditAction::BackupUpload => "uploaded backup",
            AuditAction::BackupCleanup => "removed by retention",
            AuditAction::BackupPin => "pinned backup",
            AuditAction::BackupUnpin => "unpinned backup",
            AuditAction::BackupMissing => "found a backup's file missing",
            AuditAction::BackupFound => "found a missing backup's file again",
            AuditAction::OffsiteCopy => "copied off-site",
            AuditAction::OffsiteDelete => "deleted the off-site copy of",
            AuditAction::OffsiteMissing => "found the off-site copy missing of",
            AuditAction::OffsiteImport => "imported from off-site",
            AuditAction::Restore => "restored backup",
            AuditAction::RestoreUndo => "undid the last restore",
            AuditAction::LockForceRelease => "released the operation lock",
            AuditAction::AdminRefused => "was refused the console",
            AuditAction::AdminGrant => "made an administrator",
            AuditAction::ScheduleCreate => "added schedule",
            AuditAction::ScheduleEdit => "changed schedule",
            AuditAction::ScheduleDisable => "turned off schedule",
            AuditAction::ScheduleRemove => "removed schedule",
            AuditAction::ScheduleSkip => "skipped a scheduled backup of",
            AuditAction::TokenCreate => "created API token",
            AuditAction::TokenRevoke => "revoked API token",
            AuditAction::TokenRefused => "was refused",
            AuditAction::ChannelCreate => "added notification channel",
            AuditAction::ChannelEdit => "changed notification channel",
            AuditAction::ChannelRemove => "removed notification channel",
            AuditAction::ChannelTest => "sent a test to notification channel",
            AuditAction::RestoreDrill => "restore-tested backup",
            AuditAction::RestorePreview => "previewed the restore of backup",
            AuditAction::RestoreDiscard => "discarded the prepared copy of backup",
            AuditAction::RecordsRecover => "recovered records from backup",
            AuditAction::RecordsUndo => "undid the recovery of records from backup",
            AuditAction::RecordsPlan => "planned a recovery of records from backup",
        }
    }
}

text_enum! {
    /// Whether an administrator can sign in once a backup is restored,
    /// judged from the accounts the backup holds (a restore replaces the
    /// `users` table with the backup's).
    AccessAfterRestore {
        /// An active administrator there, with the password they have now.
        Kept => "kept",
        /// An active administrator there, whose password then is not the
        /// one they have now: only the old one signs in.
        OlderPassword => "older_password",
        /// An administrator there, but deactivated.
        Deactivated => "deactivated",
        /// An active administrator there without a password that signs in.
        NoPassword => "no_password",
        /// Not an administrator there: no account of that name, or one with
        /// another role.
        NotAdmin => "not_admin",
    }
}

impl AccessAfterRestore {
    /// They can sign in after the restore, with some password.
    pub fn can_sign_in(self) -> bool {
        matches!(
            self,
            AccessAfterRestore::Kept | AccessAfterRestore::OlderPassword
        )
    }
}

text_enum! {
    /// How a table differs between two backups (from their fingerprints).
    TableChange {
        /// Same rows, same content.
        Same => "same",
        /// Rows added, removed or changed.
        Changed => "changed",
        /// Only in the newer backup.
        Added => "added",
        /// Only in the older backup.
        Removed => "removed",
        /// Fingerprinted differently (a manifest from before the faster
        /// method), so only the row counts say anything.
        Incomparable => "incomparable",
    }
}

/// One table of two backups compared: its rows in each and how it changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableComparison {
    pub schema: String,
    pub name: String,
    /// `None`: not in that backup.
    pub older_rows: Option<i64>,
    pub newer_rows: Option<i64>,
    pub change: TableChange,
}

impl TableComparison {
    /// How the row count moved, in words ("+1 row", "-15 rows"), when it did.
    pub fn rows_moved(&self) -> Option<String> {
        let (older, newer) = (self.older_rows?, self.newer_rows?);
        let delta = newer - older;
        (delta != 0).then(|| format!("{delta:+} row{}", if delta.abs() == 1 { "" } else { "s" }))
    }
}

text_enum! {
    /// Something a notification channel can be told about.
    NotifyEvent {
        /// A backup (manual, scheduled or uploaded) failed.
        BackupFailed => "backup_failed",
        /// A verified backup's off-site copy failed (it is retried).
        OffsiteFailed => "offsite_failed",
        /// A schedule's newest verified backup is older than its RPO: the
        /// dead-man's switch, fired because nothing happened.
        RpoBreached => "rpo_breached",
        /// The operation lock is held by nothing alive, or for hours.
        LockStuck => "lock_stuck",
        /// A restore began.
        RestoreStarted => "restore_started",
        /// A restore ended (switched, or failed with nothing changed).
        RestoreFinished => "restore_finished",
        /// Undoing the last restore began.
        UndoStarted => "undo_started",
        /// Undoing the last restore ended.
        UndoFinished => "undo_finished",
        /// A restore drill failed: the backup it tried did not restore.
        DrillFailed => "drill_failed",
        /// A backup succeeded (opt-in: most channels want only trouble).
        BackupSucceeded => "backup_succeeded",
        /// Once a day: how backups went and stand (opt-in).
        DailyDigest => "daily_digest",
        /// Asked for by "send test".
        Test => "test",
    }
}

impl NotifyEvent {
    /// What a channel configured only by environment is told about.
    pub const DEFAULTS: &'static [NotifyEvent] = &[
        NotifyEvent::BackupFailed,
        NotifyEvent::OffsiteFailed,
        NotifyEvent::RpoBreached,
        NotifyEvent::LockStuck,
        NotifyEvent::DrillFailed,
    ];

    /// The events a channel can choose (all but the test).
    pub const CHOOSABLE: &'static [NotifyEvent] = &[
        NotifyEvent::BackupFailed,
        NotifyEvent::OffsiteFailed,
        NotifyEvent::RpoBreached,
        NotifyEvent::LockStuck,
        NotifyEvent::DrillFailed,
        NotifyEvent::RestoreStarted,
        NotifyEvent::RestoreFinished,
        NotifyEvent::UndoStarted,
        NotifyEvent::UndoFinished,
        NotifyEvent::BackupSucceeded,
        NotifyEvent::DailyDigest,
    ];

    /// The event as a channel's settings name it.
    pub fn words(self) -> &'static str {
        match self {
            NotifyEvent::BackupFailed => "Backup failed",
            NotifyEvent::OffsiteFailed => "Off-site copy failed",
            NotifyEvent::RpoBreached => "No recent backup (RPO breached)",
            NotifyEvent::LockStuck => "Operation lock stuck",
            NotifyEvent::RestoreStarted => "Restore started",
            NotifyEvent::RestoreFinished => "Restore finished",
            NotifyEvent::UndoStarted => "Undo started",
            NotifyEvent::UndoFinished => "Undo finished",
            NotifyEvent::DrillFailed => "Restore drill failed",
            NotifyEvent::BackupSucceeded => "Every successful backup",
            NotifyEvent::DailyDigest => "Daily digest",
            NotifyEvent::Test => "Test message",
        }
    }
}

text_enum! {
    /// How a notification channel delivers.
    ChannelKind {
        /// E-mail over SMTP.
        Email => "email",
        /// An HTTP POST of a JSON body, signed when a secret is set.
        Webhook => "webhook",
    }
}

text_enum! {
    /// The body a webhook channel posts.
    WebhookFormat {
        /// This product's own JSON (event id, kind, words, links), signed
        /// with `X-LMS-Signature`.
        Generic => "generic",
        /// `{"text": …}`: Slack and Mattermost incoming webhooks.
        Slack => "slack",
        /// A message card Microsoft Teams shows, with `content` for Discord.
        Teams => "teams",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_everywhere() {
        for status in JobStatus::ALL {
            let json = serde_json_like(status.as_str());
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(*status));
            assert_eq!(json, format!("\"{}\"", status));
        }
        assert_eq!(AuditAction::RestoreUndo.as_str(), "restore.undo");
        assert!("nonsense".parse::<Operation>().is_err());
    }

    fn serde_json_like(s: &str) -> String {
        format!("\"{s}\"")
    }
}
