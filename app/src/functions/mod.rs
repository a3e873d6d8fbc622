//! Server functions: public endpoints under `/api/fn/`. Each one checks the
//! session itself and calls one engine function; nothing else happens here.
//! All take JSON, so a cross-site HTML form cannot call them.

mod admin;
mod auth;
mod backups;

pub use admin::*;
pub use auth::*;
pub use backups::*;
