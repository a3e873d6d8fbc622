//! Archives made elsewhere, uploaded by an administrator: streamed to disk
//! in constant memory under a size cap, hashed on the way, then proven to be
//! a whole custom-format archive this server can read before they join the
//! catalog as `uploaded`. Anything else is refused with a message that says
//! what the file is and what is expected, and leaves nothing behind.
//!
//! Uploads run without the operation lock (they change no database), so
//! they are bounded on their own: at most `MAX_CONCURRENT_UPLOADS` at once,
//! and each claims room on the backup disk for its announced size (the
//! largest accepted when it announces none) beside what running uploads and
//! backups may still write, leaving `MIN_FREE_SPACE` free; past either it is
//! refused before a byte is written.

use chrono::Utc;
use lms_types::{AuditAction, BackupKind};
use tokio::io::AsyncRead;

use crate::audit::{self, Actor};
use crate::catalog::{self, Backup};
use crate::engine::Engine;
use crate::postgres::archive::{self, TableProgress};
use crate::storage::{self, Claim, ClaimRequest, Manifest, Writer};
use crate::{Error, Result};

impl Engine {
    /// Stores and verifies an uploaded archive. `declared_len` (the request's
    /// Content-Length) is refused up front when over the cap; the stream is
    /// cut off past the cap, or past the length it announced, either way.
    /// `original_name` is the file's name on the uploader's machine: kept in
    /// the catalog, and what the audit log names a refused upload by (the
    /// name the catalog would have given it goes to the next upload).
    /// Refused while the backup directory cannot be used
    /// ([`Error::StorageUnavailable`]), while `MAX_CONCURRENT_UPLOADS` run
    /// ([`Error::Conflict`]), and when the disk has no room for it
    /// ([`Error::InsufficientStorage`]); refusals are audited.
    pub async fn import_upload(
        &self,
        body: impl AsyncRead + Unpin + Send + 'static,
        declared_len: Option<u64>,
        original_name: Option<&str>,
        actor: &Actor,
    ) -> Result<Backup> {
        let max = self.config().max_backup_size;
        let refused_as = || match original_name {
            Some(original) => format!("refused upload of {original}"),
            None => "refused upload".to_owned(),
        };
        if declared_len.is_some_and(|len| len > max) {
            let result = Err(too_large(max));
            self.audit_upload(actor, &refused_as(), &result).await;
            return result;
        }
        let room = match self.admit_upload(declared_len).await {
            Ok(room) => room,
            Err(refused) => {
                let refused = Err(refused);
                self.audit_upload(actor, &refused_as(), &refused).await;
                return refused;
            }
        };
        let (name, file) = self.reserve_upload_name().await?;
        let partial = self.backup_dir().partial_path(&name);
        let result = self
            .verify_upload(
                room.meter(body),
                file,
                &name,
                declared_len,
                original_name,
                actor,
            )
            .await;
        drop(room);
        if result.is_err() {
            // The partial file is this upload's own: reserve created it.
            let _ = self.backup_dir().remove(vec![partial]).await;
        }
        let target = if result.is_ok() { name } else { refused_as() };
        self.audit_upload(actor, &target, &result).await;
        result
    }

    async fn audit_upload(&self, actor: &Actor, target: &str, result: &Result<Backup>) {
        audit::record_result(
            &self.dbs().control,
            actor,
            AuditAction::BackupUpload,
            target,
            result,
        )
        .await;
    }

    /// Room for one more upload, or the reason there is none.
    async fn admit_upload(&self, declared_len: Option<u64>) -> Result<Claim> {
        self.require_backup_dir().await?;
        let config = self.config();
        self.disk_budget()
            .claim(
                &self.backup_dir(),
                ClaimRequest {
                    writer: Writer::Upload,
                    bytes: declared_len.unwrap_or(config.max_backup_size),
                    margin: config.min_free_space,
                    max_uploads: config.max_concurrent_uploads.max(1),
                },
            )
            .await
    }

    /// A name no other upload can be given: free in the catalog, and its
    /// `.partial` file created by this call (uploads run without the
    /// operation lock, so two arriving in the same second race for it).
    async fn reserve_upload_name(&self) -> Result<(String, tokio::fs::File)> {
        let mut conn = self.dbs().control.acquire().await?;
        let mut taken: Vec<String> = Vec::new();
        for _ in 0..MAX_NAME_ATTEMPTS {
            let name =
                storage::archive_name("upload", Utc::now(), |n| taken.iter().any(|t| t == n));
            if !catalog::name_taken(&mut *conn, &name).await? {
                if let Some(file) = self.backup_dir().reserve(&name).await? {
                    return Ok((name, file));
                }
            }
            taken.push(name);
        }
        Err(Error::Conflict(
            "Too many uploads are arriving at once; try again in a moment.".into(),
        ))
    }

    async fn verify_upload(
        &self,
        body: impl AsyncRead + Unpin + Send + 'static,
        file: tokio::fs::File,
        name: &str,
        declared_len: Option<u64>,
        original_name: Option<&str>,
        actor: &Actor,
    ) -> Result<Backup> {
        let started = std::time::Instant::now();
        let max = self.config().max_backup_size;
        // No more than announced: the room claimed is that much.
        let limit = declared_len.unwrap_or(max);
        let (idle, total) = (
            self.config().upload_idle_timeout,
            self.config().upload_timeout,
        );
        let dir = self.backup_dir();
        let partial = &dir.partial_path(name);
        // Encrypted as it arrives when files are kept encrypted.
        let write = storage::write(
            body,
            file,
            limit,
            Some(idle),
            self.config().local_encryption(),
        );
        let written = tokio::time::timeout(total, write)
                .await
                .map_err(|_| {
                    Error::TimedOut(format!(
                        "The upload was still arriving after {} s, so it was stopped. Upload from a \
                         faster connection, or copy the file to the server and use the command line.",
                        total.as_secs()
                    ))
                })?
                .map_err(|e| match e {
                    Error::Invalid(_) if declared_len.is_some() => Error::TooLarge(format!(
                        "The upload is longer than the {limit} bytes it announced (Content-Length)."
                    )),
                    Error::Invalid(_) => too_large(max),
                    other => other,
                })?;
        let (size, sha256) = (written.size, written.sha256.clone());
        if let Some(same) = catalog::with_sha256(&self.dbs().control, &sha256).await? {
            return Err(Error::Conflict(format!(
                "This archive is already in the catalog as {} (the same SHA-256), so it was not \
                 stored again.",
                same.filename
            )));
        }
        let source = written.source(partial.clone());
        let head = source.head(512).await?;
        describe_if_not_an_archive(&head, size)?;
        let info = archive::list(&self.tools().pg_restore, source.input().await?).await.map_err(|_| {
            let format = archive_format(&head).unwrap_or_else(|| "unknown".into());
            Error::Invalid(format!(
                "This archive (format {format}) cannot be read by this server's pg_restore {major}: it is \
                 incomplete or damaged, or was made by a PostgreSQL newer than {major}.",
                major = self.tools().major
            ))
        })?;
        source
            .read_all(
                &self.tools().pg_restore,
                &TableProgress::new(&[]),
                (size, &sha256),
            )
            .await
            .map_err(|_| {
                Error::Invalid(
                    "The archive is incomplete or damaged: it could not be read to the end.".into(),
                )
            })?;

        dir.publish(partial, name).await?;
        let now = Utc::now();
        let manifest = Manifest {
            manifest_version: 1,
            filename: name.to_owned(),
            kind: BackupKind::Uploaded,
            size_bytes: size,
            sha256,
            created_at: now,
            taken_at: info.created_at,
            completed_at: now,
            created_by_id: actor.id,
            created_by_name: actor.name.clone(),
            notes: None,
            original_name: original_name.map(str::to_owned),
            database: String::new(),
            server_version: String::new(),
            pg_dump_version: info.dumped_by,
            archive_version: info.archive_version,
            tables: None,
            sequences: None,
            duration_ms: started.elapsed().as_millis() as u64,
            encryption: written.encrypted.map(|(record, _)| record),
        };
        let result = async {
            dir.write_manifest(&manifest).await?;
            let id = catalog::import(&self.dbs().control, &manifest).await?;
            catalog::get_row(&self.dbs().control, id).await
        }
        .await;
        if result.is_err() {
            let _ = dir.remove_backup(name).await;
        }
        result
    }
}

/// Names tried before an upload gives up (each try is a name of the current
/// second with the next `_n`).
const MAX_NAME_ATTEMPTS: usize = 1000;

fn too_large(max: u64) -> Error {
    Error::TooLarge(format!(
        "The file is larger than the largest backup accepted ({} MiB, MAX_BACKUP_SIZE).",
        max / (1024 * 1024)
    ))
}

/// The custom-format version in an archive's header ("1.14.0").
fn archive_format(head: &[u8]) -> Option<String> {
    (head.len() >= 8 && head.starts_with(b"PGDMP"))
        .then(|| format!("{}.{}.{}", head[5], head[6], head[7]))
}

/// Says what a file is (from its first bytes) when it is not a
/// custom-format archive.
fn describe_if_not_an_archive(head: &[u8], size: u64) -> Result<()> {
    if size == 0 {
        return Err(Error::Invalid(
            "The file is empty. Upload an archive made with pg_dump -Fc.".into(),
        ));
    }
    if head.starts_with(b"PGDMP") {
        return Ok(());
    }
    let what = if head.starts_with(&[0x1f, 0x8b]) {
        "a gzip-compressed file (decompress it first if it holds an archive)"
    } else if head.starts_with(b"PK\x03\x04") {
        "a zip file"
    } else if std::str::from_utf8(head).is_ok_and(|t| {
        let t = t.trim_start();
        t.starts_with("--")
            || t.starts_with("SET ")
            || t.starts_with("CREATE ")
            || t.starts_with("BEGIN")
    }) {
        "a plain SQL script (pg_dump without -Fc)"
    } else if std::str::from_utf8(head).is_ok() {
        "a text file"
    } else {
        "not a PostgreSQL archive"
    };
    Err(Error::Invalid(format!(
        "This file is {what}. Upload a custom-format archive made with pg_dump -Fc (it starts with PGDMP)."
    )))
}
