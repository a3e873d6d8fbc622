//! Start-up recovery: after a crash, leave no stale lock, no running job
//! that nobody runs, no half-written file, and a catalog that matches the
//! disk (when the backup directory can be used at all: a missing or
//! unreadable one is an outage, left alone and reported, not a reason to
//! mark every backup missing).

use std::collections::HashSet;

use lms_types::{BackupStatus, Operation};
use serde::Serialize;
use uuid::Uuid;

use crate::catalog;
use crate::engine::Engine;
use crate::jobs::lock;
use crate::storage::{self, PARTIAL_SUFFIX};
use crate::Result;

/// What recovery did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RecoveryReport {
    pub interrupted_jobs: u64,
    pub removed_partials: Vec<String>,
    pub marked_missing: Vec<String>,
    /// Missing backups whose file was back, intact.
    pub found_again: Vec<String>,
    pub reimported: Vec<String>,
    /// Why the backup directory was left alone, if it was.
    pub backup_dir_unavailable: Option<String>,
    pub released_lock: bool,
}

impl Engine {
    /// Watches, for as long as the process runs, for a switch abandoned by
    /// another process: maintenance mode on while no live lease covers it
    /// (its holder died mid-switch). This instance then repairs what
    /// start-up recovery would, so the site does not stay in maintenance
    /// until some server restarts.
    pub fn watch_for_abandoned_switches(&self) {
        self.every_heartbeat(
            "could not check for an abandoned switch",
            |engine| async move { engine.repair_abandoned_switch().await.map(|_| ()) },
        );
    }

    /// Runs `check` every heartbeat for as long as the process runs,
    /// logging `failed` with the error when it fails.
    pub(crate) fn every_heartbeat<F, Fut>(&self, failed: &'static str, check: F)
    where
        F: Fn(Engine) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = crate::Result<()>> + Send,
    {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(engine.config().heartbeat_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = check(engine.clone()).await {
                    tracing::warn!(error = ?e, "{failed}");
                }
            }
        });
    }

    /// One look for an abandoned switch, repaired if found.
    async fn repair_abandoned_switch(&self) -> Result<()> {
        if crate::settings::maintenance(&self.dbs().control)
            .await?
            .is_none()
        {
            return Ok(());
        }
        let abandoned = match self.lock_status().await? {
            None => true,
            Some(info) => {
                info.stale || lock::holder_is_dead(&info.holder_instance, self.instance_id())
            }
        };
        if !abandoned {
            return Ok(());
        }
        tracing::warn!("maintenance mode is on but no live operation holds the lock; repairing");
        self.dbs()
            .repair_interrupted_swap(self.config().lease_timeout)
            .await?;
        self.recover().await?;
        Ok(())
    }

    /// Drops every shadow database, waiting a little for the sessions of a
    /// process that just died to go (PostgreSQL notices a vanished client
    /// within moments). Called with the lock held.
    async fn drop_orphan_shadows(&self) -> Result<()> {
        // A restore killed half-way leaves the restore role able to log in.
        if let Err(e) = self.close_restore_role().await {
            tracing::warn!(error = %e, "could not close the restore role");
        }
        for _ in 0..20 {
            if self.shadow_databases().await?.is_empty() {
                return Ok(());
            }
            self.drop_shadows(None).await;
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let left = self.shadow_databases().await?;
        if !left.is_empty() {
            tracing::error!(
                ?left,
                "shadow databases could not be dropped; the next start-up tries again"
            );
        }
        Ok(())
    }

    /// Runs at start-up, before serving. Safe with other instances running:
    /// it leaves alone the job and file of a lease that is still alive.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let live_job = self.repair_databases(&mut report).await?;
        let live_file = self.interrupt_orphaned_jobs(&mut report, live_job).await?;
        self.tidy_backup_dir(&mut report, live_file.as_deref())
            .await?;
        let repaired = RecoveryReport {
            backup_dir_unavailable: None,
            ..report.clone()
        };
        if repaired != RecoveryReport::default() {
            tracing::warn!(?report, "start-up recovery repaired the backup state");
        }
        Ok(report)
    }

    /// Takes the lock (as "recovery") and puts the databases right: no
    /// maintenance mode, no copies, no more previous databases than are
    /// kept. Returns the job of a lease that is still alive (left alone
    /// with its job, file and databases), if any.
    async fn repair_databases(&self, report: &mut RecoveryReport) -> Result<Option<Uuid>> {
        let control = &self.dbs().control;
        // The lock is taken (as "recovery") for the repair of the databases,
        // so no operation starts in the middle of it; a lease whose holder
        // is gone is taken over (its job interrupted); a live one is left
        // alone with its job, file and databases.
        let abandoned = self.lock_status().await?;
        let probe = lock::LockRequest {
            instance_id: self.instance_id(),
            job_id: None,
            operation: Operation::Recovery,
            actor: &crate::audit::Actor::system("recovery"),
            lease_timeout: self.config().lease_timeout,
        };
        let mut tx = lock::begin(control).await?;
        let mut live_job = None;
        let held = match lock::acquire_in(&mut tx, &probe).await {
            Ok(()) => {
                tx.commit().await?;
                if let Some(info) = &abandoned {
                    report.released_lock = true;
                    // Taking the lease over interrupted its job.
                    report.interrupted_jobs += u64::from(info.job_id.is_some());
                }
                true
            }
            Err(crate::Error::Busy(info)) => {
                live_job = info.job_id;
                false
            }
            Err(other) => return Err(other),
        };

        // Nothing is swapping: no maintenance mode, no shadow databases,
        // and no more previous databases than are to be kept (a server
        // stopped right after a restore may not have dropped the oldest).
        if held {
            let repaired = async {
                crate::settings::maintenance_off(control).await?;
                self.drop_orphan_shadows().await?;
                if let Err(e) = self.trim_previous_databases().await {
                    tracing::error!(error = ?e, "could not drop old previous databases");
                }
                Ok::<_, crate::Error>(())
            }
            .await;
            lock::release(control, self.instance_id(), None).await?;
            repaired?;
        }
        let taken_over = abandoned.and_then(|info| info.job_id).filter(|_| held);
        if let Some(job) = taken_over {
            self.sign_out_if_switching(job).await?;
        }
        Ok(live_job)
    }

    /// A restore or undo stopped while switching may have switched the
    /// databases and not yet signed everyone out: sign everyone out now
    /// (harmless if the switch had not happened).
    async fn sign_out_if_switching(&self, job: Uuid) -> Result<()> {
        let switching = crate::jobs::get(&self.dbs().control, job)
            .await?
            .is_some_and(|j| j.was_switching());
        if switching {
            self.sign_out_after_interrupted_switch().await?;
        }
        Ok(())
    }

    async fn sign_out_after_interrupted_switch(&self) -> Result<()> {
        self.end_all_sessions().await?;
        tracing::warn!("a restore or undo was stopped while switching: everyone signs in again");
        Ok(())
    }

    /// Marks jobs whose lease is gone interrupted (all but `live_job`).
    /// Returns the file the live job (if any) is writing.
    async fn interrupt_orphaned_jobs(
        &self,
        report: &mut RecoveryReport,
        live_job: Option<Uuid>,
    ) -> Result<Option<String>> {
        let control = &self.dbs().control;
        // Jobs still marked running whose lease is gone were interrupted
        // (and their backups failed). A restore or undo stopped after its
        // switch has taken effect (the two renames are one transaction: all
        // or nothing), so it says how to tell which; a backup stopped
        // anywhere has kept nothing.
        let switching = lock::interrupt_jobs(
            &mut *control.acquire().await?,
            None,
            live_job,
            "Interrupted: the server stopped while this job was running. Nothing was kept; start it again.",
        )
        .await?;
        report.interrupted_jobs += switching.len() as u64;
        if switching.contains(&true) {
            self.sign_out_after_interrupted_switch().await?;
        }
        Ok(match live_job {
            Some(job) => {
                sqlx::query_scalar("SELECT filename FROM backup_history WHERE job_id = $1")
                    .bind(job)
                    .fetch_optional(control)
                    .await?
            }
            None => None,
        })
    }

    /// Removes half-written files (but the live job's) and failed backups'
    /// files, holds the catalog against the files (completed entries whose
    /// file vanished become `missing`, missing ones whose file is back
    /// `completed`), and brings back archives that have a sidecar but no
    /// entry. Nothing at all while the directory cannot be used.
    async fn tidy_backup_dir(
        &self,
        report: &mut RecoveryReport,
        live_file: Option<&str>,
    ) -> Result<()> {
        let control = &self.dbs().control;
        if let Some(unavailable) = self.backup_dir_unavailable().await? {
            report.backup_dir_unavailable = Some(unavailable.message);
            return Ok(());
        }
        // Half-written files, and files whose backup failed.
        let dir = self.backup_dir();
        let failed: HashSet<String> = catalog::with_status(control, BackupStatus::Failed)
            .await?
            .into_iter()
            .map(|b| b.filename)
            .collect();
        let mut leftovers = Vec::new();
        for entry in dir.entries().await? {
            let is_leftover = match entry.name.strip_suffix(PARTIAL_SUFFIX) {
                // A drill's scratch copy (`<archive>.drill-<job>.partial`).
                Some(stem) if stem.contains(crate::offsite::DRILL_INFIX) => stem
                    .rsplit_once(crate::offsite::DRILL_INFIX)
                    .is_some_and(|(archive, _)| storage::is_archive_name(archive)),
                Some(stem) => storage::is_archive_name(stem) && live_file != Some(stem),
                None => failed.contains(&entry.name),
            };
            if is_leftover && entry.is_file {
                leftovers.push(dir.path().join(&entry.name));
                report.removed_partials.push(entry.name);
            }
        }
        if !leftovers.is_empty() {
            dir.remove(leftovers).await?;
        }

        // Entries whose file vanished are marked, not dropped; and back.
        let checked = self
            .check_backup_files(&crate::audit::Actor::system("recovery"))
            .await?;
        report.marked_missing = checked.newly_missing;
        report.found_again = checked.found;

        // Archives with a sidecar but no entry come back (catalog rebuilt from disk).
        for entry in dir.entries().await? {
            let name = entry.name;
            if !storage::is_archive_name(&name) || catalog::name_taken(control, &name).await? {
                continue;
            }
            let Some(manifest) = dir.read_manifest(&name).await else {
                tracing::warn!(file = %name, "an archive without a manifest is in the backup directory; left alone");
                continue;
            };
            if manifest.filename != name || manifest.size_bytes != entry.len {
                tracing::warn!(file = %name, "an archive's manifest does not match it; not imported");
                continue;
            }
            catalog::import(control, &manifest).await?;
            report.reimported.push(name);
        }
        Ok(())
    }
}
