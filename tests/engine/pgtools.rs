use std::os::unix::fs::PermissionsExt;

use lms_backup::pgtools;
use lms_backup::testing::spawn_db;

#[tokio::test]
async fn installed_tools_are_found_and_fit_the_server() {
    let dbs = spawn_db().await;
    let tools = pgtools::locate(None)
        .await
        .expect("pg_dump and pg_restore are installed");
    let (major, version) = pgtools::server_version(&dbs.lms).await.unwrap();
    assert!(major >= 10, "{version}");
    tools
        .check_against_server(major, &version)
        .expect("installed tools match the server");
}

/// A `POSTGRES_BIN_PATH` whose tools report an old version is refused with
/// both versions named.
#[tokio::test]
async fn old_tools_are_refused_naming_both_versions() {
    let dbs = spawn_db().await;
    let dir = std::env::temp_dir().join(format!("old-pg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for tool in ["pg_dump", "pg_restore"] {
        let path = dir.join(tool);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho '{tool} (PostgreSQL) 9.6.24'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tools = pgtools::locate(Some(&dir)).await.unwrap();
    assert_eq!(tools.major, 9);
    let (major, version) = pgtools::server_version(&dbs.lms).await.unwrap();
    let err = tools
        .check_against_server(major, &version)
        .unwrap_err()
        .to_string();
    assert!(err.contains("9") && err.contains(&version), "{err}");

    let empty = std::env::temp_dir().join(format!("no-pg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&empty).unwrap();
    let missing = pgtools::locate(Some(&empty)).await.unwrap_err().to_string();
    assert!(missing.contains("POSTGRES_BIN_PATH"), "{missing}");
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_dir_all(empty).ok();
}
