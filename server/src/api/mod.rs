//! The REST API (`/api/auth/*`, `/api/admin/*`) and the one table of every
//! endpoint the application serves.
//!
//! Every REST route is declared through [`ApiRoutes`], which keeps its
//! [`Endpoint`] row (method, path, who may call it, whether it answers in
//! maintenance mode) as it routes it. [`endpoints`] puts those rows together
//! with the server functions' (derived from their types by
//! [`app::functions::server_fn_endpoints`]): the router's gates decide from
//! that table, and the authorization and same-origin tests walk it, so a new
//! route or server function is gated and tested the moment it exists.

mod admin;
mod auth;
mod backups;
mod health;
mod notify;
mod records;
mod schedules;
mod tokens;

use app::error::AppError;
use app::ssr::{Access, AppState, Endpoint};
use axum::extract::rejection::JsonRejection;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};
use lms_types::TokenScope;

/// A router that remembers what it routes.
pub struct ApiRoutes {
    router: Router<AppState>,
    table: Vec<Endpoint>,
    /// Who may call the routes being added (set per group).
    access: Access,
}

impl ApiRoutes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
            access: Access::Admins,
        }
    }

    /// Adds one module's routes, open to `access`.
    fn group(mut self, access: Access, routes: fn(ApiRoutes) -> ApiRoutes) -> Self {
        self.access = access;
        routes(self)
    }

    fn add<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        in_maintenance: bool,
        handler: H,
    ) -> Self
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        self.router = self.router.route(path, on(filter, handler));
        self.table.push(Endpoint {
            method,
            path,
            access: self.access,
            in_maintenance,
            scope: None,
        });
        self
    }

    /// Opens the route just added to API tokens with `scope`.
    fn scoped(mut self, scope: TokenScope) -> Self {
        let last = self.table.last_mut().expect("a route was added");
        last.scope = Some(scope);
        self
    }

    fn get<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::GET, path, false, h)
    }

    /// A GET that keeps answering in maintenance mode: for admin reads of
    /// the control database only (never the LMS database being switched).
    fn get_in_maintenance<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::GET, path, true, h)
    }

    fn post<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::POST, path, false, h)
    }

    fn put<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::PUT, path, false, h)
    }

    fn delete<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::DELETE, path, false, h)
    }
}

fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .group(Access::Anyone, auth::routes)
        .group(Access::Admins, admin::routes)
        .group(Access::Admins, backups::routes)
        .group(Access::Admins, records::routes)
        .group(Access::Admins, schedules::routes)
        .group(Access::Admins, tokens::routes)
        .group(Access::Admins, notify::routes)
        .group(Access::Anyone, health::routes)
}

/// The REST routes, ready to merge into the application.
pub fn router() -> Router<AppState> {
    routes()
        .router
        .route("/api/{*rest}", axum::routing::any(unknown_api_path))
}

/// Every endpoint the application serves: the REST routes, then the server
/// functions.
pub fn endpoints() -> Endpoints {
    let mut table = routes().table;
    table.extend(app::functions::server_fn_endpoints());
    Endpoints(table)
}

/// The table of [`endpoints`], and the questions the gates ask it.
#[derive(Debug, Clone)]
pub struct Endpoints(Vec<Endpoint>);

impl Endpoints {
    /// Every row.
    pub fn all(&self) -> &[Endpoint] {
        &self.0
    }

    /// The rows of the route a request path goes to: as the router picks
    /// it, a literal segment wins over a `{name}` one (`/api/admin/backup/upload`
    /// is the upload route, whatever its method, not a backup id).
    fn route<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Endpoint> + 'a {
        let matching = || self.0.iter().filter(move |e| e.matches_path(path));
        let best = matching().map(|e| literal_segments(e.path)).max();
        matching().filter(move |e| Some(literal_segments(e.path)) == best)
    }

    /// Who may call `path`, whatever the method (a server function called
    /// with the wrong method is refused by its own gate). Paths no endpoint
    /// answers are for administrators inside `/api/admin/` and `/api/fn/`,
    /// so strangers cannot even learn which exist, and open elsewhere (they
    /// are pages, assets or 404s).
    pub fn access(&self, path: &str) -> Access {
        if let Some(endpoint) = self.route(path).next() {
            return endpoint.access;
        }
        if path.starts_with("/api/admin/") || is_server_fn(path) {
            Access::Admins
        } else {
            Access::Anyone
        }
    }

    /// The scope an API token needs for `method path`; `None` where no
    /// token is accepted (server functions, pages, every other route).
    pub fn token_scope(&self, method: &Method, path: &str) -> Option<TokenScope> {
        self.route(path)
            .find(|e| e.method == method)
            .and_then(|e| e.scope)
    }

    /// Whether `method path` still answers in maintenance mode. Server
    /// functions are found by path alone: called with another method they
    /// meet their own refusal rather than the maintenance page.
    pub fn in_maintenance(&self, method: &Method, path: &str) -> bool {
        self.route(path)
            .any(|e| e.in_maintenance && (e.method == method || is_server_fn(e.path)))
    }
}

fn literal_segments(template: &str) -> usize {
    template
        .split('/')
        .filter(|segment| !segment.starts_with('{'))
        .count()
}

/// Server functions live under `/api/fn/`.
pub fn is_server_fn(path: &str) -> bool {
    path.starts_with("/api/fn/")
}

async fn unknown_api_path() -> AppError {
    AppError::NotFound("No such API endpoint".into())
}

/// Turns a JSON body rejection into the API's error shape.
fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    body.map(|Json(v)| v)
        .map_err(|e| AppError::BadRequest(format!("Invalid request body: {}", e.body_text())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_paths_are_recognised() {
        let table = endpoints();
        for path in [
            "/api/admin/backup/list",
            "/api/admin/backup/7",
            "/api/admin/no-such-thing",
            "/api/fn/list_backups",
            "/api/fn/no_such_function",
        ] {
            assert_eq!(table.access(path), Access::Admins, "{path}");
        }
        for path in ["/api/fn/login", "/api/auth/login", "/api/auth/me", "/admin"] {
            assert_eq!(table.access(path), Access::Anyone, "{path}");
        }
    }

    #[test]
    fn rest_access_agrees_with_its_namespace() {
        // The fallback for unknown paths must give each known route the
        // access it was declared with.
        for e in routes().table {
            assert_eq!(
                e.access == Access::Admins,
                e.path.starts_with("/api/admin/"),
                "{} {}",
                e.method,
                e.path
            );
        }
    }

    #[test]
    fn only_control_database_reads_answer_in_maintenance() {
        let table = endpoints();
        let get = Method::GET;
        assert!(table.in_maintenance(&get, "/api/admin/backup/status"));
        assert!(table.in_maintenance(&get, "/api/admin/backup/list"));
        assert!(table.in_maintenance(&get, "/api/admin/backup/12"));
        assert!(table.in_maintenance(&get, "/api/admin/backup/jobs/x"));
        assert!(table.in_maintenance(&Method::POST, "/api/fn/operation_status"));
        assert!(!table.in_maintenance(&Method::DELETE, "/api/admin/backup/12"));
        assert!(!table.in_maintenance(&get, "/api/admin/backup/download/12"));
        assert!(!table.in_maintenance(&get, "/api/admin/backup/upload"));
        assert!(!table.in_maintenance(&get, "/api/admin/database/overview"));
        assert!(!table.in_maintenance(&Method::POST, "/api/fn/database_overview"));
        assert!(!table.in_maintenance(&Method::POST, "/api/auth/login"));
        assert!(!table.in_maintenance(&get, "/admin"));
    }
}
