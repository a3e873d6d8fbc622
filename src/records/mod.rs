//! Record-level recovery from a prepared copy: what a restore would change
//! (`diff`), and bringing back deleted records without losing anyone's
//! work since (`plan`, `apply`). Works from the database's own catalog
//! (`schema`), so any schema, not only the LMS one; rows are described in
//! the LMS's words where it knows the table (`words`).
//!
//! - [`Engine::plan_recovery`]: the plan, worked out under the operation
//!   lock, nothing changed (a short job);
//! - [`Engine::start_recover`]: the plan carried out as a job, in one
//!   transaction on the live database, recorded for undo;
//! - [`Engine::start_recover_undo`]: exactly the recovered rows deleted
//!   again, refused when one changed since.

pub(crate) mod apply;
pub(crate) mod diff;
pub mod plan;
pub(crate) mod schema;
pub(crate) mod words;

use chrono::{DateTime, Utc};
use lms_types::records::{RecoveryPlan, RecoveryRecord};
use lms_types::{AuditAction, Operation, Phase};
use uuid::Uuid;

use crate::audit::Actor;
use crate::engine::Engine;
use crate::jobs::messages::failure_message;
use crate::jobs::run::{Ending, JobRun};
use crate::jobs::Job;
use crate::restore::prepared::PreparedCopy;
use crate::{Error, Result};
pub use plan::{RecordKey, RecordRequest};

/// A recovery as the control database keeps it.
#[derive(sqlx::FromRow)]
struct RecoveryRow {
    job_id: Uuid,
    backup_id: i64,
    backup_name: String,
    root_table: String,
    root: String,
    inserted: sqlx::types::Json<Vec<apply::Inserted>>,
    recovered_by: String,
    recovered_at: DateTime<Utc>,
    undone_at: Option<DateTime<Utc>>,
}

/// Ends a job whose outcome is its message (what it did, or why not).
async fn finish(run: JobRun, result: &Result<String>, action: AuditAction, backup: &str) {
    let message = match result {
        Ok(message) => message.clone(),
        Err(e) => failure_message(e),
    };
    run.finish(Ending::of(result, Some(&message), action, Some(backup)))
        .await;
}

impl From<RecoveryRow> for RecoveryRecord {
    fn from(r: RecoveryRow) -> Self {
        RecoveryRecord {
            job_id: r.job_id.to_string(),
            backup_id: r.backup_id,
            backup_name: r.backup_name,
            table: r.root_table,
            root: r.root,
            inserted: r
                .inserted
                .0
                .iter()
                .map(|t| (format!("{}.{}", t.schema, t.name), t.rows.len() as i64))
                .collect(),
            recovered_by: r.recovered_by,
            recovered_at: r.recovered_at,
            undone_at: r.undone_at,
        }
    }
}

impl Engine {
    /// Works out what recovering `request` from the prepared copy would do;
    /// changes nothing. Runs under the operation lock (it reads the copy as
    /// the restore role), as a short job.
    pub async fn plan_recovery(
        &self,
        request: &RecordRequest,
        actor: &Actor,
    ) -> Result<RecoveryPlan> {
        let prepared = self.require_prepared().await?;
        self.run_short_job(
            Operation::RecoverPlan,
            actor,
            (AuditAction::RecordsPlan, &prepared.backup_name),
            async { Ok(self.planned(&prepared, request).await?.plan) },
        )
        .await
    }

    /// The plan with its rows (the restore role opened and closed around it).
    async fn planned(
        &self,
        prepared: &PreparedCopy,
        request: &RecordRequest,
    ) -> Result<plan::Planned> {
        let (live, copy) = self.prepared_pools(&prepared.database_name).await?;
        let planned = plan::plan(
            &live,
            &copy,
            request,
            (prepared.backup_id, &prepared.backup_name),
        )
        .await;
        live.close().await;
        copy.close().await;
        if let Err(e) = self.close_restore_role().await {
            tracing::error!(error = ?e, "could not close the restore role");
        }
        planned
    }

    /// Starts recovering `request` from the prepared copy; returns the job
    /// at once. `expect`: the rows the plan the administrator confirmed
    /// inserts; when the live database changed since so that the plan now
    /// differs, the job refuses and changes nothing.
    pub async fn start_recover(
        &self,
        request: RecordRequest,
        expect: Option<i64>,
        actor: &Actor,
    ) -> Result<Job> {
        let prepared = self.require_prepared().await?;
        let mut pending = self.begin_job(Operation::Recover, actor).await?;
        pending.link_backup_if_listed(prepared.backup_id).await?;
        let job = pending.commit().await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let run = JobRun::start(&engine, job_for_task, &actor);
            let result = run
                .guard(engine.recover_job(&run, &prepared, &request, expect, &actor))
                .await;
            if let Err(e) = &result {
                tracing::error!(error = ?e, "record recovery failed");
            }
            finish(
                run,
                &result,
                AuditAction::RecordsRecover,
                &prepared.backup_name,
            )
            .await;
        });
        Ok(job)
    }

    async fn recover_job(
        &self,
        run: &JobRun,
        prepared: &PreparedCopy,
        request: &RecordRequest,
        expect: Option<i64>,
        actor: &Actor,
    ) -> Result<String> {
        run.enter(Phase::Checking).await?;
        let planned = self.planned(prepared, request).await?;
        let plan = &planned.plan;
        if !plan.blockers.is_empty() {
            let first = &plan.blockers[0];
            return Err(Error::Invalid(format!(
                "The recovery is blocked ({} {}: {}{}); nothing was changed.",
                first.table,
                first.row,
                first.reason,
                match plan.blockers.len() {
                    1 => String::new(),
                    n => format!(", and {} more", n - 1),
                }
            )));
        }
        if plan.rows_to_insert() == 0 {
            return Err(Error::Invalid(format!(
                "Nothing to recover: {} and everything that belongs to it exist in the live \
                 database.",
                plan.root
            )));
        }
        if let Some(expected) = expect.filter(|e| *e != plan.rows_to_insert()) {
            return Err(Error::Invalid(format!(
                "The live database changed since the plan was shown ({expected} rows to insert \
                 then, {} now); nothing was changed. Review the plan again.",
                plan.rows_to_insert()
            )));
        }
        run.enter(Phase::Saving).await?;
        let live = self.live_pool_in_utc(2);
        let control = self.dbs().control.clone();
        let job_id = run.job().id;
        let result = apply::recover(&live, &planned.inserts, |inserted| {
            let control = control.clone();
            async move {
                sqlx::query(
                    "INSERT INTO record_recoveries
                        (job_id, backup_id, backup_name, root_table, root, inserted, state, recovered_by)
                     VALUES ($1, $2, $3, $4, $5, $6, 'applying', $7)",
                )
                .bind(job_id)
                .bind(plan.backup_id)
                .bind(&plan.backup_name)
                .bind(&plan.table)
                .bind(&plan.root)
                .bind(sqlx::types::Json(&inserted))
                .bind(&actor.name)
                .execute(&control)
                .await?;
                Ok(())
            }
        })
        .await;
        live.close().await;
        let state = if result.is_ok() { "applied" } else { "failed" };
        sqlx::query("UPDATE record_recoveries SET state = $2 WHERE job_id = $1")
            .bind(job_id)
            .bind(state)
            .execute(&self.dbs().control)
            .await?;
        let (_, moved) = result?;
        let skipped: i64 = plan.tables.iter().map(|t| t.unchanged + t.changed).sum();
        let changed: i64 = plan.tables.iter().map(|t| t.changed).sum();
        let mut message = format!(
            "Recovered {} ({}) from {} in one transaction.",
            plan.root,
            plan.insert_words().unwrap_or_default(),
            plan.backup_name
        );
        if skipped > 0 {
            message.push_str(&format!(
                " {skipped} rows that exist live were left as they are ({changed} of them changed since)."
            ));
        }
        if moved > 0 {
            message.push_str(&format!(
                " {moved} sequences were moved past the recovered keys."
            ));
        }
        message.push_str(" Undo recovery deletes exactly these rows again.");
        self.compare_again().await;
        Ok(message)
    }

    /// Starts deleting again the rows recovery `job` (the newest one not
    /// undone, by default) inserted; returns the job at once.
    pub async fn start_recover_undo(&self, job: Option<Uuid>, actor: &Actor) -> Result<Job> {
        let row: Option<RecoveryRow> = sqlx::query_as(
            "SELECT job_id, backup_id, backup_name, root_table, root, inserted, recovered_by,
                    recovered_at, undone_at
             FROM record_recoveries
             WHERE state IN ('applied', 'applying') AND ($1::uuid IS NULL OR job_id = $1)
             ORDER BY recovered_at DESC LIMIT 1",
        )
        .bind(job)
        .fetch_optional(&self.dbs().control)
        .await?;
        let row = row.ok_or_else(|| {
            Error::Invalid(match job {
                Some(id) => {
                    format!("There is no recovery {id} to undo (or it was undone already).")
                }
                None => "There is no recovery to undo.".into(),
            })
        })?;
        let mut pending = self.begin_job(Operation::RecoverUndo, actor).await?;
        pending.link_backup_if_listed(row.backup_id).await?;
        let job = pending.commit().await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let run = JobRun::start(&engine, job_for_task, &actor);
            let result = run.guard(engine.recover_undo_job(&run, &row)).await;
            finish(run, &result, AuditAction::RecordsUndo, &row.backup_name).await;
        });
        Ok(job)
    }

    async fn recover_undo_job(&self, run: &JobRun, row: &RecoveryRow) -> Result<String> {
        run.enter(Phase::Checking).await?;
        let live = self.live_pool_in_utc(2);
        let undone = apply::undo(&live, &row.inserted.0).await;
        live.close().await;
        let undone = undone?;
        sqlx::query(
            "UPDATE record_recoveries SET state = 'undone', undone_at = now(), undo_job_id = $2
             WHERE job_id = $1",
        )
        .bind(row.job_id)
        .bind(run.job().id)
        .execute(&self.dbs().control)
        .await?;
        let words = lms_types::records::count_list(&undone.deleted);
        let mut message = format!(
            "Deleted the recovered rows of {} again ({words}) in one transaction.",
            row.root
        );
        if undone.gone > 0 {
            message.push_str(&format!(" {} of them were already gone.", undone.gone));
        }
        self.compare_again().await;
        Ok(message)
    }

    /// Compares the prepared copy, if there is one, with the live database
    /// again (the live database just changed); a failure leaves the older
    /// comparison, with its time, and is logged.
    async fn compare_again(&self) {
        let Ok(Some(copy)) = self.prepared_copy().await else {
            return;
        };
        if let Err(e) = self.compare_prepared(&copy.database_name, None).await {
            tracing::warn!(error = %e, "could not compare the prepared copy again");
        }
        if let Err(e) = self.close_restore_role().await {
            tracing::error!(error = ?e, "could not close the restore role");
        }
    }

    /// The newest record recoveries, newest first.
    pub async fn recoveries(&self, limit: i64) -> Result<Vec<RecoveryRecord>> {
        let rows: Vec<RecoveryRow> = sqlx::query_as(
            "SELECT job_id, backup_id, backup_name, root_table, root, inserted, recovered_by,
                    recovered_at, undone_at
             FROM record_recoveries WHERE state <> 'failed'
             ORDER BY recovered_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.dbs().control)
        .await?;
        Ok(rows.into_iter().map(RecoveryRecord::from).collect())
    }
}
