//! The backup and restore engine of the LMS admin console.
//!
//! This crate knows PostgreSQL, the tools that dump and restore it, and the
//! control database that records what the console does. It knows nothing of
//! HTTP or of the browser: the `server` binary and the `app` server functions
//! call into it, and the same functions back both.
//!
//! A guided tour, by capability (each folder is one room):
//! - [`Engine`] (`engine.rs`): the handle everything else holds, and what is
//!   running right now ([`Engine::operation_status`]).
//! - [`backup`]: [`Engine::start_backup`] and its phases, uploads, delete
//!   and download.
//! - [`retention`]: which backups are kept (grandfather-father-son per
//!   schedule, pins), its dry run, and the pass that deletes the rest.
//! - [`restore`]: [`Engine::start_restore`] and [`Engine::start_undo`]: the
//!   gates, the restore into a copy, its check, the switch, undo.
//! - [`records`]: against a prepared copy (a backup restored beside the
//!   live database, `restore::prepared`): what a restore would change, row
//!   by row, and deleted records brought back with what belongs to them,
//!   undoable.
//! - [`jobs`]: one operation at a time across instances ([`jobs::lock`],
//!   [`jobs::lease`]), each followed as a job that begins and ends in one
//!   place ([`jobs::run`]), with messages for people ([`jobs::messages`]).
//! - [`catalog`]: the backup catalog in the control database.
//! - [`storage`]: where archives live (the backup directory, manifests, the
//!   off-site target); every file-system call runs off the async threads.
//! - [`offsite`]: each backup's off-site copy (made, read back, retried,
//!   checked for, deleted with its backup).
//! - [`postgres`]: the two databases, `pg_dump` / `pg_restore` and their
//!   processes, archives, content fingerprints, the overview.
//! - [`schedule`]: schedules (cron in an IANA zone) and the scheduler that
//!   starts each due backup once across instances.
//! - [`health`]: each schedule's newest verified backup against its
//!   recovery point objective, and the lock: green, amber or red.
//! - [`notify`]: e-mail and signed webhooks through an outbox written with
//!   each outcome; delivered at least once by any instance; the dead-man's
//!   switch (an RPO breached, a stuck lock).
//! - [`tokens`]: API tokens for pipelines (scoped, stored hashed, revocable).
//! - `recovery`: start-up and watchdog repair after a crash.
//! - [`audit`], [`users`], [`settings`] (maintenance mode), [`demo`].
//!
//! The vocabulary (operations, states, kinds, phases) is the `lms-types`
//! crate, shared with the browser.

pub mod audit;
pub mod backup;
pub mod catalog;
pub mod config;
pub mod demo;
mod engine;
mod error;
pub mod health;
pub mod jobs;
pub mod notify;
pub mod offsite;
pub mod postgres;
pub mod records;
mod recovery;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod settings;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod users;

pub use backup::Download;
pub use config::{EngineConfig, DEFAULT_BACKUP_COMPRESSION};
pub use engine::{Engine, OperationStatus, StorageSummary};
pub use error::{Error, Result};
pub use postgres::databases::Databases;
pub use recovery::RecoveryReport;
