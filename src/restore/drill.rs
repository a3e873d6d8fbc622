//! Restore drills: proof, by restoring, that a backup brings the LMS back.
//! A drill restores a backup (the newest verified one unless told which)
//! into a scratch database `<db>_drill_<job>` exactly as a restore's copy
//! is built and checked (fingerprints against the manifest, the app's
//! migrations), runs the LMS smoke queries, records how long it all took
//! (the measured recovery time), and drops the scratch database. The live
//! database is never touched and the site never goes into maintenance.

use std::time::Instant;

use chrono::{DateTime, Utc};
use lms_types::{AuditAction, BackupStatus, Operation};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::Actor;
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs::messages::failure_message;
use crate::jobs::run::{Ending, JobRun};
use crate::jobs::Job;
use crate::{Error, Result};

/// What the LMS smoke queries found in the scratch database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smoke {
    pub users: i64,
    pub courses: i64,
    pub enrollments: i64,
    /// The newest activity event: how old the backup's data is.
    pub newest_activity_at: Option<DateTime<Utc>>,
}

/// One drill's outcome, as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Drill {
    pub job_id: Uuid,
    pub backup_id: i64,
    pub backup_name: String,
    pub succeeded: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The measured recovery time, in milliseconds.
    pub duration_ms: i64,
    pub smoke: Option<sqlx::types::Json<Smoke>>,
    pub error: Option<String>,
}

/// The LMS's own questions of a restored database: who and what is there,
/// and how recent its newest activity is.
pub(super) async fn smoke_queries(pool: &PgPool) -> Result<Smoke> {
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM public.{table}"))
            .fetch_one(pool)
            .await
            .map_err(|e| {
                Error::Invalid(format!(
                    "The restored database does not answer the LMS's questions: counting {table} \
                     failed ({e})."
                ))
            })
    };
    let newest = async {
        sqlx::query_scalar("SELECT max(occurred_at) FROM public.activity_events")
            .fetch_one(pool)
            .await
            .map_err(|e| {
                Error::Invalid(format!(
                    "The restored database does not answer the LMS's questions: its newest \
                     activity could not be read ({e})."
                ))
            })
    };
    // Asked at once, each on its own connection of the pool.
    let (users, courses, enrollments, newest_activity_at) = tokio::try_join!(
        count("users"),
        count("courses"),
        count("enrollments"),
        newest
    )?;
    Ok(Smoke {
        users,
        courses,
        enrollments,
        newest_activity_at,
    })
}

/// The name scheduled drills are started under.
pub const DRILL_ACTOR: &str = "drill schedule";

/// How often an instance looks whether a drill is due.
const DRILL_CHECK: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Runs the drill schedule of this instance until the process ends: a drill
/// of the newest verified backup once the newest drill is older than
/// `DRILL_INTERVAL_HOURS`. Instances race for the operation lock; the one
/// that gets it drills, the others find the drill fresh.
pub fn spawn_drill_schedule(engine: Engine) -> Option<tokio::task::JoinHandle<()>> {
    engine.config().drill_interval?;
    Some(tokio::spawn(async move {
        loop {
            // Not at once: a server just started has other things to do first.
            tokio::time::sleep(DRILL_CHECK).await;
            match engine.drill_if_due(Utc::now()).await {
                Ok(Some(job)) => tracing::info!(job = %job.id, "started a scheduled restore drill"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not start a scheduled restore drill"),
            }
        }
    }))
}

impl Engine {
    /// Starts a drill of the newest verified backup when the newest drill
    /// is older than the interval (or there is none) and nothing else runs.
    pub async fn drill_if_due(&self, now: DateTime<Utc>) -> Result<Option<Job>> {
        let Some(interval) = self.config().drill_interval else {
            return Ok(None);
        };
        let interval = chrono::Duration::from_std(interval).unwrap_or(chrono::TimeDelta::MAX);
        if let Some(newest) = self.newest_drill().await? {
            if now - newest.finished_at < interval {
                return Ok(None);
            }
        }
        let any: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM backup_history WHERE status = $1)")
                .bind(BackupStatus::Completed)
                .fetch_one(&self.dbs().control)
                .await?;
        if !any || self.lock_status().await?.is_some() {
            return Ok(None);
        }
        match self.start_drill(None, &Actor::system(DRILL_ACTOR)).await {
            Ok(job) => Ok(Some(job)),
            // Another instance (or operation) got there first.
            Err(Error::Busy(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts a restore drill of `backup_id`, or of the newest verified
    /// backup; returns the job at once.
    pub async fn start_drill(&self, backup_id: Option<i64>, actor: &Actor) -> Result<Job> {
        let control = &self.dbs().control;
        let backup = match backup_id {
            Some(id) => catalog::get_row(control, id).await?,
            None => {
                let newest: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM backup_history WHERE status = $1
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                )
                .bind(BackupStatus::Completed)
                .fetch_optional(control)
                .await?;
                let id = newest.ok_or_else(|| {
                    Error::Invalid(
                        "There is no verified backup to drill yet: make one first.".into(),
                    )
                })?;
                catalog::get_row(control, id).await?
            }
        };
        self.require_restorable(&backup, "drilled")?;
        let job = self
            .begin_job_on(Operation::Drill, backup.id, actor)
            .await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let run = JobRun::start(&engine, job_for_task, &actor);
            let started_at = Utc::now();
            let since = Instant::now();
            let result = run.guard(engine.drill_pipeline(&run, &backup)).await;
            let took = since.elapsed();
            engine
                .end_drill(run, &backup, started_at, took, result)
                .await;
        });
        Ok(job)
    }

    /// Ends a drill: the scratch database dropped whatever happened, the
    /// outcome recorded with the backup, then the job ends (a failure
    /// notifies).
    async fn end_drill(
        &self,
        run: JobRun,
        backup: &Backup,
        started_at: DateTime<Utc>,
        took: std::time::Duration,
        result: Result<Smoke>,
    ) {
        let job = run.job().clone();
        let dropping = Instant::now();
        self.drop_shadows(Some(job.id)).await;
        tracing::info!(
            ms = dropping.elapsed().as_millis() as u64,
            "drill's scratch database dropped"
        );
        // The off-site copy it may have fetched.
        let scratch = self
            .backup_dir()
            .partial_path(&crate::offsite::drill_file(&backup.filename, job.id));
        if let Err(e) = self.backup_dir().remove(vec![scratch]).await {
            tracing::error!(error = %e, "could not remove a drill's scratch file");
        }
        if let Err(e) = self.close_restore_role().await {
            tracing::error!(error = ?e, "could not close the restore role");
        }
        let message = match &result {
            Ok(smoke) => format!(
                "Restore-tested in {:.1} s: the copy matched the backup, migrated, and holds {} \
                 users, {} courses and {} enrollments{}. The scratch database was dropped.",
                took.as_secs_f64(),
                smoke.users,
                smoke.courses,
                smoke.enrollments,
                smoke
                    .newest_activity_at
                    .map(|t| format!(
                        "; its newest activity is from {}",
                        t.format("%Y-%m-%d %H:%M UTC")
                    ))
                    .unwrap_or_default()
            ),
            Err(e) => {
                tracing::error!(error = ?e, backup = %backup.filename, "restore drill failed");
                failure_message(e)
            }
        };
        let recorded = sqlx::query(
            "INSERT INTO restore_drills
                (job_id, backup_id, backup_name, succeeded, started_at, duration_ms, smoke, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(job.id)
        .bind(backup.id)
        .bind(&backup.filename)
        .bind(result.is_ok())
        .bind(started_at)
        .bind(took.as_millis() as i64)
        .bind(result.as_ref().ok().map(sqlx::types::Json))
        .bind(result.as_ref().err().map(|_| message.as_str()))
        .execute(&self.dbs().control)
        .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record the drill's outcome");
        }
        tracing::info!(backup = %backup.filename, ok = result.is_ok(), ms = took.as_millis() as u64, "restore drill ended");
        run.finish(Ending::of(
            &result,
            Some(&message),
            AuditAction::RestoreDrill,
            Some(&backup.filename),
        ))
        .await;
    }

    /// The newest drill of each backup that has one.
    pub async fn latest_drills(&self) -> Result<Vec<Drill>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT ON (backup_id) job_id, backup_id, backup_name, succeeded, started_at,
                    finished_at, duration_ms, smoke, error
             FROM restore_drills ORDER BY backup_id, finished_at DESC",
        )
        .fetch_all(&self.dbs().control)
        .await?)
    }

    /// The newest drill of any backup.
    pub async fn newest_drill(&self) -> Result<Option<Drill>> {
        Ok(sqlx::query_as(
            "SELECT job_id, backup_id, backup_name, succeeded, started_at, finished_at,
                    duration_ms, smoke, error
             FROM restore_drills ORDER BY finished_at DESC LIMIT 1",
        )
        .fetch_optional(&self.dbs().control)
        .await?)
    }
}
