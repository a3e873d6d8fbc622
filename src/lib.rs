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
//! - [`catalog`]: the backup catalog as stored in the control database.
//! - [`demo`]: realistic demo data for the LMS database.

pub mod audit;
pub mod catalog;
pub mod db;
pub mod demo;
mod error;
pub mod overview;
pub mod pgtools;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use db::Databases;
pub use error::{Error, Result};
