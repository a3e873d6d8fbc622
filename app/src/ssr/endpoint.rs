//! [`Endpoint`]: one row of the table the router's gates and the tests read
//! (who may call what, and what stays open while a restore switches the
//! databases). The server functions' rows come from their own types
//! ([`crate::functions::server_fn_endpoints`]), the REST routes' from the
//! router that serves them.

use http::Method;
use lms_types::TokenScope;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: signing in and out, asking who is signed in.
    Anyone,
    /// Signed-in administrators; 401 for strangers, 403 for everyone else.
    Admins,
}

/// One endpoint as the gates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    /// The path; `{name}` stands for one path segment.
    pub path: &'static str,
    pub access: Access,
    /// Still answered in maintenance mode: admin reads of the control
    /// database, so administrators can follow a restore's switch.
    pub in_maintenance: bool,
    /// The API token scope that opens it, if any: a request with
    /// `Authorization: Bearer` is refused by every endpoint without one.
    pub scope: Option<TokenScope>,
}

impl Endpoint {
    /// Whether a request path is this endpoint's path (a `{name}` segment
    /// matches any one non-empty segment).
    pub fn matches_path(&self, path: &str) -> bool {
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                    if g.is_empty() {
                        return false;
                    }
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(path: &'static str) -> Endpoint {
        Endpoint {
            method: Method::GET,
            path,
            access: Access::Admins,
            in_maintenance: false,
            scope: None,
        }
    }

    #[test]
    fn templates_match_one_segment_per_parameter() {
        let by_id = endpoint("/api/admin/backup/{id}");
        assert!(by_id.matches_path("/api/admin/backup/12"));
        assert!(by_id.matches_path("/api/admin/backup/status"));
        assert!(!by_id.matches_path("/api/admin/backup/"));
        assert!(!by_id.matches_path("/api/admin/backup"));
        assert!(!by_id.matches_path("/api/admin/backup/1/2"));
        let exact = endpoint("/api/fn/login");
        assert!(exact.matches_path("/api/fn/login"));
        assert!(!exact.matches_path("/api/fn/login/"));
        assert!(!exact.matches_path("/api/fn/logi"));
    }
}
