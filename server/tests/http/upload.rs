//! Uploading archives made elsewhere.

use lms_backup::users::Role;
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, start_backup, wait_for_job, TestApp};

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

async fn upload(app: &TestApp, client: &reqwest::Client, body: Vec<u8>) -> reqwest::Response {
    client
        .post(app.url("/api/admin/backup/upload"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_valid_archive_is_accepted_and_restorable() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let started: Value = start_backup(&app, &client).await;
    wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
    let id = started["backup"]["id"].as_i64().unwrap();
    let archive = client
        .get(app.url(&format!("/api/admin/backup/download/{id}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    let res = upload(&app, &client, archive.to_vec()).await;
    assert_eq!(res.status(), 201);
    let uploaded: Value = res.json().await.unwrap();
    assert_eq!(uploaded["kind"], "uploaded");
    assert_eq!(uploaded["status"], "completed");
    use sha2::Digest;
    assert_eq!(
        uploaded["sha256"],
        hex::encode(sha2::Sha256::digest(&archive))
    );
    assert!(uploaded["filename"]
        .as_str()
        .unwrap()
        .starts_with("upload_"));
    let detail: Value = client
        .get(app.url(&format!("/api/admin/backup/{}", uploaded["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["manifest"]["tables"],
        Value::Null,
        "no fingerprint before its first restore"
    );

    sqlx::query("DELETE FROM courses WHERE id > 3")
        .execute(&app.dbs.lms)
        .await
        .unwrap();
    let res = client
        .post(app.url(&format!("/api/admin/backup/restore/{}", uploaded["id"])))
        .json(&json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let job: Value = res.json().await.unwrap();
    let job_id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let finished = lms_backup::testing::wait_for_job(&app.engine, job_id).await;
    assert_eq!(finished.status, "succeeded", "{finished:?}");
    let courses: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&app.dbs.lms)
        .await
        .unwrap();
    assert_eq!(courses, 20);
    let detail = lms_backup::catalog::get(&app.dbs.control, uploaded["id"].as_i64().unwrap())
        .await
        .unwrap();
    assert!(
        detail.manifest.unwrap().tables.is_some(),
        "fingerprint recorded at the first restore"
    );
}

#[tokio::test]
async fn anything_but_a_whole_archive_gets_422_and_leaves_nothing() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let started: Value = start_backup(&app, &client).await;
    wait_for_job(&app, &client, started["job"]["id"].as_str().unwrap()).await;
    let id = started["backup"]["id"].as_i64().unwrap();
    let archive = client
        .get(app.url(&format!("/api/admin/backup/download/{id}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let before = files(&app);
    let mut newer = archive.to_vec();
    newer[6] = 99; // archive format 1.99: from a PostgreSQL far newer than ours

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        ("plain SQL", b"--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\nCREATE TABLE x (id int);\n".to_vec(), "plain SQL"),
        ("text", b"hello, this is not a database\n".to_vec(), "text file"),
        ("gzip", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3], "gzip"),
        ("random", (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(), "not a PostgreSQL archive"),
        ("truncated", archive[..archive.len() / 2].to_vec(), "incomplete"),
        ("newer", newer, "format 1.99.0"),
    ];
    for (label, body, expected) in cases {
        let res = upload(&app, &client, body).await;
        assert_eq!(res.status(), 422, "{label}");
        let error: Value = res.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap();
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
    let res = upload(&app, &client, vec![b'P'; 200 * 1024]).await;
    assert_eq!(res.status(), 413);
    assert!(files(&app).is_empty());

    // No declared length: the stream is cut off at the cap.
    let who = lms_backup::testing::actor("alice");
    let big = vec![0u8; 3 * 1024 * 1024];
    let refused = app.engine.import_upload(&big[..], None, &who).await;
    assert!(
        matches!(refused, Err(lms_backup::Error::TooLarge(_))),
        "{refused:?}"
    );
    assert!(files(&app).is_empty(), "{:?}", files(&app));
}
