//! Who can sign in after a restore: the administrators a backup holds, read
//! from its archive, compared with the live database and the one asking.

use lms_backup::postgres::accounts::ArchivedAdmin;
use lms_backup::testing::{
    actor, spawn_engine, start_manual_backup, wait_for_job, wrapped_pg_dump,
};
use lms_backup::users::{self, NewUser, Role};
use lms_backup::{Engine, Error};
use lms_types::{AccessAfterRestore, BackupKind, JobStatus};

const PASSWORD: &str = "correct horse battery staple";

async fn add_user(engine: &Engine, username: &str, full_name: &str, role: Role) {
    users::create(
        &engine.dbs().lms,
        NewUser {
            username,
            email: &format!("{username}@example.edu"),
            full_name,
            role,
            password: PASSWORD,
        },
    )
    .await
    .unwrap();
}

async fn sql(engine: &Engine, statement: &str) {
    sqlx::query(statement)
        .execute(&engine.dbs().lms)
        .await
        .unwrap();
}

/// A completed manual backup's catalog id.
async fn backup(engine: &Engine) -> i64 {
    let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
    let job = wait_for_job(engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    started.backup.id
}

/// A backup made by another installation, uploaded here: no manifest record
/// of its tables, only the archive.
async fn upload_from(other: &Engine, here: &Engine) -> i64 {
    let made = backup(other).await;
    let filename = lms_backup::catalog::get_row(&other.dbs().control, made)
        .await
        .unwrap()
        .filename;
    let bytes = std::fs::read(other.config().backup_dir.join(filename)).unwrap();
    let uploaded = here
        .import_upload(
            std::io::Cursor::new(bytes.clone()),
            Some(bytes.len() as u64),
            None,
            &actor("alice"),
        )
        .await
        .unwrap();
    assert_eq!(uploaded.kind, BackupKind::Uploaded);
    let detail = lms_backup::catalog::get(&here.dbs().control, uploaded.id)
        .await
        .unwrap();
    assert_eq!(
        detail.manifest.and_then(|m| m.tables),
        None,
        "no record of what it holds"
    );
    uploaded.id
}

fn names(admins: &[ArchivedAdmin]) -> Vec<(&str, &str, bool, bool)> {
    admins
        .iter()
        .map(|a| {
            let (name, full) = (a.username.as_str(), a.full_name.as_str());
            (name, full, a.is_active, a.can_sign_in())
        })
        .collect()
}

#[tokio::test]
async fn a_backup_lists_the_admins_it_holds_and_who_would_be_locked_out() {
    let engine = spawn_engine().await;
    add_user(&engine, "alice", "Alice Admin", Role::Admin).await;
    add_user(&engine, "bob", "", Role::Admin).await;
    add_user(&engine, "carol", "Carol\tTab \\ and\nline", Role::Admin).await;
    add_user(&engine, "dave", "Dave", Role::Instructor).await;
    sql(
        &engine,
        "UPDATE users SET is_active = false WHERE username = 'carol'",
    )
    .await;
    let id = backup(&engine).await;

    // Since the backup: bob demoted, carol reactivated, alice's password
    // changed, erin made an administrator, frank's account removed.
    sql(
        &engine,
        "UPDATE users SET role = 'instructor' WHERE username = 'bob'",
    )
    .await;
    sql(
        &engine,
        "UPDATE users SET is_active = true WHERE username = 'carol'",
    )
    .await;
    sql(
        &engine,
        "UPDATE users SET password_hash = password_hash || 'x' WHERE username = 'alice'",
    )
    .await;
    add_user(&engine, "erin", "Erin", Role::Admin).await;

    let seen = engine.admins_after_restore(id, Some("erin")).await.unwrap();
    assert_eq!(
        names(&seen.admins),
        [
            ("alice", "Alice Admin", true, true),
            ("bob", "", true, true),
            ("carol", "Carol\tTab \\ and\nline", false, false),
        ],
        "the administrators as they were, instructors left out"
    );
    assert_eq!(
        seen.access,
        Some(AccessAfterRestore::NotAdmin),
        "erin is not in it"
    );
    assert_eq!(
        seen.returning,
        ["bob"],
        "bob comes back as an administrator"
    );
    assert_eq!(seen.leaving, ["carol", "erin"]);
    assert!(seen.anyone_can_sign_in());

    let access = |name: &'static str| {
        let engine = engine.clone();
        async move {
            engine
                .admins_after_restore(id, Some(name))
                .await
                .unwrap()
                .access
                .unwrap()
        }
    };
    assert_eq!(access("alice").await, AccessAfterRestore::OlderPassword);
    assert_eq!(
        access("bob").await,
        AccessAfterRestore::Kept,
        "same password then and now"
    );
    assert_eq!(access("carol").await, AccessAfterRestore::Deactivated);
    assert_eq!(access("dave").await, AccessAfterRestore::NotAdmin);
    assert_eq!(
        engine.admins_after_restore(id, None).await.unwrap().access,
        None
    );

    // Read from the archive once, then from the catalog: the digests of the
    // password hashes are kept there, never the hashes.
    let recorded: String =
        sqlx::query_scalar("SELECT administrators::text FROM backup_history WHERE id = $1")
            .bind(id)
            .fetch_one(&engine.dbs().control)
            .await
            .unwrap();
    assert!(recorded.contains("\"alice\""), "{recorded}");
    assert!(!recorded.contains("$argon2"), "{recorded}");
}

#[tokio::test]
async fn an_uploaded_archive_made_elsewhere_with_inserts_is_read_from_the_archive() {
    let here = spawn_engine().await;
    let elsewhere = spawn_engine().await;
    // Another installation's pg_dump writes rows as INSERT statements,
    // several per statement, in its own column order.
    let bin = wrapped_pg_dump(
        elsewhere.tools(),
        "exec \"$REAL\" --column-inserts --rows-per-insert=2 \"$@\"",
    );
    let tools = lms_backup::postgres::tools::locate(Some(&bin))
        .await
        .unwrap();
    let elsewhere = elsewhere.with_tools(tools);
    add_user(&elsewhere, "zoe", "Zoë O'Neil; (head)", Role::Admin).await;
    add_user(&elsewhere, "yann", "", Role::Student).await;
    sql(
        &elsewhere,
        "INSERT INTO users (username, email, full_name, password_hash, role)
         VALUES ('no.password', 'np@x', 'Line one\nline two', '!', 'admin')",
    )
    .await;
    let id = upload_from(&elsewhere, &here).await;
    let filename = lms_backup::catalog::get_row(&here.dbs().control, id)
        .await
        .unwrap()
        .filename;
    let rows = std::process::Command::new(&here.tools().pg_restore)
        .args(["--schema=public", "--table=users", "--file=-"])
        .arg(here.config().backup_dir.join(filename))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&rows.stdout).contains("INSERT INTO public.users (id, username"),
        "the archive holds INSERT statements"
    );

    add_user(&here, "alice", "Alice", Role::Admin).await;
    let seen = here.admins_after_restore(id, Some("alice")).await.unwrap();
    assert_eq!(
        names(&seen.admins),
        [
            ("no.password", "Line one\nline two", true, false),
            ("zoe", "Zoë O'Neil; (head)", true, true),
        ]
    );
    assert_eq!(seen.access, Some(AccessAfterRestore::NotAdmin));
    assert_eq!(seen.returning, ["zoe"]);
    assert_eq!(seen.leaving, ["alice"]);
}

#[tokio::test]
async fn an_archive_without_a_users_table_is_a_clear_error() {
    let here = spawn_engine().await;
    let elsewhere = spawn_engine().await;
    sql(&elsewhere, "DROP TABLE users CASCADE").await;
    let id = upload_from(&elsewhere, &here).await;
    let err = here
        .admins_after_restore(id, Some("alice"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("no users table")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_changed_archive_is_not_read() {
    let engine = spawn_engine().await;
    add_user(&engine, "alice", "Alice", Role::Admin).await;
    let id = backup(&engine).await;
    let filename = lms_backup::catalog::get_row(&engine.dbs().control, id)
        .await
        .unwrap()
        .filename;
    let path = engine.config().backup_dir.join(&filename);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let err = engine.admins_after_restore(id, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("no longer matches its checksum")),
        "{err:?}"
    );
}
