//! Restore and undo over HTTP, sessions after a restore, maintenance mode.

use lms_backup::users::Role;
use lms_types::JobStatus;
use serde_json::{json, Value};

use crate::support::{spawn_app, start_backup, wait_for_job, PASSWORD};

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
    let started: Value = start_backup(&app, &client).await;
    assert_eq!(
        wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await["status"],
        "succeeded"
    );
    let id = started["backup"]["id"].as_i64().unwrap();
    sqlx::query("DELETE FROM courses WHERE id > 10")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    assert_eq!(courses(&app).await, 10);

    let unconfirmed = client
        .post(app.url(&format!("/api/admin/backup/restore/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(unconfirmed.status(), 400);
    let unknown = client
        .post(app.url("/api/admin/backup/restore/424242"))
        .json(&json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let res = client
        .post(app.url(&format!("/api/admin/backup/restore/{id}")))
        .json(&json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await.unwrap();
    // The job's own session ends with the restore: follow it from a fresh one afterwards.
    let job_id = job["id"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..600 {
        status = serde_json::to_value(
            lms_backup::jobs::get(&app.dbs.control, job_id.parse().unwrap())
                .await
                .unwrap(),
        )
        .unwrap();
        if status["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "succeeded", "{status}");
    assert_eq!(courses(&app).await, 20, "the backup's data is back");

    // Everyone signs in again.
    assert_eq!(
        client
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let res = client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the restored users table has alice");
    let state: Value = client
        .get(app.url("/api/admin/backup/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["undo_available"], true);
    assert_eq!(state["maintenance"], false);

    let res = client
        .post(app.url("/api/admin/backup/restore/undo"))
        .json(&json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let undo: Value = res.json().await.unwrap();
    for _ in 0..600 {
        let j = lms_backup::jobs::get(
            &app.dbs.control,
            undo["id"].as_str().unwrap().parse().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        if j.status != JobStatus::Running {
            assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
    let page = client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "5");
    assert!(page.text().await.unwrap().contains("Back in a moment"));
    let api = client
        .get(app.url("/api/admin/database/overview"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 503, "the LMS database is not readable");
    let catalog = client
        .get(app.url("/api/admin/backup/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        catalog.status(),
        200,
        "the catalog is in the control database"
    );
    let status: Value = client
        .get(app.url("/api/admin/backup/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["maintenance"], true);
    // The console follows the switch through its server function, which
    // answers in its own encoding; other server functions wait.
    let via_fn = client
        .post(app.url("/api/fn/operation_status"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(via_fn.status(), 200);
    assert_eq!(via_fn.json::<Value>().await.unwrap()["maintenance"], true);
    let other_fn = client
        .post(app.url("/api/fn/database_overview"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(other_fn.status(), 503);
    let error: app::error::AppError = other_fn.json().await.unwrap();
    assert!(
        matches!(error, app::error::AppError::Unavailable(_)),
        "{error:?}"
    );
    lms_backup::settings::maintenance_off(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(
        client
            .get(app.url("/api/admin/database/overview"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn restore_while_a_backup_runs_and_delete_while_restoring_get_409() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 2).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let first: Value = start_backup(&app, &client).await;
    wait_for_job(&app, &client, first["job"]["id"].as_str().unwrap()).await;
    let id = first["backup"]["id"].as_i64().unwrap();
    let second: Value = start_backup(&app, &client).await;
    let res = client
        .post(app.url(&format!("/api/admin/backup/restore/{id}")))
        .json(&json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "a backup is running");
    wait_for_job(&app, &client, second["job"]["id"].as_str().unwrap()).await;

    let res = client
        .post(app.url(&format!("/api/admin/backup/restore/{id}")))
        .json(&json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let deleting = client
        .delete(app.url(&format!("/api/admin/backup/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleting.status(),
        409,
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
    let res = client
        .post(app.url("/api/fn/operation_status"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let error: app::error::AppError = res.json().await.unwrap();
    sqlx::query(&format!("ALTER DATABASE \"{lms}\" ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert!(
        matches!(error, app::error::AppError::Unavailable(_)),
        "{error:?}"
    );
    let res = client
        .get(app.url("/api/admin/backup/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "back as soon as the database is");
}
