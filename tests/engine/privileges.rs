//! What a restore may change, and what it keeps.
//!
//! - An archive is code: functions called by a CHECK constraint, an index
//!   expression, a materialized view, a row-security policy, a default or a
//!   trigger run while the copy is built and read. Archives made here try to
//!   take the live site down, write to the control database, change the
//!   application role and rename the database kept for undo; after a failed
//!   and after a successful restore all of it is exactly as before.
//! - Privileges and the database's own settings survive a restore; an archive
//!   that grants to roles this server lacks is refused before anything
//!   changes.
//! - The copy is stopped when it grows past the free space; the
//!   write-ahead log the restore writes is counted; a disk that cannot be
//!   seen is said in the job, not passed over.

use std::collections::BTreeMap;

use lms_backup::testing::{
    actor, fresh_database_url, live_fingerprint, spawn_engine, spawn_engine_with,
    start_manual_backup, superuser_url, test_server_url, wait_for_job,
};
use lms_backup::{catalog, Engine};
use lms_types::JobStatus;
use sqlx::{Connection, PgConnection, Row};

async fn su() -> PgConnection {
    PgConnection::connect(&superuser_url()).await.unwrap()
}

fn url_of(database: &str) -> String {
    let server = test_server_url();
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{database}")
}

fn su_url_of(database: &str) -> String {
    let server = superuser_url();
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{database}")
}

async fn exec(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn backup(engine: &Engine) -> i64 {
    let started = start_manual_backup(engine, &actor("alice")).await.unwrap();
    let job = wait_for_job(engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    started.backup.id
}

async fn restore(engine: &Engine, backup_id: i64) -> lms_backup::jobs::Job {
    let job = engine
        .start_restore(backup_id, true, &actor("alice"))
        .await
        .unwrap();
    wait_for_job(engine, job.id).await
}

/// A custom-format dump of `database` (as the superuser), uploaded.
async fn upload_dump_of(engine: &Engine, database: &str) -> i64 {
    let file = lms_backup::testing::scratch_dir("hostile").join("archive.dump");
    let out = tokio::process::Command::new(&engine.tools().pg_dump)
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&file)
        .arg(format!("--dbname={}", su_url_of(database)))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&file).unwrap();
    engine
        .import_upload(
            std::io::Cursor::new(bytes.clone()),
            Some(bytes.len() as u64),
            None,
            &actor("alice"),
        )
        .await
        .unwrap()
        .id
}

/// Everything about a database outside its contents but its name:
/// owner, whether it takes connections, limit, ACL, comment, settings.
async fn database_props(name: &str) -> String {
    let mut su = su().await;
    let row = sqlx::query(
        "SELECT datdba::regrole::text, datallowconn, datconnlimit, datistemplate,
                datacl::text, shobj_description(oid, 'pg_database') AS comment,
                (SELECT string_agg(coalesce(s.setrole::regrole::text, '*') || ':' ||
                                   array_to_string(s.setconfig, ','), ';' ORDER BY 1)
                 FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings
         FROM pg_database d WHERE datname = $1",
    )
    .bind(name)
    .fetch_optional(&mut su)
    .await
    .unwrap()
    .unwrap_or_else(|| panic!("database {name} exists"));
    format!(
        "owner {:?}, connections {:?}, limit {:?}, template {:?}, acl {:?}, comment {:?}, settings {:?}",
        row.get::<String, _>(0),
        row.get::<bool, _>(1),
        row.get::<i32, _>(2),
        row.get::<bool, _>(3),
        row.get::<Option<String>, _>(4),
        row.get::<Option<String>, _>(5),
        row.get::<Option<String>, _>(6),
    )
}

/// A plain dump of a database's contents (schema, data, privileges),
/// without the lines that differ between runs.
async fn database_dump(engine: &Engine, name: &str) -> String {
    database_dump_with(engine, name, &[]).await
}

/// [`database_dump`] with more pg_dump arguments.
async fn database_dump_with(engine: &Engine, name: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(&engine.tools().pg_dump)
        .args(args)
        .arg(format!("--dbname={}", su_url_of(name)))
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

/// The contents of a database kept for undo, which takes no connections:
/// opened for the dump and closed again, as the superuser.
async fn kept_database_dump(engine: &Engine, name: &str) -> String {
    let mut su = su().await;
    let alter = |allow: bool| format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allow}");
    sqlx::raw_sql(&alter(true)).execute(&mut su).await.unwrap();
    let dump = database_dump(engine, name).await;
    sqlx::raw_sql(&alter(false)).execute(&mut su).await.unwrap();
    dump
}

/// The control database's contents but for what a restore writes by
/// design: its job, the lock it holds, its audit entry, the sessions it
/// ends, and (first restore of an upload) the tables it found in the
/// backup's manifest. That is every object, privilege, comment and
/// function, the data of every other table (users, schedules, tokens,
/// settings), and every catalog row but those manifest entries.
async fn control_dump(engine: &Engine) -> String {
    let control = engine.dbs().control_options.get_database().unwrap();
    let mut args = vec![];
    for table in [
        "jobs",
        "operation_lock",
        "audit_log",
        "backup_history",
        "tower_sessions.*",
    ] {
        args.push("--exclude-table-data");
        args.push(table);
    }
    let dump = database_dump_with(engine, control, &args).await;
    let dump: Vec<_> = dump
        .lines()
        .filter(|l| !l.starts_with("SELECT pg_catalog.setval('public.audit_log_id_seq'"))
        .collect();
    let catalog: Vec<String> = sqlx::query_scalar(
        "SELECT (to_jsonb(b) - 'manifest')::text || ' ' || coalesce((b.manifest - 'tables' - 'sequences')::text, '-')
         FROM backup_history b ORDER BY id",
    )
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap();
    format!("{}\n-- catalog\n{}", dump.join("\n"), catalog.join("\n"))
}

/// Every attribute, membership, password and setting (everywhere, or in
/// `databases`) of the roles a restore could reach: the application role,
/// the restore role, the built-in roles and the superuser. (Roles other
/// tests make and change meanwhile are left out, and so are the other
/// tests' restore roles the application role is a member of.)
async fn roles_state(keep: &[&str], databases: &[&str]) -> BTreeMap<String, String> {
    let mut su = su().await;
    let rows = sqlx::query(
        "SELECT a.rolname::text,
                concat_ws('|', a.rolsuper, a.rolinherit, a.rolcreaterole, a.rolcreatedb,
                  a.rolcanlogin, a.rolreplication, a.rolbypassrls, a.rolconnlimit,
                  a.rolpassword, a.rolvaliduntil,
                  (SELECT string_agg(m.roleid::regrole::text || '/' || m.admin_option, ',' ORDER BY 1)
                   FROM pg_auth_members m
                   WHERE m.member = a.oid
                     AND (m.roleid::regrole::text NOT LIKE 'restore\\_%' OR m.roleid::regrole::text = ANY($1))),
                  (SELECT string_agg(coalesce(d.datname, '*') || ':' || array_to_string(s.setconfig, ','), ';' ORDER BY 1)
                   FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
                   WHERE s.setrole = a.oid AND (s.setdatabase = 0 OR d.datname = ANY($2))),
                  shobj_description(a.oid, 'pg_authid'))
         FROM pg_authid a
         WHERE a.rolname = ANY($1) OR a.rolname LIKE 'pg\\_%' OR a.rolname = current_user
            OR a.rolname = 'intruder'",
    )
    .bind(keep)
    .bind(databases)
    .fetch_all(&mut su)
    .await
    .unwrap();
    rows.into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

/// Databases whose names start like the LMS database's.
async fn databases_named_like(engine: &Engine) -> Vec<String> {
    sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY 1")
        .bind(format!("{}%", engine.dbs().lms_name()))
        .fetch_all(&engine.dbs().lms)
        .await
        .unwrap()
}

/// A database holding an archive's worth of traps. Each function does its
/// harm only in a restore's copy (never where the archive is made), tries
/// every change it can and swallows the errors, so a restore succeeds when
/// the changes are refused; `event_trigger` adds one the restore role cannot
/// create, so the restore fails at the very end (and a change of the restore
/// role's own password, which would make it fail anyway).
async fn hostile_database(engine: &Engine, kept: &str, event_trigger: bool) -> String {
    let url = fresh_database_url().await;
    let name = url.rsplit_once('/').unwrap().1.to_owned();
    let live = engine.dbs().lms_name();
    let control = engine.dbs().control_options.get_database().unwrap();
    let app = engine.dbs().lms_options.get_username();
    let mut attempts = vec![
        format!("ALTER DATABASE \"{live}\" ALLOW_CONNECTIONS false"),
        format!("ALTER DATABASE \"{live}\" SET statement_timeout = 1"),
        format!("COMMENT ON DATABASE \"{control}\" IS 'owned'"),
        format!("COMMENT ON DATABASE \"{live}\" IS 'owned'"),
        format!("ALTER ROLE \"{app}\" SET work_mem = '64kB'"),
        format!("ALTER ROLE \"{app}\" PASSWORD 'owned'"),
        format!("ALTER ROLE \"{app}\" NOCREATEDB"),
        format!("ALTER DATABASE \"{kept}\" RENAME TO \"{kept}_x\""),
        format!("ALTER DATABASE \"{kept}\" SET work_mem = '64kB'"),
        "ALTER ROLE CURRENT_USER SET work_mem = '64kB'".to_owned(),
        format!("ALTER ROLE CURRENT_USER IN DATABASE \"{live}\" SET work_mem = '64kB'"),
        format!("SET ROLE \"{app}\""),
        "RESET ROLE".to_owned(),
        "CREATE ROLE intruder LOGIN SUPERUSER".to_owned(),
        format!("GRANT \"{app}\" TO CURRENT_USER"),
    ];
    if event_trigger {
        // Changing its own password is allowed, and stops its own restore
        // (pg_restore reconnects): tried where the restore fails anyway.
        attempts.push("ALTER ROLE CURRENT_USER PASSWORD 'known-to-the-attacker'".to_owned());
    }
    let body: String = attempts
        .iter()
        .map(|sql| {
            format!(
                "  BEGIN EXECUTE {}; EXCEPTION WHEN others THEN NULL; END;\n",
                lms_backup::postgres::databases::quote_literal(sql)
            )
        })
        .collect();
    let sql = format!(
        r#"
CREATE FUNCTION harm() RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  IF current_database() NOT LIKE '%\_restore\_%' THEN RETURN true; END IF;
{body}
  RETURN true;
END $f$;
CREATE FUNCTION harm_int(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN PERFORM public.harm(); RETURN x; END $f$;
CREATE FUNCTION harm_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.harm(); RETURN NEW; END $f$;
CREATE TABLE checked (x int CHECK (harm()), y int DEFAULT harm_int(1));
INSERT INTO checked (x) SELECT g FROM generate_series(1, 10) g;
CREATE INDEX checked_expr ON checked ((harm_int(x)));
CREATE TRIGGER checked_harm BEFORE INSERT OR UPDATE ON checked
  FOR EACH ROW EXECUTE FUNCTION harm_trigger();
CREATE MATERIALIZED VIEW harmful AS SELECT harm() AS done;
CREATE TABLE policed (x int);
INSERT INTO policed VALUES (1), (2);
ALTER TABLE policed ENABLE ROW LEVEL SECURITY;
ALTER TABLE policed FORCE ROW LEVEL SECURITY;
CREATE POLICY harm_on_read ON policed USING (harm());
"#
    );
    exec(&url, &sql).await;
    if event_trigger {
        exec(
            &su_url_of(&name),
            "CREATE FUNCTION harm_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$
             BEGIN PERFORM public.harm(); END $f$;
             CREATE EVENT TRIGGER harm_ddl ON ddl_command_end EXECUTE FUNCTION harm_ddl();",
        )
        .await;
    }
    name
}

struct World {
    live: String,
    live_dump: String,
    control: String,
    control_dump: String,
    kept: String,
    kept_dump: String,
    roles: BTreeMap<String, String>,
}

async fn world(engine: &Engine, kept: &str) -> World {
    let app = engine.dbs().lms_options.get_username().to_owned();
    let restore_role = engine.restore_role();
    let live = engine.dbs().lms_name();
    let control = engine.dbs().control_options.get_database().unwrap();
    World {
        live: database_props(live).await,
        live_dump: database_dump(engine, live).await,
        control: database_props(control).await,
        control_dump: control_dump(engine).await,
        kept: database_props(kept).await,
        kept_dump: kept_database_dump(engine, kept).await,
        roles: roles_state(&[&app, &restore_role], &[live, control, kept]).await,
    }
}

/// The control database and the database kept for undo, each as it was,
/// properties and contents.
fn assert_same_control_and_kept(before: &World, after: &World) {
    assert_eq!(
        before.control, after.control,
        "the control database is unchanged"
    );
    assert!(
        before.control_dump == after.control_dump,
        "the control database's contents are unchanged:\n{}",
        first_difference(&before.control_dump, &after.control_dump)
    );
    assert_eq!(
        before.kept, after.kept,
        "the database kept for undo is unchanged"
    );
    assert!(
        before.kept_dump == after.kept_dump,
        "the contents of the database kept for undo are unchanged:\n{}",
        first_difference(&before.kept_dump, &after.kept_dump)
    );
}

/// The first line where two dumps differ, with its neighbours.
fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let at = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let around = |lines: &[&str]| lines[at.saturating_sub(2)..(at + 3).min(lines.len())].join("\n");
    format!(
        "line {}:\nbefore:\n{}\nafter:\n{}",
        at + 1,
        around(&a),
        around(&b)
    )
}

fn assert_same_roles(before: &World, after: &World) {
    assert!(!after.roles.contains_key("intruder"), "no role was created");
    assert_eq!(before.roles, after.roles, "every role as it was");
}

/// An engine with one restore done, so a database is kept for undo.
async fn engine_with_kept_database() -> (Engine, String) {
    let engine = spawn_engine_with(|c| c.restore_keep_previous = 5).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let id = backup(&engine).await;
    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let kept = engine.previous_databases().await.unwrap().remove(0);
    (engine, kept)
}

#[tokio::test]
async fn a_hostile_archive_whose_restore_fails_changed_nothing_outside_its_copy() {
    let (engine, kept) = engine_with_kept_database().await;
    let hostile = hostile_database(&engine, &kept, true).await;
    let id = upload_dump_of(&engine, &hostile).await;
    let before = world(&engine, &kept).await;

    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");

    let after = world(&engine, &kept).await;
    assert_eq!(before.live, after.live, "the live database is unchanged");
    assert_eq!(
        before.live_dump, after.live_dump,
        "the live database's contents are unchanged"
    );
    assert_same_control_and_kept(&before, &after);
    assert_same_roles(&before, &after);
    assert_eq!(
        databases_named_like(&engine).await,
        [
            engine.dbs().lms_name().to_owned(),
            format!("{}_control", engine.dbs().lms_name()),
            kept.clone()
        ],
        "no copy left, nothing renamed"
    );
}

#[tokio::test]
async fn a_hostile_archive_restored_successfully_changed_nothing_outside_its_copy() {
    let (engine, kept) = engine_with_kept_database().await;
    let hostile = hostile_database(&engine, &kept, false).await;
    let id = upload_dump_of(&engine, &hostile).await;
    let before = world(&engine, &kept).await;

    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");

    // The database that was live is now kept for undo, as it was.
    let replaced = engine.previous_databases().await.unwrap().remove(0);
    assert_ne!(replaced, kept);
    // (It stays closed to connections until an undo; nothing else differs.)
    assert_eq!(
        before.live.replace("connections true", "connections false"),
        database_props(&replaced).await,
        "the replaced database is the live one as it was"
    );
    assert!(
        before.live_dump == kept_database_dump(&engine, &replaced).await,
        "the replaced database holds what the live one held"
    );
    let after = world(&engine, &kept).await;
    assert_same_control_and_kept(&before, &after);
    assert_same_roles(&before, &after);
    // The restored database is the application's, open, with no settings
    // from the archive, and nothing in it is left to the restore role.
    let mut su = su().await;
    let (owner, open, settings): (String, bool, i64) = sqlx::query_as(
        "SELECT datdba::regrole::text, datallowconn,
                (SELECT count(*) FROM pg_db_role_setting s WHERE s.setdatabase = d.oid)
         FROM pg_database d WHERE datname = $1",
    )
    .bind(engine.dbs().lms_name())
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(owner, engine.dbs().lms_options.get_username());
    assert!(open);
    assert_eq!(settings, 0);
    let mut live = PgConnection::connect(&su_url_of(engine.dbs().lms_name()))
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_shdepend WHERE refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)",
    )
    .bind(engine.restore_role())
    .fetch_one(&mut live)
    .await
    .unwrap();
    assert_eq!(
        left, 0,
        "the restore role owns nothing and is granted nothing"
    );
    live.close().await.unwrap();

    // The payload now lives in the LMS database, so a backup made here of
    // it is kind `manual` and carries it: restoring that is held to the
    // same rule as the upload was.
    // (A table whose row-level security is forced on its owner cannot be
    // backed up in full; the backup says so and which table. The other
    // payloads stay.)
    let refused = start_manual_backup(&engine, &actor("alice")).await.unwrap();
    let refused = wait_for_job(&engine, refused.job.id).await;
    assert_eq!(refused.status, JobStatus::Failed);
    let message = refused.message.unwrap();
    assert!(
        message.contains("ALTER TABLE \"policed\" NO FORCE ROW LEVEL SECURITY"),
        "{message}"
    );
    exec(
        &su_url_of(engine.dbs().lms_name()),
        "ALTER TABLE policed NO FORCE ROW LEVEL SECURITY",
    )
    .await;
    let laundered = backup(&engine).await;
    let kind: String = sqlx::query_scalar("SELECT kind FROM backup_history WHERE id = $1")
        .bind(laundered)
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    assert_eq!(kind, "manual");
    let before = world(&engine, &kept).await;
    let job = restore(&engine, laundered).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let after = world(&engine, &kept).await;
    assert_same_control_and_kept(&before, &after);
    assert_same_roles(&before, &after);
}

#[tokio::test]
async fn a_missing_or_mistaken_restore_role_is_named_with_the_sql_that_fixes_it() {
    let engine = spawn_engine_with(|c| c.restore_role = Some("no_such_restore_role".into())).await;
    let app = engine.dbs().lms_options.get_username().to_owned();
    let message = engine.check_restore_role().await.unwrap_err().to_string();
    assert!(
        message.contains("does not exist")
            && message.contains("CREATE ROLE \"no_such_restore_role\" LOGIN")
            && message.contains(&format!("GRANT \"no_such_restore_role\" TO \"{app}\"")),
        "{message}"
    );
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let id = backup(&engine).await;
    let before = live_fingerprint(&engine).await;
    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.message.unwrap().contains("CREATE ROLE"));
    assert!(before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());

    // A restore role with a right it must not have is refused too. (Named
    // like the tests' restore roles, which the role snapshots of tests
    // running meanwhile leave out of the application role's memberships.)
    let role = format!(
        "restore_bad_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut su = su().await;
    for sql in [
        format!("CREATE ROLE {role} LOGIN CREATEDB"),
        format!("GRANT {role} TO \"{app}\""),
    ] {
        sqlx::query(&sql).execute(&mut su).await.unwrap();
    }
    let engine = spawn_engine_with(|c| c.restore_role = Some(role.clone())).await;
    let message = engine.check_restore_role().await.unwrap_err().to_string();
    assert!(
        message.contains(&format!("ALTER ROLE \"{role}\" NOCREATEDB")),
        "{message}"
    );
    sqlx::query(&format!("ALTER ROLE {role} NOCREATEDB"))
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::query(&format!("GRANT pg_read_all_settings TO {role}"))
        .execute(&mut su)
        .await
        .unwrap();
    let message = engine.check_restore_role().await.unwrap_err().to_string();
    assert!(message.contains("member of nothing"), "{message}");
}

/// Roles of this test: one the LMS grants to, and one granted nothing (what
/// PUBLIC may do).
async fn test_roles() -> (String, String) {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let (reporting, nobody) = (format!("t_rep_{suffix}"), format!("t_nobody_{suffix}"));
    let mut su = su().await;
    for role in [&reporting, &nobody] {
        sqlx::query(&format!("CREATE ROLE {role} NOLOGIN"))
            .execute(&mut su)
            .await
            .unwrap();
    }
    (reporting, nobody)
}

/// What each role may do with every table, sequence, function and schema
/// of the LMS database, and with the database itself; the database's
/// settings, connection limit and comment.
async fn privileges(engine: &Engine, roles: &[&str]) -> Vec<String> {
    let mut conn = PgConnection::connect(&su_url_of(engine.dbs().lms_name()))
        .await
        .unwrap();
    let mut out: Vec<String> = sqlx::query_scalar(
        "WITH r(role) AS (SELECT unnest($1::text[])),
         objects AS (
           SELECT 'table ' || c.oid::regclass::text AS what, r.role,
                  has_table_privilege(r.role, c.oid, 'SELECT') AS s,
                  has_table_privilege(r.role, c.oid, 'INSERT') AS i,
                  has_table_privilege(r.role, c.oid, 'UPDATE') AS u
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, r
           WHERE c.relkind IN ('r', 'v', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\\_%'
           UNION ALL
           SELECT 'table (delete, truncate, references) ' || c.oid::regclass::text, r.role,
                  has_table_privilege(r.role, c.oid, 'DELETE'),
                  has_table_privilege(r.role, c.oid, 'TRUNCATE'),
                  has_table_privilege(r.role, c.oid, 'REFERENCES')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, r
           WHERE c.relkind IN ('r', 'v', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\\_%'
           UNION ALL
           SELECT 'table (trigger; some column select, update) ' || c.oid::regclass::text, r.role,
                  has_table_privilege(r.role, c.oid, 'TRIGGER'),
                  has_any_column_privilege(r.role, c.oid, 'SELECT'),
                  has_any_column_privilege(r.role, c.oid, 'UPDATE')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, r
           WHERE c.relkind IN ('r', 'v', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\\_%'
           UNION ALL
           SELECT 'type ' || t.oid::regtype::text, r.role,
                  has_type_privilege(r.role, t.oid, 'USAGE'), false, false
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace, r
           WHERE t.typtype = 'd' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           UNION ALL
           SELECT 'sequence ' || c.oid::regclass::text, r.role,
                  has_sequence_privilege(r.role, c.oid, 'USAGE'), has_sequence_privilege(r.role, c.oid, 'SELECT'),
                  has_sequence_privilege(r.role, c.oid, 'UPDATE')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, r
           WHERE c.relkind = 'S' AND n.nspname NOT LIKE 'pg\\_%'
           UNION ALL
           SELECT 'function ' || p.oid::regprocedure::text, r.role,
                  has_function_privilege(r.role, p.oid, 'EXECUTE'), false, false
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, r
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           UNION ALL
           SELECT 'schema ' || n.nspname, r.role,
                  has_schema_privilege(r.role, n.oid, 'USAGE'), has_schema_privilege(r.role, n.oid, 'CREATE'), false
           FROM pg_namespace n, r
           WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
           UNION ALL
           SELECT 'database', r.role,
                  has_database_privilege(r.role, current_database(), 'CONNECT'),
                  has_database_privilege(r.role, current_database(), 'TEMP'),
                  has_database_privilege(r.role, current_database(), 'CREATE')
           FROM r)
         SELECT concat_ws(' ', what, role, s, i, u) FROM objects ORDER BY 1",
    )
    .bind(roles)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let db: String = sqlx::query_scalar(
        "SELECT concat_ws(' | ', d.datconnlimit, shobj_description(d.oid, 'pg_database'),
                (SELECT string_agg(coalesce(s.setrole::regrole::text, '*') || ':' ||
                                   array_to_string(s.setconfig, ','), ';' ORDER BY 1)
                 FROM pg_db_role_setting s WHERE s.setdatabase = d.oid))
         FROM pg_database d WHERE d.datname = current_database()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    out.push(db);
    // Default privileges: what objects created later grant by themselves.
    let defaults: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', 'default', d.defaclrole::regrole::text,
                          coalesce(d.defaclnamespace::regnamespace::text, '*'),
                          d.defaclobjtype, d.defaclacl::text)
         FROM pg_default_acl d ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    out.extend(defaults);
    out
}

#[tokio::test]
async fn grants_and_database_settings_survive_a_restore() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let (reporting, nobody) = test_roles().await;
    let app = engine.dbs().lms_options.get_username().to_owned();
    let live = engine.dbs().lms_name().to_owned();
    exec(
        &url_of(&live),
        &format!(
            r#"
GRANT SELECT ON courses, users TO {reporting};
GRANT USAGE ON SCHEMA public TO {reporting};
CREATE FUNCTION grade_everything() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
REVOKE ALL ON FUNCTION grade_everything() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION grade_everything() TO {reporting};
REVOKE CONNECT, TEMPORARY ON DATABASE "{live}" FROM PUBLIC;
GRANT CONNECT ON DATABASE "{live}" TO {reporting};
ALTER DATABASE "{live}" SET statement_timeout = '42s';
ALTER DATABASE "{live}" SET search_path = "$user", public, extra;
ALTER ROLE "{app}" IN DATABASE "{live}" SET work_mem = '8MB';
ALTER DATABASE "{live}" CONNECTION LIMIT 77;
COMMENT ON DATABASE "{live}" IS 'the LMS, with care';
GRANT DELETE, TRUNCATE ON enrollments TO {reporting};
GRANT UPDATE (title) ON courses TO {reporting};
CREATE DOMAIN grade AS int CHECK (VALUE BETWEEN 0 AND 100);
REVOKE USAGE ON DOMAIN grade FROM PUBLIC;
GRANT USAGE ON DOMAIN grade TO {reporting};
ALTER DEFAULT PRIVILEGES FOR ROLE "{app}" GRANT SELECT ON TABLES TO {reporting};
ALTER DEFAULT PRIVILEGES FOR ROLE "{app}" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE "{app}" IN SCHEMA public GRANT USAGE ON SEQUENCES TO {reporting};
"#
        ),
    )
    .await;
    let roles = [reporting.as_str(), nobody.as_str(), app.as_str()];
    let before = privileges(&engine, &roles).await;
    assert!(
        before.contains(&format!("function grade_everything() {nobody} f f f")),
        "{before:#?}"
    );
    let id = backup(&engine).await;
    // Change what the backup recorded, so the restore has to bring it back.
    exec(
        &url_of(&live),
        &format!("REVOKE SELECT ON courses FROM {reporting}; GRANT EXECUTE ON FUNCTION grade_everything() TO PUBLIC;"),
    )
    .await;

    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(
        job.notes
            .iter()
            .any(|n| n.contains("default privileges") && n.contains("live database's are kept")),
        "the job says the backup's default privileges gave way: {:?}",
        job.notes
    );
    let after = privileges(&engine, &roles).await;
    let lost: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
    let gained: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        lost.is_empty() && gained.is_empty(),
        "privileges and settings as backed up:\nbefore only: {lost:#?}\nafter only: {gained:#?}"
    );
    assert!(
        after.iter().any(|l| l.starts_with("default ")),
        "the default privileges were compared: {after:#?}"
    );
    // And they act: what the application creates after the restore grants
    // as it did before.
    exec(
        &url_of(&live),
        "CREATE TABLE made_after (id int); CREATE FUNCTION made_after_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';",
    )
    .await;
    let now = privileges(&engine, &roles).await;
    assert!(
        now.contains(&format!("table made_after {reporting} t f f")),
        "{now:#?}"
    );
    assert!(
        now.contains(&format!("function made_after_fn() {nobody} f f f")),
        "{now:#?}"
    );
}

#[tokio::test]
async fn an_archive_granting_to_missing_roles_is_refused_naming_them() {
    let engine = spawn_engine().await;
    let (ghost, _) = test_roles().await;
    let live = engine.dbs().lms_name().to_owned();
    exec(
        &url_of(&live),
        &format!("GRANT SELECT ON courses TO {ghost};"),
    )
    .await;
    let id = backup(&engine).await;
    exec(
        &su_url_of(&live),
        &format!("REVOKE SELECT ON courses FROM {ghost}; DROP ROLE {ghost};"),
    )
    .await;
    let before = live_fingerprint(&engine).await;
    let names = databases_named_like(&engine).await;

    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let message = job.message.unwrap();
    assert!(
        message.contains("roles this database server does not have")
            && message.contains(&format!("\"{ghost}\""))
            && message.contains("Nothing was changed"),
        "{message}"
    );
    assert!(before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    assert_eq!(
        databases_named_like(&engine).await,
        names,
        "no copy was made"
    );
}

#[tokio::test]
async fn settings_of_other_roles_in_the_database_are_refused_naming_them() {
    let engine = spawn_engine().await;
    let (reporting, _) = test_roles().await;
    let live = engine.dbs().lms_name().to_owned();
    let id = backup(&engine).await;
    exec(
        &su_url_of("postgres"),
        &format!("ALTER ROLE {reporting} IN DATABASE \"{live}\" SET work_mem = '4MB'"),
    )
    .await;
    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let message = job.message.unwrap();
    assert!(
        message.contains(&reporting)
            && message.contains("work_mem=4MB")
            && message.contains("Nothing was changed"),
        "{message}"
    );
    exec(
        &su_url_of("postgres"),
        &format!("ALTER ROLE {reporting} IN DATABASE \"{live}\" RESET ALL"),
    )
    .await;
}

/// An archive far larger restored than its size suggests (an upload: no
/// table sizes recorded, so the estimate is the live database's size) is
/// stopped when the copy outgrows the free space, before the disk fills.
#[tokio::test]
async fn a_copy_growing_past_the_free_space_is_stopped() {
    let source = spawn_engine().await;
    lms_backup::demo::seed(&source.dbs().lms, 2).await.unwrap();
    let source_id = backup(&source).await;
    let detail = catalog::get(&source.dbs().control, source_id)
        .await
        .unwrap();
    let bytes = std::fs::read(source.config().backup_dir.join(&detail.backup.filename)).unwrap();

    // An empty LMS, and a disk with room for that plus a few megabytes.
    let margin = 256 << 20;
    let probe = spawn_engine().await;
    let live_size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&probe.dbs().lms)
        .await
        .unwrap();
    let copy = live_size as u64 / 10 * 11;
    let room = copy + wal_allowance(&probe, copy).await + (4 << 20);
    let engine = spawn_engine_with(|c| {
        c.restore_free_space_margin = margin;
        c.database_free_space = Some(Some(room + margin));
    })
    .await;
    let uploaded = engine
        .import_upload(
            std::io::Cursor::new(bytes.clone()),
            Some(bytes.len() as u64),
            None,
            &actor("alice"),
        )
        .await
        .unwrap();
    let before = live_fingerprint(&engine).await;
    let names = databases_named_like(&engine).await;

    let job = restore(&engine, uploaded.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let message = job.message.unwrap();
    assert!(
        message.contains("grew past") && message.contains("RESTORE_FREE_SPACE_MARGIN"),
        "{message}"
    );
    assert!(before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    assert_eq!(
        databases_named_like(&engine).await,
        names,
        "the copy was dropped"
    );
}

/// What the engine allows for the write-ahead log a restore of `copy`
/// bytes writes: that much, at most `max_wal_size`, plus `wal_keep_size`.
async fn wal_allowance(engine: &Engine, copy: u64) -> u64 {
    let (max_wal, keep): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'max_wal_size'),
                (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_keep_size')",
    )
    .fetch_one(&engine.dbs().lms)
    .await
    .unwrap();
    copy.min(max_wal as u64 * (1 << 20)) + keep as u64 * (1 << 20)
}

/// Room for the copy but not for the write-ahead log its restore writes
/// is not room: the restore is refused before anything is made, saying so.
#[tokio::test]
async fn the_write_ahead_log_a_restore_writes_is_counted_in_the_room_it_needs() {
    let source = spawn_engine().await;
    lms_backup::demo::seed(&source.dbs().lms, 1).await.unwrap();
    let id = backup(&source).await;
    let detail = catalog::get(&source.dbs().control, id).await.unwrap();
    let bytes = std::fs::read(source.config().backup_dir.join(&detail.backup.filename)).unwrap();

    // An upload's copy is estimated from the live database (empty here):
    // room for that and half the log it writes.
    let probe = spawn_engine().await;
    let live_size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&probe.dbs().lms)
        .await
        .unwrap();
    let copy = live_size as u64 / 10 * 11;
    let wal = wal_allowance(&probe, copy).await;
    assert!(wal > 4 << 20, "a log worth halving: {wal}");
    let margin = 64 << 20;
    let engine = spawn_engine_with(|c| {
        c.restore_free_space_margin = margin;
        c.database_free_space = Some(Some(copy + wal / 2 + margin));
    })
    .await;
    let uploaded = engine
        .import_upload(
            std::io::Cursor::new(bytes.clone()),
            Some(bytes.len() as u64),
            None,
            &actor("alice"),
        )
        .await
        .unwrap();
    let names = databases_named_like(&engine).await;
    let job = restore(&engine, uploaded.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let message = job.message.unwrap();
    assert!(
        message.contains("Not enough free space") && message.contains("write-ahead log"),
        "{message}"
    );
    assert_eq!(
        databases_named_like(&engine).await,
        names,
        "no copy was made"
    );
}

/// A database server whose disk cannot be seen from here is restored to
/// all the same, and the job says the free space was not checked and how
/// much the copy needs.
#[tokio::test]
async fn a_disk_that_cannot_be_seen_is_said_in_the_job() {
    let engine = spawn_engine_with(|c| c.database_free_space = Some(None)).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let id = backup(&engine).await;
    let job = restore(&engine, id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(
        job.notes.iter().any(|n| n
            .contains("free space on the database server's disk cannot be seen")
            && n.contains("need about")),
        "{:?}",
        job.notes
    );
    // And a disk that can be seen says nothing.
    let seen = spawn_engine_with(|c| c.database_free_space = Some(Some(1 << 40))).await;
    lms_backup::demo::seed(&seen.dbs().lms, 1).await.unwrap();
    let id = backup(&seen).await;
    let job = restore(&seen, id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(
        !job.notes.iter().any(|n| n.contains("free space")),
        "{:?}",
        job.notes
    );
}
