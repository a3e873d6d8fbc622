//! Uploads run without the operation lock, so they are bounded on their
//! own: a number at once, and room on the backup disk claimed for what each
//! may still write, shared with a running backup. A refused upload writes
//! nothing and never touches another upload's file.

use std::path::Path;

use lms_backup::testing::{
    actor, spawn_engine_with, start_manual_backup, wait_for_job, wait_until,
};
use lms_backup::{catalog, Engine, Error};
use lms_types::JobStatus;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

use super::full_disk::Tmpfs;

/// Files in a directory, sorted (archives and partial files).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn partials(dir: &Path) -> usize {
    files(dir)
        .iter()
        .filter(|f| f.ends_with(".partial"))
        .count()
}

/// The bytes of `n` different archives this server made and no longer
/// lists (a copy of a listed backup would be refused as such): a row
/// apart, each backed up, read, and deleted from the catalog.
async fn archives_made_here(engine: &Engine, n: usize) -> Vec<Vec<u8>> {
    let mut archives = Vec::new();
    for i in 0..n {
        sqlx::query("INSERT INTO courses (code, title) VALUES ($1, 'a distinct archive')")
            .bind(format!("ROOM-{i}-{}", uuid::Uuid::new_v4().simple()))
            .execute(&engine.dbs().lms)
            .await
            .unwrap();
        let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
        assert_eq!(
            wait_for_job(engine, started.job.id).await.status,
            JobStatus::Succeeded
        );
        let path = engine.config().backup_dir.join(&started.backup.filename);
        archives.push(std::fs::read(path).unwrap());
        engine
            .delete_backup(started.backup.id, &actor("alice"))
            .await
            .unwrap();
    }
    archives
}

/// An upload that has announced its size, been admitted and sent half the
/// archive, and waits for the test to send the rest.
struct HeldUpload {
    sender: DuplexStream,
    rest: Vec<u8>,
    task: JoinHandle<lms_backup::Result<catalog::Backup>>,
}

impl HeldUpload {
    async fn start(engine: &Engine, announced: u64, archive: &[u8]) -> Self {
        let dir = engine.config().backup_dir.clone();
        let before = partials(&dir);
        let (mut sender, body) = tokio::io::duplex(64 * 1024);
        let uploading = engine.clone();
        let task = tokio::spawn(async move {
            uploading
                .import_upload(body, Some(announced), None, &actor("alice"))
                .await
        });
        let half = archive.len() / 2;
        sender.write_all(&archive[..half]).await.unwrap();
        wait_until("the upload to be under way", async || {
            (partials(&dir) > before).then_some(())
        })
        .await;
        Self {
            sender,
            rest: archive[half..].to_vec(),
            task,
        }
    }

    async fn finish(mut self) -> catalog::Backup {
        self.sender.write_all(&self.rest).await.unwrap();
        drop(self.sender);
        self.task.await.unwrap().expect("the held upload succeeds")
    }
}

/// The issue: two large uploads racing a backup could fill the disk. Each
/// now claims room for the size it announced (the largest accepted when it
/// announces none), and the next upload or backup is measured against the
/// free space less those claims.
#[tokio::test]
async fn uploads_and_a_backup_share_the_room_on_the_disk() {
    let disk = Tmpfs::mount(64);
    let engine = spawn_engine_with(|c| {
        c.backup_dir = disk.0.join("backups");
        c.min_free_space = 4 << 20;
        c.max_concurrent_uploads = 4;
    })
    .await;
    let dir = engine.config().backup_dir.clone();
    let [archive, second, hog_archive]: [Vec<u8>; 3] =
        archives_made_here(&engine, 3).await.try_into().unwrap();
    let who = actor("alice");

    // 40 MiB announced and under way: 30 MiB more would leave less than
    // MIN_FREE_SPACE on a 64 MiB disk.
    let first = HeldUpload::start(&engine, 40 << 20, &archive).await;
    let during = files(&dir);
    let refused = engine
        .import_upload(
            std::io::Cursor::new(second.clone()),
            Some(30 << 20),
            None,
            &who,
        )
        .await
        .map(|_| ())
        .unwrap_err();
    let Error::InsufficientStorage(message) = &refused else {
        panic!("{refused:?}")
    };
    for words in [
        "30.0 MB",
        "promised to 1 upload",
        "4.0 MB must stay free",
        "MIN_FREE_SPACE",
    ] {
        assert!(message.contains(words), "{words:?} in {message}");
    }
    // Announcing nothing counts as MAX_BACKUP_SIZE (1 GiB): refused too.
    let refused = engine
        .import_upload(std::io::Cursor::new(second.clone()), None, None, &who)
        .await;
    assert!(
        matches!(refused, Err(Error::InsufficientStorage(_))),
        "{refused:?}"
    );
    assert_eq!(
        files(&dir),
        during,
        "nothing written, the other upload's file untouched"
    );
    let refusals: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'backup.upload' AND outcome = 'failure'",
    )
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(refusals, 2, "refusals are audited");

    // Once the first is in, its claim is gone: the second fits.
    first.finish().await;
    engine
        .import_upload(
            std::io::Cursor::new(second.clone()),
            Some(30 << 20),
            None,
            &who,
        )
        .await
        .unwrap();

    // An upload claiming all the room but MIN_FREE_SPACE: the backup (up to
    // the database's size, over 4 MiB) no longer fits beside it and fails
    // before writing.
    let free = engine.backup_dir().free_space().await.unwrap();
    let almost_all = free - (4 << 20) - (64 << 10);
    let hog = HeldUpload::start(&engine, almost_all, &hog_archive).await;
    let before_backup = files(&dir);
    let started = start_manual_backup(&engine, &who).await.unwrap();
    let job = wait_for_job(&engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let message = job.message.unwrap_or_default();
    assert!(
        message.contains("Not enough free space") && message.contains("promised to 1 upload"),
        "{message}"
    );
    assert_eq!(files(&dir), before_backup);
    hog.finish().await;
    assert_eq!(
        wait_for_job(
            &engine,
            start_manual_backup(&engine, &who).await.unwrap().job.id
        )
        .await
        .status,
        JobStatus::Succeeded
    );
    assert_eq!(partials(&dir), 0);
}

/// No more than `MAX_CONCURRENT_UPLOADS` at once: one more is refused
/// before it writes anything, and is admitted once one has finished.
#[tokio::test]
async fn uploads_past_the_limit_wait_their_turn() {
    let engine = spawn_engine_with(|c| c.max_concurrent_uploads = 2).await;
    let dir = engine.config().backup_dir.clone();
    let archives = archives_made_here(&engine, 3).await;
    let who = actor("alice");
    let len = |i: usize| archives[i].len() as u64;

    let first = HeldUpload::start(&engine, len(0), &archives[0]).await;
    let second = HeldUpload::start(&engine, len(1), &archives[1]).await;
    let during = files(&dir);
    let refused = engine
        .import_upload(
            std::io::Cursor::new(archives[2].clone()),
            Some(len(2)),
            None,
            &who,
        )
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&refused, Error::Conflict(m) if m.contains("2 uploads are already being received")
            && m.contains("MAX_CONCURRENT_UPLOADS")),
        "{refused:?}"
    );
    assert_eq!(
        files(&dir),
        during,
        "the two running uploads' files untouched"
    );

    let first = first.finish().await;
    let third = engine
        .import_upload(
            std::io::Cursor::new(archives[2].clone()),
            Some(len(2)),
            None,
            &who,
        )
        .await
        .unwrap();
    let second = second.finish().await;
    for (backup, archive) in [first, second, third].iter().zip(&archives) {
        assert_eq!(
            &std::fs::read(dir.join(&backup.filename)).unwrap(),
            archive,
            "{} is intact",
            backup.filename
        );
    }
    assert_eq!(partials(&dir), 0);
}
