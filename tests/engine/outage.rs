//! PostgreSQL itself going away in the middle of a backup and of a restore
//! (an immediate shutdown, as in a crash), then coming back. These tests run
//! their own small cluster, since stopping the shared test server would
//! fail every other test. After the fault and a restart: one live database
//! equal to the state before, no lock, no `.partial` file, no copy, the job
//! failed, and the next operation works.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lms_backup::postgres::databases::DatabaseUrls;
use lms_backup::postgres::fingerprint::Fingerprint;
use lms_backup::postgres::tools as pgtools;
use lms_backup::testing::{
    actor, is_unfinished, live_fingerprint, start_manual_backup, wait_until, Gate,
};
use lms_backup::{jobs, settings, Databases, Engine, EngineConfig};
use lms_types::{BackupStatus, JobStatus};
use sqlx::Connection;

/// A private PostgreSQL cluster on a free port, removed when dropped.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

/// Runs a server program as the cluster's owner (PostgreSQL refuses root).
fn as_owner(program: &Path) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Cluster {
    async fn start() -> Self {
        let tools = pgtools::locate(None).await.unwrap();
        let bin = tools.pg_dump.parent().unwrap().to_owned();
        let dir = lms_backup::testing::scratch_dir("outage-cluster");
        if nix::unistd::geteuid().is_root() {
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster { dir, bin, port };
        cluster.up();
        let mut su =
            sqlx::PgConnection::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
                .await
                .unwrap();
        for sql in [
            "CREATE ROLE app LOGIN PASSWORD 'app-password' CREATEDB",
            "GRANT pg_read_all_settings TO app",
            "CREATE ROLE app_restore LOGIN",
            "GRANT app_restore TO app",
            "CREATE DATABASE lms OWNER app",
        ] {
            sqlx::query(sql).execute(&mut su).await.unwrap();
        }
        su.close().await.unwrap();
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn up(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.join("data").display()
        );
        self.pg_ctl(&["-w", "-o", &options, "start"]);
    }

    /// An immediate shutdown: every backend ends at once, as in a crash.
    fn crash(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://app:app-password@127.0.0.1:{}/lms", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An engine (a server process, as far as the lock is concerned) on the
/// cluster, with `bin` as its PostgreSQL tools.
async fn engine_on(cluster: &Cluster, backup_dir: &Path, bin: Option<&Path>) -> Engine {
    let dbs = Databases::connect(&DatabaseUrls {
        lms: cluster.url(),
        control: None,
    })
    .await
    .unwrap();
    dbs.migrate().await.unwrap();
    let tools = pgtools::locate(bin).await.unwrap();
    let mut config = EngineConfig::new(backup_dir);
    config.backup_rate_limit = 0;
    config.lease_timeout = Duration::from_secs(5);
    config.heartbeat_interval = Duration::from_secs(1);
    Engine::new(dbs, tools, config).await.unwrap()
}

/// A bin directory with the real tools, where `script` replaces one of them
/// (run by bash, `$REAL` the real tool; `--version` goes to the real one).
async fn wrapped(tool: &str, script: &str) -> PathBuf {
    let real = pgtools::locate(None).await.unwrap();
    let dir = lms_backup::testing::scratch_dir("outage-tools");
    for (name, path) in [("pg_dump", &real.pg_dump), ("pg_restore", &real.pg_restore)] {
        if name == tool {
            let file = dir.join(name);
            std::fs::write(
                &file,
                format!(
                    "#!/bin/bash\nset -o pipefail\nREAL='{}'\nif [ \"$1\" = --version ]; then exec \"$REAL\" --version; fi\n{script}\n",
                    path.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            std::os::unix::fs::symlink(path, dir.join(name)).unwrap();
        }
    }
    dir
}

/// Waits for a job to end, through errors while the database is away.
async fn wait_for_end(engine: &Engine, job: uuid::Uuid) -> jobs::Job {
    wait_until(format_args!("job {job} to end"), async || match jobs::get(
        &engine.dbs().control,
        job,
    )
    .await
    {
        Ok(Some(j)) if !is_unfinished(j.status) => Some(j),
        _ => None,
    })
    .await
}

/// A marker file a fake tool leaves once the real one has exited, beside
/// the fake tool's process id, written as it starts.
struct Exited(PathBuf);

impl Exited {
    fn new() -> Self {
        Exited(lms_backup::testing::scratch_dir("exited").join("exited"))
    }

    fn pid_file(&self) -> PathBuf {
        self.0.with_extension("pid")
    }

    /// Shell lines that note the fake tool's process id, run `command`,
    /// leave the marker, and exit with the command's status.
    fn after(&self, command: &str) -> String {
        format!(
            "echo $$ > '{}'\n{command}\nstatus=$?\ntouch '{}'\nexit $status",
            self.pid_file().display(),
            self.0.display()
        )
    }

    /// Waits until the real tool has exited, or the fake one is gone. The
    /// job can find the server gone before the tool does (its own
    /// connection ends first on a busy machine); it then fails and kills the
    /// tool's process group, and no marker is left.
    async fn wait(&self, what: &str) {
        wait_until(what, async || {
            (self.0.exists() || self.tool_gone()).then_some(())
        })
        .await
    }

    /// Whether the fake tool has started and is no longer running (exited
    /// or killed, reaped or not).
    fn tool_gone(&self) -> bool {
        let Ok(pid) = std::fs::read_to_string(self.pid_file()) else {
            return false;
        };
        match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
            Err(_) => true,
            // The state follows the command name, which is in parentheses.
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

async fn backup(engine: &Engine) -> (uuid::Uuid, i64) {
    let who = actor("alice");
    let started = start_manual_backup(engine, &who).await.unwrap();
    (started.job.id, started.backup.id)
}

/// The state every fault must leave once PostgreSQL and the server are
/// back: checked through a new engine (a restarted server) after its
/// start-up recovery.
async fn after_restart(cluster: &Cluster, dir: &Path, before: &Fingerprint) -> Engine {
    let engine = engine_on(cluster, dir, None).await;
    engine.recover().await.unwrap();
    // Every row as before. Sequences are compared apart: PostgreSQL logs
    // them 32 values ahead, so after its own crash recovery they may have
    // moved forward (never back), which is PostgreSQL's behaviour, not ours.
    let now = live_fingerprint(&engine).await;
    let rows_only = Fingerprint {
        tables: before.tables.clone(),
        sequences: now.sequences.clone(),
    };
    let differences = rows_only.differences(&now);
    assert!(
        differences.is_empty(),
        "the live data is as before: {differences:?}"
    );
    for (was, is) in before.sequences.iter().zip(&now.sequences) {
        assert_eq!((&was.schema, &was.name), (&is.schema, &is.name));
        assert!(
            is.last_value >= was.last_value,
            "{is:?} went back from {was:?}"
        );
    }
    assert!(engine.lock_status().await.unwrap().is_none(), "no lock");
    assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
    assert!(settings::maintenance(&engine.dbs().control)
        .await
        .unwrap()
        .is_none());
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'lms%' ORDER BY 1",
    )
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(databases, ["lms", "lms_control"], "no copy left");
    let running: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'running'")
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    assert_eq!(running, 0);
    engine
}

#[tokio::test]
async fn postgres_crashing_mid_backup_leaves_nothing_and_the_next_backup_works() {
    let cluster = Cluster::start().await;
    let dir = lms_backup::testing::scratch_dir("outage-backup");
    // pg_dump's output held back at a gate: the dump is connected and
    // mid-stream (its pipe full) when the server goes away, and it finds
    // out only once the gate opens, while the server is still away.
    let output = Gate::new();
    let exited = Exited::new();
    let tools = wrapped(
        "pg_dump",
        &exited.after(&format!(
            "\"$REAL\" \"$@\" | {{ {}\ncat; }}",
            output.shell()
        )),
    )
    .await;
    let engine = engine_on(&cluster, &dir, Some(&tools)).await;
    lms_backup::demo::seed(&engine.dbs().lms, 2).await.unwrap();
    let before = live_fingerprint(&engine).await;

    let (job, backup_id) = backup(&engine).await;
    output.reached().await;
    wait_until("pg_dump to be copying a table", async || {
        let copying: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lms-admin' AND query LIKE 'COPY %'",
        )
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
        (copying > 0).then_some(())
    })
    .await;
    cluster.crash();
    output.open();
    exited
        .wait("pg_dump to fail while PostgreSQL is away")
        .await;
    cluster.up();
    let ended = wait_for_end(&engine, job).await;
    assert_eq!(ended.status, JobStatus::Failed, "{ended:?}");
    assert!(
        ended
            .message
            .as_deref()
            .unwrap()
            .contains("lost its connection to the database server"),
        "{ended:?}"
    );
    assert!(
        engine.lock_status().await.unwrap().is_none(),
        "the lock was freed once PostgreSQL was back"
    );
    drop(engine);

    let engine = after_restart(&cluster, &dir, &before).await;
    let row = lms_backup::catalog::get_row(&engine.dbs().control, backup_id)
        .await
        .unwrap();
    assert_eq!(row.status, BackupStatus::Failed);
    let (job, _) = backup(&engine).await;
    let ended = wait_for_end(&engine, job).await;
    assert_eq!(
        ended.status,
        JobStatus::Succeeded,
        "the next backup works: {ended:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn postgres_crashing_mid_restore_leaves_the_live_database_and_the_next_restore_works() {
    let cluster = Cluster::start().await;
    let dir = lms_backup::testing::scratch_dir("outage-restore");
    let engine = engine_on(&cluster, &dir, None).await;
    lms_backup::demo::seed(&engine.dbs().lms, 1).await.unwrap();
    let (job, backup_id) = backup(&engine).await;
    assert_eq!(
        wait_for_end(&engine, job).await.status,
        JobStatus::Succeeded
    );
    let at_backup = live_fingerprint(&engine).await;
    sqlx::query("UPDATE courses SET title = 'after the backup'")
        .execute(&engine.dbs().lms)
        .await
        .unwrap();
    let before = live_fingerprint(&engine).await;
    drop(engine);

    // pg_restore held at a gate before it loads into the copy: the copy
    // exists, PostgreSQL goes away under it, and pg_restore then tries to
    // connect while it is away.
    let load = Gate::new();
    let exited = Exited::new();
    let tools = wrapped(
        "pg_restore",
        &format!(
            "case \"$*\" in *--dbname=*)\n{}\n;; esac\nexec \"$REAL\" \"$@\"",
            exited.after(&format!("{}\n\"$REAL\" \"$@\"", load.shell()))
        ),
    )
    .await;
    let engine = engine_on(&cluster, &dir, Some(&tools)).await;
    let job = engine
        .start_restore(backup_id, true, &actor("alice"))
        .await
        .unwrap();
    load.reached().await;
    cluster.crash();
    load.open();
    exited
        .wait("pg_restore to fail while PostgreSQL is away")
        .await;
    cluster.up();
    let ended = wait_for_end(&engine, job.id).await;
    assert_eq!(ended.status, JobStatus::Failed, "{ended:?}");
    assert!(
        ended
            .message
            .as_deref()
            .unwrap()
            .contains("Check that PostgreSQL is running"),
        "{ended:?}"
    );
    drop(engine);

    let engine = after_restart(&cluster, &dir, &before).await;
    let job = engine
        .start_restore(backup_id, true, &actor("alice"))
        .await
        .unwrap();
    let ended = wait_for_end(&engine, job.id).await;
    assert_eq!(
        ended.status,
        JobStatus::Succeeded,
        "the next restore works: {ended:?}"
    );
    assert!(at_backup
        .differences(&live_fingerprint(&engine).await)
        .is_empty());
    std::fs::remove_dir_all(dir).ok();
}
