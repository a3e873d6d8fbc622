use lms_backup::postgres::tools as pgtools;
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
    let dir = lms_backup::testing::fake_tools("9.6.24");
    let tools = pgtools::locate(Some(&dir)).await.unwrap();
    assert_eq!(tools.major, 9);
    let (major, version) = pgtools::server_version(&dbs.lms).await.unwrap();
    let err = tools
        .check_against_server(major, &version)
        .unwrap_err()
        .to_string();
    assert!(err.contains("9") && err.contains(&version), "{err}");

    let empty = lms_backup::testing::scratch_dir("no-pg");
    let missing = pgtools::locate(Some(&empty)).await.unwrap_err().to_string();
    assert!(missing.contains("POSTGRES_BIN_PATH"), "{missing}");
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_dir_all(empty).ok();
}
