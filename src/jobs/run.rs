//! The life of a job, written once: `Engine::begin_job` takes the
//! operation lock and creates the job row in one transaction (nothing is
//! left behind when the lock is busy); [`JobRun`] keeps the lease alive,
//! walks the operation's phase table ([`lms_types::phases`]) as it reports
//! progress, and ends the job in one transaction: outcome, message, lock
//! released, the audit entry and the notification it is, together.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lms_types::{AuditAction, AuditOutcome, JobStatus, Operation, Phase, PhaseSpec};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::lease::Lease;
use super::lock::{self, LockRequest};
use super::{messages, Job};
use crate::audit::{self, Actor, Event};
use crate::engine::Engine;
use crate::{Error, Result};

/// A job whose lock is taken and whose row is written, in a transaction
/// not yet committed: the caller may add what must appear together with it
/// (a backup's catalog entry), then [`commit`](Self::commit)s.
pub struct PendingJob {
    tx: Transaction<'static, Postgres>,
    job: Job,
}

impl PendingJob {
    pub fn id(&self) -> Uuid {
        self.job.id
    }

    /// The transaction the job and its lock are being created in.
    pub fn tx(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Links the job to the backup it works on.
    pub async fn link_backup(&mut self, backup_id: i64) -> Result<()> {
        self.job.backup_name = super::set_backup(&mut *self.tx, self.job.id, backup_id).await?;
        self.job.backup_id = Some(backup_id);
        Ok(())
    }

    /// Links the job to backup `backup_id` if the catalog still lists it
    /// (a job on what a deleted backup left, such as a prepared copy or a
    /// recovery, still runs; its records name the backup).
    pub async fn link_backup_if_listed(&mut self, backup_id: i64) -> Result<()> {
        if crate::catalog::get_row(&mut *self.tx, backup_id)
            .await
            .is_ok()
        {
            self.link_backup(backup_id).await?;
        }
        Ok(())
    }

    /// Makes the job, its lock and whatever was added visible at once
    /// (with the notification a restore or undo's start is).
    pub async fn commit(mut self) -> Result<Job> {
        if let Some((kind, notice)) = crate::notify::outcomes::job_started(&self.job) {
            crate::notify::record(&mut self.tx, kind, &notice, None).await?;
        }
        self.tx.commit().await?;
        Ok(self.job)
    }
}

impl Engine {
    /// Takes the operation lock for `operation` and creates its running
    /// job. Fails with [`Error::Busy`] (naming the holder) and leaves
    /// nothing behind when another operation runs, and with
    /// [`Error::StorageUnavailable`] when the operation needs the backup
    /// directory and it cannot be used.
    pub(crate) async fn begin_job(
        &self,
        operation: Operation,
        actor: &Actor,
    ) -> Result<PendingJob> {
        self.require_backup_dir_for(operation).await?;
        let mut tx = lock::begin(&self.dbs().control).await?;
        let id = Uuid::new_v4();
        let job = super::insert_running(&mut *tx, id, operation, actor, self.instance_id()).await?;
        lock::acquire_in(
            &mut tx,
            &LockRequest {
                instance_id: self.instance_id(),
                job_id: Some(id),
                operation,
                actor,
                lease_timeout: self.config().lease_timeout,
            },
        )
        .await?;
        Ok(PendingJob { tx, job })
    }

    /// Takes the operation lock for `operation` and creates its running
    /// job, linked to backup `backup_id`, visible at once.
    pub(crate) async fn begin_job_on(
        &self,
        operation: Operation,
        backup_id: i64,
        actor: &Actor,
    ) -> Result<Job> {
        let mut pending = self.begin_job(operation, actor).await?;
        pending.link_backup(backup_id).await?;
        pending.commit().await
    }

    /// Runs a short operation (delete) as a job from start to end, audited.
    pub(crate) async fn run_short_job<T>(
        &self,
        operation: Operation,
        actor: &Actor,
        audit: (AuditAction, &str),
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let (action, target) = audit;
        let job = match self.begin_job(operation, actor).await {
            Ok(pending) => pending.commit().await?,
            Err(refused) => {
                // Nothing ran, but the attempt is on record.
                let detail = refused.to_string();
                audit::record_or_log(
                    &self.dbs().control,
                    Event {
                        actor,
                        action,
                        target: Some(target),
                        outcome: AuditOutcome::Failure,
                        detail: Some(&detail),
                    },
                )
                .await;
                return Err(refused);
            }
        };
        let run = JobRun::start(self, job, actor);
        let result = run.guard(async {
            if let Some(first) = run.phases().get(1) {
                run.enter(first.phase).await?;
            }
            work.await
        });
        let result = result.await;
        let message = result.as_ref().err().map(messages::failure_message);
        run.finish(Ending::of(
            &result,
            message.as_deref(),
            action,
            Some(target),
        ))
        .await;
        result
    }
}

/// How a job ended, with what the audit log records of it.
pub struct Ending<'a> {
    pub status: JobStatus,
    /// The job's message (why it failed, or what it did); also the audit
    /// entry's detail.
    pub message: Option<&'a str>,
    pub action: AuditAction,
    pub target: Option<&'a str>,
}

impl<'a> Ending<'a> {
    /// Succeeded or failed, as `result` says.
    pub fn of<T>(
        result: &Result<T>,
        message: Option<&'a str>,
        action: AuditAction,
        target: Option<&'a str>,
    ) -> Self {
        Self {
            status: if result.is_ok() {
                JobStatus::Succeeded
            } else {
                JobStatus::Failed
            },
            message,
            action,
            target,
        }
    }
}

/// A running job: its lease, its phase table, and the one way it ends.
pub struct JobRun {
    engine: Engine,
    job: Job,
    /// Who started it (with the address they came from, for the audit).
    actor: Actor,
    lease: Lease,
    phases: &'static [PhaseSpec],
    /// The phase being run and when it began (for the log's timings).
    current: Mutex<(Phase, Instant)>,
}

impl JobRun {
    /// Starts renewing the lease of a job `Engine::begin_job` created.
    pub fn start(engine: &Engine, job: Job, actor: &Actor) -> Self {
        Self {
            actor: actor.clone(),
            lease: Lease::start(engine.clone(), Some(job.id)),
            phases: match job.kind {
                Operation::Backup if engine.offsite().is_some() => {
                    lms_types::phases::BACKUP_OFFSITE
                }
                kind => lms_types::phases::of(kind),
            },
            current: Mutex::new((Phase::Starting, Instant::now())),
            engine: engine.clone(),
            job,
        }
    }

    pub fn job(&self) -> &Job {
        &self.job
    }

    pub fn phases(&self) -> &'static [PhaseSpec] {
        self.phases
    }

    /// Runs `work` unless the lease is lost first (taken over after a
    /// stall, or force-released): then the job stops, saying so.
    pub async fn guard<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            result = work => result,
            () = self.lease.lost() => Err(Error::Cancelled(format!(
                "The {} was stopped: its operation lock was released or taken over.",
                self.job.kind
            ))),
        }
    }

    /// Moves the job into `phase`: its progress becomes the start of the
    /// phase's range in the table. Returns that table entry.
    pub async fn enter(&self, phase: Phase) -> Result<&'static PhaseSpec> {
        let spec = self.spec(phase);
        self.log_phase_change(phase);
        super::progress(&self.engine.dbs().control, self.job.id, phase, spec.start).await?;
        Ok(spec)
    }

    /// Enters `phase` and runs `work` in it, writing `fraction()` (how much
    /// of the phase is done, 0..=1) into the job twice a second.
    pub async fn run_phase<T>(
        &self,
        phase: Phase,
        fraction: impl Fn() -> f64,
        work: impl Future<Output = T>,
    ) -> Result<T> {
        let spec = self.enter(phase).await?;
        let control = &self.engine.dbs().control;
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last = spec.start;
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = tick.tick() => {
                    let now = spec.at(fraction());
                    if now > last {
                        last = now;
                        if let Err(e) = super::progress(control, self.job.id, phase, now).await {
                            tracing::warn!(error = ?e, "could not record the job's progress");
                        }
                    }
                }
            }
        }
    }

    /// Tells the administrator something about the job that is not a
    /// failure (a check it could not make, a choice it made): kept with
    /// the job, shown while it runs and with its outcome, and logged.
    pub async fn note(&self, note: &str) {
        tracing::info!(job = %self.job.id, note, "job note");
        if let Err(e) = super::note(&self.engine.dbs().control, self.job.id, note).await {
            tracing::warn!(error = %e, "could not record the job's note");
        }
    }

    fn spec(&self, phase: Phase) -> &'static PhaseSpec {
        self.phases
            .iter()
            .find(|s| s.phase == phase)
            .unwrap_or_else(|| panic!("{phase} is not a phase of a {}", self.job.kind))
    }

    /// Logs how long the phase that just ended took (where the time of a
    /// slow job went, for whoever reads the log).
    fn log_phase_change(&self, next: Phase) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let (phase, since) = *current;
        if phase == next {
            return;
        }
        tracing::info!(job = %self.job.id, %phase, ms = since.elapsed().as_millis() as u64, "phase done");
        *current = (next, Instant::now());
    }

    /// Ends the job: outcome and message, the lock released (if still
    /// ours) and the audit entry, in one transaction, then stops the
    /// heartbeat. If the control database is away (PostgreSQL restarting),
    /// keeps trying for twice the lease timeout, so the outcome is recorded
    /// and the lock freed as soon as it is back; after that the lease
    /// simply expires.
    pub async fn finish(self, ending: Ending<'_>) {
        self.log_phase_change(Phase::Done);
        let engine = &self.engine;
        let event = Event {
            actor: &self.actor,
            action: ending.action,
            target: ending.target,
            outcome: if ending.status == JobStatus::Succeeded {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            },
            detail: ending.message,
        };
        // The job as it ends (its notes and backup as they are now).
        let job = super::get(&engine.dbs().control, self.job.id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| self.job.clone());
        let notice = crate::notify::outcomes::job_ended(&job, ending.status, ending.message);
        let deadline = Instant::now() + engine.config().lease_timeout * 2;
        let mut pause = Duration::from_millis(250);
        loop {
            let result = async {
                let mut tx = engine.dbs().control.begin().await?;
                let ended =
                    super::finish(&mut *tx, self.job.id, ending.status, ending.message).await?;
                lock::release(&mut *tx, engine.instance_id(), Some(self.job.id)).await?;
                audit::record(&mut *tx, &event).await?;
                // A job ended elsewhere (interrupted) was told about there.
                if let (true, Some((kind, notice))) = (ended, &notice) {
                    crate::notify::record(&mut tx, *kind, notice, None).await?;
                }
                tx.commit().await?;
                Ok::<_, Error>(())
            }
            .await;
            match result {
                Ok(()) => break,
                Err(err) if Instant::now() < deadline => {
                    tracing::warn!(error = %err, "could not end the job yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(err) => {
                    tracing::error!(error = %err, "could not end the job and release the lock; the lease will expire");
                    break;
                }
            }
        }
        self.lease.stop();
        if notice.is_some() {
            engine.wake_notifier();
        }
    }
}
