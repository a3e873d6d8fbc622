//! The REST API (`/api/auth/*`, `/api/admin/*`). Every route is declared
//! through [`ApiRoutes`], which also keeps the list of (method, path) pairs:
//! the authorization tests walk that list, so a new route is tested the
//! moment it is added.

mod admin;
mod auth;
mod backups;

use app::error::AppError;
use app::ssr::AppState;
use axum::extract::rejection::JsonRejection;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::{Json, Router};

/// A router that remembers what it routes.
pub struct ApiRoutes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
}

impl ApiRoutes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        self.router = self.router.route(path, on(filter, handler));
        self.table.push((method, path));
        self
    }

    fn get<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::GET, path, h)
    }

    fn post<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::POST, path, h)
    }

    fn delete<H: axum::handler::Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        h: H,
    ) -> Self {
        self.add(Method::DELETE, path, h)
    }
}

fn routes() -> ApiRoutes {
    backups::routes(admin::routes(auth::routes(ApiRoutes::new())))
}

/// The REST routes, ready to merge into the application.
pub fn router() -> Router<AppState> {
    routes()
        .router
        .route("/api/{*rest}", axum::routing::any(unknown_api_path))
}

/// Every REST route as (method, path template), for tests and docs.
pub fn route_table() -> Vec<(Method, &'static str)> {
    routes().table
}

async fn unknown_api_path() -> AppError {
    AppError::NotFound("No such API endpoint".into())
}

/// Turns a JSON body rejection into the API's error shape.
fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    body.map(|Json(v)| v)
        .map_err(|e| AppError::BadRequest(format!("Invalid request body: {}", e.body_text())))
}
