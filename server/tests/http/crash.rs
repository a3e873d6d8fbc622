//! The real `lms-admin` binary killed with SIGKILL in the middle of a backup,
//! then started again.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::PASSWORD;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Server {
    /// `GET path` as `client`; the answer as JSON.
    pub(crate) async fn get_json(&self, client: &reqwest::Client, path: &str) -> Value {
        json(
            client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Starts a backup as `client`; the answer (job and backup) as JSON.
    pub(crate) async fn start_backup(&self, client: &reqwest::Client) -> Value {
        json(
            client
                .post(format!("{}/api/admin/backup/create", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Polls a job until it is no longer running; its last state.
    pub(crate) async fn wait_for_job(&self, client: &reqwest::Client, job: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let state = self
                .get_json(client, &format!("/api/admin/backup/jobs/{job}"))
                .await;
            if state["status"] != "running" {
                return state;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {job} never ended: {state}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lms_admin(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lms-admin"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LEPTOS_OUTPUT_NAME", "lms-admin");
    for (k, v) in env {
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
    for _ in 0..300 {
        if reqwest::get(format!("{}/api/auth/me", server.base))
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("lms-admin did not start");
}

/// pg_dump that waits two seconds before dumping: long enough to kill the
/// server in the middle of the backup.
pub(crate) async fn slow_tools() -> PathBuf {
    let real = lms_backup::postgres::tools::locate(None).await.unwrap();
    lms_backup::testing::wrapped_pg_dump(&real, "sleep 2\nexec \"$REAL\" \"$@\"")
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
pub(crate) async fn sign_in(server: &Server) -> reqwest::Client {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let res = client
        .post(format!("{}/api/auth/login", server.base))
        .json(&serde_json::json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    client
}

pub(crate) async fn json(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_server_killed_mid_backup_recovers_on_restart() {
    let dir = std::env::temp_dir().join(format!("crash-{}", uuid::Uuid::new_v4().simple()));
    let backups = dir.join("backups");
    let env = [
        (
            "DATABASE_URL",
            lms_backup::testing::fresh_database_url().await,
        ),
        ("BACKUP_DIR", backups.display().to_string()),
        (
            "POSTGRES_BIN_PATH",
            slow_tools().await.display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);

    let mut server = start(&env).await;
    let client = sign_in(&server).await;
    let started = server.start_backup(&client).await;
    let job_id = started["job"]["id"].as_str().unwrap().to_owned();
    let partial = backups.join(format!(
        "{}.partial",
        started["backup"]["filename"].as_str().unwrap()
    ));
    for _ in 0..100 {
        if partial.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(partial.exists(), "the backup is under way");
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let server = start(&env).await;
    // Sessions live in the control database: the same cookie still works.
    let job = server
        .get_json(&client, &format!("/api/admin/backup/jobs/{job_id}"))
        .await;
    assert_eq!(job["status"], "interrupted", "{job}");
    assert!(!partial.exists(), "the partial file was removed");
    let status = json(
        client
            .get(format!("{}/api/admin/backup/status", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status["is_locked"], false, "{status}");

    let res = client
        .post(format!("{}/api/admin/backup/create", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "a new backup starts at once");
    let again = json(res).await;
    let last = server
        .wait_for_job(&client, again["job"]["id"].as_str().unwrap())
        .await;
    assert_eq!(last["status"], "succeeded", "{last}");
    let list = json(
        client
            .get(format!("{}/api/admin/backup/list", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let statuses: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed", "failed"]);
    drop(server);
    std::fs::remove_dir_all(dir).ok();
}

/// pg_restore that waits two seconds before restoring into a database: long
/// enough to kill the server while the shadow copy is being built.
async fn slow_restore_tools() -> PathBuf {
    let real = lms_backup::postgres::tools::locate(None).await.unwrap();
    let bin = lms_backup::testing::scratch_dir("pg-slow-restore");
    std::os::unix::fs::symlink(&real.pg_dump, bin.join("pg_dump")).unwrap();
    std::fs::write(
        bin.join("pg_restore"),
        format!(
            "#!/bin/sh\ncase \"$*\" in *--dbname=*) sleep 2;; esac\nexec '{}' \"$@\"\n",
            real.pg_restore.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.join("pg_restore"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    bin
}

#[tokio::test]
async fn a_server_killed_during_the_shadow_restore_leaves_one_live_database() {
    let dir = lms_backup::testing::scratch_dir("crash-restore");
    let url = lms_backup::testing::fresh_database_url().await;
    let db = url.rsplit_once('/').unwrap().1.to_owned();
    let env = [
        ("DATABASE_URL", url.clone()),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
        (
            "POSTGRES_BIN_PATH",
            slow_restore_tools().await.display().to_string(),
        ),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);

    let mut server = start(&env).await;
    let client = sign_in(&server).await;
    let started = server.start_backup(&client).await;
    let backup_id = started["backup"]["id"].as_i64().unwrap();
    server
        .wait_for_job(&client, started["job"]["id"].as_str().unwrap())
        .await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO courses (code, title) VALUES ('AFTER', 'written after the backup')")
        .execute(&pool)
        .await
        .unwrap();

    let res = client
        .post(format!(
            "{}/api/admin/backup/restore/{backup_id}",
            server.base
        ))
        .json(&serde_json::json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let shadows = |pool: sqlx::PgPool, db: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1 || '\\_restore\\_%'",
        )
        .bind(db)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    for _ in 0..100 {
        if shadows(pool.clone(), db.clone()).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let status = json(
        client
            .get(format!("{}/api/admin/backup/status", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status["is_locked"], false, "{status}");
    assert_eq!(status["maintenance"], false);
    assert_eq!(status["job"]["status"], "interrupted", "{status}");
    pool.close().await;
}

/// Starts a restore on a server that stops for good at `point` of the swap,
/// kills it there (SIGKILL), starts it again and returns what is left: the
/// number of rows written after the backup that the live database still has,
/// the status, and the databases named after the LMS one.
async fn restore_killed_at(point: &str) -> (i64, Value, Vec<String>) {
    let dir = lms_backup::testing::scratch_dir("crash-swap");
    let url = lms_backup::testing::fresh_database_url().await;
    let db = url.rsplit_once('/').unwrap().1.to_owned();
    let paused = dir.join("paused");
    let env = vec![
        ("DATABASE_URL", url.clone()),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
        ("BACKUP_RATE_LIMIT", "0".to_string()),
    ];
    create_admin(&env);
    let mut pausing = env.clone();
    pausing.push(("LMS_TEST_PAUSE_AT", point.to_owned()));
    pausing.push(("LMS_TEST_PAUSE_FILE", paused.display().to_string()));

    let mut server = start(&pausing).await;
    let client = sign_in(&server).await;
    let started = server.start_backup(&client).await;
    let j = server
        .wait_for_job(&client, started["job"]["id"].as_str().unwrap())
        .await;
    assert_eq!(j["status"], "succeeded", "{j}");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO courses (code, title) VALUES ('AFTER', 'written after the backup')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let res = client
        .post(format!(
            "{}/api/admin/backup/restore/{}",
            server.base, started["backup"]["id"]
        ))
        .json(&serde_json::json!({ "confirm": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    for _ in 0..600 {
        if paused.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(paused.exists(), "the server reached {point}");
    server.child.kill().unwrap(); // SIGKILL, in the middle of the swap
    server.child.wait().unwrap();

    let server = start(&env).await;
    let old_cookie = client
        .get(format!("{}/api/admin/backup/status", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        old_cookie.status(),
        401,
        "whether or not the switch happened, everyone signs in again"
    );
    let client = sign_in(&server).await;
    let status = json(
        client
            .get(format!("{}/api/admin/backup/status", server.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
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
    assert_eq!(status["is_locked"], false, "{status}");
    assert_eq!(status["maintenance"], false, "{status}");
    assert_eq!(status["undo_available"], false, "{status}");
    assert_eq!(status["job"]["status"], "interrupted", "{status}");
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
    assert_eq!(status["is_locked"], false, "{status}");
    assert_eq!(status["maintenance"], false, "{status}");
    assert_eq!(status["undo_available"], true, "{status}");
    assert_eq!(status["job"]["status"], "interrupted", "{status}");
    assert!(
        status["job"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing is half-done"),
        "{status}"
    );
}
