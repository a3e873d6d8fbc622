//! API tokens: a pipeline takes a backup with `Authorization: Bearer`, on
//! the routes its scopes open and nowhere else; tokens are stored hashed,
//! audited by name, revocable, expire, and are rate-limited.

use lms_backup::postgres::databases::DatabaseUrls;
use lms_backup::users::Role;
use lms_backup::Databases;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cli::{lms_admin, text};
use crate::client::ApiClient;
use crate::support::{spawn_app, TestApp, TOKEN_REQUESTS_PER_MINUTE};

/// Creates a token through the console's REST route; returns its secret.
async fn create_token(admin: &ApiClient, name: &str, scopes: &[&str]) -> String {
    let res = admin
        .post("/api/admin/tokens")
        .json(&json!({ "name": name, "scopes": scopes, "expires_days": 30 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token"]["name"], name);
    assert_eq!(body["token"]["live"], true);
    body["secret"].as_str().unwrap().to_owned()
}

/// A client with no cookies presenting `token`.
fn with_token(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.client()
        .request(method, path)
        .header("authorization", format!("Bearer {token}"))
}

async fn status_and_body(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn audit_actions(app: &TestApp, actor: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT action, outcome, coalesce(target, '') FROM audit_log WHERE actor_name = $1 ORDER BY id",
    )
    .bind(actor)
    .fetch_all(&app.dbs.control)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_pipeline_takes_a_backup_with_a_token_and_can_do_nothing_else() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    let token = create_token(&admin, "deploy", &["backup:create", "status:read"]).await;
    assert!(token.starts_with("lmsa_") && token.len() > 40, "{token}");

    // Only its hash is stored; the listing never shows it.
    let (stored, as_text): (Vec<u8>, String) = sqlx::query_as(
        "SELECT secret_sha256, row_to_json(t)::text FROM api_tokens t WHERE name = 'deploy'",
    )
    .fetch_one(&app.dbs.control)
    .await
    .unwrap();
    assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());
    assert!(!as_text.contains(&token[5..]), "{as_text}");
    let listing = admin
        .get("/api/admin/tokens")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains("\"deploy\"") && !listing.contains(&token[5..]),
        "{listing}"
    );

    // Creating a backup: not subject to the browser same-origin check (a
    // pipeline's HTTP client may send any Origin), and named by the token.
    let (status, started) = status_and_body(
        with_token(&app, Method::POST, "/api/admin/backup/create", &token)
            .header("origin", "https://ci.example")
            .header("content-type", "text/plain")
            .body(r#"{"notes": "before migration 42"}"#),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let job = started["job"]["id"].as_str().unwrap().to_owned();
    let done = lms_backup::testing::wait_until(format_args!("job {job} to end"), async || {
        let (status, job) = status_and_body(with_token(
            &app,
            Method::GET,
            &format!("/api/admin/backup/jobs/{job}"),
            &token,
        ))
        .await;
        assert_eq!(status, 200, "{job}");
        (job["status"] != "running").then_some(job)
    })
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["started_by"], "token:deploy", "{done}");
    let (status, _) = status_and_body(with_token(
        &app,
        Method::GET,
        "/api/admin/backup/status",
        &token,
    ))
    .await;
    assert_eq!(status, 200);
    let backup_id = started["backup"]["id"].as_i64().unwrap();

    // Outside its scopes: refused, naming the scope, and audited.
    let (status, body) = status_and_body(with_token(
        &app,
        Method::GET,
        "/api/admin/backup/list",
        &token,
    ))
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backup:read"),
        "{body}"
    );

    // Routes no token opens: restore, delete, download, undo, the token
    // routes themselves, server functions, pages.
    let id = backup_id.to_string();
    for (method, path) in [
        (Method::POST, format!("/api/admin/backup/restore/{id}")),
        (Method::DELETE, format!("/api/admin/backup/{id}")),
        (Method::GET, format!("/api/admin/backup/download/{id}")),
        (Method::POST, "/api/admin/backup/restore/undo".to_owned()),
        (Method::POST, "/api/admin/backup/lock/release".to_owned()),
        (Method::GET, "/api/admin/tokens".to_owned()),
        (Method::POST, "/api/admin/tokens".to_owned()),
        (Method::DELETE, "/api/admin/tokens/deploy".to_owned()),
        (Method::POST, "/api/fn/list_backups".to_owned()),
        (Method::POST, "/api/fn/create_backup".to_owned()),
        (Method::GET, "/admin".to_owned()),
        (Method::GET, "/api/auth/me".to_owned()),
    ] {
        let res = with_token(&app, method.clone(), &path, &token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method} {path}");
    }

    // A token never borrows a session: an administrator's own client
    // presenting the token is the token, not the administrator.
    let res = admin
        .request(Method::DELETE, &format!("/api/admin/backup/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        admin.backup(backup_id).await.is_ok(),
        "the backup is still there"
    );

    let by_token = audit_actions(&app, "token:deploy").await;
    assert!(
        by_token.contains(&(
            "backup.create".into(),
            "success".into(),
            started["backup"]["filename"].as_str().unwrap().into()
        )),
        "{by_token:?}"
    );
    assert!(
        by_token.contains(&(
            "token.refused".into(),
            "denied".into(),
            "GET /api/admin/backup/list".into()
        )),
        "{by_token:?}"
    );
    let by_alice = audit_actions(&app, "alice").await;
    assert!(
        by_alice.contains(&("token.create".into(), "success".into(), "deploy".into())),
        "{by_alice:?}"
    );

    // Revoked: refused at once, as any unknown token is.
    let res = admin
        .request(Method::DELETE, "/api/admin/tokens/deploy")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = with_token(&app, Method::GET, "/api/admin/backup/status", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let (status, body) = status_and_body(with_token(
        &app,
        Method::GET,
        "/api/admin/backup/status",
        "lmsa_not-a-token-at-all",
    ))
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown, expired or revoked"));
    let by_alice = audit_actions(&app, "alice").await;
    assert!(by_alice.contains(&("token.revoke".into(), "success".into(), "deploy".into())));

    // The name is free again for a new token; a live name is not.
    create_token(&admin, "deploy", &["status:read"]).await;
    let res = admin
        .post("/api/admin/tokens")
        .json(&json!({ "name": "deploy", "scopes": ["status:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = admin
        .post("/api/admin/tokens")
        .json(&json!({ "name": "x", "scopes": ["backup:restore"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "restore is not a scope");
}

#[tokio::test]
async fn tokens_expire_and_are_rate_limited_each() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    let old = create_token(&admin, "old", &["status:read"]).await;
    sqlx::query(
        "UPDATE api_tokens SET created_at = now() - interval '31 days',
                               expires_at = now() - interval '1 day' WHERE name = 'old'",
    )
    .execute(&app.dbs.control)
    .await
    .unwrap();
    let (status, _) = status_and_body(with_token(
        &app,
        Method::GET,
        "/api/admin/backup/status",
        &old,
    ))
    .await;
    assert_eq!(status, 401, "an expired token");
    let listed: Value = admin
        .get("/api/admin/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["name"], "old");
    assert_eq!(listed[0]["live"], false);

    // A token that keeps asking runs out of its allowance; another does not.
    let busy = create_token(&admin, "busy", &["status:read"]).await;
    let calm = create_token(&admin, "calm", &["status:read"]).await;
    let mut answered = 0;
    let limited = loop {
        let res = with_token(&app, Method::GET, "/api/admin/backup/status", &busy)
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            break res;
        }
        assert_eq!(res.status(), 200);
        answered += 1;
        assert!(answered < 10 * TOKEN_REQUESTS_PER_MINUTE, "never limited");
    };
    assert!(
        answered >= TOKEN_REQUESTS_PER_MINUTE,
        "limited after {answered}"
    );
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let (status, _) = status_and_body(with_token(
        &app,
        Method::GET,
        "/api/admin/backup/status",
        &calm,
    ))
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tokens_from_the_command_line() {
    let url = lms_backup::testing::fresh_database_url().await;
    let dir = lms_backup::testing::scratch_dir("token-cli");
    let env = [
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
    ];
    let out = lms_admin(&env, &["migrate"]).await;
    assert!(out.status.success(), "{}", text(&out));

    let out = lms_admin(
        &env,
        &[
            "token",
            "create",
            "--name",
            "ci",
            "--scopes",
            "backup:create,status:read",
            "--expires-days",
            "7",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let secret = stdout.lines().last().unwrap().trim().to_owned();
    assert!(secret.starts_with("lmsa_"), "{stdout}");
    assert!(
        text(&out).contains("backup:create, status:read"),
        "{}",
        text(&out)
    );

    let dbs = Databases::connect(&DatabaseUrls {
        lms: url.clone(),
        control: None,
    })
    .await
    .unwrap();
    let (stored, created_by): (Vec<u8>, String) =
        sqlx::query_as("SELECT secret_sha256, created_by_name FROM api_tokens WHERE name = 'ci'")
            .fetch_one(&dbs.control)
            .await
            .unwrap();
    assert_eq!(stored, Sha256::digest(secret.as_bytes()).to_vec());
    assert!(created_by.starts_with("cli:"), "{created_by}");

    let out = lms_admin(&env, &["token", "list"]).await;
    let listing = text(&out);
    assert!(
        listing.contains("ci  [live]  backup:create, status:read"),
        "{listing}"
    );
    assert!(!listing.contains(&secret[5..]), "{listing}");

    let out = lms_admin(
        &env,
        &[
            "token",
            "create",
            "--name",
            "x",
            "--scopes",
            "backup:restore",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("scopes: \"backup:restore\" is not a scope"),
        "{}",
        text(&out)
    );

    let out = lms_admin(&env, &["token", "revoke", "ci"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = lms_admin(&env, &["token", "list"]).await;
    assert!(text(&out).contains("ci  [revoked"), "{}", text(&out));
    let out = lms_admin(&env, &["token", "revoke", "ci"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("not found"), "{}", text(&out));
}
