//! Preview changes and record recovery against a real PostgreSQL: a backup
//! restored into a prepared copy and compared with the live database (the
//! counts checked against the test's own computation), a deleted course
//! brought back with everything that cascaded while everyone else's work
//! since stays as it is (full table contents compared), plans blocked by a
//! unique value, undo, undo refused, and a schema the LMS did not design.

use std::collections::{BTreeMap, BTreeSet};

use lms_backup::records::{RecordKey, RecordRequest};
use lms_backup::testing::{
    actor, compare_prepared_afresh, copy_sums_reused, spawn_engine, start_manual_backup,
    wait_for_job,
};
use lms_backup::Engine;
use lms_types::records::Preview;
use lms_types::JobStatus;
use sqlx::PgPool;

async fn backup(engine: &Engine) -> i64 {
    let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
    let job = wait_for_job(engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    started.backup.id
}

async fn preview(engine: &Engine, backup_id: i64) -> Preview {
    let job = engine
        .start_preview(backup_id, &actor("alice"))
        .await
        .unwrap();
    let job = wait_for_job(engine, job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    engine.preview().await.unwrap().expect("a prepared copy")
}

fn request(table: &str, key: &str) -> RecordRequest {
    RecordRequest {
        table: table.into(),
        key: key.parse::<RecordKey>().unwrap(),
    }
}

async fn recover(engine: &Engine, req: RecordRequest) -> lms_backup::jobs::Job {
    let job = engine
        .start_recover(req, None, &actor("alice"))
        .await
        .unwrap();
    wait_for_job(engine, job.id).await
}

async fn plan_of(engine: &Engine, req: RecordRequest) -> lms_types::records::RecoveryPlan {
    engine.plan_recovery(&req, &actor("alice")).await.unwrap()
}

/// Undo of the newest recovery, to its end.
async fn undo(engine: &Engine) -> lms_backup::jobs::Job {
    let job = engine
        .start_recover_undo(None, &actor("alice"))
        .await
        .unwrap();
    wait_for_job(engine, job.id).await
}

/// Every row of every table of `schema`, as text (`to_jsonb`), in sets:
/// what the database holds, compared whole.
async fn contents(pool: &PgPool, schema: &str) -> BTreeMap<String, BTreeSet<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT to_jsonb(t)::text FROM {schema}.{table} t"))
                .fetch_all(pool)
                .await
                .unwrap();
        out.insert(table, rows.into_iter().collect());
    }
    out
}

/// `after` minus `before`, per table.
fn added(
    before: &BTreeMap<String, BTreeSet<String>>,
    after: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, BTreeSet<String>> {
    after
        .iter()
        .map(|(t, rows)| {
            let old = before.get(t).cloned().unwrap_or_default();
            (t.clone(), rows.difference(&old).cloned().collect())
        })
        .filter(|(_, rows): &(String, BTreeSet<String>)| !rows.is_empty())
        .collect()
}

/// The course the demo data gives the most enrollments, with its
/// instructor.
async fn busiest_course(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT c.id, c.instructor_id FROM courses c JOIN enrollments e ON e.course_id = c.id
         WHERE c.instructor_id IS NOT NULL
         GROUP BY c.id ORDER BY count(*) DESC, c.id LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// What deleting course `id` takes with it, counted independently of the
/// product: (lessons, attachments, enrollments, activity events).
async fn cascade_of(pool: &PgPool, id: i64) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM lessons WHERE course_id = $1),
                (SELECT count(*) FROM lesson_attachments a JOIN lessons l ON l.id = a.lesson_id
                 WHERE l.course_id = $1),
                (SELECT count(*) FROM enrollments WHERE course_id = $1),
                (SELECT count(*) FROM activity_events a JOIN lessons l ON l.id = a.lesson_id
                 WHERE l.course_id = $1)",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn table<'a>(preview: &'a Preview, name: &str) -> &'a lms_types::records::TableDiff {
    preview
        .tables
        .iter()
        .find(|t| t.schema == "public" && t.name == name)
        .unwrap_or_else(|| panic!("{name} in {preview:?}"))
}

#[tokio::test]
async fn a_preview_counts_what_a_restore_would_bring_back_lose_and_revert() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    lms_backup::demo::seed(&lms, 1).await.unwrap();
    let backup_id = backup(&engine).await;
    let (course, _) = busiest_course(&lms).await;
    let (lessons, attachments, enrollments, events) = cascade_of(&lms, course).await;
    assert!(lessons > 0 && enrollments > 0 && events > 0);
    // Since the backup: a course deleted (with its cascade), work added by
    // others, a user's name changed.
    sqlx::query("DELETE FROM courses WHERE id = $1")
        .bind(course)
        .execute(&lms)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO courses (code, title) VALUES ('NEW1', 'Written since'), ('NEW2', 'Also since');
         INSERT INTO enrollments (course_id, user_id)
           SELECT (SELECT id FROM courses WHERE code = 'NEW1'), u.id FROM users u
           WHERE u.role = 'student' ORDER BY u.id LIMIT 3;
         UPDATE users SET full_name = 'Renamed Since' WHERE id IN (SELECT id FROM users ORDER BY id LIMIT 2);",
    )
    .execute(&lms)
    .await
    .unwrap();

    let preview = preview(&engine, backup_id).await;
    assert!(
        preview.database.contains("_prepared_"),
        "{}",
        preview.database
    );
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&preview.database)
            .fetch_one(&engine.dbs().control)
            .await
            .unwrap();
    assert!(exists, "the prepared copy is kept");

    let courses = table(&preview, "courses");
    assert!(courses.keyed);
    assert_eq!((courses.added, courses.deleted, courses.changed), (2, 1, 0));
    assert_eq!(table(&preview, "lessons").deleted, lessons);
    assert_eq!(table(&preview, "lesson_attachments").deleted, attachments);
    let e = table(&preview, "enrollments");
    assert_eq!((e.added, e.deleted, e.changed), (3, enrollments, 0));
    assert_eq!(table(&preview, "activity_events").deleted, events);
    let users = table(&preview, "users");
    assert_eq!((users.added, users.deleted, users.changed), (0, 0, 2));
    assert!(
        courses.deleted_samples[0].starts_with("course “"),
        "{courses:?}"
    );
    assert!(
        users
            .changed_samples
            .iter()
            .all(|s| s.contains("Renamed Since")),
        "{users:?}"
    );
    let back = preview.would_come_back().unwrap();
    assert!(
        back.starts_with(&format!(
            "1 course, {lessons} lessons, {enrollments} enrollments"
        )),
        "{back}"
    );
    assert_eq!(
        preview.would_be_lost().unwrap(),
        "5 rows would be lost (2 courses, 3 enrollments)"
    );

    // The copy's side was summed by key ranges while it was restored, for
    // every table with a one-column integer key and natively hashed columns
    // (all the LMS's), so the comparison scanned only the live side of
    // them; a comparison that scans both sides afresh finds the same.
    let reused = copy_sums_reused(&preview.database);
    assert_eq!(reused.len(), 1, "one comparison so far");
    assert!(reused[0] >= 6, "{reused:?}");
    assert_eq!(compare_prepared_afresh(&engine).await, preview.tables);

    // One at a time: a second preview replaces the first.
    let second = self::preview(&engine, backup_id).await;
    assert_ne!(second.database, preview.database);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_database WHERE datname LIKE $1 || '\\_prepared\\_%'",
    )
    .bind(engine.dbs().lms_name())
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(left, 1, "only the newest prepared copy is kept");
    engine.discard_prepared(&actor("alice")).await.unwrap();
    assert!(engine.preview().await.unwrap().is_none());
}

#[tokio::test]
async fn a_deleted_course_comes_back_whole_and_nobody_elses_work_is_touched() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    lms_backup::demo::seed(&lms, 1).await.unwrap();
    let (course, instructor) = busiest_course(&lms).await;
    let (lessons, attachments, enrollments, events) = cascade_of(&lms, course).await;
    let at_backup = contents(&lms, "public").await;
    let backup_id = backup(&engine).await;

    // The instructor deleted the course, then the account went too.
    sqlx::query("DELETE FROM courses WHERE id = $1")
        .bind(course)
        .execute(&lms)
        .await
        .unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(instructor)
        .execute(&lms)
        .await
        .unwrap();
    // Others worked meanwhile.
    sqlx::raw_sql(
        "INSERT INTO courses (code, title) VALUES ('NEW1', 'Written since');
         UPDATE enrollments SET progress = 99 WHERE id IN (SELECT id FROM enrollments ORDER BY id LIMIT 5);",
    )
    .execute(&lms)
    .await
    .unwrap();
    let before = contents(&lms, "public").await;
    let course_seq: i64 = sqlx::query_scalar("SELECT last_value FROM courses_id_seq")
        .fetch_one(&lms)
        .await
        .unwrap();

    preview(&engine, backup_id).await;
    let plan = plan_of(&engine, request("courses", &course.to_string())).await;
    assert!(plan.blockers.is_empty(), "{plan:?}");
    let by_table: BTreeMap<&str, (i64, i64)> = plan
        .tables
        .iter()
        .map(|t| (t.name.as_str(), (t.insert, t.needed)))
        .collect();
    assert_eq!(by_table["courses"], (1, 0));
    assert_eq!(
        by_table["users"],
        (1, 1),
        "the deleted instructor is needed"
    );
    assert_eq!(by_table["lessons"].0, lessons);
    assert_eq!(by_table["lesson_attachments"].0, attachments);
    assert_eq!(by_table["activity_events"].0, events);
    // The instructor's own enrollments elsewhere are not the course's.
    assert_eq!(by_table["enrollments"].0, enrollments);
    let order: Vec<&str> = plan
        .tables
        .iter()
        .filter(|t| t.insert > 0)
        .map(|t| t.name.as_str())
        .collect();
    let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
    assert!(pos("users") < pos("courses") && pos("courses") < pos("lessons"));
    assert!(pos("lessons") < pos("activity_events"));
    assert_eq!(
        contents(&lms, "public").await,
        before,
        "a plan changes nothing"
    );

    let job = recover(&engine, request("courses", &course.to_string())).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let message = job.message.unwrap();
    assert!(message.contains("Undo recovery"), "{message}");
    // The comparison is made again: the course no longer would come back.
    let now = engine.preview().await.unwrap().unwrap();
    assert_eq!(table(&now, "courses").deleted, 0, "{now:?}");
    assert_eq!(table(&now, "lessons").deleted, 0);

    // Byte for byte: the live rows as they were, plus exactly the backup's
    // rows of the course and its instructor.
    let after = contents(&lms, "public").await;
    let came_back = added(&before, &after);
    for (t, rows) in &came_back {
        for row in rows {
            assert!(at_backup[t].contains(row), "{t}: {row} is not the backup's");
        }
    }
    for (t, rows) in &before {
        assert!(
            after[t].is_superset(rows),
            "{t}: a live row changed or went"
        );
    }
    assert_eq!(came_back["courses"].len(), 1);
    assert_eq!(came_back["users"].len(), 1);
    assert_eq!(came_back["lessons"].len() as i64, lessons);
    assert_eq!(came_back["enrollments"].len() as i64, enrollments);
    assert_eq!(came_back["activity_events"].len() as i64, events);
    let seq_now: i64 = sqlx::query_scalar("SELECT last_value FROM courses_id_seq")
        .fetch_one(&lms)
        .await
        .unwrap();
    assert_eq!(seq_now, course_seq, "no sequence moves back or needlessly");
    // The application can go on inserting.
    sqlx::query("INSERT INTO courses (code, title) VALUES ('NEW2', 'after the recovery')")
        .execute(&lms)
        .await
        .unwrap();

    // Undo refused while a recovered row has changed since.
    let title: String = sqlx::query_scalar("SELECT title FROM courses WHERE id = $1")
        .bind(course)
        .fetch_one(&lms)
        .await
        .unwrap();
    sqlx::query("UPDATE courses SET title = 'edited after recovery' WHERE id = $1")
        .bind(course)
        .execute(&lms)
        .await
        .unwrap();
    let refused = undo(&engine).await;
    assert_eq!(refused.status, JobStatus::Failed);
    let why = refused.message.unwrap();
    assert!(why.contains("changed since it was recovered"), "{why}");
    assert!(
        why.contains("edited after recovery"),
        "names the row: {why}"
    );
    sqlx::query("UPDATE courses SET title = $2 WHERE id = $1")
        .bind(course)
        .bind(&title)
        .execute(&lms)
        .await
        .unwrap();
    sqlx::query("DELETE FROM courses WHERE code = 'NEW2'")
        .execute(&lms)
        .await
        .unwrap();

    let undo = undo(&engine).await;
    assert_eq!(undo.status, JobStatus::Succeeded, "{undo:?}");
    assert_eq!(
        contents(&lms, "public").await,
        before,
        "exactly the recovered rows went"
    );
    let records = engine.recoveries(10).await.unwrap();
    assert!(records[0].undone_at.is_some());
}

#[tokio::test]
async fn a_unique_value_taken_since_blocks_the_plan_and_nothing_changes() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    lms_backup::demo::seed(&lms, 1).await.unwrap();
    let backup_id = backup(&engine).await;
    let (course, _) = busiest_course(&lms).await;
    let code: String = sqlx::query_scalar("SELECT code FROM courses WHERE id = $1")
        .bind(course)
        .fetch_one(&lms)
        .await
        .unwrap();
    sqlx::query("DELETE FROM courses WHERE id = $1")
        .bind(course)
        .execute(&lms)
        .await
        .unwrap();
    sqlx::query("INSERT INTO courses (code, title) VALUES ($1, 'Took the code')")
        .bind(&code)
        .execute(&lms)
        .await
        .unwrap();
    let before = contents(&lms, "public").await;
    preview(&engine, backup_id).await;
    let plan = plan_of(&engine, request("public.courses", &format!("id={course}"))).await;
    assert_eq!(plan.blockers.len(), 1, "{plan:?}");
    let blocker = &plan.blockers[0];
    assert_eq!(blocker.table, "public.courses");
    assert!(blocker.reason.contains(&code), "{blocker:?}");
    assert!(
        blocker.reason.contains("Took the code"),
        "names the live row: {blocker:?}"
    );
    assert!(!plan.can_run());

    let job = recover(&engine, request("courses", &course.to_string())).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.message.unwrap().contains("blocked"));
    assert_eq!(contents(&lms, "public").await, before);

    // A key the backup does not hold, a table it does not have.
    let none = engine
        .plan_recovery(&request("courses", "999999"), &actor("alice"))
        .await
        .unwrap_err();
    assert!(
        none.to_string()
            .contains("holds no public.courses row with id=999999"),
        "{none}"
    );
    let nothing = engine
        .plan_recovery(&request("nonsense", "1"), &actor("alice"))
        .await
        .unwrap_err();
    assert!(
        nothing.to_string().contains("no table \"nonsense\""),
        "{nothing}"
    );
}

/// A schema the LMS tests did not design: composite keys, a self-reference,
/// a table without a primary key, a deferred constraint, a generated
/// column, an identity column, a trigger.
const SHOP: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.customers (
    region TEXT NOT NULL,
    number INT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    PRIMARY KEY (region, number)
);
CREATE TABLE shop.orders (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region TEXT NOT NULL,
    customer INT NOT NULL,
    placed_at TIMESTAMPTZ NOT NULL,
    net NUMERIC(10, 2) NOT NULL,
    gross NUMERIC(10, 2) GENERATED ALWAYS AS (net * 1.2) STORED,
    tags TEXT[] NOT NULL DEFAULT '{}',
    FOREIGN KEY (region, customer) REFERENCES shop.customers ON DELETE CASCADE
);
CREATE TABLE shop.lines (
    order_id BIGINT NOT NULL REFERENCES shop.orders ON DELETE CASCADE
        DEFERRABLE INITIALLY DEFERRED,
    line INT NOT NULL,
    sku TEXT NOT NULL,
    qty INT NOT NULL CHECK (qty > 0),
    -- A line can replace another of the same order.
    replaces INT,
    PRIMARY KEY (order_id, line),
    FOREIGN KEY (order_id, replaces) REFERENCES shop.lines (order_id, line) ON DELETE CASCADE
);
-- No primary key: an append-only log.
CREATE TABLE shop.order_notes (
    order_id BIGINT NOT NULL REFERENCES shop.orders ON DELETE CASCADE,
    note TEXT NOT NULL,
    blob BYTEA
);
CREATE TABLE shop.audit (id SERIAL PRIMARY KEY, what TEXT NOT NULL);
CREATE FUNCTION shop.log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shop.audit (what) VALUES ('order ' || NEW.id || ' ' || TG_OP);
    RETURN NEW;
END $$;
CREATE TRIGGER orders_logged AFTER INSERT ON shop.orders
    FOR EACH ROW EXECUTE FUNCTION shop.log_order();
INSERT INTO shop.customers VALUES ('eu', 1, 'Ada'), ('eu', 2, 'Grace'), ('us', 1, 'Alan');
INSERT INTO shop.orders (region, customer, placed_at, net, tags) VALUES
    ('eu', 1, '2026-11-01 10:00:00.123456+00', 10.50, '{gift}'),
    ('eu', 1, '2026-11-02 11:00:00+00', 99.99, '{}'),
    ('eu', 2, '2026-11-03 12:00:00+00', 5.00, '{rush,"with space"}');
INSERT INTO shop.lines VALUES (1, 1, 'A-1', 2, NULL), (1, 2, 'B-2', 1, 1), (1, 3, 'C-3', 4, 2),
    (2, 1, 'A-1', 1, NULL), (3, 1, 'Z-9', 7, NULL);
INSERT INTO shop.order_notes VALUES (1, 'leave at the door', '\x00ff10'), (1, 'leave at the door', '\x00ff10'),
    (2, 'fragile', NULL);
"#;

#[tokio::test]
async fn a_schema_nobody_designed_for_it_recovers_and_undoes_exactly() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    sqlx::raw_sql(SHOP).execute(&lms).await.unwrap();
    let at_backup = contents(&lms, "shop").await;
    let backup_id = backup(&engine).await;

    // The customer deleted, with their orders, lines and notes.
    sqlx::query("DELETE FROM shop.customers WHERE region = 'eu' AND number = 1")
        .execute(&lms)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO shop.orders (region, customer, placed_at, net) VALUES ('us', 1, now(), 1)",
    )
    .execute(&lms)
    .await
    .unwrap();
    // The identity behind the recovered keys (as after a restore of an
    // older backup): the recovery must move it forward.
    sqlx::query("SELECT setval(pg_get_serial_sequence('shop.orders', 'id'), 1)")
        .execute(&lms)
        .await
        .unwrap();
    let before = contents(&lms, "shop").await;

    let preview = preview(&engine, backup_id).await;
    let diff = |name: &str| {
        preview
            .tables
            .iter()
            .find(|t| t.schema == "shop" && t.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(diff("lines").deleted, 4);
    assert_eq!((diff("orders").added, diff("orders").deleted), (1, 2));
    let notes = diff("order_notes");
    assert!(!notes.keyed, "compared by count and hash: {notes:?}");
    assert!(notes.differs);
    assert_eq!((notes.live_rows, notes.copy_rows), (Some(0), Some(3)));

    let plan = plan_of(&engine, request("shop.customers", "region=eu,number=1")).await;
    assert!(plan.blockers.is_empty(), "{plan:?}");
    let by_table: BTreeMap<&str, i64> = plan
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.insert))
        .collect();
    assert_eq!(by_table["customers"], 1);
    assert_eq!(by_table["orders"], 2);
    assert_eq!(by_table["lines"], 4);
    // Two identical notes (no key tells them apart) come back as two.
    assert_eq!(by_table["order_notes"], 3);
    let composite = engine
        .plan_recovery(&request("shop.customers", "eu"), &actor("alice"))
        .await
        .unwrap_err();
    assert!(
        composite.to_string().contains("region=…,number=…"),
        "{composite}"
    );

    let job = recover(&engine, request("shop.customers", "number=1,region=eu")).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let after = contents(&lms, "shop").await;
    for (t, rows) in &before {
        if t == "audit" {
            continue;
        }
        assert!(
            after[t].is_superset(rows),
            "{t}: a live row changed or went"
        );
    }
    let came_back = added(&before, &after);
    for t in ["customers", "orders", "lines", "order_notes"] {
        for row in &came_back[t] {
            assert!(
                at_backup[t].contains(row),
                "{t}: {row} differs from the backup"
            );
        }
    }
    assert_eq!(
        came_back["orders"].len(),
        2,
        "identity and generated columns as they were"
    );
    assert_eq!(came_back["lines"].len(), 4);
    // The trigger ran for the inserted orders, as the application's would.
    assert_eq!(came_back["audit"].len(), 2, "{came_back:?}");
    // The identity moved past the recovered keys (1 and 2), and no further.
    let identity: i64 = sqlx::query_scalar("SELECT last_value FROM shop.orders_id_seq")
        .fetch_one(&lms)
        .await
        .unwrap();
    assert_eq!(identity, 2);

    let undo = undo(&engine).await;
    assert_eq!(undo.status, JobStatus::Succeeded, "{undo:?}");
    let undone = contents(&lms, "shop").await;
    for t in ["customers", "orders", "lines", "order_notes"] {
        assert_eq!(undone[t], before[t], "{t}");
    }
}

#[tokio::test]
async fn switching_to_the_prepared_copy_restores_without_a_second_restore_and_can_be_undone() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    lms_backup::demo::seed(&lms, 1).await.unwrap();
    let at_backup = contents(&lms, "public").await;
    let backup_id = backup(&engine).await;
    sqlx::query("DELETE FROM courses WHERE id IN (SELECT id FROM courses ORDER BY id LIMIT 2)")
        .execute(&lms)
        .await
        .unwrap();
    let changed = contents(&lms, "public").await;
    let copy = preview(&engine, backup_id).await.database;

    let refused = engine
        .start_switch_to_prepared(false, &actor("alice"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Confirm"), "{refused}");
    let job = engine
        .start_switch_to_prepared(true, &actor("alice"))
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.backup_id, Some(backup_id));
    assert!(job.message.unwrap().contains("maintenance for"));
    // The live database is the copy now (a pool opened afresh sees it).
    let live = sqlx::PgPool::connect_with(engine.dbs().lms_options.clone())
        .await
        .unwrap();
    assert_eq!(contents(&live, "public").await, at_backup);
    live.close().await;
    assert!(engine.prepared_copy().await.unwrap().is_none());
    let gone: bool =
        sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&copy)
            .fetch_one(&engine.dbs().control)
            .await
            .unwrap();
    assert!(gone, "the copy became the live database");

    let undo = engine.start_undo(true, &actor("alice")).await.unwrap();
    let undo = wait_for_job(&engine, undo.id).await;
    assert_eq!(undo.status, JobStatus::Succeeded, "{undo:?}");
    let live = sqlx::PgPool::connect_with(engine.dbs().lms_options.clone())
        .await
        .unwrap();
    assert_eq!(
        contents(&live, "public").await,
        changed,
        "undone like a restore"
    );
    live.close().await;
}

#[tokio::test]
async fn an_unused_prepared_copy_is_dropped_and_start_up_drops_orphans_only() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    sqlx::query("INSERT INTO courses (code, title) VALUES ('ONE', 'one')")
        .execute(&lms)
        .await
        .unwrap();
    let backup_id = backup(&engine).await;
    let copy = preview(&engine, backup_id).await;
    let exists = async |name: &str| -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&engine.dbs().control)
            .await
            .unwrap()
    };
    // A preview killed half-way left a copy no record names.
    let orphan = format!("{}_prepared_000000000000", engine.dbs().lms_name());
    sqlx::query(&format!("CREATE DATABASE \"{orphan}\""))
        .execute(&engine.dbs().control)
        .await
        .unwrap();
    engine.recover().await.unwrap();
    assert!(!exists(&orphan).await, "the orphan is dropped at start-up");
    assert!(exists(&copy.database).await, "the recorded copy is kept");

    let now = chrono::Utc::now();
    assert!(
        !engine.drop_idle_prepared_copy(now).await.unwrap(),
        "still fresh"
    );
    let later = copy.expires_at + chrono::Duration::seconds(1);
    assert!(engine.drop_idle_prepared_copy(later).await.unwrap());
    assert!(!exists(&copy.database).await);
    assert!(engine.preview().await.unwrap().is_none());
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'restore.discard' AND actor_name = $1",
    )
    .bind(lms_backup::restore::prepared::IDLE_ACTOR)
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn a_check_the_live_database_added_since_blocks_the_plan_naming_the_row() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    sqlx::raw_sql(
        "INSERT INTO courses (code, title) VALUES ('OLD', 'an old course');
         INSERT INTO lessons (course_id, position, title, duration_minutes)
           SELECT id, 1, 'a very long lesson', 240 FROM courses WHERE code = 'OLD';",
    )
    .execute(&lms)
    .await
    .unwrap();
    let backup_id = backup(&engine).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM courses WHERE code = 'OLD'")
        .fetch_one(&lms)
        .await
        .unwrap();
    sqlx::raw_sql(
        "DELETE FROM courses WHERE code = 'OLD';
         ALTER TABLE lessons ADD CONSTRAINT lessons_short CHECK (duration_minutes <= 120);",
    )
    .execute(&lms)
    .await
    .unwrap();
    preview(&engine, backup_id).await;
    let plan = plan_of(&engine, request("courses", &id.to_string())).await;
    assert_eq!(plan.blockers.len(), 1, "{plan:?}");
    let blocker = &plan.blockers[0];
    assert_eq!(blocker.table, "public.lessons");
    assert!(blocker.reason.contains("lessons_short"), "{blocker:?}");
    assert!(
        blocker.row.contains("a very long lesson"),
        "the row is named: {blocker:?}"
    );
    let courses: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&lms)
        .await
        .unwrap();
    assert_eq!(courses, 0, "the trial changed nothing");
}

#[tokio::test]
async fn rows_are_told_apart_by_any_kind_of_key_in_a_table_of_thousands() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    // A text key (hashed into buckets) and a bigint key far from zero
    // (ranges of keys), thousands of rows each: only the buckets that
    // differ are read again, key by key.
    sqlx::raw_sql(
        "CREATE TABLE tags (name TEXT PRIMARY KEY, uses INT NOT NULL);
         INSERT INTO tags SELECT 'tag-' || g, g FROM generate_series(1, 5000) g;
         CREATE TABLE readings (id BIGINT PRIMARY KEY, value DOUBLE PRECISION NOT NULL);
         INSERT INTO readings SELECT 9000000000000 + g * 7, g / 3.0 FROM generate_series(1, 5000) g;
         CREATE TABLE offsets (id INT PRIMARY KEY, note TEXT NOT NULL);
         INSERT INTO offsets SELECT g, 'n' || g FROM generate_series(-3000, 3000) g;
         ANALYZE tags; ANALYZE readings; ANALYZE offsets;",
    )
    .execute(&lms)
    .await
    .unwrap();
    let backup_id = backup(&engine).await;
    sqlx::raw_sql(
        "DELETE FROM tags WHERE name IN ('tag-10', 'tag-4000');
         UPDATE tags SET uses = -1 WHERE name IN ('tag-1', 'tag-2500', 'tag-4999');
         INSERT INTO tags VALUES ('brand new', 1);
         DELETE FROM readings WHERE id = 9000000000000 + 7 * 77;
         UPDATE readings SET value = 0.5 WHERE id = 9000000000000 + 7 * 4321;
         INSERT INTO readings VALUES (9000000000000 + 7 * 5001, 1), (9000000000000 + 7 * 5002, 2);
         DELETE FROM offsets WHERE id IN (-3000, -1, 0, 3000);
         UPDATE offsets SET note = 'since' WHERE id IN (-2999, -32, 31);
         INSERT INTO offsets VALUES (-3001, 'below');",
    )
    .execute(&lms)
    .await
    .unwrap();
    let preview = preview(&engine, backup_id).await;
    let tags = table(&preview, "tags");
    assert_eq!(
        (tags.added, tags.deleted, tags.changed),
        (1, 2, 3),
        "{tags:?}"
    );
    assert_eq!(tags.recoverable.len(), 2);
    assert!(
        tags.recoverable.iter().any(|r| r.key == "tag-4000"),
        "{tags:?}"
    );
    let readings = table(&preview, "readings");
    assert_eq!(
        (readings.added, readings.deleted, readings.changed),
        (2, 1, 1),
        "{readings:?}"
    );
    assert_eq!(
        readings.recoverable[0].key,
        (9000000000000i64 + 7 * 77).to_string()
    );
    // Keys below zero, and past the end of the live keys (the ranges the
    // copy was summed by were planned from the live keys).
    let offsets = table(&preview, "offsets");
    assert_eq!(
        (offsets.added, offsets.deleted, offsets.changed),
        (1, 4, 3),
        "{offsets:?}"
    );
    let back: Vec<&str> = offsets.recoverable.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(back, ["-1", "-3000", "0", "3000"], "{offsets:?}");
    // Readings and offsets were compared against the sums made while the
    // copy was restored, tags (a text key) by scanning both sides; all
    // alike when both sides are scanned afresh.
    assert!(copy_sums_reused(&preview.database)[0] >= 2);
    assert_eq!(compare_prepared_afresh(&engine).await, preview.tables);
}

#[tokio::test]
async fn a_large_tables_live_side_is_summed_in_two_halves_of_one_snapshot() {
    let engine = spawn_engine().await;
    let lms = engine.dbs().lms.clone();
    // Rows of about 1,900 bytes, stored as they are (under the size from
    // which PostgreSQL compresses a row): four a block, so 6,000 rows make
    // a table past the size from which the comparison sums the live side
    // in two halves when the copy's side was summed while it was restored.
    sqlx::raw_sql(
        "CREATE TABLE pages (id BIGINT PRIMARY KEY, body TEXT NOT NULL);
         INSERT INTO pages SELECT g, rpad(md5(g::text), 1900, md5((g * 7)::text))
           FROM generate_series(1, 6000) g;
         ANALYZE pages;",
    )
    .execute(&lms)
    .await
    .unwrap();
    let blocks: i64 = sqlx::query_scalar("SELECT pg_relation_size('pages') / 8192")
        .fetch_one(&lms)
        .await
        .unwrap();
    assert!(blocks >= 1024, "{blocks} blocks");
    let backup_id = backup(&engine).await;
    // Changes in both halves of the table's blocks, and past its end.
    sqlx::raw_sql(
        "DELETE FROM pages WHERE id IN (1, 3000, 6000);
         UPDATE pages SET body = 'since' WHERE id IN (2, 5999);
         INSERT INTO pages VALUES (6001, 'new');",
    )
    .execute(&lms)
    .await
    .unwrap();
    let preview = preview(&engine, backup_id).await;
    let pages = table(&preview, "pages");
    assert_eq!(
        (pages.added, pages.deleted, pages.changed),
        (1, 3, 2),
        "{pages:?}"
    );
    assert_eq!(pages.live_rows, Some(5998));
    assert_eq!(pages.copy_rows, Some(6000));
    assert!(copy_sums_reused(&preview.database)[0] >= 1);
    assert_eq!(compare_prepared_afresh(&engine).await, preview.tables);
}
