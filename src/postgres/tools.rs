//! Finding `pg_dump` and `pg_restore` and making sure they can handle the
//! server: a dump tool older than the server refuses to work (or worse,
//! produces an archive the server's own tools cannot read back).

use std::path::{Path, PathBuf};

use sqlx::PgPool;

use crate::{Error, Result};

/// The PostgreSQL client tools this console drives.
#[derive(Debug, Clone)]
pub struct PgTools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
    /// Major version shared by both tools.
    pub major: u32,
}

/// Version of the PostgreSQL server behind a pool, as (major, full text).
pub async fn server_version(pool: &PgPool) -> Result<(u32, String)> {
    let (num, text): (String, String) = sqlx::query_as(
        "SELECT current_setting('server_version_num'), current_setting('server_version')",
    )
    .fetch_one(pool)
    .await?;
    let num: u32 = num
        .parse()
        .map_err(|_| Error::Tool(format!("unexpected server_version_num {num:?}")))?;
    Ok((num / 10_000, text))
}

/// Finds the tools: in `bin_dir` when given (POSTGRES_BIN_PATH), else the
/// newest `/usr/lib/postgresql/<ver>/bin`, else on PATH.
pub async fn locate(bin_dir: Option<&Path>) -> Result<PgTools> {
    let dirs: Vec<PathBuf> = match bin_dir {
        Some(dir) => vec![dir.to_path_buf()],
        None => {
            let mut found = crate::storage::blocking(|| Ok(debian_bin_dirs())).await?;
            found.extend(
                std::env::var_os("PATH")
                    .iter()
                    .flat_map(std::env::split_paths),
            );
            found
        }
    };
    let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    let (Some(pg_dump), Some(pg_restore)) = (find("pg_dump"), find("pg_restore")) else {
        let place = match bin_dir {
            Some(dir) => format!("in POSTGRES_BIN_PATH ({})", dir.display()),
            None => "on PATH or under /usr/lib/postgresql".to_owned(),
        };
        return Err(Error::Tool(format!(
            "pg_dump and pg_restore were not found {place}: install the PostgreSQL client \
             (Debian: apt-get install postgresql-client) or set POSTGRES_BIN_PATH"
        )));
    };
    let dump_major = tool_major(&pg_dump).await?;
    let restore_major = tool_major(&pg_restore).await?;
    if dump_major != restore_major {
        return Err(Error::Tool(format!(
            "pg_dump is version {dump_major} but pg_restore is version {restore_major}: \
             point POSTGRES_BIN_PATH at one PostgreSQL installation"
        )));
    }
    Ok(PgTools {
        pg_dump,
        pg_restore,
        major: dump_major,
    })
}

impl PgTools {
    /// Refuses tools older than the server, naming both versions.
    pub fn check_against_server(&self, server_major: u32, server_version: &str) -> Result<()> {
        if self.major < server_major {
            return Err(Error::Tool(format!(
                "pg_dump {} is older than the PostgreSQL server ({server_version}): install the \
                 PostgreSQL {server_major} client tools (Debian: apt-get install \
                 postgresql-client-{server_major}) or set POSTGRES_BIN_PATH to their bin directory",
                self.major
            )));
        }
        Ok(())
    }
}

fn debian_bin_dirs() -> Vec<PathBuf> {
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
    versioned.into_iter().map(|(_, p)| p).collect()
}

/// Runs `<tool> --version` and reads the major version from
/// "pg_dump (PostgreSQL) 15.18 (Debian ...)".
async fn tool_major(tool: &Path) -> Result<u32> {
    let output = crate::postgres::process::tool_command(tool)
        .arg("--version")
        .output()
        .await
        .map_err(|e| Error::Tool(format!("{} could not be run: {e}", tool.display())))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_major(&text).ok_or_else(|| {
        Error::Tool(format!(
            "{} --version printed {:?}, which has no version number",
            tool.display(),
            text.trim()
        ))
    })
}

fn parse_major(version_output: &str) -> Option<u32> {
    let after = version_output.split(')').nth(1)?.trim();
    let number = after.split(|c: char| !c.is_ascii_digit()).next()?;
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_versions() {
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("pg_restore (PostgreSQL) 17.2\n"), Some(17));
        assert_eq!(parse_major("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_major("garbage"), None);
    }

    #[test]
    fn older_tools_are_refused_with_both_versions() {
        let tools = PgTools {
            pg_dump: "pg_dump".into(),
            pg_restore: "pg_restore".into(),
            major: 14,
        };
        let err = tools
            .check_against_server(15, "15.18")
            .unwrap_err()
            .to_string();
        assert!(err.contains("14") && err.contains("15.18"), "{err}");
        assert!(tools.check_against_server(14, "14.1").is_ok());
        assert!(tools.check_against_server(13, "13.9").is_ok());
    }
}
