//! A restore gives back exactly what was backed up, for the kinds of objects
//! real schemas hold: several schemas, NULLs, unicode, bytea, jsonb, arrays,
//! enums, sequences, views, functions, triggers, partitioned tables and
//! foreign keys, with their owners, privileges and comments.

use lms_backup::postgres::fingerprint::{self, Fingerprint};
use lms_backup::testing::{
    actor, live_fingerprint, spawn_engine, start_manual_backup, wait_for_job,
};
use lms_backup::Engine;
use lms_types::JobStatus;
use sqlx::Connection;

const SCHEMA: &str = r#"
CREATE SCHEMA extra;
CREATE TYPE extra.mood AS ENUM ('happy', 'sad', 'naïve');
CREATE TABLE extra.things (
    id serial PRIMARY KEY, name text, mood extra.mood, data jsonb, blob bytea,
    tags text[], note text, at timestamptz DEFAULT now(),
    loose json, spot point, moods extra.mood[], amount numeric(12, 2)
);
INSERT INTO extra.things (name, mood, data, blob, tags, note, loose, spot, moods, amount) VALUES
    ('plain', 'happy', '{"a": 1, "b": [1, 2]}', '\x00ff10', ARRAY['x', 'y'], NULL,
     '{"b": 1,  "a": 2}', '(1,2)', ARRAY['happy', 'sad']::extra.mood[], 1.50),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('ünïcødé 🚀 ‏שלום', 'naïve', '{"emoji": "🎓"}', '\x', ARRAY[]::text[], E'tab\tnew\nline',
     '[]', '(0,0)', '{}', 0),
    ('twin', 'sad', '{}', '\x01', ARRAY['dup'], 'same', 'null', '(3,4)', '{sad}', 2),
    ('twin', 'sad', '{}', '\x01', ARRAY['dup'], 'same', 'null', '(3,4)', '{sad}', 2);
CREATE TABLE extra.child (id serial PRIMARY KEY, thing_id int NOT NULL REFERENCES extra.things (id));
INSERT INTO extra.child (thing_id) SELECT id FROM extra.things;
CREATE TABLE extra.sales (id int, region text, amount numeric(12, 2)) PARTITION BY LIST (region);
CREATE TABLE extra.sales_eu PARTITION OF extra.sales FOR VALUES IN ('eu');
CREATE TABLE extra.sales_us PARTITION OF extra.sales FOR VALUES IN ('us');
INSERT INTO extra.sales SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g * 1.25 FROM generate_series(1, 500) g;
CREATE VIEW extra.happy_things AS SELECT id, name FROM extra.things WHERE mood = 'happy';
CREATE FUNCTION extra.shout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := upper(coalesce(NEW.note, '')); RETURN NEW; END $$;
CREATE TRIGGER things_shout BEFORE UPDATE ON extra.things FOR EACH ROW EXECUTE FUNCTION extra.shout();
CREATE SEQUENCE extra.counter START 100;
SELECT nextval('extra.counter'), nextval('extra.counter'), nextval('extra.counter');
GRANT USAGE ON SCHEMA extra TO PUBLIC;
GRANT SELECT ON extra.happy_things TO PUBLIC;
GRANT SELECT (id, name), UPDATE (note) ON extra.things TO PUBLIC;
REVOKE ALL ON FUNCTION extra.shout() FROM PUBLIC;
GRANT USAGE ON SEQUENCE extra.counter TO PUBLIC;
COMMENT ON TABLE extra.things IS 'things, with care';
"#;

const CHANGES: &str = r#"
UPDATE extra.things SET note = 'changed' WHERE name = 'plain';
DELETE FROM extra.child WHERE id = 1;
INSERT INTO extra.sales VALUES (9999, 'eu', 1);
DROP VIEW extra.happy_things;
ALTER TABLE extra.things ADD COLUMN added int;
SELECT setval('extra.counter', 5000);
CREATE TABLE extra.newcomer (id int);
REVOKE ALL ON extra.things FROM PUBLIC;
GRANT EXECUTE ON FUNCTION extra.shout() TO PUBLIC;
COMMENT ON TABLE extra.things IS NULL;
"#;

async fn run_sql(engine: &Engine, sql: &str) {
    let mut conn = sqlx::PgConnection::connect_with(&engine.dbs().lms_options)
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
}

/// `pg_dump --schema-only` of the live database (owners and privileges
/// included), without the lines that
/// differ between any two runs (version banner, per-run `\restrict` keys).
async fn schema_dump(engine: &Engine) -> String {
    let url = lms_backup::testing::test_server_url();
    let (base, _) = url.rsplit_once('/').unwrap();
    let out = tokio::process::Command::new(&engine.tools().pg_dump)
        .args(["--schema-only", "--dbname"])
        .arg(format!("{base}/{}", engine.dbs().lms_name()))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("-- Dumped")
                && !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn restore_gives_back_data_schema_and_sequences_exactly() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    run_sql(&engine, SCHEMA).await;
    let before = live_fingerprint(&engine).await;
    let schema_before = schema_dump(&engine).await;
    assert!(
        before
            .tables
            .iter()
            .any(|t| t.name == "sales" && t.rows == 500),
        "partitions counted through their parent"
    );

    let who = actor("alice");
    let started = start_manual_backup(&engine, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, started.job.id).await.status,
        JobStatus::Succeeded
    );

    run_sql(&engine, CHANGES).await;
    assert!(!before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    assert!(
        schema_dump(&engine).await != schema_before,
        "the schema did change"
    );

    let job = engine
        .start_restore(started.backup.id, true, &who)
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");

    let after = live_fingerprint(&engine).await;
    assert!(
        before.differences(&after).is_empty(),
        "{:?}",
        before.differences(&after)
    );
    assert_eq!(
        before.sequences, after.sequences,
        "every sequence where it was"
    );
    let schema_after = schema_dump(&engine).await;
    let first_difference = schema_before
        .lines()
        .zip(schema_after.lines())
        .find(|(a, b)| a != b);
    assert_eq!(first_difference, None, "the schema is exactly as it was");
    assert_eq!(schema_before.lines().count(), schema_after.lines().count());
}

/// Whatever a column's type, changing one value changes the table's hash:
/// natively hashed types, types hashed through their text (enums, json,
/// point, enum arrays) and NULLs alike.
#[tokio::test]
async fn one_changed_value_of_any_type_is_noticed() {
    let engine = spawn_engine().await;
    run_sql(&engine, SCHEMA).await;
    let before = live_fingerprint(&engine).await;
    assert!(
        before
            .tables
            .iter()
            .all(|t| t.method == fingerprint::HashMethod::Columns),
        "new fingerprints hash column by column"
    );
    for change in [
        "UPDATE extra.things SET mood = 'sad' WHERE name = 'plain'",
        "UPDATE extra.things SET loose = '{\"b\": 1, \"a\": 2}' WHERE name = 'plain'",
        "UPDATE extra.things SET spot = '(2,1)' WHERE name = 'plain'",
        "UPDATE extra.things SET moods = '{sad,happy}' WHERE name = 'plain'",
        "UPDATE extra.things SET blob = '\\x00ff11' WHERE name = 'plain'",
        "UPDATE extra.things SET tags = NULL WHERE name = 'plain'",
        "UPDATE extra.things SET amount = 1.51 WHERE name = 'plain'",
        "UPDATE extra.things SET data = '{\"a\": 1, \"b\": [2, 1]}' WHERE name = 'plain'",
    ] {
        let mut conn = sqlx::PgConnection::connect_with(&engine.dbs().lms_options)
            .await
            .unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::raw_sql(change).execute(&mut *tx).await.unwrap();
        let tables = fingerprint::list_tables(&mut tx).await.unwrap();
        let changed = fingerprint::fingerprint(&mut tx, &tables).await.unwrap();
        let diffs = before.differences(&changed);
        assert_eq!(
            diffs,
            vec!["table extra.things has different contents".to_owned()],
            "{change}"
        );
        tx.rollback().await.unwrap();
    }
    assert!(before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
}

/// Manifests written before the per-column hash (no `method`: the row's
/// text) are still checked the way they were computed.
#[tokio::test]
async fn fingerprints_of_older_manifests_are_recomputed_their_way() {
    let engine = spawn_engine().await;
    run_sql(&engine, SCHEMA).await;
    let mut old = live_fingerprint(&engine).await;
    for t in &mut old.tables {
        let mut json = serde_json::to_value(&*t).unwrap();
        json.as_object_mut().unwrap().remove("method");
        *t = serde_json::from_value(json).unwrap();
        assert_eq!(t.method, fingerprint::HashMethod::Text);
        t.hash = sqlx::query_scalar(&format!(
            "SELECT coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text FROM \"{}\".\"{}\" AS t",
            t.schema, t.name
        ))
        .fetch_one(&engine.dbs().lms)
        .await
        .unwrap();
    }
    let tables = fingerprint::list_tables(&mut engine.dbs().lms.acquire().await.unwrap())
        .await
        .unwrap();
    let again = fingerprint::fingerprint_quiescent(&engine.dbs().lms, &tables, Some(&old), 2)
        .await
        .unwrap();
    assert!(
        old.differences(&again).is_empty(),
        "{:?}",
        old.differences(&again)
    );
    let things = |f: &Fingerprint| {
        f.tables
            .iter()
            .find(|t| t.name == "things")
            .unwrap()
            .hash
            .clone()
    };
    assert_ne!(
        things(&old),
        things(&live_fingerprint(&engine).await),
        "the two methods differ"
    );
}
