use lms_backup::demo::{self, SeedOutcome};
use lms_backup::testing::spawn_db;

#[tokio::test]
async fn seeding_fills_an_empty_database_once() {
    let dbs = spawn_db().await;
    let SeedOutcome::Seeded {
        users,
        courses,
        lessons,
        attachments,
        enrollments,
        events,
        database_bytes,
    } = demo::seed(&dbs.lms, 1).await.unwrap()
    else {
        panic!("an empty database is seeded");
    };
    assert_eq!(
        (users, courses, lessons, attachments, events),
        (210, 20, 300, 20, 20_000)
    );
    assert_eq!(enrollments, 1000);
    assert!(
        database_bytes > 2 * 1024 * 1024,
        "scale 1 is a few MB, got {database_bytes}"
    );

    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM activity_events")
        .fetch_one(&dbs.lms)
        .await
        .unwrap();
    assert_eq!(counted, 20_000);
    // Every foreign key resolves (the inserts would have failed otherwise) and
    // demo accounts cannot sign in.
    let signable: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE password_hash <> '!'")
        .fetch_one(&dbs.lms)
        .await
        .unwrap();
    assert_eq!(signable, 0);

    let again = demo::seed(&dbs.lms, 1).await.unwrap();
    assert_eq!(
        again,
        SeedOutcome::AlreadySeeded {
            courses: 20,
            users: 210
        }
    );
}

#[tokio::test]
async fn scale_is_bounded() {
    let dbs = spawn_db().await;
    assert!(demo::seed(&dbs.lms, 0).await.is_err());
    assert!(demo::seed(&dbs.lms, demo::MAX_SCALE + 1).await.is_err());
}
