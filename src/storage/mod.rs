//! The backup directory: names, safe opening, durable writes and manifests.
//!
//! Archives are addressed by catalog id; the file name comes from the
//! catalog, is checked against the names this server generates, and is
//! opened without following symlinks. A planted symlink or hard link is
//! refused rather than read.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::postgres::fingerprint::{SequenceState, TableFingerprint};
use crate::{Error, Result};

/// Suffix of an archive still being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// What a backup's sidecar (`metadata/<file>.json`) and catalog row record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this manifest format.
    pub manifest_version: u32,
    pub filename: String,
    pub kind: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub created_by_id: Option<i64>,
    pub created_by_name: String,
    pub notes: Option<String>,
    pub database: String,
    pub server_version: String,
    pub pg_dump_version: String,
    /// The custom-format archive version pg_restore reports (e.g. "1.14-0").
    pub archive_version: String,
    /// `None` for uploaded archives until their first restore.
    pub tables: Option<Vec<TableFingerprint>>,
    pub sequences: Option<Vec<SequenceState>>,
    pub duration_ms: u64,
}

/// A new archive name for `at`: `<prefix>_YYYYMMDD_HHMMSS[_n].dump`, with
/// `_n` added while `taken` says the name is in use.
pub fn archive_name(prefix: &str, at: DateTime<Utc>, taken: impl Fn(&str) -> bool) -> String {
    let stem = format!("{prefix}_{}", at.format("%Y%m%d_%H%M%S"));
    let mut name = format!("{stem}.dump");
    let mut n = 1;
    while taken(&name) {
        n += 1;
        name = format!("{stem}_{n}.dump");
    }
    name
}

/// True for names this server generates, and nothing else: no separators,
/// no dots but the extension, no other characters.
pub fn is_archive_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".dump") else {
        return false;
    };
    let Some((prefix, rest)) = stem.split_once('_') else {
        return false;
    };
    if !matches!(prefix, "backup" | "upload") {
        return false;
    }
    let parts: Vec<&str> = rest.split('_').collect();
    let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [date, time] => digits(date, 8) && digits(time, 6),
        [date, time, n] => {
            digits(date, 8)
                && digits(time, 6)
                && !n.is_empty()
                && n.len() <= 6
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// Path of an archive in `dir`, after checking its name.
pub fn archive_path(dir: &Path, name: &str) -> Result<PathBuf> {
    if !is_archive_name(name) {
        return Err(Error::NotFound("backup file".into()));
    }
    Ok(dir.join(name))
}

/// Path of an archive's sidecar manifest.
pub fn manifest_path(dir: &Path, name: &str) -> Result<PathBuf> {
    archive_path(dir, name)?;
    Ok(dir.join("metadata").join(format!("{name}.json")))
}

/// Opens an archive for reading: never through a symlink, never a file with
/// other hard links (it could be a link to anything on the disk), only a
/// regular file.
pub fn open_archive(dir: &Path, name: &str) -> Result<File> {
    let path = archive_path(dir, name)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                tracing::warn!(path = %path.display(), "refused to follow a symlink in the backup directory");
                Error::NotFound("backup file".into())
            }
            _ if e.kind() == std::io::ErrorKind::NotFound => Error::NotFound("backup file".into()),
            _ => Error::Io(e),
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        tracing::warn!(path = %path.display(), nlink = meta.nlink(), "refused a backup file that is not a plain, singly linked file");
        return Err(Error::NotFound("backup file".into()));
    }
    Ok(file)
}

/// Flushes a directory's entries to disk (after a rename or unlink in it).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `bytes` to `path` durably and atomically: temporary file, fsync,
/// rename, directory fsync.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid("path has no directory".into()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a manifest sidecar.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let path = manifest_path(dir, &manifest.filename)?;
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    write_atomically(&path, &json)
}

/// Reads a manifest sidecar; `None` when missing or unreadable.
pub fn read_manifest(dir: &Path, name: &str) -> Option<Manifest> {
    let path = manifest_path(dir, name).ok()?;
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes a file if it exists.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Bytes free for an unprivileged writer on the file system holding `dir`.
pub fn free_space(dir: &Path) -> Result<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(|e| Error::Io(e.into()))?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// Creates the backup and metadata directories (owner-only access).
pub fn ensure_dirs(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    for d in [dir.to_path_buf(), dir.join("metadata")] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(&d)
            .map_err(|e| {
                Error::Config(format!(
                    "the backup directory {} cannot be created: {e}",
                    d.display()
                ))
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_are_generated_and_deduplicated() {
        let at = Utc.with_ymd_and_hms(2026, 11, 26, 14, 2, 3).unwrap();
        assert_eq!(
            archive_name("backup", at, |_| false),
            "backup_20261126_140203.dump"
        );
        let taken = [
            "backup_20261126_140203.dump",
            "backup_20261126_140203_2.dump",
        ];
        assert_eq!(
            archive_name("backup", at, |n| taken.contains(&n)),
            "backup_20261126_140203_3.dump"
        );
    }

    #[test]
    fn only_generated_names_are_accepted() {
        for ok in [
            "backup_20261126_140203.dump",
            "backup_20261126_140203_12.dump",
            "upload_20261126_140203.dump",
        ] {
            assert!(is_archive_name(ok), "{ok}");
        }
        for bad in [
            "../etc/passwd",
            "backup_20261126_140203.dump/..",
            "/backup_20261126_140203.dump",
            "backup_2026112_140203.dump",
            "backup_20261126_140203.dump.partial",
            "backup_20261126_140203_.dump",
            "backup_20261126_140203_1_2.dump",
            "x_20261126_140203.dump",
            "backup_20261126_140203.dump\0",
            "",
        ] {
            assert!(!is_archive_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn symlinks_and_hard_links_are_not_opened() {
        let dir =
            std::env::temp_dir().join(format!("storage-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let outside = dir.join("secret.txt");
        std::fs::write(&outside, "secret").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("backup_20260101_000000.dump")).unwrap();
        std::fs::hard_link(&outside, dir.join("backup_20260101_000001.dump")).unwrap();
        std::fs::write(dir.join("backup_20260101_000002.dump"), "archive").unwrap();

        assert!(matches!(
            open_archive(&dir, "backup_20260101_000000.dump"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            open_archive(&dir, "backup_20260101_000001.dump"),
            Err(Error::NotFound(_))
        ));
        assert!(open_archive(&dir, "backup_20260101_000002.dump").is_ok());
        assert!(matches!(
            open_archive(&dir, "../secret.txt"),
            Err(Error::NotFound(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
