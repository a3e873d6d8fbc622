//! A backup job's phases, in the order of [`lms_types::phases::BACKUP`]:
//! each is one function, and [`Engine::run_backup_job`] walks them.

use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use lms_types::{AuditAction, BackupStatus, Phase};
use sqlx::{Connection, PgConnection};

use crate::audit::Actor;
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::jobs::messages::failure_message;
use crate::jobs::run::{Ending, JobRun};
use crate::jobs::Job;
use crate::postgres::archive::{self, ArchiveInfo, Input, TableProgress};
use crate::postgres::fingerprint::{self, Fingerprint, TableRef};
use crate::postgres::process::follow_stderr;
use crate::postgres::tools;
use crate::storage::{self, ArchiveSource, Claim, ClaimRequest, Manifest, Writer, Written};
use crate::{Error, Result};

/// What the dump phase leaves for the next ones.
struct Dumped {
    /// The archive pg_dump wrote (and how it is encrypted, when it is kept
    /// encrypted).
    written: Written,
    server_version: String,
    tables: Vec<TableRef>,
    fingerprint: Fingerprint,
}

impl Engine {
    /// Runs a started backup to its end, whatever happens: the archive is
    /// kept and retention applied, or everything it wrote is removed; then
    /// the job ends (audited, lock released).
    pub(super) async fn run_backup_job(self, job: Job, backup: Backup, actor: Actor) {
        let run = JobRun::start(&self, job, &actor);
        let partial = self.backup_dir().partial_path(&backup.filename);
        let started = Instant::now();
        let result = run
            .guard(async {
                // The room claimed on the disk is held until the archive is saved.
                let (server_version, room) = self.backup_gates(&run).await?;
                let dumped = self.dump(&run, &partial, server_version, &room).await?;
                let source = dumped.written.source(partial.clone());
                let info = self
                    .check_new_archive(
                        &run,
                        &source,
                        &dumped.tables,
                        (dumped.written.size, &dumped.written.sha256),
                    )
                    .await?;
                self.save(&run, &backup, &partial, dumped, info, started)
                    .await
            })
            .await;
        let message = match &result {
            Ok(manifest) => {
                self.copy_new_backup(&run, &backup, &actor, manifest.stored().0)
                    .await;
                if let Err(e) = self.apply_retention().await {
                    tracing::error!(error = ?e, "retention after a backup failed");
                }
                tracing::info!(backup = %backup.filename, size = manifest.size_bytes, "backup completed");
                None
            }
            Err(err) => {
                self.discard_archive(&backup, &partial).await;
                tracing::error!(error = ?err, backup = %backup.filename, "backup failed");
                if let Err(e) =
                    catalog::set_status(&self.dbs().control, backup.id, BackupStatus::Failed).await
                {
                    tracing::error!(error = ?e, "could not mark the backup failed");
                }
                Some(failure_message(err))
            }
        };
        run.finish(Ending::of(
            &result,
            message.as_deref(),
            AuditAction::BackupCreate,
            Some(&backup.filename),
        ))
        .await;
    }

    /// Removes whatever a failed backup wrote.
    async fn discard_archive(&self, backup: &Backup, partial: &Path) {
        let dir = self.backup_dir();
        let mut paths = vec![partial.to_path_buf()];
        paths.extend(crate::storage::archive_path(dir.path(), &backup.filename).ok());
        paths.extend(crate::storage::manifest_path(dir.path(), &backup.filename).ok());
        if let Err(e) = dir.remove(paths).await {
            tracing::error!(error = %e, backup = %backup.filename, "could not remove a failed backup's files");
        }
    }

    /// Checking: tools not older than the server, the directory there, room
    /// for the database beside what running uploads may still write.
    /// Returns the server's version and the room claimed.
    async fn backup_gates(&self, run: &JobRun) -> Result<(String, Claim)> {
        run.enter(Phase::Checking).await?;
        let lms = &self.dbs().lms;
        let (major, server_version) = tools::server_version(lms).await?;
        self.tools().check_against_server(major, &server_version)?;
        let database_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(lms)
            .await?;
        // Looked at again here (it may have gone since the job began); never
        // re-created: a vanished directory is often an unmounted disk, and
        // writing to the mount point would fill the wrong one.
        if let Some(unavailable) = self.backup_dir_unavailable().await? {
            return Err(Error::StorageUnavailable(unavailable.message));
        }
        let room = self
            .disk_budget()
            .claim(
                &self.backup_dir(),
                ClaimRequest {
                    writer: Writer::Backup,
                    bytes: database_bytes.max(0) as u64,
                    margin: 0,
                    max_uploads: 0,
                },
            )
            .await?;
        Ok((server_version, room))
    }

    /// Dumping: one exported snapshot, fingerprinted while pg_dump streams
    /// it into the partial file (hashed on the way), and read back in full
    /// as it is written: every byte on its way to the file also goes to a
    /// `pg_restore` reading the custom format from a pipe, so a truncated
    /// or damaged archive fails here, in the same pass, not in a second
    /// read after it.
    async fn dump(
        &self,
        run: &JobRun,
        partial: &Path,
        server_version: String,
        room: &Claim,
    ) -> Result<Dumped> {
        let dbs = self.dbs();
        // The snapshot stays open until both the dump and the fingerprint are done.
        let mut snapshot_conn = PgConnection::connect_with(&dbs.lms_options).await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut snapshot_conn)
            .await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut snapshot_conn)
            .await?;
        let tables = fingerprint::list_tables(&mut snapshot_conn).await?;

        let connection = dbs.tool_connection(None).await?;
        let file = self.backup_dir().create_new(partial).await?;
        let mut dump = archive::start_dump(
            &self.tools().pg_dump,
            &connection,
            &snapshot,
            self.config().backup_compression,
        )?;
        let stdout = dump.child().stdout.take().expect("stdout is piped");
        let stderr = dump.child().stderr.take().expect("stderr is piped");
        let progress = TableProgress::new(&tables);
        let follower = {
            let progress = progress.clone();
            follow_stderr(stderr, move |line| progress.on_line(line))
        };
        // The plain archive, as pg_dump writes it, is what is read back.
        let (archive, copy) = storage::tee(room.meter(stdout));
        let read_back = TableProgress::new(&tables);
        let read = archive::read_all(
            &self.tools().pg_restore,
            Input::Stream(Box::new(copy)),
            &read_back,
        );
        // Encrypted as it streams when files are kept encrypted.
        let write = storage::write(
            archive,
            file,
            self.config().max_backup_size,
            None,
            self.config().local_encryption(),
        );
        let work = async {
            tokio::join!(
                write,
                follower,
                fingerprint::fingerprint(&mut snapshot_conn, &tables),
                read,
            )
        };
        let (written, stderr_tail, fingerprint, read) = run
            .run_phase(Phase::Dumping, || progress.fraction(), work)
            .await?;
        let written = written?;
        dump.wait(stderr_tail).await?;
        let fingerprint = fingerprint?;
        read?;
        snapshot_conn.close().await?;
        Ok(Dumped {
            written,
            server_version,
            tables,
            fingerprint,
        })
    }

    /// Verifying: the archive lists every table. Its bytes were read in
    /// full as they were written (see [`Self::dump`]); the file is fsynced
    /// and its SHA-256 is of those same bytes, checked again wherever it is
    /// read later (download, restore, off-site copy). Only a file kept
    /// encrypted is read once more here, decrypted to its end with the
    /// one-off key it was made with: its encrypted bytes were never read,
    /// and must open to the archive pg_dump wrote (`plain`: size and
    /// SHA-256).
    async fn check_new_archive(
        &self,
        run: &JobRun,
        source: &ArchiveSource,
        tables: &[TableRef],
        plain: (u64, &str),
    ) -> Result<ArchiveInfo> {
        run.enter(Phase::Verifying).await?;
        let info = source.list_checked(&self.tools().pg_restore, plain).await?;
        if let Some(missing) = tables
            .iter()
            .map(|t| format!("{}.{}", t.schema, t.name))
            .find(|t| !info.tables.contains(t))
        {
            return Err(Error::Invalid(format!(
                "The archive does not contain table {missing}; the backup was discarded."
            )));
        }
        Ok(info)
    }

    /// Saving: the archive under its name, then its manifest (sidecar, then
    /// catalog row). Only now is the backup `completed`.
    async fn save(
        &self,
        run: &JobRun,
        backup: &Backup,
        partial: &Path,
        dumped: Dumped,
        info: ArchiveInfo,
        started: Instant,
    ) -> Result<Manifest> {
        run.enter(Phase::Saving).await?;
        let dir = self.backup_dir();
        dir.publish(partial, &backup.filename).await?;
        let manifest = Manifest {
            original_name: None,
            manifest_version: 1,
            filename: backup.filename.clone(),
            kind: backup.kind,
            size_bytes: dumped.written.size,
            sha256: dumped.written.sha256,
            created_at: backup.created_at,
            taken_at: None,
            completed_at: Utc::now(),
            created_by_id: backup.created_by_id,
            created_by_name: backup.created_by_name.clone(),
            notes: backup.notes.clone(),
            database: self.dbs().lms_name().to_owned(),
            server_version: dumped.server_version,
            pg_dump_version: info.dumped_by,
            archive_version: info.archive_version,
            tables: Some(dumped.fingerprint.tables),
            sequences: Some(dumped.fingerprint.sequences),
            duration_ms: started.elapsed().as_millis() as u64,
            encryption: dumped.written.encrypted.map(|(record, _)| record),
        };
        dir.write_manifest(&manifest).await?;
        catalog::mark_completed(&self.dbs().control, backup.id, &manifest).await?;
        Ok(manifest)
    }
}
