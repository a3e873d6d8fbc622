//! Creating backups (one job, under the operation lock):
//!
//! 1. gates: tools not older than the server, free space for the database;
//! 2. one REPEATABLE READ transaction exports a snapshot; the fingerprint is
//!    computed in it while `pg_dump --snapshot` dumps it, so the fingerprint
//!    describes exactly the dumped data;
//! 3. pg_dump's output streams to `<name>.partial`, hashed on the way;
//! 4. the archive is read back in full, fsynced, renamed, and the directory
//!    fsynced;
//! 5. the manifest is written (sidecar, then catalog row): only now is the
//!    backup `completed`;
//! 6. on any failure the job fails with a message a person can act on, and
//!    nothing half-written is left.

mod housekeeping;
mod upload;

pub use housekeeping::Download;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::audit::{self, Actor, Event, Outcome};
use crate::catalog::{self, Backup, NewEntry};
use crate::engine::Engine;
use crate::jobs::lease::Lease;
use crate::jobs::lock::{self, LockRequest};
use crate::jobs::{self, Job};
use crate::postgres::archive::{self, TableProgress};
use crate::postgres::fingerprint::{self, Fingerprint};
use crate::postgres::process::{follow_stderr, ToolConnection};
use crate::postgres::tools as pgtools;
use crate::storage::{self, Manifest, PARTIAL_SUFFIX};
use crate::{Error, Result};

/// Why a backup is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    /// Started by an administrator (rate-limited).
    Manual,
    /// Started by the schedule.
    Scheduled,
    /// Taken automatically before a restore.
    PreRestore,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Manual => "manual",
            BackupKind::Scheduled => "scheduled",
            BackupKind::PreRestore => "pre_restore",
        }
    }
}

/// A request to back up the LMS database.
pub struct BackupRequest<'a> {
    pub actor: &'a Actor,
    pub notes: Option<&'a str>,
    pub kind: BackupKind,
}

/// A backup that has started: its job and its (running) catalog entry.
#[derive(Debug, Clone)]
pub struct StartedBackup {
    pub job: Job,
    pub backup: Backup,
}

impl Engine {
    /// Starts a backup job and returns at once. Fails with [`Error::Busy`]
    /// while another operation runs, [`Error::RateLimited`] when the user
    /// started too many manual backups, [`Error::Invalid`] for bad notes.
    #[tracing::instrument(skip(self, request), fields(actor = %request.actor.name))]
    pub async fn start_backup(&self, request: BackupRequest<'_>) -> Result<StartedBackup> {
        let notes = clean_notes(request.notes, self.config().max_notes_len)?;
        if request.kind == BackupKind::Manual {
            self.check_backup_rate(request.actor).await?;
        }
        let control = &self.dbs().control;
        let mut tx = lock::begin(control).await?;
        let job_id = Uuid::new_v4();
        let job = jobs::insert_running(
            &mut *tx,
            job_id,
            "backup",
            request.actor,
            self.instance_id(),
            "starting",
        )
        .await?;
        lock::acquire_in(
            &mut tx,
            &LockRequest {
                instance_id: self.instance_id(),
                job_id: Some(job_id),
                operation_type: "backup",
                actor: request.actor,
                lease_timeout: self.config().lease_timeout,
            },
        )
        .await?;
        let filename = self.new_archive_name(&mut tx, "backup").await?;
        let backup = catalog::insert_running(
            &mut *tx,
            NewEntry {
                filename: &filename,
                kind: request.kind.as_str(),
                notes: notes.as_deref(),
                actor: request.actor,
                job_id,
            },
        )
        .await?;
        jobs::set_backup(&mut *tx, job_id, backup.id).await?;
        tx.commit().await?;

        let job = Job {
            backup_id: Some(backup.id),
            ..job
        };
        let engine = self.clone();
        let (job_for_task, backup_for_task, actor) =
            (job.clone(), backup.clone(), request.actor.clone());
        tokio::spawn(async move {
            engine
                .run_backup_job(job_for_task, backup_for_task, actor)
                .await
        });
        Ok(StartedBackup { job, backup })
    }

    /// Refuses a manual backup past the per-user hourly limit.
    async fn check_backup_rate(&self, actor: &Actor) -> Result<()> {
        let limit = self.config().backup_rate_limit;
        let Some(user_id) = actor.id.filter(|_| limit > 0) else {
            return Ok(());
        };
        let (count, oldest): (i64, Option<chrono::DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(j.created_at) FROM jobs j JOIN backup_history b ON b.job_id = j.id
             WHERE j.kind = 'backup' AND b.kind = 'manual' AND j.started_by_id = $1
               AND j.created_at > now() - interval '1 hour' AND j.status IN ('running', 'succeeded')",
        )
        .bind(user_id)
        .fetch_one(&self.dbs().control)
        .await?;
        if count < i64::from(limit) {
            return Ok(());
        }
        let retry_at = oldest.unwrap_or_else(Utc::now) + chrono::Duration::hours(1);
        Err(Error::RateLimited {
            message: format!(
                "You can start {limit} manual backup{} per hour. The next one is possible at {} UTC.",
                if limit == 1 { "" } else { "s" },
                retry_at.format("%H:%M")
            ),
            retry_at,
        })
    }

    /// A file name free both in the catalog and on disk.
    pub(crate) async fn new_archive_name(
        &self,
        tx: &mut PgConnection,
        prefix: &str,
    ) -> Result<String> {
        let dir = self.config().backup_dir.clone();
        let mut taken = Vec::new();
        loop {
            let name = storage::archive_name(prefix, Utc::now(), |n| {
                taken.iter().any(|t: &String| t == n)
                    || dir.join(n).exists()
                    || dir.join(format!("{n}{PARTIAL_SUFFIX}")).exists()
            });
            if !catalog::name_taken(&mut *tx, &name).await? {
                return Ok(name);
            }
            taken.push(name);
        }
    }

    /// Runs a started backup to its end, whatever happens, then releases the
    /// lock.
    async fn run_backup_job(self, job: Job, backup: Backup, actor: Actor) {
        let lease = Lease::start(self.clone(), Some(job.id));
        let partial = self
            .config()
            .backup_dir
            .join(format!("{}{PARTIAL_SUFFIX}", backup.filename));
        let outcome = tokio::select! {
            result = self.backup_pipeline(&job, &backup, &partial) => result,
            () = lease.lost() => Err(Error::Cancelled(
                "The backup was stopped: its operation lock was released or taken over.".into(),
            )),
        };
        let control = &self.dbs().control;
        let (job_outcome, message) = match &outcome {
            Ok(manifest) => {
                if let Err(e) = self.apply_retention().await {
                    tracing::error!(error = ?e, "retention after a backup failed");
                }
                tracing::info!(backup = %backup.filename, size = manifest.size_bytes, "backup completed");
                (jobs::Outcome::Succeeded, None)
            }
            Err(err) => {
                self.discard_archive(&backup, &partial).await;
                tracing::error!(error = ?err, backup = %backup.filename, "backup failed");
                log_failure(catalog::set_status(control, backup.id, "failed").await);
                (jobs::Outcome::Failed, Some(failure_message(err)))
            }
        };
        audit::record_or_log(
            control,
            Event {
                actor: &actor,
                action: "backup.create",
                target: Some(&backup.filename),
                outcome: if message.is_none() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                detail: message.as_deref(),
            },
        )
        .await;
        // The job ends and the lock frees in one step: whoever sees the job
        // finished can start the next operation.
        lease.finish(job_outcome, message.as_deref()).await;
    }

    /// Removes whatever a failed backup wrote.
    async fn discard_archive(&self, backup: &Backup, partial: &Path) {
        let dir = &self.config().backup_dir;
        for path in [
            Some(partial.to_path_buf()),
            storage::archive_path(dir, &backup.filename).ok(),
            storage::manifest_path(dir, &backup.filename).ok(),
        ]
        .into_iter()
        .flatten()
        {
            if let Err(e) = storage::remove_if_exists(&path) {
                tracing::error!(error = %e, path = %path.display(), "could not remove a failed backup's file");
            }
        }
    }

    async fn backup_pipeline(
        &self,
        job: &Job,
        backup: &Backup,
        partial: &Path,
    ) -> Result<Manifest> {
        let started = Instant::now();
        let dbs = self.dbs();
        let control = &dbs.control;
        let dir = &self.config().backup_dir;
        jobs::progress(control, job.id, "checking", 0.01).await?;

        let (major, server_version) = pgtools::server_version(&dbs.lms).await?;
        self.tools().check_against_server(major, &server_version)?;
        let database_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&dbs.lms)
            .await?;
        if !dir.is_dir() {
            // Not re-created here: a vanished directory is often an unmounted
            // disk, and writing to the mount point would fill the wrong one.
            return Err(Error::Invalid(
                "The backup directory is missing (removed or unmounted?); nothing was written. \
                 Restore it (restarting the server creates it again) and try again."
                    .into(),
            ));
        }
        let free = storage::free_space(dir)?;
        if free < database_bytes as u64 {
            return Err(Error::Invalid(format!(
                "Not enough free space for the backup: {} free in the backup directory, up to {} needed. \
                 Free some space or delete old backups.",
                human(free),
                human(database_bytes as u64)
            )));
        }

        // The snapshot stays open until both the dump and the fingerprint are done.
        let mut snapshot_conn = PgConnection::connect_with(&dbs.lms_options).await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut snapshot_conn)
            .await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut snapshot_conn)
            .await?;
        let tables = fingerprint::list_tables(&mut snapshot_conn).await?;

        jobs::progress(control, job.id, "dumping", 0.02).await?;
        let connection = ToolConnection::new(&dbs.lms_options, dbs.lms_password.as_deref(), None)?;
        let mut dump = archive::start_dump(&self.tools().pg_dump, &connection, &snapshot)?;
        let stdout = dump.child().stdout.take().expect("stdout is piped");
        let stderr = dump.child().stderr.take().expect("stderr is piped");
        let progress = TableProgress::new(&tables);
        let follower = {
            let progress = progress.clone();
            follow_stderr(stderr, move |line| progress.on_line(line))
        };
        let work = async {
            tokio::join!(
                archive::write_and_hash(stdout, partial, self.config().max_backup_size, None),
                follower,
                fingerprint::fingerprint(&mut snapshot_conn, &tables),
            )
        };
        let (written, stderr_tail, fingerprint) =
            report_while(work, control, job.id, "dumping", 0.02, 0.80, &progress).await;
        let (size, sha256) = written?;
        dump.wait(stderr_tail).await?;
        let fingerprint: Fingerprint = fingerprint?;
        snapshot_conn.close().await?;

        jobs::progress(control, job.id, "verifying", 0.82).await?;
        let info = archive::list(&self.tools().pg_restore, partial).await?;
        if let Some(missing) = tables
            .iter()
            .map(|t| format!("{}.{}", t.schema, t.name))
            .find(|t| !info.tables.contains(t))
        {
            return Err(Error::Invalid(format!(
                "The archive does not contain table {missing}; the backup was discarded."
            )));
        }
        let verify = TableProgress::new(&tables);
        report_while(
            archive::read_all(&self.tools().pg_restore, partial, &verify),
            control,
            job.id,
            "verifying",
            0.82,
            0.15,
            &verify,
        )
        .await?;

        jobs::progress(control, job.id, "saving", 0.98).await?;
        let final_path = storage::archive_path(dir, &backup.filename)?;
        tokio::fs::rename(partial, &final_path).await?;
        storage::sync_dir(dir)?;
        let manifest = Manifest {
            manifest_version: 1,
            filename: backup.filename.clone(),
            kind: backup.kind.clone(),
            size_bytes: size,
            sha256,
            created_at: backup.created_at,
            completed_at: Utc::now(),
            created_by_id: backup.created_by_id,
            created_by_name: backup.created_by_name.clone(),
            notes: backup.notes.clone(),
            database: dbs.lms_name().to_owned(),
            server_version,
            pg_dump_version: info.dumped_by,
            archive_version: info.archive_version,
            tables: Some(fingerprint.tables),
            sequences: Some(fingerprint.sequences),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let (dir_owned, m) = (dir.to_path_buf(), manifest.clone());
        tokio::task::spawn_blocking(move || storage::write_manifest(&dir_owned, &m))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        catalog::mark_completed(control, backup.id, &manifest).await?;
        Ok(manifest)
    }
}

/// Runs `work` while writing its progress to the job twice a second, mapped
/// into `[start, start + span]`.
pub(crate) async fn report_while<T>(
    work: impl std::future::Future<Output = T>,
    control: &sqlx::PgPool,
    job: Uuid,
    phase: &str,
    start: f64,
    span: f64,
    progress: &TableProgress,
) -> T {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last = -1.0;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                let now = start + span * progress.fraction();
                if now > last {
                    last = now;
                    log_failure(jobs::progress(control, job, phase, now).await);
                }
            }
        }
    }
}

/// Trims notes, refuses control characters and overlong text.
fn clean_notes(notes: Option<&str>, max_len: usize) -> Result<Option<String>> {
    let Some(notes) = notes.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if notes.chars().count() > max_len {
        return Err(Error::Invalid(format!(
            "Notes can be at most {max_len} characters long."
        )));
    }
    if notes
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::Invalid(
            "Notes cannot contain control characters.".into(),
        ));
    }
    Ok(Some(notes.to_owned()))
}

/// The message a person sees when a job fails. Details go to the log.
pub fn failure_message(err: &Error) -> String {
    match err {
        Error::ToolFailed { tool, status, stderr_tail } => {
            use std::os::unix::process::ExitStatusExt;
            if stderr_tail.contains("password authentication failed") || stderr_tail.contains("no password supplied") {
                format!("{tool} could not sign in to the database: check the password in DATABASE_URL.")
            } else if let Some(signal) = status.signal() {
                format!("{tool} was stopped by signal {signal} before it finished; nothing was kept. Try again.")
            } else if stderr_tail.contains("could not connect") || stderr_tail.contains("Connection refused") {
                format!("{tool} could not connect to the database server. Check that PostgreSQL is running.")
            } else if stderr_tail.contains("could not open input file") {
                format!("{tool} could not open the backup file: it disappeared (was the backup directory removed or unmounted?); nothing was kept.")
            } else if ["server closed the connection", "terminating connection", "connection to server was lost", "could not receive data from server"]
                .iter()
                .any(|sign| stderr_tail.contains(sign))
            {
                format!("{tool} lost its connection to the database server (PostgreSQL stopped or restarted); nothing was changed. Check that PostgreSQL is running, then try again.")
            } else {
                format!("{tool} failed ({status}). Nothing was kept; the server log has the details.")
            }
        }
        Error::Io(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
            "The backup directory ran out of space while writing; nothing was kept. Free some space and try again."
                .into()
        }
        Error::Io(e) if matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)) => {
            "The backup directory is not writable; nothing was kept. Check BACKUP_DIR's permissions.".into()
        }
        Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "The backup directory disappeared while writing; nothing was kept. Check BACKUP_DIR.".into()
        }
        Error::Database(_) => "The database could not be read. Check that PostgreSQL is running; the server log has the details.".into(),
        Error::Invalid(m) | Error::Tool(m) | Error::Cancelled(m) | Error::Config(m) | Error::Conflict(m) | Error::TooLarge(m) | Error::TimedOut(m) => m.clone(),
        other => format!("The operation failed ({other}); the server log has the details."),
    }
}

fn log_failure(result: Result<()>) {
    if let Err(e) = result {
        tracing::error!(error = ?e, "could not record job state");
    }
}

pub(crate) fn human(bytes: u64) -> String {
    let mb = bytes as f64 / (1024.0 * 1024.0);
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else {
        format!("{mb:.1} MB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cleaned_and_limited() {
        assert_eq!(clean_notes(None, 10).unwrap(), None);
        assert_eq!(clean_notes(Some("  "), 10).unwrap(), None);
        assert_eq!(
            clean_notes(Some(" before upgrade "), 20)
                .unwrap()
                .as_deref(),
            Some("before upgrade")
        );
        assert!(clean_notes(Some(&"x".repeat(11)), 10).is_err());
        assert!(clean_notes(Some("bell\u{7}"), 10).is_err());
        assert_eq!(
            clean_notes(Some("<script>'x'</script>"), 100)
                .unwrap()
                .as_deref(),
            Some("<script>'x'</script>")
        );
    }

    #[test]
    fn failure_messages_hide_internals() {
        let err = Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(failure_message(&err).contains("ran out of space"));
        use std::os::unix::process::ExitStatusExt;
        let killed = Error::ToolFailed {
            tool: "pg_dump",
            status: std::process::ExitStatus::from_raw(9),
            stderr_tail: "x".into(),
        };
        assert!(failure_message(&killed).contains("signal 9"));
        let auth = Error::ToolFailed {
            tool: "pg_dump",
            status: std::process::ExitStatus::from_raw(256),
            stderr_tail: "FATAL:  password authentication failed for user \"lms\"".into(),
        };
        assert!(failure_message(&auth).contains("DATABASE_URL"));
    }
}
