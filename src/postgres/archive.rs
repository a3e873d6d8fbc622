//! Writing and reading custom-format archives: streaming pg_dump's output to
//! disk while hashing it, following its progress, and proving an archive is
//! whole by reading all of it back with pg_restore.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

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
            return Err(Error::Invalid(format!(
                "The backup is larger than the configured maximum ({} bytes): raise MAX_BACKUP_SIZE.",
                max_bytes
            )));
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

/// Progress through a list of tables, weighted by their size, advanced by
/// the tools' `--verbose` lines naming the table they start on.
#[derive(Clone)]
pub struct TableProgress {
    /// Cumulative size of the tables before each table, by "schema.name".
    offsets: Arc<HashMap<String, u64>>,
    total: u64,
    done: Arc<AtomicU64>,
}

impl TableProgress {
    pub fn new(tables: &[TableRef]) -> Self {
        let mut offsets = HashMap::new();
        let mut total = 0u64;
        for t in tables {
            offsets.insert(format!("{}.{}", t.schema, t.name), total);
            // Every table weighs something, so empty ones still move the bar.
            total += (t.size_bytes.max(0) as u64).max(8192);
        }
        Self {
            offsets: Arc::new(offsets),
            total: total.max(1),
            done: Arc::new(AtomicU64::new(0)),
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
        if let Some(&offset) = self.offsets.get(name) {
            self.done.fetch_max(offset, Ordering::Relaxed);
        }
    }

    /// Fraction done, 0..=1.
    pub fn fraction(&self) -> f64 {
        self.done.load(Ordering::Relaxed) as f64 / self.total as f64
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
}

/// Reads an archive's table of contents. Cheap, but accepts truncated files:
/// use [`read_all`] to prove an archive is whole.
pub async fn list(pg_restore: &Path, archive: &Path) -> Result<ArchiveInfo> {
    let mut cmd = crate::postgres::process::tool_command(pg_restore);
    cmd.arg("--list").arg(archive);
    let mut tool = ToolProcess::spawn("pg_restore", cmd, Stdio::piped())?;
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
    Some(ArchiveInfo {
        archive_version,
        dumped_by,
        tables,
    })
}

/// Reads every byte of an archive by restoring it to nothing
/// (`pg_restore --file=/dev/null`): a truncated or damaged archive fails.
pub async fn read_all(pg_restore: &Path, archive: &Path, progress: &TableProgress) -> Result<()> {
    let mut cmd = crate::postgres::process::tool_command(pg_restore);
    cmd.args(["--verbose", "--file=/dev/null"]).arg(archive);
    let mut tool = ToolProcess::spawn("pg_restore", cmd, Stdio::null())?;
    let stderr = tool.child().stderr.take().expect("stderr is piped");
    let tail = follow_stderr(stderr, |line| progress.on_line(line)).await;
    tool.wait(tail).await
}

/// Starts pg_dump on `snapshot` with the connection in its environment.
pub fn start_dump(
    pg_dump: &Path,
    connection: &ToolConnection,
    snapshot: &str,
) -> Result<ToolProcess> {
    let mut cmd = connection.command(pg_dump);
    cmd.args(["--format=custom", "--verbose", "--no-password"])
        .arg(format!("--snapshot={snapshot}"));
    ToolProcess::spawn("pg_dump", cmd, Stdio::piped())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(p.fraction(), 0.0);
        p.on_line("pg_dump: dumping contents of table \"public.b\"");
        assert!((p.fraction() - 0.1).abs() < 1e-9);
        p.on_line("pg_restore: processing data for table \"public.c\"");
        assert!((p.fraction() - 0.4).abs() < 1e-9);
        p.on_line("pg_dump: dumping contents of table \"public.a\"");
        assert!(
            (p.fraction() - 0.4).abs() < 1e-9,
            "progress never goes back"
        );
        p.on_line("unrelated");
        assert!((p.fraction() - 0.4).abs() < 1e-9);
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
