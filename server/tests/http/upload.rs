//! Uploading archives made elsewhere.

use lms_backup::users::Role;
use lms_types::{BackupKind, BackupStatus, JobStatus};

use crate::client::ApiClient;
use crate::support::{spawn_app, spawn_app_with, TestApp};

/// Files in the backup directory (archives, partials), sorted.
fn files(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&app.engine.config().backup_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An archive this server made: a backup, downloaded.
async fn archive_made_here(client: &ApiClient) -> Vec<u8> {
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    client.download(started.backup.id).await.unwrap().bytes
}

/// An archive this server made and no longer lists (kept elsewhere, then
/// deleted here): a backup, downloaded, then deleted.
async fn archive_kept_elsewhere(client: &ApiClient) -> Vec<u8> {
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    let bytes = client.download(started.backup.id).await.unwrap().bytes;
    client.delete_backup(started.backup.id).await.unwrap();
    bytes
}

/// A byte-identical copy of a listed backup used to become a second entry
/// (and the newest "last backup"); it is refused, naming the backup it is.
#[tokio::test]
async fn a_copy_of_a_listed_backup_is_refused_naming_it() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    let archive = client.download(started.backup.id).await.unwrap().bytes;

    let refused = client.upload(archive).await.unwrap_err();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        refused.message.contains(&started.backup.filename),
        "{refused:?}"
    );
    let listed = client.list_backups().await.unwrap();
    assert_eq!(listed.total, 1, "nothing was added");
    assert!(
        !files(&app).iter().any(|f| f.starts_with("upload_")),
        "{:?}",
        files(&app)
    );
}

#[tokio::test]
async fn a_valid_archive_is_accepted_and_restorable() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let archive = archive_kept_elsewhere(&client).await;

    let uploaded = client.upload(archive.clone()).await.unwrap();
    assert_eq!(uploaded.kind, BackupKind::Uploaded);
    assert_eq!(uploaded.status, BackupStatus::Completed);
    use sha2::Digest;
    assert_eq!(
        uploaded.sha256,
        Some(hex::encode(sha2::Sha256::digest(&archive)))
    );
    assert!(uploaded.filename.starts_with("upload_"));
    let detail = client.backup(uploaded.id).await.unwrap();
    assert_eq!(
        detail.manifest.unwrap().tables,
        None,
        "no fingerprint before its first restore"
    );

    sqlx::query("DELETE FROM courses WHERE id > 3")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    let job = client.restore(uploaded.id).await.unwrap();
    let finished = lms_backup::testing::wait_for_job(&app.engine, job.id.parse().unwrap()).await;
    assert_eq!(finished.status, JobStatus::Succeeded, "{finished:?}");
    let courses: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&app.dbs.lms)
        .await
        .unwrap();
    assert_eq!(courses, 20);
    let detail = lms_backup::catalog::get(&app.dbs.control, uploaded.id)
        .await
        .unwrap();
    assert!(
        detail.manifest.unwrap().tables.is_some(),
        "fingerprint recorded at the first restore"
    );
}

/// Uploads arriving in the same second used to be given the same name:
/// one failed creating its file, then removed the other's, and both
/// answered 500. Each now reserves its name on disk before writing.
#[tokio::test]
async fn uploads_in_the_same_second_each_get_their_own_file() {
    const UPLOADS: usize = 5;
    let app = spawn_app_with(|c| c.max_concurrent_uploads = UPLOADS).await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;

    // Distinct archives (a copy of one already uploaded would be refused).
    let mut archives = Vec::new();
    for i in 0..UPLOADS {
        sqlx::query("INSERT INTO courses (code, title) VALUES ($1, 'distinct archive')")
            .bind(format!("SAME-SECOND-{i}"))
            .execute(&app.dbs.lms)
            .await
            .unwrap();
        archives.push(archive_kept_elsewhere(&client).await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(UPLOADS));
    let uploads = archives.iter().map(|archive| {
        let (client, archive, barrier) = (client.clone(), archive.clone(), barrier.clone());
        async move {
            barrier.wait().await;
            client.upload(archive).await
        }
    });
    let uploaded: Vec<_> = futures::future::join_all(uploads)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("an upload failed: {e:?}"));

    let mut names: Vec<&str> = uploaded.iter().map(|b| b.filename.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), UPLOADS, "distinct names: {names:?}");
    for (backup, archive) in uploaded.iter().zip(&archives) {
        let on_disk = std::fs::read(app.engine.config().backup_dir.join(&backup.filename)).unwrap();
        assert!(on_disk == *archive, "{} is intact", backup.filename);
    }
    assert!(
        !files(&app).iter().any(|f| f.ends_with(".partial")),
        "{:?}",
        files(&app)
    );
}

/// `data` compressed by the gzip program.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .args(["-c", "-9"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A one-entry zip file holding the deflate stream (and CRC and size) of a
/// gzip file, without inflating anything.
fn zip_of_deflated(name: &str, gzipped: &[u8]) -> Vec<u8> {
    let deflated = &gzipped[10..gzipped.len() - 8];
    let trailer = &gzipped[gzipped.len() - 8..];
    let (crc, size) = (&trailer[..4], &trailer[4..]);
    let u16le = |v: usize| (v as u16).to_le_bytes();
    let u32le = |v: usize| (v as u32).to_le_bytes();
    let mut local = Vec::new();
    local.extend(b"PK\x03\x04");
    local.extend(u16le(20)); // version needed
    local.extend(u16le(0)); // flags
    local.extend(u16le(8)); // deflate
    local.extend([0, 0, 0, 0]); // time, date
    local.extend(crc);
    local.extend(u32le(deflated.len()));
    local.extend(size);
    local.extend(u16le(name.len()));
    local.extend(u16le(0));
    local.extend(name.as_bytes());
    local.extend(deflated);
    let mut central = Vec::new();
    central.extend(b"PK\x01\x02");
    central.extend(u16le(20));
    central.extend(u16le(20));
    central.extend(u16le(0));
    central.extend(u16le(8));
    central.extend([0, 0, 0, 0]);
    central.extend(crc);
    central.extend(u32le(deflated.len()));
    central.extend(size);
    central.extend(u16le(name.len()));
    central.extend([0; 12]); // extra, comment, disk, internal attributes
    central.extend(u32le(0)); // external attributes
    central.extend(u32le(0)); // offset of the local header
    central.extend(name.as_bytes());
    let mut zip = local.clone();
    zip.extend(&central);
    zip.extend(b"PK\x05\x06");
    zip.extend([0; 4]);
    zip.extend(u16le(1));
    zip.extend(u16le(1));
    zip.extend(u32le(central.len()));
    zip.extend(u32le(local.len()));
    zip.extend(u16le(0));
    zip
}

#[tokio::test]
async fn anything_but_a_whole_archive_gets_422_and_leaves_nothing() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let archive = archive_made_here(&client).await;
    let before = files(&app);
    let mut newer = archive.clone();
    newer[6] = 99; // archive format 1.99: from a PostgreSQL far newer than ours
                   // 64 MiB of zeros in 64 KiB: never inflated, so never a bomb here.
    let zeros = gzip(&vec![0u8; 64 << 20]);
    assert!(zeros.len() < 128 * 1024);

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        ("plain SQL", b"--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\nCREATE TABLE x (id int);\n".to_vec(), "plain SQL"),
        ("text", b"hello, this is not a database\n".to_vec(), "text file"),
        ("gzip", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3], "gzip"),
        ("random", (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(), "not a PostgreSQL archive"),
        ("truncated", archive[..archive.len() / 2].to_vec(), "incomplete"),
        ("newer", newer, "format 1.99.0"),
        ("gzip of a valid archive", gzip(&archive), "decompress it first"),
        ("gzip bomb", zeros.clone(), "gzip"),
        ("zip bomb", zip_of_deflated("lms.dump", &zeros), "zip file"),
    ];
    for (label, body, expected) in cases {
        let refused = client.upload(body).await.unwrap_err();
        assert_eq!(refused.status, 422, "{label}");
        let message = refused.message;
        assert!(message.contains(expected), "{label}: {message}");
        assert_eq!(files(&app), before, "{label}: nothing left behind");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM backup_history")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn oversized_uploads_get_413_declared_or_not() {
    let app = spawn_app_with(|c| c.max_backup_size = 64 * 1024).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let refused = client.upload(vec![b'P'; 200 * 1024]).await.unwrap_err();
    assert_eq!(refused.status, 413);
    assert!(files(&app).is_empty());

    // No declared length: the stream is cut off at the cap.
    let who = lms_backup::testing::actor("alice");
    let big = vec![0u8; 3 * 1024 * 1024];
    let refused = app
        .engine
        .import_upload(std::io::Cursor::new(big.clone()), None, None, &who)
        .await;
    assert!(
        matches!(refused, Err(lms_backup::Error::TooLarge(_))),
        "{refused:?}"
    );
    assert!(files(&app).is_empty(), "{:?}", files(&app));
}

/// Failed uploads in the audit log.
async fn failed_uploads(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'backup.upload' AND outcome = 'failure'",
    )
    .fetch_one(&app.dbs.control)
    .await
    .unwrap()
}

/// A body that starts like an archive and then stops sending, and one that
/// trickles a few bytes forever: both are cut off with 408, nothing is left
/// on disk, and the attempt is audited.
#[tokio::test]
async fn stalled_and_endless_uploads_get_408_and_leave_nothing() {
    use futures::StreamExt;
    let app = spawn_app_with(|c| {
        c.upload_idle_timeout = std::time::Duration::from_secs(1);
        c.upload_timeout = std::time::Duration::from_secs(3);
    })
    .await;
    let client = app.signed_in("alice", Role::Admin).await;

    let stalled = futures::stream::iter([Ok(b"PGDMP\x01\x0e\x00".to_vec())])
        .chain(futures::stream::pending());
    let started = std::time::Instant::now();
    let refused = client.upload_stream(stalled).await.unwrap_err();
    assert_eq!(refused.status, 408);
    assert!(
        refused.message.contains("Nothing arrived for 1 s"),
        "{refused:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(files(&app).is_empty(), "{:?}", files(&app));

    // 16 bytes every 100 ms is never idle for a second, and never ends.
    let trickle = futures::stream::unfold((), |()| async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Some((Ok(vec![0u8; 16]), ()))
    });
    let refused = client.upload_stream(trickle).await.unwrap_err();
    assert_eq!(refused.status, 408);
    assert!(
        refused.message.contains("still arriving after 3 s"),
        "{refused:?}"
    );
    assert!(files(&app).is_empty(), "{:?}", files(&app));
    assert_eq!(failed_uploads(&app).await, 2);
    assert_eq!(
        client
            .upload(b"still answering".to_vec())
            .await
            .unwrap_err()
            .status,
        422,
        "the server goes on serving"
    );
}

/// Chunked (no declared length) and endless: cut off at the cap with 413.
#[tokio::test]
async fn an_endless_chunked_upload_is_cut_off_at_the_cap() {
    let app = spawn_app_with(|c| c.max_backup_size = 256 * 1024).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let endless = futures::stream::repeat_with(|| Ok(vec![b'x'; 16 * 1024]));
    let refused = client.upload_stream(endless).await.unwrap_err();
    assert_eq!(refused.status, 413);
    assert!(files(&app).is_empty(), "{:?}", files(&app));
    assert_eq!(failed_uploads(&app).await, 1);
}

/// No room on the backup disk for an upload (free space, less what running
/// writers claimed, would fall below `MIN_FREE_SPACE`): 507 with the sizes
/// in words, nothing written, and the refusal audited.
#[tokio::test]
async fn an_upload_without_room_on_the_disk_gets_507_and_writes_nothing() {
    let app = spawn_app_with(|c| c.min_free_space = 1 << 60).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let archive = archive_made_here(&client).await;
    let before = files(&app);
    let refused = client.upload(archive).await.unwrap_err();
    assert_eq!(refused.status, 507, "{refused:?}");
    assert_eq!(refused.code, "insufficient_storage");
    for words in [
        "Not enough room on the backup disk",
        "free",
        "MIN_FREE_SPACE",
    ] {
        assert!(refused.message.contains(words), "{words:?} in {refused:?}");
    }
    assert_eq!(files(&app), before);
    assert_eq!(failed_uploads(&app).await, 1);
}

/// One upload more than `MAX_CONCURRENT_UPLOADS` while they run: 409 saying
/// so, without touching the running one's file; admitted once it has gone.
#[tokio::test]
async fn an_upload_past_the_limit_gets_409_until_one_has_finished() {
    use futures::StreamExt;
    let app = spawn_app_with(|c| {
        c.max_concurrent_uploads = 1;
        c.max_backup_size = 64 << 20;
    })
    .await;
    let client = app.signed_in("alice", Role::Admin).await;
    let archive = archive_kept_elsewhere(&client).await;

    let stalled =
        futures::stream::iter([Ok(archive[..64].to_vec())]).chain(futures::stream::pending());
    let running = {
        let client = client.clone();
        tokio::spawn(async move { client.upload_stream(stalled).await })
    };
    let partial = lms_backup::testing::wait_until("the first upload's file", async || {
        files(&app).into_iter().find(|f| f.ends_with(".partial"))
    })
    .await;
    let refused = client.upload(archive.clone()).await.unwrap_err();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert!(
        refused
            .message
            .contains("1 upload is already being received"),
        "{refused:?}"
    );
    assert!(
        files(&app).contains(&partial),
        "the running upload's file is untouched"
    );

    // The first one's client goes away: its file and its place go with it.
    running.abort();
    lms_backup::testing::wait_until("the first upload to be gone", async || {
        (!files(&app).iter().any(|f| f.ends_with(".partial"))).then_some(())
    })
    .await;
    let uploaded =
        lms_backup::testing::wait_until("an upload to be admitted", async || {
            match client.upload(archive.clone()).await {
                Ok(backup) => Some(backup),
                Err(e) if e.status == 409 => None,
                Err(e) => panic!("{e:?}"),
            }
        })
        .await;
    assert_eq!(uploaded.status, BackupStatus::Completed);
}
