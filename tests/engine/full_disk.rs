//! A backup directory that is (or becomes) full, that is read-only, or that
//! disappears in the middle of a backup. Mounting a small tmpfs needs root,
//! which CI has; elsewhere these tests fail with that explanation.

use std::path::{Path, PathBuf};

use lms_backup::catalog;
use lms_backup::postgres::tools as pgtools;
use lms_backup::testing::{
    actor, spawn_engine, spawn_engine_with, start_manual_backup, wait_for_job, wait_until, Gate,
};
use lms_types::{BackupStatus, JobStatus};

/// A small file system of its own (unmounted when dropped), whose free
/// space is exactly what the test leaves on it.
pub(crate) struct Tmpfs(pub(crate) PathBuf);

impl Tmpfs {
    pub(crate) fn mount(megabytes: u32) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "mounting a tmpfs needs root; run the suite as root (CI does)"
        );
        let dir = std::env::temp_dir().join(format!("full-disk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn too_little_space_is_refused_before_writing() {
    let disk = Tmpfs::mount(4);
    let engine = spawn_engine_with(|c| c.backup_dir = disk.0.join("backups")).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let who = actor("alice");
    let started = start_manual_backup(&engine, &who).await.unwrap();
    let job = wait_for_job(&engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.message
            .as_deref()
            .unwrap()
            .contains("Not enough free space"),
        "{job:?}"
    );
    assert!(files(&engine.config().backup_dir).is_empty());
    assert!(engine.lock_status().await.unwrap().is_none());
}

#[tokio::test]
async fn running_out_of_space_mid_write_leaves_nothing_behind() {
    let disk = Tmpfs::mount(40);
    let base = spawn_engine_with(|c| c.backup_dir = disk.0.join("backups")).await;
    lms_backup::demo::seed(&base.dbs().lms, 1).await.unwrap();
    let dir = base.config().backup_dir.clone();
    let who = actor("alice");
    let older = start_manual_backup(&base, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&base, older.job.id).await.status,
        JobStatus::Succeeded
    );
    let before = files(&dir);
    // pg_dump fills the disk just after the free-space check passed.
    let filler = disk.0.join("filler");
    let bin = lms_backup::testing::wrapped_pg_dump(
        base.tools(),
        &format!(
            "avail=$(df -k --output=avail '{disk}' | tail -n 1)\n\
             dd if=/dev/zero of='{filler}' bs=1k count=$((avail - 64)) 2>/dev/null\n\
             exec \"$REAL\" \"$@\"",
            disk = disk.0.display(),
            filler = filler.display()
        ),
    );
    let engine = base.with_tools(pgtools::locate(Some(&bin)).await.unwrap());

    let started = start_manual_backup(&engine, &who).await.unwrap();
    let job = wait_for_job(&engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.message.as_deref().unwrap().contains("ran out of space"),
        "{job:?}"
    );
    assert_eq!(
        files(&dir),
        before,
        "no partial file, the older backup untouched"
    );
    let completed = catalog::with_status(&engine.dbs().control, BackupStatus::Completed)
        .await
        .unwrap();
    assert_eq!(completed.len(), 1);
    assert!(engine.lock_status().await.unwrap().is_none());

    // With the space back, the next backup succeeds.
    std::fs::remove_file(&filler).unwrap();
    let started = start_manual_backup(&base, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&base, started.job.id).await.status,
        JobStatus::Succeeded
    );
}

async fn one_backup(engine: &lms_backup::Engine) -> lms_backup::jobs::Job {
    let who = actor("alice");
    let started = start_manual_backup(engine, &who).await.unwrap();
    wait_for_job(engine, started.job.id).await
}

fn mount_option(dir: &Path, option: &str) {
    let ok = std::process::Command::new("mount")
        .args(["-o", &format!("remount,{option}")])
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "remount {option}");
}

/// A read-only backup directory: the backup fails saying so, nothing is
/// written, and once it is writable again the next backup works. (Linux
/// refuses to make a file system read-only while a file on it is open for
/// writing, so the change is made before the backup starts.)
#[tokio::test]
async fn a_read_only_backup_directory_fails_the_backup_with_a_message() {
    let disk = Tmpfs::mount(40);
    let engine = spawn_engine_with(|c| c.backup_dir = disk.0.join("backups")).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    mount_option(&disk.0, "ro");
    let job = one_backup(&engine).await;
    mount_option(&disk.0, "rw");
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.message.as_deref().unwrap().contains("not writable"),
        "{job:?}"
    );
    assert!(files(&engine.config().backup_dir).is_empty());
    assert!(engine.lock_status().await.unwrap().is_none());
    assert_eq!(one_backup(&engine).await.status, JobStatus::Succeeded);
}

/// The backup directory removed while pg_dump is writing into it: the job
/// fails saying so, nothing is kept or listed, the directory is not silently
/// re-created (it may be an unmounted disk's mount point), the next backup
/// is refused up front naming it, and once it is back the next backup works.
#[tokio::test]
async fn a_backup_directory_removed_mid_write_fails_the_backup_cleanly() {
    let base = spawn_engine().await;
    lms_backup::demo::seed(&base.dbs().lms, 1).await.unwrap();
    let dir = base.config().backup_dir.clone();
    // pg_dump stops at a gate: mid-write (its file open, nothing written)
    // when the directory goes, and writing on once it has gone.
    let dump = Gate::new();
    let bin = lms_backup::testing::gated_tools(base.tools(), Some(&dump), None);
    let engine = base.with_tools(pgtools::locate(Some(&bin)).await.unwrap());
    let who = actor("alice");
    let started = start_manual_backup(&engine, &who).await.unwrap();
    wait_until("a partial file", async || {
        files(&dir)
            .iter()
            .any(|f| f.ends_with(".partial"))
            .then_some(())
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
    dump.open();
    let job = wait_for_job(&engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.message.as_deref().unwrap().contains("disappeared"),
        "{job:?}"
    );
    assert!(
        !dir.exists(),
        "not re-created behind the administrator's back"
    );
    assert!(engine.lock_status().await.unwrap().is_none());
    let row = catalog::get_row(&engine.dbs().control, started.backup.id)
        .await
        .unwrap();
    assert_eq!(row.status, BackupStatus::Failed);

    let refused = start_manual_backup(&base, &who)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&refused, lms_backup::Error::StorageUnavailable(m)
            if m.contains("does not exist") && m.contains(&dir.display().to_string())),
        "{refused:?}"
    );
    assert!(!dir.exists());

    lms_backup::storage::BackupDir::new(&dir)
        .ensure()
        .await
        .unwrap();
    assert_eq!(one_backup(&base).await.status, JobStatus::Succeeded);
}
