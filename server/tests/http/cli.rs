//! `lms-admin backup …` for the day the web console is down.

use std::process::{Command, Output, Stdio};

pub(crate) async fn lms_admin(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lms-admin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        if *k == "DATABASE_URL" {
            // Each test database has a restore role of its own.
            cmd.env("RESTORE_ROLE", lms_backup::testing::restore_role_for_url(v));
        }
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

    // What changed since backup 1, from the manifests, before restoring it.
    let out = lms_admin(&env, &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = lms_admin(&env, &["backup", "compare", "2", "1"]).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(", id 1) to "), "the older first: {said}");
    let courses = said
        .lines()
        .find(|l| l.trim_start().starts_with("public.courses "))
        .unwrap_or_else(|| panic!("courses differ: {said}"));
    assert!(
        courses.contains(" 20 ") && courses.contains(" 5 ") && courses.contains("(-15 rows)"),
        "{courses}"
    );
    assert!(
        !said.contains("public.users "),
        "unchanged tables are only counted: {said}"
    );
    let out = lms_admin(&env, &["backup", "compare", "1", "2", "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let courses = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "courses")
        .unwrap();
    assert_eq!(courses["change"], "changed");
    assert_eq!(
        (
            courses["older_rows"].as_i64(),
            courses["newer_rows"].as_i64()
        ),
        (Some(20), Some(5))
    );
    let out = lms_admin(&env, &["backup", "compare", "1", "1"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("two different backups"),
        "{}",
        text(&out)
    );

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

/// A deleted course brought back from the command line: the preview, the
/// plan of a dry run, the recovery itself and its undo.
#[tokio::test]
async fn a_deleted_course_comes_back_from_the_command_line() {
    let dir = lms_backup::testing::scratch_dir("cli-recover");
    let url = lms_backup::testing::fresh_database_url().await;
    let env = [
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
    ];
    assert!(lms_admin(&env, &["demo", "seed"]).await.status.success());
    let out = lms_admin(&env, &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let lessons: i64 = sqlx::query_scalar("SELECT count(*) FROM lessons WHERE course_id = 3")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM courses WHERE id = 3")
        .execute(&pool)
        .await
        .unwrap();
    let count = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM lessons WHERE course_id = 3")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    let out = lms_admin(&env, &["backup", "preview", "1"]).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("1 course, {lessons} lessons,")) && said.contains("would come back"),
        "{said}"
    );
    assert!(said.contains("--table public.courses --key 3"), "{said}");

    let recover = [
        "backup", "recover", "--backup", "1", "--table", "courses", "--key", "3",
    ];
    let out = lms_admin(&env, &[&recover[..], &["--dry-run"]].concat()).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Using the prepared copy of backup 1"),
        "{said}"
    );
    assert!(
        said.contains(&format!("Would insert 1 course, {lessons} lessons")),
        "{said}"
    );
    assert!(said.contains("Dry run: nothing was changed."), "{said}");
    assert_eq!(count().await, 0);

    let refused = lms_admin(&env, &recover).await;
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--yes"), "{}", text(&refused));
    assert_eq!(count().await, 0);

    let out = lms_admin(&env, &[&recover[..], &["--yes"]].concat()).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Recovered course “"), "{said}");
    assert!(said.contains("lms-admin backup recover-undo "), "{said}");
    assert_eq!(count().await, lessons);

    let out = lms_admin(&env, &["backup", "recover-undo", "--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(count().await, 0);
    pool.close().await;
    std::fs::remove_dir_all(dir).ok();
}

/// Without its restore role the server does not start, and says which two
/// statements set it up.
#[tokio::test]
async fn serve_refuses_to_start_without_the_restore_role() {
    let dir = lms_backup::testing::scratch_dir("cli-no-restore-role");
    let url = lms_backup::testing::fresh_database_url().await;
    let env = [
        ("DATABASE_URL", url),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
        ("RESTORE_ROLE", "missing_restore_role".to_string()),
        ("LISTEN_ADDR", "127.0.0.1:0".to_string()),
    ];
    let out = tokio::time::timeout(lms_backup::testing::PATIENCE, lms_admin(&env, &["serve"]))
        .await
        .expect("serve exits instead of serving");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("CREATE ROLE \"missing_restore_role\" LOGIN")
            && said.contains("GRANT \"missing_restore_role\" TO"),
        "{said}"
    );
}

/// `lms-admin` with `input` on its standard input.
async fn lms_admin_with_input(env: &[(&str, String)], args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lms-admin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        if *k == "DATABASE_URL" {
            cmd.env("RESTORE_ROLE", lms_backup::testing::restore_role_for_url(v));
        }
        cmd.env(k, v);
    }
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = input.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// A restore from the terminal names the administrators the backup holds
/// and, when the one at the terminal is not among them, says so with the
/// command that gets them back in; that command works on the restored
/// database, and creating an account that exists points to it.
#[tokio::test]
async fn restore_warns_who_would_be_locked_out_and_grant_admin_gets_them_back_in() {
    let dir = lms_backup::testing::scratch_dir("cli-admins");
    // The server never creates its backup directory.
    std::fs::create_dir(dir.join("backups")).unwrap();
    let url = lms_backup::testing::fresh_database_url().await;
    let env = [
        ("DATABASE_URL", url.clone()),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
        ("USER", "erin".to_owned()),
    ];
    let password = "correct horse battery staple\n";
    let create = |name: &'static str, role: &'static str| {
        let env = env.clone();
        async move {
            let args = ["user", "create", "--username", name, "--role", role];
            let args = [
                &args[..],
                &["--full-name", "Alice Admin", "--password-stdin"],
            ]
            .concat();
            lms_admin_with_input(&env, &args, password).await
        }
    };
    let out = create("alice", "admin").await;
    assert!(out.status.success(), "{}", text(&out));
    let out = lms_admin(&env, &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // erin, at the terminal, is made an administrator after the backup.
    let out = create("erin", "admin").await;
    assert!(out.status.success(), "{}", text(&out));
    let again = create("erin", "admin").await;
    assert!(!again.status.success());
    assert!(
        text(&again).contains("lms-admin user grant-admin --username erin --password-stdin"),
        "{}",
        text(&again)
    );

    let out = lms_admin(&env, &["backup", "restore", "1", "--yes"]).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("Administrators in backup_"), "{said}");
    assert!(
        said.contains("alice") && said.contains("Alice Admin"),
        "{said}"
    );
    assert!(
        said.contains("Administrators now who can no longer sign in after it: erin"),
        "{said}"
    );
    assert!(
        said.contains("\"erin\" (your login name) is not an administrator in this backup"),
        "{said}"
    );
    assert!(
        said.contains("lms-admin user grant-admin --username erin --password-stdin"),
        "{said}"
    );
    let warned_at = said.find("WARNING").unwrap();
    let restored_at = said.find("maintenance for").unwrap();
    assert!(
        warned_at < restored_at,
        "the warning comes before the restore"
    );

    // Locked out, as warned; the command brings erin back.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let signs_in = async |pool: &sqlx::PgPool| {
        lms_backup::users::authenticate(pool, "erin", "a new password for erin")
            .await
            .unwrap()
            .map(|u| u.role)
    };
    assert_eq!(signs_in(&pool).await, None);
    let out = lms_admin_with_input(
        &env,
        &[
            "user",
            "grant-admin",
            "--username",
            "erin",
            "--password-stdin",
        ],
        "a new password for erin\n",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(signs_in(&pool).await, Some(lms_backup::users::Role::Admin));
    pool.close().await;

    let control = sqlx::PgPool::connect(&format!("{url}_control"))
        .await
        .unwrap();
    let audited: (String, Option<String>) = sqlx::query_as(
        "SELECT actor_name, target FROM audit_log WHERE action = 'user.grant_admin'",
    )
    .fetch_one(&control)
    .await
    .unwrap();
    assert_eq!(audited, ("cli:erin".to_owned(), Some("erin".to_owned())));
    control.close().await;
    std::fs::remove_dir_all(dir).ok();
}
