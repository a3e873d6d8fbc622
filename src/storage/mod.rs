//! Where archives live: the local backup directory ([`BackupDir`]) and,
//! when one is configured, an off-site target ([`offsite::Offsite`]).
//!
//! Archives are addressed by catalog id; the file name comes from the
//! catalog, is checked against the names this server generates, and is
//! opened without following symlinks. A planted symlink or hard link is
//! refused rather than read. Every file-system call runs off the async
//! threads, through [`blocking`].
//!
//! Whether the directory can be used at all is `health` (a missing one is
//! reported, never re-created); the room writers have claimed on its disk
//! is `budget`.

mod budget;
pub mod encryption;
mod health;
mod local;
mod manifest;
pub mod offsite;
mod source;
mod tee;
mod verified;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::{Error, Result};

pub use budget::{Claim, ClaimRequest, DiskBudget, Metered, Writer};
pub use health::DirProblem;
pub use local::{BackupDir, CheckedArchive};
pub use manifest::Manifest;
pub use source::{write, ArchiveSource, Key, Written};
pub use tee::tee;
pub use verified::{FileIdentity, VerifiedArchives};

/// The subdirectory of the backup directory holding the manifests.
pub const MANIFEST_DIR: &str = "metadata";

/// Suffix of an archive still being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// Runs blocking file-system work on the blocking pool, never on an async
/// thread.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
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
    Ok(dir.join(MANIFEST_DIR).join(format!("{name}.json")))
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
}
