//! The backup pipeline against a real PostgreSQL and real pg_dump.

use std::path::Path;
use std::time::Duration;

use lms_backup::backup::BackupRequest;
use lms_backup::jobs::lock;
use lms_backup::postgres::{fingerprint, tools as pgtools};
use lms_backup::testing::{actor, spawn_engine, spawn_engine_with, wait_for_job, wait_until, Gate};
use lms_backup::{catalog, Engine, Error};
use lms_types::{BackupKind, BackupStatus, JobStatus, Operation};
use sha2::Digest;
use sqlx::Connection;

fn manual<'a>(who: &'a lms_backup::audit::Actor, notes: Option<&'a str>) -> BackupRequest<'a> {
    BackupRequest {
        actor: who,
        notes,
        kind: BackupKind::Manual,
    }
}

/// Files in the backup directory (not the metadata folder).
fn files(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&engine.config().backup_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn backup_ok(engine: &Engine, notes: Option<&str>) -> catalog::BackupDetail {
    let who = actor("alice");
    let started = engine
        .start_backup(manual(&who, notes))
        .await
        .expect("backup starts");
    let job = wait_for_job(engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    catalog::get(&engine.dbs().control, started.backup.id)
        .await
        .unwrap()
}

async fn assert_clean_failure(engine: &Engine, job_id: uuid::Uuid, before: &[String]) -> String {
    let job = wait_for_job(engine, job_id).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    let message = job.message.clone().unwrap_or_default();
    assert!(!message.is_empty());
    assert!(
        !files(engine).iter().any(|f| f.ends_with(".partial")),
        "no partial file: {:?}",
        files(engine)
    );
    assert_eq!(
        files(engine),
        before,
        "older backups untouched, nothing new kept"
    );
    let completed = catalog::with_status(&engine.dbs().control, BackupStatus::Completed)
        .await
        .unwrap();
    assert_eq!(
        completed.len(),
        before.len(),
        "no completed row for the failed backup"
    );
    assert!(
        engine.lock_status().await.unwrap().is_none(),
        "the lock is free"
    );
    message
}

#[tokio::test]
async fn a_backup_is_verified_listed_and_describes_the_database() {
    let engine = spawn_engine().await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let detail = backup_ok(&engine, Some("before term starts")).await;

    let b = &detail.backup;
    assert_eq!(b.status, BackupStatus::Completed);
    assert_eq!(b.kind, BackupKind::Manual);
    assert_eq!(b.notes.as_deref(), Some("before term starts"));
    assert!(
        lms_backup::storage::is_archive_name(&b.filename),
        "{}",
        b.filename
    );
    let path = engine.config().backup_dir.join(&b.filename);
    let bytes = std::fs::read(&path).unwrap();
    let (size, sha) = (bytes.len(), hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(Some(size as i64), b.size_bytes);
    assert_eq!(Some(sha.clone()), b.sha256);

    let manifest = detail.manifest.expect("manifest in the catalog");
    assert_eq!(manifest.sha256, sha);
    assert_eq!(
        engine.backup_dir().read_manifest(&b.filename).await,
        Some(manifest.clone())
    );
    assert!(
        manifest.archive_version.starts_with("1."),
        "{}",
        manifest.archive_version
    );

    // The fingerprint equals one taken now (nothing changed since).
    let mut conn = sqlx::PgConnection::connect_with(&engine.dbs().lms_options)
        .await
        .unwrap();
    let tables = fingerprint::list_tables(&mut conn).await.unwrap();
    let now = fingerprint::fingerprint(&mut conn, &tables).await.unwrap();
    let recorded = fingerprint::Fingerprint {
        tables: manifest.tables.clone().unwrap(),
        sequences: manifest.sequences.clone().unwrap(),
    };
    assert!(
        recorded.differences(&now).is_empty(),
        "{:?}",
        recorded.differences(&now)
    );
    let events = recorded
        .tables
        .iter()
        .find(|t| t.name == "activity_events")
        .unwrap();
    assert_eq!(events.rows, 20_000);

    // Every table is in the archive.
    let info = lms_backup::postgres::archive::list(
        &engine.tools().pg_restore,
        lms_backup::postgres::archive::Input::Path(path.clone()),
    )
    .await
    .unwrap();
    for t in &tables {
        assert!(
            info.tables.contains(&format!("{}.{}", t.schema, t.name)),
            "{} missing",
            t.name
        );
    }
    assert_eq!(files(&engine), vec![b.filename.clone()]);
    assert!(engine.lock_status().await.unwrap().is_none());
}

#[tokio::test]
async fn the_fingerprint_describes_the_dumped_snapshot_not_later_writes() {
    // Writes during the dump must be in neither the archive nor the fingerprint.
    let base = spawn_engine().await;
    lms_backup::demo::seed(&base.dbs().lms, 1).await.unwrap();
    // pg_dump stops at the gate: the snapshot is taken, the dump not begun.
    let dump = Gate::new();
    let bin = lms_backup::testing::gated_tools(base.tools(), Some(&dump), None);
    let engine = base.with_tools(pgtools::locate(Some(&bin)).await.unwrap());
    let who = actor("alice");
    let started = engine.start_backup(manual(&who, None)).await.unwrap();
    dump.reached().await;
    for _ in 0..20 {
        sqlx::query("INSERT INTO courses (code, title) VALUES ('X' || gen_random_uuid(), 'late')")
            .execute(&engine.dbs().lms)
            .await
            .unwrap();
    }
    dump.open();
    assert_eq!(
        wait_for_job(&engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    let detail = catalog::get(&engine.dbs().control, started.backup.id)
        .await
        .unwrap();
    let courses = detail
        .manifest
        .unwrap()
        .tables
        .unwrap()
        .into_iter()
        .find(|t| t.name == "courses")
        .unwrap();
    // Restore the archive's courses table into a scratch database and count.
    let scratch = lms_backup::testing::fresh_database_url().await;
    let opts: sqlx::postgres::PgConnectOptions = scratch.parse().unwrap();
    let out = tokio::process::Command::new(&engine.tools().pg_restore)
        .args(["--no-owner", "--no-acl", "--exit-on-error", "-d"])
        .arg(&scratch)
        .arg(engine.config().backup_dir.join(&detail.backup.filename))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM courses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        rows, courses.rows,
        "the fingerprint counts what the archive holds"
    );
}

#[tokio::test]
async fn twenty_concurrent_backups_start_exactly_one() {
    let engine = spawn_engine().await;
    let who = actor("alice");
    let attempts = (0..20).map(|_| engine.start_backup(manual(&who, None)));
    let results = futures::future::join_all(attempts).await;
    let started: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(started.len(), 1, "exactly one starts");
    for r in &results {
        if let Err(e) = r {
            let Error::Busy(info) = e else {
                panic!("refused with Busy, got {e:?}")
            };
            assert_eq!(info.locked_by, "alice");
            assert_eq!(info.operation_type, Operation::Backup);
            assert!(e.to_string().contains("alice"), "{e}");
        }
    }
    assert_eq!(
        wait_for_job(&engine, started[0].job.id).await.status,
        JobStatus::Succeeded
    );
    let page = catalog::list(&engine.dbs().control, 0, 50).await.unwrap();
    assert_eq!(page.total, 1, "no extra catalog rows");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    assert_eq!(jobs, 1, "no extra job rows");
    assert_eq!(files(&engine).len(), 1, "no extra files");
}

#[tokio::test]
async fn pg_dump_killed_mid_run_leaves_nothing_behind() {
    let base = spawn_engine().await;
    lms_backup::demo::seed(&base.dbs().lms, 2).await.unwrap();
    let first = backup_ok(&base, None).await;
    let before = files(&base);
    let pid_file =
        std::env::temp_dir().join(format!("pgdump-pid-{}", uuid::Uuid::new_v4().simple()));
    let dir = lms_backup::testing::wrapped_pg_dump(
        base.tools(),
        &format!("echo $$ > '{}'\nexec \"$REAL\" \"$@\"", pid_file.display()),
    );
    let engine = base.with_tools(pgtools::locate(Some(&dir)).await.unwrap());

    let who = actor("alice");
    let started = engine.start_backup(manual(&who, None)).await.unwrap();
    let partial = engine
        .config()
        .backup_dir
        .join(format!("{}.partial", started.backup.filename));
    let pid = wait_until("pg_dump's pid", async || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
    .await;
    wait_until("the partial file", async || partial.exists().then_some(())).await;
    let pid: i32 = pid.trim().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let message = assert_clean_failure(&engine, started.job.id, &before).await;
    assert!(message.contains("signal 9"), "{message}");
    let row = catalog::get_row(&engine.dbs().control, started.backup.id)
        .await
        .unwrap();
    assert_eq!(row.status, BackupStatus::Failed);
    assert!(files(&engine).contains(&first.backup.filename));
    // The next backup works at once.
    backup_ok(&engine, None).await;
}

/// pg_dump says it succeeded, but the archive it wrote stops short: the
/// read back, made as the archive is written, fails the backup, and nothing
/// is kept.
#[tokio::test]
async fn an_archive_cut_short_while_dumping_fails_the_backup() {
    let base = spawn_engine().await;
    lms_backup::demo::seed(&base.dbs().lms, 2).await.unwrap();
    let first = backup_ok(&base, None).await;
    let before = files(&base);
    let full = first.backup.size_bytes.unwrap() as usize;
    // Past the table of contents, well before the end of the data.
    let dir = lms_backup::testing::wrapped_pg_dump(
        base.tools(),
        &format!("\"$REAL\" \"$@\" | head -c {}\nexit 0", full / 2),
    );
    let engine = base.with_tools(pgtools::locate(Some(&dir)).await.unwrap());
    let who = actor("alice");
    let started = engine.start_backup(manual(&who, None)).await.unwrap();
    let message = assert_clean_failure(&engine, started.job.id, &before).await;
    assert!(message.contains("pg_restore"), "{message}");
    let row = catalog::get_row(&engine.dbs().control, started.backup.id)
        .await
        .unwrap();
    assert_eq!(row.status, BackupStatus::Failed);
}

/// `BACKUP_COMPRESSION` reaches pg_dump: no compression gives a larger
/// archive than the highest level, and both are verified and restorable.
#[tokio::test]
async fn the_compression_level_is_the_configured_one() {
    let mut sizes = Vec::new();
    for level in [0u8, 9] {
        let engine = spawn_engine_with(|c| c.backup_compression = level).await;
        lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
        let detail = backup_ok(&engine, None).await;
        let path = engine.config().backup_dir.join(&detail.backup.filename);
        let info = lms_backup::postgres::archive::list(
            &engine.tools().pg_restore,
            lms_backup::postgres::archive::Input::Path(path),
        )
        .await
        .unwrap();
        assert!(info.tables.contains(&"public.courses".to_owned()));
        sizes.push(detail.backup.size_bytes.unwrap());
    }
    assert!(
        sizes[0] > sizes[1] * 2,
        "uncompressed {} bytes, level 9 {} bytes",
        sizes[0],
        sizes[1]
    );
}

#[tokio::test]
async fn a_wrong_database_password_fails_clearly() {
    let base = spawn_engine().await;
    backup_ok(&base, None).await;
    let before = files(&base);
    let mut dbs = base.dbs().clone();
    lms_backup::testing::set_tool_password(&mut dbs, "definitely-not-the-password");
    let engine = base.with_dbs(dbs);
    let who = actor("alice");
    let started = engine.start_backup(manual(&who, None)).await.unwrap();
    let message = assert_clean_failure(&engine, started.job.id, &before).await;
    assert!(message.contains("could not sign in"), "{message}");
    assert!(!message.contains("definitely-not-the-password"));
}

#[tokio::test]
async fn an_older_pg_dump_is_refused_before_anything_is_written() {
    let base = spawn_engine().await;
    let dir = lms_backup::testing::fake_tools("9.6.24");
    let engine = base.with_tools(pgtools::locate(Some(&dir)).await.unwrap());
    let who = actor("alice");
    let started = engine.start_backup(manual(&who, None)).await.unwrap();
    let message = assert_clean_failure(&engine, started.job.id, &[]).await;
    let (_, server) = pgtools::server_version(&engine.dbs().lms).await.unwrap();
    assert!(
        message.contains("9") && message.contains(&server),
        "{message}"
    );
    assert!(
        !dir.join("pg_dump.ran").exists(),
        "pg_dump was never run for a dump"
    );
}

#[tokio::test]
async fn retention_keeps_the_newest_good_backups_and_ignores_failed_ones() {
    let engine = spawn_engine_with(|c| c.max_backups_to_keep = 2).await;
    // Backups in the same second get distinct names (`_2`, `_3`); which
    // are newest is the catalog's order, not the names'.
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(backup_ok(&engine, None).await.backup.filename);
    }
    // A failed backup (wrong password) is not counted: the next good one
    // keeps the two newest good backups, whatever failed between them.
    let mut dbs = engine.dbs().clone();
    lms_backup::testing::set_tool_password(&mut dbs, "wrong");
    let broken = engine.with_dbs(dbs);
    let who = actor("alice");
    let failed = broken.start_backup(manual(&who, None)).await.unwrap();
    assert_eq!(
        wait_for_job(&broken, failed.job.id).await.status,
        JobStatus::Failed
    );
    names.push(backup_ok(&engine, None).await.backup.filename);

    let completed: Vec<String> =
        catalog::with_status(&engine.dbs().control, BackupStatus::Completed)
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.filename)
            .collect();
    assert_eq!(
        completed,
        [names[3].clone(), names[2].clone()],
        "the two newest remain"
    );
    let mut newest = [names[2].clone(), names[3].clone()];
    newest.sort();
    assert_eq!(files(&engine), newest);
    let failed_rows = catalog::with_status(&engine.dbs().control, BackupStatus::Failed)
        .await
        .unwrap();
    assert_eq!(failed_rows.len(), 1);

    // Even with a keep of zero, the newest good backup survives.
    let engine0 = spawn_engine_with(|c| c.max_backups_to_keep = 0).await;
    let only = backup_ok(&engine0, None).await.backup.filename;
    assert_eq!(files(&engine0), [only]);
}

#[tokio::test]
async fn delete_removes_file_sidecar_and_row_and_refuses_unknown_ids() {
    let engine = spawn_engine().await;
    let who = actor("alice");
    let detail = backup_ok(&engine, None).await;
    assert!(matches!(
        engine.delete_backup(detail.backup.id + 1000, &who).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        engine.delete_backup(-1, &who).await,
        Err(Error::NotFound(_))
    ));
    engine.delete_backup(detail.backup.id, &who).await.unwrap();
    assert!(files(&engine).is_empty());
    assert!(engine
        .backup_dir()
        .read_manifest(&detail.backup.filename)
        .await
        .is_none());
    assert!(matches!(
        catalog::get(&engine.dbs().control, detail.backup.id).await,
        Err(Error::NotFound(_))
    ));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'backup.delete' AND outcome = 'success'",
    )
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    assert!(engine.lock_status().await.unwrap().is_none());
}

#[tokio::test]
async fn delete_is_refused_while_another_operation_holds_the_lock() {
    let engine = spawn_engine().await;
    let who = actor("alice");
    let detail = backup_ok(&engine, None).await;
    let other = actor("bob");
    let mut tx = engine.dbs().control.begin().await.unwrap();
    lock::acquire_in(
        &mut tx,
        &lock::LockRequest {
            instance_id: "elsewhere:1:x",
            job_id: None,
            operation: Operation::Restore,
            actor: &other,
            lease_timeout: Duration::from_secs(30),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let refused = engine.delete_backup(detail.backup.id, &who).await;
    let Err(Error::Busy(info)) = refused else {
        panic!("expected Busy, got {refused:?}")
    };
    assert_eq!(
        (info.operation_type.as_str(), info.locked_by.as_str()),
        ("restore", "bob")
    );
    assert_eq!(files(&engine).len(), 1, "nothing deleted");
}

#[tokio::test]
async fn downloads_are_checked_against_the_manifest_and_never_follow_links() {
    let engine = spawn_engine().await;
    let who = actor("alice");
    let detail = backup_ok(&engine, None).await;
    let dl = engine.open_download(detail.backup.id).await.unwrap();
    assert_eq!(Some(dl.sha256.clone()), detail.backup.sha256);
    assert_eq!(Some(dl.size as i64), detail.backup.size_bytes);

    // Damage one byte: the download is refused.
    let path = engine.config().backup_dir.join(&detail.backup.filename);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        engine.open_download(detail.backup.id).await,
        Err(Error::Conflict(_))
    ));

    // Replace the archive with a symlink to a file outside: not followed.
    let outside = std::env::temp_dir().join(format!("outside-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&outside, b"not yours").unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    assert!(matches!(
        engine.open_download(detail.backup.id).await,
        Err(Error::NotFound(_))
    ));
    // Deleting removes the link, not the file it points to.
    engine.delete_backup(detail.backup.id, &who).await.unwrap();
    assert!(outside.exists());
    assert!(!Path::new(&path).exists() && std::fs::symlink_metadata(&path).is_err());
}

#[tokio::test]
async fn manual_backups_are_rate_limited_per_user() {
    let engine = spawn_engine_with(|c| c.backup_rate_limit = 1).await;
    backup_ok(&engine, None).await;
    let who = actor("alice");
    let refused = engine.start_backup(manual(&who, None)).await;
    let Err(Error::RateLimited { retry_at, message }) = refused else {
        panic!("expected 429, got {refused:?}")
    };
    assert!(retry_at > chrono::Utc::now() + chrono::Duration::minutes(59));
    assert!(message.contains("per hour"), "{message}");
    // Another user, and scheduled backups, are not limited by alice's.
    let bob = lms_backup::audit::Actor {
        id: Some(2),
        name: "bob".into(),
        client_ip: None,
    };
    let started = engine.start_backup(manual(&bob, None)).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    let scheduled = engine
        .start_backup(BackupRequest {
            actor: &who,
            notes: None,
            kind: BackupKind::Scheduled,
        })
        .await
        .unwrap();
    assert_eq!(
        wait_for_job(&engine, scheduled.job.id).await.status,
        JobStatus::Succeeded
    );
}

#[tokio::test]
async fn notes_are_length_limited() {
    let engine = spawn_engine().await;
    let who = actor("alice");
    let long = "x".repeat(engine.config().max_notes_len + 1);
    assert!(matches!(
        engine.start_backup(manual(&who, Some(&long))).await,
        Err(Error::Invalid(_))
    ));
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "a refused request leaves no job");
}

/// A completed catalog entry with `created_at` and, for an upload, the
/// archive's own time.
fn entry(
    name: &str,
    kind: BackupKind,
    created_at: chrono::DateTime<chrono::Utc>,
    taken_at: Option<chrono::DateTime<chrono::Utc>>,
    size: u64,
) -> lms_backup::storage::Manifest {
    lms_backup::storage::Manifest {
        manifest_version: 1,
        filename: name.to_owned(),
        kind,
        size_bytes: size,
        sha256: format!("{:064x}", size),
        created_at,
        taken_at,
        completed_at: created_at,
        created_by_id: None,
        created_by_name: "alice".into(),
        notes: None,
        original_name: None,
        database: String::new(),
        server_version: String::new(),
        pg_dump_version: String::new(),
        archive_version: String::new(),
        tables: None,
        sequences: None,
        duration_ms: 0,
        encryption: None,
    }
}

/// The card's headline used to read "Last backup: none yet · 1 backup · 0 B"
/// during a first backup, and to call an old archive uploaded today the
/// last backup. Running entries are not stored backups, and the last backup
/// is the newest taken.
#[tokio::test]
async fn the_headline_counts_stored_backups_and_the_newest_taken() {
    let engine = spawn_engine().await;
    let control = &engine.dbs().control;
    let who = actor("alice");
    // A backup under way: its job and its running entry.
    let job_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jobs (id, kind, status, started_by_name, instance_id)
         VALUES ($1, 'backup', 'running', 'alice', 'test')",
    )
    .bind(job_id)
    .execute(control)
    .await
    .unwrap();
    catalog::insert_running(
        control,
        catalog::NewEntry {
            filename: "backup_20261201_010000.dump",
            kind: BackupKind::Manual,
            notes: None,
            actor: &who,
            job_id,
        },
    )
    .await
    .unwrap();
    let stats = catalog::stats(control).await.unwrap();
    assert_eq!((stats.count, stats.stored_bytes), (0, 0), "{stats:?}");
    assert_eq!(stats.last_finished, None);

    let now = chrono::Utc::now();
    let day = chrono::Duration::days(1);
    let taken = entry("backup_a.dump", BackupKind::Manual, now - day, None, 1000);
    catalog::import(control, &taken).await.unwrap();
    // Uploaded now, but made from the data of a month ago.
    let old = entry(
        "upload_b.dump",
        BackupKind::Uploaded,
        now,
        Some(now - day * 30),
        500,
    );
    catalog::import(control, &old).await.unwrap();

    let stats = catalog::stats(control).await.unwrap();
    assert_eq!((stats.count, stats.stored_bytes), (2, 1500), "{stats:?}");
    assert_eq!(
        stats.last_finished.map(|b| b.filename).as_deref(),
        Some("backup_a.dump")
    );
    assert_eq!(
        stats.last_taken_at.map(|t| t.timestamp()),
        Some((now - day).timestamp())
    );
}
