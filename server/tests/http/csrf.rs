use lms_backup::users::Role;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn cross_origin_posts_with_a_valid_admin_cookie_are_refused() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;

    let foreign = client
        .post(app.url("/api/fn/list_backups"))
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
        .post(app.url("/api/auth/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = client
        .post(app.url("/api/auth/logout"))
        .header("referer", "https://evil.example/page")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        client
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still signed in"
    );

    // A form post (what a cross-site <form> can send without a preflight).
    let form = client
        .post(app.url("/api/fn/list_backups"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("skip=0&limit=5")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 403);

    // The same call from the console's own origin works.
    let host = app.base.trim_start_matches("http://").to_owned();
    let own = client
        .post(app.url("/api/fn/list_backups"))
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
        .post(app.url("/api/auth/login"))
        .header("origin", "http://evil.example")
        .json(&json!({ "username": "alice", "password": crate::support::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("set-cookie").is_none());
}
