use lms_backup::users::Role;
use serde_json::{json, Value};

use crate::support::{spawn_app, PASSWORD};

#[tokio::test]
async fn sign_in_round_trip_sets_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    let client = app.client();

    // Raw: the cookie's flags and the body's exact fields are the point.
    let res = client
        .post("/api/auth/login")
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("lms_admin_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing from {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no Secure flag on plain HTTP: {cookie}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["role"], "admin");
    assert!(body.get("password_hash").is_none());

    assert_eq!(client.me().await.unwrap().username, "alice");

    // The session is in the control database, not in the cookie.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    client.sign_out().await.unwrap();
    assert_eq!(client.me().await.unwrap_err().status, 401);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(stored, 0, "logout deletes the session on the server");
}

#[tokio::test]
async fn a_logged_out_cookie_cannot_be_replayed() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    let res = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let raw = reqwest::Client::new();
    let me = |c: String| raw.get(app.url("/api/auth/me")).header("cookie", c).send();
    assert_eq!(me(cookie.clone()).await.unwrap().status(), 200);
    let res = raw
        .post(app.url("/api/auth/logout"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(me(cookie).await.unwrap().status(), 401);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    let client = app.client();
    // Raw: the refusals must be identical to the byte, and set no cookie.
    let attempt = |username: &'static str, password: &'static str| {
        client
            .post("/api/auth/login")
            .json(&json!({ "username": username, "password": password }))
            .send()
    };
    let wrong = attempt("alice", "not the password").await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let wrong: Value = wrong.json().await.unwrap();
    let unknown: Value = attempt("mallory", "not the password")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        wrong, unknown,
        "the error must not reveal whether the user exists"
    );
    assert_eq!(wrong["error"]["code"], "unauthorized");
    assert_eq!(wrong["error"]["message"], "Invalid username or password.");

    // Both counted, into the address's row for the window.
    let audited: i64 = sqlx::query_scalar(
        "SELECT sum(tally_count) FROM audit_log WHERE action = 'login' AND outcome = 'failure'",
    )
    .fetch_one(&app.dbs.control)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn repeated_guessing_is_rate_limited() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    let client = app.client();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let refused = client
            .sign_in("alice", "guess guess guess")
            .await
            .unwrap_err();
        statuses.push(refused.status);
        if refused.status == 429 {
            assert!(refused.retry_after.is_some());
        }
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].iter().all(|&s| s == 429), "{statuses:?}");
    // Even the right password waits now: the limiter counts attempts, not failures.
    let refused = client.sign_in("alice", PASSWORD).await.unwrap_err();
    assert_eq!(refused.status, 429);
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    let raw = reqwest::Client::new();
    let planted = "lms_admin_session=AAAAAAAAAAAAAAAAAAAAAA";
    let res = raw
        .post(app.url("/api/auth/login"))
        .header("cookie", planted)
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let issued = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        !issued.starts_with(planted),
        "a planted id must not be kept: {issued}"
    );
}

#[tokio::test]
async fn malformed_login_bodies_get_a_json_400() {
    let app = spawn_app().await;
    let res = app
        .client()
        .post("/api/auth/login")
        .header("content-type", "application/json")
        .body("{\"username\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}
