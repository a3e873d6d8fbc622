//! Jobs: every long operation is a row the UI and API can follow, with a
//! status, a phase, real progress and, on failure, a message a person can
//! act on.

pub mod lease;
pub mod lock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::audit::Actor;
use crate::Result;

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Job {
    pub id: Uuid,
    pub kind: String,
    pub status: String,
    pub phase: String,
    pub progress: f64,
    pub message: Option<String>,
    pub started_by_id: Option<i64>,
    pub started_by_name: String,
    pub instance_id: String,
    pub backup_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Final states a job can end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Interrupted,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

const JOB_COLUMNS: &str =
    "id, kind, status, phase, progress, message, started_by_id, started_by_name,
    instance_id, backup_id, created_at, started_at, finished_at";

/// Inserts a running job (the caller already holds the lock).
pub async fn insert_running<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    kind: &str,
    actor: &Actor,
    instance_id: &str,
    phase: &str,
) -> Result<Job> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO jobs (id, kind, status, phase, progress, started_by_id, started_by_name, instance_id, started_at)
         VALUES ($1, $2, 'running', $3, 0, $4, $5, $6, now()) RETURNING {JOB_COLUMNS}"
    ))
    .bind(id)
    .bind(kind)
    .bind(phase)
    .bind(actor.id)
    .bind(&actor.name)
    .bind(instance_id)
    .fetch_one(db)
    .await?)
}

/// Links a job to the backup it works on.
pub async fn set_backup<'e>(db: impl PgExecutor<'e>, id: Uuid, backup_id: i64) -> Result<()> {
    sqlx::query("UPDATE jobs SET backup_id = $2 WHERE id = $1")
        .bind(id)
        .bind(backup_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Reports progress (0..=1) and the phase a person would call it.
pub async fn progress(control: &PgPool, id: Uuid, phase: &str, progress: f64) -> Result<()> {
    sqlx::query("UPDATE jobs SET phase = $2, progress = $3 WHERE id = $1 AND status = 'running'")
        .bind(id)
        .bind(phase)
        .bind(progress.clamp(0.0, 1.0))
        .execute(control)
        .await?;
    Ok(())
}

/// Ends a running job. A job already ended (interrupted by a takeover) is
/// left as it is.
pub async fn finish<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    outcome: Outcome,
    message: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = $2, message = $3, finished_at = now(),
                progress = CASE WHEN $2 = 'succeeded' THEN 1 ELSE progress END,
                phase = CASE WHEN $2 = 'succeeded' THEN 'done' ELSE phase END
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(outcome.as_str())
    .bind(message)
    .execute(db)
    .await?;
    Ok(())
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

/// The most recent jobs, newest first.
pub async fn recent(control: &PgPool, limit: i64) -> Result<Vec<Job>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(control)
    .await?)
}
