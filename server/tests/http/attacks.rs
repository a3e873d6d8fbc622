//! Requests an attacker (or a careless client) might send, and secrets that
//! must not leak: each states the safe behaviour.

use std::time::Duration;

use lms_backup::users::Role;
use reqwest::Method;
use serde_json::json;

use crate::crash::{create_admin, json, sign_in, slow_tools, start};
use crate::support::spawn_app;

async fn jobs(app: &crate::support::TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap()
}

/// A server function reached through GET (a link, an image) or DELETE does
/// nothing: 401 for strangers, 403 for everyone else, admins included.
#[tokio::test]
async fn server_functions_answer_only_post() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    for method in [Method::GET, Method::DELETE, Method::PUT] {
        for path in [
            "/api/fn/create_backup?notes=x",
            "/api/fn/create_backup",
            "/api/fn/restore_backup?id=1&confirm=true",
            "/api/fn/login",
        ] {
            let res = admin
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{method} {path}");
            let res = app
                .client()
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            let expected = if path == "/api/fn/login" { 403 } else { 401 };
            assert_eq!(res.status(), expected, "anonymous {method} {path}");
        }
    }
    assert_eq!(jobs(&app).await, 0, "nothing was started");
}

/// A body that does not decode is the caller's mistake (400), and the answer
/// carries no decoder internals.
#[tokio::test]
async fn undecodable_server_function_bodies_are_400() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    for body in ["{bad", "[]", "{\"notes\": 5}", "\u{0}", ""] {
        let res = admin
            .post(app.url("/api/fn/create_backup"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body:?}");
        let error: app::error::AppError = res.json().await.unwrap();
        assert_eq!(
            error,
            app::error::AppError::BadRequest("The request is not what this call expects.".into()),
            "{body:?}"
        );
    }
    let res = admin
        .post(app.url("/api/fn/restore_backup"))
        .json(&json!({ "id": "1; DROP TABLE users", "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(jobs(&app).await, 0, "nothing was started");
}

/// The database password never reaches a child process's command line or
/// environment (where `ps` and `/proc` would show it), checked on the real
/// binary while pg_dump runs.
#[tokio::test]
async fn the_password_is_in_no_child_command_line_or_environment() {
    let dir = lms_backup::testing::scratch_dir("secrets");
    let url = lms_backup::testing::fresh_database_url().await;
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, p)| p.to_owned())
        .expect("the test URL carries a password");
    assert!(password.len() >= 6, "a password worth looking for");
    let env = [
        ("DATABASE_URL", url),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
        (
            "POSTGRES_BIN_PATH",
            slow_tools().await.display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);
    let server = start(&env).await;
    let client = sign_in(&server).await;
    let started = json(
        client
            .post(format!("{}/api/admin/backup/create", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let job = started["job"]["id"].as_str().unwrap().to_owned();
    let server_pid = server.child.id();
    let mut children_seen = 0;
    for _ in 0..300 {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
                continue;
            };
            let parent = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|p| p.trim().parse::<u32>().ok());
            if parent != Some(server_pid) || pid == server_pid {
                continue;
            }
            children_seen += 1;
            for file in ["cmdline", "environ"] {
                let bytes = std::fs::read(entry.path().join(file)).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains(&password),
                    "the password is in /proc/{pid}/{file}"
                );
            }
        }
        let state = json(
            client
                .get(format!("{}/api/admin/backup/jobs/{job}", server.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if state["status"] != "running" {
            assert_eq!(state["status"], "succeeded", "{state}");
            assert!(!state.to_string().contains(&password));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        children_seen > 0,
        "the backup's child processes were inspected"
    );
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}
