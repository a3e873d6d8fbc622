//! Two `lms-admin` processes against the same databases and backup
//! directory, as behind a load balancer: one operation at a time across
//! both, each shows what the other runs, both honour maintenance mode, and
//! when the instance that is switching dies, the survivor brings the site
//! back without a restart.

use std::time::Instant;

use app::models::OperationStatus;
use lms_backup::testing::{wait_until, Gate};
use lms_types::{JobStatus, Operation};
use serde_json::json;

use crate::crash::{create_admin, gated_tools, sign_in, start};
use crate::support::PASSWORD;

#[tokio::test]
async fn two_instances_share_one_lock_and_one_maintenance_mode() {
    let dir = lms_backup::testing::scratch_dir("instances");
    let url = lms_backup::testing::fresh_database_url().await;
    let paused = dir.join("paused");
    // Backups stop at this gate until the test has seen them running.
    let dump = Gate::new();
    let env = vec![
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
        (
            "POSTGRES_BIN_PATH",
            gated_tools(Some(&dump), None).await.display().to_string(),
        ),
    ];
    create_admin(&env);
    let mut env_a = env.clone();
    env_a.push(("LMS_TEST_PAUSE_AT", "swap:between-renames".into()));
    env_a.push(("LMS_TEST_PAUSE_FILE", paused.display().to_string()));
    let mut a = start(&env_a).await;
    let b = start(&env).await;
    // Sessions live in the shared control database, and cookies are per
    // host, not per port: one signed-in cookie jar talks to both.
    let on_a = sign_in(&a).await;
    let on_b = on_a.at(&b.base);

    // A backup started on A: B refuses a second operation, naming it, and
    // shows it as running.
    let started = on_a.create_backup(None).await.unwrap();
    let job = started.job.id.clone();
    dump.reached().await;
    let refused = on_b.create_backup(None).await.unwrap_err();
    assert_eq!(refused.status, 409);
    assert!(refused.message.contains("alice"), "{refused:?}");
    let seen = on_b.status().await.unwrap();
    assert!(seen.is_locked, "{seen:?}");
    assert_eq!(seen.operation_type, Some(Operation::Backup), "{seen:?}");
    assert_eq!(seen.locked_by.as_deref(), Some("alice"), "{seen:?}");
    assert_eq!(seen.job.as_ref().unwrap().id, job, "{seen:?}");
    let via_fn: OperationStatus = on_b.server_fn("operation_status", json!({})).await.unwrap();
    assert_eq!(
        via_fn.job.as_ref().unwrap().id,
        job,
        "the console on B shows it: {via_fn:?}"
    );
    let backup_id = started.backup.id;
    let restore_on_b = on_b.restore(backup_id).await.unwrap_err();
    assert_eq!(
        restore_on_b.status, 422,
        "the backup is still being written"
    );
    assert!(restore_on_b.message.contains("running"), "{restore_on_b:?}");
    dump.open();
    assert_eq!(on_b.wait_for_job(&job).await.status, JobStatus::Succeeded);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&sqlx::PgPool::connect(&control_url(&url)).await.unwrap())
        .await
        .unwrap();
    assert_eq!(jobs, 1, "exactly one job across both instances");

    // A restore on A, held in the middle of its switch: both instances
    // answer the site's pages with the maintenance page, and B's console
    // still follows the job.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO courses (code, title) VALUES ('AFTER', 'written after the backup')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let restore_job = on_a.restore(backup_id).await.unwrap().id;
    wait_until("A to reach the switch", async || {
        paused.exists().then_some(())
    })
    .await;
    for client in [&on_b, &on_a] {
        let page = client.get("/admin").send().await.unwrap();
        assert_eq!(page.status(), 503, "{}", client.url(""));
        assert!(page.text().await.unwrap().contains("Back in a moment"));
        let overview = client.overview().await.unwrap_err();
        assert_eq!(overview.status, 503, "{}", client.url(""));
    }
    // Held between the renames, the live database takes no connections, so
    // not even an administrator can be checked: a 503 saying to retry
    // (in a real switch this lasts milliseconds and the console retries).
    let seen = on_b.status().await.unwrap_err();
    assert_eq!(seen.status, 503);
    assert!(seen.message.contains("Try again"), "{seen:?}");
    let control = sqlx::PgPool::connect(&control_url(&url)).await.unwrap();
    let (maintenance, phase): (bool, String) = sqlx::query_as(
        "SELECT (SELECT count(*) > 0 FROM settings WHERE key = 'maintenance'), phase FROM jobs WHERE id = $1::uuid",
    )
    .bind(&restore_job)
    .fetch_one(&control)
    .await
    .unwrap();
    assert!(maintenance);
    assert_eq!(phase, "switching");

    // A dies there. Its lease goes stale: moved back past the timeout
    // rather than waited out, since the lease is read against the database
    // server's clock. B notices at its next look, and brings the old
    // database back without anyone restarting anything.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    sqlx::query("UPDATE operation_lock SET heartbeat_at = heartbeat_at - interval '1 hour'")
        .execute(&control)
        .await
        .unwrap();
    control.close().await;
    let killed = Instant::now();
    // The repair ends with everyone signed out (the switch may have
    // happened), after maintenance mode and the lock are gone.
    wait_until(
        "B to repair the switch and sign everyone out",
        async || match on_b.status().await {
            Err(refused) if refused.status == 401 => Some(()),
            _ => None,
        },
    )
    .await;
    on_b.sign_in("alice", PASSWORD).await.unwrap();
    let status = on_b.status().await.unwrap();
    assert!(!status.maintenance, "{status:?}");
    assert!(!status.is_locked, "{status:?}");
    println!(
        "the surviving instance repaired the abandoned switch {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    let job = on_b.job(&restore_job).await.unwrap();
    assert_eq!(job.status, JobStatus::Interrupted, "{job:?}");
    assert_eq!(on_b.get("/admin").send().await.unwrap().status(), 200);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM courses WHERE code = 'AFTER'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        after, 1,
        "the live database is the one from before the restore"
    );
    let db = url.rsplit_once('/').unwrap().1;
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '%' AND datname <> $1 || '_control'",
    )
    .bind(db)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(databases, [db.to_owned()], "no copy left");
    pool.close().await;

    // And the next operation works, on B.
    on_b.backup_now().await;
    drop(b);
    std::fs::remove_dir_all(dir).ok();
}

fn control_url(url: &str) -> String {
    format!("{url}_control")
}
