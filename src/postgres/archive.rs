//! Writing and reading custom-format archives: streaming pg_dump's output to
//! disk while hashing it, following its progress, and proving an archive is
//! whole by reading all of it back with pg_restore.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::postgres::fingerprint::TableRef;
use crate::postgres::process::{follow_stderr, ToolConnection, ToolProcess};
use crate::{Error, Result};

const CHUNK: usize = 1 << 20;

/// Copies `src` into `file` (new and empty), hashing as it goes, and fsyncs
/// it. Stops with an error past `max_bytes`, and with
/// [`Error::TimedOut`] when a read waits longer than `idle` (if given).
/// Returns (bytes written, SHA-256 hex).
pub async fn write_and_hash(
    mut src: impl AsyncRead + Unpin,
    mut file: tokio::fs::File,
    max_bytes: u64,
    idle: Option<std::time::Duration>,
) -> Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK {
            let mut limited = (&mut src).take((CHUNK - chunk.len()) as u64);
            let read = limited.read_buf(&mut chunk);
            let n = match idle {
                Some(idle) => tokio::time::timeout(idle, read).await.map_err(|_| {
                    Error::TimedOut(format!(
                        "Nothing arrived for {} s, so the transfer was stopped.",
                        idle.as_secs()
                    ))
                })??,
                None => read.await?,
            };
            if n == 0 {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        total += chunk.len() as u64;
        if total > max_bytes {
            return Err(too_large(max_bytes));
        }
        file.write_all(&chunk).await?;
        hasher = tokio::task::spawn_blocking(move || {
            hasher.update(&chunk);
            hasher
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
    }
    file.flush().await?;
    file.sync_all().await?;
    Ok((total, hex::encode(hasher.finalize())))
}

/// The error of an archive larger than `max_bytes`.
pub fn too_large(max_bytes: u64) -> Error {
    Error::Invalid(format!(
        "The backup is larger than the configured maximum ({max_bytes} bytes): raise MAX_BACKUP_SIZE."
    ))
}

/// Progress through a list of tables, weighted by their size, advanced by
/// the tools' `--verbose` lines naming the table they start on. The tools
/// say nothing while they copy a table, so inside the current one the bar
/// moves with the time spent on it at an assumed copy rate, slowing as it
/// nears the table's end and never passing it: one large table no longer
/// holds the bar still until it jumps to done.
#[derive(Clone)]
pub struct TableProgress {
    /// Cumulative size of the tables before each table, and its own size,
    /// by "schema.name".
    tables: Arc<HashMap<String, (u64, u64)>>,
    total: u64,
    current: Arc<Mutex<Option<CurrentTable>>>,
}

/// The table a tool is on: where it starts in the total, its size, and
/// since when.
#[derive(Clone, Copy)]
struct CurrentTable {
    offset: u64,
    weight: u64,
    since: Instant,
}

/// Bytes of table (as PostgreSQL sizes it) the tools are assumed to get
/// through per second, for the estimate inside a table.
const ASSUMED_BYTES_PER_SEC: f64 = 32.0 * 1024.0 * 1024.0;
/// The estimate inside a table stops short of its end: only the tool's
/// next line says it is done.
const MAX_WITHIN_TABLE: f64 = 0.95;

impl TableProgress {
    pub fn new(tables: &[TableRef]) -> Self {
        let mut by_name = HashMap::new();
        let mut total = 0u64;
        for t in tables {
            // Every table weighs something, so empty ones still move the bar.
            let weight = (t.size_bytes.max(0) as u64).max(8192);
            by_name.insert(format!("{}.{}", t.schema, t.name), (total, weight));
            total += weight;
        }
        Self {
            tables: Arc::new(by_name),
            total: total.max(1),
            current: Arc::new(Mutex::new(None)),
        }
    }

    /// Feeds one stderr line; recognises pg_dump's "dumping contents of table"
    /// and pg_restore's "processing data for table".
    pub fn on_line(&self, line: &str) {
        let Some(rest) = line
            .split_once("dumping contents of table ")
            .or_else(|| line.split_once("processing data for table "))
            .map(|(_, r)| r)
        else {
            return;
        };
        let name = rest.trim().trim_matches('"');
        let Some(&(offset, weight)) = self.tables.get(name) else {
            return;
        };
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        // Parallel restores start tables out of order: never go back.
        if current.is_none_or(|c| offset > c.offset) {
            *current = Some(CurrentTable {
                offset,
                weight,
                since: Instant::now(),
            });
        }
    }

    /// Fraction done, 0..=1.
    pub fn fraction(&self) -> f64 {
        self.fraction_at(Instant::now())
    }

    /// Fraction done as of `now`.
    fn fraction_at(&self, now: Instant) -> f64 {
        let current = *self.current.lock().unwrap_or_else(|e| e.into_inner());
        let Some(c) = current else { return 0.0 };
        let secs = now.saturating_duration_since(c.since).as_secs_f64();
        let within = 1.0 - (-secs * ASSUMED_BYTES_PER_SEC / c.weight as f64).exp();
        (c.offset as f64 + c.weight as f64 * within.min(MAX_WITHIN_TABLE)) / self.total as f64
    }
}

/// Follows a parallel `pg_restore --verbose` and names each table whose data
/// has finished loading: it starts with `processing data for table
/// "schema.name"` and ends with `finished item N TABLE DATA name` (the end
/// line carries no schema, so a name shared by two schemas is left out).
#[derive(Debug, Default)]
pub struct DataLoadWatcher {
    started: HashMap<String, Vec<String>>,
}

impl DataLoadWatcher {
    /// Feeds one stderr line; returns "schema.name" when that table's data is
    /// complete.
    pub fn on_line(&mut self, line: &str) -> Option<String> {
        if let Some((_, rest)) = line.split_once("processing data for table ") {
            let qualified = rest.trim().trim_matches('"').to_owned();
            let (_, name) = qualified.split_once('.')?;
            let seen = self.started.entry(name.to_owned()).or_default();
            if !seen.contains(&qualified) {
                seen.push(qualified);
            }
            return None;
        }
        let (_, rest) = line.split_once("finished item ")?;
        let (_, name) = rest.split_once(" TABLE DATA ")?;
        match self.started.get(name.trim()).map(Vec::as_slice) {
            Some([only]) => Some(only.clone()),
            _ => None,
        }
    }
}

/// What `pg_restore --list` says about an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// e.g. "1.14-0"
    pub archive_version: String,
    /// e.g. "15.18 (Debian 15.18-0+deb12u1)"
    pub dumped_by: String,
    /// "schema.name" of every table the archive defines.
    pub tables: Vec<String>,
    /// When pg_dump made the archive (its snapshot of the data), as the
    /// archive records it.
    pub created_at: Option<DateTime<Utc>>,
    /// The extensions it creates (`CREATE EXTENSION`), by name.
    pub extensions: Vec<String>,
}

/// Where pg_restore reads an archive from.
pub enum Input {
    /// A file it opens by name: seekable, so parallel jobs work.
    Path(PathBuf),
    /// A file opened here, on its standard input: the file checked is the
    /// file read.
    File(std::fs::File),
    /// A stream on its standard input (an archive kept encrypted, decrypted
    /// on the way): read once, in order, by one job.
    Stream(Box<dyn AsyncRead + Unpin + Send>),
}

impl Input {
    /// pg_restore may read it with parallel jobs.
    pub fn is_seekable(&self) -> bool {
        !matches!(self, Input::Stream(_))
    }
}

/// A pg_restore run reading an [`Input`], with the task that feeds it.
pub struct Reading {
    tool: ToolProcess,
    feeder: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Reading {
    /// Starts `cmd` (a pg_restore command) reading `input`.
    pub fn spawn(mut cmd: Command, input: Input, stdout: Stdio) -> Result<Self> {
        let (stdin, stream) = match input {
            Input::Path(path) => {
                cmd.arg(path);
                (Stdio::null(), None)
            }
            Input::File(file) => (file.into(), None),
            Input::Stream(stream) => (Stdio::piped(), Some(stream)),
        };
        let mut tool = ToolProcess::spawn_with_stdin("pg_restore", cmd, stdin, stdout)?;
        let feeder = stream.map(|mut stream| {
            let mut stdin = tool.child().stdin.take().expect("stdin is piped");
            tokio::spawn(async move {
                match tokio::io::copy(&mut stream, &mut stdin).await {
                    Ok(_) => stdin.shutdown().await,
                    // pg_restore stopped reading: the rest is still read
                    // (and so decrypted and checked) to its end, so whoever
                    // hashes the stream sees all of it.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        drop(stdin);
                        tokio::io::copy(&mut stream, &mut tokio::io::sink()).await?;
                        Err(e)
                    }
                    Err(e) => Err(e),
                }
            })
        });
        Ok(Self { tool, feeder })
    }

    pub fn child(&mut self) -> &mut Child {
        self.tool.child()
    }

    /// Waits for pg_restore to exit, and for its input: an input that
    /// failed (an archive that does not decrypt to its end) is the error,
    /// before whatever pg_restore said of the input cut short.
    pub async fn wait(self, stderr_tail: String) -> Result<()> {
        let exited = self.tool.wait(stderr_tail).await;
        if let Some(feeder) = self.feeder {
            match feeder.await {
                Ok(Ok(())) => {}
                // pg_restore stopped reading: it had what it needed (a
                // listing), or it failed and says why itself.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Ok(Err(e)) => {
                    return Err(Error::Invalid(format!(
                        "The archive could not be read to its end ({e}): it is damaged, or was \
                         changed on the disk."
                    )))
                }
                Err(e) => return Err(Error::Io(std::io::Error::other(e))),
            }
        }
        exited
    }
}

/// Reads an archive's table of contents. Cheap, but accepts truncated files:
/// use [`read_all`] to prove an archive is whole.
pub async fn list(pg_restore: &Path, archive: Input) -> Result<ArchiveInfo> {
    let mut cmd = crate::postgres::process::tool_command(pg_restore);
    // The archive keeps its creation time as the dumping machine's wall
    // clock; read it back as UTC rather than in whatever zone we run in.
    cmd.env("TZ", "UTC").arg("--list");
    let mut tool = Reading::spawn(cmd, archive, Stdio::piped())?;
    let mut stdout = tool.child().stdout.take().expect("stdout is piped");
    let stderr = tool.child().stderr.take().expect("stderr is piped");
    let mut listing = String::new();
    let (read, tail) = tokio::join!(
        stdout.read_to_string(&mut listing),
        follow_stderr(stderr, |_| {})
    );
    read?;
    tool.wait(tail).await?;
    parse_listing(&listing)
        .ok_or_else(|| Error::Invalid("The file is not a PostgreSQL custom-format archive.".into()))
}

fn parse_listing(listing: &str) -> Option<ArchiveInfo> {
    let header = |key: &str| {
        listing.lines().find_map(|l| {
            l.trim_start_matches(';')
                .trim()
                .strip_prefix(key)
                .map(|v| v.trim().to_owned())
        })
    };
    let archive_version = header("Dump Version:")?;
    let dumped_by = header("Dumped by pg_dump version:").unwrap_or_default();
    // "2026-11-26 14:00:00 UTC"
    let created_at = header("Archive created at").and_then(|at| {
        let stamp = at.get(..19)?;
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S")
            .ok()
            .map(|t| t.and_utc())
    });
    let tables = listing
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            // "215; 1259 16390 TABLE public users owner"
            let (_, entry) = l.split_once("; ")?;
            let rest = entry.splitn(3, ' ').nth(2)?;
            let rest = rest
                .strip_prefix("TABLE ")
                .filter(|r| !r.starts_with("DATA "))?;
            let mut words = rest.split_whitespace();
            Some(format!("{}.{}", words.next()?, words.next()?))
        })
        .collect();
    let extensions = listing
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            // "3; 3079 16385 EXTENSION - pgcrypto "
            let (_, entry) = l.split_once("; ")?;
            let rest = entry.splitn(3, ' ').nth(2)?;
            let mut words = rest.strip_prefix("EXTENSION ")?.split_whitespace();
            words.next()?;
            words.next().map(str::to_owned)
        })
        .collect();
    Some(ArchiveInfo {
        archive_version,
        dumped_by,
        tables,
        created_at,
        extensions,
    })
}

/// Reads every byte of an archive by restoring it to nothing
/// (`pg_restore --file=/dev/null`): a truncated or damaged archive fails.
pub async fn read_all(pg_restore: &Path, archive: Input, progress: &TableProgress) -> Result<()> {
    let mut cmd = crate::postgres::process::tool_command(pg_restore);
    cmd.args(["--verbose", "--file=/dev/null"]);
    let mut tool = Reading::spawn(cmd, archive, Stdio::null())?;
    let stderr = tool.child().stderr.take().expect("stderr is piped");
    let tail = follow_stderr(stderr, |line| progress.on_line(line)).await;
    tool.wait(tail).await
}

/// Starts pg_dump on `snapshot` with the connection in its environment,
/// compressing the archive's data at gzip `compression` (0 to 9).
pub fn start_dump(
    pg_dump: &Path,
    connection: &ToolConnection,
    snapshot: &str,
    compression: u8,
) -> Result<ToolProcess> {
    let mut cmd = connection.command(pg_dump);
    cmd.args(["--format=custom", "--verbose", "--no-password"])
        .arg(format!("--compress={compression}"))
        .arg(format!("--snapshot={snapshot}"));
    ToolProcess::spawn("pg_dump", cmd, Stdio::piped())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_names_the_extensions_an_archive_creates() {
        let listing =
            ";\n; Archive created at 2026-12-06 10:00:00 UTC\n; Dump Version: 1.14-0\n;\n\
            3; 3079 16385 EXTENSION - pgcrypto \n\
            4; 0 0 COMMENT - EXTENSION pgcrypto \n\
            215; 1259 16390 TABLE public users lms\n";
        let info = parse_listing(listing).unwrap();
        assert_eq!(info.extensions, ["pgcrypto"]);
        assert_eq!(info.tables, ["public.users"]);
    }

    #[test]
    fn finished_tables_are_named_once_their_data_is_in() {
        let mut w = DataLoadWatcher::default();
        assert_eq!(
            w.on_line("pg_restore: processing data for table \"public.users\""),
            None
        );
        assert_eq!(
            w.on_line("pg_restore: processing data for table \"extra.things\""),
            None
        );
        assert_eq!(
            w.on_line("pg_restore: launching item 3380 TABLE DATA users"),
            None
        );
        assert_eq!(
            w.on_line("pg_restore: finished item 3380 TABLE DATA users")
                .as_deref(),
            Some("public.users")
        );
        assert_eq!(
            w.on_line("pg_restore: finished item 3381 TABLE DATA things")
                .as_deref(),
            Some("extra.things")
        );
        assert_eq!(
            w.on_line("pg_restore: finished item 3390 INDEX users_pkey"),
            None
        );
        // The same name in two schemas: the end line cannot say which.
        w.on_line("pg_restore: processing data for table \"extra.users\"");
        assert_eq!(
            w.on_line("pg_restore: finished item 3391 TABLE DATA users"),
            None
        );
    }

    #[test]
    fn listings_are_parsed() {
        let listing = ";\n; Archive created at 2026-11-26 14:00:00 UTC\n;     dbname: lms\n;     TOC Entries: 40\n;     Compression: -1\n;     Dump Version: 1.14-0\n;     Format: CUSTOM\n;     Dumped from database version: 15.18\n;     Dumped by pg_dump version: 15.18 (Debian 15.18-0+deb12u1)\n;\n215; 1259 16390 TABLE public users lms\n216; 1259 16391 SEQUENCE public users_id_seq lms\n3345; 0 16390 TABLE DATA public users lms\n";
        let info = parse_listing(listing).unwrap();
        assert_eq!(info.archive_version, "1.14-0");
        assert_eq!(info.dumped_by, "15.18 (Debian 15.18-0+deb12u1)");
        assert_eq!(info.tables, ["public.users"]);
        assert_eq!(
            info.created_at,
            Some("2026-11-26T14:00:00Z".parse().unwrap())
        );
        assert!(parse_listing("hello").is_none());
    }

    #[test]
    fn progress_is_weighted_by_table_size() {
        let t = |name: &str, size| TableRef {
            schema: "public".into(),
            name: name.into(),
            size_bytes: size,
        };
        let p = TableProgress::new(&[t("a", 100_000), t("b", 300_000), t("c", 600_000)]);
        // As of a moment before any table started: no time spent inside one.
        let before = Instant::now();
        assert_eq!(p.fraction(), 0.0);
        p.on_line("pg_dump: dumping contents of table \"public.b\"");
        assert!((p.fraction_at(before) - 0.1).abs() < 1e-9);
        p.on_line("pg_restore: processing data for table \"public.c\"");
        assert!((p.fraction_at(before) - 0.4).abs() < 1e-9);
        p.on_line("pg_dump: dumping contents of table \"public.a\"");
        assert!(
            (p.fraction_at(before) - 0.4).abs() < 1e-9,
            "progress never goes back"
        );
        p.on_line("unrelated");
        assert!((p.fraction_at(before) - 0.4).abs() < 1e-9);
    }

    /// A database that is mostly one large table used to show the small
    /// tables' share (6 %) until the dump was done.
    #[test]
    fn progress_moves_inside_a_large_table_without_passing_it() {
        let t = |name: &str, size| TableRef {
            schema: "public".into(),
            name: name.into(),
            size_bytes: size,
        };
        let big = 1_000_000_000;
        let p = TableProgress::new(&[t("small", 60_000_000), t("big", big), t("last", 8192)]);
        p.on_line("pg_dump: dumping contents of table \"public.big\"");
        let started = p.current.lock().unwrap().unwrap().since;
        let at = |secs: u64| p.fraction_at(started + std::time::Duration::from_secs(secs));
        let start = 60_000_000.0 / (60_000_000.0 + big as f64 + 8192.0);
        assert!((at(0) - start).abs() < 1e-9);
        let (a, b, c) = (at(5), at(20), at(3600));
        assert!(start < a && a < b && b < c, "{start} {a} {b} {c}");
        assert!(a - start > 0.1, "moves within seconds: {a}");
        let next = (60_000_000.0 + big as f64) / (60_000_000.0 + big as f64 + 8192.0);
        assert!(
            c < next,
            "stays inside the table until the tool moves on: {c}"
        );
    }

    #[tokio::test]
    async fn writes_are_hashed_and_capped() {
        use sha2::{Digest, Sha256};
        let dir = crate::storage::BackupDir::new(
            std::env::temp_dir().join(format!("archive-test-{}", uuid::Uuid::new_v4().simple())),
        );
        dir.ensure().await.unwrap();
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let file = dir.create_new(&dir.path().join("a")).await.unwrap();
        let (size, sha) = write_and_hash(&data[..], file, 10 * CHUNK as u64, None)
            .await
            .unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(sha, hex::encode(Sha256::digest(&data)));
        let written = tokio::fs::read(dir.path().join("a")).await.unwrap();
        assert_eq!(written, data);
        let file = dir.create_new(&dir.path().join("b")).await.unwrap();
        let capped = write_and_hash(&data[..], file, CHUNK as u64, None).await;
        assert!(matches!(capped, Err(Error::Invalid(_))), "over the cap");
        assert!(
            dir.create_new(&dir.path().join("a")).await.is_err(),
            "never overwrites"
        );
        tokio::fs::remove_dir_all(dir.path()).await.unwrap();
    }
}
