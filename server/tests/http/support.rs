//! `spawn_app()`: the application on 127.0.0.1:0 with its own databases.

use std::net::SocketAddr;
use std::sync::Arc;

use app::ssr::{AppState, BearerToken, Config, LoginLimiter, TrustedProxies};
use leptos::config::LeptosOptions;
use lms_backup::testing::Gate;
use lms_backup::users::{self, NewUser, Role};
use lms_backup::{Databases, Engine};

use crate::client::ApiClient;

pub const PASSWORD: &str = "correct horse battery staple";

/// The bearer token the test apps' `/metrics` asks for.
pub const METRICS_TOKEN: &str = "metrics-token-for-tests-0123456789";
/// Requests each API token may make per minute in tests: enough for any
/// test but the one that runs out of it.
pub const TOKEN_REQUESTS_PER_MINUTE: u32 = 30;

/// `dir/backups`, created as an operator would before starting the server
/// (it never creates a missing backup directory).
pub fn backup_dir_in(dir: &std::path::Path) -> std::path::PathBuf {
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups).expect("create the backup directory");
    backups
}

pub struct TestApp {
    pub base: String,
    pub dbs: Databases,
    pub engine: Engine,
    /// What the router serving `base` was built from.
    pub state: AppState,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client with its own, empty cookie jar: nobody signed in.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.base)
    }

    pub async fn create_user(&self, username: &str, role: Role) {
        users::create(
            &self.dbs.lms,
            NewUser {
                username,
                email: &format!("{username}@example.edu"),
                full_name: "",
                role,
                password: PASSWORD,
            },
        )
        .await
        .unwrap();
    }

    /// A client with an empty cookie jar connecting from another loopback
    /// address (`127.0.0.<last>`), so the server sees another machine.
    pub fn client_from(&self, last: u8) -> ApiClient {
        ApiClient::from_address(&self.base, [127, 0, 0, last].into())
    }

    /// A client signed in as a new user with the given role.
    pub async fn signed_in(&self, username: &str, role: Role) -> ApiClient {
        self.create_user(username, role).await;
        let client = self.client();
        client
            .sign_in(username, PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("sign-in of {username}: {e:?}"));
        client
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The application behind a reverse proxy at `trusted` (`TRUSTED_PROXIES`).
pub async fn spawn_app_behind_proxy(trusted: &str) -> TestApp {
    serve_with(engine_with(|_| {}).await, trusted.parse().unwrap()).await
}

/// The application with its engine configuration adjusted.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut lms_backup::EngineConfig)) -> TestApp {
    serve(engine_with(adjust).await).await
}

/// The application whose pg_dump stops at `dump`, and whose pg_restore at
/// `restore`, until the test opens the gate: a backup or a restore stays
/// running for as long as the test needs (see [`Gate`]).
pub async fn spawn_app_with_gates(dump: Option<&Gate>, restore: Option<&Gate>) -> TestApp {
    let engine = engine_with(|_| {}).await;
    let bin = lms_backup::testing::gated_tools(engine.tools(), dump, restore);
    let tools = lms_backup::postgres::tools::locate(Some(&bin))
        .await
        .unwrap();
    serve(engine.with_tools(tools)).await
}

async fn engine_with(adjust: impl FnOnce(&mut lms_backup::EngineConfig)) -> Engine {
    lms_backup::testing::spawn_engine_with(|c| {
        c.sign_out_everyone = Some(server::sessions::sign_out_everyone);
        adjust(c)
    })
    .await
}

/// Serves the application on `engine` at 127.0.0.1 on a free port.
async fn serve(engine: Engine) -> TestApp {
    serve_with(engine, TrustedProxies::default()).await
}

async fn serve_with(engine: Engine, trusted_proxies: TrustedProxies) -> TestApp {
    let dbs = engine.dbs().clone();
    let store = server::sessions::store(&dbs.control).await.unwrap();
    let state = AppState {
        leptos_options: LeptosOptions::builder().output_name("lms-admin").build(),
        engine: engine.clone(),
        login_limiter: Arc::new(LoginLimiter::default()),
        config: Arc::new(Config {
            secure_cookies: false,
            trusted_proxies,
            metrics_token: Some(BearerToken::new(METRICS_TOKEN)),
            token_requests_per_minute: std::num::NonZeroU32::new(TOKEN_REQUESTS_PER_MINUTE)
                .unwrap(),
        }),
    };
    let router = server::router(state.clone(), server::sessions::layer(store, false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestApp {
        base: format!("http://{addr}"),
        dbs,
        engine,
        state,
    }
}
