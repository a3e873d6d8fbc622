//! The manifest: what a backup's sidecar (`metadata/<file>.json`) and its
//! catalog row record about it.

use chrono::{DateTime, Utc};
use lms_types::BackupKind;
use serde::{Deserialize, Serialize};

use crate::postgres::fingerprint::{SequenceState, TableFingerprint};

/// What a backup's sidecar (`metadata/<file>.json`) and catalog row record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this manifest format.
    pub manifest_version: u32,
    pub filename: String,
    pub kind: BackupKind,
    pub size_bytes: u64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// When the data was taken, if not at `created_at`: an uploaded
    /// archive's own creation time (its pg_dump snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<DateTime<Utc>>,
    pub completed_at: DateTime<Utc>,
    pub created_by_id: Option<i64>,
    pub created_by_name: String,
    pub notes: Option<String>,
    /// An uploaded archive's file name on the uploader's machine (absent
    /// for backups taken here, and in manifests written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_name: Option<String>,
    pub database: String,
    pub server_version: String,
    pub pg_dump_version: String,
    /// The custom-format archive version pg_restore reports (e.g. "1.14-0").
    pub archive_version: String,
    /// `None` for uploaded archives until their first restore.
    pub tables: Option<Vec<TableFingerprint>>,
    pub sequences: Option<Vec<SequenceState>>,
    pub duration_ms: u64,
    /// How it is encrypted: its off-site copy, and the file kept here when
    /// it was made with `ENCRYPT_LOCAL` (the local sidecar has it only
    /// then). The size and SHA-256 above stay the plain archive's, as
    /// pg_restore reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<super::encryption::Encryption>,
}

impl Manifest {
    /// How the file kept in the backup directory is encrypted, when it is.
    pub fn kept_encrypted(&self) -> Option<&super::encryption::Encryption> {
        self.encryption.as_ref().filter(|e| e.local)
    }

    /// Size and SHA-256 of the file as kept in the backup directory (the
    /// encrypted file's when it is kept encrypted): what the catalog
    /// records, and what downloads serve.
    pub fn stored(&self) -> (u64, &str) {
        match self.kept_encrypted() {
            Some(e) => (e.size_bytes, &e.sha256),
            None => (self.size_bytes, &self.sha256),
        }
    }
}
