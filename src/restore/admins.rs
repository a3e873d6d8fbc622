//! Who can sign in once a backup is restored. A restore replaces the
//! `users` table with the backup's, so an administrator demoted or
//! deactivated since comes back, and one created since (perhaps the one
//! restoring) is gone. Before the switch, the console and the CLI show the
//! administrators the backup holds and warn whoever would be locked out.
//!
//! The accounts are read from the archive itself (checked against its
//! checksum first, so they are those a restore would bring back), once:
//! the answer is kept in the catalog row, since a completed archive never
//! changes.

use sqlx::PgPool;

use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::postgres::accounts::{self, password_tag, ArchivedAdmin};
use crate::postgres::archive::Input;
use crate::storage::encryption;
use crate::storage::Manifest;
use crate::{Error, Result};
use lms_types::{AccessAfterRestore, BackupStatus};

/// What restoring a backup would do to who can sign in to the console.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminsAfterRestore {
    pub backup: Backup,
    /// The administrators the backup holds, by username.
    pub admins: Vec<ArchivedAdmin>,
    /// Whether the one asking could sign in afterwards (`None` when nobody
    /// was named).
    pub access: Option<AccessAfterRestore>,
    /// Administrators who could sign in after the restore but cannot now
    /// (deactivated, demoted or removed since the backup), by username.
    pub returning: Vec<String>,
    /// Administrators who can sign in now but could not after the restore,
    /// by username.
    pub leaving: Vec<String>,
}

impl AdminsAfterRestore {
    /// Some administrator could sign in after the restore.
    pub fn anyone_can_sign_in(&self) -> bool {
        self.admins.iter().any(ArchivedAdmin::can_sign_in)
    }
}

impl Engine {
    /// What restoring backup `id` would do to who can sign in, seen by
    /// `username` (the administrator asking; the CLI passes the login name
    /// of whoever runs it). [`Error::Invalid`] when the backup is not
    /// completed, its file is missing or changed, or its accounts cannot be
    /// read (no users table).
    pub async fn admins_after_restore(
        &self,
        id: i64,
        username: Option<&str>,
    ) -> Result<AdminsAfterRestore> {
        let backup = catalog::get_row(&self.dbs().control, id).await?;
        let admins = self.backup_admins(&backup).await?;
        let live = live_admins(&self.dbs().lms).await?;
        let access = match username {
            Some(name) => {
                let now = live_password_tag(&self.dbs().lms, name).await?;
                Some(access_of(&admins, name, now.as_deref()))
            }
            None => None,
        };
        let signs_in = |list: &[ArchivedAdmin], name: &str| {
            list.iter().any(|a| a.username == name && a.can_sign_in())
        };
        let returning = admins
            .iter()
            .filter(|a| a.can_sign_in() && !signs_in(&live, &a.username))
            .map(|a| a.username.clone())
            .collect();
        let leaving = live
            .iter()
            .filter(|a| a.can_sign_in() && !signs_in(&admins, &a.username))
            .map(|a| a.username.clone())
            .collect();
        Ok(AdminsAfterRestore {
            backup,
            admins,
            access,
            returning,
            leaving,
        })
    }

    /// The administrators a completed backup holds: from its catalog row
    /// once read, else from its archive, proven first to be the file its
    /// manifest describes.
    async fn backup_admins(&self, backup: &Backup) -> Result<Vec<ArchivedAdmin>> {
        if backup.status != BackupStatus::Completed {
            return Err(Error::Invalid(format!(
                "Only completed backups can be restored; {} is {}.",
                backup.filename, backup.status
            )));
        }
        let control = &self.dbs().control;
        if let Some(known) = recorded_admins(control, backup.id).await? {
            return Ok(known);
        }
        let file = self.open_proven_archive(backup).await?;
        let manifest = catalog::get(control, backup.id).await?.manifest;
        let archive = match manifest.as_ref().and_then(Manifest::kept_encrypted) {
            None => Input::File(file),
            Some(encryption) => Input::Stream(Box::new(
                encryption::decrypt(
                    tokio::fs::File::from_std(file),
                    encryption,
                    &self.config().decryption,
                    &backup.filename,
                )
                .await?,
            )),
        };
        let admins = accounts::read_admins(&self.tools().pg_restore, archive)
            .await
            .map_err(|e| match e {
                Error::ToolFailed { .. } => {
                    tracing::error!(error = ?e, filename = %backup.filename, "pg_restore could not read the users table");
                    Error::Invalid(format!(
                        "{} cannot be read by this server's pg_restore.",
                        backup.filename
                    ))
                }
                other => other,
            })?;
        record_admins(control, backup, &admins).await?;
        Ok(admins)
    }

    /// The backup's archive, open at its start, once it is known to be the
    /// file its manifest describes (size and SHA-256; read in full unless
    /// it is the file proven before).
    async fn open_proven_archive(&self, backup: &Backup) -> Result<std::fs::File> {
        let (Some(size), Some(sha256)) = (backup.size_bytes, backup.sha256.as_deref()) else {
            return Err(Error::Invalid(format!(
                "{} has no recorded checksum.",
                backup.filename
            )));
        };
        let proven = self.verified_archives();
        let checked = self
            .backup_dir()
            .open_checked(&backup.filename, proven.identity(&backup.filename, sha256))
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::Invalid(format!(
                    "The file of {} is missing from the backup directory.",
                    backup.filename
                )),
                other => other,
            })?;
        if let Some(actual) = &checked.sha256 {
            if checked.size != size as u64 || actual != sha256 {
                proven.forget(&backup.filename);
                return Err(Error::Invalid(format!(
                    "{} no longer matches its checksum: it was changed or damaged. Use another backup.",
                    backup.filename
                )));
            }
            if checked.settled {
                proven.remember(&backup.filename, checked.identity, sha256);
            }
        }
        Ok(checked.file)
    }
}

/// Whether `username` could sign in after the restore, given the
/// administrators the backup holds and the digest of their password now.
fn access_of(
    admins: &[ArchivedAdmin],
    username: &str,
    tag_now: Option<&str>,
) -> AccessAfterRestore {
    match admins.iter().find(|a| a.username == username) {
        None => AccessAfterRestore::NotAdmin,
        Some(a) if !a.is_active => AccessAfterRestore::Deactivated,
        Some(a) => match a.password_tag.as_deref() {
            None => AccessAfterRestore::NoPassword,
            Some(then) if Some(then) == tag_now => AccessAfterRestore::Kept,
            Some(_) => AccessAfterRestore::OlderPassword,
        },
    }
}

/// The administrators of the live LMS database, as [`ArchivedAdmin`]s.
async fn live_admins(lms: &PgPool) -> Result<Vec<ArchivedAdmin>> {
    let rows: Vec<(String, String, bool, String)> = sqlx::query_as(
        "SELECT username, full_name, is_active, password_hash FROM users
         WHERE role = 'admin' ORDER BY username",
    )
    .fetch_all(lms)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(username, full_name, is_active, hash)| ArchivedAdmin {
            username,
            full_name,
            is_active,
            password_tag: password_tag(&hash),
        })
        .collect())
}

/// The digest of `username`'s password hash now, if that account exists
/// and has a password that signs in.
async fn live_password_tag(lms: &PgPool, username: &str) -> Result<Option<String>> {
    let hash: Option<String> =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(lms)
            .await?;
    Ok(hash.as_deref().and_then(password_tag))
}

/// The administrators recorded for a backup, if they have been read.
async fn recorded_admins(control: &PgPool, id: i64) -> Result<Option<Vec<ArchivedAdmin>>> {
    let recorded: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT administrators FROM backup_history WHERE id = $1")
            .bind(id)
            .fetch_optional(control)
            .await?
            .flatten();
    // A record this version cannot read is read again from the archive.
    Ok(recorded.and_then(|v| serde_json::from_value(v).ok()))
}

/// Records the administrators read from a backup's archive, unless the row
/// has changed meanwhile (deleted, or another file under its name).
async fn record_admins(control: &PgPool, backup: &Backup, admins: &[ArchivedAdmin]) -> Result<()> {
    sqlx::query(
        "UPDATE backup_history SET administrators = $2
         WHERE id = $1 AND sha256 IS NOT DISTINCT FROM $3 AND status = $4",
    )
    .bind(backup.id)
    .bind(sqlx::types::Json(admins))
    .bind(&backup.sha256)
    .bind(BackupStatus::Completed)
    .execute(control)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(username: &str, is_active: bool, tag: Option<&str>) -> ArchivedAdmin {
        ArchivedAdmin {
            username: username.into(),
            full_name: String::new(),
            is_active,
            password_tag: tag.map(Into::into),
        }
    }

    #[test]
    fn access_follows_the_backups_account() {
        let admins = [
            admin("ann", true, Some("p1")),
            admin("bob", false, Some("p2")),
            admin("cy", true, None),
        ];
        use AccessAfterRestore::*;
        assert_eq!(access_of(&admins, "ann", Some("p1")), Kept);
        assert_eq!(access_of(&admins, "ann", Some("p9")), OlderPassword);
        assert_eq!(access_of(&admins, "ann", None), OlderPassword);
        assert_eq!(access_of(&admins, "bob", Some("p2")), Deactivated);
        assert_eq!(access_of(&admins, "cy", None), NoPassword);
        assert_eq!(access_of(&admins, "dan", Some("p1")), NotAdmin);
        assert_eq!(
            access_of(&admins, "ANN", Some("p1")),
            NotAdmin,
            "usernames are exact"
        );
    }
}
