//! The operation lock: one backup, restore, delete or cleanup at a time
//! across every instance.
//!
//! It is a lease, a single row in the control database. The holder renews
//! `heartbeat_at` every few seconds; a lease whose heartbeat is older than
//! the timeout belongs to a dead holder and is taken over, and the job it
//! guarded is marked interrupted. Times come from the database server's
//! clock, so an application host whose clock jumps cannot break expiry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lms_types::{BackupStatus, JobStatus, Operation, Phase};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::messages::SWITCH_INTERRUPTED;
use crate::audit::Actor;
use crate::{Error, Result};

/// Who holds the lock, for what, since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LockInfo {
    pub operation_type: Operation,
    pub locked_by: String,
    pub locked_by_id: Option<i64>,
    pub locked_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub holder_instance: String,
    pub job_id: Option<Uuid>,
    /// True when the heartbeat is older than the lease timeout.
    pub stale: bool,
}

impl std::fmt::Display for LockInfo {
    /// What a refused caller is told.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Another operation is running: a {} started by {} at {} UTC. Wait for it to finish.",
            self.operation_type,
            self.locked_by,
            self.locked_at.format("%H:%M:%S")
        )
    }
}

const SELECT_LOCK: &str =
    "SELECT operation_type, locked_by_name AS locked_by, locked_by_id, locked_at,
        heartbeat_at, holder_instance, job_id,
        heartbeat_at < now() - make_interval(secs => $1) AS stale
 FROM operation_lock WHERE id = 1";

/// The current holder, if any.
pub async fn status(control: &PgPool, lease_timeout: Duration) -> Result<Option<LockInfo>> {
    Ok(sqlx::query_as(SELECT_LOCK)
        .bind(lease_timeout.as_secs_f64())
        .fetch_optional(control)
        .await?)
}

/// What a new holder needs to say about itself.
pub struct LockRequest<'a> {
    pub instance_id: &'a str,
    pub job_id: Option<Uuid>,
    pub operation: Operation,
    pub actor: &'a Actor,
    pub lease_timeout: Duration,
}

/// Opens the transaction a lock is taken in (see [`acquire_in`]).
///
/// Every timestamp the lock compares is the database server's `now()`, so
/// the clocks of the machines running this server never matter. A heartbeat
/// in the future means that clock went back: it is first brought to the
/// present (committed on its own, whatever the caller's transaction does),
/// so a dead holder's lock expires one timeout from now instead of staying
/// stuck until the clock catches up. A live holder renews it anyway.
pub async fn begin(control: &PgPool) -> Result<Transaction<'static, Postgres>> {
    sqlx::query(
        "UPDATE operation_lock SET heartbeat_at = now() WHERE id = 1 AND heartbeat_at > now()",
    )
    .execute(control)
    .await?;
    Ok(control.begin().await?)
}

/// Takes the lock inside `tx`, which the caller commits together with
/// whatever else it creates (the job row), so a refused caller leaves
/// nothing behind. A stale lease is taken over and its job marked
/// interrupted. Fails with [`Error::Busy`] naming the current holder.
pub async fn acquire_in(
    tx: &mut Transaction<'_, Postgres>,
    request: &LockRequest<'_>,
) -> Result<()> {
    let current: Option<LockInfo> = sqlx::query_as(&format!("{SELECT_LOCK} FOR UPDATE"))
        .bind(request.lease_timeout.as_secs_f64())
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(current) = current {
        if !current.stale && !holder_is_dead(&current.holder_instance, request.instance_id) {
            return Err(Error::Busy(Box::new(current)));
        }
        tracing::warn!(
            holder = %current.holder_instance,
            operation = %current.operation_type,
            "taking over an abandoned operation lock"
        );
        if let Some(job) = current.job_id {
            interrupt_job(
                tx,
                job,
                "Interrupted: the server running it stopped responding.",
            )
            .await?;
        }
        sqlx::query("DELETE FROM operation_lock WHERE id = 1")
            .execute(&mut **tx)
            .await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO operation_lock (id, holder_instance, job_id, operation_type, locked_by_id, locked_by_name)
         VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(request.instance_id)
    .bind(request.job_id)
    .bind(request.operation)
    .bind(request.actor.id)
    .bind(&request.actor.name)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // Someone inserted between our read and our insert.
        let holder: Option<LockInfo> = sqlx::query_as(SELECT_LOCK)
            .bind(request.lease_timeout.as_secs_f64())
            .fetch_optional(&mut **tx)
            .await?;
        return Err(holder.map(|h| Error::Busy(Box::new(h))).unwrap_or_else(|| {
            Error::Conflict("the operation lock is contended; try again".into())
        }));
    }
    Ok(())
}

/// Renews the lease. `false` means it is no longer ours (taken over or
/// force-released): the operation must stop.
pub async fn heartbeat(control: &PgPool, instance_id: &str, job_id: Option<Uuid>) -> Result<bool> {
    let renewed = sqlx::query(
        "UPDATE operation_lock SET heartbeat_at = now()
         WHERE id = 1 AND holder_instance = $1 AND job_id IS NOT DISTINCT FROM $2",
    )
    .bind(instance_id)
    .bind(job_id)
    .execute(control)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Releases the lease if it is still ours.
pub async fn release<'e>(
    db: impl sqlx::PgExecutor<'e>,
    instance_id: &str,
    job_id: Option<Uuid>,
) -> Result<()> {
    sqlx::query("DELETE FROM operation_lock WHERE id = 1 AND holder_instance = $1 AND job_id IS NOT DISTINCT FROM $2")
        .bind(instance_id)
        .bind(job_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes the lock whoever holds it, marking its job interrupted. Returns
/// what was released. The caller audits.
pub async fn force_release(control: &PgPool, lease_timeout: Duration) -> Result<Option<LockInfo>> {
    let mut tx = control.begin().await?;
    let current: Option<LockInfo> = sqlx::query_as(&format!("{SELECT_LOCK} FOR UPDATE"))
        .bind(lease_timeout.as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(current) = &current {
        if let Some(job) = current.job_id {
            interrupt_job(
                &mut tx,
                job,
                "Interrupted: an administrator released the operation lock.",
            )
            .await?;
        }
        sqlx::query("DELETE FROM operation_lock WHERE id = 1")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(current)
}

async fn interrupt_job(tx: &mut Transaction<'_, Postgres>, job: Uuid, message: &str) -> Result<()> {
    interrupt_jobs(tx, Some(job), None, message).await?;
    Ok(())
}

/// Marks running jobs interrupted: `only` that one, or (with `None`) every
/// one but `except`, with their running backups failed. A restore or undo
/// says [`SWITCH_INTERRUPTED`] instead of `message`. Returns, per job,
/// whether it was a restore or undo stopped while switching.
pub(crate) async fn interrupt_jobs(
    db: &mut sqlx::PgConnection,
    only: Option<Uuid>,
    except: Option<Uuid>,
    message: &str,
) -> Result<Vec<bool>> {
    let swaps = [Operation::Restore, Operation::Undo];
    let interrupted: Vec<super::Job> = sqlx::query_as(&format!(
        "UPDATE jobs SET status = $1, finished_at = now(),
                message = CASE WHEN kind = ANY($2) THEN replace($3, '{{operation}}', kind) ELSE $4 END
         WHERE status = $5 AND ($6::uuid IS NULL OR id = $6) AND id IS DISTINCT FROM $7
         RETURNING {}",
        super::JOB_COLUMNS
    ))
    .bind(JobStatus::Interrupted)
    .bind(swaps)
    .bind(SWITCH_INTERRUPTED)
    .bind(message)
    .bind(JobStatus::Running)
    .bind(only)
    .bind(except)
    .fetch_all(&mut *db)
    .await?;
    // Each one tells the channels, with the outcome.
    for job in &interrupted {
        if let Some((kind, notice)) =
            crate::notify::outcomes::job_ended(job, JobStatus::Interrupted, job.message.as_deref())
        {
            crate::notify::record(&mut *db, kind, &notice, None).await?;
        }
    }
    let switching = interrupted
        .iter()
        .map(|job| swaps.contains(&job.kind) && job.phase == Phase::Switching)
        .collect();
    sqlx::query(
        "UPDATE backup_history SET status = $1
         WHERE status = $2 AND ($3::uuid IS NULL OR job_id = $3) AND job_id IS DISTINCT FROM $4",
    )
    .bind(BackupStatus::Failed)
    .bind(BackupStatus::Running)
    .bind(only)
    .bind(except)
    .execute(&mut *db)
    .await?;
    Ok(switching)
}

pub(crate) use super::instance::holder_is_dead;
pub use super::instance::new_instance_id;
