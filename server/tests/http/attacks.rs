//! Requests an attacker (or a careless client) might send, and secrets that
//! must not leak: each states the safe behaviour.

use lms_backup::testing::{wait_until, Gate};
use lms_backup::users::Role;
use lms_types::JobStatus;
use reqwest::Method;
use serde_json::json;

use crate::crash::{create_admin, gated_tools, sign_in, start, start_logging};
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
            let res = admin.request(method.clone(), path).send().await.unwrap();
            assert_eq!(res.status(), 403, "{method} {path}");
            let res = app
                .client()
                .request(method.clone(), path)
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
            .post("/api/fn/create_backup")
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
        .post("/api/fn/restore_backup")
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
    // pg_dump stops at the gate: its process is there to be read.
    let dump = Gate::new();
    let env = [
        ("DATABASE_URL", url),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
        (
            "POSTGRES_BIN_PATH",
            gated_tools(Some(&dump), None).await.display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
        ("RUST_LOG", "debug".to_string()),
    ];
    create_admin(&env);
    let log = dir.join("server.log");
    let server = start_logging(&env, Some(&log)).await;
    let client = sign_in(&server).await;
    let started = client.create_backup(None).await.unwrap();
    let server_pid = server.child.id();
    let server_image = std::fs::read_link(format!("/proc/{server_pid}/exe")).ok();
    dump.reached().await;
    let mut children_seen = tool_children(server_pid, server_image.as_deref(), &password);
    assert!(
        children_seen > 0,
        "the backup's child processes were inspected"
    );
    // And every child that comes and goes while the backup runs on.
    dump.open();
    let job = wait_until("the backup to end", async || {
        children_seen += tool_children(server_pid, server_image.as_deref(), &password);
        let job = client.job(&started.job.id).await.unwrap();
        (!lms_backup::testing::is_unfinished(job.status)).then_some(job)
    })
    .await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(!format!("{job:?}").contains(&password));
    println!("{children_seen} looks at the server's tool processes");
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

/// Reads the command line and environment of every child of the server
/// that is a tool (not a copy of the server between fork and exec), and
/// fails if `password` is in one; how many were read.
fn tool_children(server_pid: u32, server_image: Option<&std::path::Path>, password: &str) -> usize {
    let mut seen = 0;
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
        if image.is_none() || image.as_deref() == server_image {
            continue;
        }
        seen += 1;
        for file in ["cmdline", "environ"] {
            let bytes = std::fs::read(entry.path().join(file)).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(password),
                "the password is in /proc/{pid}/{file}"
            );
        }
    }
    seen
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
    let started = admin.create_backup(Some(notes)).await.unwrap();
    admin.wait_for_job(&started.job.id).await;
    let list = admin.list_backups().await.unwrap();
    assert_eq!(
        list.backups[0].notes.as_deref(),
        Some(notes),
        "stored exactly as written"
    );

    let page = admin
        .get("/admin")
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
        let refused = admin.create_backup(Some(bad)).await.unwrap_err();
        assert_eq!(refused.status, 422);
        assert!(refused.message.contains(why), "{refused:?}");
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
            .get(path)
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
            .post("/api/auth/login")
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
        let started = admin.backup_now().await;
        let id = started.backup.id;
        let file = app
            .engine
            .config()
            .backup_dir
            .join(&started.backup.filename);
        std::fs::remove_file(&file).unwrap();
        match link {
            "symlink" => std::os::unix::fs::symlink(&outside, &file).unwrap(),
            _ => std::fs::hard_link(&outside, &file).unwrap(),
        }
        let refused = admin
            .download(id)
            .await
            .expect_err("a planted link is not downloaded");
        assert!(
            matches!(refused.status, 404 | 409),
            "{link}: {}",
            refused.status
        );
        assert!(
            !refused.message.contains("not for download"),
            "{link}: the target was read"
        );
        let _ = admin.delete_backup(id).await;
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
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
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

/// Every page carries a Content-Security-Policy that lets only the
/// server's own scripts run: the page's inline scripts by a nonce that is
/// new for every response, never `unsafe-inline`. Without TLS in front
/// (SECURE_COOKIES off) no HSTS is sent.
#[tokio::test]
async fn pages_allow_only_their_own_scripts_with_a_fresh_nonce() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    let mut nonces = Vec::new();
    for (client, path) in [
        (app.client(), "/login"),
        (app.client(), "/login"),
        (admin.clone(), "/admin"),
    ] {
        let res = client.get(path).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers().get("strict-transport-security").is_none());
        let policy = res
            .headers()
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("no Content-Security-Policy on {path}"))
            .to_str()
            .unwrap()
            .to_owned();
        let html = res.text().await.unwrap();
        let directive = |name: &str| {
            policy
                .split(';')
                .map(str::trim)
                .find(|d| d.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("no {name} in {policy}"))
                .to_owned()
        };
        for expected in [
            "default-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ] {
            let name = expected.split_whitespace().next().unwrap();
            assert_eq!(directive(name), expected, "{policy}");
        }
        let scripts = directive("script-src");
        assert!(!scripts.contains("unsafe-inline"), "{policy}");
        let nonce = scripts
            .split_whitespace()
            .find_map(|s| s.strip_prefix("'nonce-")?.strip_suffix('\''))
            .unwrap_or_else(|| panic!("no nonce in {policy}"))
            .to_owned();
        assert!(nonce.len() >= 16, "{nonce}");
        let tags: Vec<&str> = html
            .split("<script")
            .skip(1)
            .map(|rest| &rest[..rest.find('>').unwrap()])
            .collect();
        assert!(!tags.is_empty(), "{path} has scripts");
        for tag in tags {
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "<script{tag}> on {path} lacks the nonce {nonce}"
            );
        }
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a new nonce for every response");
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
            (
                "BACKUP_DIR",
                crate::support::backup_dir_in(&dir).display().to_string(),
            ),
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
        // Behind TLS, browsers are told to use nothing else for a year.
        let page = reqwest::get(format!("{}/login", server.base))
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(
            page.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            secure.then_some("max-age=31536000; includeSubDomains"),
            "HSTS with SECURE_COOKIES={secure}"
        );
        drop(server);
    }
    std::fs::remove_dir_all(dir).ok();
}
