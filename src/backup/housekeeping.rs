//! Short operations on the catalog: delete, download, and releasing a
//! stuck lock. Delete takes the operation lock like any other operation
//! (as retention does, `crate::retention`), so it never touches a backup
//! something else is using.

use crate::audit::{self, Actor, Event};
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs::lock::{self, LockInfo};
use crate::{Error, Result};
use lms_types::{AuditAction, AuditOutcome, BackupStatus, Operation};

/// An archive opened for download, checked against its manifest.
pub struct Download {
    pub file: std::fs::File,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// The file is kept encrypted (`ENCRYPT_LOCAL`): it is served as it is,
    /// for the age tool and the key to open.
    pub encrypted: bool,
}

impl Download {
    /// The name the file is saved under.
    pub fn attachment_name(&self) -> String {
        if self.encrypted {
            format!("{}.age", self.filename)
        } else {
            self.filename.clone()
        }
    }
}

impl Engine {
    /// Deletes a backup: archive, sidecar and catalog row, as a job under
    /// the lock. Audited, refusals included.
    pub async fn delete_backup(&self, id: i64, actor: &Actor) -> Result<Backup> {
        let backup = catalog::get_row(&self.dbs().control, id).await?;
        self.run_short_job(
            Operation::Delete,
            actor,
            (AuditAction::BackupDelete, &backup.filename),
            async {
                let backup = catalog::get_row(&self.dbs().control, id).await?;
                if backup.status == BackupStatus::Running {
                    return Err(Error::Conflict(
                        "This backup is still being written; wait for it to finish.".into(),
                    ));
                }
                if let Some(reason) = &backup.pinned_reason {
                    return Err(Error::Conflict(format!(
                        "This backup is pinned (\"{reason}\"); unpin it first to delete it."
                    )));
                }
                self.backup_dir().remove_backup(&backup.filename).await?;
                self.verified_archives().forget(&backup.filename);
                catalog::delete_row(&self.dbs().control, id).await?;
                self.delete_offsite(&backup.filename, backup.offsite_state, actor)
                    .await;
                Ok(backup)
            },
        )
        .await
    }

    /// Opens a completed backup for download after checking that the file
    /// still is what the manifest says (size and SHA-256). The file is read
    /// in full the first time and again whenever it changed; the requests
    /// that continue a download (ranges, HEAD) find it proven already. Not
    /// audited: one download can take many requests, so the caller records
    /// the one that starts it with [`Engine::audit_download`].
    pub async fn open_download(&self, id: i64) -> Result<Download> {
        let backup = catalog::get_row(&self.dbs().control, id).await?;
        // Gone here but verified off-site: fetched back first.
        let backup = self.ensure_local(&backup).await?;
        match backup.status {
            BackupStatus::Completed => {}
            BackupStatus::Running => {
                return Err(Error::Conflict(
                    "This backup is still being written.".into(),
                ))
            }
            BackupStatus::Failed | BackupStatus::Missing => {
                return Err(Error::NotFound("backup file".into()))
            }
        }
        let (Some(expected_size), Some(expected_sha)) = (backup.size_bytes, backup.sha256.clone())
        else {
            return Err(Error::NotFound("backup file".into()));
        };
        let proven = self.verified_archives();
        let checked = self
            .backup_dir()
            .open_checked(
                &backup.filename,
                proven.identity(&backup.filename, &expected_sha),
            )
            .await?;
        if let Some(sha256) = &checked.sha256 {
            if checked.size != expected_size as u64 || *sha256 != expected_sha {
                proven.forget(&backup.filename);
                tracing::error!(filename = %backup.filename, size = checked.size, expected_size, "archive does not match its manifest");
                return Err(Error::Conflict(
                    "This backup's file no longer matches its checksum: it has been changed or damaged \
                     and will not be served. Use another backup."
                        .into(),
                ));
            }
            if checked.settled {
                proven.remember(&backup.filename, checked.identity, &expected_sha);
            }
        }
        let encrypted = catalog::get(&self.dbs().control, backup.id)
            .await?
            .manifest
            .is_some_and(|m| m.kept_encrypted().is_some());
        Ok(Download {
            file: checked.file,
            filename: backup.filename,
            size: checked.size,
            sha256: expected_sha,
            encrypted,
        })
    }

    /// Records a download (or a refused one) in the audit log.
    pub async fn audit_download(&self, id: i64, actor: &Actor, opened: &Result<Download>) {
        let target = opened
            .as_ref()
            .map(|d| d.filename.clone())
            .unwrap_or_else(|_| format!("id {id}"));
        audit::record_result(
            &self.dbs().control,
            actor,
            AuditAction::BackupDownload,
            &target,
            opened,
        )
        .await;
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
                action: AuditAction::LockForceRelease,
                target: None,
                outcome: AuditOutcome::Success,
                detail: Some(&detail),
            },
        )
        .await;
        Ok(released)
    }
}
