use lms_backup::testing::spawn_db;
use lms_backup::users::{self, NewUser, Role};
use lms_backup::Error;

fn alice(password: &str) -> NewUser<'_> {
    NewUser {
        username: "alice",
        email: "alice@example.edu",
        full_name: "Alice Admin",
        role: Role::Admin,
        password,
    }
}

#[tokio::test]
async fn created_users_sign_in_with_their_password_only() {
    let dbs = spawn_db().await;
    let created = users::create(&dbs.lms, alice("a long enough password"))
        .await
        .unwrap();
    assert_eq!(created.role, Role::Admin);

    let signed_in = users::authenticate(&dbs.lms, "alice", "a long enough password")
        .await
        .unwrap();
    assert_eq!(signed_in.as_ref().map(|u| u.id), Some(created.id));
    assert!(users::authenticate(&dbs.lms, "alice", "wrong password!!")
        .await
        .unwrap()
        .is_none());
    assert!(
        users::authenticate(&dbs.lms, "nobody", "a long enough password")
            .await
            .unwrap()
            .is_none()
    );

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(created.id)
        .fetch_one(&dbs.lms)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "stored as argon2id: {hash}");
    assert!(!hash.contains("a long enough password"));
}

#[tokio::test]
async fn inactive_and_passwordless_accounts_cannot_sign_in() {
    let dbs = spawn_db().await;
    let user = users::create(&dbs.lms, alice("a long enough password"))
        .await
        .unwrap();
    sqlx::query("UPDATE users SET is_active = false WHERE id = $1")
        .bind(user.id)
        .execute(&dbs.lms)
        .await
        .unwrap();
    assert!(
        users::authenticate(&dbs.lms, "alice", "a long enough password")
            .await
            .unwrap()
            .is_none()
    );

    sqlx::query("INSERT INTO users (username, email, password_hash, role) VALUES ('demo', 'd@x', '!', 'student')")
        .execute(&dbs.lms)
        .await
        .unwrap();
    assert!(users::authenticate(&dbs.lms, "demo", "!")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let dbs = spawn_db().await;
    assert!(matches!(
        users::create(&dbs.lms, alice("short")).await,
        Err(Error::Invalid(_))
    ));
    let mut bad_name = alice("a long enough password");
    bad_name.username = "robert'); DROP TABLE users;--";
    assert!(matches!(
        users::create(&dbs.lms, bad_name).await,
        Err(Error::Invalid(_))
    ));
    users::create(&dbs.lms, alice("a long enough password"))
        .await
        .unwrap();
    let again = users::create(&dbs.lms, alice("another long password")).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
}

#[tokio::test]
async fn granting_admin_brings_an_account_back_or_creates_it() {
    let dbs = spawn_db().await;
    let grant = |username: &'static str, password: &'static str| users::AdminGrant {
        username,
        password,
        email: "granted@example.edu",
        full_name: "Granted",
    };
    // Demoted and deactivated (as a restored backup may have it).
    let mut old = alice("the password from before");
    old.role = Role::Instructor;
    let before = users::create(&dbs.lms, old).await.unwrap();
    sqlx::query("UPDATE users SET is_active = false WHERE id = $1")
        .bind(before.id)
        .execute(&dbs.lms)
        .await
        .unwrap();

    let granted = users::grant_admin(&dbs.lms, grant("alice", "a brand new password"))
        .await
        .unwrap();
    assert!(!granted.created);
    assert_eq!(granted.user.id, before.id, "the same account");
    assert_eq!(granted.user.role, Role::Admin);
    assert!(granted.user.is_active);
    assert_eq!(granted.user.email, "alice@example.edu", "kept");
    let signed_in = users::authenticate(&dbs.lms, "alice", "a brand new password")
        .await
        .unwrap();
    assert_eq!(signed_in.map(|u| u.id), Some(before.id));
    assert!(
        users::authenticate(&dbs.lms, "alice", "the password from before")
            .await
            .unwrap()
            .is_none()
    );

    let created = users::grant_admin(&dbs.lms, grant("erin", "another long password"))
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.user.email, "granted@example.edu");
    assert!(
        users::authenticate(&dbs.lms, "erin", "another long password")
            .await
            .unwrap()
            .is_some()
    );

    let short = users::grant_admin(&dbs.lms, grant("alice", "short")).await;
    assert!(matches!(short, Err(Error::Invalid(_))), "{short:?}");
    assert!(
        users::authenticate(&dbs.lms, "alice", "a brand new password")
            .await
            .unwrap()
            .is_some(),
        "a refused grant changes nothing"
    );
}
