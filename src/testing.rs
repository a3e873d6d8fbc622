//! Test support (feature `testing`): a fresh, migrated pair of databases per
//! test, on the PostgreSQL server named by `TEST_DATABASE_URL` (a role with
//! CREATEDB; `scripts/test.sh` starts one and sets it).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::postgres::databases::{quote_ident, DatabaseUrls};
use crate::Databases;

/// The server URL tests run against. Panics with instructions when unset:
/// integration tests never skip silently.
pub fn test_server_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL is not set: run scripts/test.sh, which starts a PostgreSQL \
         server for the tests, or point it at a role with CREATEDB",
    )
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database_url() -> String {
    // Short enough that "<name>_pre_restore_<timestamp>" fits in 63 bytes.
    let name = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    database_url_named(&name).await
}

/// Creates an empty database called `name` and returns its URL. The
/// database gets a restore role of its own ([`restore_role_for`]), set up as
/// an operator sets one up: tests run side by side, and every restore job
/// sets and removes its role's password, so no two tests share one.
pub async fn database_url_named(name: &str) -> String {
    let server = test_server_url();
    let options = PgConnectOptions::from_str(&server).expect("TEST_DATABASE_URL is a URL");
    let mut conn = PgConnection::connect_with(&options)
        .await
        .expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE {}", quote_ident(name)))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    create_restore_role(&restore_role_for(name), options.get_username()).await;
    let (base, _) = server.rsplit_once('/').expect("URL has a database part");
    format!("{base}/{name}")
}

/// The restore role of a test database (see [`database_url_named`]).
pub fn restore_role_for(database: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(database.as_bytes()));
    format!("restore_{}", &hash[..16])
}

/// The restore role of the database a URL names, for a server or CLI
/// started by a test (`RESTORE_ROLE`).
pub fn restore_role_for_url(url: &str) -> String {
    let database = url
        .rsplit_once('/')
        .map(|(_, db)| db.split('?').next().unwrap_or(db))
        .expect("URL has a database part");
    restore_role_for(database)
}

/// Creates a restore role the application role `app` is a member of, as
/// the operator guide says (the test role may not create roles, so this
/// takes the superuser).
pub async fn create_restore_role(role: &str, app: &str) {
    let mut su = PgConnection::connect(&superuser_url())
        .await
        .expect("connect as the test superuser");
    for statement in [
        format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
            quote_ident(role)
        ),
        format!("GRANT {} TO {}", quote_ident(role), quote_ident(app)),
    ] {
        sqlx::query(&statement)
            .execute(&mut su)
            .await
            .expect("set up a restore role");
    }
    let _ = su.close().await;
}

/// Sends the engine's log to the test's output (shown for failing tests),
/// filtered by `RUST_LOG` (errors only by default).
pub fn init_test_log() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A fresh LMS database and its control database, both migrated.
pub async fn spawn_db() -> Databases {
    init_test_log();
    let urls = DatabaseUrls {
        lms: fresh_database_url().await,
        control: None,
    };
    connect_and_migrate(&urls).await
}

async fn connect_and_migrate(urls: &DatabaseUrls) -> Databases {
    let dbs = Databases::connect(urls)
        .await
        .expect("connect to the test databases");
    dbs.migrate().await.expect("migrate the test databases");
    dbs
}

/// An engine on fresh databases with its own backup directory and no rate
/// limit. The directory is under the system temp dir.
pub async fn spawn_engine() -> crate::Engine {
    spawn_engine_with(|_| {}).await
}

/// Like [`spawn_engine`], with the configuration adjusted first.
pub async fn spawn_engine_with(adjust: impl FnOnce(&mut crate::EngineConfig)) -> crate::Engine {
    engine_on(spawn_db().await, adjust).await
}

/// An engine whose LMS database is called `lms_name` (a fresh control
/// database beside it), to test names near PostgreSQL's 63-byte limit.
pub async fn spawn_engine_named(lms_name: &str) -> crate::Engine {
    init_test_log();
    let urls = DatabaseUrls {
        lms: database_url_named(lms_name).await,
        control: Some(fresh_database_url().await),
    };
    engine_on(connect_and_migrate(&urls).await, |_| {}).await
}

async fn engine_on(dbs: Databases, adjust: impl FnOnce(&mut crate::EngineConfig)) -> crate::Engine {
    let dir = std::env::temp_dir().join(format!("lms-backups-{}", uuid::Uuid::new_v4().simple()));
    let mut config = crate::EngineConfig::new(dir);
    config.backup_rate_limit = 0;
    config.restore_role = Some(restore_role_for(dbs.lms_name()));
    adjust(&mut config);
    // The operator's part: the server never creates its backup directory.
    crate::storage::BackupDir::new(&config.backup_dir)
        .ensure()
        .await
        .expect("create the backup directory");
    let tools = crate::postgres::tools::locate(config_tools_dir().as_deref())
        .await
        .expect("pg_dump and pg_restore");
    crate::Engine::new(dbs, tools, config)
        .await
        .expect("engine")
}

fn config_tools_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("POSTGRES_BIN_PATH").map(Into::into)
}

/// Replaces the password the PostgreSQL tools are given (the pools keep
/// theirs), to test what a tool's failed sign-in looks like.
pub fn set_tool_password(dbs: &mut Databases, password: &str) {
    dbs.lms_password = Some(password.to_owned());
}

/// Gives the PostgreSQL tools the connection settings of `url` (server,
/// role, TLS; not its password), while the pools keep theirs: to test what
/// a tool makes of settings the console's own connections would refuse.
pub fn set_tool_url(dbs: &mut Databases, url: &str) {
    dbs.lms_tools = crate::postgres::databases::parse_url(url, "the URL")
        .expect("a database URL")
        .1;
}

/// How long a test waits for a state before it gives up. Generous on
/// purpose: a busy machine makes a test slower, never red.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// The pause between two looks at a state that is not there yet.
const POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// Waits for a state: calls `probe` until it returns `Some`, and returns
/// that. Panics naming `what` when [`PATIENCE`] runs out. The one place
/// tests wait; they never wait for time to pass.
pub async fn wait_until<T>(
    what: impl std::fmt::Display,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// True while a job has yet to end.
pub fn is_unfinished(status: lms_types::JobStatus) -> bool {
    !status.is_finished()
}

/// Waits until a job has ended and returns it.
pub async fn wait_for_job(engine: &crate::Engine, id: uuid::Uuid) -> crate::jobs::Job {
    wait_until(format_args!("job {id} to end"), async || {
        let job = crate::jobs::get(&engine.dbs().control, id)
            .await
            .expect("read job")
            .expect("job exists");
        (!is_unfinished(job.status)).then_some(job)
    })
    .await
}

/// The fingerprint of the database `options` point at, through a fresh
/// connection.
pub async fn fingerprint_of(
    options: &PgConnectOptions,
) -> crate::postgres::fingerprint::Fingerprint {
    let mut conn = PgConnection::connect_with(options).await.expect("connect");
    let tables = crate::postgres::fingerprint::list_tables(&mut conn)
        .await
        .expect("list the tables");
    let fingerprint = crate::postgres::fingerprint::fingerprint(&mut conn, &tables)
        .await
        .expect("fingerprint");
    let _ = conn.close().await;
    fingerprint
}

/// For how many tables the first comparison of each prepared copy took the
/// copy's side from the sums made while it was restored, by copy.
static COPY_SUMS_REUSED: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn note_copy_sums_reused(copy: &str, tables: usize) {
    COPY_SUMS_REUSED
        .lock()
        .unwrap()
        .push((copy.to_owned(), tables));
}

/// For how many tables each comparison of the prepared copy `copy` so far
/// reused the sums made while it was restored, in order.
pub fn copy_sums_reused(copy: &str) -> Vec<usize> {
    COPY_SUMS_REUSED
        .lock()
        .unwrap()
        .iter()
        .filter(|(c, _)| c == copy)
        .map(|(_, n)| *n)
        .collect()
}

/// The current prepared copy compared with the live database afresh, both
/// sides scanned (nothing kept from its restore); the result is not stored.
pub async fn compare_prepared_afresh(engine: &crate::Engine) -> Vec<lms_types::records::TableDiff> {
    let copy = engine
        .prepared_copy()
        .await
        .expect("read the prepared copy")
        .expect("a prepared copy");
    let (live, pool) = engine
        .prepared_pools(&copy.database_name)
        .await
        .expect("pools on both sides");
    let (diff, reused) = crate::records::diff::compare(&live, &pool, None)
        .await
        .expect("compare");
    assert_eq!(reused, 0);
    live.close().await;
    pool.close().await;
    engine
        .close_restore_role()
        .await
        .expect("close the restore role");
    diff
}

/// The fingerprint of an engine's live LMS database.
pub async fn live_fingerprint(engine: &crate::Engine) -> crate::postgres::fingerprint::Fingerprint {
    fingerprint_of(&engine.dbs().lms_options).await
}

/// Starts a manual backup without notes.
pub async fn start_manual_backup(
    engine: &crate::Engine,
    actor: &crate::audit::Actor,
) -> crate::Result<crate::backup::StartedBackup> {
    engine
        .start_backup(crate::backup::BackupRequest {
            actor,
            notes: None,
            kind: lms_types::BackupKind::Manual,
        })
        .await
}

pub use crate::jobs::instance::dead_local_holder;

/// An actor for tests.
pub fn actor(name: &str) -> crate::audit::Actor {
    crate::audit::Actor {
        id: Some(1),
        name: name.to_owned(),
        client_ip: Some("127.0.0.1".into()),
    }
}

/// A bin directory whose `pg_dump` runs the shell `script` (with `$REAL` set
/// to the real pg_dump; `--version` is answered by the real one) and whose
/// `pg_restore` is the real one. For tests that hold, kill or sabotage a dump.
pub fn wrapped_pg_dump(real: &crate::postgres::tools::PgTools, script: &str) -> std::path::PathBuf {
    let dir = scratch_dir("pg-wrap");
    write_script(
        &dir.join("pg_dump"),
        &format!(
            "REAL='{}'\nif [ \"$1\" = --version ]; then exec \"$REAL\" --version; fi\n{script}",
            real.pg_dump.display()
        ),
    );
    std::os::unix::fs::symlink(&real.pg_restore, dir.join("pg_restore")).expect("link pg_restore");
    dir
}

/// A bin directory with the real PostgreSQL tools behind gates: `pg_dump`
/// stops at `dump` before it dumps anything, `pg_restore` at `restore`
/// before it loads into a database (listing an archive goes straight
/// through). `None` lets that tool through at once.
pub fn gated_tools(
    real: &crate::postgres::tools::PgTools,
    dump: Option<&Gate>,
    restore: Option<&Gate>,
) -> std::path::PathBuf {
    let dir = scratch_dir("pg-gated");
    let wait = |gate: Option<&Gate>| gate.map_or_else(|| ":".to_owned(), Gate::shell);
    write_script(
        &dir.join("pg_dump"),
        &format!(
            "if [ \"$1\" != --version ]; then\n{}\nfi\nexec '{}' \"$@\"",
            wait(dump),
            real.pg_dump.display()
        ),
    );
    write_script(
        &dir.join("pg_restore"),
        &format!(
            "case \"$*\" in *--dbname=*)\n{}\n;; esac\nexec '{}' \"$@\"",
            wait(restore),
            real.pg_restore.display()
        ),
    );
    dir
}

/// A bin directory whose `pg_restore` runs the shell `script` (with `$REAL`
/// set to the real pg_restore) and whose `pg_dump` is the real one.
pub fn wrapped_pg_restore(
    real: &crate::postgres::tools::PgTools,
    script: &str,
) -> std::path::PathBuf {
    let dir = scratch_dir("pg-wrap-restore");
    std::os::unix::fs::symlink(&real.pg_dump, dir.join("pg_dump")).expect("link pg_dump");
    write_script(
        &dir.join("pg_restore"),
        &format!("REAL='{}'\n{script}", real.pg_restore.display()),
    );
    dir
}

/// A bin directory whose tools report `version` (e.g. "9.6.24") and, when
/// run for anything else, only leave a `<tool>.ran` marker beside themselves.
pub fn fake_tools(version: &str) -> std::path::PathBuf {
    let dir = scratch_dir("pg-fake");
    for tool in ["pg_dump", "pg_restore"] {
        write_script(
            &dir.join(tool),
            &format!("if [ \"$1\" = --version ]; then echo '{tool} (PostgreSQL) {version}'; exit 0; fi\ntouch \"$0.ran\""),
        );
    }
    dir
}

/// A new empty directory under the system temp dir.
pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

fn write_script(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write a script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
}

/// A superuser URL on the test server (`TEST_SUPERUSER_URL`, set by
/// `scripts/test.sh`), for tests that create roles with other privileges.
pub fn superuser_url() -> String {
    std::env::var("TEST_SUPERUSER_URL")
        .expect("TEST_SUPERUSER_URL is not set: run scripts/test.sh, which starts a PostgreSQL server for the tests")
}

/// Fault injection for crash tests: a process started with
/// `LMS_TEST_PAUSE_AT=<point>` stops at that point for good (announcing it
/// by writing the point's name to `LMS_TEST_PAUSE_FILE`), so a test can
/// SIGKILL it exactly there. Compiled only with the `testing` feature.
pub async fn pause_point(point: &str) {
    if std::env::var("LMS_TEST_PAUSE_AT").as_deref() != Ok(point) {
        return;
    }
    if let Ok(file) = std::env::var("LMS_TEST_PAUSE_FILE") {
        let _ = std::fs::write(file, point);
    }
    std::future::pending::<()>().await;
}

/// A gate a fake tool stops at until the test opens it: the test learns
/// when the tool has got there ([`Gate::reached`]) and lets it go on
/// ([`Gate::open`]) when it has done what it wanted to do meanwhile, so no
/// test has to guess how long a tool takes. Dropping the gate opens it, so
/// nothing stays blocked after a test.
pub struct Gate {
    dir: std::path::PathBuf,
}

impl Gate {
    /// A new, closed gate.
    pub fn new() -> Self {
        Gate {
            dir: scratch_dir("gate"),
        }
    }

    /// Shell lines for a fake tool: say it has reached the gate, then wait
    /// until the gate is open. (The tools' environment is cleared, so the
    /// paths are written into the script.)
    pub fn shell(&self) -> String {
        format!(
            "touch '{}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done",
            self.dir.join("reached").display(),
            self.dir.join("open").display()
        )
    }

    /// True once a tool has reached the gate.
    fn is_reached(&self) -> bool {
        self.dir.join("reached").exists()
    }

    /// Waits until a tool has reached the gate.
    pub async fn reached(&self) {
        wait_until("a tool to reach the gate", async || {
            self.is_reached().then_some(())
        })
        .await
    }

    /// Lets every tool at the gate, and every later one, go on.
    pub fn open(&self) {
        std::fs::write(self.dir.join("open"), b"").expect("open the gate");
    }

    /// Closes the gate again for the next tool, once the ones let through
    /// have gone on (their job has ended).
    pub fn close(&self) {
        for marker in ["open", "reached"] {
            match std::fs::remove_file(self.dir.join(marker)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    panic!("close the gate: {e}")
                }
                _ => {}
            }
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("open"), b"");
    }
}

/// The S3-compatible test server (`TEST_S3_ENDPOINT`, started by
/// `scripts/test.sh`).
pub fn s3_endpoint() -> String {
    std::env::var("TEST_S3_ENDPOINT").expect(
        "TEST_S3_ENDPOINT is not set: run the tests with scripts/test.sh, which starts an \
         S3-compatible server",
    )
}

/// One plain HTTP request to the S3 test server, which takes requests
/// without signatures: the status, the head and the body. For what the
/// product itself never does (making buckets, changing objects behind its
/// back, listing incomplete uploads).
pub async fn s3_request(method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = s3_endpoint();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let body = answer.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, body)
}

/// A new, empty bucket on the S3 test server.
pub async fn fresh_bucket() -> String {
    let bucket = format!("t-{}", uuid::Uuid::new_v4().simple());
    let (status, _, body) = s3_request("PUT", &format!("/{bucket}"), b"").await;
    assert_eq!(
        status,
        200,
        "bucket {bucket} made: {}",
        String::from_utf8_lossy(&body)
    );
    bucket
}

/// An off-site target on the S3 test server: `bucket`, under `prefix`,
/// with parts as small as the server takes (64 KiB) and quick retries.
/// The bucket "guarded" of the S3 test server that checks credentials (under
/// `prefix`: tests share the bucket), with the key it knows when
/// `right_key`, else with a wrong secret for it.
pub fn guarded_s3_target(right_key: bool, prefix: &str) -> crate::storage::offsite::OffsiteConfig {
    use crate::storage::offsite::{Secret, TargetConfig};
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with scripts/test.sh, which starts the server")
        })
    };
    let mut config = s3_target("guarded", prefix);
    let TargetConfig::S3(s3) = &mut config.target;
    s3.endpoint = Some(var("TEST_S3_GUARDED_ENDPOINT"));
    s3.access_key_id = Some(Secret::new(var("TEST_S3_GUARDED_KEY_ID")));
    let secret = var("TEST_S3_GUARDED_SECRET");
    s3.secret_access_key = Some(Secret::new(if right_key {
        secret
    } else {
        format!("{secret}-not")
    }));
    config
}

pub fn s3_target(bucket: &str, prefix: &str) -> crate::storage::offsite::OffsiteConfig {
    use crate::storage::offsite::{OffsiteConfig, S3Config, Secret, TargetConfig};
    let mut config = OffsiteConfig::new(TargetConfig::S3(S3Config {
        endpoint: Some(s3_endpoint()),
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        region: "us-east-1".into(),
        force_path_style: true,
        access_key_id: Some(Secret::new("test-access-key")),
        secret_access_key: Some(Secret::new("test-secret-key")),
    }));
    config.min_part_size = 64 << 10;
    config.request_retry_timeout = std::time::Duration::from_secs(2);
    config
}

/// Multipart uploads begun and neither completed nor aborted in `bucket`.
pub async fn incomplete_uploads(bucket: &str) -> usize {
    let (status, _, body) = s3_request("GET", &format!("/{bucket}?uploads"), b"").await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{body}");
    body.matches("<UploadId>").count()
}

/// A TCP proxy on the loopback in front of `upstream` that can be cut:
/// once it has forwarded `cut_after` bytes towards the upstream, every
/// connection is dropped and new ones are closed at once, until
/// [`CuttableProxy::heal`]. Stands in for a target that goes away in the
/// middle of an upload and comes back.
pub struct CuttableProxy {
    pub addr: std::net::SocketAddr,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    forwarded: std::sync::atomic::AtomicU64,
    cut_after: std::sync::atomic::AtomicU64,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CuttableProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = std::sync::Arc::new(ProxyState {
            cut_after: std::sync::atomic::AtomicU64::new(u64::MAX),
            ..Default::default()
        });
        let upstream = upstream.to_owned();
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *shared.cut.borrow() {
                    drop(client);
                    continue;
                }
                let state = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    proxy_connection(client, server, state).await;
                });
            }
        });
        Self { addr, state }
    }

    /// Cuts every connection once `bytes` more have gone upstream.
    pub fn cut_after(&self, bytes: u64) {
        use std::sync::atomic::Ordering;
        let now = self.state.forwarded.load(Ordering::SeqCst);
        self.state.cut_after.store(now + bytes, Ordering::SeqCst);
    }

    /// Whether the proxy has cut.
    pub fn is_cut(&self) -> bool {
        *self.state.cut.borrow()
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.state
            .cut_after
            .store(u64::MAX, std::sync::atomic::Ordering::SeqCst);
        self.state.cut.send_replace(false);
    }
}

async fn proxy_connection(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    state: std::sync::Arc<ProxyState>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut cut = state.cut.subscribe();
    let up = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let n = client_read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            let total = state.forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= state.cut_after.load(Ordering::SeqCst) {
                state.cut.send_replace(true);
                return;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}

/// The messages the SMTP test server kept for `to`.
pub fn mails_to(to: &str) -> Vec<String> {
    let dir =
        std::env::var("TEST_SMTP_MAILDIR").expect("TEST_SMTP_MAILDIR (scripts/test.sh sets it)");
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(std::path::Path::new(&dir).join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
            {
                found.push(text);
            }
        }
    }
    found
}

/// A webhook receiver for the notification tests.
pub mod webhook {
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use crate::notify::{WebhookSettings, SIGNATURE_HEADER};
    use crate::storage::offsite::Secret;
    use lms_types::WebhookFormat;

    /// One delivery as the receiver saw it.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub event_id: String,
        pub body: serde_json::Value,
        pub signature_ok: bool,
    }

    /// A webhook receiver on the loopback: verifies `X-LMS-Signature` with its
    /// secret, answers with the status it is told to (503: "down"), and keeps
    /// what it accepted, de-duplicated by nothing (so a test sees every copy).
    #[derive(Clone)]
    pub struct WebhookReceiver {
        pub url: String,
        secret: String,
        /// The status it answers with (503: "down").
        pub status: Arc<AtomicU16>,
        got: Arc<Mutex<Vec<Received>>>,
    }

    impl WebhookReceiver {
        pub async fn start(secret: &str) -> Self {
            let receiver = WebhookReceiver {
                url: String::new(),
                secret: secret.to_owned(),
                status: Arc::new(AtomicU16::new(200)),
                got: Arc::default(),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!(
                "http://{}/hooks/T0K3N-in-the-path",
                listener.local_addr().unwrap()
            );
            let app = axum::Router::new()
                .route("/hooks/{token}", axum::routing::post(Self::take))
                .with_state(receiver.clone());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            WebhookReceiver { url, ..receiver }
        }

        async fn take(
            State(me): State<WebhookReceiver>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let status = StatusCode::from_u16(me.status.load(Ordering::SeqCst)).unwrap();
            if !status.is_success() {
                return status;
            }
            let signature_ok = headers
                .get(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| verify(&me.secret, v, &body));
            if !signature_ok {
                return StatusCode::UNAUTHORIZED;
            }
            me.got.lock().unwrap().push(Received {
                event_id: headers
                    .get("x-lms-event-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body: serde_json::from_slice(&body).unwrap(),
                signature_ok,
            });
            StatusCode::OK
        }

        /// What it accepted, in order.
        pub fn got(&self) -> Vec<Received> {
            self.got.lock().unwrap().clone()
        }

        /// A webhook channel to it, signing with `secret`.
        pub fn settings(&self, secret: &str) -> WebhookSettings {
            WebhookSettings {
                url: Secret::new(&self.url),
                secret: Some(Secret::new(secret)),
                format: WebhookFormat::Generic,
            }
        }
    }

    /// Checks a signature header as a receiver's documentation would tell it
    /// to: HMAC-SHA256 of "<t>.<raw body>", compared in constant time.
    pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
        let mut t = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = Some(value),
                Some(("v1", value)) => v1 = Some(value),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else {
            return false;
        };
        let Ok(expected) = hex::decode(v1) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    }
}
