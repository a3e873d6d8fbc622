//! What each subcommand does.

use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::ssr::{AppState, Config, LoginLimiter};
use lms_backup::demo::{self, SeedOutcome};
use lms_backup::postgres::databases::DatabaseUrls;
use lms_backup::postgres::tools::{self, PgTools};
use lms_backup::users::{self, NewUser};
use lms_backup::{Databases, Engine};

use crate::cli::{
    BackupArgs, Cli, CliResult, Command, CreateUserArgs, DatabaseArgs, DemoCommand, GrantAdminArgs,
    ServeArgs, UserCommand,
};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Serve(args) => serve(&cli.db, &cli.backups, args).await,
        Command::Migrate => {
            connect(&cli.db).await?;
            println!("Both databases are migrated.");
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => create_user(&cli.db, args).await,
        Command::User(UserCommand::GrantAdmin(args)) => grant_admin(&cli.db, args).await,
        Command::Demo(DemoCommand::Seed { scale }) => seed(&cli.db, scale).await,
        Command::Backup(command) => {
            let engine = engine(&cli.db, &cli.backups).await?;
            crate::backup_cli::run(&engine, command).await
        }
        Command::Schedule(command) => {
            let engine = engine(&cli.db, &cli.backups).await?;
            crate::schedule_cli::run(&engine, command).await
        }
        Command::Token(command) => {
            let engine = engine(&cli.db, &cli.backups).await?;
            crate::token_cli::run(&engine, command).await
        }
    }
}

/// Connects to both databases and migrates them.
pub async fn connect(db: &DatabaseArgs) -> Result<Databases, String> {
    let lms = db.database_url.clone().ok_or(
        "DATABASE_URL is not set: point it at the LMS database, e.g. \
         postgres://lms:PASSWORD@127.0.0.1:5432/lms (README.md shows how to run a local one)",
    )?;
    let urls = DatabaseUrls {
        lms,
        control: db.control_database_url.clone(),
    };
    let dbs = Databases::connect(&urls).await.map_err(describe)?;
    dbs.repair_interrupted_swap(db.lease_timeout())
        .await
        .map_err(describe)?;
    dbs.migrate().await.map_err(describe)?;
    Ok(dbs)
}

fn describe(err: lms_backup::Error) -> String {
    match err {
        lms_backup::Error::Database(e) => format!("database error: {e}"),
        lms_backup::Error::Migrate(e) => format!("migration failed: {e}"),
        other => other.to_string(),
    }
}

/// Connects, migrates and checks the PostgreSQL tools (the backup directory
/// is looked at, never created, when it is used).
pub async fn engine(db: &DatabaseArgs, backups: &BackupArgs) -> Result<Engine, String> {
    let dbs = connect(db).await?;
    let tools = check_tools(db, &dbs).await?;
    let mut config = backups.engine_config();
    config.offsite = backups.offsite.config()?;
    (config.encryption, config.decryption) = backups.offsite.encryption()?;
    config.encrypt_local = backups.offsite.encrypt_local;
    config.notify = backups.notify.config()?;
    if config.encrypt_local && config.encryption.is_none() {
        return Err(
            "ENCRYPT_LOCAL=true needs the keys to encrypt to: set AGE_RECIPIENTS (age1… public \
             keys) or AGE_PASSPHRASE_FILE."
                .into(),
        );
    }
    if config.encryption.is_some() && config.offsite.is_none() && !config.encrypt_local {
        return Err(
            "AGE_RECIPIENTS or AGE_PASSPHRASE_FILE is set without an off-site target (S3_BUCKET) \
             and without ENCRYPT_LOCAL=true: nothing would be encrypted. Set S3_BUCKET to encrypt \
             off-site copies, or ENCRYPT_LOCAL=true to encrypt the backups kept here."
                .into(),
        );
    }
    config.lease_timeout = db.lease_timeout();
    config.heartbeat_interval = config.heartbeat_interval.min(config.lease_timeout / 3);
    Engine::new(dbs, tools, config).await.map_err(describe)
}

async fn serve(db: &DatabaseArgs, backups: &BackupArgs, args: ServeArgs) -> CliResult {
    let engine = engine(db, backups).await?;
    // Restores need their own role; without it the console would offer a
    // restore it cannot do safely.
    engine
        .check_restore_role()
        .await
        .map_err(|e| format!("cannot serve: {}", describe(e)))?;
    engine
        .recover()
        .await
        .map_err(|e| format!("start-up recovery failed: {}", describe(e)))?;
    engine.watch_for_abandoned_switches();
    engine.watch_prepared_copy();
    // A backup directory that is not there (yet) does not stop the console:
    // backups wait for it, say why, and resume once it is back.
    engine.watch_backup_dir();
    // Every instance runs the schedules; the control database makes each
    // due time one backup.
    lms_backup::schedule::spawn_scheduler(engine.clone());
    // Every instance delivers notifications; a claim makes each one sent
    // by one of them.
    lms_backup::notify::spawn_notifier(engine.clone());
    // Restore drills on their schedule (DRILL_INTERVAL_HOURS).
    lms_backup::restore::drill::spawn_drill_schedule(engine.clone());
    // A target that cannot be used does not stop the console (the local
    // backups go on), but it is said now, on the card and in the health.
    if let Some(offsite) = engine.offsite() {
        match engine.check_offsite().await {
            Some(Err(e)) => tracing::error!("the off-site target cannot be used: {e}"),
            _ => {
                tracing::info!(target = %offsite.description(), "off-site copies go to the target")
            }
        }
        engine.spawn_offsite_worker();
    }

    let conf = leptos::config::get_configuration(None)
        .map_err(|e| format!("Leptos configuration: {e}"))?;
    let mut leptos_options = conf.leptos_options;
    leptos_options.site_addr = args.listen;
    if crate::assets::embedded_site_status(&leptos_options.output_name) == Some(false) {
        return Err(
            "this binary was built without its site assets; build it with scripts/run.sh".into(),
        );
    }
    if let Some(dir) = crate::assets::bundle_dir(&leptos_options.output_name) {
        leptos_options.site_pkg_dir = dir.into();
    }

    let store = crate::sessions::store(&engine.dbs().control)
        .await
        .map_err(|e| format!("session store: {e}"))?;
    lms_backup::audit::prune_every(
        engine.dbs().control.clone(),
        args.audit_retention(),
        Duration::from_secs(60 * 60),
    );
    let login_limiter = Arc::new(LoginLimiter::default());
    login_limiter.evict_idle_every(Duration::from_secs(60));
    let state = AppState {
        leptos_options,
        engine,
        login_limiter,
        config: Arc::new(Config {
            secure_cookies: args.secure_cookies,
            trusted_proxies: args.trusted_proxies.clone(),
            metrics_token: metrics_token()?,
            token_requests_per_minute: args.api_token_rate_limit,
        }),
    };
    let app = crate::router(state, crate::sessions::layer(store, args.secure_cookies));

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!("LMS Admin is listening on http://{}", args.listen);
    println!("LMS Admin is listening on http://{}", args.listen);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server error: {e}"))
}

/// Refuses to start without usable pg_dump / pg_restore.
async fn check_tools(db: &DatabaseArgs, dbs: &Databases) -> Result<PgTools, String> {
    let tools = tools::locate(db.postgres_bin_path.as_deref())
        .await
        .map_err(describe)?;
    let (major, version) = tools::server_version(&dbs.lms).await.map_err(describe)?;
    tools
        .check_against_server(major, &version)
        .map_err(describe)?;
    tracing::info!(pg_dump = %tools.pg_dump.display(), tools_major = tools.major, server = %version, "PostgreSQL tools found");
    Ok(tools)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}

/// One line of standard input, without its line ending.
fn password_from_stdin() -> Result<String, String> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| format!("could not read the password from standard input: {e}"))?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

async fn create_user(db: &DatabaseArgs, args: CreateUserArgs) -> CliResult {
    let password = password_from_stdin()?;
    let password = password.as_str();
    let dbs = connect(db).await?;
    let email = args
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@localhost", args.username));
    let user = users::create(
        &dbs.lms,
        NewUser {
            username: &args.username,
            email: &email,
            full_name: &args.full_name,
            role: args.role.into(),
            password,
        },
    )
    .await
    .map_err(|e| match e {
        lms_backup::Error::Conflict(message) => format!(
            "{message}. To make an existing account an active administrator with a new \
             password, run: {}",
            app::models::grant_admin_command(&args.username)
        ),
        other => describe(other),
    })?;
    println!(
        "Created {} \"{}\" (id {}).",
        user.role.as_str(),
        user.username,
        user.id
    );
    Ok(())
}

async fn grant_admin(db: &DatabaseArgs, args: GrantAdminArgs) -> CliResult {
    let password = password_from_stdin()?;
    let dbs = connect(db).await?;
    let email = args
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@localhost", args.username));
    let granted = users::grant_admin(
        &dbs.lms,
        users::AdminGrant {
            username: &args.username,
            password: &password,
            email: &email,
            full_name: &args.full_name,
        },
    )
    .await
    .map_err(describe)?;
    let what = if granted.created {
        "created the account"
    } else {
        "existing account"
    };
    lms_backup::audit::record_or_log(
        &dbs.control,
        lms_backup::audit::Event {
            actor: &crate::backup_cli::cli_actor(),
            action: lms_types::AuditAction::AdminGrant,
            target: Some(&granted.user.username),
            outcome: lms_types::AuditOutcome::Success,
            detail: Some(what),
        },
    )
    .await;
    println!(
        "\"{}\" (id {}) is an active administrator and signs in with the new password ({what}).",
        granted.user.username, granted.user.id
    );
    Ok(())
}

async fn seed(db: &DatabaseArgs, scale: u32) -> CliResult {
    let dbs = connect(db).await?;
    match demo::seed(&dbs.lms, scale).await.map_err(describe)? {
        SeedOutcome::AlreadySeeded { courses, users } => {
            println!(
                "The LMS database already has data ({courses} courses, {users} users); \
                 demo seed only fills an empty database. Nothing was changed."
            );
        }
        SeedOutcome::Seeded {
            users,
            courses,
            lessons,
            attachments,
            enrollments,
            events,
            database_bytes,
        } => {
            println!(
                "Seeded {users} users, {courses} courses, {lessons} lessons, {attachments} \
                 attachments, {enrollments} enrollments and {events} activity events; the \
                 database is now {}.",
                app::models::human_bytes(database_bytes)
            );
        }
    }
    Ok(())
}

/// The bearer token `/metrics` asks for: `METRICS_TOKEN`, or the first line
/// of the file `METRICS_TOKEN_FILE` names. Read from the environment only,
/// never from the command line (where other users could see it).
fn metrics_token() -> Result<Option<app::ssr::BearerToken>, String> {
    let token = match (
        std::env::var("METRICS_TOKEN").ok(),
        std::env::var_os("METRICS_TOKEN_FILE"),
    ) {
        (Some(_), Some(_)) => {
            return Err("Set METRICS_TOKEN or METRICS_TOKEN_FILE, not both.".into())
        }
        (Some(token), None) => token,
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| {
                format!(
                    "METRICS_TOKEN_FILE: cannot read {}: {e}",
                    std::path::Path::new(&path).display()
                )
            })?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        (None, None) => return Ok(None),
    };
    let token = token.trim();
    if token.len() < 16 {
        return Err(
            "METRICS_TOKEN: at least 16 characters (e.g. openssl rand -hex 32); unset it to leave \
             /metrics open."
                .into(),
        );
    }
    Ok(Some(app::ssr::BearerToken::new(token)))
}
