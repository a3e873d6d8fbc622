//! `lms-admin backup …` for the day the web console is down.

use std::process::{Command, Output, Stdio};

pub(crate) async fn lms_admin(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lms-admin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn backup_restore_and_undo_from_the_command_line() {
    let dir = lms_backup::testing::scratch_dir("cli");
    let url = lms_backup::testing::fresh_database_url().await;
    let env = [
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
    ];
    assert!(lms_admin(&env, &["demo", "seed"]).await.status.success());

    let out = lms_admin(&env, &["backup", "create", "--notes", "from the terminal"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = lms_admin(&env, &["backup", "list"]).await;
    let listing = text(&out);
    assert!(
        listing.contains("completed") && listing.contains("1 of 1 backups"),
        "{listing}"
    );

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM courses WHERE id > 5")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let refused = lms_admin(&env, &["backup", "restore", "1"]).await;
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--yes"), "{}", text(&refused));

    let out = lms_admin(&env, &["backup", "restore", "1", "--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("maintenance for"), "{}", text(&out));
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let courses: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(courses, 20);
    pool.close().await;

    let out = lms_admin(&env, &["backup", "undo", "--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let courses: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(courses, 5);
    pool.close().await;
    std::fs::remove_dir_all(dir).ok();
}
