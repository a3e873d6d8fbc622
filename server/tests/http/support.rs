//! `spawn_app()`: the application on 127.0.0.1:0 with its own databases.

use std::net::SocketAddr;
use std::sync::Arc;

use app::ssr::{AppState, Config, LoginLimiter};
use leptos::config::LeptosOptions;
use lms_backup::users::{self, NewUser, Role};
use lms_backup::{Databases, Engine};
use reqwest::Client;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub dbs: Databases,
    pub engine: Engine,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client with its own cookie jar.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
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

    /// A client signed in as a new user with the given role.
    pub async fn signed_in(&self, username: &str, role: Role) -> Client {
        self.create_user(username, role).await;
        let client = self.client();
        let res = client
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "sign-in of {username}");
        client
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The application with its engine configuration adjusted.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut lms_backup::EngineConfig)) -> TestApp {
    let engine = lms_backup::testing::spawn_engine_with(|c| {
        c.sign_out_everyone = Some(server::sessions::sign_out_everyone);
        adjust(c)
    })
    .await;
    let dbs = engine.dbs().clone();
    let store = server::sessions::store(&dbs.control).await.unwrap();
    let state = AppState {
        leptos_options: LeptosOptions::builder().output_name("lms-admin").build(),
        engine: engine.clone(),
        login_limiter: Arc::new(LoginLimiter::default()),
        config: Arc::new(Config {
            secure_cookies: false,
        }),
    };
    let router = server::router(state, server::sessions::layer(store, false));
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
    }
}

/// `POST /api/admin/backup/create` without a body; the response as JSON.
pub async fn start_backup(app: &TestApp, client: &Client) -> serde_json::Value {
    client
        .post(app.url("/api/admin/backup/create"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls a job through the API until it ends.
pub async fn wait_for_job(app: &TestApp, client: &Client, job_id: &str) -> serde_json::Value {
    for _ in 0..1200 {
        let job: serde_json::Value = client
            .get(app.url(&format!("/api/admin/backup/jobs/{job_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {job_id} did not finish in 120 s");
}
