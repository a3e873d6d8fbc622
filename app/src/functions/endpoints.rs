//! The server functions as endpoints: every registered one, with who may
//! call it and whether it answers in maintenance mode. The paths come from
//! the server function registry and the types' own `PATH`, so renaming or
//! adding a function needs no list updated by hand; a new one is for
//! administrators and closed in maintenance until said otherwise here.

use leptos::server_fn::ServerFn;

use super::{
    GetBackup, GetBackupHealth, GetJob, GetOperationStatus, GetStorageSummary, ListBackups, Login,
    Logout, RecentActivity, Whoami,
};
use crate::ssr::{Access, Endpoint};

/// Open to everyone: signing in and out, and asking who is signed in (which
/// reveals nothing but the caller's own account).
const PUBLIC: [&str; 3] = [Login::PATH, Logout::PATH, Whoami::PATH];

/// Admin reads of the control database only (what is running, the catalog,
/// the audit log): they keep answering while the LMS database is switched.
const IN_MAINTENANCE: [&str; 7] = [
    GetOperationStatus::PATH,
    GetBackupHealth::PATH,
    GetJob::PATH,
    ListBackups::PATH,
    GetBackup::PATH,
    GetStorageSummary::PATH,
    RecentActivity::PATH,
];

/// Every server function this binary serves.
pub fn server_fn_endpoints() -> Vec<Endpoint> {
    let mut endpoints: Vec<Endpoint> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| Endpoint {
            method,
            path,
            access: if PUBLIC.contains(&path) {
                Access::Anyone
            } else {
                Access::Admins
            },
            in_maintenance: IN_MAINTENANCE.contains(&path),
            // The console's own calls: never open to an API token.
            scope: None,
        })
        .collect();
    endpoints.sort_by_key(|e| e.path);
    endpoints
}
