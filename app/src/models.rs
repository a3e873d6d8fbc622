//! Data shared by the server and the browser (serde DTOs). The engine has its
//! own types; the conversions live beside them under `ssr`.

use chrono::{DateTime, Utc};
pub use lms_types::records::{
    Blocker, PlanTable, Preview, RecoverableRow, RecoveryPlan, RecoveryRecord, TableDiff,
};
pub use lms_types::{
    AccessAfterRestore, ActivityKind, AuditAction, AuditOutcome, BackupKind, BackupStatus,
    ChannelKind, HealthState, JobStatus, NotifyEvent, OffsiteState, Operation, Phase, Policy,
    TableChange, TableComparison, TokenScope, WebhookFormat,
};
use serde::{Deserialize, Serialize};

/// What a user may do in the LMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Instructor,
    Student,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub full_name: String,
    pub role: Role,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The name to greet the user with.
    pub fn display_name(&self) -> &str {
        if self.full_name.is_empty() {
            &self.username
        } else {
            &self.full_name
        }
    }
}

/// What the LMS database holds right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseOverview {
    pub database: String,
    pub size_bytes: i64,
    pub server_version: String,
    pub tables: Vec<TableStats>,
}

/// One LMS table: exact row count and size on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStats {
    pub schema: String,
    pub name: String,
    pub rows: i64,
    pub size_bytes: i64,
}

/// A backup as listed in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    pub id: i64,
    pub filename: String,
    pub kind: BackupKind,
    pub status: BackupStatus,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub notes: Option<String>,
    /// An upload's file name on the uploader's machine.
    #[serde(default)]
    pub original_name: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub job_id: Option<String>,
    /// Set while the backup is pinned: retention keeps it.
    #[serde(default)]
    pub pin: Option<PinInfo>,
    /// Its off-site copy, when a target is configured.
    #[serde(default)]
    pub offsite: Option<OffsiteCopy>,
    /// Its newest restore drill (`None`: never tested).
    #[serde(default)]
    pub drill: Option<DrillOutcome>,
}

/// A backup's newest restore drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillOutcome {
    pub at: DateTime<Utc>,
    pub succeeded: bool,
    /// The recovery time it measured.
    pub duration_ms: i64,
}

impl DrillOutcome {
    /// "restore-tested on 2026-12-06, 41.2 s" or "restore drill failed on …",
    /// with the date as `date` gives it.
    pub fn words(&self, date: &str) -> String {
        if self.succeeded {
            format!(
                "restore-tested on {date}, {:.1} s",
                self.duration_ms as f64 / 1000.0
            )
        } else {
            format!("restore drill failed on {date}")
        }
    }
}

/// Where a backup's off-site copy is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsiteCopy {
    pub state: OffsiteState,
    /// Why the last attempt failed, or when the copy was found gone.
    pub error: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
}

/// The off-site target as the card shows it: where, and whether it can be
/// used; never its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsiteTarget {
    pub kind: String,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    /// Why it cannot be used, as last seen.
    pub problem: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    /// Stored backups with a verified copy, and without one yet.
    pub verified: i64,
    pub unverified: i64,
    /// Backups in the bucket while this console lists none (a new host).
    #[serde(default)]
    pub importable: Option<usize>,
}

/// What an import from the off-site bucket did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsiteImport {
    pub imported: usize,
    pub already_listed: usize,
    /// "name: why" of each backup left out.
    pub refused: Vec<String>,
}

/// The schedules, and the zone a schedule gets when none is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleList {
    pub server_zone: String,
    pub schedules: Vec<ScheduleView>,
}

/// A schedule as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub notes_template: Option<String>,
    pub enabled: bool,
    /// Set explicitly; `None`: twice the interval.
    pub rpo_seconds: Option<i64>,
    pub next_run_at: Option<DateTime<Utc>>,
    /// The next run in the schedule's own zone ("2026-12-03 02:30 CET").
    pub next_run_in_zone: Option<String>,
    pub policy: Policy,
    /// The last run: when it was due and how it went.
    pub last_run: Option<String>,
}

/// What the schedule form sends. `original`: the schedule being changed
/// (`None`: a new one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ScheduleForm {
    #[serde(default)]
    pub original: Option<String>,
    pub name: String,
    pub cron: String,
    /// `None`: the server's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub notes_template: Option<String>,
    pub enabled: bool,
    /// `None`: twice the interval.
    #[serde(default)]
    pub rpo_minutes: Option<i64>,
    pub policy: Policy,
}

/// An API token as the console lists it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub name: String,
    pub scopes: Vec<TokenScope>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    /// Neither revoked nor expired.
    pub live: bool,
}

/// What the token form sends. `expires_days`: `None` for a token that
/// works until it is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TokenForm {
    pub name: String,
    pub scopes: Vec<TokenScope>,
    #[serde(default)]
    pub expires_days: Option<u32>,
}

/// A token just created, with its secret: the one answer that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: TokenView,
    pub secret: String,
}

/// A notification channel as the console shows it: never its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    pub name: String,
    pub kind: ChannelKind,
    pub format: WebhookFormat,
    /// Where it goes, without secrets (recipients and mail server, or the
    /// webhook's scheme and host).
    pub shown_target: String,
    pub email_from: Option<String>,
    pub email_to: Vec<String>,
    pub events: Vec<NotifyEvent>,
    /// Configured by environment: shown locked.
    pub from_env: bool,
    pub enabled: bool,
    /// Webhook bodies are signed (a secret is set).
    pub signed: bool,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Failing since (the first failure of those in a row), and why.
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub last_error: Option<String>,
    /// Messages waiting to be sent or tried again.
    pub waiting: i64,
}

/// What the channel form sends. Secrets are write-only: left out (or
/// empty) on a change, the stored ones are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelForm {
    pub name: String,
    pub kind: ChannelKind,
    #[serde(default = "generic")]
    pub format: WebhookFormat,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    #[serde(default)]
    pub smtp_url: Option<String>,
    #[serde(default)]
    pub email_from: Option<String>,
    #[serde(default)]
    pub email_to: Vec<String>,
    pub events: Vec<NotifyEvent>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn generic() -> WebhookFormat {
    WebhookFormat::Generic
}

fn yes() -> bool {
    true
}

/// What "send test" got back: the receiver's answer, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestAnswer {
    pub delivered: bool,
    pub answer: String,
}

/// The next due times of an expression in a zone, before it is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePreview {
    pub timezone: String,
    pub upcoming: Vec<UpcomingRun>,
}

/// One due time: the instant, and how it reads in the schedule's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingRun {
    pub at: DateTime<Utc>,
    pub in_zone: String,
}

/// How backups stand against their schedules' recovery point objectives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHealth {
    pub state: HealthState,
    /// The worst reason, in words.
    pub reason: String,
    /// Age of the newest verified backup of any kind.
    pub newest_age_seconds: Option<i64>,
    pub schedules: Vec<ScheduleHealth>,
}

/// One enabled schedule against its RPO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleHealth {
    pub name: String,
    pub state: HealthState,
    pub reason: String,
    pub age_seconds: i64,
    pub rpo_seconds: i64,
}

/// Why, by whom and since when a backup is pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinInfo {
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A policy an administrator is about to save for a schedule (`schedule`
/// `None`: a new one), to see what it would delete first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RetentionProposal {
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(flatten)]
    pub policy: Policy,
}

/// One backup retention lets go (or would), and the rule that does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRemoval {
    pub id: i64,
    pub filename: String,
    pub rule: String,
    /// `deleted`, `file_already_gone`, `failed`; absent in a dry run.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Why it could not be deleted.
    #[serde(default)]
    pub error: Option<String>,
}

/// What a retention pass did, or its dry run would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub removals: Vec<RetentionRemoval>,
    /// Verified backups kept, and the rule that keeps each.
    pub kept: Vec<RetentionRemoval>,
    /// Completed backups whose file was found gone.
    pub missing: Vec<String>,
}

/// A backup with what its manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDetail {
    #[serde(flatten)]
    pub summary: BackupSummary,
    pub manifest: Option<ManifestSummary>,
}

/// The parts of a manifest a person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSummary {
    pub database: String,
    pub server_version: String,
    pub pg_dump_version: String,
    pub archive_version: String,
    pub duration_ms: u64,
    /// `None` until known (uploaded archives before their first restore).
    pub tables: Option<Vec<TableRows>>,
    /// What opens its off-site copy, when that is encrypted: "age1…, age1…"
    /// or "a passphrase".
    #[serde(default)]
    pub encrypted_for: Option<String>,
    /// The file kept on this server is encrypted too (`ENCRYPT_LOCAL`):
    /// restoring it needs the key here, and downloads are the `.age` file.
    #[serde(default)]
    pub kept_encrypted: bool,
}

/// A table and its row count in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub schema: String,
    pub name: String,
    pub rows: i64,
}

/// Two backups compared table by table from their manifests alone, the
/// older first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupComparison {
    pub older: BackupSummary,
    pub newer: BackupSummary,
    /// Every table of either, by schema and name.
    pub tables: Vec<TableComparison>,
}

impl BackupComparison {
    /// How many tables changed in `change`'s way.
    pub fn count(&self, change: TableChange) -> usize {
        self.tables.iter().filter(|t| t.change == change).count()
    }
}

/// An administrator account a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupAdmin {
    pub username: String,
    /// Empty when the account has none.
    pub full_name: String,
    pub is_active: bool,
    /// It could sign in after the restore (active, with a password).
    pub can_sign_in: bool,
}

/// Who could sign in after restoring a backup, as the administrator asking
/// sees it (`GET /api/admin/backup/{id}/administrators`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupAdministrators {
    pub backup_id: i64,
    /// The administrators the backup holds, by username.
    pub admins: Vec<BackupAdmin>,
    /// The administrator asking.
    pub you: String,
    /// Whether they could sign in after the restore.
    pub your_access: AccessAfterRestore,
    /// Administrators who could sign in after the restore but cannot now.
    pub returning: Vec<String>,
    /// Administrators who can sign in now but could not after the restore.
    pub leaving: Vec<String>,
    /// The command, run on the server, that gets `you` back in afterwards.
    pub recovery_command: String,
}

impl BackupAdministrators {
    /// Some administrator could sign in after the restore.
    pub fn anyone_can_sign_in(&self) -> bool {
        self.admins.iter().any(|a| a.can_sign_in)
    }
}

/// A long operation and how far it has got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    pub id: String,
    pub kind: Operation,
    pub status: JobStatus,
    pub phase: Phase,
    /// 0..=1
    pub progress: f64,
    /// Why it failed, in words a person can act on.
    pub message: Option<String>,
    /// What it wants the administrator to know although it did not fail
    /// (a check it could not make, a choice it made), oldest first.
    #[serde(default)]
    pub notes: Vec<String>,
    pub started_by: String,
    pub backup_id: Option<i64>,
    /// The backup's file name (for an undo, the backup whose restore it
    /// undoes).
    #[serde(default)]
    pub backup_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A backup that has just started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedBackup {
    pub job: JobInfo,
    pub backup: BackupSummary,
}

/// What is running right now (`GET /api/admin/backup/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStatus {
    pub is_locked: bool,
    pub operation_type: Option<Operation>,
    pub locked_by: Option<String>,
    pub locked_at: Option<DateTime<Utc>>,
    /// The locked operation's job, or else the most recent job.
    pub job: Option<JobInfo>,
    /// Maintenance mode is on (a restore is swapping databases).
    pub maintenance: bool,
    /// The last restore can be undone.
    pub undo_available: bool,
    /// Why backups cannot be made, uploaded or restored right now (the
    /// backup directory cannot be used): which directory, what is wrong,
    /// what to do. `None` while it can be used.
    pub backup_dir_problem: Option<String>,
    /// Backups whose file is missing from the backup directory.
    pub missing_backups: i64,
    /// Of those, the ones a download or restore fetches back from their
    /// verified off-site copy.
    #[serde(default)]
    pub missing_kept_offsite: i64,
}

/// What a check of the backup files against the catalog found, by archive
/// name (`POST /api/admin/backup/recheck`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileCheck {
    /// Missing backups whose file is back, intact: completed again.
    pub found: Vec<String>,
    /// Completed backups whose file is gone: now missing.
    pub newly_missing: Vec<String>,
    /// Missing backups whose file is still not there.
    pub still_missing: Vec<String>,
    /// Missing backups with a file of their name that is not the archive
    /// catalogued: still missing.
    pub changed: Vec<String>,
}

impl FileCheck {
    /// What the check did, in a sentence.
    pub fn words(&self) -> String {
        let count = |n: usize| format!("{n} backup{}", if n == 1 { "" } else { "s" });
        let mut parts = Vec::new();
        if !self.found.is_empty() {
            parts.push(format!(
                "{} found again and completed",
                count(self.found.len())
            ));
        }
        if !self.newly_missing.is_empty() {
            parts.push(format!("{} now missing", count(self.newly_missing.len())));
        }
        let still = self.still_missing.len() + self.changed.len();
        if still > 0 {
            parts.push(format!("{} still missing", count(still)));
        }
        if parts.is_empty() {
            "Every backup's file is where it should be.".into()
        } else {
            let mut sentence = parts.join(", ");
            sentence.push('.');
            let mut chars = sentence.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }
}

/// The restore (or undo) that the next undo would reverse: the last one
/// that switched the LMS database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSwitch {
    /// A restore, or an undo (which an undo reverses in turn).
    pub kind: Operation,
    /// The backup restored; `None` for an undo or a backup deleted since.
    pub backup: Option<String>,
    pub restored_by: String,
    pub restored_at: DateTime<Utc>,
}

/// What a forced release of the operation lock freed
/// (`POST /api/admin/backup/lock/release`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedLock {
    /// Something held the lock (else it was free already).
    pub released: bool,
    pub operation_type: Option<Operation>,
    pub locked_by: Option<String>,
}

/// A page of backups, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupList {
    pub backups: Vec<BackupSummary>,
    pub total: i64,
}

/// The stored backups at a glance (the card's header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageSummary {
    pub backups: i64,
    /// Bytes of the archives on disk.
    pub stored_bytes: i64,
    /// Free bytes on the backup directory's disk, if readable.
    pub free_bytes: Option<u64>,
    /// The largest archive accepted; uploads past it are refused.
    pub max_backup_size: u64,
    /// The most characters a backup's notes may have (the engine's
    /// `max_notes_len`; the create form counts against it).
    pub max_notes_len: usize,
    /// The newest backup taken that finished, completed or failed.
    pub last_finished: Option<BackupSummary>,
    /// When its data was taken (an uploaded archive's own time).
    #[serde(default)]
    pub last_taken_at: Option<DateTime<Utc>>,
    /// When the administrator asking may start their next manual backup,
    /// if not now (the hourly limit is used up).
    #[serde(default)]
    pub next_manual_backup_at: Option<DateTime<Utc>>,
    /// Where backups are copied off-site, if anywhere.
    #[serde(default)]
    pub offsite: Option<OffsiteTarget>,
}

/// One audited action, as the activity list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: AuditAction,
    pub target: Option<String>,
    pub client_ip: Option<String>,
    pub outcome: AuditOutcome,
    pub detail: Option<String>,
}

/// A table's name as people read it: schema-qualified unless in `public`.
pub fn table_label(schema: &str, name: &str) -> String {
    if schema == "public" {
        name.to_owned()
    } else {
        format!("{schema}.{name}")
    }
}

/// The command, run on the server, that makes `username` an active
/// administrator with a new password (creating the account if it is
/// missing): how someone a restore locked out gets back in.
pub fn grant_admin_command(username: &str) -> String {
    let plain = !username.is_empty()
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let quoted = if plain {
        username.to_owned()
    } else {
        format!("'{}'", username.replace('\'', r"'\''"))
    };
    // A name that starts like an option is joined to its flag.
    let flag = if username.starts_with('-') {
        format!("--username={quoted}")
    } else {
        format!("--username {quoted}")
    };
    format!("lms-admin user grant-admin {flag} --password-stdin")
}

/// A count with thousands separators ("1,234,567"), as people read them.
pub use lms_types::records::thousands;

/// Formats a byte count for people ("1.5 MB").
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use lms_backup::postgres::overview;
    use lms_backup::{catalog, jobs, retention, users};

    impl From<users::Role> for Role {
        fn from(r: users::Role) -> Self {
            match r {
                users::Role::Admin => Role::Admin,
                users::Role::Instructor => Role::Instructor,
                users::Role::Student => Role::Student,
            }
        }
    }

    impl From<users::User> for CurrentUser {
        fn from(u: users::User) -> Self {
            CurrentUser {
                id: u.id,
                username: u.username,
                full_name: u.full_name,
                role: u.role.into(),
            }
        }
    }

    impl From<overview::DatabaseOverview> for DatabaseOverview {
        fn from(o: overview::DatabaseOverview) -> Self {
            DatabaseOverview {
                database: o.database,
                size_bytes: o.size_bytes,
                server_version: o.server_version,
                tables: o
                    .tables
                    .into_iter()
                    .map(|t| TableStats {
                        schema: t.schema,
                        name: t.name,
                        rows: t.rows,
                        size_bytes: t.size_bytes,
                    })
                    .collect(),
            }
        }
    }

    impl From<lms_backup::notify::Channel> for ChannelView {
        fn from(c: lms_backup::notify::Channel) -> Self {
            ChannelView {
                name: c.name,
                kind: c.kind,
                format: c.format,
                shown_target: c.shown_target,
                email_from: c.email_from,
                email_to: c.email_to,
                events: c.events,
                from_env: c.from_env,
                enabled: c.enabled,
                signed: c.signed,
                last_delivered_at: c.last_delivered_at,
                failing_since: c.failing_since,
                consecutive_failures: c.consecutive_failures,
                last_error: c.last_error,
                waiting: c.waiting,
            }
        }
    }

    impl From<lms_backup::tokens::TokenInfo> for TokenView {
        fn from(t: lms_backup::tokens::TokenInfo) -> Self {
            TokenView {
                live: t.is_live(chrono::Utc::now()),
                name: t.name,
                scopes: t.scopes,
                created_by: t.created_by_name,
                created_at: t.created_at,
                expires_at: t.expires_at,
                last_used_at: t.last_used_at,
                revoked_at: t.revoked_at,
                revoked_by: t.revoked_by_name,
            }
        }
    }

    impl From<catalog::Backup> for BackupSummary {
        fn from(b: catalog::Backup) -> Self {
            BackupSummary {
                id: b.id,
                filename: b.filename,
                kind: b.kind,
                status: b.status,
                size_bytes: b.size_bytes,
                sha256: b.sha256,
                notes: b.notes,
                original_name: b.original_name,
                created_by: b.created_by_name,
                created_at: b.created_at,
                completed_at: b.completed_at,
                job_id: b.job_id.map(|j| j.to_string()),
                pin: match (b.pinned_reason, b.pinned_by_name, b.pinned_at) {
                    (Some(reason), Some(by), Some(at)) => Some(PinInfo { reason, by, at }),
                    _ => None,
                },
                offsite: b.offsite_state.map(|state| OffsiteCopy {
                    state,
                    error: b.offsite_error,
                    verified_at: b.offsite_verified_at,
                }),
                drill: match (b.drilled_at, b.drill_succeeded, b.drill_ms) {
                    (Some(at), Some(succeeded), Some(duration_ms)) => Some(DrillOutcome {
                        at,
                        succeeded,
                        duration_ms,
                    }),
                    _ => None,
                },
            }
        }
    }

    impl From<lms_backup::health::BackupHealth> for BackupHealth {
        fn from(h: lms_backup::health::BackupHealth) -> Self {
            BackupHealth {
                state: h.state,
                reason: h.reason,
                newest_age_seconds: h.newest_age_seconds,
                schedules: h
                    .schedules
                    .into_iter()
                    .map(|s| ScheduleHealth {
                        name: s.name,
                        state: s.state,
                        reason: s.reason,
                        age_seconds: s.age_seconds,
                        rpo_seconds: s.rpo_seconds,
                    })
                    .collect(),
            }
        }
    }

    impl From<lms_backup::schedule::ScheduleInfo> for ScheduleView {
        fn from(info: lms_backup::schedule::ScheduleInfo) -> Self {
            let s = info.schedule;
            let zone = lms_backup::schedule::cron::parse_zone(&s.timezone).ok();
            let in_zone = |at: DateTime<Utc>| {
                zone.map(|z| at.with_timezone(&z).format("%Y-%m-%d %H:%M %Z").to_string())
            };
            let last_run = info.last_run.map(|run| {
                let outcome = run.job_status.clone().unwrap_or_else(|| run.state.clone());
                let due = in_zone(run.due_at)
                    .unwrap_or_else(|| run.due_at.format("%Y-%m-%d %H:%M UTC").to_string());
                match run.detail {
                    Some(detail) if run.job_status.is_none() => {
                        format!("due {due}: {outcome} ({detail})")
                    }
                    _ => format!("due {due}: {outcome}"),
                }
            });
            ScheduleView {
                next_run_in_zone: s.next_run_at.and_then(in_zone),
                name: s.name,
                cron: s.cron,
                timezone: s.timezone,
                notes_template: s.notes_template,
                enabled: s.enabled,
                rpo_seconds: s.rpo_seconds,
                next_run_at: s.next_run_at,
                policy: s.policy,
                last_run,
            }
        }
    }

    impl From<retention::PruneReport> for RetentionReport {
        fn from(r: retention::PruneReport) -> Self {
            let kept = r
                .verdicts
                .iter()
                .filter(|v| v.keep)
                .map(|v| RetentionRemoval {
                    id: v.id,
                    filename: v.filename.clone(),
                    rule: v.rule.clone(),
                    outcome: None,
                    error: None,
                })
                .collect();
            let removals = r
                .let_go
                .into_iter()
                .map(|l| {
                    let (outcome, error) = match l.removal {
                        None => (None, None),
                        Some(retention::Removal::Deleted) => (Some("deleted"), None),
                        Some(retention::Removal::FileAlreadyGone) => {
                            (Some("file_already_gone"), None)
                        }
                        Some(retention::Removal::Failed(why)) => (Some("failed"), Some(why)),
                    };
                    RetentionRemoval {
                        id: l.id,
                        filename: l.filename,
                        rule: l.rule,
                        outcome: outcome.map(str::to_owned),
                        error,
                    }
                })
                .collect();
            RetentionReport {
                dry_run: r.dry_run,
                removals,
                kept,
                missing: r.missing,
            }
        }
    }

    impl From<catalog::BackupPage> for BackupList {
        fn from(p: catalog::BackupPage) -> Self {
            BackupList {
                total: p.total,
                backups: p.backups.into_iter().map(Into::into).collect(),
            }
        }
    }

    impl From<catalog::compare::BackupComparison> for BackupComparison {
        fn from(c: catalog::compare::BackupComparison) -> Self {
            BackupComparison {
                older: c.older.into(),
                newer: c.newer.into(),
                tables: c.tables,
            }
        }
    }

    impl From<catalog::BackupDetail> for BackupDetail {
        fn from(d: catalog::BackupDetail) -> Self {
            BackupDetail {
                summary: d.backup.into(),
                manifest: d.manifest.map(|m| ManifestSummary {
                    database: m.database,
                    server_version: m.server_version,
                    pg_dump_version: m.pg_dump_version,
                    archive_version: m.archive_version,
                    duration_ms: m.duration_ms,
                    kept_encrypted: m.encryption.as_ref().is_some_and(|e| e.local),
                    encrypted_for: m.encryption.map(|e| {
                        if e.passphrase {
                            "a passphrase (AGE_PASSPHRASE_FILE)".to_owned()
                        } else {
                            e.recipients.join(", ")
                        }
                    }),
                    tables: m.tables.map(|ts| {
                        ts.into_iter()
                            .map(|t| TableRows {
                                schema: t.schema,
                                name: t.name,
                                rows: t.rows,
                            })
                            .collect()
                    }),
                }),
            }
        }
    }

    impl BackupAdministrators {
        /// The engine's answer for `you`, the administrator who asked
        /// (password digests stay on the server).
        pub fn new(seen: lms_backup::restore::AdminsAfterRestore, you: &str) -> Self {
            BackupAdministrators {
                backup_id: seen.backup.id,
                admins: seen
                    .admins
                    .iter()
                    .map(|a| BackupAdmin {
                        username: a.username.clone(),
                        full_name: a.full_name.clone(),
                        is_active: a.is_active,
                        can_sign_in: a.can_sign_in(),
                    })
                    .collect(),
                you: you.to_owned(),
                your_access: seen.access.unwrap_or(AccessAfterRestore::NotAdmin),
                returning: seen.returning,
                leaving: seen.leaving,
                recovery_command: grant_admin_command(you),
            }
        }
    }

    impl From<jobs::Job> for JobInfo {
        fn from(j: jobs::Job) -> Self {
            JobInfo {
                id: j.id.to_string(),
                kind: j.kind,
                status: j.status,
                phase: j.phase,
                progress: j.progress,
                message: j.message,
                notes: j.notes,
                started_by: j.started_by_name,
                backup_id: j.backup_id,
                backup_name: j.backup_name,
                created_at: j.created_at,
                finished_at: j.finished_at,
            }
        }
    }

    impl From<lms_backup::backup::StartedBackup> for StartedBackup {
        fn from(s: lms_backup::backup::StartedBackup) -> Self {
            StartedBackup {
                job: s.job.into(),
                backup: s.backup.into(),
            }
        }
    }

    impl StorageSummary {
        /// The engine's summary, with the limits of its configuration that
        /// the console's forms follow.
        pub fn new(
            s: lms_backup::StorageSummary,
            config: &lms_backup::EngineConfig,
            next_manual_backup_at: Option<DateTime<Utc>>,
        ) -> Self {
            StorageSummary {
                backups: s.catalog.count,
                stored_bytes: s.catalog.stored_bytes,
                free_bytes: s.free_bytes,
                max_backup_size: s.max_backup_size,
                max_notes_len: config.max_notes_len,
                last_finished: s.catalog.last_finished.map(Into::into),
                last_taken_at: s.catalog.last_taken_at,
                next_manual_backup_at,
                offsite: s.offsite.map(|o| OffsiteTarget {
                    kind: o.target.kind,
                    endpoint: o.target.endpoint,
                    bucket: o.target.bucket,
                    prefix: o.target.prefix,
                    problem: o.problem,
                    checked_at: o.checked_at,
                    verified: o.verified,
                    unverified: o.unverified,
                    importable: o.importable,
                }),
            }
        }
    }

    impl From<lms_backup::audit::Entry> for ActivityEntry {
        fn from(e: lms_backup::audit::Entry) -> Self {
            ActivityEntry {
                id: e.id,
                at: e.at,
                actor: if e.actor_name.trim().is_empty() {
                    lms_backup::audit::NO_USERNAME.to_owned()
                } else {
                    e.actor_name
                },
                action: e.action,
                target: e.target,
                client_ip: e.client_ip,
                outcome: e.outcome,
                detail: e.detail,
            }
        }
    }

    impl From<Option<lms_backup::jobs::lock::LockInfo>> for ReleasedLock {
        fn from(released: Option<lms_backup::jobs::lock::LockInfo>) -> Self {
            ReleasedLock {
                released: released.is_some(),
                operation_type: released.as_ref().map(|l| l.operation_type),
                locked_by: released.map(|l| l.locked_by),
            }
        }
    }

    impl From<lms_backup::OperationStatus> for OperationStatus {
        fn from(s: lms_backup::OperationStatus) -> Self {
            OperationStatus {
                is_locked: s.lock.is_some(),
                operation_type: s.lock.as_ref().map(|l| l.operation_type),
                locked_by: s.lock.as_ref().map(|l| l.locked_by.clone()),
                locked_at: s.lock.as_ref().map(|l| l.locked_at),
                job: s.job.map(Into::into),
                maintenance: s.maintenance,
                undo_available: s.undo_available,
                backup_dir_problem: s.backup_dir.map(|d| d.message),
                missing_backups: s.missing_backups,
                missing_kept_offsite: s.missing_kept_offsite,
            }
        }
    }

    impl From<lms_backup::backup::FileCheck> for FileCheck {
        fn from(c: lms_backup::backup::FileCheck) -> Self {
            FileCheck {
                found: c.found,
                newly_missing: c.newly_missing,
                still_missing: c.still_missing,
                changed: c.changed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_in_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-12_345), "-12,345");
    }

    #[test]
    fn the_grant_command_is_safe_to_paste() {
        assert_eq!(
            grant_admin_command("e2e-admin"),
            "lms-admin user grant-admin --username e2e-admin --password-stdin"
        );
        assert_eq!(
            grant_admin_command("o'neil $(rm)"),
            r"lms-admin user grant-admin --username 'o'\''neil $(rm)' --password-stdin"
        );
        assert_eq!(
            grant_admin_command("-x"),
            "lms-admin user grant-admin --username=-x --password-stdin"
        );
    }

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MB");
    }

    #[test]
    fn a_file_check_reads_as_a_sentence() {
        assert_eq!(
            FileCheck::default().words(),
            "Every backup's file is where it should be."
        );
        let check = FileCheck {
            found: vec!["a".into()],
            newly_missing: vec![],
            still_missing: vec!["b".into()],
            changed: vec!["c".into()],
        };
        assert_eq!(
            check.words(),
            "1 backup found again and completed, 2 backups still missing."
        );
    }
}
