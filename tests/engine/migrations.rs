use lms_backup::testing::spawn_db;

async fn tables(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_create_both_schemas_on_empty_databases() {
    let dbs = spawn_db().await;
    let lms = tables(&dbs.lms).await;
    for t in [
        "users",
        "courses",
        "lessons",
        "enrollments",
        "activity_events",
    ] {
        assert!(
            lms.contains(&t.to_string()),
            "LMS table {t} missing: {lms:?}"
        );
    }
    let control = tables(&dbs.control).await;
    for t in [
        "audit_log",
        "jobs",
        "backup_history",
        "operation_lock",
        "settings",
    ] {
        assert!(
            control.contains(&t.to_string()),
            "control table {t} missing: {control:?}"
        );
    }
    // Nothing of the control schema leaks into the LMS database (it would end up in backups).
    assert!(!lms.contains(&"backup_history".to_string()));
    assert_ne!(dbs.lms_name(), dbs.control_options.get_database().unwrap());
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let dbs = spawn_db().await;
    dbs.migrate().await.expect("second migration run");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&dbs.lms)
        .await
        .unwrap();
    assert_eq!(applied, 2, "each LMS migration applied once");
}
