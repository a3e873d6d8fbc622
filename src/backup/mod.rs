//! Creating backups: [`Engine::start_backup`] checks the request, takes the
//! operation lock and creates the job and the catalog entry together, then
//! `pipeline` runs the job's phases:
//!
//! 1. gates: tools not older than the server, free space for the database;
//! 2. one REPEATABLE READ transaction exports a snapshot; the fingerprint is
//!    computed in it while `pg_dump --snapshot` dumps it, so the fingerprint
//!    describes exactly the dumped data;
//! 3. pg_dump's output streams to `<name>.partial`, hashed on the way, and
//!    in the same pass into a pg_restore that reads every byte of it;
//! 4. the archive is listed (every table in it), fsynced, renamed, and the
//!    directory fsynced;
//! 5. the manifest is written (sidecar, then catalog row): only now is the
//!    backup `completed`;
//! 6. on any failure the job fails with a message a person can act on, and
//!    nothing half-written is left.
//!
//! Beside it: `upload` (archives made elsewhere), delete, retention and
//! download (`housekeeping`), whether the backup directory can be used at
//! all (`availability`), and the catalog held against its files
//! (`file_check`).

mod availability;
mod file_check;
mod housekeeping;
mod pipeline;
mod upload;

pub use availability::DirUnavailable;
pub(crate) use availability::DirWatch;
pub use file_check::FileCheck;
pub use housekeeping::Download;

use chrono::Utc;
use lms_types::{BackupKind, JobStatus, Operation};
use sqlx::PgConnection;

use crate::audit::Actor;
use crate::catalog::{self, Backup, NewEntry};
use crate::engine::Engine;
use crate::jobs::Job;
use crate::storage;
use crate::{Error, Result};

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

/// The scheduled run a backup is started for (see `schedule::runner`).
#[derive(Debug, Clone, Copy)]
pub struct ScheduledStart {
    pub run_id: i64,
    pub schedule_id: i64,
}

impl Engine {
    /// Starts a backup job and returns at once. Fails with [`Error::Busy`]
    /// while another operation runs, [`Error::RateLimited`] when the user
    /// started too many manual backups, [`Error::Invalid`] for bad notes.
    pub async fn start_backup(&self, request: BackupRequest<'_>) -> Result<StartedBackup> {
        self.start_backup_as(request, None).await
    }

    /// [`start_backup`](Self::start_backup), for a scheduled run when
    /// `scheduled` names one: the run is marked started in the transaction
    /// that takes the lock, or nothing happens ([`Error::Conflict`]) when it
    /// was started already.
    #[tracing::instrument(skip(self, request), fields(actor = %request.actor.name))]
    pub(crate) async fn start_backup_as(
        &self,
        request: BackupRequest<'_>,
        scheduled: Option<ScheduledStart>,
    ) -> Result<StartedBackup> {
        let notes = clean_notes(request.notes, self.config().max_notes_len)?;
        if request.kind == BackupKind::Manual {
            self.check_backup_rate(request.actor).await?;
        }
        let mut pending = self.begin_job(Operation::Backup, request.actor).await?;
        let filename = self.new_archive_name(pending.tx(), "backup").await?;
        let job_id = pending.id();
        let backup = catalog::insert_running(
            pending.tx(),
            NewEntry {
                filename: &filename,
                kind: request.kind,
                notes: notes.as_deref(),
                actor: request.actor,
                job_id,
            },
        )
        .await?;
        pending.link_backup(backup.id).await?;
        if let Some(run) = scheduled {
            claim_scheduled_run(pending.tx(), run, job_id, backup.id).await?;
        }
        let job = pending.commit().await?;
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

    /// Refuses a manual backup past the per-user hourly limit. The message
    /// gives no clock time (the engine does not know the reader's zone):
    /// `retry_at` carries the moment for whoever shows it.
    async fn check_backup_rate(&self, actor: &Actor) -> Result<()> {
        let Some(retry_at) = self.next_manual_backup_at(actor).await? else {
            return Ok(());
        };
        let limit = self.config().backup_rate_limit;
        let minutes = ((retry_at - Utc::now()).num_seconds().max(0) + 59) / 60;
        Err(Error::RateLimited {
            message: format!(
                "You can start {limit} manual backup{} per hour. The next one is possible in {} minute{}.",
                if limit == 1 { "" } else { "s" },
                minutes.max(1),
                if minutes > 1 { "s" } else { "" },
            ),
            retry_at,
        })
    }

    /// When `actor` may start their next manual backup, if not now: they
    /// started the hourly limit's worth in the last hour.
    pub async fn next_manual_backup_at(
        &self,
        actor: &Actor,
    ) -> Result<Option<chrono::DateTime<Utc>>> {
        let limit = self.config().backup_rate_limit;
        // Administrators are counted by account, API tokens by name; the
        // command line on the host itself is not limited.
        let is_token = actor.name.starts_with(crate::tokens::ACTOR_PREFIX);
        if limit == 0 || (actor.id.is_none() && !is_token) {
            return Ok(None);
        }
        let (count, oldest): (i64, Option<chrono::DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(j.created_at) FROM jobs j JOIN backup_history b ON b.job_id = j.id
             WHERE j.kind = $2 AND b.kind = $3
               AND (j.started_by_id = $1 OR ($1 IS NULL AND j.started_by_name = $5))
               AND j.created_at > now() - interval '1 hour' AND j.status = ANY($4)",
        )
        .bind(actor.id)
        .bind(Operation::Backup)
        .bind(BackupKind::Manual)
        .bind([JobStatus::Running, JobStatus::Succeeded])
        .bind(&actor.name)
        .fetch_one(&self.dbs().control)
        .await?;
        if count < i64::from(limit) {
            return Ok(None);
        }
        Ok(Some(
            oldest.unwrap_or_else(Utc::now) + chrono::Duration::hours(1),
        ))
    }

    /// A file name free both in the catalog and on disk.
    pub(crate) async fn new_archive_name(
        &self,
        tx: &mut PgConnection,
        prefix: &str,
    ) -> Result<String> {
        let dir = self.backup_dir();
        let mut taken: Vec<String> = Vec::new();
        loop {
            let name = storage::archive_name(prefix, Utc::now(), |n| taken.iter().any(|t| t == n));
            if dir.name_is_free(&name).await? && !catalog::name_taken(&mut *tx, &name).await? {
                return Ok(name);
            }
            taken.push(name);
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

/// Marks a waiting scheduled run started by `job` and ties the backup to
/// its schedule; [`Error::Conflict`] (and so a rolled-back job) when the
/// run is no longer waiting.
async fn claim_scheduled_run(
    tx: &mut PgConnection,
    run: ScheduledStart,
    job: uuid::Uuid,
    backup_id: i64,
) -> Result<()> {
    let claimed = sqlx::query(
        "UPDATE schedule_runs SET state = 'started', job_id = $2, started_at = now()
         WHERE id = $1 AND state = 'waiting'",
    )
    .bind(run.run_id)
    .bind(job)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Err(Error::Conflict(
            "this scheduled backup has started already".into(),
        ));
    }
    sqlx::query("UPDATE backup_history SET schedule_id = $2 WHERE id = $1")
        .bind(backup_id)
        .bind(run.schedule_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
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
}
