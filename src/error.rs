use std::process::ExitStatus;

/// Everything the engine can fail with. Messages are written for an
/// administrator; internal detail (SQL, stderr, paths) stays in fields that
/// callers log but never show.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error")]
    Database(#[from] sqlx::Error),

    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    #[error("file system error")]
    Io(#[from] std::io::Error),

    /// A PostgreSQL client tool could not be found or is unusable.
    #[error("{0}")]
    Tool(String),

    /// A PostgreSQL client tool ran and failed.
    #[error("{tool} failed ({status})")]
    ToolFailed {
        tool: &'static str,
        status: ExitStatus,
        /// The last lines of the tool's stderr, for the log only.
        stderr_tail: String,
    },

    /// The request cannot be carried out as given; the message says why.
    #[error("{0}")]
    Invalid(String),

    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),

    /// The thing already exists.
    #[error("{0}")]
    Conflict(String),

    /// Configuration is missing or wrong; the message says what to set.
    #[error("{0}")]
    Config(String),

    /// Another operation holds the operation lock (its `Display` says
    /// which, who started it and when).
    #[error("{0}")]
    Busy(Box<crate::jobs::lock::LockInfo>),

    /// Too many requests of this kind; the next is allowed at `retry_at`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_at: chrono::DateTime<chrono::Utc>,
    },

    /// The input is over a size limit.
    #[error("{0}")]
    TooLarge(String),

    /// The other side was too slow: nothing arrived in time.
    #[error("{0}")]
    TimedOut(String),

    /// The operation was cancelled (its lease was lost or it was stopped).
    #[error("{0}")]
    Cancelled(String),

    /// The backup directory cannot be used (not there, unreadable, or not
    /// where the catalog's backups are); the message names it and says
    /// what to do.
    #[error("{0}")]
    StorageUnavailable(String),

    /// Not enough room on the backup directory's disk; the message gives
    /// the sizes.
    #[error("{0}")]
    InsufficientStorage(String),

    /// The off-site target failed or refused; the message says what to
    /// check (its own answer is in the log).
    #[error("{0}")]
    Offsite(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
