//! The backup API end to end: real pg_dump, real files, real HTTP.

use lms_backup::testing::Gate;
use lms_backup::users::Role;
use lms_types::{AuditAction, BackupStatus, JobStatus, Operation};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{spawn_app, spawn_app_with, spawn_app_with_gates};

#[tokio::test]
async fn create_list_get_download_round_trip() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;

    let started = client
        .create_backup(Some("nightly <b>check</b>"))
        .await
        .unwrap();
    assert_eq!(started.backup.status, BackupStatus::Running);
    assert_eq!(started.job.started_by, "alice");
    let job = client.wait_for_job(&started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.progress, 1.0);

    let list = client.list_backups().await.unwrap();
    assert_eq!(list.total, 1);
    let listed = &list.backups[0];
    assert_eq!(listed.status, BackupStatus::Completed);
    assert_eq!(
        listed.notes.as_deref(),
        Some("nightly <b>check</b>"),
        "stored as given; the UI renders it as text"
    );
    let id = listed.id;
    let sha = listed.sha256.clone().unwrap();
    let size = listed.size_bytes.unwrap() as u64;

    let detail = client.backup(id).await.unwrap();
    let tables = detail.manifest.unwrap().tables.unwrap();
    let events = tables.iter().find(|t| t.name == "activity_events").unwrap();
    assert_eq!(events.rows, 20_000);

    let download = client.download(id).await.unwrap();
    assert_eq!(download.header("content-length"), size.to_string());
    assert_eq!(download.header("x-backup-sha256"), sha);
    let disposition = download.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"backup_"),
        "{disposition}"
    );
    assert!(
        download.headers.get("content-encoding").is_none(),
        "archives are sent as they are"
    );
    let bytes = download.bytes;
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);

    // The downloaded archive lists every LMS table.
    let file = std::env::temp_dir().join(format!("dl-{}.dump", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, &bytes).unwrap();
    let info = lms_backup::postgres::archive::list(
        &app.engine.tools().pg_restore,
        lms_backup::postgres::archive::Input::Path(file.clone()),
    )
    .await
    .unwrap();
    for table in [
        "users",
        "courses",
        "lessons",
        "enrollments",
        "activity_events",
    ] {
        assert!(
            info.tables.contains(&format!("public.{table}")),
            "{table} missing from the archive"
        );
    }
    std::fs::remove_file(file).ok();

    // Range requests resume a download.
    let part = client.download_range(id, "bytes=100-").await.unwrap();
    assert_eq!(
        part.header("content-range"),
        format!("bytes 100-{}/{size}", size - 1)
    );
    assert_eq!(part.bytes, bytes[100..]);
    let beyond = client
        .download_range(id, &format!("bytes={size}-"))
        .await
        .unwrap_err();
    assert_eq!(beyond.status, 416);

    let audited = client
        .activity()
        .await
        .into_iter()
        .filter(|e| matches!(e.action.as_str(), "backup.create" | "backup.download"))
        .filter(|e| e.client_ip.as_deref() == Some("127.0.0.1"))
        .count();
    assert!(
        audited >= 2,
        "create and downloads are audited with the client address"
    );

    client.delete_backup(id).await.unwrap();
    let again = client.delete_backup(id).await.unwrap_err();
    assert_eq!(again.status, 404);
    assert_eq!(again.code, "not_found");
}

#[tokio::test]
async fn status_shows_who_holds_the_lock_and_a_second_backup_gets_409() {
    let dump = Gate::new();
    let app = spawn_app_with_gates(Some(&dump), None).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let started = client.create_backup(None).await.unwrap();

    // The backup's pg_dump is held at the gate: it is running.
    dump.reached().await;
    let status = client.status().await.unwrap();
    assert!(status.is_locked, "{status:?}");
    assert_eq!(status.operation_type, Some(Operation::Backup));
    assert_eq!(status.locked_by.as_deref(), Some("alice"));
    assert_eq!(status.job.unwrap().id, started.job.id);
    let second = client.create_backup(None).await.unwrap_err();
    assert_eq!(second.status, 409);
    assert!(
        second.message.contains("alice") && second.message.contains("backup"),
        "{}",
        second.message
    );
    dump.open();
    let job = client.wait_for_job(&started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded);
    let status = client.status().await.unwrap();
    assert!(!status.is_locked);
    assert_eq!(
        status.job.unwrap().status,
        JobStatus::Succeeded,
        "the last outcome stays visible"
    );
}

#[tokio::test]
async fn two_hundred_concurrent_create_requests_start_one_job() {
    // Every dump waits at the gate, so the first backup is still running
    // when the last request arrives.
    let dump = Gate::new();
    let app = spawn_app_with_gates(Some(&dump), None).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let requests = (0..200).map(|_| client.create_backup(None));
    let answers = futures::future::join_all(requests).await;
    let statuses: Vec<u16> = answers
        .iter()
        .map(|a| a.as_ref().map_or_else(|e| e.status, |_| 202))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        199,
        "{statuses:?}"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM backup_history")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(rows, 1, "one catalog row");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(jobs, 1, "one job");
    let started = answers.into_iter().find_map(Result::ok).unwrap();
    dump.open();
    client.wait_for_job(&started.job.id).await;
    let files: Vec<_> = std::fs::read_dir(&app.engine.config().backup_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert_eq!(files.len(), 1, "one archive: {files:?}");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let app = spawn_app_with(|c| c.backup_rate_limit = 1).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    let refused = client.create_backup(None).await.unwrap_err();
    assert_eq!(refused.status, 429);
    let wait = refused.retry_after.expect("a Retry-After header");
    assert!(wait > 3500 && wait <= 3600, "{wait}");
}

#[tokio::test]
async fn hostile_ids_and_notes_are_refused() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    for id in [
        "..%2Fx",
        "%2e%2e%2f",
        "1;rm",
        "-1",
        "99999999999999999999999",
        "abc",
        "1%00",
        "%252e%252e%252f",
        "%2Fetc%2Fpasswd",
        "..%5C..%5Cwindows",
        &"9".repeat(10_000),
        &"a".repeat(10_000),
    ] {
        for path in [
            format!("/api/admin/backup/{id}"),
            format!("/api/admin/backup/download/{id}"),
        ] {
            let res = client.get(&path).send().await.unwrap();
            assert!(
                matches!(res.status().as_u16(), 400 | 404 | 414),
                "{path}: {}",
                res.status()
            );
        }
        let res = client
            .request(reqwest::Method::DELETE, &format!("/api/admin/backup/{id}"))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(res.status().as_u16(), 400 | 404 | 414),
            "DELETE {id}: {}",
            res.status()
        );
        let res = client
            .post(&format!("/api/admin/backup/restore/{id}"))
            .json(&json!({ "confirm": true }))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(res.status().as_u16(), 400 | 404 | 414),
            "restore {}: {}",
            &id[..id.len().min(20)],
            res.status()
        );
    }
    assert_eq!(client.backup(424242).await.unwrap_err().status, 404);
    let long = "x".repeat(100_000);
    assert_eq!(
        client.create_backup(Some(&long)).await.unwrap_err().status,
        422
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(rows, 0, "refused requests leave no job");
}

/// A deleted backup's id is gone for every route: 404, nothing started.
#[tokio::test]
async fn the_id_of_a_deleted_backup_is_404_everywhere() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    let id = started.backup.id;
    client.delete_backup(id).await.unwrap();
    let jobs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(client.backup(id).await.unwrap_err().status, 404, "details");
    assert_eq!(
        client.download(id).await.unwrap_err().status,
        404,
        "download"
    );
    assert_eq!(
        client.delete_backup(id).await.unwrap_err().status,
        404,
        "a second delete"
    );
    assert_eq!(client.restore(id).await.unwrap_err().status, 404, "restore");
    let jobs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(jobs_after, jobs_before, "nothing started");
}

#[tokio::test]
async fn force_release_frees_a_stuck_lock_and_is_audited() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    sqlx::query(
        "INSERT INTO operation_lock (id, holder_instance, operation_type, locked_by_name) VALUES (1, 'gone-host:1:x', 'backup', 'bob')",
    )
    .execute(&app.dbs.control)
    .await
    .unwrap();
    assert_eq!(client.create_backup(None).await.unwrap_err().status, 409);
    let released = client.release_lock().await.unwrap();
    assert!(released.released);
    assert_eq!(released.locked_by.as_deref(), Some("bob"));
    let audited = client
        .activity()
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::LockForceRelease && e.actor == "alice")
        .count();
    assert_eq!(audited, 1);
    client
        .create_backup(None)
        .await
        .expect("a backup starts once the lock is released");
}

/// The console counts notes against the limit the server is configured
/// with (it reads it from the storage summary), and the server refuses
/// longer notes whatever the form does.
#[tokio::test]
async fn the_notes_limit_the_console_shows_is_the_configured_one() {
    let app = spawn_app_with(|c| c.max_notes_len = 42).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let summary: app::models::StorageSummary = client
        .server_fn("storage_summary", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(summary.max_notes_len, 42, "{summary:?}");

    let refused = client
        .create_backup(Some(&"n".repeat(43)))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    assert!(refused.message.contains("42"), "{refused:?}");
    let started = client.create_backup(Some(&"n".repeat(42))).await.unwrap();
    client.wait_for_job(&started.job.id).await;
}

/// A resumed or probed download (Range, HEAD) used to re-hash the whole
/// archive and write an audit row on every request. One download is now
/// audited once, however many ranges it is fetched in; a file changed on
/// disk is still refused.
#[tokio::test]
async fn a_download_in_ranges_is_audited_once_and_a_changed_file_still_refused() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    let id = started.backup.id;
    let downloads = async || {
        client
            .activity()
            .await
            .into_iter()
            .filter(|e| e.action == AuditAction::BackupDownload)
            .count()
    };

    let mut bytes = Vec::new();
    for part in 0..10 {
        let range = format!("bytes={}-{}", part * 100, part * 100 + 99);
        bytes.extend(client.download_range(id, &range).await.unwrap().bytes);
    }
    for _ in 0..3 {
        let head = client
            .request(
                reqwest::Method::HEAD,
                &format!("/api/admin/backup/download/{id}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), 200);
    }
    let whole = client.download(id).await.unwrap().bytes;
    assert_eq!(bytes, whole[..1000]);
    assert_eq!(
        downloads().await,
        2,
        "the ranged download and the whole one"
    );

    // Damage one byte: a fresh download and a range are both refused.
    let path = app
        .engine
        .config()
        .backup_dir
        .join(&started.backup.filename);
    let mut on_disk = std::fs::read(&path).unwrap();
    on_disk[500] ^= 0xff;
    std::fs::write(&path, &on_disk).unwrap();
    assert_eq!(client.download(id).await.unwrap_err().status, 409);
    assert_eq!(
        client
            .download_range(id, "bytes=600-")
            .await
            .unwrap_err()
            .status,
        409
    );
}
