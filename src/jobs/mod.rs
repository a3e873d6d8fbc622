//! Jobs: every long operation is a row the UI and API can follow, with a
//! status, a phase, real progress and, on failure, a message a person can
//! act on.
//!
//! - this file: the `jobs` rows;
//! - [`run`]: the one way a job begins (lock + row + lease) and ends
//!   (outcome, message, lock released, audit: one transaction), and how its
//!   phases and progress are reported;
//! - [`lock`] and [`lease`]: one operation at a time across instances;
//! - [`messages`]: what a person reads when a job fails.

pub(crate) mod instance;
pub mod lease;
pub mod lock;
pub mod messages;
pub mod run;

use chrono::{DateTime, Utc};
use lms_types::{JobStatus, Operation, Phase};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::audit::Actor;
use crate::Result;

pub use run::{JobRun, PendingJob};

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub kind: Operation,
    pub status: JobStatus,
    pub phase: Phase,
    pub progress: f64,
    pub message: Option<String>,
    /// What the job wants the administrator to know although it did not
    /// fail (a check it could not make, a choice it made), oldest first.
    pub notes: Vec<String>,
    pub started_by_id: Option<i64>,
    pub started_by_name: String,
    pub instance_id: String,
    pub backup_id: Option<i64>,
    /// The file name of the backup it works on (for an undo, the backup
    /// whose restore it undoes), while the catalog has it.
    pub backup_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// A restore or undo that got as far as its switch.
    pub fn was_switching(&self) -> bool {
        matches!(self.kind, Operation::Restore | Operation::Undo) && self.phase == Phase::Switching
    }
}

pub(crate) const JOB_COLUMNS: &str =
    "id, kind, status, phase, progress, message, notes, started_by_id, started_by_name,
    instance_id, backup_id, created_at, started_at, finished_at,
    (SELECT b.filename FROM backup_history b WHERE b.id = jobs.backup_id) AS backup_name";

/// Inserts a running job (the caller already holds the lock).
pub(crate) async fn insert_running<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    kind: Operation,
    actor: &Actor,
    instance_id: &str,
) -> Result<Job> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO jobs (id, kind, status, phase, progress, started_by_id, started_by_name, instance_id, started_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, now()) RETURNING {JOB_COLUMNS}"
    ))
    .bind(id)
    .bind(kind)
    .bind(JobStatus::Running)
    .bind(Phase::Starting)
    .bind(actor.id)
    .bind(&actor.name)
    .bind(instance_id)
    .fetch_one(db)
    .await?)
}

/// Links a job to the backup it works on.
pub(crate) async fn set_backup<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    backup_id: i64,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "UPDATE jobs SET backup_id = $2 WHERE id = $1
         RETURNING (SELECT b.filename FROM backup_history b WHERE b.id = $2)",
    )
    .bind(id)
    .bind(backup_id)
    .fetch_one(db)
    .await?)
}

/// Records the phase a running job is in and its overall progress (0..=1).
pub(crate) async fn progress(
    control: &PgPool,
    id: Uuid,
    phase: Phase,
    progress: f64,
) -> Result<()> {
    sqlx::query("UPDATE jobs SET phase = $2, progress = $3 WHERE id = $1 AND status = $4")
        .bind(id)
        .bind(phase)
        .bind(progress.clamp(0.0, 1.0))
        .bind(JobStatus::Running)
        .execute(control)
        .await?;
    Ok(())
}

/// Adds a note to a running job.
pub(crate) async fn note(control: &PgPool, id: Uuid, note: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET notes = array_append(notes, $2) WHERE id = $1 AND status = $3")
        .bind(id)
        .bind(note)
        .bind(JobStatus::Running)
        .execute(control)
        .await?;
    Ok(())
}

/// Ends a running job. A job already ended (interrupted by a takeover) is
/// left as it is.
pub(crate) async fn finish<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    outcome: JobStatus,
    message: Option<&str>,
) -> Result<bool> {
    let succeeded = outcome == JobStatus::Succeeded;
    let ended = sqlx::query(
        "UPDATE jobs SET status = $2, message = $3, finished_at = now(),
                progress = CASE WHEN $4 THEN 1 ELSE progress END,
                phase = CASE WHEN $4 THEN $5 ELSE phase END
         WHERE id = $1 AND status = $6",
    )
    .bind(id)
    .bind(outcome)
    .bind(message)
    .bind(succeeded)
    .bind(Phase::Done)
    .bind(JobStatus::Running)
    .execute(db)
    .await?;
    Ok(ended.rows_affected() == 1)
}

/// One job.
pub async fn get(control: &PgPool, id: Uuid) -> Result<Option<Job>> {
    Ok(
        sqlx::query_as(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(control)
            .await?,
    )
}

/// The restore or undo that last switched the LMS database (the one an
/// undo would reverse), if any completed.
pub async fn last_switch(control: &PgPool) -> Result<Option<Job>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE kind IN ($1, $2) AND status = $3
         ORDER BY coalesce(finished_at, created_at) DESC, created_at DESC LIMIT 1"
    ))
    .bind(Operation::Restore)
    .bind(Operation::Undo)
    .bind(JobStatus::Succeeded)
    .fetch_optional(control)
    .await?)
}

/// The most recent jobs, newest first.
pub async fn recent(control: &PgPool, limit: i64) -> Result<Vec<Job>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(control)
    .await?)
}
