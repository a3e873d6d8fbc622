//! Start-up recovery: after a crash, leave no stale lock, no running job
//! that nobody runs, no half-written file, and a catalog that matches the
//! disk.

use std::collections::HashSet;

use serde::Serialize;

use crate::catalog;
use crate::engine::Engine;
use crate::lock;
use crate::storage::{self, PARTIAL_SUFFIX};
use crate::Result;

/// What recovery did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct RecoveryReport {
    pub interrupted_jobs: u64,
    pub removed_partials: Vec<String>,
    pub marked_missing: Vec<String>,
    pub reimported: Vec<String>,
    pub released_lock: bool,
}

impl Engine {
    /// Runs at start-up, before serving. Safe with other instances running:
    /// it leaves alone the job and file of a lease that is still alive.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let control = &self.dbs().control;
        let dir = &self.config().backup_dir;
        let mut report = RecoveryReport::default();

        // A lease whose holder is gone is released (its job interrupted).
        let mut live_job = None;
        if let Some(info) = self.lock_status().await? {
            let mut tx = lock::begin(control).await?;
            let probe = lock::LockRequest {
                instance_id: self.instance_id(),
                job_id: None,
                operation_type: "recovery",
                actor: &crate::audit::Actor {
                    id: None,
                    name: "recovery".into(),
                    client_ip: None,
                },
                lease_timeout: self.config().lease_timeout,
            };
            match lock::acquire_in(&mut tx, &probe).await {
                Ok(()) => {
                    // It was abandoned: we took it over only to drop it.
                    sqlx::query("DELETE FROM operation_lock WHERE id = 1")
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    report.released_lock = true;
                    // Taking the lease over interrupted its job.
                    report.interrupted_jobs += u64::from(info.job_id.is_some());
                }
                Err(crate::Error::Busy(_)) => live_job = info.job_id,
                Err(other) => return Err(other),
            }
        }

        // Nothing is swapping: no maintenance mode, no shadow databases,
        // and no more previous databases than are to be kept (a server
        // stopped right after a restore may not have dropped the oldest).
        if live_job.is_none() {
            crate::settings::maintenance_off(control).await?;
            self.drop_shadows(None).await;
            if let Err(e) = self.trim_previous_databases().await {
                tracing::error!(error = ?e, "could not drop old previous databases");
            }
        }

        // Jobs still marked running whose lease is gone were interrupted.
        // A restore or undo stopped after its switch has taken effect (the
        // two renames are one transaction: all or nothing), so say how to
        // tell which; a backup stopped anywhere has kept nothing.
        let interrupted = sqlx::query(
            &format!(
                "UPDATE jobs SET status = 'interrupted', finished_at = now(),
                        message = CASE WHEN kind IN ('restore', 'undo') THEN {}
                          ELSE 'Interrupted: the server stopped while this job was running. Nothing was kept; start it again.'
                        END
                 WHERE status IN ('queued', 'running') AND id IS DISTINCT FROM $1",
                crate::lock::SWITCH_INTERRUPTED
            ),
        )
        .bind(live_job)
        .execute(control)
        .await?;
        report.interrupted_jobs += interrupted.rows_affected();
        sqlx::query(
            "UPDATE backup_history SET status = 'failed'
             WHERE status = 'running' AND job_id IS DISTINCT FROM $1",
        )
        .bind(live_job)
        .execute(control)
        .await?;
        let live_file: Option<String> = match live_job {
            Some(job) => {
                sqlx::query_scalar("SELECT filename FROM backup_history WHERE job_id = $1")
                    .bind(job)
                    .fetch_optional(control)
                    .await?
            }
            None => None,
        };

        // Half-written files, and files whose backup failed.
        let failed: HashSet<String> = catalog::with_status(control, "failed")
            .await?
            .into_iter()
            .map(|b| b.filename)
            .collect();
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(PARTIAL_SUFFIX);
            let is_leftover = match stem {
                Some(stem) => storage::is_archive_name(stem) && live_file.as_deref() != Some(stem),
                None => failed.contains(&name),
            };
            if is_leftover && entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                storage::remove_if_exists(&entry.path())?;
                report.removed_partials.push(name);
            }
        }

        // Completed entries whose file vanished are marked, not dropped.
        for backup in catalog::with_status(control, "completed").await? {
            if storage::open_archive(dir, &backup.filename).is_err() {
                catalog::set_status(control, backup.id, "missing").await?;
                report.marked_missing.push(backup.filename);
            }
        }

        // Archives with a sidecar but no entry come back (catalog rebuilt from disk).
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !storage::is_archive_name(&name) || catalog::name_taken(control, &name).await? {
                continue;
            }
            let Some(manifest) = storage::read_manifest(dir, &name) else {
                tracing::warn!(file = %name, "an archive without a manifest is in the backup directory; left alone");
                continue;
            };
            let on_disk = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if manifest.filename != name || manifest.size_bytes != on_disk {
                tracing::warn!(file = %name, "an archive's manifest does not match it; not imported");
                continue;
            }
            catalog::import(control, &manifest).await?;
            report.reimported.push(name);
        }
        if report != RecoveryReport::default() {
            tracing::warn!(?report, "start-up recovery repaired the backup state");
        }
        Ok(report)
    }
}
