//! Retention on real backups: pins, the pass that meets missing and
//! undeletable files and goes on, its dry run, its audit, and its refusal
//! while a restore holds the lock. (Which backups a policy keeps is held
//! against a reference model by the property test in `src/retention`.)

use chrono::Utc;
use lms_backup::postgres::tools as pgtools;
use lms_backup::retention::{Policy, Proposal, Removal};
use lms_backup::schedule::NewSchedule;
use lms_backup::testing::{actor, spawn_engine_with, start_manual_backup, wait_for_job, Gate};
use lms_backup::{catalog, Engine, Error};
use lms_types::{BackupStatus, JobStatus};

async fn backup(engine: &Engine) -> catalog::Backup {
    let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
    let job = wait_for_job(engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    catalog::get_row(&engine.dbs().control, started.backup.id)
        .await
        .unwrap()
}

async fn ids_with(engine: &Engine, status: BackupStatus) -> Vec<i64> {
    let mut ids: Vec<i64> = catalog::with_status(&engine.dbs().control, status)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    ids.sort();
    ids
}

/// The audit log's retention entries: (target, outcome, detail).
async fn cleanups(engine: &Engine) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT coalesce(target, ''), outcome, coalesce(detail, '') FROM audit_log
         WHERE action = 'backup.cleanup' ORDER BY id",
    )
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap()
}

/// A disabled schedule keeping the newest `keep_last`, which `backups`
/// are made to belong to (as if it had made them).
async fn adopt(engine: &Engine, keep_last: u32, backups: &[&catalog::Backup]) {
    let schedule = engine
        .create_schedule(
            NewSchedule {
                name: "nightly".into(),
                cron: "@daily".into(),
                timezone: Some("Europe/Berlin".into()),
                enabled: false,
                policy: Policy::last(keep_last),
                ..Default::default()
            },
            &actor("alice"),
            Utc::now(),
        )
        .await
        .unwrap();
    for b in backups {
        sqlx::query("UPDATE backup_history SET schedule_id = $2 WHERE id = $1")
            .bind(b.id)
            .bind(schedule.id)
            .execute(&engine.dbs().control)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_pinned_backup_outlives_retention_and_is_deleted_only_once_unpinned() {
    let engine = spawn_engine_with(|c| c.max_backups_to_keep = 1).await;
    let who = actor("alice");
    let first = backup(&engine).await;

    // A reason is required, and only a verified backup can be pinned.
    assert!(matches!(
        engine.pin_backup(first.id, "  ", &who).await,
        Err(Error::Invalid(m)) if m.starts_with("reason")
    ));
    let pinned = engine
        .pin_backup(first.id, "before the term upgrade", &who)
        .await
        .unwrap();
    assert_eq!(
        pinned.pinned_reason.as_deref(),
        Some("before the term upgrade")
    );
    assert_eq!(pinned.pinned_by_name.as_deref(), Some("alice"));

    // Two more backups with a keep of one: the middle one goes, the pinned
    // one stays (and does not count as the one kept).
    let second = backup(&engine).await;
    let third = backup(&engine).await;
    assert_eq!(
        ids_with(&engine, BackupStatus::Completed).await,
        [first.id, third.id]
    );
    assert!(engine
        .backup_dir()
        .archive_exists(&first.filename)
        .await
        .unwrap());
    let audit = cleanups(&engine).await;
    assert!(
        audit
            .iter()
            .any(|(target, outcome, detail)| *target == second.filename
                && outcome == "success"
                && detail.contains("manual and uploaded backups: beyond the last 1")),
        "{audit:?}"
    );

    // A pinned backup is not deleted by hand either, until unpinned.
    assert!(matches!(
        engine.delete_backup(first.id, &who).await,
        Err(Error::Conflict(m)) if m.contains("pinned")
    ));
    engine.unpin_backup(first.id, &who).await.unwrap();
    let report = engine.prune(&who).await.unwrap();
    assert_eq!(
        report.deleted().map(|l| l.id).collect::<Vec<_>>(),
        [first.id]
    );
    assert_eq!(ids_with(&engine, BackupStatus::Completed).await, [third.id]);

    let pins: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, outcome FROM audit_log WHERE action IN ('backup.pin', 'backup.unpin')
         ORDER BY id",
    )
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap();
    let pins: Vec<(&str, &str)> = pins.iter().map(|(a, o)| (a.as_str(), o.as_str())).collect();
    assert_eq!(
        pins,
        [
            ("backup.pin", "failure"),
            ("backup.pin", "success"),
            ("backup.unpin", "success")
        ]
    );
}

#[tokio::test]
async fn a_missing_or_undeletable_file_is_reported_and_the_pass_goes_on() {
    let engine = spawn_engine_with(|c| c.max_backups_to_keep = 10).await;
    let b: Vec<catalog::Backup> = {
        let mut b = Vec::new();
        for _ in 0..4 {
            b.push(backup(&engine).await);
        }
        b
    };
    adopt(&engine, 1, &b.iter().collect::<Vec<_>>()).await;
    let dir = engine.config().backup_dir.clone();
    // b[2]'s file is gone; b[0] cannot be deleted whole (a directory
    // stands where its manifest was).
    std::fs::remove_file(dir.join(&b[2].filename)).unwrap();
    let manifest = lms_backup::storage::manifest_path(&dir, &b[0].filename).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    std::fs::create_dir(&manifest).unwrap();
    std::fs::write(manifest.join("inside"), b"x").unwrap();

    // The dry run says so and changes nothing.
    let dry = engine.retention_dry_run(None).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.missing, [b[2].filename.clone()]);
    let mut would: Vec<i64> = dry.let_go.iter().map(|l| l.id).collect();
    would.sort();
    assert_eq!(would, [b[0].id, b[1].id]);
    assert_eq!(ids_with(&engine, BackupStatus::Completed).await.len(), 4);
    assert!(dir.join(&b[1].filename).exists());

    let report = engine.prune(&actor("alice")).await.unwrap();
    assert_eq!(report.missing, [b[2].filename.clone()]);
    let outcome = |id: i64| {
        report
            .let_go
            .iter()
            .find(|l| l.id == id)
            .and_then(|l| l.removal.clone())
    };
    assert_eq!(outcome(b[1].id), Some(Removal::Deleted));
    assert!(matches!(outcome(b[0].id), Some(Removal::Failed(_))));
    assert_eq!(report.let_go.len(), 2, "{report:?}");

    // The missing one is marked and not counted; the newest is kept; the
    // entry that could not be deleted whole stays, to be tried again.
    assert_eq!(ids_with(&engine, BackupStatus::Missing).await, [b[2].id]);
    assert_eq!(
        ids_with(&engine, BackupStatus::Completed).await,
        [b[0].id, b[3].id]
    );
    assert!(!dir.join(&b[1].filename).exists());
    assert!(engine
        .backup_dir()
        .read_manifest(&b[1].filename)
        .await
        .is_none());

    let audit = cleanups(&engine).await;
    let of = |name: &str| audit.iter().find(|(t, _, _)| t == name).cloned();
    let (_, outcome, detail) = of(&b[1].filename).expect("b1's deletion audited");
    assert_eq!(outcome, "success");
    assert!(
        detail.contains("schedule \"nightly\": beyond the last 1"),
        "{detail}"
    );
    let (_, outcome, detail) = of(&b[0].filename).expect("b0's failure audited");
    assert_eq!(outcome, "failure");
    assert!(detail.contains("not deleted"), "{detail}");
    assert!(
        audit
            .iter()
            .any(|(t, o, _)| t == "retention pass" && o == "success"),
        "the pass as a whole is audited: {audit:?}"
    );
}

#[tokio::test]
async fn a_proposed_policy_is_tried_on_the_real_catalog_without_changing_it() {
    let engine = spawn_engine_with(|c| c.max_backups_to_keep = 10).await;
    let mut b = Vec::new();
    for _ in 0..3 {
        b.push(backup(&engine).await);
    }
    adopt(&engine, 3, &b.iter().collect::<Vec<_>>()).await;
    assert!(engine
        .retention_dry_run(None)
        .await
        .unwrap()
        .let_go
        .is_empty());
    let tighter = engine
        .retention_dry_run(Some(Proposal {
            schedule: Some("nightly".into()),
            policy: Policy::last(1),
            timezone: None,
        }))
        .await
        .unwrap();
    let mut would: Vec<i64> = tighter.let_go.iter().map(|l| l.id).collect();
    would.sort();
    assert_eq!(would, [b[0].id, b[1].id]);
    assert!(tighter.let_go.iter().all(|l| l.removal.is_none()));
    assert!(matches!(
        engine
            .retention_dry_run(Some(Proposal {
                schedule: Some("nightly".into()),
                policy: Policy {
                    keep_last: 0,
                    ..Policy::default()
                },
                timezone: None,
            }))
            .await,
        Err(Error::Invalid(m)) if m.starts_with("keep-last")
    ));
    assert!(matches!(
        engine
            .retention_dry_run(Some(Proposal {
                schedule: Some("nightly".into()),
                policy: Policy::default(),
                timezone: Some("Mars/Olympus".into()),
            }))
            .await,
        Err(Error::Invalid(_))
    ));
    assert_eq!(ids_with(&engine, BackupStatus::Completed).await.len(), 3);
}

#[tokio::test]
async fn retention_waits_for_no_restore_it_is_refused_while_one_runs() {
    let base = spawn_engine_with(|c| c.max_backups_to_keep = 1).await;
    let first = backup(&base).await;
    let restore = Gate::new();
    let bin = lms_backup::testing::gated_tools(base.tools(), None, Some(&restore));
    let engine = base.with_tools(pgtools::locate(Some(&bin)).await.unwrap());
    let who = actor("alice");
    let job = engine.start_restore(first.id, true, &who).await.unwrap();
    restore.reached().await;

    assert!(matches!(engine.prune(&who).await, Err(Error::Busy(_))));
    // Nothing was deleted, and the refusal is on record.
    assert_eq!(ids_with(&engine, BackupStatus::Completed).await, [first.id]);
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log
         WHERE action = 'backup.cleanup' AND target = 'retention pass' AND outcome = 'failure'",
    )
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(refused, 1);

    restore.open();
    assert_eq!(
        wait_for_job(&engine, job.id).await.status,
        JobStatus::Succeeded
    );
    let after = engine.prune(&who).await.unwrap();
    assert!(after.let_go.is_empty(), "{after:?}");
}
