//! PostgreSQL itself: the two databases and their connections, the names of
//! the databases kept beside the LMS one, the client tools (`pg_dump`,
//! `pg_restore`), the processes that run them and the connection settings
//! they get (libpq.rs), archives and the accounts they hold, content
//! fingerprints, and what the LMS database holds right now.

pub mod accounts;
pub mod archive;
pub mod databases;
pub mod fingerprint;
pub mod grants;
pub mod libpq;
pub mod names;
pub mod overview;
pub mod process;
pub mod tools;
