//! Running PostgreSQL client tools safely.
//!
//! - The connection comes through the environment (`PGHOST`, `PGPORT`,
//!   `PGUSER`, `PGDATABASE`, and whatever else the URL says: `PGSSLMODE`,
//!   `PGSSLROOTCERT`, `PGOPTIONS`, … see [`super::libpq`]) and the password
//!   through a 0600 `PGPASSFILE` that is deleted afterwards: nothing secret
//!   is ever in a process's argv.
//! - Each tool runs in its own process group; dropping its [`ToolProcess`]
//!   kills the whole group, so a cancelled job leaves no tool running.
//! - stderr is kept (a tail, for the log) and can be followed line by line
//!   for progress.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use super::libpq::LibpqSettings;
use crate::{Error, Result};

/// A private (0600, as tempfile creates it) password file holding `line`.
fn write_passfile(line: &str) -> Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("lms-admin-pgpass-")
        .tempfile()?;
    writeln!(file, "{line}")?;
    file.flush()?;
    Ok(file)
}

/// Connection settings for a tool run, with the password in a private file.
pub struct ToolConnection {
    settings: LibpqSettings,
    database: String,
    passfile: Option<tempfile::NamedTempFile>,
}

impl ToolConnection {
    /// Prepares a connection to `database` (defaults to the URL's own) as
    /// `settings` say. The password file is written on the blocking pool.
    pub async fn new(
        settings: &LibpqSettings,
        password: Option<&str>,
        database: Option<&str>,
    ) -> Result<Self> {
        let passfile = match password {
            Some(pw) => {
                let line = format!(
                    "*:*:*:{}:{}",
                    pgpass_escape(settings.user()),
                    pgpass_escape(pw)
                );
                Some(crate::storage::blocking(move || write_passfile(&line)).await?)
            }
            None => None,
        };
        Ok(Self {
            settings: settings.clone(),
            database: database.unwrap_or(settings.database()).to_owned(),
            passfile,
        })
    }

    /// A command for `tool` with the connection in its environment (see
    /// [`tool_command`] for what else it gets). What the URL says wins over
    /// what the server's own environment holds.
    pub fn command(&self, tool: &Path) -> Command {
        let mut cmd = tool_command(tool);
        // A default the URL may override (connect_timeout).
        cmd.env("PGCONNECT_TIMEOUT", "10");
        for (name, value) in self.settings.vars() {
            cmd.env(name, value);
        }
        cmd.env("PGDATABASE", &self.database)
            .env("PGAPPNAME", "lms-admin")
            .env_remove("PGSERVICE")
            // libpq would connect there instead of PGHOST, the URL's host.
            .env_remove("PGHOSTADDR");
        if let Some(file) = &self.passfile {
            cmd.env("PGPASSFILE", file.path()).env_remove("PGPASSWORD");
        }
        cmd
    }
}

/// A command for a PostgreSQL tool with an environment that starts empty:
/// the server's own holds `DATABASE_URL`, and a child's environment is as
/// readable as its command line (`/proc/<pid>/environ`). Only the basics and
/// libpq's own settings (TLS and the like, never a password) are passed on.
pub fn tool_command(tool: &Path) -> Command {
    let mut cmd = Command::new(tool);
    cmd.env_clear();
    for (key, value) in std::env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        let basic =
            matches!(name, "PATH" | "HOME" | "TMPDIR" | "TZ" | "LANG") || name.starts_with("LC_");
        let libpq = name.starts_with("PG") && !matches!(name, "PGPASSWORD" | "PGSERVICE");
        if basic || libpq {
            cmd.env(&key, value);
        }
    }
    cmd
}

/// In a pgpass line, `:` and `\` are escaped with a backslash.
fn pgpass_escape(field: &str) -> String {
    field.replace('\\', "\\\\").replace(':', "\\:")
}

/// A running tool; dropping it kills its process group.
pub struct ToolProcess {
    pub name: &'static str,
    child: Child,
    pgid: Option<nix::unistd::Pid>,
    finished: bool,
}

impl ToolProcess {
    /// Starts `cmd` in a new process group with stdin closed and stderr piped.
    pub fn spawn(name: &'static str, cmd: Command, stdout: Stdio) -> Result<Self> {
        Self::spawn_with_stdin(name, cmd, Stdio::null(), stdout)
    }

    /// Like [`spawn`](Self::spawn), with `stdin` as the tool's input (a file
    /// opened here reaches the tool as that open file, not as a path it
    /// would open again).
    pub fn spawn_with_stdin(
        name: &'static str,
        mut cmd: Command,
        stdin: Stdio,
        stdout: Stdio,
    ) -> Result<Self> {
        cmd.stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| Error::Tool(format!("{name} could not be started: {e}")))?;
        let pgid = child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32));
        Ok(Self {
            name,
            child,
            pgid,
            finished: false,
        })
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The process id (for tests and logs).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the tool to exit; a non-zero exit becomes
    /// [`Error::ToolFailed`] with the stderr tail.
    pub async fn wait(mut self, stderr_tail: String) -> Result<()> {
        let status = self.child.wait().await?;
        self.finished = true;
        check_status(self.name, status, stderr_tail)
    }
}

impl Drop for ToolProcess {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(pgid) = self.pgid {
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

fn check_status(tool: &'static str, status: ExitStatus, stderr_tail: String) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(Error::ToolFailed {
            tool,
            status,
            stderr_tail,
        })
    }
}

/// Reads a tool's stderr line by line, calling `on_line` for each and
/// returning the last lines (for the log) when the stream ends.
pub async fn follow_stderr(stderr: ChildStderr, mut on_line: impl FnMut(&str)) -> String {
    const KEEP: usize = 20;
    let mut tail = VecDeque::with_capacity(KEEP);
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        on_line(&line);
        if tail.len() == KEEP {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_fields_are_escaped() {
        assert_eq!(pgpass_escape(r"a:b\c"), r"a\:b\\c");
    }

    #[tokio::test]
    async fn passwords_go_to_a_private_file_not_argv() {
        use std::os::unix::fs::PermissionsExt;
        let (_, settings) = super::super::libpq::parse("postgres://u@127.0.0.1:5432/db").unwrap();
        let conn = ToolConnection::new(&settings, Some("s3cr:et"), None)
            .await
            .unwrap();
        let file = conn.passfile.as_ref().unwrap();
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(file.path()).unwrap(),
            "*:*:*:u:s3cr\\:et\n"
        );
        let cmd = conn.command(Path::new("/bin/true"));
        let argv: Vec<_> = cmd.as_std().get_args().collect();
        assert!(argv.is_empty());
        let path = file.path().to_owned();
        drop(conn);
        assert!(
            !path.exists(),
            "the password file is deleted with the connection"
        );
    }

    #[tokio::test]
    async fn the_url_decides_how_a_tool_connects() {
        // A password no temporary path can contain by chance (the password
        // file's path is in the environment, and mktemp's letters could
        // spell a short one).
        let url = "postgres://u:pass-word-4f9@db.example:6543/lms?sslmode=verify-full\
                   &sslrootcert=/etc/lms/ca.crt&connect_timeout=3";
        let (_, settings) = super::super::libpq::parse(url).unwrap();
        let conn = ToolConnection::new(&settings, Some("pass-word-4f9"), Some("lms_copy"))
            .await
            .unwrap();
        let cmd = conn.command(Path::new("/bin/true"));
        let env: std::collections::HashMap<_, _> = cmd
            .as_std()
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_str().unwrap().to_owned(),
                    v.map(|v| v.to_str().unwrap().to_owned()),
                )
            })
            .collect();
        let get = |name: &str| env.get(name).cloned().flatten();
        assert_eq!(get("PGHOST").as_deref(), Some("db.example"));
        assert_eq!(get("PGPORT").as_deref(), Some("6543"));
        assert_eq!(get("PGDATABASE").as_deref(), Some("lms_copy"));
        assert_eq!(get("PGSSLMODE").as_deref(), Some("verify-full"));
        assert_eq!(get("PGSSLROOTCERT").as_deref(), Some("/etc/lms/ca.crt"));
        assert_eq!(get("PGCONNECT_TIMEOUT").as_deref(), Some("3"));
        assert_eq!(get("PGAPPNAME").as_deref(), Some("lms-admin"));
        for unset in ["PGHOSTADDR", "PGSERVICE", "PGPASSWORD"] {
            assert_eq!(get(unset), None, "{unset}");
        }
        assert!(env.values().flatten().all(|v| !v.contains("pass-word-4f9")));
    }

    #[tokio::test]
    async fn dropping_a_tool_kills_its_process_group() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("sleep 30 & echo $! ; wait");
        let mut tool = ToolProcess::spawn("sh", cmd, Stdio::piped()).unwrap();
        let mut out = BufReader::new(tool.child().stdout.take().unwrap()).lines();
        let grandchild: i32 = out
            .next_line()
            .await
            .unwrap()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        drop(tool);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(grandchild), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "the grandchild was killed with its group");
    }
}
