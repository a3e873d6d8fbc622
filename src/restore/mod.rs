//! Restoring a backup without ever leaving the site half-restored.
//! [`Engine::start_restore`] and [`Engine::start_undo`] begin
//! the jobs; the rooms beside this file hold the steps:
//!
//! - `gates`: before anything changes: completed backup, file present and
//!   matching its checksum, archive readable by our pg_restore, a role that
//!   may create databases and owns the LMS database, the restore role set
//!   up, every role the archive grants to present, the live database's
//!   properties carriable, room for the copy;
//! - `role`: the restore role every archive is restored, read and migrated
//!   as, which can change nothing but the copy;
//! - `pipeline`: restore into a fresh copy `<db>_restore_<job>` while the
//!   live database keeps serving (its growth watched), prove the copy equals
//!   the backup (fingerprint), bring its schema up to date (migrations), take
//!   it over from the restore role;
//! - `carry`: the live database's own ACL, settings, connection limit and
//!   comment, given to the copy before the switch;
//! - `switch`: maintenance on, block and end connections to the live
//!   database, rename live → `<db>_pre_restore_<ts>` and copy → `<db>` in
//!   one transaction, maintenance off; every session ends; the previous
//!   database stays for undo;
//! - `copies`: the copies and previous databases beside the live one;
//! - `prepared`: Preview changes: a copy built like a restore's, kept for
//!   review, compared with the live database, switched in or discarded;
//! - `admins`: before any of it, who could sign in afterwards (the
//!   administrators the backup holds, and who would be locked out).
//!
//! Any failure before the switch drops the copy; the live database is never
//! touched until its rename.

mod admins;
mod carry;
mod copies;
pub mod drill;
mod gates;
mod pipeline;
pub mod prepared;
mod role;
mod switch;

use std::time::Duration;

use crate::audit::Actor;
use crate::catalog;
use crate::engine::Engine;
use crate::jobs::messages::failure_message;
use crate::jobs::run::{Ending, JobRun};
use crate::jobs::Job;
use crate::{settings, Error, Result};
use lms_types::{AuditAction, BackupStatus, Operation, Phase};

pub use admins::AdminsAfterRestore;

/// What a restore or undo did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapReport {
    /// The name the replaced database now has (kept for undo).
    pub previous: String,
    /// How long maintenance mode was on.
    pub maintenance_window: Duration,
}

impl Engine {
    /// Starts restoring backup `backup_id` over the LMS database; returns the
    /// job at once. `confirmed` must be true: it replaces all current data.
    pub async fn start_restore(
        &self,
        backup_id: i64,
        confirmed: bool,
        actor: &Actor,
    ) -> Result<Job> {
        if !confirmed {
            return Err(Error::Invalid(
                "Confirm the restore: it replaces all current data.".into(),
            ));
        }
        let backup = catalog::get_row(&self.dbs().control, backup_id).await?;
        self.require_restorable(&backup, "restored")?;
        let job = self
            .begin_job_on(Operation::Restore, backup.id, actor)
            .await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let run = JobRun::start(&engine, job_for_task, &actor);
            let result = run.guard(engine.restore_pipeline(&run, &backup)).await;
            engine
                .end_swap_job(run, result, Some(&backup.filename))
                .await;
        });
        Ok(job)
    }

    /// A restore or drill reads a completed backup, or one whose file is
    /// gone here but whose off-site copy is verified (fetched back by the
    /// job, see `ensure_local`). `done` says what is refused ("restored").
    pub(crate) fn require_restorable(&self, backup: &catalog::Backup, done: &str) -> Result<()> {
        let from_offsite = backup.status == BackupStatus::Missing
            && self.offsite().is_some()
            && backup.offsite_state == Some(lms_types::OffsiteState::Verified);
        if backup.status != BackupStatus::Completed && !from_offsite {
            return Err(Error::Invalid(format!(
                "Only completed backups can be {done}; {} is {}.",
                backup.filename, backup.status
            )));
        }
        Ok(())
    }

    /// Starts swapping the most recent previous database back in (the undo
    /// of the last restore, itself undoable). `confirmed` must be true: what
    /// was written since the restore is set aside with the current database.
    pub async fn start_undo(&self, confirmed: bool, actor: &Actor) -> Result<Job> {
        if !confirmed {
            return Err(Error::Invalid(
                "Confirm the undo: it sets aside everything written since the restore.".into(),
            ));
        }
        let previous = self
            .previous_databases()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Invalid("There is no previous database to go back to.".into()))?;
        // The backup whose restore this undoes: named on the job, so the
        // running panel and the audit log can say which.
        let undone = self.last_restored_backup().await?;
        let mut pending = self.begin_job(Operation::Undo, actor).await?;
        if let Some((id, _)) = &undone {
            pending.link_backup(*id).await?;
        }
        let job = pending.commit().await?;
        let undone_name = undone.map(|(_, name)| name);
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let run = JobRun::start(&engine, job_for_task, &actor);
            let result = run
                .guard(async {
                    run.enter(Phase::Switching).await?;
                    engine.swap_in(&previous, run.job().id).await
                })
                .await;
            engine
                .end_swap_job(run, result, undone_name.as_deref())
                .await;
        });
        Ok(job)
    }

    /// Ends a restore or undo: maintenance off and the copy dropped
    /// whatever happened, everyone signed out after a switch, then the job
    /// ends (audited, lock released) and older previous databases are
    /// dropped. `backup` is the name of the backup restored (or whose
    /// restore is undone), as the audit log records it.
    async fn end_swap_job(&self, run: JobRun, result: Result<SwapReport>, backup: Option<&str>) {
        let control = &self.dbs().control;
        // Whatever happened, nobody stays locked out.
        if let Err(e) = settings::maintenance_off(control).await {
            tracing::error!(error = ?e, "could not turn maintenance mode off");
        }
        let job = run.job().clone();
        self.drop_shadows(Some(job.id)).await;
        if let Err(e) = self.close_restore_role().await {
            tracing::error!(error = ?e, "could not close the restore role");
        }
        let message = match &result {
            Ok(report) => {
                if let Err(e) = self.end_all_sessions().await {
                    tracing::error!(error = ?e, "could not end the sessions");
                }
                format!(
                    "Done. The site was in maintenance for {:.3} s; the replaced database is kept as {} for undo.",
                    report.maintenance_window.as_secs_f64(),
                    report.previous
                )
            }
            Err(e) => {
                tracing::error!(error = ?e, kind = %job.kind, "restore job failed");
                failure_message(e)
            }
        };
        let action = match job.kind {
            Operation::Undo => AuditAction::RestoreUndo,
            _ => AuditAction::Restore,
        };
        run.finish(Ending::of(&result, Some(&message), action, backup))
            .await;
        if result.is_ok() {
            // Housekeeping once the job has ended: dropping a large database
            // takes time nobody needs to wait for. Only databases beyond the
            // newest RESTORE_KEEP_PREVIOUS go, so an operation starting
            // meanwhile (an undo takes the newest) is never in its way.
            if let Err(e) = self.trim_previous_databases().await {
                tracing::error!(error = ?e, "could not drop old previous databases");
            }
        }
    }

    /// The backup the live database was last restored from: the backup of
    /// the newest restore or undo that switched databases (an undo names
    /// the backup whose restore it undid). `None` when unknown (deleted
    /// since, or no restore yet).
    pub async fn last_restored_backup(&self) -> Result<Option<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT b.id, b.filename FROM jobs j JOIN backup_history b ON b.id = j.backup_id
             WHERE j.kind = ANY($1) AND j.status = $2
             ORDER BY j.finished_at DESC NULLS LAST, j.created_at DESC LIMIT 1",
        )
        .bind([Operation::Restore, Operation::Undo])
        .bind(lms_types::JobStatus::Succeeded)
        .fetch_optional(&self.dbs().control)
        .await?)
    }

    /// Everyone signs in again after a restore (the users table changed).
    pub(crate) async fn end_all_sessions(&self) -> Result<()> {
        match self.config().sign_out_everyone {
            Some(sign_out) => sign_out(&self.dbs().control).await,
            None => Ok(()),
        }
    }
}
