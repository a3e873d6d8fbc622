//! The backup and restore engine of the LMS admin console.
//!
//! This crate knows PostgreSQL, the tools that dump and restore it, and the
//! control database that records what the console does. It knows nothing of
//! HTTP or of the browser: the `server` binary and the `app` server functions
//! call into it, and the same functions back both.
//!
//! A guided tour:
//! - [`db`]: the two databases (LMS data and control), connecting, creating
//!   the control database, migrations.
//! - [`users`]: LMS accounts, roles and password checks.
//! - [`overview`]: what the LMS database holds right now.
//! - [`pgtools`]: finding `pg_dump` / `pg_restore` and checking their versions.
//! - [`audit`]: the audit log in the control database.
//! - [`Engine`]: the handle everything else holds; backups
//!   ([`backup`]), delete/retention/download, start-up recovery.
//! - [`lock`] and [`jobs`]: one operation at a time across instances, each
//!   followed as a job with real progress.
//! - [`archive`], [`process`], [`fingerprint`], [`storage`]: pg_dump and
//!   pg_restore runs, content fingerprints, the backup directory.
//! - [`catalog`]: the backup catalog in the control database.
//! - [`demo`]: realistic demo data for the LMS database.

pub mod audit;
pub mod backup;
pub mod catalog;
pub mod config;
pub mod demo;
mod engine;
mod error;
pub mod jobs;
pub mod postgres;
mod recovery;
pub mod restore;
pub mod settings;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use backup::Download;
pub use config::EngineConfig;
pub use engine::{Engine, OperationStatus, StorageSummary};
pub use error::{Error, Result};
pub use postgres::databases::Databases;
pub use recovery::RecoveryReport;
