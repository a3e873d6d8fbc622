//! Whether the backup directory can be used at all. A directory that is not
//! there is most often a disk that is not mounted: it is reported, never
//! created behind the administrator's back (writing into the empty mount
//! point would fill the wrong disk), and its absence says nothing about the
//! backups on it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{blocking, BackupDir, MANIFEST_DIR};
use crate::Result;

/// What keeps the backup directory from being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirProblem {
    /// Nothing is at its path.
    Missing,
    /// Something other than a directory is at its path.
    NotADirectory,
    /// It cannot be read (permissions, or an I/O error of its disk).
    Unreadable,
    /// It has no `metadata/` folder. Every directory this server has used
    /// has one, so when the catalog lists backups this is not where they
    /// are (typically the empty mount point of a disk that is not mounted).
    WithoutMetadata,
}

impl BackupDir {
    /// What keeps the directory from being used, if anything (without
    /// knowing what the catalog expects of it: see [`DirProblem::WithoutMetadata`]).
    pub async fn problem(&self) -> Option<DirProblem> {
        let root = self.path().to_owned();
        blocking(move || Ok(inspect(&root)))
            .await
            .unwrap_or(Some(DirProblem::Unreadable))
    }

    /// Creates the `metadata/` folder of a directory that is there (a new,
    /// empty backup directory an operator made).
    pub async fn create_metadata_dir(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.path().join(MANIFEST_DIR);
        blocking(move || {
            match std::fs::DirBuilder::new().mode(0o750).create(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e.into()),
                _ => {}
            }
            Ok(())
        })
        .await
    }
}

/// Looks at the directory (blocking): there, a directory, listable, with
/// its metadata folder.
fn inspect(root: &Path) -> Option<DirProblem> {
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(DirProblem::Missing),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Some(DirProblem::Missing),
        Err(_) => return Some(DirProblem::Unreadable),
        Ok(meta) if !meta.is_dir() => return Some(DirProblem::NotADirectory),
        Ok(_) => {}
    }
    // Listing it proves it can be read (a directory on a failed disk, or
    // one without read permission, is there but unusable).
    if std::fs::read_dir(root).is_err() {
        return Some(DirProblem::Unreadable);
    }
    match std::fs::metadata(root.join(MANIFEST_DIR)) {
        Ok(meta) if meta.is_dir() => None,
        Ok(_) => Some(DirProblem::NotADirectory),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(DirProblem::WithoutMetadata),
        Err(_) => Some(DirProblem::Unreadable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_is_told_apart() {
        let base =
            std::env::temp_dir().join(format!("dir-health-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&base).unwrap();
        assert_eq!(inspect(&base.join("absent")), Some(DirProblem::Missing));
        assert_eq!(
            inspect(&base.join("absent/deeper")),
            Some(DirProblem::Missing)
        );
        std::fs::write(base.join("file"), "x").unwrap();
        assert_eq!(inspect(&base.join("file")), Some(DirProblem::NotADirectory));
        assert_eq!(
            inspect(&base.join("file/below")),
            Some(DirProblem::Missing),
            "a file where a parent directory should be"
        );
        assert_eq!(inspect(&base), Some(DirProblem::WithoutMetadata));
        std::fs::create_dir(base.join(MANIFEST_DIR)).unwrap();
        assert_eq!(inspect(&base), None);
        std::fs::remove_dir_all(base).unwrap();
    }
}
