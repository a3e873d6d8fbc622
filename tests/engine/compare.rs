//! Backup against backup, from the manifests alone: what changed between
//! two verified backups, table by table, with nothing restored.

use lms_backup::catalog::compare::compare;
use lms_backup::testing::{actor, spawn_engine, start_manual_backup, wait_for_job};
use lms_backup::{catalog, Engine, Error};
use lms_types::{JobStatus, TableChange};

async fn backup(engine: &Engine) -> catalog::Backup {
    let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
    assert_eq!(
        wait_for_job(engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    catalog::get_row(&engine.dbs().control, started.backup.id)
        .await
        .unwrap()
}

async fn rows(engine: &Engine, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&engine.dbs().lms)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_backups_compare_table_by_table_from_their_manifests() {
    let engine = spawn_engine().await;
    for sql in [
        "INSERT INTO users (username, email, full_name, password_hash, role)
         VALUES ('ada', 'ada@example.test', 'Ada', '!', 'instructor'),
                ('bo', 'bo@example.test', 'Bo', '!', 'student')",
        "INSERT INTO courses (code, title) VALUES ('C-1', 'Algebra')",
        "INSERT INTO lessons (course_id, position, title) SELECT id, 1, 'One' FROM courses",
        "INSERT INTO enrollments (course_id, user_id) SELECT c.id, u.id FROM courses c, users u",
        "INSERT INTO activity_events (user_id, lesson_id, kind)
         SELECT u.id, l.id, 'viewed' FROM users u, lessons l, generate_series(1, 3)",
    ] {
        sqlx::query(sql).execute(&engine.dbs().lms).await.unwrap();
    }
    let before = backup(&engine).await;
    let courses = rows(&engine, "courses").await;
    // An edit that keeps the count, a deletion, an addition, a new table.
    for sql in [
        "UPDATE users SET full_name = 'renamed' WHERE id = (SELECT min(id) FROM users)",
        "DELETE FROM activity_events WHERE id = (SELECT min(id) FROM activity_events)",
        "INSERT INTO courses (code, title) VALUES ('NEW-1', 'made after the first backup')",
        "CREATE TABLE badges (id int PRIMARY KEY, title text)",
        "INSERT INTO badges VALUES (1, 'first')",
    ] {
        sqlx::query(sql).execute(&engine.dbs().lms).await.unwrap();
    }
    let activity = rows(&engine, "activity_events").await;
    let after = backup(&engine).await;

    // Either order: the older is first.
    for (a, b) in [(before.id, after.id), (after.id, before.id)] {
        let c = compare(&engine.dbs().control, a, b).await.unwrap();
        assert_eq!((c.older.id, c.newer.id), (before.id, after.id));
        let change = |name: &str| {
            let t = c
                .tables
                .iter()
                .find(|t| t.schema == "public" && t.name == name)
                .unwrap_or_else(|| panic!("{name} is compared"));
            (t.change, t.older_rows, t.newer_rows)
        };
        let users = change("users");
        assert_eq!(users.0, TableChange::Changed, "same count, other content");
        assert_eq!(users.1, users.2);
        assert_eq!(
            change("activity_events"),
            (TableChange::Changed, Some(activity + 1), Some(activity))
        );
        assert_eq!(
            change("courses"),
            (TableChange::Changed, Some(courses), Some(courses + 1))
        );
        assert_eq!(change("badges"), (TableChange::Added, None, Some(1)));
        assert_eq!(change("lessons").0, TableChange::Same);
        assert_eq!(change("enrollments").0, TableChange::Same);
        assert_eq!(c.count(TableChange::Removed), 0);
    }

    // The same backup twice, and a backup that is not there, are refused.
    let same = compare(&engine.dbs().control, before.id, before.id).await;
    assert!(
        matches!(&same, Err(Error::Invalid(m)) if m.contains("two different backups")),
        "{same:?}"
    );
    let unknown = compare(&engine.dbs().control, before.id, 999_999).await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
}

#[tokio::test]
async fn a_backup_without_a_record_of_its_tables_says_how_to_get_one() {
    let engine = spawn_engine().await;
    let made = backup(&engine).await;
    // An uploaded archive's manifest has no table record until its first
    // restore or drill.
    sqlx::query("UPDATE backup_history SET manifest = manifest - 'tables' WHERE id = $1")
        .bind(made.id)
        .execute(&engine.dbs().control)
        .await
        .unwrap();
    let other = backup(&engine).await;
    let refused = compare(&engine.dbs().control, made.id, other.id).await;
    match refused {
        Err(Error::Invalid(m)) => {
            assert!(m.contains(&made.filename), "{m}");
            assert!(m.contains("drill it once"), "{m}");
        }
        other => panic!("refused, saying why: {other:?}"),
    }
}
