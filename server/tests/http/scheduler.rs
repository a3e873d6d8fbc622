//! The scheduler in real `lms-admin serve` processes, on the real clock: a
//! schedule due every minute, two servers waking for the same due time, and
//! a server killed with SIGKILL while its scheduled backup runs. The tests
//! wait for states (a due time claimed, a job ended), never for a time.

use std::process::Stdio;

use chrono::{DateTime, Utc};
use lms_backup::testing::{wait_until, Gate};
use sqlx::PgPool;

use crate::crash::{create_admin, gated_tools, lms_admin, start};

/// A schedule due at every minute, added with the binary's own CLI.
fn add_minutely(env: &[(&str, String)]) {
    let added = lms_admin(env)
        .args([
            "schedule",
            "add",
            "--name",
            "minutely",
            "--cron",
            "* * * * *",
            "--timezone",
            "UTC",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());
}

async fn control(env: &[(&str, String)]) -> PgPool {
    let url = &env.iter().find(|(k, _)| *k == "DATABASE_URL").unwrap().1;
    PgPool::connect(&format!("{url}_control")).await.unwrap()
}

/// The runs of the schedule: (due time, run state, job status).
async fn runs(control: &PgPool) -> Vec<(DateTime<Utc>, String, Option<String>)> {
    sqlx::query_as(
        "SELECT r.due_at, r.state, j.status FROM schedule_runs r
         LEFT JOIN jobs j ON j.id = r.job_id ORDER BY r.due_at, r.id",
    )
    .fetch_all(control)
    .await
    .unwrap()
}

fn env_for(url: String, backups: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", url),
        ("BACKUP_DIR", backups.display().to_string()),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
        ("MAX_BACKUPS_TO_KEEP", "100".to_string()),
    ]
}

#[tokio::test]
async fn two_servers_waking_for_one_due_time_make_one_backup() {
    let dir = std::env::temp_dir().join(format!("race-{}", uuid::Uuid::new_v4().simple()));
    let backups = crate::support::backup_dir_in(&dir);
    let env = env_for(lms_backup::testing::fresh_database_url().await, &backups);
    create_admin(&env);
    add_minutely(&env);
    let control = control(&env).await;
    let first_due: DateTime<Utc> =
        sqlx::query_scalar("SELECT next_run_at FROM schedules WHERE name = 'minutely'")
            .fetch_one(&control)
            .await
            .unwrap();
    let a = start(&env).await;
    let b = start(&env).await;

    // Both sleep until the same due time; one claims it, and its backup ends.
    let outcome = wait_until("the first due time's backup to end", async || {
        let runs = runs(&control).await;
        runs.iter()
            .find(|(due, _, status)| {
                *due == first_due && status.as_deref().is_some_and(|s| s != "running")
            })
            .map(|(_, _, status)| status.clone().unwrap())
    })
    .await;
    assert_eq!(outcome, "succeeded");
    drop((a, b));

    let due_words = first_due.format("%Y-%m-%d %H:%M UTC").to_string();
    let backups_for_due: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM backup_history WHERE kind = 'scheduled' AND notes LIKE '%' || $1 || '%'",
    )
    .bind(&due_words)
    .fetch_one(&control)
    .await
    .unwrap();
    assert_eq!(
        backups_for_due, 1,
        "one backup for the due time {due_words}"
    );
    let jobs_for_due: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'backup' AND started_by_name = 'minutely'
           AND created_at < $1 + interval '55 seconds'",
    )
    .bind(first_due)
    .fetch_one(&control)
    .await
    .unwrap();
    assert_eq!(jobs_for_due, 1, "one job started for it, by either server");
    control.close().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_server_killed_during_a_scheduled_backup_reports_it_and_the_next_due_time_runs() {
    let dir = std::env::temp_dir().join(format!("sched-kill-{}", uuid::Uuid::new_v4().simple()));
    let backups = crate::support::backup_dir_in(&dir);
    let dump = Gate::new();
    let mut env = env_for(lms_backup::testing::fresh_database_url().await, &backups);
    env.push((
        "POSTGRES_BIN_PATH",
        gated_tools(Some(&dump), None).await.display().to_string(),
    ));
    create_admin(&env);
    add_minutely(&env);
    let control = control(&env).await;

    let mut server = start(&env).await;
    // Its scheduled backup is under way (pg_dump waits at the gate): kill it.
    dump.reached().await;
    let (killed_due, _, status) = runs(&control).await.into_iter().next().unwrap();
    assert_eq!(status.as_deref(), Some("running"));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    dump.close();

    // Started again: the interrupted run is reported as such...
    let server = start(&env).await;
    wait_until("the killed run to be reported interrupted", async || {
        runs(&control)
            .await
            .iter()
            .any(|(due, _, status)| *due == killed_due && status.as_deref() == Some("interrupted"))
            .then_some(())
    })
    .await;
    // ...and a later due time still gives a verified backup.
    dump.open();
    let later = wait_until("a later due time's backup to succeed", async || {
        runs(&control)
            .await
            .into_iter()
            .find(|(due, _, status)| *due > killed_due && status.as_deref() == Some("succeeded"))
            .map(|(due, _, _)| due)
    })
    .await;
    assert!(later > killed_due);
    let completed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM backup_history WHERE kind = 'scheduled' AND status = 'completed'",
    )
    .fetch_one(&control)
    .await
    .unwrap();
    assert!(completed >= 1);
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM backup_history WHERE kind = 'scheduled' AND status = 'running'",
    )
    .fetch_one(&control)
    .await
    .unwrap();
    assert_eq!(audit, 0, "no entry is left running");
    drop(server);
    control.close().await;
    std::fs::remove_dir_all(dir).ok();
}
