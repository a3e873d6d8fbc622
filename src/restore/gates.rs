//! What must hold before a restore changes anything.

use std::path::PathBuf;

use crate::catalog::Backup;
use crate::engine::Engine;
use crate::jobs::messages::human;
use crate::postgres::archive;
use crate::storage::{self, Manifest};
use crate::{Error, Result};
use lms_types::BackupKind;

impl Engine {
    /// The file is the one the manifest describes (size and SHA-256) and
    /// this server's pg_restore can read it. Returns its path.
    pub(super) async fn check_archive(&self, backup: &Backup) -> Result<PathBuf> {
        let dir = self.backup_dir();
        let (size, sha256) = dir
            .hash_archive(&backup.filename)
            .await
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
        let path = storage::archive_path(dir.path(), &backup.filename)?;
        archive::list(&self.tools().pg_restore, &path)
            .await
            .map_err(|_| {
                Error::Invalid(format!(
                    "{} cannot be read by this server's pg_restore.",
                    backup.filename
                ))
            })?;
        Ok(path)
    }

    /// The role may create databases and owns the LMS database; uploaded
    /// archives are never restored with superuser rights.
    pub(super) async fn check_restore_privileges(&self, kind: BackupKind) -> Result<()> {
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
        if superuser && kind == BackupKind::Uploaded {
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
    pub(super) async fn check_room_for_copy(&self, manifest: Option<&Manifest>) -> Result<()> {
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
                human(needed),
                human(free)
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
        storage::BackupDir::new(dir).free_space().await.ok()
    }
}
