//! Every admin endpoint refuses anonymous (401) and non-admin (403) callers.
//! The endpoints come from the one table the router's gates read
//! (`server::api::endpoints`), so a new route or server function is covered
//! without touching this file.

use app::ssr::Access;
use lms_backup::users::Role;
use reqwest::{Client, Method};

use crate::support::{spawn_app, TestApp};

/// Every endpoint only administrators may call, REST routes and server
/// functions alike, with a path parameter filled in.
fn admin_endpoints() -> Vec<(Method, String)> {
    let endpoints: Vec<(Method, String)> = server::api::endpoints()
        .all()
        .iter()
        .filter(|e| e.access == Access::Admins)
        .map(|e| (e.method.clone(), e.path.replace("{id}", "1")))
        .collect();
    assert!(
        endpoints.iter().any(|(_, p)| p.starts_with("/api/fn/")),
        "server functions are registered"
    );
    endpoints
}

async fn call(app: &TestApp, client: &Client, method: &Method, path: &str) -> u16 {
    let mut req = client.request(method.clone(), app.url(path));
    if method != Method::GET {
        req = req.json(&serde_json::json!({}));
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_endpoint_table_is_complete() {
    let table = server::api::endpoints();
    let table = table.all();
    for expected in [
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/admin/backup/list",
    ] {
        assert!(
            table.iter().any(|e| e.path == expected),
            "{expected} not in the endpoint table"
        );
    }
    // Every registered server function is in the table, behind the admin
    // gate unless it is one of the few open to everyone.
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        assert!(path.starts_with("/api/fn/"), "{path}");
        assert!(
            table.iter().any(|e| e.path == path && e.method == method),
            "{method} {path} not in the endpoint table"
        );
    }
    let mut open: Vec<String> = table
        .iter()
        .filter(|e| e.access == Access::Anyone)
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    open.sort();
    assert_eq!(
        open,
        [
            "GET /api/auth/me",
            "POST /api/auth/login",
            "POST /api/auth/logout",
            "POST /api/fn/login",
            "POST /api/fn/logout",
            "POST /api/fn/whoami",
        ],
        "only signing in and out and asking who is signed in are open to everyone"
    );
}

/// Every endpoint with its own method and with GET, POST and DELETE, each
/// plain and with forged forwarding headers claiming to come from the
/// server itself.
fn attempts() -> Vec<(Method, String, bool)> {
    let mut out = Vec::new();
    for (own, path) in admin_endpoints() {
        let mut methods = vec![own, Method::GET, Method::POST, Method::DELETE];
        methods.dedup();
        for method in methods {
            for forged in [false, true] {
                out.push((method.clone(), path.clone(), forged));
            }
        }
    }
    out
}

async fn attempt(app: &TestApp, client: &Client, method: &Method, path: &str, forged: bool) -> u16 {
    let mut req = client.request(method.clone(), app.url(path));
    if method != Method::GET {
        req = req.json(&serde_json::json!({"confirm": true}));
    }
    if forged {
        req = req
            .header("x-forwarded-for", "127.0.0.1")
            .header("x-real-ip", "127.0.0.1")
            .header("forwarded", "for=127.0.0.1;host=localhost;proto=https");
    }
    req.send().await.unwrap().status().as_u16()
}

/// Nothing a refused caller could have started or changed.
async fn nothing_changed(app: &TestApp) {
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    let backups: i64 = sqlx::query_scalar("SELECT count(*) FROM backup_history")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!((jobs, backups), (0, 0), "no job and no backup");
    let dirs = [
        app.engine.config().backup_dir.clone(),
        app.engine.config().metadata_dir(),
    ];
    let files: Vec<_> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| !e.file_type().unwrap().is_dir())
        .map(|e| e.path())
        .collect();
    assert!(
        files.is_empty(),
        "nothing written to the backup directory: {files:?}"
    );
}

#[tokio::test]
async fn anonymous_callers_get_401_everywhere() {
    let app = spawn_app().await;
    let client = app.client();
    let tried = attempts();
    for (method, path, forged) in &tried {
        assert_eq!(
            attempt(&app, &client, method, path, *forged).await,
            401,
            "{method} {path} (forged forwarding headers: {forged})"
        );
    }
    assert!(tried.len() > 50, "{} attempts", tried.len());
    println!("{} anonymous attempts, all 401", tried.len());
    nothing_changed(&app).await;
}

#[tokio::test]
async fn instructors_and_students_get_403_everywhere() {
    let app = spawn_app().await;
    for (name, role) in [("ingrid", Role::Instructor), ("sam", Role::Student)] {
        let client = app.signed_in(name, role).await;
        for (method, path, forged) in attempts() {
            assert_eq!(
                attempt(&app, &client, &method, &path, forged).await,
                403,
                "{name}: {method} {path} (forged forwarding headers: {forged})"
            );
        }
    }
    nothing_changed(&app).await;
    // Each refusal is audited with who, from where, and what they tried.
    let refused: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor_name, target FROM audit_log
         WHERE action = 'admin.refused' AND outcome = 'denied' AND client_ip = '127.0.0.1'",
    )
    .fetch_all(&app.dbs.control)
    .await
    .unwrap();
    assert_eq!(refused.len(), 2 * attempts().len());
    assert!(
        refused.contains(&("sam".into(), "DELETE /api/admin/backup/1".into())),
        "{refused:?}"
    );
}

#[tokio::test]
async fn admins_get_through() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    for (method, path) in admin_endpoints() {
        let status = call(&app, &client, &method, &path).await;
        assert!(status != 401 && status != 403, "{method} {path}: {status}");
    }
}

#[tokio::test]
async fn a_disabled_admin_loses_access_at_once() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    assert_eq!(
        call(&app, &client, &Method::GET, "/api/admin/backup/list").await,
        200
    );
    sqlx::query("UPDATE users SET is_active = false WHERE username = 'alice'")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    assert_eq!(
        call(&app, &client, &Method::GET, "/api/admin/backup/list").await,
        401
    );
}

#[tokio::test]
async fn admin_api_answers_with_real_data() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let overview: serde_json::Value = client
        .get(app.url("/api/admin/database/overview"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = overview["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "users")
        .unwrap();
    assert_eq!(users["rows"], 211, "210 demo users and alice");

    let list: serde_json::Value = client
        .get(app.url("/api/admin/backup/list?skip=0&limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, serde_json::json!({ "backups": [], "total": 0 }));
    let bad = client
        .get(app.url("/api/admin/backup/list?skip=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let via_fn: serde_json::Value = client
        .post(app.url("/api/fn/database_overview"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        via_fn, overview,
        "server function and REST route share one engine call"
    );
}

/// A server function refused before it runs answers in its own encoding, so
/// the browser can tell "signed out" (and go to the sign-in page) from other
/// failures.
#[tokio::test]
async fn refused_server_functions_answer_in_their_own_encoding() {
    let app = spawn_app().await;
    let response = Client::new()
        .post(app.url("/api/fn/operation_status"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: app::error::AppError = response.json().await.unwrap();
    assert!(
        matches!(error, app::error::AppError::Unauthorized(_)),
        "{error:?}"
    );
}
