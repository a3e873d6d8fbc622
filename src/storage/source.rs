//! An archive in the backup directory as it is written and as pg_restore is
//! to read it: the file itself, or, when it is kept encrypted
//! (`ENCRYPT_LOCAL`), encrypted on its way to the disk and decrypted on its
//! way to pg_restore's standard input, so the plain archive never touches
//! the disk.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use super::encryption::{self, DecryptionKeys, Encryption, EncryptionConfig, Verifier};
use super::Manifest;
use crate::postgres::archive::{self, Input, TableProgress};

/// What [`write`] wrote.
pub struct Written {
    /// Size and SHA-256 of the archive (plain, as pg_restore reads it).
    pub size: u64,
    pub sha256: String,
    /// How the file is encrypted when it is kept encrypted, and the one-off
    /// key it is proven with.
    pub encrypted: Option<(Encryption, Verifier)>,
}

impl Written {
    /// The file at `path` (where it was written), to be read back.
    pub fn source(&self, path: PathBuf) -> ArchiveSource {
        match &self.encrypted {
            None => ArchiveSource::Plain(path),
            Some((_, verifier)) => ArchiveSource::Encrypted {
                path,
                key: Key::Check(verifier.clone()),
            },
        }
    }
}

/// Writes an archive from `src` into `file` as [`archive::write_and_hash`]
/// does (at most `max_bytes`, `idle` between reads), encrypted as it
/// streams when `encryption` is given: then the plain archive is hashed on
/// its way to the age writer and never touches the disk.
pub async fn write(
    src: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    file: tokio::fs::File,
    max_bytes: u64,
    idle: Option<std::time::Duration>,
    encryption: Option<&EncryptionConfig>,
) -> Result<Written> {
    let Some(config) = encryption else {
        let (size, sha256) = archive::write_and_hash(src, file, max_bytes, idle).await?;
        return Ok(Written {
            size,
            sha256,
            encrypted: None,
        });
    };
    let (plain, plain_hash) = encryption::hashing(src);
    let (cipher, verifier) = encryption::encrypt(plain, config)?;
    let bound = encryption::encrypted_size_bound(max_bytes);
    let (size, sha256) = archive::write_and_hash(cipher, file, bound, idle).await?;
    let (plain_size, plain_sha256) = plain_hash.result();
    if plain_size > max_bytes {
        return Err(archive::too_large(max_bytes));
    }
    Ok(Written {
        size: plain_size,
        sha256: plain_sha256,
        encrypted: Some((config.record(size, sha256, true), verifier)),
    })
}
use crate::{Error, Result};

/// Where pg_restore gets a stored archive from.
pub enum ArchiveSource {
    Plain(PathBuf),
    Encrypted { path: PathBuf, key: Key },
}

/// What opens an archive kept encrypted.
pub enum Key {
    /// The one-off key it was just made with (while it is being proven).
    Check(Verifier),
    /// The configured keys (a restore); the error names the key needed.
    Restore {
        encryption: Encryption,
        keys: DecryptionKeys,
        name: String,
    },
}

impl ArchiveSource {
    /// The archive at `path`, as its manifest says it is kept.
    pub fn stored(path: PathBuf, manifest: Option<&Manifest>, keys: &DecryptionKeys) -> Self {
        match manifest.and_then(|m| Some((m, m.kept_encrypted()?))) {
            None => ArchiveSource::Plain(path),
            Some((manifest, encryption)) => ArchiveSource::Encrypted {
                path,
                key: Key::Restore {
                    encryption: encryption.clone(),
                    keys: keys.clone(),
                    name: manifest.filename.clone(),
                },
            },
        }
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self, ArchiveSource::Encrypted { .. })
    }

    /// The input of one pg_restore run: each run reads the file again. For
    /// an encrypted archive this fails, before pg_restore starts, when no
    /// key set opens it.
    pub async fn input(&self) -> Result<Input> {
        match self {
            ArchiveSource::Plain(path) => Ok(Input::Path(path.clone())),
            ArchiveSource::Encrypted { path, key } => {
                let file = open_no_follow(path.clone()).await?;
                Ok(Input::Stream(match key {
                    Key::Check(verifier) => Box::new(
                        encryption::decrypt_for_check(file, verifier, |e| {
                            Error::Invalid(format!(
                                "The archive just encrypted could not be opened with the key it \
                                 was made with ({e}): it was changed on the disk."
                            ))
                        })
                        .await?,
                    ),
                    Key::Restore {
                        encryption,
                        keys,
                        name,
                    } => Box::new(encryption::decrypt(file, encryption, keys, name).await?),
                }))
            }
        }
    }
}

impl ArchiveSource {
    /// The first `len` bytes of the archive (plain), to tell what it is.
    pub async fn head(&self, len: usize) -> Result<Vec<u8>> {
        let mut head = Vec::with_capacity(len);
        let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match self.input().await? {
            Input::Path(path) => Box::new(open_no_follow(path).await?),
            Input::File(file) => Box::new(tokio::fs::File::from_std(file)),
            Input::Stream(stream) => stream,
        };
        reader.take(len as u64).read_to_end(&mut head).await?;
        Ok(head)
    }

    /// The archive's table of contents ([`archive::list`]). One kept
    /// encrypted is decrypted to its end on the way, and must decrypt to
    /// the archive that was written, `plain` (size and SHA-256): the check
    /// that the file on the disk opens, once its plain bytes were read in
    /// full as they were written.
    pub async fn list_checked(
        &self,
        pg_restore: &Path,
        plain: (u64, &str),
    ) -> Result<archive::ArchiveInfo> {
        let (input, decrypted) = self.hashed_input().await?;
        let info = archive::list(pg_restore, input).await?;
        check_decrypted(decrypted, plain)?;
        Ok(info)
    }

    /// Reads every byte of the archive with pg_restore ([`archive::read_all`]);
    /// one kept encrypted must also decrypt to the archive that was written,
    /// `plain` (size and SHA-256).
    pub async fn read_all(
        &self,
        pg_restore: &Path,
        progress: &TableProgress,
        plain: (u64, &str),
    ) -> Result<()> {
        let (input, decrypted) = self.hashed_input().await?;
        archive::read_all(pg_restore, input, progress).await?;
        check_decrypted(decrypted, plain)
    }

    /// [`Self::input`], hashed on the way when it is decrypted.
    async fn hashed_input(&self) -> Result<(Input, Option<encryption::HashHandle>)> {
        Ok(match self.input().await? {
            Input::Stream(stream) => {
                let (stream, hash) = encryption::hashing(stream);
                (Input::Stream(Box::new(stream)), Some(hash))
            }
            other => (other, None),
        })
    }
}

/// A decrypted stream read to its end must be the archive that was written.
fn check_decrypted(decrypted: Option<encryption::HashHandle>, plain: (u64, &str)) -> Result<()> {
    match decrypted {
        Some(hash) if hash.result() != (plain.0, plain.1.to_owned()) => Err(Error::Invalid(
            "The encrypted archive does not decrypt to the archive that was written.".into(),
        )),
        _ => Ok(()),
    }
}

/// Opens a file for reading without following a symlink in its place.
async fn open_no_follow(path: PathBuf) -> Result<tokio::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = super::blocking(move || {
        Ok(std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?)
    })
    .await?;
    Ok(tokio::fs::File::from_std(file))
}
