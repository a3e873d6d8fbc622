//! The two databases. The LMS database holds the data being protected; the
//! control database (a sibling on the same server by default) holds the
//! catalog, jobs, lock, audit log and sessions, so that a restore can never
//! roll back the console's own memory.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};

use super::libpq::LibpqSettings;
use super::process::ToolConnection;
use crate::{Error, Result};

static LMS_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/lms");
static CONTROL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/control");

/// Where the two databases are.
#[derive(Clone)]
pub struct DatabaseUrls {
    pub lms: String,
    /// `None`: a sibling of the LMS database named `<lms>_control`.
    pub control: Option<String>,
}

impl std::fmt::Debug for DatabaseUrls {
    // URLs may carry passwords: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrls { .. }")
    }
}

/// Connection pools to both databases, plus the options they were made from
/// and how the PostgreSQL tools reach the LMS server the same way.
#[derive(Clone)]
pub struct Databases {
    pub lms: PgPool,
    pub control: PgPool,
    pub lms_options: PgConnectOptions,
    pub control_options: PgConnectOptions,
    /// The LMS role's password, for the tools' private password file.
    pub(crate) lms_password: Option<String>,
    /// Everything else DATABASE_URL says, for the tools' environment.
    pub(crate) lms_tools: LibpqSettings,
}

impl Databases {
    /// Connects to both databases, creating the control database first if it
    /// does not exist yet. Does not migrate.
    pub async fn connect(urls: &DatabaseUrls) -> Result<Self> {
        let (lms_options, lms_tools) = parse_url(&urls.lms, "DATABASE_URL")?;
        let control_options = match &urls.control {
            Some(url) => parse_url(url, "CONTROL_DATABASE_URL")?.0,
            None => {
                let lms_name = lms_options
                    .get_database()
                    .ok_or_else(|| Error::Config("DATABASE_URL must name a database".into()))?;
                lms_options.clone().database(&format!("{lms_name}_control"))
            }
        };
        ensure_database_exists(&lms_options, &control_options).await?;
        Ok(Self {
            lms: pool(&lms_options),
            control: pool(&control_options),
            lms_options,
            control_options,
            lms_password: url_password(&urls.lms),
            lms_tools,
        })
    }

    /// How a PostgreSQL tool connects to `database` on the LMS server (the
    /// LMS database by default): the server, role, password and TLS
    /// settings of DATABASE_URL, as the pools connect.
    pub async fn tool_connection(&self, database: Option<&str>) -> Result<ToolConnection> {
        ToolConnection::new(&self.lms_tools, self.lms_password.as_deref(), database).await
    }

    /// A tool connection like [`Self::tool_connection`], signed in as
    /// another role of the same server.
    pub(crate) async fn tool_connection_as(
        &self,
        user: &str,
        password: &str,
        database: Option<&str>,
    ) -> Result<ToolConnection> {
        ToolConnection::new(&self.lms_tools.as_user(user), Some(password), database).await
    }

    /// Repairs what a crash in the middle of a restore's swap can leave,
    /// before anything connects to the LMS database: the live database
    /// closed to connections, or (if renames were ever split) missing while
    /// a previous one exists. Skipped while another instance holds a fresh
    /// operation lock (it may be swapping right now).
    pub async fn repair_interrupted_swap(&self, lease_timeout: std::time::Duration) -> Result<()> {
        let mut admin = PgConnection::connect_with(&self.maintenance_options()).await?;
        let fresh_lock = match PgConnection::connect_with(&self.control_options).await {
            Ok(mut control) => {
                let has_lock_table: bool =
                    sqlx::query_scalar("SELECT to_regclass('operation_lock') IS NOT NULL")
                        .fetch_one(&mut control)
                        .await?;
                // A fresh lease of a process on this host that no longer
                // exists (the server killed mid-swap and started again) does
                // not count: nobody is swapping.
                let holder: Option<String> = if has_lock_table {
                    sqlx::query_scalar(
                        "SELECT holder_instance FROM operation_lock WHERE heartbeat_at > now() - make_interval(secs => $1)",
                    )
                    .bind(lease_timeout.as_secs_f64())
                    .fetch_optional(&mut control)
                    .await?
                } else {
                    None
                };
                let ours =
                    crate::storage::blocking(|| Ok(crate::jobs::lock::new_instance_id())).await?;
                holder.is_some_and(|h| !crate::jobs::lock::holder_is_dead(&h, &ours))
            }
            Err(_) => false,
        };
        if fresh_lock {
            return Ok(());
        }
        let live = self.lms_name().to_owned();
        let state: Option<bool> =
            sqlx::query_scalar("SELECT datallowconn FROM pg_database WHERE datname = $1")
                .bind(&live)
                .fetch_optional(&mut admin)
                .await?;
        match state {
            Some(true) => {}
            Some(false) => {
                tracing::warn!(database = %live, "re-opening the LMS database closed by an interrupted restore");
                sqlx::query(&format!(
                    "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                    quote_ident(&live)
                ))
                .execute(&mut admin)
                .await?;
            }
            None => {
                let pattern = super::names::previous_pattern(&live);
                let previous: Option<String> = sqlx::query_scalar(
                    "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY datname DESC LIMIT 1",
                )
                .bind(pattern)
                .fetch_optional(&mut admin)
                .await?;
                if let Some(previous) = previous {
                    tracing::warn!(database = %live, from = %previous, "the LMS database was missing; putting the previous one back");
                    sqlx::query(&format!(
                        "ALTER DATABASE {} RENAME TO {}",
                        quote_ident(&previous),
                        quote_ident(&live)
                    ))
                    .execute(&mut admin)
                    .await?;
                    sqlx::query(&format!(
                        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                        quote_ident(&live)
                    ))
                    .execute(&mut admin)
                    .await?;
                }
            }
        }
        admin.close().await?;
        Ok(())
    }

    /// Applies the migrations of both databases (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        LMS_MIGRATIONS.run(&self.lms).await?;
        CONTROL_MIGRATIONS.run(&self.control).await?;
        Ok(())
    }

    /// Applies the LMS migrations to another database of the same schema
    /// (a freshly restored copy, so an older backup comes back up to date).
    pub async fn migrate_lms_copy(&self, pool: &PgPool) -> Result<()> {
        LMS_MIGRATIONS.run(pool).await?;
        Ok(())
    }

    /// Options for a database beside the LMS one (same server and role).
    pub fn sibling_options(&self, database: &str) -> PgConnectOptions {
        self.lms_options.clone().database(database)
    }

    /// A database on the LMS server that is neither the LMS database nor one
    /// being renamed: the control database when it lives on the same server,
    /// else `postgres`. Renames and drops are issued from there.
    pub fn maintenance_options(&self) -> PgConnectOptions {
        let same_server = self.control_options.get_host() == self.lms_options.get_host()
            && self.control_options.get_port() == self.lms_options.get_port();
        match self.control_options.get_database().filter(|_| same_server) {
            Some(control) => self.sibling_options(control),
            None => self.sibling_options("postgres"),
        }
    }

    /// A pool on the LMS server that is not the LMS database itself when
    /// possible (catalog queries about databases work from any of them).
    pub fn control_or_lms(&self) -> PgPool {
        if self.control_options.get_host() == self.lms_options.get_host()
            && self.control_options.get_port() == self.lms_options.get_port()
        {
            self.control.clone()
        } else {
            self.lms.clone()
        }
    }

    /// The LMS database's name.
    pub fn lms_name(&self) -> &str {
        self.lms_options.get_database().unwrap_or_default()
    }
}

/// Reads a database URL (named `var` in errors) into the pools' options and
/// the tools' settings.
pub(crate) fn parse_url(url: &str, var: &str) -> Result<(PgConnectOptions, LibpqSettings)> {
    let (options, tools) =
        super::libpq::parse(url).map_err(|problem| Error::Config(format!("{var} {problem}")))?;
    Ok((
        options.log_statements(tracing::log::LevelFilter::Trace),
        tools,
    ))
}

/// The password in a postgres:// URL, percent-decoded.
fn url_password(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let raw = parsed.password()?;
    Some(
        percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn pool(options: &PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options.clone())
}

/// Creates the control database when it is missing, connecting through the
/// LMS database (the role needs CREATEDB, which restores need anyway).
async fn ensure_database_exists(via: &PgConnectOptions, target: &PgConnectOptions) -> Result<()> {
    let name = target
        .get_database()
        .ok_or_else(|| Error::Config("CONTROL_DATABASE_URL must name a database".into()))?;
    if PgConnection::connect_with(target).await.is_ok() {
        return Ok(());
    }
    let mut conn = PgConnection::connect_with(via).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        tracing::info!(database = name, "creating the control database");
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(name)))
            .execute(&mut conn)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "CREATE DATABASE failed");
                Error::Config(format!(
                    "the control database \"{name}\" does not exist and could not be created: \
                     grant CREATEDB to the database role or create it yourself"
                ))
            })?;
    }
    conn.close().await?;
    Ok(())
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub(crate) fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Quotes an SQL identifier (for the few statements that cannot take
/// parameters, such as CREATE DATABASE).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal as an escape string (`E'…'`), so it means
/// the same whatever `standard_conforming_strings` says.
pub fn quote_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_literal_doubles_quotes() {
        assert_eq!(quote_literal("it's"), "E'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("lms"), "\"lms\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn passwords_are_read_from_urls() {
        assert_eq!(
            url_password("postgres://u:p%40ss%3Aw@h/db").as_deref(),
            Some("p@ss:w")
        );
        assert_eq!(url_password("postgres://u@h/db"), None);
    }

    #[test]
    fn database_urls_debug_hides_passwords() {
        let urls = DatabaseUrls {
            lms: "postgres://u:secret@localhost/lms".into(),
            control: None,
        };
        assert!(!format!("{urls:?}").contains("secret"));
    }
}
