//! What the activity log and the console say about what happened: backups
//! named, not numbered; refused uploads under their own name; the log
//! narrowed to a kind and a person; the backup limit told before trying.

use lms_backup::users::Role;
use lms_types::{AuditAction, AuditOutcome, JobStatus, Operation};

use crate::client::ApiClient;
use crate::support::{spawn_app, spawn_app_with, PASSWORD};

/// An archive this server made and no longer lists (a copy of a listed
/// backup is refused): a backup, downloaded, then deleted.
async fn archive_made_here(client: &ApiClient) -> Vec<u8> {
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;
    let bytes = client.download(started.backup.id).await.unwrap().bytes;
    client.delete_backup(started.backup.id).await.unwrap();
    bytes
}

/// Restores and undos used to be logged as "backup 4" (a catalog id), a
/// refused upload under the generated name the next upload then got, and
/// the uploaded file's own name was lost.
#[tokio::test]
async fn restores_undos_and_uploads_are_logged_by_name() {
    let app = spawn_app().await;
    lms_backup::demo::seed(&app.dbs.lms, 1).await.unwrap();
    let client = app.signed_in("alice", Role::Admin).await;
    let archive = archive_made_here(&client).await;

    let refused = client
        .upload_named(b"just some notes".to_vec(), "notes.txt")
        .await
        .unwrap_err();
    assert_eq!(refused.status, 422);
    let uploaded = client
        .upload_named(archive, "C:\\exports\\nightly.dump")
        .await
        .unwrap();
    assert_eq!(uploaded.original_name.as_deref(), Some("nightly.dump"));
    let listed = client.list_backups().await.unwrap();
    assert!(listed
        .backups
        .iter()
        .any(|b| b.id == uploaded.id && b.original_name.as_deref() == Some("nightly.dump")));

    let uploads: Vec<_> = client
        .activity()
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::BackupUpload)
        .collect();
    let failed: Vec<_> = uploads
        .iter()
        .filter(|e| e.outcome == AuditOutcome::Failure)
        .map(|e| e.target.clone().unwrap_or_default())
        .collect();
    assert_eq!(failed, ["refused upload of notes.txt"], "{uploads:?}");
    assert!(uploads.iter().any(|e| e.outcome == AuditOutcome::Success
        && e.target.as_deref() == Some(uploaded.filename.as_str())));

    let job = client.restore(uploaded.id).await.unwrap();
    assert_eq!(job.backup_name.as_deref(), Some(uploaded.filename.as_str()));
    let done = lms_backup::testing::wait_for_job(&app.engine, job.id.parse().unwrap()).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    // Everyone was signed out; alice is in the restored users table.
    client.sign_in("alice", PASSWORD).await.unwrap();
    let undo = client.undo().await.unwrap();
    assert_eq!(undo.kind, Operation::Undo);
    assert_eq!(
        undo.backup_name.as_deref(),
        Some(uploaded.filename.as_str()),
        "an undo names the backup whose restore it undoes"
    );
    let done = lms_backup::testing::wait_for_job(&app.engine, undo.id.parse().unwrap()).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    client.sign_in("alice", PASSWORD).await.unwrap();

    let restores = client.activity_of(Some("restores"), None).await.unwrap();
    let logged: Vec<_> = restores
        .iter()
        .map(|e| (e.action, e.target.as_deref(), e.actor.as_str()))
        .collect();
    assert_eq!(
        logged,
        [
            (
                AuditAction::RestoreUndo,
                Some(uploaded.filename.as_str()),
                "alice"
            ),
            (
                AuditAction::Restore,
                Some(uploaded.filename.as_str()),
                "alice"
            ),
        ]
    );
}

/// The log narrowed to a kind and a person through the console's own
/// call; bad filters are refused, and an empty username never shows as a
/// blank actor.
#[tokio::test]
async fn the_activity_log_filters_by_kind_and_person() {
    let app = spawn_app().await;
    let alice = app.signed_in("alice", Role::Admin).await;
    let _bob = app.signed_in("bob", Role::Admin).await;
    let stranger = app.client();
    assert!(stranger.sign_in("", "wrong").await.is_err());

    let sign_ins = alice.activity_of(Some("sign_ins"), None).await.unwrap();
    assert!(sign_ins
        .iter()
        .all(|e| matches!(e.action, AuditAction::Login | AuditAction::Logout)));
    let actors: Vec<_> = sign_ins.iter().map(|e| e.actor.as_str()).collect();
    assert!(
        actors.contains(&"bob") && actors.contains(&"alice"),
        "{actors:?}"
    );
    assert!(actors.iter().all(|a| !a.trim().is_empty()), "{actors:?}");
    assert!(actors.contains(&"(no username)"), "{actors:?}");

    let bobs = alice.activity_of(None, Some(" BOB ")).await.unwrap();
    assert!(!bobs.is_empty());
    assert!(bobs.iter().all(|e| e.actor == "bob"), "{bobs:?}");
    let refusals = alice.activity_of(Some("refusals"), None).await.unwrap();
    assert!(!refusals.is_empty());
    assert!(refusals.iter().all(|e| e.outcome != AuditOutcome::Success));
    assert!(alice
        .activity_of(Some("backups"), Some("bob"))
        .await
        .unwrap()
        .is_empty());

    let long = "x".repeat(200);
    assert_eq!(
        alice
            .activity_of(None, Some(&long))
            .await
            .unwrap_err()
            .status,
        400
    );
    assert_ne!(
        alice
            .activity_of(Some("everything"), None)
            .await
            .map(|_| 200)
            .unwrap_or_else(|e| e.status),
        200
    );
}

/// The hourly backup limit used to be found out only by trying, and told
/// in UTC. The storage summary now says when the next manual backup is
/// possible (a moment the browser shows in its own zone), and the refusal
/// names no clock time.
#[tokio::test]
async fn the_backup_limit_is_known_before_trying_and_told_without_utc() {
    let app = spawn_app_with(|c| c.backup_rate_limit = 1).await;
    let client = app.signed_in("alice", Role::Admin).await;
    let summary = || async {
        client
            .server_fn::<app::models::StorageSummary>("storage_summary", serde_json::json!({}))
            .await
            .unwrap()
    };
    assert_eq!(summary().await.next_manual_backup_at, None);
    let started = client.create_backup(None).await.unwrap();
    client.wait_for_job(&started.job.id).await;

    let next = summary()
        .await
        .next_manual_backup_at
        .expect("the limit is used up");
    let expected = started.job.created_at + chrono::Duration::hours(1);
    assert!(
        (next - expected).num_seconds().abs() <= 1,
        "{next} vs {expected}"
    );

    let refused = client.create_backup(None).await.unwrap_err();
    assert_eq!(refused.status, 429);
    assert!(!refused.message.contains("UTC"), "{refused:?}");
    assert!(refused.message.contains("minutes"), "{refused:?}");

    // Another administrator has their own limit.
    let bob = app.signed_in("bob", Role::Admin).await;
    let theirs: app::models::StorageSummary = bob
        .server_fn("storage_summary", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(theirs.next_manual_backup_at, None);
}
