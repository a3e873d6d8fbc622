//! The catalog held against the backup directory: a completed backup whose
//! file is gone becomes `missing`; a missing one whose file is back, the
//! same archive (size and SHA-256 as catalogued), becomes `completed` again.
//! Run at start-up, when the directory comes back after an outage, and when
//! an administrator asks (`lms-admin backup recheck`, the console's "Check
//! files again"). Never while the directory itself cannot be used: then
//! every file would look gone, and that is an outage, not a loss.

use lms_types::{AuditAction, AuditOutcome, BackupStatus};
use serde::Serialize;

use crate::audit::{self, Actor, Event};
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::{Error, Result};

/// What a look at the files found, by archive name.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    /// Completed backups whose file is gone: now `missing`.
    pub newly_missing: Vec<String>,
    /// Missing backups whose file is back, intact: `completed` again.
    pub found: Vec<String>,
    /// Missing backups whose file is still not there.
    pub still_missing: Vec<String>,
    /// Missing backups with a file of their name that is not the archive
    /// catalogued (another size or checksum): still `missing`.
    pub changed: Vec<String>,
}

impl Engine {
    /// Holds the catalog against the backup directory, and audits (under
    /// `actor`) every entry whose status it changes. Refused with
    /// [`Error::StorageUnavailable`] while the directory cannot be used.
    pub async fn check_backup_files(&self, actor: &Actor) -> Result<FileCheck> {
        self.require_backup_dir().await?;
        let control = &self.dbs().control;
        let dir = self.backup_dir();
        let mut check = FileCheck::default();

        let mut gone = Vec::new();
        for backup in catalog::with_status(control, BackupStatus::Completed).await? {
            match dir.open_archive(&backup.filename).await {
                Ok(_) => {}
                Err(Error::NotFound(_)) => gone.push(backup),
                // A read error is not a missing file.
                Err(e) => {
                    tracing::warn!(error = ?e, file = %backup.filename, "could not open a backup's file; its status is left as it is")
                }
            }
        }
        let mut back = Vec::new();
        for backup in catalog::with_status(control, BackupStatus::Missing).await? {
            match dir.hash_archive(&backup.filename).await {
                Ok((size, sha256))
                    if Some(size as i64) == backup.size_bytes
                        && Some(&sha256) == backup.sha256.as_ref() =>
                {
                    back.push(backup)
                }
                Ok(_) => {
                    tracing::warn!(file = %backup.filename, "a missing backup's name is back with another content; it stays missing");
                    check.changed.push(backup.filename);
                }
                Err(Error::NotFound(_)) => check.still_missing.push(backup.filename),
                Err(e) => {
                    tracing::warn!(error = ?e, file = %backup.filename, "could not read a missing backup's file");
                    check.still_missing.push(backup.filename);
                }
            }
        }

        // Had the directory gone while it was being read, every file after
        // that would have looked gone: look at it again before marking.
        if !gone.is_empty() {
            self.require_backup_dir().await?;
        }
        for backup in gone {
            if self
                .move_entry(
                    &backup,
                    BackupStatus::Completed,
                    BackupStatus::Missing,
                    actor,
                )
                .await?
            {
                self.verified_archives().forget(&backup.filename);
                check.newly_missing.push(backup.filename);
            }
        }
        for backup in back {
            if self
                .move_entry(
                    &backup,
                    BackupStatus::Missing,
                    BackupStatus::Completed,
                    actor,
                )
                .await?
            {
                check.found.push(backup.filename);
            }
        }
        if !check.newly_missing.is_empty() || !check.found.is_empty() {
            tracing::warn!(
                missing = ?check.newly_missing,
                found = ?check.found,
                "the backup catalog was brought in line with the backup directory"
            );
        }
        Ok(check)
    }

    /// Moves an entry between statuses (if no one else did first) and
    /// audits the change in the same transaction.
    async fn move_entry(
        &self,
        backup: &Backup,
        from: BackupStatus,
        to: BackupStatus,
        actor: &Actor,
    ) -> Result<bool> {
        let mut tx = self.dbs().control.begin().await?;
        if !catalog::change_status(&mut *tx, backup.id, from, to).await? {
            return Ok(false);
        }
        let (action, outcome, detail) = match to {
            BackupStatus::Missing => (
                AuditAction::BackupMissing,
                AuditOutcome::Failure,
                "its file is no longer in the backup directory",
            ),
            _ => (
                AuditAction::BackupFound,
                AuditOutcome::Success,
                "its file is back in the backup directory, with the size and SHA-256 catalogued",
            ),
        };
        audit::record(
            &mut *tx,
            &Event {
                actor,
                action,
                target: Some(&backup.filename),
                outcome,
                detail: Some(detail),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
