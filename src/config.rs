//! What the engine needs to know beyond the databases.

use std::path::PathBuf;
use std::time::Duration;

/// Ends every web session, given the control database (where the web
/// layer keeps them).
pub type SignOutEveryone =
    for<'a> fn(&'a sqlx::PgPool) -> futures::future::BoxFuture<'a, crate::Result<()>>;

/// Engine settings (the binary fills them from the environment).
/// pg_dump's gzip level unless `BACKUP_COMPRESSION` says otherwise: chosen
/// from the measurements in docs/BENCHMARKS.md ("Compression").
pub const DEFAULT_BACKUP_COMPRESSION: u8 = 1;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where archives and their manifests live (`BACKUP_DIR`).
    pub backup_dir: PathBuf,
    /// Largest archive accepted, created or uploaded (`MAX_BACKUP_SIZE`).
    pub max_backup_size: u64,
    /// pg_dump's gzip level for new backups, 0 to 9 (`BACKUP_COMPRESSION`).
    pub backup_compression: u8,
    /// Completed backups kept by retention (`MAX_BACKUPS_TO_KEEP`).
    pub max_backups_to_keep: u32,
    /// Manual backups a user may start per hour; 0 disables the limit
    /// (`BACKUP_RATE_LIMIT`).
    pub backup_rate_limit: u32,
    /// Longest note an administrator may attach to a backup, in characters.
    pub max_notes_len: usize,
    /// A lease not renewed for this long may be taken over.
    pub lease_timeout: Duration,
    /// How often a running operation renews its lease.
    pub heartbeat_interval: Duration,
    /// Databases kept from before restores, for undo (`RESTORE_KEEP_PREVIOUS`).
    pub restore_keep_previous: u32,
    /// An upload that sends nothing for this long is refused (408)
    /// (`UPLOAD_IDLE_TIMEOUT`).
    pub upload_idle_timeout: Duration,
    /// An upload still arriving after this long is refused (408), however
    /// steadily it trickles (`UPLOAD_TIMEOUT`).
    pub upload_timeout: Duration,
    /// Uploads received at once; one more is refused (409) until one ends
    /// (`MAX_CONCURRENT_UPLOADS`).
    pub max_concurrent_uploads: usize,
    /// Free space an upload must leave on the backup directory's disk once
    /// it and every running upload and backup have written all they may
    /// (`MIN_FREE_SPACE`).
    pub min_free_space: u64,
    /// How the web layer signs everyone out after a restore (its sessions
    /// are its business, not the engine's); `None` when there are none.
    pub sign_out_everyone: Option<SignOutEveryone>,
    /// The role restores build their copy as (`RESTORE_ROLE`); `None`:
    /// `<application role>_restore`. See `restore::role`.
    pub restore_role: Option<String>,
    /// Bytes a restore leaves free on the database server's disk
    /// (`RESTORE_FREE_SPACE_MARGIN`): the copy may grow to the free space
    /// less this, and is stopped when it would grow further.
    pub restore_free_space_margin: u64,
    /// How long a scheduled backup may wait for the operation lock (or for
    /// the backup directory) before it is skipped and reported
    /// (`SCHEDULE_GRACE`).
    pub schedule_grace: Duration,
    /// Where verified backups are copied off-site, if anywhere.
    pub offsite: Option<crate::storage::offsite::OffsiteConfig>,
    /// The wait before a failed off-site copy is tried again, doubled at
    /// each failure up to an hour.
    pub offsite_retry_after: Duration,
    /// What new backups are encrypted to, if anything: their off-site
    /// copies, and with `encrypt_local` the files kept here too.
    pub encryption: Option<crate::storage::encryption::EncryptionConfig>,
    /// New backups and uploads are encrypted before they touch the backup
    /// directory (`ENCRYPT_LOCAL`; needs `encryption`).
    pub encrypt_local: bool,
    /// The keys that open encrypted backups (restores need them, backups
    /// do not).
    pub decryption: crate::storage::encryption::DecryptionKeys,
    /// How often the newest backup is restore-tested by a drill
    /// (`DRILL_INTERVAL_HOURS`; `None`: only on demand).
    pub drill_interval: Option<Duration>,
    /// How long a prepared copy (Preview changes) is kept unused before it
    /// is dropped (`PREPARED_COPY_IDLE_TIMEOUT`).
    pub prepared_copy_idle: Duration,
    /// Notification channels from the environment, and how deliveries are
    /// retried.
    pub notify: crate::notify::NotifyConfig,
    /// Tests say how much the database server's disk has free, as they
    /// inject a clock, instead of filling a real disk (`Some(None)`: it
    /// cannot be seen).
    #[cfg(feature = "testing")]
    pub database_free_space: Option<Option<u64>>,
}

impl EngineConfig {
    /// Defaults for everything but the backup directory.
    pub fn new(backup_dir: impl Into<PathBuf>) -> Self {
        Self {
            backup_dir: backup_dir.into(),
            max_backup_size: 1 << 30,
            backup_compression: DEFAULT_BACKUP_COMPRESSION,
            max_backups_to_keep: 10,
            backup_rate_limit: 1,
            max_notes_len: 500,
            lease_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            restore_keep_previous: 1,
            upload_idle_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(60 * 60),
            max_concurrent_uploads: 2,
            min_free_space: 512 << 20,
            sign_out_everyone: None,
            restore_role: None,
            restore_free_space_margin: 256 << 20,
            schedule_grace: Duration::from_secs(60 * 60),
            offsite: None,
            offsite_retry_after: Duration::from_secs(60),
            encryption: None,
            encrypt_local: false,
            decryption: Default::default(),
            drill_interval: Some(Duration::from_secs(7 * 24 * 60 * 60)),
            prepared_copy_idle: Duration::from_secs(2 * 60 * 60),
            notify: Default::default(),
            #[cfg(feature = "testing")]
            database_free_space: None,
        }
    }

    /// What files written to the backup directory are encrypted to, when
    /// they are (`ENCRYPT_LOCAL`).
    pub fn local_encryption(&self) -> Option<&crate::storage::encryption::EncryptionConfig> {
        self.encryption.as_ref().filter(|_| self.encrypt_local)
    }
}
