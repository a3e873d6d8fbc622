//! A backup directory that is away (an unmounted disk) through the API,
//! the console's own calls and the command line: refused with 503 naming
//! it, shown in the status, used again once back; and missing backups
//! checked again on request.

use std::path::{Path, PathBuf};

use app::error::AppError;
use app::models::{BackupStatus, FileCheck, OperationStatus};
use lms_backup::users::Role;
use serde_json::json;

use crate::cli::{lms_admin, text};
use crate::support::spawn_app;

fn aside(dir: &Path) -> PathBuf {
    dir.with_extension("unmounted")
}

#[tokio::test]
async fn while_the_directory_is_away_the_api_says_so_and_starts_nothing() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let dir = app.engine.config().backup_dir.clone();
    let kept = client.backup_now().await;
    std::fs::rename(&dir, aside(&dir)).unwrap();

    let status = client.status().await.unwrap();
    let problem = status.backup_dir_problem.clone().unwrap_or_default();
    assert!(problem.contains(&dir.display().to_string()), "{status:?}");

    let path = dir.display().to_string();
    let refused = [
        client.create_backup(None).await.map(drop).unwrap_err(),
        client
            .upload(b"PGDMP".to_vec())
            .await
            .map(drop)
            .unwrap_err(),
        client.restore(kept.backup.id).await.map(drop).unwrap_err(),
        client.delete_backup(kept.backup.id).await.unwrap_err(),
        client.recheck().await.map(drop).unwrap_err(),
    ];
    for refused in refused {
        assert_eq!(refused.status, 503, "{refused:?}");
        assert_eq!(refused.code, "unavailable");
        assert!(
            refused.message.contains(&path) && refused.message.contains("mount it"),
            "{refused:?}"
        );
    }
    // The console's own call says the same.
    let refused = client
        .server_fn::<serde_json::Value>("create_backup", json!({ "notes": null }))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 503);
    assert!(
        matches!(&refused.error, AppError::Unavailable(m) if m.contains(&path)),
        "{refused:?}"
    );
    assert!(!dir.exists(), "nothing created in its place");
    let list = client.list_backups().await.unwrap();
    assert!(list
        .backups
        .iter()
        .all(|b| b.status == BackupStatus::Completed));

    // Back: the same server works again.
    std::fs::rename(aside(&dir), &dir).unwrap();
    let status = client.status().await.unwrap();
    assert_eq!(status.backup_dir_problem, None);
    client.backup_now().await;
}

#[tokio::test]
async fn missing_backups_are_checked_again_on_request() {
    let app = spawn_app().await;
    let client = app.signed_in("alice", Role::Admin).await;
    let dir = app.engine.config().backup_dir.clone();
    let started = client.backup_now().await;
    let name = started.backup.filename.clone();
    let elsewhere = lms_backup::testing::scratch_dir("set-aside");
    std::fs::rename(dir.join(&name), elsewhere.join(&name)).unwrap();

    let check = client.recheck().await.unwrap();
    assert_eq!(
        check,
        FileCheck {
            newly_missing: vec![name.clone()],
            ..Default::default()
        }
    );
    let status: OperationStatus = client.status().await.unwrap();
    assert_eq!(status.missing_backups, 1);

    std::fs::rename(elsewhere.join(&name), dir.join(&name)).unwrap();
    let check: FileCheck = client
        .server_fn("recheck_backups", json!({}))
        .await
        .unwrap();
    assert_eq!(check.found, vec![name.clone()]);
    assert_eq!(client.status().await.unwrap().missing_backups, 0);
    assert_eq!(
        client
            .backup(started.backup.id)
            .await
            .unwrap()
            .summary
            .status,
        BackupStatus::Completed
    );
    let activity = client.activity().await;
    let audited: Vec<(&str, &str)> = activity
        .iter()
        .filter(|e| e.target.as_deref() == Some(name.as_str()))
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert!(
        audited.contains(&("backup.missing", "alice"))
            && audited.contains(&("backup.found", "alice")),
        "{audited:?}"
    );
}

/// `lms-admin backup …` with the directory away: refused naming it, and
/// not created; `backup recheck` brings a returned file's backup back.
#[tokio::test]
async fn the_command_line_waits_for_the_directory_and_rechecks_files() {
    let dir = lms_backup::testing::scratch_dir("cli-dir");
    let backups = dir.join("backups");
    let url = lms_backup::testing::fresh_database_url().await;
    let env = [
        ("DATABASE_URL", url),
        ("BACKUP_DIR", backups.display().to_string()),
    ];
    let refused = lms_admin(&env, &["backup", "create"]).await;
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains("does not exist") && said.contains(&backups.display().to_string()),
        "{said}"
    );
    assert!(!backups.exists(), "not created by the command");

    std::fs::create_dir(&backups).unwrap();
    let out = lms_admin(&env, &["backup", "create"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let name = std::fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".dump"))
        .unwrap();
    std::fs::rename(backups.join(&name), dir.join(&name)).unwrap();
    let out = lms_admin(&env, &["backup", "recheck"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("now missing (1)"), "{}", text(&out));
    assert!(text(&lms_admin(&env, &["backup", "list"]).await).contains("missing"));

    std::fs::rename(dir.join(&name), backups.join(&name)).unwrap();
    let out = lms_admin(&env, &["backup", "recheck"]).await;
    assert!(
        text(&out).contains("Found again, intact, now completed (1)"),
        "{}",
        text(&out)
    );

    std::fs::rename(&backups, aside(&backups)).unwrap();
    let out = lms_admin(&env, &["backup", "recheck"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    let listing = text(&lms_admin(&env, &["backup", "list"]).await);
    assert!(
        listing.contains("Backups are unavailable") && listing.contains("completed"),
        "{listing}"
    );
    std::fs::remove_dir_all(dir).ok();
}
