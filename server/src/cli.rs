//! The command line. Configuration comes from environment variables (each
//! flag names its variable), so secrets such as the database password never
//! need to appear in a process's arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// LMS Admin — Backup & Restore: the database backup and restore console of
/// the LMS admin panel.
#[derive(Debug, Parser)]
#[command(name = "lms-admin", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub db: DatabaseArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the databases are.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// The LMS database (the data being protected), as a postgres:// URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,

    /// The control database (catalog, jobs, lock, audit, sessions). Defaults to
    /// `<lms database>_control` on the same server, created at start-up.
    #[arg(
        long,
        env = "CONTROL_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub control_database_url: Option<String>,

    /// Directory holding pg_dump and pg_restore. Defaults to the newest
    /// /usr/lib/postgresql/<version>/bin, then PATH.
    #[arg(long, env = "POSTGRES_BIN_PATH", global = true)]
    pub postgres_bin_path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate both databases and serve the console over HTTP.
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage LMS user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Demo data for trying the console out and for benchmarks.
    #[command(subcommand)]
    Demo(DemoCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Mark the session cookie Secure. Turn on when the console is served
    /// over HTTPS (for example behind a TLS-terminating proxy).
    #[arg(long, env = "SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input (one
    /// line), never from the command line.
    Create(CreateUserArgs),
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[arg(long)]
    pub username: String,
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Read the password from standard input. Required: passwords never go
    /// on the command line.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Defaults to <username>@localhost.
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long, default_value = "")]
    pub full_name: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Instructor,
    Student,
}

impl From<RoleArg> for lms_backup::users::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Self::Admin,
            RoleArg::Instructor => Self::Instructor,
            RoleArg::Student => Self::Student,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Fill an empty LMS database with demo users, courses, lessons,
    /// enrollments and activity. Leaves a database that has courses alone.
    Seed {
        /// Size multiplier: 1 is a few MB; 50 is about 250 MB.
        #[arg(long, default_value_t = 1)]
        scale: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_names_every_variable() {
        let help = Cli::command().render_long_help().to_string();
        for var in ["DATABASE_URL", "CONTROL_DATABASE_URL", "POSTGRES_BIN_PATH"] {
            assert!(help.contains(var), "{var} missing from --help");
        }
        let mut serve = Cli::command();
        let serve = serve
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for var in ["LISTEN_ADDR", "SECURE_COOKIES"] {
            assert!(serve.contains(var), "{var} missing from serve --help");
        }
    }
}
