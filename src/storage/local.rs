//! The local backup directory. Its methods are async and do their file
//! work on the blocking pool; the synchronous helpers below are only ever
//! called from inside those closures.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::verified::{FileIdentity, SETTLED_AFTER};
use super::{archive_path, blocking, is_archive_name, manifest_path, Manifest, PARTIAL_SUFFIX};
use crate::{Error, Result};

/// The backup directory (`BACKUP_DIR`) and its `metadata/` sidecars.
#[derive(Debug, Clone)]
pub struct BackupDir {
    root: PathBuf,
}

/// An archive opened by [`BackupDir::open_checked`].
#[derive(Debug)]
pub struct CheckedArchive {
    /// At its start.
    pub file: File,
    pub size: u64,
    pub identity: FileIdentity,
    /// Its SHA-256, or `None` when it was not read (it still is the file
    /// proven before).
    pub sha256: Option<String>,
    /// It was left alone long enough that its identity may stand in for
    /// its content later.
    pub settled: bool,
}

/// A file found in the backup directory.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub is_file: bool,
    pub len: u64,
}

impl BackupDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where a `.partial` file of `name` is written.
    pub fn partial_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}{PARTIAL_SUFFIX}"))
    }

    /// Creates the directory and its `metadata/` (owner and group only).
    /// Only on an operator's explicit request (and in tests): the server
    /// never creates a configured directory that is missing, since it may
    /// be the mount point of a disk that is not mounted.
    pub async fn ensure(&self) -> Result<()> {
        let root = self.root.clone();
        blocking(move || ensure_dirs(&root)).await
    }

    /// Bytes free for an unprivileged writer on the directory's disk.
    pub async fn free_space(&self) -> Result<u64> {
        let root = self.root.clone();
        blocking(move || free_space(&root)).await
    }

    /// Neither an archive nor a partial file of that name exists.
    pub async fn name_is_free(&self, name: &str) -> Result<bool> {
        let (archive, partial) = (self.root.join(name), self.partial_path(name));
        blocking(move || Ok(!archive.exists() && !partial.exists())).await
    }

    /// An archive of that name is in the directory (a symlink counts, as
    /// a file there; it is never followed).
    pub async fn archive_exists(&self, name: &str) -> Result<bool> {
        let path = archive_path(&self.root, name)?;
        blocking(move || Ok(path.symlink_metadata().is_ok())).await
    }

    /// Takes `name` for a new archive by creating its `.partial` file, which
    /// only one caller can do (`O_EXCL`): the file is the reservation.
    /// `None` when the name is taken (by a partial file or an archive); the
    /// caller tries another. The file returned is this caller's to remove.
    pub async fn reserve(&self, name: &str) -> Result<Option<tokio::fs::File>> {
        let (archive, partial) = (archive_path(&self.root, name)?, self.partial_path(name));
        let file = blocking(move || {
            let file = match create_new(&partial) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            // An archive published under this name before the partial file
            // was created: the name is not free after all.
            if std::fs::symlink_metadata(&archive).is_ok() {
                drop(file);
                remove_if_exists(&partial)?;
                return Ok(None);
            }
            Ok(Some(file))
        })
        .await?;
        Ok(file.map(tokio::fs::File::from_std))
    }

    /// Creates a new file at `path` (which must not exist) for writing.
    pub async fn create_new(&self, path: &Path) -> Result<tokio::fs::File> {
        let path = path.to_owned();
        let file = blocking(move || Ok(create_new(&path)?)).await?;
        Ok(tokio::fs::File::from_std(file))
    }

    /// Gives a finished `.partial` its final name, durably.
    pub async fn publish(&self, partial: &Path, name: &str) -> Result<()> {
        let (root, partial) = (self.root.clone(), partial.to_owned());
        let target = archive_path(&self.root, name)?;
        blocking(move || {
            std::fs::rename(&partial, &target)?;
            sync_dir(&root)
        })
        .await
    }

    /// Opens an archive for reading: never through a symlink, never a file
    /// with other hard links, only a regular file.
    pub async fn open_archive(&self, name: &str) -> Result<File> {
        let (root, name) = (self.root.clone(), name.to_owned());
        blocking(move || open_archive(&root, &name)).await
    }

    /// Size and SHA-256 of an archive, read in full.
    pub async fn hash_archive(&self, name: &str) -> Result<(u64, String)> {
        let (root, name) = (self.root.clone(), name.to_owned());
        blocking(move || Ok(sha256_of(&mut open_archive(&root, &name)?)?)).await
    }

    /// Opens an archive and, unless it still is the file `proven` describes,
    /// reads it through to hash it. The file is returned at its start.
    pub async fn open_checked(
        &self,
        name: &str,
        proven: Option<FileIdentity>,
    ) -> Result<CheckedArchive> {
        let (root, name) = (self.root.clone(), name.to_owned());
        blocking(move || {
            use std::io::{Seek, SeekFrom};
            let reading_since = std::time::SystemTime::now();
            let mut file = open_archive(&root, &name)?;
            let meta = file.metadata()?;
            let identity = FileIdentity::of(&meta);
            if proven == Some(identity) {
                return Ok(CheckedArchive {
                    file,
                    size: meta.len(),
                    identity,
                    sha256: None,
                    settled: true,
                });
            }
            let (size, sha256) = sha256_of(&mut file)?;
            file.seek(SeekFrom::Start(0))?;
            // A change within the file system's timestamp granularity of
            // the one before could leave the identity as it was: only a
            // file left alone for a while is identified by it later.
            let settled = reading_since
                .checked_sub(SETTLED_AFTER)
                .is_some_and(|t| identity.changed_before(t));
            Ok(CheckedArchive {
                file,
                size,
                identity,
                sha256: Some(sha256),
                settled,
            })
        })
        .await
    }

    /// The first bytes of a file (to tell what kind of file it is).
    pub async fn head(&self, path: &Path, len: usize) -> Result<Vec<u8>> {
        let path = path.to_owned();
        blocking(move || {
            let mut head = Vec::with_capacity(len);
            File::open(path)?.take(len as u64).read_to_end(&mut head)?;
            Ok(head)
        })
        .await
    }

    /// Writes a manifest sidecar durably.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let path = manifest_path(&self.root, &manifest.filename)?;
        let json =
            serde_json::to_vec_pretty(manifest).map_err(|e| Error::Invalid(e.to_string()))?;
        blocking(move || write_atomically(&path, &json)).await
    }

    /// Reads a manifest sidecar; `None` when missing or unreadable.
    pub async fn read_manifest(&self, name: &str) -> Option<Manifest> {
        let path = manifest_path(&self.root, name).ok()?;
        blocking(move || Ok(std::fs::read(path).ok()))
            .await
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }

    /// Removes files of this directory if they exist, then makes the
    /// removal durable.
    pub async fn remove(&self, paths: Vec<PathBuf>) -> Result<()> {
        let root = self.root.clone();
        blocking(move || {
            for path in &paths {
                remove_if_exists(path)?;
            }
            sync_dir(&root)
        })
        .await
    }

    /// Removes a backup's archive and sidecar (never following a symlink:
    /// unlinking a link removes the link only).
    pub async fn remove_backup(&self, name: &str) -> Result<()> {
        let paths = vec![
            archive_path(&self.root, name)?,
            manifest_path(&self.root, name)?,
        ];
        self.remove(paths).await
    }

    /// The directory's entries (not its subdirectories' contents).
    pub async fn entries(&self) -> Result<Vec<DirEntry>> {
        let root = self.root.clone();
        blocking(move || {
            Ok(std::fs::read_dir(root)?
                .flatten()
                .map(|e| {
                    let meta = e.metadata().ok();
                    DirEntry {
                        name: e.file_name().to_string_lossy().into_owned(),
                        is_file: e.file_type().map(|t| t.is_file()).unwrap_or(false),
                        len: meta.map(|m| m.len()).unwrap_or(0),
                    }
                })
                .collect())
        })
        .await
    }

    /// Archives (by generated name) present in the directory.
    pub async fn archive_names(&self) -> Result<Vec<String>> {
        Ok(self
            .entries()
            .await?
            .into_iter()
            .filter(|e| e.is_file && is_archive_name(&e.name))
            .map(|e| e.name)
            .collect())
    }
}

/// Size and hex SHA-256 of everything `reader` yields (blocking).
pub fn sha256_of(reader: &mut impl Read) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let size = std::io::copy(reader, &mut hasher)?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Opens an archive for reading: never through a symlink, never a file with
/// other hard links (it could be a link to anything on the disk), only a
/// regular file.
fn open_archive(dir: &Path, name: &str) -> Result<File> {
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

/// Creates a file that must not exist yet, for writing (owner and group).
fn create_new(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
}

/// Flushes a directory's entries to disk (after a rename or unlink in it).
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `bytes` to `path` durably and atomically: temporary file, fsync,
/// rename, directory fsync.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
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

/// Removes a file if it exists.
fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Bytes free for an unprivileged writer on the file system holding `dir`.
fn free_space(dir: &Path) -> Result<u64> {
    let stat = nix::sys::statvfs::statvfs(dir).map_err(|e| Error::Io(e.into()))?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}

/// Creates the backup and metadata directories (owner-only access).
fn ensure_dirs(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    for d in [dir.to_path_buf(), dir.join(super::MANIFEST_DIR)] {
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

    #[tokio::test]
    async fn an_archive_is_read_again_once_it_is_not_the_file_proven() {
        let root =
            std::env::temp_dir().join(format!("storage-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).unwrap();
        let dir = BackupDir::new(&root);
        let name = "backup_20260101_000000.dump";
        std::fs::write(root.join(name), "archive").unwrap();

        let first = dir.open_checked(name, None).await.unwrap();
        assert!(first.sha256.is_some(), "read when nothing is proven");
        let again = dir.open_checked(name, Some(first.identity)).await.unwrap();
        assert_eq!(again.sha256, None, "the same file is not read again");
        assert_eq!(again.size, 7);

        // Grown, or replaced by another file of the same content: read.
        std::fs::write(root.join(name), "archive!").unwrap();
        let grown = dir.open_checked(name, Some(first.identity)).await.unwrap();
        assert!(grown.sha256.is_some());
        std::fs::write(root.join("other"), "archive!").unwrap();
        std::fs::rename(root.join("other"), root.join(name)).unwrap();
        let replaced = dir.open_checked(name, Some(grown.identity)).await.unwrap();
        assert!(replaced.sha256.is_some());
        assert!(
            !replaced.settled,
            "a file changed just now is not trusted later"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
