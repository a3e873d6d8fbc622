//! Restore drills against a real PostgreSQL: the newest backup restored
//! into a scratch database, checked, queried and dropped, with the live
//! database untouched; a damaged archive fails the drill, loudly.

use lms_backup::notify::ChannelSettings;
use lms_backup::storage::offsite::Secret;
use lms_backup::testing::{
    actor, gated_tools, live_fingerprint, spawn_engine, start_manual_backup, wait_for_job,
    wait_until, Gate,
};
use lms_backup::{catalog, settings, Engine};
use lms_types::{ChannelKind, JobStatus, NotifyEvent, WebhookFormat};

async fn backup(engine: &Engine) -> catalog::BackupDetail {
    let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
    assert_eq!(
        wait_for_job(engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    catalog::get(&engine.dbs().control, started.backup.id)
        .await
        .unwrap()
}

/// A channel told about failed drills (its receiver is not there: the
/// tests read the outbox).
async fn listen_for_failed_drills(engine: &Engine) {
    engine
        .create_channel(&ChannelSettings {
            name: "ops".into(),
            kind: ChannelKind::Webhook,
            format: WebhookFormat::Generic,
            webhook_url: Some(Secret::new("http://127.0.0.1:9/")),
            webhook_secret: None,
            smtp_url: None,
            email_from: None,
            email_to: vec![],
            events: vec![NotifyEvent::DrillFailed],
            enabled: true,
        })
        .await
        .unwrap();
}

/// The databases beside the LMS one (a drill leaves none).
async fn databases(engine: &Engine) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1",
    )
    .bind(engine.dbs().lms_name())
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap()
}

fn only_live(engine: &Engine) -> Vec<String> {
    let lms = engine.dbs().lms_name().to_owned();
    vec![lms.clone(), format!("{lms}_control")]
}

#[tokio::test]
async fn a_drill_restores_the_newest_backup_aside_and_leaves_nothing() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    // Written after the backup: the drill must neither see nor touch it.
    sqlx::query("INSERT INTO courses (code, title) VALUES ('AFTER', 'written after the backup')")
        .execute(&engine.dbs().lms)
        .await
        .unwrap();
    let live = live_fingerprint(&engine).await;

    let job = engine.start_drill(None, &actor("alice")).await.unwrap();
    assert_eq!(job.backup_id, Some(detail.backup.id), "the newest backup");
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let message = job.message.unwrap();
    assert!(message.starts_with("Restore-tested in"), "{message}");

    let drill = engine.newest_drill().await.unwrap().unwrap();
    assert!(drill.succeeded);
    assert_eq!(drill.backup_id, detail.backup.id);
    assert!(drill.duration_ms > 0);
    let smoke = drill.smoke.unwrap().0;
    // The backup's counts, not the live database's (one course more).
    let manifest = detail.manifest.unwrap();
    let rows = |table: &str| {
        manifest
            .tables
            .as_ref()
            .unwrap()
            .iter()
            .find(|t| t.name == table)
            .unwrap()
            .rows
    };
    assert_eq!(smoke.courses, rows("courses"));
    assert_eq!(smoke.users, rows("users"));
    assert_eq!(smoke.enrollments, rows("enrollments"));
    assert!(smoke.newest_activity_at.is_some());

    assert!(live
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    assert_eq!(databases(&engine).await, only_live(&engine));
    assert!(engine.lock_status().await.unwrap().is_none());
    assert!(settings::maintenance(&engine.dbs().control)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_damaged_archive_fails_its_drill_and_says_so() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    listen_for_failed_drills(&engine).await;
    let detail = backup(&engine).await;
    let live = live_fingerprint(&engine).await;
    // Truncated, with a catalog that agrees: only restoring finds it out.
    let path = engine.config().backup_dir.join(&detail.backup.filename);
    let original = std::fs::read(&path).unwrap();
    let truncated = &original[..original.len() * 2 / 3];
    std::fs::write(&path, truncated).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(truncated));
    sqlx::query("UPDATE backup_history SET sha256 = $2, size_bytes = $3 WHERE id = $1")
        .bind(detail.backup.id)
        .bind(&sha)
        .bind(truncated.len() as i64)
        .execute(&engine.dbs().control)
        .await
        .unwrap();

    let job = engine
        .start_drill(Some(detail.backup.id), &actor("alice"))
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let drill = engine.newest_drill().await.unwrap().unwrap();
    assert!(!drill.succeeded);
    assert!(drill.error.is_some());
    let told: Vec<String> = sqlx::query_scalar("SELECT kind FROM notification_events")
        .fetch_all(&engine.dbs().control)
        .await
        .unwrap();
    assert_eq!(told, ["drill_failed"]);
    assert!(live
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    assert_eq!(databases(&engine).await, only_live(&engine));
}

#[tokio::test]
async fn a_scratch_database_left_by_a_dead_drill_is_dropped_at_start_up() {
    let engine = spawn_engine().await;
    // What a drill killed with its server leaves behind.
    let left =
        lms_backup::postgres::names::drill_name(engine.dbs().lms_name(), uuid::Uuid::new_v4());
    sqlx::query(&format!("CREATE DATABASE \"{left}\""))
        .execute(&engine.dbs().lms)
        .await
        .unwrap();
    assert!(databases(&engine).await.contains(&left));
    // And the off-site copy it was reading from.
    let scratch = engine
        .config()
        .backup_dir
        .join("backup_20261206_101010.dump.drill-0123456789ab.partial");
    std::fs::write(&scratch, b"half a copy").unwrap();
    engine.recover().await.unwrap();
    assert_eq!(databases(&engine).await, only_live(&engine));
    assert!(!scratch.exists());
}

#[tokio::test]
async fn a_drill_can_be_cancelled_by_releasing_its_lock() {
    let base = spawn_engine().await;
    lms_backup::demo::seed(&base.dbs().lms, 1).await.unwrap();
    backup(&base).await;
    // pg_restore stops at the gate once it loads into the scratch database.
    let restore = Gate::new();
    let bin = gated_tools(base.tools(), None, Some(&restore));
    let engine = base.with_tools(
        lms_backup::postgres::tools::locate(Some(&bin))
            .await
            .unwrap(),
    );
    let job = engine.start_drill(None, &actor("alice")).await.unwrap();
    restore.reached().await;
    let scratch = databases(&engine).await;
    assert!(
        scratch.iter().any(|d| d.contains("_drill_")),
        "the scratch database exists while it runs: {scratch:?}"
    );
    engine.force_release_lock(&actor("bob")).await.unwrap();
    restore.open();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Interrupted, "{job:?}");
    wait_until("the scratch database dropped", async || {
        (databases(&engine).await == only_live(&engine)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_archive_from_a_newer_pg_dump_is_refused_naming_what_is_missing() {
    let base = spawn_engine().await;
    let detail = backup(&base).await;
    // This server's pg_restore, as an older one meets a newer archive.
    let bin = lms_backup::testing::wrapped_pg_restore(
        base.tools(),
        "case \"$*\" in *--list*) echo 'pg_restore: error: unsupported version (1.99) in file header' >&2; exit 1;; esac\nexec \"$REAL\" \"$@\"",
    );
    let engine = base.with_tools(
        lms_backup::postgres::tools::locate(Some(&bin))
            .await
            .unwrap(),
    );
    let job = engine
        .start_drill(Some(detail.backup.id), &actor("alice"))
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let message = job.message.unwrap();
    assert!(
        message.contains("newer pg_dump") && message.contains("POSTGRES_BIN_PATH"),
        "{message}"
    );
    assert_eq!(databases(&engine).await, only_live(&engine));
}

#[tokio::test]
async fn drills_run_on_their_schedule_and_health_says_when_they_lapse() {
    let engine = spawn_engine().await;
    let now = chrono::Utc::now();
    // Nothing to drill yet: nothing starts.
    assert!(engine.drill_if_due(now).await.unwrap().is_none());
    backup(&engine).await;
    let reason = |h: lms_backup::health::BackupHealth| (h.state, h.reason);

    // Due (no drill yet): one starts; once it has run, none is due.
    let job = engine
        .drill_if_due(now)
        .await
        .unwrap()
        .expect("a drill is due");
    assert_eq!(job.started_by_name, "drill schedule");
    assert_eq!(
        wait_for_job(&engine, job.id).await.status,
        JobStatus::Succeeded
    );
    assert!(engine.drill_if_due(now).await.unwrap().is_none());

    // Health, with a schedule keeping backups fresh, follows the drills.
    engine
        .create_schedule(
            lms_backup::schedule::NewSchedule {
                name: "hourly".into(),
                cron: "@hourly".into(),
                enabled: true,
                rpo_seconds: Some(30 * 24 * 3600),
                ..Default::default()
            },
            &actor("alice"),
            now,
        )
        .await
        .unwrap();
    let (state, _) = reason(engine.backup_health(now).await.unwrap());
    assert_eq!(state, lms_types::HealthState::Green);
    // Eight days on, the weekly drill has lapsed: amber, saying so.
    let later = now + chrono::Duration::days(9);
    let (state, why) = reason(engine.backup_health(later).await.unwrap());
    assert_eq!(state, lms_types::HealthState::Amber, "{why}");
    assert!(why.starts_with("No restore drill for"), "{why}");
    // And it is due again.
    let job = engine
        .drill_if_due(later)
        .await
        .unwrap()
        .expect("due again");
    wait_for_job(&engine, job.id).await;
}

#[tokio::test]
async fn a_drill_of_a_changed_off_site_copy_fails_tells_and_touches_nothing() {
    use lms_backup::testing::{fresh_bucket, s3_request, s3_target, spawn_engine_with};
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| c.offsite = Some(s3_target(&bucket, ""))).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    listen_for_failed_drills(&engine).await;
    let detail = backup(&engine).await;
    let row = catalog::get_row(&engine.dbs().control, detail.backup.id)
        .await
        .unwrap();
    assert_eq!(row.offsite_state, Some(lms_types::OffsiteState::Verified));
    // The bucket's copy was replaced by other bytes (the file here is
    // intact: the drill reads the off-site copy all the same).
    let local = engine.config().backup_dir.join(&row.filename);
    let mut bytes = std::fs::read(&local).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let (status, _, _) = s3_request("PUT", &format!("/{bucket}/{}", row.filename), &bytes).await;
    assert_eq!(status, 200);
    let live = live_fingerprint(&engine).await;

    let job = engine.start_drill(None, &actor("alice")).await.unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert!(job.message.unwrap().contains("does not match its manifest"));
    let told: Vec<String> = sqlx::query_scalar("SELECT kind FROM notification_events")
        .fetch_all(&engine.dbs().control)
        .await
        .unwrap();
    assert_eq!(told, ["drill_failed"]);
    assert!(!engine.newest_drill().await.unwrap().unwrap().succeeded);
    assert!(live
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    assert_eq!(databases(&engine).await, only_live(&engine));
    assert_eq!(
        backup_files(&engine),
        std::slice::from_ref(&row.filename),
        "no scratch file left"
    );
}

/// The files in the backup directory (manifests are in a folder of their own).
fn backup_files(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&engine.config().backup_dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn with_an_off_site_target_a_drill_reads_the_verified_copy() {
    use lms_backup::testing::{fresh_bucket, s3_target, spawn_engine_with};
    let bucket = fresh_bucket().await;
    let engine = spawn_engine_with(|c| c.offsite = Some(s3_target(&bucket, ""))).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    let job = engine.start_drill(None, &actor("alice")).await.unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(
        job.notes
            .iter()
            .any(|n| n.starts_with("Drilled from the off-site copy")),
        "{:?}",
        job.notes
    );
    assert_eq!(
        backup_files(&engine),
        std::slice::from_ref(&detail.backup.filename)
    );
    assert_eq!(databases(&engine).await, only_live(&engine));
}
