//! Short operations on the catalog: delete, retention, download, and
//! releasing a stuck lock. Delete and retention take the operation lock like
//! any other operation, so they never touch a backup something else is using.

use std::future::Future;

use uuid::Uuid;

use crate::audit::{self, Actor, Event, Outcome};
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs;
use crate::jobs::lock::{self, LockInfo, LockRequest};
use crate::storage;
use crate::{Error, Result};

/// An archive opened for download, checked against its manifest.
pub struct Download {
    pub file: std::fs::File,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

impl Engine {
    /// Runs a short operation as a job under the operation lock.
    async fn run_exclusive<T, F>(&self, kind: &str, actor: &Actor, op: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let control = &self.dbs().control;
        let job_id = Uuid::new_v4();
        let mut tx = lock::begin(control).await?;
        jobs::insert_running(&mut *tx, job_id, kind, actor, self.instance_id(), kind).await?;
        lock::acquire_in(
            &mut tx,
            &LockRequest {
                instance_id: self.instance_id(),
                job_id: Some(job_id),
                operation_type: kind,
                actor,
                lease_timeout: self.config().lease_timeout,
            },
        )
        .await?;
        tx.commit().await?;
        let result = op.await;
        let (outcome, message) = match &result {
            Ok(_) => (jobs::Outcome::Succeeded, None),
            Err(e) => (
                jobs::Outcome::Failed,
                Some(crate::backup::failure_message(e)),
            ),
        };
        // End the job and free the lock together.
        let finished = async {
            let mut tx = control.begin().await?;
            jobs::finish(&mut *tx, job_id, outcome, message.as_deref()).await?;
            lock::release(&mut *tx, self.instance_id(), Some(job_id)).await?;
            tx.commit().await?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = finished {
            tracing::error!(error = ?e, "could not end a job and release the lock; the lease will expire");
        }
        result
    }

    /// Deletes a backup: archive, sidecar and catalog row, under the lock.
    pub async fn delete_backup(&self, id: i64, actor: &Actor) -> Result<Backup> {
        let backup = catalog::get_row(&self.dbs().control, id).await?;
        let result = self
            .run_exclusive("delete", actor, async {
                let backup = catalog::get_row(&self.dbs().control, id).await?;
                if backup.status == "running" {
                    return Err(Error::Conflict(
                        "This backup is still being written; wait for it to finish.".into(),
                    ));
                }
                self.remove_backup_files(&backup)?;
                catalog::delete_row(&self.dbs().control, id).await?;
                Ok(backup)
            })
            .await;
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let detail = result.as_ref().err().map(|e| e.to_string());
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor,
                action: "backup.delete",
                target: Some(&backup.filename),
                outcome,
                detail: detail.as_deref(),
            },
        )
        .await;
        result
    }

    /// Unlinks a backup's archive and sidecar (never following a symlink:
    /// unlinking a link removes the link only).
    fn remove_backup_files(&self, backup: &Backup) -> Result<()> {
        let dir = &self.config().backup_dir;
        storage::remove_if_exists(&storage::archive_path(dir, &backup.filename)?)?;
        storage::remove_if_exists(&storage::manifest_path(dir, &backup.filename)?)?;
        storage::sync_dir(dir)
    }

    /// Keeps the newest `MAX_BACKUPS_TO_KEEP` completed backups (never fewer
    /// than one) and deletes older completed ones. Failed entries are not
    /// counted and have no files. The caller holds the lock.
    pub(crate) async fn apply_retention(&self) -> Result<Vec<String>> {
        let keep = self.config().max_backups_to_keep.max(1) as usize;
        let completed = catalog::with_status(&self.dbs().control, "completed").await?;
        let mut removed = Vec::new();
        for old in completed.iter().skip(keep) {
            self.remove_backup_files(old)?;
            catalog::delete_row(&self.dbs().control, old.id).await?;
            tracing::info!(backup = %old.filename, "deleted by retention");
            removed.push(old.filename.clone());
        }
        Ok(removed)
    }

    /// Retention as its own operation (a job under the lock), audited.
    pub async fn cleanup_old(&self, actor: &Actor) -> Result<Vec<String>> {
        let removed = self
            .run_exclusive("cleanup", actor, self.apply_retention())
            .await?;
        let detail = format!("{} deleted", removed.len());
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor,
                action: "backup.cleanup",
                target: None,
                outcome: Outcome::Success,
                detail: Some(&detail),
            },
        )
        .await;
        Ok(removed)
    }

    /// Opens a completed backup for download after checking that the file
    /// still is what the manifest says (size and SHA-256). Audited.
    pub async fn open_download(&self, id: i64, actor: &Actor) -> Result<Download> {
        let result = self.open_verified(id).await;
        let target = result
            .as_ref()
            .map(|d| d.filename.clone())
            .unwrap_or_else(|_| format!("id {id}"));
        audit::record_result(
            &self.dbs().control,
            actor,
            "backup.download",
            &target,
            &result,
        )
        .await;
        result
    }

    async fn open_verified(&self, id: i64) -> Result<Download> {
        let backup = catalog::get_row(&self.dbs().control, id).await?;
        match backup.status.as_str() {
            "completed" => {}
            "running" => {
                return Err(Error::Conflict(
                    "This backup is still being written.".into(),
                ))
            }
            _ => return Err(Error::NotFound("backup file".into())),
        }
        let (Some(expected_size), Some(expected_sha)) = (backup.size_bytes, backup.sha256.clone())
        else {
            return Err(Error::NotFound("backup file".into()));
        };
        let dir = self.config().backup_dir.clone();
        let filename = backup.filename.clone();
        tokio::task::spawn_blocking(move || -> Result<Download> {
            use std::io::{Seek, SeekFrom};
            let mut file = storage::open_archive(&dir, &filename)?;
            let size = file.metadata()?.len();
            let matches = size == expected_size as u64
                && crate::postgres::archive::sha256_of(&mut file)?.1 == expected_sha;
            if !matches {
                tracing::error!(%filename, size, expected_size, "archive does not match its manifest");
                return Err(Error::Conflict(
                    "This backup's file no longer matches its checksum: it has been changed or damaged \
                     and will not be served. Use another backup."
                        .into(),
                ));
            }
            file.seek(SeekFrom::Start(0))?;
            Ok(Download { file, filename, size, sha256: expected_sha })
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
    }

    /// Removes the operation lock whoever holds it (its job is marked
    /// interrupted). Audited. Returns what was released.
    pub async fn force_release_lock(&self, actor: &Actor) -> Result<Option<LockInfo>> {
        let released =
            lock::force_release(&self.dbs().control, self.config().lease_timeout).await?;
        let detail = released
            .as_ref()
            .map(|l| {
                format!(
                    "{} held by {} since {}",
                    l.operation_type, l.locked_by, l.locked_at
                )
            })
            .unwrap_or_else(|| "the lock was free".into());
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor,
                action: "lock.force_release",
                target: None,
                outcome: Outcome::Success,
                detail: Some(&detail),
            },
        )
        .await;
        Ok(released)
    }
}
