//! What strangers can do to sign-in with nothing but requests: fill the
//! audit log, fill the server's memory, lock an administrator out.

use lms_backup::users::Role;
use lms_types::{AuditAction, AuditOutcome};
use serde_json::json;

use crate::support::{spawn_app, spawn_app_behind_proxy, TestApp, PASSWORD};

/// 300 failed sign-ins from one address leave a few summary rows, not
/// 300, and the administrator's own entries stay in recent activity.
#[tokio::test]
async fn a_sign_in_flood_writes_a_handful_of_audit_rows() {
    let app = spawn_app().await;
    let admin = app.signed_in("alice", Role::Admin).await;
    let stranger = app.client_from(2);
    let long_name = "mallory".repeat(20);
    for i in 0..300 {
        let refused = stranger
            .sign_in(&format!("{long_name}{i}"), "wrong password")
            .await
            .unwrap_err();
        assert!(matches!(refused.status, 401 | 429), "{refused:?}");
    }

    let written: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT actor_name, detail FROM audit_log WHERE client_ip = '127.0.0.2'")
            .fetch_all(&app.dbs.control)
            .await
            .unwrap();
    println!("the flood's audit rows: {written:?}");
    // One row per outcome and window; a window boundary may split them.
    assert!(
        !written.is_empty() && written.len() <= 4,
        "{} rows",
        written.len()
    );
    for (name, detail) in &written {
        assert!(
            name.contains("unverified") && name.chars().count() <= 64,
            "the stranger's name is capped and marked: {name}"
        );
        let detail = detail.as_deref().unwrap_or_default();
        assert!(detail.contains("sign-ins for"), "{detail}");
    }

    let activity = admin.activity().await;
    assert!(
        activity.iter().any(|e| e.actor == "alice"
            && e.action == AuditAction::Login
            && e.outcome == AuditOutcome::Success),
        "the admin's sign-in is still in recent activity: {activity:?}"
    );
}

/// An oversized username is refused before the limiter, the database or
/// the password hash see it: with both databases closed the answer is
/// still the same clear 422.
#[tokio::test]
async fn oversized_usernames_are_refused_before_any_lookup() {
    let app = spawn_app().await;
    app.dbs.lms.close().await;
    app.dbs.control.close().await;
    for len in [151, 1 << 20] {
        let refused = app
            .client()
            .sign_in(&"u".repeat(len), "wrong password")
            .await
            .unwrap_err();
        assert_eq!(refused.status, 422, "{len} bytes: {refused:?}");
        assert_eq!(refused.code, "invalid");
        assert!(refused.message.contains("150"), "{}", refused.message);
    }
}

/// Guessing an administrator's password from one address does not stop
/// the administrator signing in from another.
#[tokio::test]
async fn wrong_passwords_from_one_address_do_not_lock_out_another() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    let stranger = app.client_from(2);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let refused = stranger.sign_in("alice", "a guess").await.unwrap_err();
        statuses.push(refused.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    let admin = app.client_from(3);
    admin
        .sign_in("alice", PASSWORD)
        .await
        .expect("the administrator signs in from another address");
}

/// A sign-in as a proxy forwards it: from 127.0.0.1 (where the tests' proxy
/// would be) with `X-Forwarded-For`. The status.
async fn forwarded_sign_in(
    app: &TestApp,
    forwarded_for: &str,
    username: &str,
    password: &str,
) -> u16 {
    app.client()
        .post("/api/auth/login")
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn last_sign_in_address(app: &TestApp) -> Option<String> {
    sqlx::query_scalar(
        "SELECT client_ip FROM audit_log WHERE action = 'login' AND outcome = 'success'
         ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.dbs.control)
    .await
    .unwrap()
}

/// Behind a trusted proxy every client shares the proxy's address; the
/// limits apply to the client the proxy names, so one client's guessing
/// leaves the others alone.
#[tokio::test]
async fn behind_a_trusted_proxy_limits_apply_per_forwarded_client() {
    let app = spawn_app_behind_proxy("127.0.0.1").await;
    app.create_user("alice", Role::Admin).await;

    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(forwarded_sign_in(&app, "10.0.0.1", "alice", "a guess").await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // The client wrote the left entry itself; the proxy appended the right one.
    assert_eq!(
        forwarded_sign_in(&app, "10.0.0.1, 10.0.0.2", "alice", PASSWORD).await,
        200
    );
    assert_eq!(
        last_sign_in_address(&app).await.as_deref(),
        Some("10.0.0.2")
    );

    // 10.0.0.1's own per-address limit, whatever it claims further left.
    let mut statuses = Vec::new();
    for i in 0..20 {
        let claimed = format!("192.0.2.{i}, 10.0.0.1");
        statuses.push(forwarded_sign_in(&app, &claimed, &format!("user{i}"), "a guess").await);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        forwarded_sign_in(&app, "10.0.0.3", "bob", "a guess").await,
        401,
        "another client is not limited"
    );
}

/// Without `TRUSTED_PROXIES` nobody's forwarding header counts: the peer is
/// the client, in the limits and in the audit log.
#[tokio::test]
async fn without_trusted_proxies_forwarding_headers_are_ignored() {
    let app = spawn_app().await;
    app.create_user("alice", Role::Admin).await;
    for _ in 0..8 {
        forwarded_sign_in(&app, "10.0.0.1", "alice", "a guess").await;
    }
    assert_eq!(
        forwarded_sign_in(&app, "10.0.0.2", "alice", PASSWORD).await,
        429,
        "one address, whatever the header says"
    );
    app.client_from(2).sign_in("alice", PASSWORD).await.unwrap();
    assert_eq!(
        last_sign_in_address(&app).await.as_deref(),
        Some("127.0.0.2")
    );
    let from_elsewhere = app
        .client_from(3)
        .post("/api/auth/login")
        .header("x-forwarded-for", "10.0.0.9")
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(from_elsewhere.status(), 200);
    assert_eq!(
        last_sign_in_address(&app).await.as_deref(),
        Some("127.0.0.3")
    );
}
