//! [`Engine`]: the one handle the web layer and the CLI hold. It owns the
//! databases, the located PostgreSQL tools, the settings and this process's
//! identity in the operation lock.

use std::sync::Arc;

use crate::config::EngineConfig;
use crate::jobs::{self, lock};
use crate::postgres::tools::PgTools;
use crate::{storage, Databases, Result};

/// What is running right now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperationStatus {
    pub lock: Option<lock::LockInfo>,
    pub job: Option<jobs::Job>,
    /// Maintenance mode is on (a restore is swapping databases).
    pub maintenance: bool,
    /// A previous database is kept, so the last restore can be undone.
    pub undo_available: bool,
}

/// The stored backups at a glance (the card's header).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StorageSummary {
    pub catalog: crate::catalog::CatalogStats,
    /// Free bytes on the backup directory's disk (None if it cannot be read).
    pub free_bytes: Option<u64>,
    /// The largest archive accepted (uploads are refused past it).
    pub max_backup_size: u64,
}

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    dbs: Databases,
    tools: PgTools,
    config: EngineConfig,
    instance_id: String,
    verified: storage::VerifiedArchives,
}

impl Engine {
    /// Prepares the backup directory; the databases must be migrated.
    pub async fn new(dbs: Databases, tools: PgTools, config: EngineConfig) -> Result<Self> {
        storage::BackupDir::new(&config.backup_dir).ensure().await?;
        // The identity reads procfs (boot id, PID namespace) the first time.
        let instance_id = storage::blocking(|| Ok(lock::new_instance_id())).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                dbs,
                tools,
                config,
                instance_id,
                verified: Default::default(),
            }),
        })
    }

    pub fn dbs(&self) -> &Databases {
        &self.inner.dbs
    }

    /// A copy of this engine with other databases (tests use it to break
    /// the tools' password).
    #[cfg(feature = "testing")]
    pub fn with_dbs(&self, dbs: Databases) -> Self {
        Self {
            inner: Arc::new(Inner {
                dbs,
                tools: self.inner.tools.clone(),
                config: self.inner.config.clone(),
                instance_id: self.inner.instance_id.clone(),
                verified: Default::default(),
            }),
        }
    }

    /// A copy of this engine with other tools (tests use old or wrapped ones).
    #[cfg(feature = "testing")]
    pub fn with_tools(&self, tools: PgTools) -> Self {
        Self {
            inner: Arc::new(Inner {
                dbs: self.inner.dbs.clone(),
                tools,
                config: self.inner.config.clone(),
                instance_id: self.inner.instance_id.clone(),
                verified: Default::default(),
            }),
        }
    }

    pub fn tools(&self) -> &PgTools {
        &self.inner.tools
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The local backup directory.
    pub fn backup_dir(&self) -> storage::BackupDir {
        storage::BackupDir::new(&self.inner.config.backup_dir)
    }

    /// Archives proven to match their manifests (downloads skip reading
    /// them again while they are unchanged).
    pub(crate) fn verified_archives(&self) -> &storage::VerifiedArchives {
        &self.inner.verified
    }

    /// This process's identity in the operation lock.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// Who holds the operation lock, if anyone.
    pub async fn lock_status(&self) -> Result<Option<lock::LockInfo>> {
        lock::status(&self.dbs().control, self.config().lease_timeout).await
    }

    /// What is running: the lock and its job, or (when nothing runs) the
    /// most recent job, so a finished operation's outcome stays visible.
    pub async fn operation_status(&self) -> Result<OperationStatus> {
        let lock = self.lock_status().await?;
        let job = match lock.as_ref().and_then(|l| l.job_id) {
            Some(id) => jobs::get(&self.dbs().control, id).await?,
            None => jobs::recent(&self.dbs().control, 1).await?.pop(),
        };
        let maintenance = crate::settings::maintenance(&self.dbs().control)
            .await?
            .is_some();
        let undo_available = !self.previous_databases().await?.is_empty();
        Ok(OperationStatus {
            lock,
            job,
            maintenance,
            undo_available,
        })
    }

    /// The stored backups at a glance, with the room left for more.
    pub async fn storage_summary(&self) -> Result<StorageSummary> {
        let catalog = crate::catalog::stats(&self.dbs().control).await?;
        let free_bytes = self.backup_dir().free_space().await.ok();
        Ok(StorageSummary {
            catalog,
            free_bytes,
            max_backup_size: self.config().max_backup_size,
        })
    }

    /// The restore or undo an undo would reverse: the last one that
    /// switched the LMS database.
    pub async fn last_switch(&self) -> Result<Option<jobs::Job>> {
        jobs::last_switch(&self.dbs().control).await
    }

    /// One job; [`crate::Error::NotFound`] if there is none.
    pub async fn job(&self, id: uuid::Uuid) -> Result<jobs::Job> {
        jobs::get(&self.dbs().control, id)
            .await?
            .ok_or_else(|| crate::Error::NotFound("job".into()))
    }
}
