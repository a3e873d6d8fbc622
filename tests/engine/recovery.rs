//! Start-up recovery after a crash.

use lms_backup::testing::{actor, spawn_engine, start_manual_backup, wait_for_job};
use lms_backup::{catalog, storage, Engine};
use lms_types::JobStatus;
use sqlx::Connection;

async fn completed_backup(engine: &Engine) -> catalog::Backup {
    let who = actor("alice");
    let started = start_manual_backup(engine, &who).await.unwrap();
    assert_eq!(
        wait_for_job(engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    catalog::get_row(&engine.dbs().control, started.backup.id)
        .await
        .unwrap()
}

/// Leaves the state a server killed mid-backup leaves: a running job and
/// catalog row, the lock held by the dead process, a .partial file.
async fn simulate_crash(engine: &Engine, holder: &str, name: &str) -> uuid::Uuid {
    let control = &engine.dbs().control;
    let job = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jobs (id, kind, status, phase, started_by_name, instance_id, started_at)
         VALUES ($1, 'backup', 'running', 'dumping', 'alice', $2, now())",
    )
    .bind(job)
    .bind(holder)
    .execute(control)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO backup_history (filename, kind, status, created_by_name, job_id) VALUES ($1, 'manual', 'running', 'alice', $2)",
    )
    .bind(name)
    .bind(job)
    .execute(control)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO operation_lock (id, holder_instance, job_id, operation_type, locked_by_name) VALUES (1, $1, $2, 'backup', 'alice')",
    )
    .bind(holder)
    .bind(job)
    .execute(control)
    .await
    .unwrap();
    std::fs::write(
        engine.config().backup_dir.join(format!("{name}.partial")),
        b"half an archive",
    )
    .unwrap();
    job
}

#[tokio::test]
async fn recovery_repairs_what_a_crash_left() {
    let engine = spawn_engine().await;
    let dir = engine.config().backup_dir.clone();
    let kept = completed_backup(&engine).await;
    let vanished = completed_backup(&engine).await;
    std::fs::remove_file(dir.join(&vanished.filename)).unwrap();

    // An archive with a sidecar but no catalog row (catalog lost, disk kept).
    let orphan = "backup_20200101_000000.dump";
    std::fs::copy(dir.join(&kept.filename), dir.join(orphan)).unwrap();
    let sidecars = storage::BackupDir::new(&dir);
    let mut manifest = sidecars.read_manifest(&kept.filename).await.unwrap();
    manifest.filename = orphan.into();
    sidecars.write_manifest(&manifest).await.unwrap();

    let crashed = simulate_crash(
        &engine,
        &lms_backup::testing::dead_local_holder(),
        "backup_20991231_235959.dump",
    )
    .await;
    let report = engine.recover().await.unwrap();

    assert!(report.released_lock);
    assert_eq!(report.interrupted_jobs, 1);
    assert_eq!(
        report.removed_partials,
        ["backup_20991231_235959.dump.partial"]
    );
    assert_eq!(report.marked_missing, vec![vanished.filename.clone()]);
    assert_eq!(report.reimported, [orphan]);

    let job = lms_backup::jobs::get(&engine.dbs().control, crashed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Interrupted);
    assert!(job.message.unwrap().contains("Interrupted"));
    assert!(engine.lock_status().await.unwrap().is_none());
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT filename, status FROM backup_history ORDER BY filename")
            .fetch_all(&engine.dbs().control)
            .await
            .unwrap();
    assert!(statuses.contains(&(vanished.filename.clone(), "missing".into())));
    assert!(statuses.contains(&("backup_20991231_235959.dump".into(), "failed".into())));
    assert!(statuses.contains(&(orphan.into(), "completed".into())));
    assert!(statuses.contains(&(kept.filename.clone(), "completed".into())));

    // Recovery is idempotent, and the next backup starts at once.
    assert_eq!(engine.recover().await.unwrap(), Default::default());
    completed_backup(&engine).await;
}

#[tokio::test]
async fn recovery_leaves_a_live_operation_of_another_instance_alone() {
    let engine = spawn_engine().await;
    let live = simulate_crash(
        &engine,
        "other-host:4242:alive",
        "backup_20991231_235958.dump",
    )
    .await;
    let report = engine.recover().await.unwrap();
    assert!(!report.released_lock);
    assert_eq!(report.interrupted_jobs, 0);
    assert!(report.removed_partials.is_empty());
    let job = lms_backup::jobs::get(&engine.dbs().control, live)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert!(engine
        .config()
        .backup_dir
        .join("backup_20991231_235958.dump.partial")
        .exists());
    assert_eq!(
        engine.lock_status().await.unwrap().unwrap().holder_instance,
        "other-host:4242:alive"
    );
}

#[tokio::test]
async fn a_stale_lease_is_taken_over_and_its_job_interrupted() {
    let engine = spawn_engine().await;
    let stuck = simulate_crash(
        &engine,
        "other-host:4242:stalled",
        "backup_20991231_235957.dump",
    )
    .await;
    sqlx::query("UPDATE operation_lock SET heartbeat_at = now() - interval '5 minutes'")
        .execute(&engine.dbs().control)
        .await
        .unwrap();
    // A new backup takes the abandoned lease over.
    completed_backup(&engine).await;
    let job = lms_backup::jobs::get(&engine.dbs().control, stuck)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Interrupted);
}

#[tokio::test]
async fn a_live_database_left_closed_by_an_interrupted_swap_is_reopened() {
    let engine = spawn_engine().await;
    let control = &engine.dbs().control;
    // What a crash after closing the live database and before the renames
    // committed leaves behind.
    leave_a_switch_half_done(&engine).await;
    assert!(!live_is_open(&engine).await, "closed");

    repair_switch(&engine).await;
    engine.recover().await.unwrap();
    assert!(live_is_open(&engine).await, "open again");
    assert!(
        lms_backup::settings::maintenance(control)
            .await
            .unwrap()
            .is_none(),
        "maintenance off"
    );
}

/// A holder with this machine's host name in another PID namespace (another
/// container): its pid means nothing here, so its lease is kept until it
/// expires, by start-up recovery and by the repair of an abandoned switch.
fn holder_in_another_namespace() -> String {
    let ours = lms_backup::testing::dead_local_holder();
    let parts: Vec<&str> = ours.split(':').collect();
    format!("{}:2147483646:other:{}:1", parts[0], parts[3])
}

#[tokio::test]
async fn a_holder_with_our_host_name_in_another_pid_namespace_keeps_its_lease() {
    let engine = spawn_engine().await;
    let holder = holder_in_another_namespace();
    let live = simulate_crash(&engine, &holder, "backup_20991231_235956.dump").await;
    let report = engine.recover().await.unwrap();
    assert!(!report.released_lock, "{report:?}");
    assert_eq!(report.interrupted_jobs, 0);
    let job = lms_backup::jobs::get(&engine.dbs().control, live)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Running, "a live backup elsewhere");
    assert_eq!(
        engine.lock_status().await.unwrap().unwrap().holder_instance,
        holder
    );

    // Once its lease expires, it is taken over.
    sqlx::query("UPDATE operation_lock SET heartbeat_at = now() - interval '5 minutes'")
        .execute(&engine.dbs().control)
        .await
        .unwrap();
    let report = engine.recover().await.unwrap();
    assert!(report.released_lock, "{report:?}");
    let job = lms_backup::jobs::get(&engine.dbs().control, live)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Interrupted);
}

#[tokio::test]
async fn a_switch_held_in_another_pid_namespace_is_not_repaired_under_it() {
    let engine = spawn_engine().await;
    let control = &engine.dbs().control;
    // Another instance (same host name, another container) is switching:
    // maintenance on, the live database closed, its lease fresh.
    leave_a_switch_half_done(&engine).await;
    sqlx::query(
        "INSERT INTO operation_lock (id, holder_instance, operation_type, locked_by_name) VALUES (1, $1, 'restore', 'alice')",
    )
    .bind(holder_in_another_namespace())
    .execute(control)
    .await
    .unwrap();
    repair_switch(&engine).await;
    assert!(
        !live_is_open(&engine).await,
        "left closed: the switch is someone else's and alive"
    );
    assert!(lms_backup::settings::maintenance(control)
        .await
        .unwrap()
        .is_some());

    // The same state left by a dead process of this instance's own
    // namespace is repaired.
    sqlx::query("UPDATE operation_lock SET holder_instance = $1")
        .bind(lms_backup::testing::dead_local_holder())
        .execute(control)
        .await
        .unwrap();
    repair_switch(&engine).await;
    assert!(live_is_open(&engine).await, "open again");
}

/// What a crash between closing the live database and the renames leaves:
/// maintenance mode on and the live database taking no connections.
async fn leave_a_switch_half_done(engine: &Engine) {
    lms_backup::settings::maintenance_on(&engine.dbs().control, "restore")
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect_with(&engine.dbs().maintenance_options())
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
        engine.dbs().lms_name()
    ))
    .execute(&mut admin)
    .await
    .unwrap();
}

/// The repair of an interrupted switch, as start-up and the watchdog run it.
async fn repair_switch(engine: &Engine) {
    engine
        .dbs()
        .repair_interrupted_swap(engine.config().lease_timeout)
        .await
        .unwrap();
}

/// The live database takes connections.
async fn live_is_open(engine: &Engine) -> bool {
    sqlx::PgConnection::connect_with(&engine.dbs().lms_options)
        .await
        .is_ok()
}
