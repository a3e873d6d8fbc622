//! Restore and undo over HTTP, sessions after a restore, maintenance mode.

use app::error::AppError;
use app::models::{
    AccessAfterRestore, BackupAdministrators, DatabaseOverview, LastSwitch, OperationStatus,
};
use lms_backup::testing::Gate;
use lms_backup::users::Role;
use lms_types::{JobStatus, Operation};
use serde_json::json;

use crate::support::{spawn_app, spawn_app_with_gates, PASSWORD};

async fn courses(app: &crate::support::TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&app.dbs.lms)
        .await
        .unwrap()
}

#[tokio::test]
async fn restore_over_http_signs_everyone_out_and_brings_the_data_back() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let backup = client.backup_now().await.backup;
    let id = backup.id;
    sqlx::query("DELETE FROM courses WHERE id > 10")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    assert_eq!(courses(&app).await, 10);

    let unconfirmed = client.restore_unconfirmed(id).await.unwrap_err();
    assert_eq!(unconfirmed.status, 400);
    let unknown = client.restore(424242).await.unwrap_err();
    assert_eq!(unknown.status, 404);

    let job = client.restore(id).await.unwrap();
    // The job's own session ends with the restore: follow it through the
    // engine, and sign in again afterwards.
    let job = lms_backup::testing::wait_for_job(&app.engine, job.id.parse().unwrap()).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(courses(&app).await, 20, "the backup's data is back");

    // Everyone signs in again.
    assert_eq!(client.me().await.unwrap_err().status, 401);
    client
        .sign_in("alice", PASSWORD)
        .await
        .expect("the restored users table has alice");
    let state = client.status().await.unwrap();
    assert!(state.undo_available);
    assert!(!state.maintenance);
    // What an undo would reverse: this restore, of this backup, by alice.
    let last = app.engine.last_switch().await.unwrap().expect("a switch");
    assert_eq!(
        (
            last.id,
            last.kind,
            last.backup_id,
            last.started_by_name.as_str()
        ),
        (job.id, Operation::Restore, Some(id), "alice")
    );
    // The undo dialog names it.
    let named: Option<LastSwitch> = client.server_fn("last_restore", json!({})).await.unwrap();
    let named = named.expect("a last restore");
    assert_eq!(named.kind, Operation::Restore);
    assert_eq!(named.backup.as_deref(), Some(backup.filename.as_str()));
    assert_eq!(named.restored_by, "alice");

    let undo = client.undo().await.unwrap();
    let undo = lms_backup::testing::wait_for_job(&app.engine, undo.id.parse().unwrap()).await;
    assert_eq!(undo.status, JobStatus::Succeeded, "{undo:?}");
    // The undo is now the last switch (an undo reverses it in turn).
    let last = app.engine.last_switch().await.unwrap().expect("a switch");
    assert_eq!((last.id, last.kind), (undo.id, Operation::Undo));
    assert_eq!(
        courses(&app).await,
        10,
        "undo brings back what was there before the restore"
    );
}

#[tokio::test]
async fn maintenance_mode_answers_503_except_admin_reads_of_the_control_database() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    lms_backup::settings::maintenance_on(&app.dbs.control, "test")
        .await
        .unwrap();
    let page = client.get("/admin").send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "5");
    assert!(page.text().await.unwrap().contains("Back in a moment"));
    let overview = client.overview().await.unwrap_err();
    assert_eq!(overview.status, 503, "the LMS database is not readable");
    client
        .list_backups()
        .await
        .expect("the catalog is in the control database");
    assert!(client.status().await.unwrap().maintenance);
    // The console follows the switch through its server function, which
    // answers in its own encoding; other server functions wait.
    let via_fn: OperationStatus = client
        .server_fn("operation_status", json!({}))
        .await
        .unwrap();
    assert!(via_fn.maintenance);
    let other_fn = client
        .server_fn::<DatabaseOverview>("database_overview", json!({}))
        .await
        .unwrap_err();
    assert_eq!(other_fn.status, 503);
    assert!(
        matches!(other_fn.error, AppError::Unavailable(_)),
        "{other_fn:?}"
    );
    lms_backup::settings::maintenance_off(&app.dbs.control)
        .await
        .unwrap();
    client.overview().await.expect("readable again");
}

#[tokio::test]
async fn restore_while_a_backup_runs_and_delete_while_restoring_get_409() {
    let (dump, load) = (Gate::new(), Gate::new());
    let app = spawn_app_with_gates(Some(&dump), Some(&load)).await;
    let client = app.signed_in("alice", Role::Admin).await;
    dump.open();
    let id = client.backup_now().await.backup.id;
    // The second backup's pg_dump is held at the gate: it is running.
    dump.close();
    let second = client.create_backup(None).await.unwrap();
    dump.reached().await;
    let refused = client.restore(id).await.unwrap_err();
    assert_eq!(refused.status, 409, "a backup is running");
    dump.open();
    client.wait_for_job(&second.job.id).await;

    // The restore's pg_restore is held at its gate: it is restoring.
    client.restore(id).await.unwrap();
    load.reached().await;
    let deleting = client.delete_backup(id).await.unwrap_err();
    assert_eq!(
        deleting.status, 409,
        "the backup being restored cannot be deleted"
    );
}

/// While the LMS database takes no connections (the moment of a switch),
/// the admin check cannot read the signed-in user: that is a 503 with a
/// message, not a 500.
#[tokio::test]
async fn an_unreachable_lms_database_is_503_not_500() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let lms = app.dbs.lms_name().to_owned();
    let mut admin = sqlx::PgConnection::connect_with(&app.dbs.maintenance_options())
        .await
        .unwrap();
    use sqlx::Connection;
    sqlx::query(&format!("ALTER DATABASE \"{lms}\" ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&lms)
    .execute(&mut admin)
    .await
    .unwrap();
    let refused = client
        .server_fn::<OperationStatus>("operation_status", json!({}))
        .await
        .unwrap_err();
    sqlx::query(&format!("ALTER DATABASE \"{lms}\" ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(refused.status, 503);
    assert!(
        matches!(refused.error, AppError::Unavailable(_)),
        "{refused:?}"
    );
    client
        .status()
        .await
        .expect("back as soon as the database is");
}

/// Before a restore, the console learns which administrators the backup
/// holds and whether the one asking could sign in afterwards: the same
/// through the REST route and the server function, for administrators only.
/// The restore then does what was said: the administrator created since the
/// backup is locked out, the one demoted since is back.
#[tokio::test]
async fn the_administrators_a_backup_holds_say_who_a_restore_would_lock_out() {
    let app = spawn_app().await;
    let alice = app.signed_in("alice", Role::Admin).await;
    app.create_user("bob", Role::Admin).await;
    app.create_user("carol", Role::Admin).await;
    sqlx::query("UPDATE users SET is_active = false WHERE username = 'carol'")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    let id = alice.backup_now().await.backup.id;

    // Since the backup: bob demoted, erin made an administrator.
    sqlx::query("UPDATE users SET role = 'instructor' WHERE username = 'bob'")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    let erin = app.signed_in("erin", Role::Admin).await;

    let seen = erin.administrators(id).await.unwrap();
    let admins: Vec<_> = seen
        .admins
        .iter()
        .map(|a| (a.username.as_str(), a.is_active, a.can_sign_in))
        .collect();
    assert_eq!(
        admins,
        [
            ("alice", true, true),
            ("bob", true, true),
            ("carol", false, false)
        ]
    );
    assert_eq!(seen.you, "erin");
    assert_eq!(seen.your_access, AccessAfterRestore::NotAdmin);
    assert_eq!(seen.returning, ["bob"]);
    assert_eq!(seen.leaving, ["erin"]);
    assert_eq!(
        seen.recovery_command,
        "lms-admin user grant-admin --username erin --password-stdin"
    );
    let via_fn: BackupAdministrators = erin
        .server_fn("backup_administrators", json!({ "id": id }))
        .await
        .unwrap();
    assert_eq!(via_fn, seen, "one operation behind both doors");
    let for_alice = alice.administrators(id).await.unwrap();
    assert_eq!(for_alice.your_access, AccessAfterRestore::Kept);
    assert_eq!(for_alice.you, "alice");

    // Administrators only; ids checked; a backup without an archive is 422.
    assert_eq!(
        app.client().administrators(id).await.unwrap_err().status,
        401
    );
    let student = app.signed_in("sam", Role::Student).await;
    assert_eq!(student.administrators(id).await.unwrap_err().status, 403);
    let refused = student
        .server_fn::<BackupAdministrators>("backup_administrators", json!({ "id": id }))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 403);
    assert_eq!(erin.administrators(424242).await.unwrap_err().status, 404);
    assert_eq!(erin.administrators(0).await.unwrap_err().status, 400);
    let failed: i64 = sqlx::query_scalar(
        "INSERT INTO backup_history (filename, kind, status, created_by_name)
         VALUES ('backup_20200101_000000.dump', 'manual', 'failed', 'x') RETURNING id",
    )
    .fetch_one(&app.dbs.control)
    .await
    .unwrap();
    let not_completed = erin.administrators(failed).await.unwrap_err();
    assert_eq!(not_completed.status, 422, "{not_completed:?}");

    // As said: erin is locked out after the restore, bob is back.
    let job = erin.restore(id).await.unwrap();
    let job = lms_backup::testing::wait_for_job(&app.engine, job.id.parse().unwrap()).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(
        app.client()
            .sign_in("erin", PASSWORD)
            .await
            .unwrap_err()
            .status,
        401
    );
    let bob = app.client();
    assert_eq!(
        bob.sign_in("bob", PASSWORD).await.unwrap().role,
        app::models::Role::Admin
    );
}
