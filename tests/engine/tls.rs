//! A DATABASE_URL that asks for verified TLS (`sslmode=verify-full`, the
//! CA's certificate, a client certificate) binds pg_dump and pg_restore as
//! well as the console's own connections. The test server (see
//! `throwaway_tls` in `scripts/lib.sh`) takes the role `lms_tls` only over
//! TLS and only with a client certificate from its CA: a tool that did not
//! get the URL's settings cannot connect at all.

use std::path::PathBuf;

use lms_backup::postgres::databases::DatabaseUrls;
use lms_backup::postgres::tools as pgtools;
use lms_backup::testing::{actor, start_manual_backup, wait_for_job};
use lms_backup::{catalog, Databases, Engine, EngineConfig};
use lms_types::{BackupStatus, JobStatus};
use sqlx::Connection;

/// The TLS-only role on the test server and the files that go with it.
struct TlsServer {
    /// `postgres://lms_tls:…@127.0.0.1:PORT`
    base: String,
    /// ca.crt, client.crt, client.key, other-ca.crt
    dir: PathBuf,
}

fn tls_server() -> TlsServer {
    let missing = "TEST_TLS_URL_BASE and TEST_TLS_DIR are not set: run scripts/test.sh, or call \
                   throwaway_tls (scripts/lib.sh) after throwaway_cluster and export them";
    TlsServer {
        base: std::env::var("TEST_TLS_URL_BASE").expect(missing),
        dir: std::env::var_os("TEST_TLS_DIR").expect(missing).into(),
    }
}

impl TlsServer {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// What an operator writes: verify the server against our CA, sign in
    /// with the client certificate.
    fn verified(&self) -> Vec<(&'static str, String)> {
        vec![
            ("sslmode", "verify-full".into()),
            ("sslrootcert", self.file("ca.crt")),
            ("sslcert", self.file("client.crt")),
            ("sslkey", self.file("client.key")),
        ]
    }

    /// [`TlsServer::verified`] with `name` set to `value` instead.
    fn verified_but(&self, name: &str, value: String) -> Vec<(&'static str, String)> {
        let mut params = self.verified();
        let param = params
            .iter_mut()
            .find(|(n, _)| *n == name)
            .expect("a parameter");
        param.1 = value;
        params
    }

    fn url(&self, database: &str, params: &[(&'static str, String)]) -> String {
        let mut url = url::Url::parse(&format!("{}/{database}", self.base)).expect("a URL");
        url.query_pairs_mut().extend_pairs(params);
        url.into()
    }

    /// A new empty database owned by `lms_tls`, and its verified URL.
    async fn fresh_database(&self) -> String {
        let name = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        let mut conn = sqlx::PgConnection::connect(&self.url("lms_tls", &self.verified()))
            .await
            .expect("connect to the test server over TLS");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        conn.close().await.expect("close");
        self.url(&name, &self.verified())
    }
}

/// An engine whose DATABASE_URL is `url` (the control database beside it).
async fn engine_at(url: String) -> Engine {
    lms_backup::testing::init_test_log();
    let dbs = Databases::connect(&DatabaseUrls {
        lms: url,
        control: None,
    })
    .await
    .expect("connect over TLS");
    dbs.migrate().await.expect("migrate");
    let dir = lms_backup::testing::scratch_dir("lms-backups-tls");
    let mut config = EngineConfig::new(dir);
    config.backup_rate_limit = 0;
    let bin = std::env::var_os("POSTGRES_BIN_PATH").map(PathBuf::from);
    let tools = pgtools::locate(bin.as_deref())
        .await
        .expect("pg_dump and pg_restore");
    Engine::new(dbs, tools, config).await.expect("engine")
}

async fn course_titles(engine: &Engine) -> Vec<String> {
    sqlx::query_scalar("SELECT title FROM courses ORDER BY code")
        .fetch_all(&engine.dbs().lms)
        .await
        .unwrap()
}

#[tokio::test]
async fn backup_and_restore_go_over_the_tls_the_url_asks_for() {
    let server = tls_server();
    // The premise: this role cannot connect in plain text, nor over TLS
    // without its client certificate.
    for params in [
        vec![("sslmode", "disable".to_owned())],
        vec![
            ("sslmode", "verify-full".to_owned()),
            ("sslrootcert", server.file("ca.crt")),
        ],
    ] {
        let refused = sqlx::PgConnection::connect(&server.url("lms_tls", &params)).await;
        assert!(refused.is_err(), "{params:?} is refused");
    }

    let engine = engine_at(server.fresh_database().await).await;
    sqlx::query(
        "INSERT INTO courses (code, title) SELECT 'TLS-' || g, 'course ' || g FROM generate_series(1, 40) g",
    )
    .execute(&engine.dbs().lms)
    .await
    .unwrap();
    let before = course_titles(&engine).await;

    let who = actor("alice");
    let started = start_manual_backup(&engine, &who).await.unwrap();
    let job = wait_for_job(&engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.message);
    let detail = catalog::get(&engine.dbs().control, started.backup.id)
        .await
        .unwrap();
    assert_eq!(detail.backup.status, BackupStatus::Completed);

    sqlx::query("DELETE FROM courses WHERE code LIKE 'TLS-%'")
        .execute(&engine.dbs().lms)
        .await
        .unwrap();
    let restore = engine
        .start_restore(started.backup.id, true, &who)
        .await
        .unwrap();
    let job = wait_for_job(&engine, restore.id).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{:?}", job.message);
    assert_eq!(
        course_titles(&engine).await,
        before,
        "the backup's data is back"
    );
}

/// A backup whose pg_dump is given the settings of `tool_params` (the
/// pools keep the verified ones): it fails, with `expected` in its message,
/// and keeps nothing.
async fn backup_fails_for_a_tool_with(tool_params: Vec<(&'static str, String)>, expected: &str) {
    let server = tls_server();
    let base = engine_at(server.fresh_database().await).await;
    let mut dbs = base.dbs().clone();
    lms_backup::testing::set_tool_url(&mut dbs, &server.url(base.dbs().lms_name(), &tool_params));
    let engine = base.with_dbs(dbs);
    let who = actor("alice");
    let started = start_manual_backup(&engine, &who).await.unwrap();
    let job = wait_for_job(&engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let message = job.message.unwrap_or_default();
    assert!(message.contains(expected), "{message}");
    for internal in [
        server.dir.display().to_string(),
        "FATAL".into(),
        "SSL error".into(),
    ] {
        assert!(!message.contains(&internal), "no {internal}: {message}");
    }
    let row = catalog::get(&engine.dbs().control, started.backup.id)
        .await
        .unwrap();
    assert_eq!(row.backup.status, BackupStatus::Failed);
    let left: Vec<_> = std::fs::read_dir(&engine.config().backup_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .collect();
    assert!(left.is_empty(), "nothing kept: {left:?}");
}

#[tokio::test]
async fn a_tool_told_to_trust_another_ca_refuses_the_server() {
    let server = tls_server();
    let params = server.verified_but("sslrootcert", server.file("other-ca.crt"));
    backup_fails_for_a_tool_with(params, "could not set up a verified TLS connection").await;
}

#[tokio::test]
async fn a_tool_told_not_to_use_tls_is_refused() {
    let server = tls_server();
    let params = server.verified_but("sslmode", "disable".into());
    backup_fails_for_a_tool_with(params, "refused a connection without TLS").await;
}
