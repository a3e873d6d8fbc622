//! What must hold before a restore changes anything.

use std::collections::BTreeSet;

use crate::catalog::Backup;
use crate::engine::Engine;
use crate::jobs::messages::human;
use crate::jobs::run::JobRun;
use crate::postgres::archive;
use crate::postgres::databases::quote_ident;
use crate::storage::{self, ArchiveSource, Manifest};
use crate::{Error, Result};

impl Engine {
    /// The file is the one the manifest describes (size and SHA-256) and
    /// this server's pg_restore can read it (one kept encrypted: a key set
    /// opens it). Returns where pg_restore reads it from and the tables it
    /// defines ("schema.name").
    pub(super) async fn check_archive(
        &self,
        backup: &Backup,
        manifest: Option<&Manifest>,
    ) -> Result<(ArchiveSource, Vec<String>)> {
        let dir = self.backup_dir();
        let path = storage::archive_path(dir.path(), &backup.filename)?;
        let source = ArchiveSource::stored(path, manifest, &self.config().decryption);
        // The checksum and pg_restore's reading of the table of contents at
        // once (pg_restore only lists it); the checksum's verdict comes first.
        let listed = async {
            // A missing or wrong key is said as such, before pg_restore runs.
            let input = source.input().await?;
            Ok::<_, Error>(
                archive::list(&self.tools().pg_restore, input)
                    .await
                    .map_err(|e| self.unreadable(&backup.filename, &e)),
            )
        };
        let (hashed, listed) = tokio::join!(dir.hash_archive(&backup.filename), listed);
        let (size, sha256) = hashed.map_err(|e| match e {
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
        let info = listed??;
        self.check_extensions(&backup.filename, &info.extensions)
            .await?;
        Ok((source, info.tables))
    }

    /// An archive a drill fetched from its off-site copy (its size and
    /// SHA-256 were checked as it came): this server's pg_restore reads it
    /// and has the extensions it needs.
    pub(super) async fn check_fetched_archive(
        &self,
        filename: &str,
        path: std::path::PathBuf,
        manifest: &Manifest,
    ) -> Result<(ArchiveSource, Vec<String>)> {
        let source = ArchiveSource::stored(path, Some(manifest), &self.config().decryption);
        let input = source.input().await?;
        let info = archive::list(&self.tools().pg_restore, input)
            .await
            .map_err(|e| self.unreadable(filename, &e))?;
        self.check_extensions(filename, &info.extensions).await?;
        Ok((source, info.tables))
    }

    /// Why this server's pg_restore cannot read an archive, naming what is
    /// missing when it is a newer pg_dump's.
    fn unreadable(&self, filename: &str, err: &Error) -> Error {
        let said = match err {
            Error::ToolFailed { stderr_tail, .. } => stderr_tail.as_str(),
            _ => "",
        };
        if said.contains("unsupported version") {
            Error::Invalid(format!(
                "{filename} was written by a newer pg_dump than this server's pg_restore \
                 (PostgreSQL {}) reads: install that PostgreSQL version's client tools and point \
                 POSTGRES_BIN_PATH at them. Nothing was changed.",
                self.tools().major
            ))
        } else {
            Error::Invalid(format!(
                "{filename} cannot be read by this server's pg_restore."
            ))
        }
    }

    /// Every extension the archive creates is available on the database
    /// server; else the restore (or drill) is refused before it starts,
    /// naming the missing ones.
    async fn check_extensions(&self, filename: &str, wanted: &[String]) -> Result<()> {
        if wanted.is_empty() {
            return Ok(());
        }
        let available: Vec<String> = sqlx::query_scalar(
            "SELECT name::text FROM pg_available_extensions WHERE name = ANY ($1)",
        )
        .bind(wanted)
        .fetch_all(&self.dbs().lms)
        .await?;
        let missing = missing_extensions(wanted, &available);
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "{filename} needs the PostgreSQL extension{} {}, which the database server does not \
             have: install {} on it (for example from the postgresql-contrib package) and try \
             again. Nothing was changed.",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        )))
    }

    /// The application role may create databases and owns the LMS
    /// database (it creates the copy and renames databases), and the restore
    /// role the copy is built as is set up (see `role`). Every restore runs
    /// the archive as the restore role, whatever the backup's kind: a backup
    /// made here of a database restored from an upload carries what the
    /// upload did.
    pub(super) async fn check_restore_privileges(&self) -> Result<()> {
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
        self.check_restore_role().await.map_err(|e| match e {
            Error::Config(message) => Error::Invalid(message),
            other => other,
        })
    }

    /// Every role the archive's privileges name exists here: a GRANT to a
    /// missing role would stop pg_restore half-way, so the restore is
    /// refused before it starts, naming them.
    pub(super) async fn check_roles_exist(&self, roles: &BTreeSet<String>) -> Result<()> {
        if roles.is_empty() {
            return Ok(());
        }
        let wanted: Vec<&str> = roles.iter().map(String::as_str).collect();
        let found: Vec<String> =
            sqlx::query_scalar("SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1)")
                .bind(&wanted)
                .fetch_all(&self.dbs().lms)
                .await?;
        let missing: Vec<String> = roles
            .iter()
            .filter(|r| !found.contains(r))
            .map(|r| quote_ident(r))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "This backup grants privileges to roles this database server does not have: {}. \
             Nothing was changed. Create them first (as a superuser: CREATE ROLE {} NOLOGIN;), \
             then restore again.",
            missing.join(", "),
            missing.join(" NOLOGIN; CREATE ROLE ")
        )))
    }

    /// The copy is built beside the live database, so both must fit on the
    /// database server's disk at once, with the write-ahead log the restore
    /// writes. The copy's size is estimated from the manifest (tables with
    /// their indexes when backed up, plus a tenth), or from the live
    /// database when the archive carries no such record. The disk can only
    /// be seen when the server runs on this host and the role may read
    /// `data_directory` (superuser or `pg_read_all_settings`); otherwise
    /// the job says it was not checked, and a full disk fails the restore
    /// in the copy, before anything live changed.
    ///
    /// Returns what to watch while the copy is built (the estimate can be
    /// wrong: a small archive of very compressible data), when the disk
    /// can be seen.
    pub(super) async fn check_room_for_copy(
        &self,
        run: &JobRun,
        manifest: Option<&Manifest>,
    ) -> Result<Option<Room>> {
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
        let copy = estimate.max(0) as u64 / 10 * 11;
        let wal = self.wal_allowance(copy).await;
        let needed = copy + wal;
        let Some(free) = self.database_server_free_space().await else {
            run.note(&format!(
                "The free space on the database server's disk cannot be seen from here (it runs \
                 on another host, or its data directory is hidden from this role), so it was not \
                 checked: the restored copy and the write-ahead log it writes need about {} \
                 beside the live database.",
                human(needed)
            ))
            .await;
            return Ok(None);
        };
        let margin = self.config().restore_free_space_margin;
        let budget = free.saturating_sub(margin);
        if budget < needed {
            return Err(Error::Invalid(format!(
                "Not enough free space on the database server for the restored copy: about {} needed \
                 ({} for the copy, up to {} for the write-ahead log it writes), {} free, of which {} \
                 stays free (RESTORE_FREE_SPACE_MARGIN). The live database stays in place until the \
                 copy is proven, so both must fit at once. Free some space on the database server's \
                 disk and try again.",
                human(needed),
                human(copy),
                human(wal),
                human(free),
                human(margin)
            )));
        }
        Ok(Some(Room {
            copy_budget: budget - wal,
            margin,
        }))
    }

    /// The write-ahead log a restore of `copy` bytes may hold on the disk
    /// at once: about the data it writes, but no more than `max_wal_size`
    /// (checkpoints recycle it past that), plus what `wal_keep_size`
    /// holds back. All of it, when the settings cannot be read.
    async fn wal_allowance(&self, copy: u64) -> u64 {
        let settings: std::result::Result<(i64, i64), _> = sqlx::query_as(
            "SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'max_wal_size'),
                    coalesce((SELECT setting::bigint FROM pg_settings WHERE name = 'wal_keep_size'), 0)",
        )
        .fetch_one(&self.dbs().lms)
        .await;
        match settings {
            // Both in megabytes.
            Ok((max_wal, keep)) => copy.min(max_wal.max(0) as u64 * MIB) + keep.max(0) as u64 * MIB,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the WAL settings");
                copy
            }
        }
    }

    /// Free bytes on the disk holding the database server's data directory,
    /// when that disk is this host's and the role may see where it is.
    pub(super) async fn database_server_free_space(&self) -> Option<u64> {
        #[cfg(feature = "testing")]
        if let Some(free) = self.config().database_free_space {
            return free;
        }
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

const MIB: u64 = 1 << 20;

/// What a restore watches while its copy is built, when the database
/// server's disk can be seen.
#[derive(Debug, Clone, Copy)]
pub(super) struct Room {
    /// The most the copy itself may take: the free space less the margin
    /// and the write-ahead log its restore may write.
    pub copy_budget: u64,
    /// What the disk keeps free (`RESTORE_FREE_SPACE_MARGIN`): watched
    /// directly too, so the write-ahead log and anything else writing to
    /// that disk count.
    pub margin: u64,
}

/// The extensions of `wanted` not among `available`, in the archive's order.
fn missing_extensions(wanted: &[String], available: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| !available.contains(w))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_extensions_are_the_wanted_ones_not_available() {
        let wanted = ["plpgsql", "pgcrypto", "postgis"].map(String::from);
        let available = ["pgcrypto", "plpgsql"].map(String::from);
        assert_eq!(missing_extensions(&wanted, &available), ["postgis"]);
        assert!(missing_extensions(&wanted[..1], &available).is_empty());
    }
}
