//! The backup API end to end: real pg_dump, real files, real HTTP.

use lms_backup::users::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{spawn_app, spawn_app_with, start_backup, wait_for_job};

#[tokio::test]
async fn create_list_get_download_round_trip() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;

    let res = client
        .post(app.url("/api/admin/backup/create"))
        .json(&json!({ "notes": "nightly <b>check</b>" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let started: Value = res.json().await.unwrap();
    assert_eq!(started["backup"]["status"], "running");
    assert_eq!(started["job"]["started_by"], "alice");
    let job = wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["progress"], 1.0);

    let list: Value = client
        .get(app.url("/api/admin/backup/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    let listed = &list["backups"][0];
    assert_eq!(listed["status"], "completed");
    assert_eq!(
        listed["notes"], "nightly <b>check</b>",
        "stored as given; the UI renders it as text"
    );
    let id = listed["id"].as_i64().unwrap();
    let sha = listed["sha256"].as_str().unwrap().to_owned();
    let size = listed["size_bytes"].as_u64().unwrap();

    let detail: Value = client
        .get(app.url(&format!("/api/admin/backup/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tables = detail["manifest"]["tables"].as_array().unwrap();
    let events = tables
        .iter()
        .find(|t| t["name"] == "activity_events")
        .unwrap();
    assert_eq!(events["rows"], 20_000);

    let res = client
        .get(app.url(&format!("/api/admin/backup/download/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-length"].to_str().unwrap(),
        size.to_string()
    );
    assert_eq!(res.headers()["x-backup-sha256"], sha.as_str());
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"backup_"),
        "{disposition}"
    );
    assert!(
        res.headers().get("content-encoding").is_none(),
        "archives are sent as they are"
    );
    let bytes = res.bytes().await.unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);

    // The downloaded archive lists every LMS table.
    let file = std::env::temp_dir().join(format!("dl-{}.dump", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, &bytes).unwrap();
    let info = lms_backup::postgres::archive::list(&app.engine.tools().pg_restore, &file)
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
    let res = client
        .get(app.url(&format!("/api/admin/backup/download/{id}")))
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes 100-{}/{size}", size - 1)
    );
    assert_eq!(res.bytes().await.unwrap(), bytes.slice(100..));
    let res = client
        .get(app.url(&format!("/api/admin/backup/download/{id}")))
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);

    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('backup.create', 'backup.download') AND client_ip = '127.0.0.1'",
    )
    .fetch_one(&app.dbs.control)
    .await
    .unwrap();
    assert!(
        audited >= 2,
        "create and downloads are audited with the client address"
    );

    let res = client
        .delete(app.url(&format!("/api/admin/backup/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = client
        .delete(app.url(&format!("/api/admin/backup/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn status_shows_who_holds_the_lock_and_a_second_backup_gets_409() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 2).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let started: Value = start_backup(&app, &client).await;

    // A backup of this database takes well over a second; these requests take milliseconds.
    let status: Value = client
        .get(app.url("/api/admin/backup/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["is_locked"], true, "{status}");
    assert_eq!(status["operation_type"], "backup");
    assert_eq!(status["locked_by"], "alice");
    assert_eq!(status["job"]["id"], started["job"]["id"]);
    let second = client
        .post(app.url("/api/admin/backup/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("alice") && message.contains("backup"),
        "{message}"
    );
    let job = wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded");
    let status: Value = client
        .get(app.url("/api/admin/backup/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["is_locked"], false);
    assert_eq!(
        status["job"]["status"], "succeeded",
        "the last outcome stays visible"
    );
}

#[tokio::test]
async fn two_hundred_concurrent_create_requests_start_one_job() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let requests = (0..200).map(|_| client.post(app.url("/api/admin/backup/create")).send());
    let responses = futures::future::join_all(requests).await;
    let statuses: Vec<u16> = responses
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
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
    let started = responses
        .into_iter()
        .map(Result::unwrap)
        .find(|r| r.status() == 202)
        .unwrap();
    let started: Value = started.json().await.unwrap();
    wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
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
    let started: Value = start_backup(&app, &client).await;
    wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
    let res = client
        .post(app.url("/api/admin/backup/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
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
            let res = client.get(app.url(&path)).send().await.unwrap();
            assert!(
                matches!(res.status().as_u16(), 400 | 404 | 414),
                "{path}: {}",
                res.status()
            );
        }
        let res = client
            .delete(app.url(&format!("/api/admin/backup/{id}")))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(res.status().as_u16(), 400 | 404 | 414),
            "DELETE {id}: {}",
            res.status()
        );
        let res = client
            .post(app.url(&format!("/api/admin/backup/restore/{id}")))
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
    let res = client
        .get(app.url("/api/admin/backup/424242"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = client
        .post(app.url("/api/admin/backup/create"))
        .json(&json!({ "notes": "x".repeat(100_000) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
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
    let started = start_backup(&app, &client).await;
    wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
    let id = started["backup"]["id"].as_i64().unwrap();
    let res = client
        .delete(app.url(&format!("/api/admin/backup/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let jobs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    for path in [
        format!("/api/admin/backup/{id}"),
        format!("/api/admin/backup/download/{id}"),
    ] {
        let res = client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let res = client
        .delete(app.url(&format!("/api/admin/backup/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a second delete");
    let res = client
        .post(app.url(&format!("/api/admin/backup/restore/{id}")))
        .json(&json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "restore");
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
    assert_eq!(
        client
            .post(app.url("/api/admin/backup/create"))
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
    let released: Value = client
        .post(app.url("/api/admin/backup/lock/release"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(released["released"], true);
    assert_eq!(released["locked_by"], "bob");
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'lock.force_release' AND actor_name = 'alice'")
        .fetch_one(&app.dbs.control)
        .await
        .unwrap();
    assert_eq!(audited, 1);
    assert_eq!(
        client
            .post(app.url("/api/admin/backup/create"))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
}

/// The console counts notes against the limit the server is configured
/// with (it reads it from the storage summary), and the server refuses
/// longer notes whatever the form does.
#[tokio::test]
async fn the_notes_limit_the_console_shows_is_the_configured_one() {
    let app = spawn_app_with(|c| c.max_notes_len = 42).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let summary: Value = client
        .post(app.url("/api/fn/storage_summary"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["max_notes_len"], 42, "{summary}");

    let res = client
        .post(app.url("/api/admin/backup/create"))
        .json(&json!({ "notes": "n".repeat(43) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("42"),
        "{body}"
    );
    let res = client
        .post(app.url("/api/admin/backup/create"))
        .json(&json!({ "notes": "n".repeat(42) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let started: Value = res.json().await.unwrap();
    wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
}
