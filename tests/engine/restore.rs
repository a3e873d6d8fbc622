//! Shadow restore, swap and undo against a real PostgreSQL.

use lms_backup::postgres::fingerprint::Fingerprint;
use lms_backup::testing::{
    actor, live_fingerprint, spawn_engine, start_manual_backup, wait_for_job, wait_until,
};
use lms_backup::{catalog, settings, Engine};
use lms_types::JobStatus;
use sqlx::Connection;

async fn backup(engine: &Engine) -> catalog::BackupDetail {
    let who = actor("alice");
    let started = start_manual_backup(engine, &who).await.unwrap();
    assert_eq!(
        wait_for_job(engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    catalog::get(&engine.dbs().control, started.backup.id)
        .await
        .unwrap()
}

fn recorded(detail: &catalog::BackupDetail) -> Fingerprint {
    let m = detail.manifest.as_ref().unwrap();
    Fingerprint {
        tables: m.tables.clone().unwrap(),
        sequences: m.sequences.clone().unwrap(),
    }
}

async fn change_data(engine: &Engine) {
    for sql in [
        "DELETE FROM activity_events WHERE id % 2 = 0",
        "UPDATE users SET full_name = 'changed' WHERE id < 50",
        "INSERT INTO courses (code, title) VALUES ('NEW-1', 'written after the backup')",
        "SELECT setval('lessons_id_seq', 99999)",
    ] {
        sqlx::query(sql).execute(&engine.dbs().lms).await.unwrap();
    }
}

/// After a refused or failed restore: the live database exactly as
/// `before`, no copy or previous database beside it, the lock free.
async fn assert_untouched(engine: &Engine, before: &Fingerprint) {
    let differences = before.differences(&live_fingerprint(engine).await);
    assert!(
        differences.is_empty(),
        "the live database is as it was: {differences:?}"
    );
    let lms = engine.dbs().lms_name().to_owned();
    assert_eq!(
        databases(engine).await,
        [lms.clone(), format!("{lms}_control")],
        "no copy, no previous database"
    );
    assert!(
        engine.lock_status().await.unwrap().is_none(),
        "the lock is free"
    );
}

async fn databases(engine: &Engine) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '%' ORDER BY 1",
    )
    .bind(engine.dbs().lms_name())
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap()
}

#[tokio::test]
async fn restore_brings_back_the_backup_and_undo_brings_back_the_rest() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    change_data(&engine).await;
    let changed = live_fingerprint(&engine).await;
    assert!(
        !recorded(&detail).differences(&changed).is_empty(),
        "the data did change"
    );

    let who = actor("alice");
    let job = engine
        .start_restore(detail.backup.id, true, &who)
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(
        job.message.as_deref().unwrap().contains("maintenance for"),
        "{job:?}"
    );

    let restored = live_fingerprint(&engine).await;
    assert!(
        recorded(&detail).differences(&restored).is_empty(),
        "{:?}",
        recorded(&detail).differences(&restored)
    );
    // The engine's own pool reconnects to the restored database.
    let courses: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&engine.dbs().lms)
        .await
        .unwrap();
    assert_eq!(courses, 20);
    let previous = engine.previous_databases().await.unwrap();
    assert_eq!(previous.len(), 1, "the replaced database is kept for undo");
    assert!(settings::maintenance(&engine.dbs().control)
        .await
        .unwrap()
        .is_none());
    assert!(engine.lock_status().await.unwrap().is_none());
    let names = databases(&engine).await;
    assert!(
        !names
            .iter()
            .any(|n| n.contains("_restore_") && !n.contains("_pre_restore_")),
        "no shadow left: {names:?}"
    );

    let undo = engine.start_undo(true, &who).await.unwrap();
    let undo = wait_for_job(&engine, undo.id).await;
    assert_eq!(undo.status, JobStatus::Succeeded, "{undo:?}");
    let undone = live_fingerprint(&engine).await;
    assert!(
        changed.differences(&undone).is_empty(),
        "{:?}",
        changed.differences(&undone)
    );
    assert_eq!(
        engine.previous_databases().await.unwrap().len(),
        1,
        "undo keeps one previous database (the restored one)"
    );
}

#[tokio::test]
async fn a_damaged_or_truncated_archive_changes_nothing() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    change_data(&engine).await;
    let before = live_fingerprint(&engine).await;
    let path = engine.config().backup_dir.join(&detail.backup.filename);
    let who = actor("alice");

    // One flipped byte: the checksum gate refuses.
    let mut bytes = std::fs::read(&path).unwrap();
    let original = bytes.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let job = engine
        .start_restore(detail.backup.id, true, &who)
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.message.as_deref().unwrap().contains("checksum"),
        "{job:?}"
    );

    // Truncated, with a catalog that agrees (as if the damage happened
    // before hashing): pg_restore fails in the shadow, the live database is
    // untouched and the shadow is dropped.
    let truncated = &original[..original.len() * 2 / 3];
    std::fs::write(&path, truncated).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(truncated));
    sqlx::query("UPDATE backup_history SET sha256 = $2, size_bytes = $3 WHERE id = $1")
        .bind(detail.backup.id)
        .bind(&sha)
        .bind(truncated.len() as i64)
        .execute(&engine.dbs().control)
        .await
        .unwrap();
    let job = engine
        .start_restore(detail.backup.id, true, &who)
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");

    assert_untouched(&engine, &before).await;
    assert!(settings::maintenance(&engine.dbs().control)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn restore_requires_confirmation_and_a_completed_backup() {
    let engine = spawn_engine().await;
    let detail = backup(&engine).await;
    let who = actor("alice");
    assert!(matches!(
        engine.start_restore(detail.backup.id, false, &who).await,
        Err(lms_backup::Error::Invalid(_))
    ));
    assert!(matches!(
        engine.start_restore(987_654, true, &who).await,
        Err(lms_backup::Error::NotFound(_))
    ));
    assert!(
        matches!(
            engine.start_undo(true, &who).await,
            Err(lms_backup::Error::Invalid(_))
        ),
        "nothing to undo yet"
    );
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind IN ('restore', 'undo')")
            .fetch_one(&engine.dbs().control)
            .await
            .unwrap();
    assert_eq!(jobs, 0);
}

#[tokio::test]
async fn pg_restore_killed_mid_run_changes_nothing() {
    let base = spawn_engine().await;
    lms_backup::demo::seed(&base.dbs().lms, 2).await.unwrap();
    let detail = backup(&base).await;
    change_data(&base).await;
    let before = live_fingerprint(&base).await;

    // pg_restore that records its pid (and keeps it through exec) when restoring into a database.
    let pid_file = lms_backup::testing::scratch_dir("pgrestore-pid").join("pid");
    let bin = lms_backup::testing::scratch_dir("pg-wrap-restore");
    std::os::unix::fs::symlink(&base.tools().pg_dump, bin.join("pg_dump")).unwrap();
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *--dbname=*) echo $$ > '{}';; esac\nexec '{}' \"$@\"\n",
        pid_file.display(),
        base.tools().pg_restore.display()
    );
    std::fs::write(bin.join("pg_restore"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.join("pg_restore"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let engine = base.with_tools(
        lms_backup::postgres::tools::locate(Some(&bin))
            .await
            .unwrap(),
    );

    let who = actor("alice");
    let job = engine
        .start_restore(detail.backup.id, true, &who)
        .await
        .unwrap();
    let pid = wait_until("pg_restore to start", async || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .filter(|s| s.ends_with('\n'))
            .and_then(|s| s.trim().parse::<i32>().ok())
    })
    .await;
    // Mid-run: connected to the copy and loading it.
    wait_until("pg_restore to be loading the copy", async || {
        let loading: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND application_name = 'lms-admin' AND datname LIKE $1 || '\\_restore\\_%'",
        )
        .bind(engine.dbs().lms_name())
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
        let now = lms_backup::jobs::get(&engine.dbs().control, job.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(now.status, JobStatus::Running, "ended before it was seen loading");
        (loading > 0).then_some(())
    })
    .await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );

    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert_untouched(&engine, &before).await;
}

#[tokio::test]
async fn a_role_without_createdb_is_told_which_grant_is_missing() {
    // A role that owns its databases but may not create new ones.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let (role, db) = (format!("r_{suffix}"), format!("t_{suffix}"));
    let superuser = lms_backup::testing::superuser_url();
    let mut admin = sqlx::PgConnection::connect(&superuser).await.unwrap();
    for sql in [
        format!("CREATE ROLE {role} LOGIN PASSWORD 'pw-{suffix}' NOCREATEDB"),
        format!("CREATE DATABASE {db} OWNER {role}"),
        format!("CREATE DATABASE {db}_control OWNER {role}"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    let base = superuser
        .rsplit_once('@')
        .unwrap()
        .1
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    let urls = lms_backup::postgres::databases::DatabaseUrls {
        lms: format!("postgres://{role}:pw-{suffix}@{base}/{db}"),
        control: None,
    };
    let dbs = lms_backup::Databases::connect(&urls).await.unwrap();
    dbs.migrate().await.unwrap();
    let template = spawn_engine().await;
    let engine = template.with_dbs(dbs);

    let detail = backup(&engine).await;
    let before = live_fingerprint(&engine).await;
    let who = actor("alice");
    let job = engine
        .start_restore(detail.backup.id, true, &who)
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let message = job.message.unwrap();
    assert!(
        message.contains("may not create databases")
            && message.contains(&format!("ALTER ROLE \"{role}\" CREATEDB")),
        "{message}"
    );
    assert!(before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
}

/// Both copies must fit on the database server's disk: a backup whose
/// tables would not fit beside the live database is refused before anything
/// is created, saying how much is needed and how much is free.
#[tokio::test]
async fn a_copy_that_would_not_fit_is_refused_before_anything_changes() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    change_data(&engine).await;
    let before = live_fingerprint(&engine).await;
    // As if the backed-up tables had been a petabyte each.
    let mut manifest = detail.manifest.clone().unwrap();
    for t in manifest.tables.as_mut().unwrap() {
        t.size_bytes = 1 << 50;
    }
    catalog::mark_completed(&engine.dbs().control, detail.backup.id, &manifest)
        .await
        .unwrap();

    let job = engine
        .start_restore(detail.backup.id, true, &actor("alice"))
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let message = job.message.unwrap();
    assert!(
        message.starts_with("Not enough free space on the database server")
            && message.contains(" needed (")
            && message.contains("write-ahead log")
            && message.contains(" free, of which ")
            && message.contains("RESTORE_FREE_SPACE_MARGIN"),
        "{message}"
    );
    assert_untouched(&engine, &before).await;
}

/// RESTORE_KEEP_PREVIOUS databases from before restores are kept, newest
/// first; older ones are dropped once the restore has ended.
#[tokio::test]
async fn only_the_newest_previous_databases_are_kept() {
    let engine = lms_backup::testing::spawn_engine_with(|c| c.restore_keep_previous = 1).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    let who = actor("alice");
    let mut kept = Vec::new();
    for _ in 0..3 {
        let job = engine
            .start_restore(detail.backup.id, true, &who)
            .await
            .unwrap();
        assert_eq!(
            wait_for_job(&engine, job.id).await.status,
            JobStatus::Succeeded
        );
        kept.push(engine.previous_databases().await.unwrap()[0].clone());
    }
    // The oldest go after each job (housekeeping, not waited for).
    wait_until("old previous databases to be dropped", async || {
        (engine.previous_databases().await.unwrap().len() <= 1).then_some(())
    })
    .await;
    assert_eq!(
        engine.previous_databases().await.unwrap(),
        [kept[2].clone()]
    );
    // And the one kept is the one undo brings back.
    let undo = engine.start_undo(true, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, undo.id).await.status,
        JobStatus::Succeeded
    );
}

/// Sessions this role may not end (a superuser's, or autovacuum working on
/// the database, which runs as one) used to fail the swap with "must be a
/// superuser to terminate superuser process". Now only client sessions of
/// ordinary roles are ended; a superuser session that stays makes the
/// rename refuse, and the restore fails cleanly, saying so.
#[tokio::test]
async fn a_session_that_cannot_be_ended_fails_the_switch_cleanly() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    change_data(&engine).await;
    let before = live_fingerprint(&engine).await;
    let superuser = lms_backup::testing::superuser_url();
    let (server, _) = superuser.rsplit_once('/').unwrap();
    let mut dba = sqlx::PgConnection::connect(&format!("{server}/{}", engine.dbs().lms_name()))
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&mut dba).await.unwrap();

    let job = engine
        .start_restore(detail.backup.id, true, &actor("alice"))
        .await
        .unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert!(
        job.message
            .as_deref()
            .unwrap()
            .contains("Other sessions stayed connected to the LMS database"),
        "{job:?}"
    );
    sqlx::query("SELECT 1").execute(&mut dba).await.unwrap();
    dba.close().await.unwrap();

    assert!(before
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    let lms = engine.dbs().lms_name().to_owned();
    assert_eq!(
        databases(&engine).await,
        [lms.clone(), format!("{lms}_control")],
        "no copy left, nothing renamed"
    );
    let open: bool = sqlx::query_scalar("SELECT datallowconn FROM pg_database WHERE datname = $1")
        .bind(&lms)
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    assert!(open, "the live database takes connections again");
    assert!(engine.lock_status().await.unwrap().is_none());
    assert!(settings::maintenance(&engine.dbs().control)
        .await
        .unwrap()
        .is_none());
}

/// An uploaded archive built to run a shell command when restored: a
/// materialized view whose query calls a function that runs
/// `COPY ... TO PROGRAM` (only in a database named like our copies, so it
/// could be created harmlessly where it was made). Restoring it runs the
/// view's query as the restoring role, which is not a superuser and may not
/// run programs: the restore fails, the command never runs, the live
/// database is untouched and no copy is left.
#[tokio::test]
async fn an_archive_that_runs_a_program_when_restored_gets_no_rights_to() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let marker = std::env::temp_dir().join(format!("copy-to-program-{}", uuid::Uuid::new_v4()));
    let marker_sql = marker.display().to_string();

    // The hostile archive, made from a database of its own.
    let source_url = lms_backup::testing::fresh_database_url().await;
    let mut source = sqlx::PgConnection::connect(&source_url).await.unwrap();
    sqlx::raw_sql(&format!(
        r#"CREATE TABLE notes (id int PRIMARY KEY, body text);
           INSERT INTO notes VALUES (1, 'harmless');
           CREATE FUNCTION payload() RETURNS int LANGUAGE plpgsql AS $f$
           BEGIN
             IF current_database() LIKE '%\_restore\_%' THEN
               EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('touch {marker_sql}');
             END IF;
             RETURN 1;
           END $f$;
           CREATE MATERIALIZED VIEW trap AS SELECT payload() AS x;"#
    ))
    .execute(&mut source)
    .await
    .unwrap();
    source.close().await.unwrap();
    let tools = lms_backup::postgres::tools::locate(None).await.unwrap();
    let (userinfo, hostpart) = source_url
        .split_once("://")
        .unwrap()
        .1
        .split_once('@')
        .unwrap();
    let (user, password) = userinfo.split_once(':').unwrap();
    let (hostport, dbname) = hostpart.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let dumped = std::process::Command::new(&tools.pg_dump)
        .args(["-Fc", "-h", host, "-p", port, "-U", user, "-d", dbname])
        .env("PGPASSWORD", password)
        .output()
        .unwrap();
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );

    // The payload is real: run by a superuser it leaves the marker.
    let proof = marker.with_extension("proof");
    let mut su = sqlx::PgConnection::connect(&lms_backup::testing::superuser_url())
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "COPY (SELECT 1) TO PROGRAM 'touch {}'",
        proof.display()
    ))
    .execute(&mut su)
    .await
    .unwrap();
    assert!(
        proof.exists(),
        "the test can see what the database server's programs do"
    );
    std::fs::remove_file(&proof).unwrap();

    let who = actor("alice");
    let archive = dumped.stdout.clone();
    let uploaded = engine
        .import_upload(
            std::io::Cursor::new(archive.clone()),
            Some(archive.len() as u64),
            None,
            &who,
        )
        .await
        .unwrap();
    let before = live_fingerprint(&engine).await;
    let job = engine.start_restore(uploaded.id, true, &who).await.unwrap();
    let job = wait_for_job(&engine, job.id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    assert!(!marker.exists(), "the program ran during the restore");
    assert_untouched(&engine, &before).await;
}

/// PostgreSQL cuts names at 63 bytes. With a 60-byte database name the copy
/// (`<db>_restore_<job>`) and the previous database
/// (`<db>_pre_restore_<timestamp>`) used to be cut short: the previous
/// database was not found, so there was nothing to undo, and the next
/// restore's previous database collided with it. Now restore, undo and two
/// more restores work, and every kept database is found.
#[tokio::test]
async fn a_database_name_of_60_bytes_restores_and_undoes() {
    let name = format!(
        "lms_{}",
        &uuid::Uuid::new_v4().simple().to_string().repeat(2)[..56]
    );
    assert_eq!(name.len(), 60);
    let engine = lms_backup::testing::spawn_engine_named(&name).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup(&engine).await;
    change_data(&engine).await;
    let changed = live_fingerprint(&engine).await;
    let who = actor("alice");
    let restore = async || {
        let job = engine
            .start_restore(detail.backup.id, true, &who)
            .await
            .unwrap();
        let job = wait_for_job(&engine, job.id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        // Older previous databases go after the job (not waited for).
        wait_until("one previous database", async || {
            let previous = engine.previous_databases().await.unwrap();
            (previous.len() == 1).then_some(previous)
        })
        .await
    };

    let previous = restore().await;
    assert!(previous[0].len() <= 63, "{previous:?}");
    let restored = live_fingerprint(&engine).await;
    assert!(recorded(&detail).differences(&restored).is_empty());
    let undo = engine.start_undo(true, &who).await.unwrap();
    let undo = wait_for_job(&engine, undo.id).await;
    assert_eq!(undo.status, JobStatus::Succeeded, "{undo:?}");
    assert_eq!(engine.dbs().lms_name(), name);
    let undone = live_fingerprint(&engine).await;
    assert!(
        changed.differences(&undone).is_empty(),
        "{:?}",
        changed.differences(&undone)
    );

    // Two more restores: each keeps its own previous database.
    let first = restore().await;
    let second = restore().await;
    assert_ne!(first, second);
    // No copy left behind under any name starting like the live one.
    let siblings: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '%' AND datname <> $2",
    )
    .bind(&name[..20])
    .bind(&name)
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap();
    assert!(
        siblings.iter().all(|s| s.contains("_pre_restore_")),
        "no copy left: {siblings:?}"
    );
}
