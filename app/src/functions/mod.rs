//! Server functions: public endpoints under `/api/fn/`, the UI's way in.
//! Each one checks the session itself (`as_admin`, or `as_visitor` for
//! signing in and out) and calls one operation of [`crate::ops`] (server
//! only), the same one the matching REST route calls; nothing else happens
//! here. All take JSON, so a cross-site HTML form cannot call them.

mod admin;
mod auth;
mod backups;
#[cfg(feature = "ssr")]
mod endpoints;
mod notify;
mod records;
mod schedules;
mod tokens;

pub use admin::*;
pub use auth::*;
pub use backups::*;
#[cfg(feature = "ssr")]
pub use endpoints::server_fn_endpoints;
pub use notify::*;
pub use records::*;
pub use schedules::*;
pub use tokens::*;
