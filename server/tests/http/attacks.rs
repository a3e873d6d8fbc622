//! Requests an attacker (or a careless client) might send, and secrets that
//! must not leak: each states the safe behaviour.

use std::time::Duration;

use lms_backup::users::Role;
use reqwest::Method;
use serde_json::json;

use crate::crash::{create_admin, json, sign_in, slow_tools, start, start_logging};
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
        ("RUST_LOG", "debug".to_string()),
    ];
    create_admin(&env);
    let log = dir.join("server.log");
    let server = start_logging(&env, Some(&log)).await;
    let client = sign_in(&server).await;
    let started = server.start_backup(&client).await;
    let job = started["job"]["id"].as_str().unwrap().to_owned();
    let server_pid = server.child.id();
    let server_image = std::fs::read_link(format!("/proc/{server_pid}/exe")).ok();
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
            // A child caught between fork and exec is still a copy of the
            // server, whose own environment (set by the operator) holds the
            // URL. Exec cannot be undone, so once the image differs, what is
            // read next belongs to the tool.
            let image = std::fs::read_link(entry.path().join("exe")).ok();
            if image.is_none() || image == server_image {
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
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("lms_backup"),
        "the log was captured at debug level"
    );
    assert!(
        !logged.contains(&password),
        "the password is in the server's log"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Notes with markup, quotes, bidirectional marks and emoji are stored as
/// written and rendered as text, on the page and in the data the page
/// carries for hydration; control characters and overlong notes are refused
/// with a message saying why.
#[tokio::test]
async fn hostile_notes_are_stored_as_written_and_rendered_inert() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    let notes = "<script>alert('x')</script></script><img src=x onerror=alert(1)> \"q\" ' OR 1=1; -- \u{202E}txt.exe\u{202C} ☃";
    let started = admin
        .post(app.url("/api/admin/backup/create"))
        .json(&json!({ "notes": notes }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let started: serde_json::Value = started.json().await.unwrap();
    crate::support::wait_for_job(&app, &admin, started["job"]["id"].as_str().unwrap()).await;
    let list: serde_json::Value = admin
        .get(app.url("/api/admin/backup/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["backups"][0]["notes"], notes,
        "stored exactly as written"
    );

    let page = admin
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("txt.exe"), "the notes are on the page");
    for live in ["<script>alert", "<img src=x", "</script><img"] {
        assert!(!page.contains(live), "{live:?} reached the page as markup");
    }

    for (bad, why) in [
        ("bell\u{7}", "control characters"),
        ("nul\u{0}", "control characters"),
        (&"x".repeat(1 << 20) as &str, "at most 500 characters"),
    ] {
        let res = admin
            .post(app.url("/api/admin/backup/create"))
            .json(&json!({ "notes": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{body}"
        );
    }
    assert_eq!(jobs(&app).await, 1, "only the first backup ran");
}

/// Forwarding headers are not trusted: they open no door, and rotating them
/// does not escape the per-address sign-in limit.
#[tokio::test]
async fn forged_forwarding_headers_change_nothing() {
    let app = spawn_app().await;
    for path in ["/api/admin/backup/list", "/api/admin/backup/status"] {
        let res = app
            .client()
            .get(app.url(path))
            .header("x-forwarded-for", "127.0.0.1")
            .header("x-real-ip", "127.0.0.1")
            .header("forwarded", "for=127.0.0.1")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = app
            .client()
            .post(app.url("/api/auth/login"))
            .header(
                "x-forwarded-for",
                format!("10.0.{}.{}", i / 250, i % 250 + 1),
            )
            .json(&json!({ "username": format!("nobody{i}"), "password": "wrong password" }))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert!(
        statuses.contains(&429),
        "the limit holds whatever the headers say: {statuses:?}"
    );
}

/// A symlink or a hard link planted in place of an archive is neither read
/// nor followed when deleting.
#[tokio::test]
async fn planted_links_in_the_backup_directory_are_not_followed() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    let outside = lms_backup::testing::scratch_dir("outside").join("secret.txt");
    std::fs::write(&outside, "not for download").unwrap();
    for link in ["symlink", "hardlink"] {
        let started = crate::support::start_backup(&app, &admin).await;
        let job =
            crate::support::wait_for_job(&app, &admin, started["job"]["id"].as_str().unwrap())
                .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let id = started["backup"]["id"].as_i64().unwrap();
        let file = app
            .engine
            .config()
            .backup_dir
            .join(started["backup"]["filename"].as_str().unwrap());
        std::fs::remove_file(&file).unwrap();
        match link {
            "symlink" => std::os::unix::fs::symlink(&outside, &file).unwrap(),
            _ => std::fs::hard_link(&outside, &file).unwrap(),
        }
        let res = admin
            .get(app.url(&format!("/api/admin/backup/download/{id}")))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(matches!(status, 404 | 409), "{link}: {status}");
        assert!(
            !body.contains("not for download"),
            "{link}: the target was read"
        );
        let _ = admin
            .delete(app.url(&format!("/api/admin/backup/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "not for download",
            "{link}: the target is untouched"
        );
        std::fs::remove_file(&file).ok();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A burst of 1,000 anonymous requests (100 at a time) against the real
/// binary: every one refused with 401, and the server's memory stays flat.
#[tokio::test]
async fn a_burst_of_anonymous_requests_is_refused_without_growing() {
    use futures::StreamExt;
    let dir = lms_backup::testing::scratch_dir("burst");
    let env = [
        (
            "DATABASE_URL",
            lms_backup::testing::fresh_database_url().await,
        ),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
    ];
    let server = start(&env).await;
    let pid = server.child.id();
    let client = reqwest::Client::new();
    let paths = [
        "/api/admin/backup/list",
        "/api/admin/backup/status",
        "/api/admin/backup/download/1",
    ];
    let burst = |n: usize| {
        let client = client.clone();
        let base = server.base.clone();
        async move {
            futures::stream::iter(0..n)
                .map(|i| {
                    let req = client.get(format!("{base}{}", paths[i % paths.len()]));
                    async move { req.send().await.map(|r| r.status().as_u16()) }
                })
                .buffer_unordered(100)
                .collect::<Vec<_>>()
                .await
        }
    };
    // Warm up (connection pools, lazily built state), then measure.
    burst(200).await;
    let before = rss_kib(pid);
    let statuses = burst(1000).await;
    let after = rss_kib(pid);
    let refused = statuses.iter().filter(|s| matches!(s, Ok(401))).count();
    assert_eq!(refused, 1000, "every request refused with 401");
    println!("server RSS {before} KiB before, {after} KiB after 1,000 anonymous requests");
    assert!(
        after < before + 16 * 1024,
        "memory grew from {before} KiB to {after} KiB"
    );
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}

/// The session cookie as the real binary sets it: HttpOnly, SameSite=Strict,
/// Path=/, and Secure exactly when SECURE_COOKIES says the site is served
/// over HTTPS (TLS ends in front of the server).
#[tokio::test]
async fn the_session_cookie_carries_its_flags_and_secure_behind_tls() {
    let url = lms_backup::testing::fresh_database_url().await;
    let dir = lms_backup::testing::scratch_dir("cookies");
    for secure in [false, true] {
        let env = [
            ("DATABASE_URL", url.clone()),
            ("BACKUP_DIR", dir.join("backups").display().to_string()),
            ("SECURE_COOKIES", secure.to_string()),
        ];
        if !secure {
            create_admin(&env);
        }
        let server = start(&env).await;
        let res = reqwest::Client::new()
            .post(format!("{}/api/auth/login", server.base))
            .json(&serde_json::json!({ "username": "alice", "password": crate::support::PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let attributes: Vec<String> = cookies[0]
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        for expected in ["httponly", "samesite=strict", "path=/"] {
            assert!(
                attributes.iter().any(|a| a == expected),
                "{expected} missing: {cookies:?}"
            );
        }
        assert_eq!(
            attributes.iter().any(|a| a == "secure"),
            secure,
            "Secure with SECURE_COOKIES={secure}: {cookies:?}"
        );
        assert!(
            !attributes.iter().any(|a| a.starts_with("domain=")),
            "host-only, never shared with sibling domains: {cookies:?}"
        );
        drop(server);
    }
    std::fs::remove_dir_all(dir).ok();
}
