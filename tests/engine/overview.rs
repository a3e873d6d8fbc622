use lms_backup::postgres::overview::database_overview;
use lms_backup::testing::spawn_db;

#[tokio::test]
async fn overview_counts_every_lms_table_exactly() {
    let dbs = spawn_db().await;
    lms_backup::demo::seed(&dbs.lms, 1).await.unwrap();
    sqlx::query("DELETE FROM activity_events WHERE id % 3 = 0")
        .execute(&dbs.lms)
        .await
        .unwrap();

    let overview = database_overview(&dbs.lms).await.unwrap();
    assert_eq!(overview.database, dbs.lms_name());
    assert!(overview.size_bytes > 0);
    assert!(overview
        .server_version
        .chars()
        .next()
        .unwrap()
        .is_ascii_digit());
    let names: Vec<_> = overview.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "activity_events",
            "courses",
            "enrollments",
            "lesson_attachments",
            "lessons",
            "users"
        ]
    );
    for table in &overview.tables {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", table.name))
            .fetch_one(&dbs.lms)
            .await
            .unwrap();
        assert_eq!(table.rows, rows, "{}", table.name);
        assert!(table.size_bytes > 0);
    }
    let events = overview
        .tables
        .iter()
        .find(|t| t.name == "activity_events")
        .unwrap();
    assert_eq!(events.rows, 20_000 - 20_000 / 3);
}
