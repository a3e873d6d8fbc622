//! The lease against clock jumps, and the fence before a switch. Every
//! timestamp the lock compares is the database server's `now()`, so what
//! can jump is that clock: a heartbeat or start time in the future or the
//! past, as a jump leaves them.

use std::time::Duration;

use lms_backup::testing::{
    actor, live_fingerprint, spawn_engine, spawn_engine_with, start_manual_backup, wait_for_job,
};
use lms_backup::{jobs, settings, Engine, Error};
use lms_types::JobStatus;
use uuid::Uuid;

/// A lock held by `holder` for a running backup job started `started`
/// (an SQL expression), with its last heartbeat at `heartbeat`.
async fn held_lock(engine: &Engine, holder: &str, started: &str, heartbeat: &str) -> Uuid {
    let control = &engine.dbs().control;
    let job = Uuid::new_v4();
    sqlx::query(&format!(
        "INSERT INTO jobs (id, kind, status, phase, started_by_name, instance_id, started_at)
         VALUES ($1, 'backup', 'running', 'dumping', 'alice', $2, {started})"
    ))
    .bind(job)
    .bind(holder)
    .execute(control)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO operation_lock (id, holder_instance, job_id, operation_type, locked_by_name, locked_at, heartbeat_at)
         VALUES (1, $1, $2, 'backup', 'alice', {started}, {heartbeat})"
    ))
    .bind(holder)
    .bind(job)
    .execute(control)
    .await
    .unwrap();
    job
}

async fn try_backup(engine: &Engine) -> lms_backup::Result<Uuid> {
    let who = actor("bob");
    start_manual_backup(engine, &who)
        .await
        .map(|started| started.job.id)
}

/// The database clock went back a day after a holder's last heartbeat, and
/// the holder died: its lock expires one lease timeout later, not a day later.
#[tokio::test]
async fn a_heartbeat_in_the_future_expires_one_timeout_from_now() {
    let engine = spawn_engine_with(|c| c.lease_timeout = Duration::from_secs(2)).await;
    let stuck = held_lock(
        &engine,
        "other-host:4242:gone",
        "now() + interval '1 day'",
        "now() + interval '1 day'",
    )
    .await;
    // Straight away it still counts as held: it might be alive.
    assert!(matches!(try_backup(&engine).await, Err(Error::Busy(_))));
    let status = engine.lock_status().await.unwrap().expect("held");
    assert!(
        status.heartbeat_at <= chrono::Utc::now() + chrono::Duration::seconds(5),
        "the future heartbeat was brought back to the present: {:?}",
        status.heartbeat_at
    );
    // One timeout later (the heartbeat moved back by a little more than
    // one, rather than waited out) it has expired; had it stayed a day
    // ahead, it would still be held.
    sqlx::query(
        "UPDATE operation_lock SET heartbeat_at = heartbeat_at - interval '2500 milliseconds'",
    )
    .execute(&engine.dbs().control)
    .await
    .unwrap();
    let job = try_backup(&engine)
        .await
        .expect("taken over after one timeout");
    assert_eq!(
        wait_for_job(&engine, job).await.status,
        JobStatus::Succeeded
    );
    let old = jobs::get(&engine.dbs().control, stuck)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, JobStatus::Interrupted);
}

/// The clock jumped forward (or the job simply runs long): a start time far
/// in the past does not expire a lease whose holder keeps renewing it; a
/// heartbeat older than the timeout does.
#[tokio::test]
async fn only_the_heartbeat_decides_whether_a_lease_has_expired() {
    let engine = spawn_engine().await;
    held_lock(
        &engine,
        "other-host:4242:alive",
        "now() - interval '3 days'",
        "now()",
    )
    .await;
    match try_backup(&engine).await {
        Err(Error::Busy(info)) => assert_eq!(info.locked_by, "alice"),
        other => panic!("expected busy, got {other:?}"),
    }
    sqlx::query("UPDATE operation_lock SET heartbeat_at = now() - interval '1 hour'")
        .execute(&engine.dbs().control)
        .await
        .unwrap();
    let job = try_backup(&engine)
        .await
        .expect("an expired lease is taken over");
    assert_eq!(
        wait_for_job(&engine, job).await.status,
        JobStatus::Succeeded
    );
}

/// A restore whose lease was taken over while it worked (its own heartbeat
/// too slow to notice) stops at the fence before the switch: the live
/// database is untouched, no copy is left, and the new holder keeps its lock.
#[tokio::test]
async fn a_restore_that_lost_its_lease_does_not_switch() {
    let engine = spawn_engine_with(|c| c.heartbeat_interval = Duration::from_secs(3600)).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let who = actor("alice");
    let started = start_manual_backup(&engine, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    let backup_id = started.backup.id;
    sqlx::query("UPDATE courses SET title = 'after the backup'")
        .execute(&engine.dbs().lms)
        .await
        .unwrap();
    let before = live_fingerprint(&engine).await;

    let job = engine.start_restore(backup_id, true, &who).await.unwrap();
    sqlx::query(
        "UPDATE operation_lock SET holder_instance = 'other-host:1:new', job_id = NULL, locked_by_name = 'carol'",
    )
    .execute(&engine.dbs().control)
    .await
    .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert!(
        job.message
            .as_deref()
            .unwrap()
            .contains("before the switch"),
        "{job:?}"
    );
    assert!(
        before
            .differences(&live_fingerprint(&engine).await)
            .is_empty(),
        "live database untouched"
    );
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1",
    )
    .bind(engine.dbs().lms_name())
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap();
    let lms = engine.dbs().lms_name().to_owned();
    assert_eq!(
        names,
        [lms.clone(), format!("{lms}_control")],
        "no copy left"
    );
    assert!(settings::maintenance(&engine.dbs().control)
        .await
        .unwrap()
        .is_none());
    let holder = engine.lock_status().await.unwrap().expect("still held");
    assert_eq!(holder.locked_by, "carol", "the new holder keeps its lock");
}
