//! Prepared copies: Preview changes restores a backup into a copy beside
//! the live database (`<db>_prepared_<job>`) exactly as a restore's copy is
//! built and checked, without maintenance mode, keeps it, and compares it
//! with the live database. One at a time; dropped once unused for
//! `PREPARED_COPY_IDLE_TIMEOUT`, or discarded; start-up drops any copy no
//! record names (a preview killed half-way). From it the administrator can
//! switch to it (the restore's switch, with undo, no second restore) or
//! bring records back (`crate::records`).

use std::time::Instant;

use chrono::{DateTime, Utc};
use lms_types::records::{Preview, TableDiff};
use lms_types::{AuditAction, Operation};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::Actor;
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs::messages::failure_message;
use crate::jobs::run::{Ending, JobRun};
use crate::jobs::Job;
use crate::postgres::names::prepared_name;
use crate::records::diff::CopySums;
use crate::{Error, Result};

/// The prepared copy, as the control database records it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PreparedCopy {
    pub database_name: String,
    pub job_id: Uuid,
    pub backup_id: i64,
    pub backup_name: String,
    pub prepared_by: String,
    pub prepared_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub diff: Option<sqlx::types::Json<Vec<TableDiff>>>,
    pub compared_at: Option<DateTime<Utc>>,
    pub compare_ms: Option<i64>,
}

/// The session setting of every connection that reads rows as JSON.
const IN_UTC: [(&str, &str); 1] = [("TimeZone", "UTC")];

/// Who drops a prepared copy left unused.
pub const IDLE_ACTOR: &str = "prepared copy idle timeout";

impl Engine {
    /// Starts Preview changes for `backup_id`: the previous prepared copy
    /// (if any) is dropped, the backup restored into a new one, checked, and
    /// compared with the live database. Returns the job at once.
    pub async fn start_preview(&self, backup_id: i64, actor: &Actor) -> Result<Job> {
        let backup = catalog::get_row(&self.dbs().control, backup_id).await?;
        self.require_restorable(&backup, "previewed")?;
        let job = self
            .begin_job_on(Operation::Preview, backup.id, actor)
            .await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let run = JobRun::start(&engine, job_for_task, &actor);
            let result = run.guard(engine.preview_job(&run, &backup, &actor)).await;
            engine.end_preview(run, &backup, result).await;
        });
        Ok(job)
    }

    async fn preview_job(
        &self,
        run: &JobRun,
        backup: &Backup,
        actor: &Actor,
    ) -> Result<Vec<TableDiff>> {
        // One at a time: the one before goes first (its disk space too).
        self.drop_prepared_copy().await?;
        let (name, sums) = self.preview_pipeline(run, backup).await?;
        sqlx::query(
            "INSERT INTO prepared_copies (database_name, job_id, backup_id, backup_name, prepared_by)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&name)
        .bind(run.job().id)
        .bind(backup.id)
        .bind(&backup.filename)
        .bind(&actor.name)
        .execute(&self.dbs().control)
        .await?;
        self.compare_prepared(&name, Some(&sums)).await
    }

    /// Compares the prepared copy `name` with the live database and keeps
    /// the result with it. `sums`: the copy's side, summed as it was
    /// restored (and unchanged since).
    pub(crate) async fn compare_prepared(
        &self,
        name: &str,
        sums: Option<&CopySums>,
    ) -> Result<Vec<TableDiff>> {
        let (live, copy) = self.prepared_pools(name).await?;
        let began = Instant::now();
        let diff = crate::records::diff::compare(&live, &copy, sums).await;
        let took = began.elapsed();
        live.close().await;
        copy.close().await;
        let (diff, reused) = diff?;
        tracing::info!(
            ms = took.as_millis() as u64,
            tables = diff.len(),
            copy_summed_while_restored = reused,
            "compared the prepared copy with the live database"
        );
        #[cfg(feature = "testing")]
        crate::testing::note_copy_sums_reused(name, reused);
        sqlx::query(
            "UPDATE prepared_copies SET diff = $2, compared_at = now(), compare_ms = $3,
                    last_used_at = now()
             WHERE database_name = $1",
        )
        .bind(name)
        .bind(sqlx::types::Json(&diff))
        .bind(took.as_millis() as i64)
        .execute(&self.dbs().control)
        .await?;
        Ok(diff)
    }

    /// Pools on the live database (as the application, in UTC so both sides
    /// spell times alike) and on the prepared copy (as the restore role,
    /// opened for the caller, who closes it).
    pub(crate) async fn prepared_pools(&self, name: &str) -> Result<(PgPool, PgPool)> {
        let login = self.open_restore_role().await?;
        let copy = PgPoolOptions::new()
            .max_connections(3)
            .connect_lazy_with(login.options.clone().database(name).options(IN_UTC));
        Ok((self.live_pool_in_utc(3), copy))
    }

    /// A pool of `connections` on the live database as the application, in
    /// UTC (rows read as JSON spell times alike on both sides).
    pub(crate) fn live_pool_in_utc(&self, connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(connections)
            .connect_lazy_with(self.dbs().lms_options.clone().options(IN_UTC))
    }

    async fn end_preview(&self, run: JobRun, backup: &Backup, result: Result<Vec<TableDiff>>) {
        let job = run.job().clone();
        if result.is_err() {
            let name = prepared_name(self.dbs().lms_name(), job.id);
            if let Err(e) = self.drop_databases(std::slice::from_ref(&name)).await {
                tracing::error!(error = %e, "could not drop a failed preview's copy");
            }
            let _ = sqlx::query("DELETE FROM prepared_copies WHERE job_id = $1")
                .bind(job.id)
                .execute(&self.dbs().control)
                .await;
        }
        if let Err(e) = self.close_restore_role().await {
            tracing::error!(error = ?e, "could not close the restore role");
        }
        let message = match &result {
            Ok(_) => {
                let preview = self.preview_of(&job.id).await;
                let mut parts = vec![format!(
                    "Prepared {} from the backup, checked against it, and compared with the live \
                     database.",
                    prepared_name(self.dbs().lms_name(), job.id)
                )];
                if let Some(p) = preview.as_ref() {
                    let said: Vec<String> = [
                        p.would_come_back(),
                        p.would_be_lost(),
                        p.would_be_reverted(),
                    ]
                    .into_iter()
                    .flatten()
                    .map(|s| format!("{s}."))
                    .collect();
                    if said.is_empty() {
                        parts.push("The live database holds exactly what the backup holds.".into());
                    }
                    parts.extend(said);
                }
                parts.join(" ")
            }
            Err(e) => {
                tracing::error!(error = ?e, backup = %backup.filename, "preview failed");
                failure_message(e)
            }
        };
        run.finish(Ending::of(
            &result,
            Some(&message),
            AuditAction::RestorePreview,
            Some(&backup.filename),
        ))
        .await;
    }

    /// The prepared copy, if there is one.
    pub async fn prepared_copy(&self) -> Result<Option<PreparedCopy>> {
        Ok(sqlx::query_as(
            "SELECT database_name, job_id, backup_id, backup_name, prepared_by, prepared_at,
                    last_used_at, diff, compared_at, compare_ms
             FROM prepared_copies",
        )
        .fetch_optional(&self.dbs().control)
        .await?)
    }

    /// The prepared copy and its comparison, for review (reading it changes
    /// nothing; planning a recovery from it counts as use).
    pub async fn preview(&self) -> Result<Option<Preview>> {
        let Some(copy) = self.prepared_copy().await? else {
            return Ok(None);
        };
        Ok(self.preview_from(copy))
    }

    /// The preview job `job` made, if its copy is still the prepared one.
    async fn preview_of(&self, job: &Uuid) -> Option<Preview> {
        let copy = self.prepared_copy().await.ok()??;
        (copy.job_id == *job).then(|| self.preview_from(copy))?
    }

    fn preview_from(&self, copy: PreparedCopy) -> Option<Preview> {
        let idle = chrono::Duration::from_std(self.config().prepared_copy_idle)
            .unwrap_or(chrono::TimeDelta::MAX);
        Some(Preview {
            backup_id: copy.backup_id,
            backup_name: copy.backup_name,
            database: copy.database_name,
            prepared_at: copy.prepared_at,
            prepared_by: copy.prepared_by,
            compared_at: copy.compared_at?,
            compare_ms: copy.compare_ms.unwrap_or(0),
            expires_at: copy.last_used_at + idle,
            tables: copy.diff?.0,
        })
    }

    /// The prepared copy, or the error that says there is none.
    pub(crate) async fn require_prepared(&self) -> Result<PreparedCopy> {
        let copy = self.prepared_copy().await?.ok_or_else(|| {
            Error::Invalid(
                "There is no prepared copy: preview a restore of the backup first (Preview \
                 changes, or lms-admin backup preview ID)."
                    .into(),
            )
        })?;
        sqlx::query("UPDATE prepared_copies SET last_used_at = now()")
            .execute(&self.dbs().control)
            .await?;
        Ok(copy)
    }

    /// Discards the prepared copy (a short job under the operation lock).
    pub async fn discard_prepared(&self, actor: &Actor) -> Result<String> {
        let copy = self
            .prepared_copy()
            .await?
            .ok_or_else(|| Error::Invalid("There is no prepared copy to discard.".into()))?;
        self.run_short_job(
            Operation::Discard,
            actor,
            (AuditAction::RestoreDiscard, &copy.backup_name),
            async {
                self.drop_prepared_copy().await?;
                Ok(copy.database_name.clone())
            },
        )
        .await
    }

    /// Drops the prepared copy, if any (called under the operation lock).
    pub(crate) async fn drop_prepared_copy(&self) -> Result<Option<String>> {
        let Some(copy) = self.prepared_copy().await? else {
            return Ok(None);
        };
        self.drop_databases(std::slice::from_ref(&copy.database_name))
            .await?;
        sqlx::query("DELETE FROM prepared_copies WHERE database_name = $1")
            .bind(&copy.database_name)
            .execute(&self.dbs().control)
            .await?;
        tracing::info!(database = %copy.database_name, "dropped the prepared copy");
        Ok(Some(copy.database_name))
    }

    /// Drops the prepared copy when it has been unused for the idle timeout
    /// at `now` and nothing else runs. Returns whether it did.
    pub async fn drop_idle_prepared_copy(&self, now: DateTime<Utc>) -> Result<bool> {
        let Some(copy) = self.prepared_copy().await? else {
            return Ok(false);
        };
        let idle = chrono::Duration::from_std(self.config().prepared_copy_idle)
            .unwrap_or(chrono::TimeDelta::MAX);
        if now - copy.last_used_at < idle || self.lock_status().await?.is_some() {
            return Ok(false);
        }
        match self.discard_prepared(&Actor::system(IDLE_ACTOR)).await {
            Ok(_) => Ok(true),
            Err(Error::Busy(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Drops the prepared copy once it has been unused for its idle time,
    /// looking every heartbeat for as long as the process runs.
    pub fn watch_prepared_copy(&self) {
        self.every_heartbeat(
            "could not drop an idle prepared copy",
            |engine| async move { engine.drop_idle_prepared_copy(Utc::now()).await.map(|_| ()) },
        );
    }

    /// Starts switching the prepared copy in for the live database: the
    /// restore's switch (maintenance for a moment, the live database kept
    /// for undo), after checking the copy once more. `confirmed` must be
    /// true.
    pub async fn start_switch_to_prepared(&self, confirmed: bool, actor: &Actor) -> Result<Job> {
        if !confirmed {
            return Err(Error::Invalid(
                "Confirm the switch: it replaces all current data with the prepared copy's.".into(),
            ));
        }
        let copy = self.require_prepared().await?;
        let backup = catalog::get_row(&self.dbs().control, copy.backup_id)
            .await
            .map_err(|_| {
                Error::Invalid(format!(
                    "The backup the prepared copy holds ({}) was deleted since, so the copy can no \
                     longer be checked against it; discard it and preview another backup.",
                    copy.backup_name
                ))
            })?;
        let job = self
            .begin_job_on(Operation::Restore, backup.id, actor)
            .await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let run = JobRun::start(&engine, job_for_task, &actor);
            let result = run
                .guard(engine.switch_pipeline(&run, &backup, &copy.database_name))
                .await;
            if result.is_err() {
                // The copy may be half taken over: it goes, like a restore's.
                let _ = engine
                    .drop_databases(std::slice::from_ref(&copy.database_name))
                    .await;
                let _ = sqlx::query("DELETE FROM prepared_copies WHERE database_name = $1")
                    .bind(&copy.database_name)
                    .execute(&engine.dbs().control)
                    .await;
            }
            engine
                .end_swap_job(run, result, Some(&backup.filename))
                .await;
        });
        Ok(job)
    }
}
