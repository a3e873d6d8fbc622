//! What strangers can do to sign-in with nothing but requests: fill the
//! audit log, fill the server's memory, lock an administrator out.

use lms_backup::users::Role;
use lms_types::{AuditAction, AuditOutcome};

use crate::support::{spawn_app, PASSWORD};

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
