//! A backup directory that is not there (an unmounted disk), or not the one
//! the catalog's backups are in: nothing is created in its place, nothing
//! is marked missing, backups wait for it and say so, and it is used again
//! once it is back. Entries whose file went missing come back once the
//! same file does.

use std::path::{Path, PathBuf};

use lms_backup::testing::{actor, spawn_engine, start_manual_backup, wait_for_job, wait_until};
use lms_backup::{catalog, Engine};
use lms_types::{BackupStatus, JobStatus};

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

/// The same databases, tools and settings in a new process: what a restart
/// of the server runs before it serves.
async fn restart(engine: &Engine) -> (Engine, lms_backup::RecoveryReport) {
    let engine = Engine::new(
        engine.dbs().clone(),
        engine.tools().clone(),
        engine.config().clone(),
    )
    .await
    .expect("the engine starts whatever the backup directory's state");
    let report = engine.recover().await.expect("recovery runs");
    (engine, report)
}

async fn status_of(engine: &Engine, id: i64) -> BackupStatus {
    catalog::get_row(&engine.dbs().control, id)
        .await
        .unwrap()
        .status
}

async fn audit_rows(engine: &Engine, action: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT actor_name, target, outcome FROM audit_log WHERE action = $1 ORDER BY id",
    )
    .bind(action)
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap()
}

/// Where a directory is moved while "its disk is unmounted".
fn aside(dir: &Path) -> PathBuf {
    dir.with_extension("unmounted")
}

/// The issue: one restart while the directory was away marked every backup
/// `missing` for good, and re-created the directory (on the disk under the
/// mount point). Now the restart leaves both alone, refuses backups,
/// uploads, restores and deletes with a message naming the directory, and
/// everything works again once it is back, without another restart.
#[tokio::test]
async fn a_restart_while_the_directory_is_away_marks_nothing_and_creates_nothing() {
    let engine = spawn_engine().await;
    let dir = engine.config().backup_dir.clone();
    let first = completed_backup(&engine).await;
    let second = completed_backup(&engine).await;
    std::fs::rename(&dir, aside(&dir)).unwrap();

    let (engine, report) = restart(&engine).await;
    assert!(!dir.exists(), "the directory is not created in its place");
    assert!(report.marked_missing.is_empty(), "{report:?}");
    let told = report.backup_dir_unavailable.clone().unwrap_or_default();
    assert!(told.contains(&dir.display().to_string()), "{report:?}");
    for backup in [&first, &second] {
        assert_eq!(status_of(&engine, backup.id).await, BackupStatus::Completed);
    }
    assert!(audit_rows(&engine, "backup.missing").await.is_empty());

    // Everything that needs the directory is refused up front, saying which
    // directory and what to do, and starts nothing.
    let who = actor("alice");
    let jobs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    let refusals = [
        start_manual_backup(&engine, &who)
            .await
            .map(|_| ())
            .unwrap_err(),
        engine
            .import_upload(&b"PGDMP"[..], Some(5), None, &who)
            .await
            .map(|_| ())
            .unwrap_err(),
        engine
            .start_restore(first.id, true, &who)
            .await
            .map(|_| ())
            .unwrap_err(),
        engine
            .delete_backup(first.id, &who)
            .await
            .map(|_| ())
            .unwrap_err(),
    ];
    for refused in refusals {
        assert!(
            matches!(&refused, lms_backup::Error::StorageUnavailable(_)),
            "{refused:?}"
        );
        let message = refused.to_string();
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains("mount it"), "{message}");
    }
    let jobs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    assert_eq!(jobs_after, jobs_before, "no job was started");
    assert!(!dir.exists());
    let status = engine.operation_status().await.unwrap();
    assert!(status.backup_dir.is_some(), "{status:?}");
    assert_eq!(status.missing_backups, 0);

    // The disk is mounted again: no restart needed.
    std::fs::rename(aside(&dir), &dir).unwrap();
    let status = engine.operation_status().await.unwrap();
    assert!(status.backup_dir.is_none(), "{status:?}");
    completed_backup(&engine).await;
    for backup in [&first, &second] {
        assert_eq!(status_of(&engine, backup.id).await, BackupStatus::Completed);
    }
}

/// An empty directory where the backups were (the mount point of a disk
/// that is not mounted) is not taken for the backup directory while the
/// catalog lists backups; a new, empty directory on a new installation is.
#[tokio::test]
async fn an_empty_mount_point_is_not_taken_for_the_backup_directory() {
    let engine = spawn_engine().await;
    let dir = engine.config().backup_dir.clone();
    let kept = completed_backup(&engine).await;
    std::fs::rename(&dir, aside(&dir)).unwrap();
    std::fs::create_dir(&dir).unwrap();

    let (engine, report) = restart(&engine).await;
    assert!(report.marked_missing.is_empty(), "{report:?}");
    assert_eq!(status_of(&engine, kept.id).await, BackupStatus::Completed);
    let refused = start_manual_backup(&engine, &actor("alice"))
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(refused.contains("holds none of the 1 backup"), "{refused}");
    assert!(refused.contains("mount point"), "{refused}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written into the mount point"
    );
    std::fs::remove_dir(&dir).unwrap();
    std::fs::rename(aside(&dir), &dir).unwrap();
    completed_backup(&engine).await;

    // A new installation: an empty directory and an empty catalog.
    let fresh = spawn_engine().await;
    let new_dir = fresh.config().backup_dir.clone();
    std::fs::remove_dir_all(&new_dir).unwrap();
    std::fs::create_dir(&new_dir).unwrap();
    completed_backup(&fresh).await;
    assert!(new_dir.join(lms_backup::storage::MANIFEST_DIR).is_dir());
}

/// A backup whose file went missing comes back, audited, once the same file
/// (size and SHA-256) is back: at the next start-up, and when asked. A file
/// of the same name with other content does not bring it back.
#[tokio::test]
async fn a_missing_backup_comes_back_when_its_file_returns_intact() {
    let engine = spawn_engine().await;
    let dir = engine.config().backup_dir.clone();
    let returning = completed_backup(&engine).await;
    let replaced = completed_backup(&engine).await;
    let elsewhere = lms_backup::testing::scratch_dir("set-aside");
    for backup in [&returning, &replaced] {
        std::fs::rename(dir.join(&backup.filename), elsewhere.join(&backup.filename)).unwrap();
    }
    let (engine, report) = restart(&engine).await;
    let mut marked = report.marked_missing.clone();
    marked.sort();
    let mut expected = vec![returning.filename.clone(), replaced.filename.clone()];
    expected.sort();
    assert_eq!(marked, expected, "{report:?}");
    assert_eq!(
        audit_rows(&engine, "backup.missing").await.len(),
        2,
        "each change audited"
    );

    // One file comes back as it was; the other's name comes back with
    // something else in it.
    std::fs::rename(
        elsewhere.join(&returning.filename),
        dir.join(&returning.filename),
    )
    .unwrap();
    std::fs::write(dir.join(&replaced.filename), b"not the archive").unwrap();
    let (engine, report) = restart(&engine).await;
    assert_eq!(
        report.found_again,
        std::slice::from_ref(&returning.filename),
        "{report:?}"
    );
    assert_eq!(
        status_of(&engine, returning.id).await,
        BackupStatus::Completed
    );
    assert_eq!(status_of(&engine, replaced.id).await, BackupStatus::Missing);
    assert_eq!(
        audit_rows(&engine, "backup.found").await,
        [(
            "recovery".to_owned(),
            returning.filename.clone(),
            "success".to_owned()
        )]
    );
    // It is a backup like any other again: downloadable, checked.
    engine.open_download(returning.id).await.unwrap();

    // Asked for, by an administrator: the real file back.
    std::fs::rename(
        elsewhere.join(&replaced.filename),
        dir.join(&replaced.filename),
    )
    .unwrap();
    let check = engine.check_backup_files(&actor("alice")).await.unwrap();
    assert_eq!(
        check.found,
        std::slice::from_ref(&replaced.filename),
        "{check:?}"
    );
    assert!(check.newly_missing.is_empty() && check.changed.is_empty());
    assert_eq!(
        status_of(&engine, replaced.id).await,
        BackupStatus::Completed
    );
    assert_eq!(
        audit_rows(&engine, "backup.found").await.last().unwrap().0,
        "alice"
    );
    assert_eq!(engine.operation_status().await.unwrap().missing_backups, 0);
}

/// While the directory is away, a check of the files is refused rather than
/// taking every file for missing; when it comes back with a missing
/// backup's file in it, that backup comes back by itself.
#[tokio::test]
async fn files_are_checked_again_when_the_directory_comes_back() {
    let engine = spawn_engine().await;
    let dir = engine.config().backup_dir.clone();
    let lost = completed_backup(&engine).await;
    let kept = completed_backup(&engine).await;
    let elsewhere = lms_backup::testing::scratch_dir("set-aside");
    std::fs::rename(dir.join(&lost.filename), elsewhere.join(&lost.filename)).unwrap();
    let check = engine.check_backup_files(&actor("alice")).await.unwrap();
    assert_eq!(check.newly_missing, std::slice::from_ref(&lost.filename));

    std::fs::rename(&dir, aside(&dir)).unwrap();
    let refused = engine.check_backup_files(&actor("alice")).await;
    assert!(
        matches!(refused, Err(lms_backup::Error::StorageUnavailable(_))),
        "{refused:?}"
    );
    assert!(engine
        .operation_status()
        .await
        .unwrap()
        .backup_dir
        .is_some());
    assert_eq!(status_of(&engine, kept.id).await, BackupStatus::Completed);

    // Back, with the lost file returned while it was away.
    std::fs::rename(aside(&dir), &dir).unwrap();
    std::fs::rename(elsewhere.join(&lost.filename), dir.join(&lost.filename)).unwrap();
    assert!(engine
        .operation_status()
        .await
        .unwrap()
        .backup_dir
        .is_none());
    wait_until("the lost backup to come back", async || {
        (status_of(&engine, lost.id).await == BackupStatus::Completed).then_some(())
    })
    .await;
    assert_eq!(
        audit_rows(&engine, "backup.found").await,
        [(
            "system".to_owned(),
            lost.filename.clone(),
            "success".to_owned()
        )]
    );
}
