//! Restoring a backup without ever leaving the site half-restored
//! (DESIGN §4):
//!
//! 1. gates before anything changes: completed backup, file present and
//!    matching its checksum, archive readable by our pg_restore, a role that
//!    may create databases and owns the LMS database, no superuser for
//!    uploaded archives;
//! 2. restore into a fresh shadow database `<db>_restore_<job>` while the
//!    live one keeps serving;
//! 3. prove the shadow equals the backup (fingerprint), bring its schema up
//!    to date (migrations);
//! 4. swap in a moment: maintenance on, block and end connections to the
//!    live database, rename live → `<db>_pre_restore_<ts>` and shadow →
//!    `<db>` in one transaction, maintenance off;
//! 5. every session ends; the previous database stays for undo.
//!
//! Any failure before the swap drops the shadow; the live database is never
//! touched until its rename.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::audit::{self, Actor, Event, Outcome};
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs::lease::Lease;
use crate::jobs::lock::{self, LockRequest};
use crate::jobs::{self, Job};
use crate::postgres::archive::{self, DataLoadWatcher, TableProgress};
use crate::postgres::databases::{like_escape, previous_pattern, quote_ident};
use crate::postgres::fingerprint::{self, Fingerprint, HashMethod, TableFingerprint, TableRef};
use crate::postgres::process::{follow_stderr, ToolConnection, ToolProcess};
use crate::{settings, storage, Error, Result};

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
        if backup.status != "completed" {
            return Err(Error::Invalid(format!(
                "Only completed backups can be restored; {} is {}.",
                backup.filename, backup.status
            )));
        }
        let job = self.begin_job("restore", Some(backup.id), actor).await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let work = engine.restore_pipeline(&job_for_task, &backup);
            let _ = engine
                .clone()
                .run_swap_job(&job_for_task, &actor, work)
                .await;
        });
        Ok(job)
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
        let job = self.begin_job("undo", None, actor).await?;
        let engine = self.clone();
        let (job_for_task, actor) = (job.clone(), actor.clone());
        tokio::spawn(async move {
            let work = async {
                jobs::progress(&engine.dbs().control, job_for_task.id, "switching", 0.5).await?;
                engine.swap_in(&previous, job_for_task.id).await
            };
            let _ = engine
                .clone()
                .run_swap_job(&job_for_task, &actor, work)
                .await;
        });
        Ok(job)
    }

    /// Databases kept from before restores, newest first.
    pub async fn previous_databases(&self) -> Result<Vec<String>> {
        let pattern = previous_pattern(self.dbs().lms_name());
        Ok(sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY datname DESC",
        )
        .bind(pattern)
        .fetch_all(&self.dbs().control_or_lms())
        .await?)
    }

    /// Creates a running job holding the lock (nothing is created if busy).
    async fn begin_job(&self, kind: &str, backup_id: Option<i64>, actor: &Actor) -> Result<Job> {
        let mut tx = lock::begin(&self.dbs().control).await?;
        let id = Uuid::new_v4();
        let job =
            jobs::insert_running(&mut *tx, id, kind, actor, self.instance_id(), "starting").await?;
        lock::acquire_in(
            &mut tx,
            &LockRequest {
                instance_id: self.instance_id(),
                job_id: Some(id),
                operation_type: kind,
                actor,
                lease_timeout: self.config().lease_timeout,
            },
        )
        .await?;
        if let Some(backup) = backup_id {
            jobs::set_backup(&mut *tx, id, backup).await?;
        }
        tx.commit().await?;
        Ok(Job { backup_id, ..job })
    }

    /// Runs a restore or undo to its end: audit, job outcome, lock.
    async fn run_swap_job(
        self,
        job: &Job,
        actor: &Actor,
        work: impl std::future::Future<Output = Result<SwapReport>>,
    ) -> Result<SwapReport> {
        let lease = Lease::start(self.clone(), Some(job.id));
        let result = tokio::select! {
            r = work => r,
            () = lease.lost() => Err(Error::Cancelled("The operation was stopped: its lock was released or taken over.".into())),
        };
        let control = &self.dbs().control;
        let mut phases = PhaseTimer::new(job.id);
        // Whatever happened, nobody stays locked out.
        if let Err(e) = settings::maintenance_off(control).await {
            tracing::error!(error = ?e, "could not turn maintenance mode off");
        }
        self.drop_shadows(Some(job.id)).await;
        phases.done("dropping the copy");
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
                crate::backup::failure_message(e)
            }
        };
        audit::record_or_log(
            control,
            Event {
                actor,
                action: if job.kind == "undo" {
                    "restore.undo"
                } else {
                    "restore"
                },
                target: job.backup_id.map(|b| b.to_string()).as_deref(),
                outcome: if result.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                detail: Some(&message),
            },
        )
        .await;
        let outcome = if result.is_ok() {
            jobs::Outcome::Succeeded
        } else {
            jobs::Outcome::Failed
        };
        lease.finish(outcome, Some(&message)).await;
        phases.done("finishing");
        if result.is_ok() {
            // Housekeeping once the job has ended: dropping a large database
            // takes time nobody needs to wait for. Only databases beyond the
            // newest RESTORE_KEEP_PREVIOUS go, so an operation starting
            // meanwhile (an undo takes the newest) is never in its way.
            if let Err(e) = self.trim_previous_databases().await {
                tracing::error!(error = ?e, "could not drop old previous databases");
            }
            phases.done("dropping older previous databases");
        }
        result
    }

    async fn restore_pipeline(&self, job: &Job, backup: &Backup) -> Result<SwapReport> {
        let dbs = self.dbs();
        let control = &dbs.control;
        let mut phases = PhaseTimer::new(job.id);
        jobs::progress(control, job.id, "verifying", 0.01).await?;

        // Gate: the file is the one the manifest describes.
        let dir = self.config().backup_dir.clone();
        let (check_dir, name) = (dir.clone(), backup.filename.clone());
        let (size, sha256) = tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
            Ok(archive::sha256_of(&mut storage::open_archive(
                &check_dir, &name,
            )?)?)
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
        .map_err(|e| match e {
            Error::NotFound(_) => Error::Invalid(format!(
                "The file of {} is missing from the backup directory.",
                backup.filename
            )),
            other => other,
        })?;
        if Some(sha256.as_str()) != backup.sha256.as_deref()
            || Some(size as i64) != backup.size_bytes
        {
            return Err(Error::Invalid(format!(
                "{} no longer matches its checksum: it was changed or damaged. Nothing was restored; use another backup.",
                backup.filename
            )));
        }
        let path = storage::archive_path(&dir, &backup.filename)?;
        archive::list(&self.tools().pg_restore, &path)
            .await
            .map_err(|_| {
                Error::Invalid(format!(
                    "{} cannot be read by this server's pg_restore.",
                    backup.filename
                ))
            })?;
        self.check_restore_privileges(&backup.kind).await?;
        let manifest = catalog::get(control, backup.id).await?.manifest;
        self.check_room_for_copy(manifest.as_ref()).await?;
        phases.done("verifying");

        // Shadow restore.
        jobs::progress(control, job.id, "restoring", 0.05).await?;
        let shadow = shadow_name(dbs.lms_name(), job.id);
        let mut admin = PgConnection::connect_with(&dbs.maintenance_options()).await?;
        sqlx::query(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            quote_ident(&shadow)
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        phases.done("creating the copy");
        let weights: Vec<TableRef> = manifest
            .as_ref()
            .and_then(|m| m.tables.as_ref())
            .map(|ts| {
                ts.iter()
                    .map(|t| TableRef {
                        schema: t.schema.clone(),
                        name: t.name.clone(),
                        size_bytes: t.size_bytes,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let progress = TableProgress::new(&weights);
        let expected = manifest.as_ref().and_then(|m| {
            Some(Fingerprint {
                tables: m.tables.clone()?,
                sequences: m.sequences.clone()?,
            })
        });
        let jobs_n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let shadow_pool = PgPoolOptions::new()
            .max_connections(jobs_n as u32 + 1)
            .connect_lazy_with(dbs.sibling_options(&shadow));
        // Each table is fingerprinted as soon as its data is in, while
        // pg_restore goes on with the others and with the indexes.
        let (loaded_tx, loaded_rx) = tokio::sync::mpsc::unbounded_channel();
        let early = tokio::spawn(fingerprint_as_loaded(
            shadow_pool.clone(),
            expected.clone(),
            loaded_rx,
        ));
        let connection =
            ToolConnection::new(&dbs.lms_options, dbs.lms_password.as_deref(), Some(&shadow))?;
        let mut cmd = connection.command(&self.tools().pg_restore);
        cmd.args([
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--verbose",
            "--no-password",
        ])
        .arg(format!("--jobs={jobs_n}"))
        .arg(format!("--dbname={shadow}"))
        .arg(&path);
        let mut tool = ToolProcess::spawn("pg_restore", cmd, Stdio::null())?;
        let stderr = tool.child().stderr.take().expect("stderr is piped");
        let follower = {
            let progress = progress.clone();
            let mut watcher = DataLoadWatcher::default();
            follow_stderr(stderr, move |line| {
                progress.on_line(line);
                if let Some(table) = watcher.on_line(line) {
                    let _ = loaded_tx.send(table);
                }
            })
        };
        let tail = crate::backup::report_while(
            follower,
            control,
            job.id,
            "restoring",
            0.05,
            0.75,
            &progress,
        )
        .await;
        tool.wait(tail).await?;
        phases.done("restoring");

        // Check the copy (what was not fingerprinted during the restore),
        // then bring it up to date.
        jobs::progress(control, job.id, "checking", 0.82).await?;
        let mut early = early
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let actual = {
            let tables = fingerprint::list_tables(&mut *shadow_pool.acquire().await?).await?;
            let rest: Vec<TableRef> = tables
                .iter()
                .filter(|t| !early.contains_key(&qualified(&t.schema, &t.name)))
                .cloned()
                .collect();
            tracing::info!(
                during_restore = tables.len() - rest.len(),
                after = rest.len(),
                "fingerprinting the copy"
            );
            let mut late =
                fingerprint::fingerprint_quiescent(&shadow_pool, &rest, expected.as_ref(), jobs_n)
                    .await?;
            let mut late_tables = late.tables.drain(..);
            let all = tables
                .iter()
                .map(|t| match early.remove(&qualified(&t.schema, &t.name)) {
                    Some(f) => Ok(TableFingerprint {
                        size_bytes: t.size_bytes,
                        ..f
                    }),
                    None => late_tables
                        .next()
                        .ok_or_else(|| Error::Io(std::io::Error::other("fingerprint out of step"))),
                })
                .collect::<Result<Vec<_>>>()?;
            Fingerprint {
                tables: all,
                sequences: late.sequences,
            }
        };
        match expected {
            Some(expected) => {
                let diffs = expected.differences(&actual);
                if !diffs.is_empty() {
                    tracing::error!(?diffs, "restored copy differs from the backup");
                    return Err(Error::Invalid(format!(
                        "The restored copy does not match the backup ({}); nothing was changed.",
                        diffs.first().cloned().unwrap_or_default()
                    )));
                }
            }
            // An uploaded archive: its fingerprint is what its first restore produced.
            None => self.record_fingerprint(backup, &actual).await?,
        }
        phases.done("checking");
        dbs.migrate_lms_copy(&shadow_pool).await?;
        shadow_pool.close().await;
        phases.done("migrating");

        jobs::progress(control, job.id, "switching", 0.95).await?;
        let report = self.swap_in(&shadow, job.id).await;
        phases.done("switching");
        report
    }

    /// Stores a fingerprint in a backup's manifest (catalog and sidecar).
    async fn record_fingerprint(&self, backup: &Backup, fingerprint: &Fingerprint) -> Result<()> {
        let detail = catalog::get(&self.dbs().control, backup.id).await?;
        let Some(mut manifest) = detail.manifest else {
            return Ok(());
        };
        manifest.tables = Some(fingerprint.tables.clone());
        manifest.sequences = Some(fingerprint.sequences.clone());
        let dir = self.config().backup_dir.clone();
        let m = manifest.clone();
        tokio::task::spawn_blocking(move || storage::write_manifest(&dir, &m))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        catalog::mark_completed(&self.dbs().control, backup.id, &manifest).await
    }

    /// The role may create databases and owns the LMS database; uploaded
    /// archives are never restored with superuser rights.
    async fn check_restore_privileges(&self, kind: &str) -> Result<()> {
        let (user, createdb, superuser, owns): (String, bool, bool, bool) = sqlx::query_as(
            "SELECT r.rolname::text, r.rolcreatedb, r.rolsuper, d.datdba = r.oid
             FROM pg_roles r, pg_database d
             WHERE r.rolname = current_user AND d.datname = current_database()",
        )
        .fetch_one(&self.dbs().lms)
        .await?;
        let db = self.dbs().lms_name();
        if !createdb && !superuser {
            return Err(Error::Invalid(format!(
                "The database role \"{user}\" may not create databases, which a safe restore needs. \
                 As a superuser run: ALTER ROLE \"{user}\" CREATEDB;"
            )));
        }
        if !owns && !superuser {
            return Err(Error::Invalid(format!(
                "The database role \"{user}\" does not own the LMS database \"{db}\". \
                 As a superuser run: ALTER DATABASE \"{db}\" OWNER TO \"{user}\";"
            )));
        }
        if superuser && kind == "uploaded" {
            return Err(Error::Invalid(
                "Uploaded archives are not restored through a superuser connection: an archive can run \
                 code as the role that restores it. Connect with the application's own role."
                    .into(),
            ));
        }
        Ok(())
    }

    /// The copy is built beside the live database, so both must fit on the
    /// database server's disk at once. The copy's size is estimated from the
    /// manifest (tables with their indexes when backed up, plus a tenth), or
    /// from the live database when the archive carries no such record. The
    /// disk can only be seen when the server runs on this host and the role
    /// may read `data_directory` (superuser or `pg_read_all_settings`);
    /// otherwise the check is skipped and logged, and a full disk fails the
    /// restore in the copy, before anything live changed.
    async fn check_room_for_copy(&self, manifest: Option<&storage::Manifest>) -> Result<()> {
        let lms = &self.dbs().lms;
        let recorded: Option<i64> = manifest
            .and_then(|m| m.tables.as_ref())
            .map(|ts| ts.iter().map(|t| t.size_bytes).sum());
        let estimate = match recorded {
            Some(bytes) => bytes,
            None => {
                sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(lms)
                    .await?
            }
        };
        let needed = estimate.max(0) as u64 / 10 * 11;
        let Some(free) = self.database_server_free_space().await else {
            tracing::info!(
                needed,
                "free space on the database server cannot be seen from here; not checked"
            );
            return Ok(());
        };
        if free < needed {
            return Err(Error::Invalid(format!(
                "Not enough free space on the database server for the restored copy: about {} needed, \
                 {} free. The live database stays in place until the copy is proven, so both must fit \
                 at once. Free some space on the database server's disk and try again.",
                crate::backup::human(needed),
                crate::backup::human(free)
            )));
        }
        Ok(())
    }

    /// Free bytes on the disk holding the database server's data directory,
    /// when that disk is this host's and the role may see where it is.
    async fn database_server_free_space(&self) -> Option<u64> {
        let host = self.dbs().lms_options.get_host();
        let local = host.starts_with('/') || matches!(host, "localhost" | "127.0.0.1" | "::1");
        if !local {
            return None;
        }
        let dir: String =
            sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
                .fetch_optional(&self.dbs().lms)
                .await
                .ok()??;
        storage::free_space(std::path::Path::new(&dir)).ok()
    }

    /// Puts `incoming` in place of the LMS database, keeping the current one
    /// as `<db>_pre_restore_<timestamp>`. Seconds at most.
    async fn swap_in(&self, incoming: &str, job: Uuid) -> Result<SwapReport> {
        let dbs = self.dbs();
        let live = dbs.lms_name().to_owned();
        let previous = format!(
            "{live}_pre_restore_{}",
            Utc::now().format("%Y%m%d%H%M%S%3f")
        );
        let mut admin = PgConnection::connect_with(&dbs.maintenance_options()).await?;
        let started = Instant::now();
        // A superuser's session cannot be ended by this role, and with one
        // connected PostgreSQL refuses the rename (after waiting): say so now,
        // before the site goes into maintenance.
        let unendable: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
             WHERE a.datname = ANY($1) AND a.pid <> pg_backend_pid()
               AND a.backend_type = 'client backend' AND r.rolsuper",
        )
        .bind([live.clone(), incoming.to_owned()])
        .fetch_one(&mut admin)
        .await?;
        if unendable > 0 {
            return Err(sessions_in_the_way());
        }
        // Fencing: the lease is renewed (and so proven still ours) right
        // before the site goes down. A lease taken over while this job
        // stalled, or after a jump of the database server's clock, stops the
        // job here instead of letting two operations switch databases.
        if !lock::heartbeat(&dbs.control, self.instance_id(), Some(job)).await? {
            return Err(Error::Cancelled(
                "The operation was stopped before the switch: its lock was released or taken over. Nothing was changed.".into(),
            ));
        }
        settings::maintenance_on(&dbs.control, "The database is being restored.").await?;
        let swapped = async {
            sqlx::query(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", quote_ident(incoming)))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", quote_ident(&live)))
                .execute(&mut admin)
                .await?;
            let mut attempt = 0;
            loop {
                // Client sessions only: autovacuum workers (which run as a
                // superuser, so ending them is refused) are stopped by the
                // rename itself, and a superuser's own session cannot be
                // ended by this role (the rename then refuses, below).
                for db in [&live, &incoming.to_owned()] {
                    sqlx::query(
                        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
                         LEFT JOIN pg_roles r ON r.oid = a.usesysid
                         WHERE a.datname = $1 AND a.pid <> pg_backend_pid()
                           AND a.backend_type = 'client backend' AND NOT coalesce(r.rolsuper, false)",
                    )
                    .bind(db)
                    .execute(&mut admin)
                    .await?;
                }
                let renamed = async {
                    let mut tx = admin.begin().await?;
                    sqlx::query(&format!("ALTER DATABASE {} RENAME TO {}", quote_ident(&live), quote_ident(&previous)))
                        .execute(&mut *tx)
                        .await?;
                    #[cfg(feature = "testing")]
                    crate::testing::pause_point("swap:between-renames").await;
                    sqlx::query(&format!("ALTER DATABASE {} RENAME TO {}", quote_ident(incoming), quote_ident(&live)))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await
                }
                .await;
                match renamed {
                    Ok(()) => break,
                    // "being accessed by other users": a connection slipped in.
                    Err(e) if attempt < 3 => {
                        tracing::warn!(error = %e, attempt, "rename refused; ending connections again");
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") => {
                        return Err(sessions_in_the_way())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        #[cfg(feature = "testing")]
        if swapped.is_ok() {
            crate::testing::pause_point("swap:after-renames").await;
        }
        if swapped.is_err() {
            // Still the old database under the live name: let it serve again.
            let _ = sqlx::query(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                quote_ident(&live)
            ))
            .execute(&mut admin)
            .await;
        }
        settings::maintenance_off(&dbs.control).await?;
        let window = started.elapsed();
        swapped?;
        // The previous database stays closed to connections until an undo.
        admin.close().await?;
        tracing::info!(previous = %previous, window_ms = window.as_millis() as u64, "database swapped");
        Ok(SwapReport {
            previous,
            maintenance_window: window,
        })
    }

    /// Drops shadow databases: those of `job` (after it ends), or with `None`
    /// every one not belonging to a live job (start-up recovery).
    pub(crate) async fn drop_shadows(&self, job: Option<Uuid>) {
        let result = async {
            let names: Vec<String> = match job {
                Some(job) => vec![shadow_name(self.dbs().lms_name(), job)],
                None => self.shadow_databases().await?,
            };
            self.drop_databases(&names).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = ?e, "could not drop a shadow database");
        }
    }

    /// Every shadow database (`<db>_restore_<job>`) there is.
    pub(crate) async fn shadow_databases(&self) -> Result<Vec<String>> {
        let pattern = format!("{}\\_restore\\_%", like_escape(self.dbs().lms_name()));
        Ok(
            sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
                .bind(pattern)
                .fetch_all(&self.dbs().control_or_lms())
                .await?,
        )
    }

    /// Keeps `RESTORE_KEEP_PREVIOUS` previous databases, drops older ones.
    pub(crate) async fn trim_previous_databases(&self) -> Result<()> {
        let keep = self.config().restore_keep_previous as usize;
        let old: Vec<String> = self
            .previous_databases()
            .await?
            .into_iter()
            .skip(keep)
            .collect();
        self.drop_databases(&old).await
    }

    /// Drops databases beside the LMS one (ending their sessions).
    async fn drop_databases(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        for name in names {
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .execute(&mut admin)
            .await?;
        }
        Ok(())
    }

    /// Everyone signs in again after a restore (the users table changed).
    pub(crate) async fn end_all_sessions(&self) -> Result<()> {
        if let Some(table) = &self.config().sessions_table {
            let quoted: Vec<String> = table.split('.').map(quote_ident).collect();
            sqlx::query(&format!("DELETE FROM {}", quoted.join(".")))
                .execute(&self.dbs().control)
                .await?;
        }
        Ok(())
    }
}

/// Logs how long each phase of a job took (where the time of a slow restore
/// went, for whoever reads the log).
struct PhaseTimer {
    job: Uuid,
    last: Instant,
}

impl PhaseTimer {
    fn new(job: Uuid) -> Self {
        Self {
            job,
            last: Instant::now(),
        }
    }

    fn done(&mut self, phase: &str) {
        let now = Instant::now();
        tracing::info!(job = %self.job, phase, ms = (now - self.last).as_millis() as u64, "phase done");
        self.last = now;
    }
}

/// Why a switch cannot happen while a session this role may not end (a
/// superuser's) is connected.
fn sessions_in_the_way() -> Error {
    Error::Conflict(
        "Other sessions stayed connected to the LMS database (a superuser's, which this console \
         cannot end) and PostgreSQL would not switch it; nothing was changed. End them and try again."
            .into(),
    )
}

fn qualified(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

/// Fingerprints the tables named on `loaded` ("schema.name", data complete)
/// until the channel closes. Tables the backup did not record are skipped
/// (partitions, covered by their parent); a table that cannot be done here
/// is simply left for the check after the restore.
async fn fingerprint_as_loaded(
    pool: sqlx::PgPool,
    expected: Option<Fingerprint>,
    mut loaded: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> HashMap<String, TableFingerprint> {
    let methods: Option<HashMap<String, HashMethod>> = expected.map(|e| {
        e.tables
            .into_iter()
            .map(|t| (qualified(&t.schema, &t.name), t.method))
            .collect()
    });
    let mut done = HashMap::new();
    while let Some(table) = loaded.recv().await {
        let method = match &methods {
            Some(methods) => match methods.get(&table) {
                Some(&method) => method,
                None => continue,
            },
            None => HashMethod::Columns,
        };
        let Some((schema, name)) = table.split_once('.').filter(|(_, n)| !n.contains('.')) else {
            continue;
        };
        let t = TableRef {
            schema: schema.to_owned(),
            name: name.to_owned(),
            size_bytes: 0,
        };
        let result = async {
            let mut conn = pool.acquire().await?;
            fingerprint::table_fingerprint(&mut conn, &t, method).await
        }
        .await;
        match result {
            Ok(f) => {
                done.insert(table, f);
            }
            Err(e) => tracing::debug!(error = %e, %table, "left for the check after the restore"),
        }
    }
    done
}

fn shadow_name(live: &str, job: Uuid) -> String {
    format!("{live}_restore_{}", &job.simple().to_string()[..12])
}
