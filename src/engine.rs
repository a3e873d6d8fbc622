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
    /// Why backups cannot be made, uploaded or restored (the backup
    /// directory cannot be used), if so.
    pub backup_dir: Option<crate::backup::DirUnavailable>,
    /// Catalog entries whose file is missing.
    pub missing_backups: i64,
    /// Of those, the ones with a verified off-site copy (a download or a
    /// restore fetches their file back).
    pub missing_kept_offsite: i64,
}

/// The stored backups at a glance (the card's header).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StorageSummary {
    pub catalog: crate::catalog::CatalogStats,
    /// Free bytes on the backup directory's disk (None if it cannot be read).
    pub free_bytes: Option<u64>,
    /// The largest archive accepted (uploads are refused past it).
    pub max_backup_size: u64,
    /// The off-site target and what was last seen of it, if one is set.
    pub offsite: Option<crate::offsite::OffsiteStatus>,
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
    budget: Arc<storage::DiskBudget>,
    dir_watch: Arc<crate::backup::DirWatch>,
    offsite: Option<Arc<storage::offsite::Offsite>>,
    target_watch: Arc<crate::offsite::TargetWatch>,
    /// Wakes this instance's notification deliverer.
    notifier: Arc<tokio::sync::Notify>,
}

impl Engine {
    /// The databases must be migrated. The backup directory is not created
    /// (it may be an unmounted disk's mount point): while it is missing,
    /// backups are refused and say so.
    pub async fn new(dbs: Databases, tools: PgTools, config: EngineConfig) -> Result<Self> {
        // The identity reads procfs (boot id, PID namespace) the first time.
        let instance_id = storage::blocking(|| Ok(lock::new_instance_id())).await?;
        let offsite = config
            .offsite
            .clone()
            .map(storage::offsite::Offsite::open)
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            inner: Arc::new(Inner {
                dbs,
                tools,
                config,
                instance_id,
                verified: Default::default(),
                budget: Default::default(),
                dir_watch: Default::default(),
                offsite,
                target_watch: Default::default(),
                notifier: Default::default(),
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
                budget: self.inner.budget.clone(),
                dir_watch: self.inner.dir_watch.clone(),
                offsite: self.inner.offsite.clone(),
                target_watch: self.inner.target_watch.clone(),
                notifier: self.inner.notifier.clone(),
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
                budget: self.inner.budget.clone(),
                dir_watch: self.inner.dir_watch.clone(),
                offsite: self.inner.offsite.clone(),
                target_watch: self.inner.target_watch.clone(),
                notifier: self.inner.notifier.clone(),
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

    /// The room writers have claimed on the backup directory's disk.
    pub(crate) fn disk_budget(&self) -> &Arc<storage::DiskBudget> {
        &self.inner.budget
    }

    /// What was last seen of the backup directory.
    pub(crate) fn dir_watch(&self) -> &crate::backup::DirWatch {
        &self.inner.dir_watch
    }

    /// The off-site target, when one is configured.
    pub fn offsite(&self) -> Option<&storage::offsite::Offsite> {
        self.inner.offsite.as_deref()
    }

    /// Wakes this instance's notification deliverer.
    pub(crate) fn notifier(&self) -> &tokio::sync::Notify {
        &self.inner.notifier
    }

    /// What was last seen of the off-site target.
    pub(crate) fn target_watch(&self) -> &crate::offsite::TargetWatch {
        &self.inner.target_watch
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
        let backup_dir = self.backup_dir_unavailable().await?;
        let missing_backups = crate::catalog::count_with_status(
            &self.dbs().control,
            lms_types::BackupStatus::Missing,
        )
        .await?;
        let missing_kept_offsite = if missing_backups > 0 {
            crate::catalog::count_missing_kept_offsite(&self.dbs().control).await?
        } else {
            0
        };
        Ok(OperationStatus {
            lock,
            job,
            maintenance,
            undo_available,
            backup_dir,
            missing_backups,
            missing_kept_offsite,
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
            offsite: self.offsite_status().await?,
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
