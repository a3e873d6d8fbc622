use lms_backup::users::Role;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn cross_origin_posts_with_a_valid_admin_cookie_are_refused() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;

    let foreign = client
        .post("/api/fn/list_backups")
        .header("origin", "http://evil.example")
        .json(&json!({ "skip": 0, "limit": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let body: serde_json::Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    // A foreign page trying to sign the admin out changes nothing.
    let res = client
        .post("/api/auth/logout")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = client
        .post("/api/auth/logout")
        .header("referer", "https://evil.example/page")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    client.me().await.expect("still signed in");

    // A form post (what a cross-site <form> can send without a preflight).
    let form = client
        .post("/api/fn/list_backups")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("skip=0&limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 403);

    // The same call from the console's own origin works.
    let host = app.base.trim_start_matches("http://").to_owned();
    let own = client
        .post("/api/fn/list_backups")
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "skip": 0, "limit": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn cross_origin_login_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    let res = app
        .client()
        .post("/api/auth/login")
        .header("origin", "http://evil.example")
        .json(&json!({ "username": "alice", "password": crate::support::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("set-cookie").is_none());
}

/// Every state-changing endpoint in the table (REST routes and server
/// functions), called by an admin's browser from another site: with a foreign `Origin`, with no `Origin` and
/// a foreign `Referer`, and as a form post. All 403, and nothing changes:
/// the backup is still there, no job started, the admin still signed in.
#[tokio::test]
async fn every_state_changing_route_refuses_cross_site_requests() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    let id = started.backup.id;
    let count = |sql: &'static str| {
        let pool = app.dbs.control.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let jobs_before = count("SELECT count(*) FROM jobs").await;

    let routes: Vec<_> = server::api::endpoints()
        .all()
        .iter()
        .filter(|e| e.method != reqwest::Method::GET)
        .map(|e| (e.method.clone(), e.path.replace("{id}", &id.to_string())))
        .collect();
    assert!(
        routes.iter().any(|(_, p)| p.starts_with("/api/fn/")),
        "{routes:?}"
    );
    assert!(routes.len() >= 20, "{routes:?}");
    for (method, path) in &routes {
        let variants = [
            client
                .request(method.clone(), path)
                .header("origin", "https://evil.example")
                .json(&json!({ "confirm": true })),
            client
                .request(method.clone(), path)
                .header("referer", "https://evil.example/page")
                .json(&json!({ "confirm": true })),
            client
                .request(method.clone(), path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("confirm=true"),
        ];
        for (i, request) in variants.into_iter().enumerate() {
            let status = request.send().await.unwrap().status();
            assert_eq!(status, 403, "{method} {path}, variant {i}");
        }
    }
    assert_eq!(
        count("SELECT count(*) FROM jobs").await,
        jobs_before,
        "no job started"
    );
    assert_eq!(
        count("SELECT count(*) FROM backup_history WHERE status = 'completed'").await,
        1,
        "the backup is still there"
    );
    assert!(app
        .engine
        .config()
        .backup_dir
        .join(&started.backup.filename)
        .exists());
    client.me().await.expect("still signed in");
}
