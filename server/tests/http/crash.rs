//! The real `lms-admin` binary killed with SIGKILL in the middle of a backup,
//! then started again.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use app::models::OperationStatus;
use lms_backup::testing::{wait_until, Gate};
use lms_types::JobStatus;

use crate::client::ApiClient;
use crate::support::PASSWORD;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Server {
    /// A client of this server with an empty cookie jar.
    pub(crate) fn client(&self) -> ApiClient {
        ApiClient::new(&self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn lms_admin(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lms-admin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LEPTOS_OUTPUT_NAME", "lms-admin");
    for (k, v) in env {
        if *k == "DATABASE_URL" {
            // Each test database has a restore role of its own.
            cmd.env("RESTORE_ROLE", lms_backup::testing::restore_role_for_url(v));
        }
        cmd.env(k, v);
    }
    cmd
}

pub(crate) async fn start(env: &[(&str, String)]) -> Server {
    start_logging(env, None).await
}

/// Starts the binary with its log (stderr) written to `log`, if given.
pub(crate) async fn start_logging(env: &[(&str, String)], log: Option<&std::path::Path>) -> Server {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server {
        child: lms_admin(env)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let me = format!("{}/api/auth/me", server.base);
    wait_until("lms-admin to answer", async || {
        reqwest::get(&me).await.ok().map(drop)
    })
    .await;
    server
}

/// A bin directory with the real tools, pg_dump stopping at `dump` and
/// pg_restore (when it loads into a database) at `restore`.
pub(crate) async fn gated_tools(dump: Option<&Gate>, restore: Option<&Gate>) -> PathBuf {
    let real = lms_backup::postgres::tools::locate(None).await.unwrap();
    lms_backup::testing::gated_tools(&real, dump, restore)
}

/// Creates the administrator "alice" with the binary's own CLI.
pub(crate) fn create_admin(env: &[(&str, String)]) {
    use std::io::Write;
    let mut create = lms_admin(env)
        .args([
            "user",
            "create",
            "--username",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(create.wait().unwrap().success());
}

/// A client signed in as alice (sessions outlive server restarts).
pub(crate) async fn sign_in(server: &Server) -> ApiClient {
    let client = server.client();
    client.sign_in("alice", PASSWORD).await.unwrap();
    client
}

#[tokio::test]
async fn a_server_killed_mid_backup_recovers_on_restart() {
    let dir = std::env::temp_dir().join(format!("crash-{}", uuid::Uuid::new_v4().simple()));
    let backups = crate::support::backup_dir_in(&dir);
    // pg_dump stops at the gate: the backup is under way until the kill.
    let dump = Gate::new();
    let env = [
        (
            "DATABASE_URL",
            lms_backup::testing::fresh_database_url().await,
        ),
        ("BACKUP_DIR", backups.display().to_string()),
        (
            "POSTGRES_BIN_PATH",
            gated_tools(Some(&dump), None).await.display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);

    let mut server = start(&env).await;
    let client = sign_in(&server).await;
    let started = client.create_backup(None).await.unwrap();
    let partial = backups.join(format!("{}.partial", started.backup.filename));
    wait_until(
        "the backup to be under way (its partial file)",
        async || partial.exists().then_some(()),
    )
    .await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let server = start(&env).await;
    // Sessions live in the control database: the same cookie still works.
    let client = client.at(&server.base);
    let job = client.job(&started.job.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Interrupted, "{job:?}");
    assert!(!partial.exists(), "the partial file was removed");
    let status = client.status().await.unwrap();
    assert!(!status.is_locked, "{status:?}");

    dump.open();
    let again = client
        .create_backup(None)
        .await
        .expect("a new backup starts at once");
    let last = client.wait_for_job(&again.job.id).await;
    assert_eq!(last.status, JobStatus::Succeeded, "{last:?}");
    let list = client.list_backups().await.unwrap();
    let statuses: Vec<&str> = list.backups.iter().map(|b| b.status.as_str()).collect();
    assert_eq!(statuses, ["completed", "failed"]);
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_server_killed_during_the_shadow_restore_leaves_one_live_database() {
    let dir = lms_backup::testing::scratch_dir("crash-restore");
    let url = lms_backup::testing::fresh_database_url().await;
    let db = url.rsplit_once('/').unwrap().1.to_owned();
    // pg_restore stops at the gate before it loads into the shadow copy.
    let load = Gate::new();
    let env = [
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
        (
            "POSTGRES_BIN_PATH",
            gated_tools(None, Some(&load)).await.display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);

    let mut server = start(&env).await;
    let client = sign_in(&server).await;
    let backup_id = client.backup_now().await.backup.id;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO courses (code, title) VALUES ('AFTER', 'written after the backup')")
        .execute(&pool)
        .await
        .unwrap();

    client.restore(backup_id).await.unwrap();
    let shadows = |pool: sqlx::PgPool, db: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1 || '\\_restore\\_%'",
        )
        .bind(db)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    load.reached().await;
    assert_eq!(
        shadows(pool.clone(), db.clone()).await,
        1,
        "the shadow copy is being built"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let server = start(&env).await;
    assert_eq!(
        shadows(pool.clone(), db.clone()).await,
        0,
        "start-up dropped the orphan shadow"
    );
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM courses WHERE code = 'AFTER'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        after, 1,
        "the live database is the one from before the restore"
    );
    let status = client.at(&server.base).status().await.unwrap();
    assert!(!status.is_locked, "{status:?}");
    assert!(!status.maintenance);
    assert_eq!(status.job.unwrap().status, JobStatus::Interrupted);
    pool.close().await;
}

#[tokio::test]
async fn a_server_killed_mid_drill_leaves_no_scratch_database() {
    let dir = lms_backup::testing::scratch_dir("crash-drill");
    let url = lms_backup::testing::fresh_database_url().await;
    let db = url.rsplit_once('/').unwrap().1.to_owned();
    // pg_restore stops at the gate before it loads into the scratch database.
    let load = Gate::new();
    let env = [
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
        (
            "POSTGRES_BIN_PATH",
            gated_tools(None, Some(&load)).await.display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);
    let mut server = start(&env).await;
    let client = sign_in(&server).await;
    let backup_id = client.backup_now().await.backup.id;
    let drill = client
        .post("/api/admin/backup/drill")
        .json(&serde_json::json!({ "backup_id": backup_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(drill.status(), 202);
    let job: app::models::JobInfo = drill.json().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let scratch = |pool: sqlx::PgPool, db: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1 || '\\_drill\\_%'",
        )
        .bind(db)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    load.reached().await;
    assert_eq!(
        scratch(pool.clone(), db.clone()).await,
        1,
        "the scratch database is being built"
    );
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let server = start(&env).await;
    assert_eq!(
        scratch(pool.clone(), db.clone()).await,
        0,
        "start-up dropped the orphan scratch database"
    );
    let client = client.at(&server.base);
    assert_eq!(
        client.job(&job.id).await.unwrap().status,
        JobStatus::Interrupted
    );
    assert!(!client.status().await.unwrap().is_locked);
    pool.close().await;
}

/// Starts a restore on a server that stops for good at `point` of the swap,
/// kills it there (SIGKILL), starts it again and returns what is left: the
/// number of rows written after the backup that the live database still has,
/// the status, and the databases named after the LMS one.
async fn restore_killed_at(point: &str) -> (i64, OperationStatus, Vec<String>) {
    let dir = lms_backup::testing::scratch_dir("crash-swap");
    let url = lms_backup::testing::fresh_database_url().await;
    let db = url.rsplit_once('/').unwrap().1.to_owned();
    let paused = dir.join("paused");
    let env = vec![
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);
    let mut pausing = env.clone();
    pausing.push(("LMS_TEST_PAUSE_AT", point.to_owned()));
    pausing.push(("LMS_TEST_PAUSE_FILE", paused.display().to_string()));

    let mut server = start(&pausing).await;
    let client = sign_in(&server).await;
    let started = client.backup_now().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO courses (code, title) VALUES ('AFTER', 'written after the backup')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    client.restore(started.backup.id).await.unwrap();
    wait_until(format_args!("the server to reach {point}"), async || {
        paused.exists().then_some(())
    })
    .await;
    server.child.kill().unwrap(); // SIGKILL, in the middle of the swap
    server.child.wait().unwrap();

    let server = start(&env).await;
    let old_cookie = client.at(&server.base).status().await.unwrap_err();
    assert_eq!(
        old_cookie.status, 401,
        "whether or not the switch happened, everyone signs in again"
    );
    let client = sign_in(&server).await;
    let status = client.status().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM courses WHERE code = 'AFTER'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 || '%' AND datname <> $1 || '_control' ORDER BY 1",
    )
    .bind(&db)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    drop(server);
    std::fs::remove_dir_all(dir).ok();
    let databases = databases
        .into_iter()
        .map(|d| d.replacen(&db, "<db>", 1))
        .collect();
    (after, status, databases)
}

#[tokio::test]
async fn a_server_killed_between_the_two_renames_changes_nothing() {
    let (after, status, databases) = restore_killed_at("swap:between-renames").await;
    assert_eq!(
        after, 1,
        "the live database is the one from before the restore"
    );
    assert_eq!(
        databases,
        ["<db>"],
        "one live database, no copy, nothing kept"
    );
    assert!(!status.is_locked, "{status:?}");
    assert!(!status.maintenance, "{status:?}");
    assert!(!status.undo_available, "{status:?}");
    assert_eq!(status.job.unwrap().status, JobStatus::Interrupted);
}

#[tokio::test]
async fn a_server_killed_after_the_renames_has_switched_completely() {
    let (after, status, databases) = restore_killed_at("swap:after-renames").await;
    assert_eq!(after, 0, "the live database is the restored one");
    assert_eq!(databases.len(), 2, "{databases:?}");
    assert_eq!(databases[0], "<db>");
    assert!(
        databases[1].starts_with("<db>_pre_restore_"),
        "{databases:?}"
    );
    assert!(!status.is_locked, "{status:?}");
    assert!(!status.maintenance, "{status:?}");
    assert!(status.undo_available, "{status:?}");
    let job = status.job.unwrap();
    assert_eq!(job.status, JobStatus::Interrupted, "{job:?}");
    assert!(
        job.message
            .as_deref()
            .unwrap()
            .contains("nothing is half-done"),
        "{job:?}"
    );
}

/// A record recovery killed (SIGKILL) after its inserts, before its
/// transaction commits: the live database is exactly as before, the
/// prepared copy is still there to try again, and nothing stays locked.
#[tokio::test]
async fn a_server_killed_mid_recovery_leaves_the_live_database_as_it_was() {
    let dir = lms_backup::testing::scratch_dir("crash-recover");
    let url = lms_backup::testing::fresh_database_url().await;
    let paused = dir.join("paused");
    let env = vec![
        ("DATABASE_URL", url.clone()),
        (
            "BACKUP_DIR",
            crate::support::backup_dir_in(&dir).display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);
    let mut pausing = env.clone();
    pausing.push(("LMS_TEST_PAUSE_AT", "recover:before-commit".to_owned()));
    pausing.push(("LMS_TEST_PAUSE_FILE", paused.display().to_string()));

    let mut server = start(&pausing).await;
    let client = sign_in(&server).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let course: i64 = sqlx::query_scalar(
        "INSERT INTO courses (code, title) VALUES ('GONE', 'deleted after the backup') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO lessons (course_id, position, title) VALUES ($1, 1, 'one'), ($1, 2, 'two')",
    )
    .bind(course)
    .execute(&pool)
    .await
    .unwrap();
    let started = client.backup_now().await;
    sqlx::query("DELETE FROM courses WHERE id = $1")
        .bind(course)
        .execute(&pool)
        .await
        .unwrap();
    let contents = async || -> Vec<String> {
        sqlx::query_scalar(
            "SELECT 'c' || to_jsonb(c)::text FROM courses c
             UNION ALL SELECT 'l' || to_jsonb(l)::text FROM lessons l ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let before = contents().await;

    let preview = client
        .post(&format!("/api/admin/backup/{}/preview", started.backup.id))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), 202);
    let job: serde_json::Value = preview.json().await.unwrap();
    client.wait_for_job(job["id"].as_str().unwrap()).await;
    let recover = client
        .post("/api/admin/backup/recover")
        .json(
            &serde_json::json!({ "table": "courses", "key": course.to_string(), "confirm": true }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(recover.status(), 202);
    let job: serde_json::Value = recover.json().await.unwrap();
    wait_until("the recovery to reach its commit", async || {
        paused.exists().then_some(())
    })
    .await;
    server.child.kill().unwrap(); // SIGKILL, inserts done, not committed
    server.child.wait().unwrap();

    let server = start(&env).await;
    let client = client.at(&server.base);
    wait_until("the killed transaction to be gone", async || {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (open == 0).then_some(())
    })
    .await;
    assert_eq!(contents().await, before, "nothing of the recovery is left");
    assert_eq!(
        client
            .job(job["id"].as_str().unwrap())
            .await
            .unwrap()
            .status,
        JobStatus::Interrupted
    );
    assert!(!client.status().await.unwrap().is_locked);
    // The prepared copy survived the restart: the recovery can be run again.
    let again = client
        .post("/api/admin/backup/recover")
        .json(
            &serde_json::json!({ "table": "courses", "key": course.to_string(), "confirm": true }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    let job: serde_json::Value = again.json().await.unwrap();
    let done = client.wait_for_job(job["id"].as_str().unwrap()).await;
    assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
    let back: i64 = sqlx::query_scalar("SELECT count(*) FROM lessons WHERE course_id = $1")
        .bind(course)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(back, 2);
    pool.close().await;
}
