//! The command line. Configuration comes from environment variables (each
//! flag names its variable), so secrets such as the database password never
//! need to appear in a process's arguments.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use app::ssr::TrustedProxies;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// What a subcommand ends with: done, or a message for the operator (and a
/// non-zero exit).
pub type CliResult = Result<(), String>;

/// LMS Admin — Backup & Restore: the database backup and restore console of
/// the LMS admin panel.
#[derive(Debug, Parser)]
#[command(name = "lms-admin", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub db: DatabaseArgs,

    #[command(flatten)]
    pub backups: BackupArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the databases are.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// The LMS database (the data being protected), as a postgres:// URL.
    /// TLS settings in its query (sslmode, sslrootcert, sslcert, sslkey)
    /// bind pg_dump and pg_restore as well as the console's connections.
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

    /// Seconds a running operation may go without renewing its lease before
    /// another process may take it over and repair what it left (a restore
    /// interrupted mid-switch, maintenance mode left on).
    #[arg(long, env = "OPERATION_LEASE_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..), global = true)]
    pub operation_lease_timeout: u64,
}

impl DatabaseArgs {
    pub fn lease_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.operation_lease_timeout)
    }
}

/// Where backups go and the limits they live by.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Directory for backup archives and their manifests. It must exist: the
    /// server never creates it (it may be the mount point of a disk that is
    /// not mounted), and refuses backups, uploads and restores, saying so,
    /// until it is there.
    #[arg(long, env = "BACKUP_DIR", default_value = "./backups", global = true)]
    pub backup_dir: PathBuf,

    /// Largest backup created or uploaded, in bytes or with a unit
    /// (500MiB, 2GiB).
    #[arg(long, env = "MAX_BACKUP_SIZE", default_value = "1GiB", value_parser = parse_size, global = true)]
    pub max_backup_size: u64,

    /// pg_dump's gzip level for new backups: 0 (none) to 9 (smallest,
    /// slowest). The default is chosen from measurements (docs/BENCHMARKS.md).
    #[arg(
        long,
        env = "BACKUP_COMPRESSION",
        default_value_t = lms_backup::DEFAULT_BACKUP_COMPRESSION,
        value_parser = clap::value_parser!(u8).range(0..=9),
        global = true
    )]
    pub backup_compression: u8,

    /// Completed backups kept; older ones are deleted after each backup
    /// (the newest good one is always kept).
    #[arg(long, env = "MAX_BACKUPS_TO_KEEP", default_value_t = 10, global = true)]
    pub max_backups_to_keep: u32,

    /// Manual backups each administrator may start per hour (0: no limit).
    #[arg(long, env = "BACKUP_RATE_LIMIT", default_value_t = 1, global = true)]
    pub backup_rate_limit: u32,

    /// Databases kept from before restores, for undo.
    #[arg(
        long,
        env = "RESTORE_KEEP_PREVIOUS",
        default_value_t = 1,
        global = true
    )]
    pub restore_keep_previous: u32,

    /// The role restores build their copy as: it logs in and can change
    /// nothing but the copy (default: `<application role>_restore`; see the
    /// operator guide for the two statements that set it up).
    #[arg(long, env = "RESTORE_ROLE", global = true)]
    pub restore_role: Option<String>,

    /// Space a restore leaves free on the database server's disk, in bytes
    /// or with a unit: the copy being built is stopped before it grows into
    /// it.
    #[arg(long, env = "RESTORE_FREE_SPACE_MARGIN", default_value = "256MiB", value_parser = parse_size, global = true)]
    pub restore_free_space_margin: u64,

    /// Seconds an upload may send nothing before it is refused (408).
    #[arg(long, env = "UPLOAD_IDLE_TIMEOUT", default_value_t = 60, global = true)]
    pub upload_idle_timeout: u64,

    /// Seconds an upload may take in all before it is refused (408).
    #[arg(long, env = "UPLOAD_TIMEOUT", default_value_t = 3600, global = true)]
    pub upload_timeout: u64,

    /// Uploads received at once; one more is refused (409) until one has
    /// finished.
    #[arg(long, env = "MAX_CONCURRENT_UPLOADS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_concurrent_uploads: u32,

    /// Free space an upload must leave on the backup directory's disk once
    /// it, the other running uploads and a running backup have written all
    /// they may (an upload that does not announce its size counts as
    /// MAX_BACKUP_SIZE); refused (507) otherwise. Bytes or with a unit.
    #[arg(long, env = "MIN_FREE_SPACE", default_value = "512MiB", value_parser = parse_size_or_zero, global = true)]
    pub min_free_space: u64,

    /// Seconds a scheduled backup may wait for another operation to end (or
    /// for the backup directory to come back) before it is skipped and
    /// reported as such.
    #[arg(long, env = "SCHEDULE_GRACE", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub schedule_grace: u64,

    /// Hours between restore drills of the newest backup (restored into a
    /// scratch database, checked, dropped); 0 runs them only on demand.
    /// Health turns amber when the newest drill is older (plus a day) or
    /// failed.
    #[arg(
        long,
        env = "DRILL_INTERVAL_HOURS",
        default_value_t = 168,
        global = true
    )]
    pub drill_interval_hours: u64,

    /// Seconds a prepared copy (Preview changes) is kept unused before it is
    /// dropped; looking at its comparison or planning a recovery from it
    /// counts as use.
    #[arg(
        long,
        env = "PREPARED_COPY_IDLE_TIMEOUT",
        default_value_t = 7200,
        value_parser = clap::value_parser!(u64).range(60..),
        global = true
    )]
    pub prepared_copy_idle_timeout: u64,

    #[command(flatten)]
    pub offsite: OffsiteArgs,

    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Notification channels configured by environment (more can be made in
/// the console). The secrets come from the environment only, never flags:
/// `SMTP_URL` (`smtp://user:password@host:port`, STARTTLS, or `smtps://…`,
/// TLS), `NOTIFY_WEBHOOK_URL` and `NOTIFY_WEBHOOK_SECRET`, or each with
/// `_FILE` naming a file that holds it. Such a channel is told about
/// failed backups and off-site copies, breached RPOs, a stuck lock and
/// failed drills.
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// The sender of notification e-mails (with SMTP_URL).
    #[arg(long, env = "NOTIFY_EMAIL_FROM", global = true)]
    pub notify_email_from: Option<String>,

    /// Who notification e-mails go to (comma-separated addresses).
    #[arg(long, env = "NOTIFY_EMAIL_TO", value_delimiter = ',', global = true)]
    pub notify_email_to: Vec<String>,

    /// The body NOTIFY_WEBHOOK_URL is sent: generic (this product's JSON,
    /// signed with NOTIFY_WEBHOOK_SECRET), slack (Slack, Mattermost) or
    /// teams (Microsoft Teams, Discord).
    #[arg(
        long,
        env = "NOTIFY_WEBHOOK_FORMAT",
        default_value = "generic",
        global = true
    )]
    pub notify_webhook_format: String,

    /// The console's address as administrators reach it
    /// (https://lms.example.org); messages link to it.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Seconds before a failed notification is sent again (doubled at each
    /// failure, up to an hour).
    #[arg(long, env = "NOTIFY_RETRY_AFTER", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub notify_retry_after: u64,

    /// When the daily digest goes out (HH:MM, UTC) to channels that choose
    /// it.
    #[arg(long, env = "NOTIFY_DIGEST_AT", default_value = "07:00", value_parser = parse_time_of_day, global = true)]
    pub notify_digest_at: chrono::NaiveTime,
}

/// "HH:MM" (24-hour, UTC).
fn parse_time_of_day(s: &str) -> Result<chrono::NaiveTime, String> {
    chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("'{s}' is not a time of day as HH:MM (24-hour, UTC), e.g. 07:00"))
}

impl NotifyArgs {
    /// The channels the environment configures; an error names the
    /// variable and never repeats a secret.
    pub fn config(&self) -> Result<lms_backup::notify::NotifyConfig, String> {
        use lms_backup::notify::{self, channels, EmailSettings, WebhookSettings};
        let mut config = notify::NotifyConfig {
            retry_after: std::time::Duration::from_secs(self.notify_retry_after),
            digest_at: self.notify_digest_at,
            ..Default::default()
        };
        let email_to: Vec<String> = self
            .notify_email_to
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        match secret_from_env("SMTP_URL")? {
            Some(url) => {
                channels::check_smtp_url(url.expose()).map_err(|e| format!("SMTP_URL: {e}"))?;
                let from = self.notify_email_from.clone().ok_or(
                    "SMTP_URL is set without NOTIFY_EMAIL_FROM: set the address notifications \
                     are sent from.",
                )?;
                channels::check_address(&from).map_err(|e| format!("NOTIFY_EMAIL_FROM: {e}"))?;
                if email_to.is_empty() {
                    return Err(
                        "SMTP_URL is set without NOTIFY_EMAIL_TO: set who notifications \
                                go to (comma-separated addresses)."
                            .into(),
                    );
                }
                for to in &email_to {
                    channels::check_address(to).map_err(|e| format!("NOTIFY_EMAIL_TO: {e}"))?;
                }
                config.email = Some(EmailSettings {
                    smtp_url: url,
                    from,
                    to: email_to,
                });
            }
            None if self.notify_email_from.is_some() || !email_to.is_empty() => {
                return Err(
                    "NOTIFY_EMAIL_FROM or NOTIFY_EMAIL_TO is set without SMTP_URL: set \
                            the mail server (smtp://user:password@host:587 or smtps://…)."
                        .into(),
                )
            }
            None => {}
        }
        let secret = secret_from_env("NOTIFY_WEBHOOK_SECRET")?;
        match secret_from_env("NOTIFY_WEBHOOK_URL")? {
            Some(url) => {
                channels::check_webhook_url(url.expose())
                    .map_err(|e| format!("NOTIFY_WEBHOOK_URL: {e}"))?;
                let format = self.notify_webhook_format.parse().map_err(|_| {
                    format!(
                        "NOTIFY_WEBHOOK_FORMAT is \"{}\": use generic, slack or teams.",
                        self.notify_webhook_format
                    )
                })?;
                config.webhook = Some(WebhookSettings {
                    url,
                    secret,
                    format,
                });
            }
            None if secret.is_some() => {
                return Err("NOTIFY_WEBHOOK_SECRET is set without NOTIFY_WEBHOOK_URL.".into())
            }
            None => {}
        }
        config.console_url = self
            .public_url
            .as_deref()
            .map(|u| format!("{}/admin", u.trim_end_matches('/')));
        Ok(config)
    }
}

/// Where verified backups are copied off-site: an S3-compatible bucket.
/// The credentials are read from the environment only (never flags):
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, or
/// `AWS_ACCESS_KEY_ID_FILE` and `AWS_SECRET_ACCESS_KEY_FILE` naming files
/// that hold them.
#[derive(Debug, Clone, Args)]
pub struct OffsiteArgs {
    /// The bucket backups are copied to; setting it turns off-site copies
    /// on. Its credentials come from the environment only, never flags:
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or
    /// AWS_ACCESS_KEY_ID_FILE and AWS_SECRET_ACCESS_KEY_FILE naming files
    /// that hold them.
    #[arg(long, env = "S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,

    /// The S3-compatible service's URL (MinIO, R2, B2, Ceph); unset for
    /// AWS itself.
    #[arg(long, env = "S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// The "folder" in the bucket the copies go under.
    #[arg(long, env = "S3_PREFIX", default_value = "", global = true)]
    pub s3_prefix: String,

    /// The bucket's region.
    #[arg(long, env = "S3_REGION", default_value = "us-east-1", global = true)]
    pub s3_region: String,

    /// Address the bucket in the path (endpoint/bucket/key) rather than as
    /// a host name (bucket.endpoint/key); most self-hosted services need it.
    #[arg(long, env = "S3_FORCE_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub s3_force_path_style: bool,

    /// Encrypt off-site copies to these age public keys (comma-separated
    /// age1…, as `age-keygen` prints them). New backups use the list as it
    /// is; older ones keep the keys they were encrypted to.
    #[arg(long, env = "AGE_RECIPIENTS", value_delimiter = ',', global = true)]
    pub age_recipients: Vec<String>,

    /// A file holding a passphrase to encrypt off-site copies with instead
    /// of recipients (the age format takes a passphrase only alone); it
    /// also opens them.
    #[arg(long, env = "AGE_PASSPHRASE_FILE", global = true)]
    pub age_passphrase_file: Option<PathBuf>,

    /// The age identity file (AGE-SECRET-KEY-1… lines) that opens encrypted
    /// backups: needed to restore them from off-site, not to make them.
    #[arg(long, env = "AGE_IDENTITY_FILE", global = true)]
    pub age_identity_file: Option<PathBuf>,

    /// Encrypt new backups and uploads before they touch the backup
    /// directory too, not only their off-site copies (needs AGE_RECIPIENTS
    /// or AGE_PASSPHRASE_FILE; restoring them needs AGE_IDENTITY_FILE or
    /// the passphrase on this server). Downloads are then the encrypted
    /// file (.age).
    #[arg(long, env = "ENCRYPT_LOCAL", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub encrypt_local: bool,
}

impl OffsiteArgs {
    /// What new off-site copies are encrypted to, and the keys that open
    /// encrypted ones; an error names the variable and never repeats a
    /// secret.
    pub fn encryption(
        &self,
    ) -> Result<
        (
            Option<lms_backup::storage::encryption::EncryptionConfig>,
            lms_backup::storage::encryption::DecryptionKeys,
        ),
        String,
    > {
        use lms_backup::storage::encryption::{DecryptionKeys, EncryptionConfig};
        let passphrase = self
            .age_passphrase_file
            .as_ref()
            .map(|p| secret_file("AGE_PASSPHRASE_FILE", p))
            .transpose()?;
        let identity_file = self
            .age_identity_file
            .as_ref()
            .map(|p| secret_file("AGE_IDENTITY_FILE", p))
            .transpose()?;
        let recipients: Vec<String> = self
            .age_recipients
            .iter()
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();
        let encryption = if recipients.is_empty() && passphrase.is_none() {
            None
        } else {
            Some(
                EncryptionConfig::new(&recipients, passphrase.clone())
                    .map_err(|e| e.to_string())?,
            )
        };
        let keys = DecryptionKeys {
            identity_file,
            passphrase,
        };
        keys.check().map_err(|e| e.to_string())?;
        Ok((encryption, keys))
    }

    /// The target, when `S3_BUCKET` is set; an error naming the variable
    /// when the settings contradict each other or a secret cannot be read.
    pub fn config(&self) -> Result<Option<lms_backup::storage::offsite::OffsiteConfig>, String> {
        use lms_backup::storage::offsite::{OffsiteConfig, S3Config, TargetConfig};
        let Some(bucket) = self.s3_bucket.clone().filter(|b| !b.trim().is_empty()) else {
            if self.s3_endpoint.is_some() {
                return Err("S3_ENDPOINT is set but S3_BUCKET is not: name the bucket off-site copies go to, or unset S3_ENDPOINT.".into());
            }
            return Ok(None);
        };
        let access_key_id = secret_from_env("AWS_ACCESS_KEY_ID")?;
        let secret_access_key = secret_from_env("AWS_SECRET_ACCESS_KEY")?;
        if access_key_id.is_some() != secret_access_key.is_some() {
            return Err("Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or their _FILE variants), or neither.".into());
        }
        Ok(Some(OffsiteConfig::new(TargetConfig::S3(S3Config {
            endpoint: self.s3_endpoint.clone().filter(|e| !e.trim().is_empty()),
            bucket,
            prefix: self.s3_prefix.trim_matches('/').to_owned(),
            region: self.s3_region.clone(),
            force_path_style: self.s3_force_path_style,
            access_key_id,
            secret_access_key,
        }))))
    }
}

/// A secret from `NAME`, or from the file `NAME_FILE` names (one of them,
/// not both); surrounding whitespace is dropped. Its value never appears in
/// an error.
pub fn secret_from_env(name: &str) -> Result<Option<lms_backup::storage::offsite::Secret>, String> {
    use lms_backup::storage::offsite::Secret;
    let direct = std::env::var(name).ok().filter(|v| !v.is_empty());
    let file = std::env::var(format!("{name}_FILE"))
        .ok()
        .filter(|v| !v.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(format!("{name} and {name}_FILE are both set: keep one.")),
        (Some(value), None) => Ok(Some(Secret::new(value.trim()))),
        (None, Some(path)) => secret_file(&format!("{name}_FILE"), Path::new(&path)).map(Some),
        (None, None) => Ok(None),
    }
}

/// A secret held in the file `path` (named by the variable `name`),
/// without surrounding whitespace; an error names the variable and the
/// file, never the content.
fn secret_file(name: &str, path: &Path) -> Result<lms_backup::storage::offsite::Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{name}: cannot read {}: {e}", path.display()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{name}: {} is empty.", path.display()));
    }
    Ok(lms_backup::storage::offsite::Secret::new(text))
}

impl BackupArgs {
    pub fn engine_config(&self) -> lms_backup::EngineConfig {
        let mut config = lms_backup::EngineConfig::new(&self.backup_dir);
        config.max_backup_size = self.max_backup_size;
        config.backup_compression = self.backup_compression;
        config.max_backups_to_keep = self.max_backups_to_keep;
        config.backup_rate_limit = self.backup_rate_limit;
        config.restore_keep_previous = self.restore_keep_previous;
        config.restore_role = self.restore_role.clone();
        config.restore_free_space_margin = self.restore_free_space_margin;
        config.upload_idle_timeout = std::time::Duration::from_secs(self.upload_idle_timeout);
        config.upload_timeout = std::time::Duration::from_secs(self.upload_timeout);
        config.max_concurrent_uploads = self.max_concurrent_uploads as usize;
        config.min_free_space = self.min_free_space;
        config.schedule_grace = std::time::Duration::from_secs(self.schedule_grace);
        config.drill_interval = (self.drill_interval_hours > 0)
            .then(|| std::time::Duration::from_secs(self.drill_interval_hours * 3600));
        config.prepared_copy_idle = std::time::Duration::from_secs(self.prepared_copy_idle_timeout);
        config.sign_out_everyone = Some(crate::sessions::sign_out_everyone);
        config
    }
}

/// Like [`parse_size`], and "0" is allowed.
pub fn parse_size_or_zero(text: &str) -> Result<u64, String> {
    if text.trim().trim_start_matches('0').is_empty() {
        return Ok(0);
    }
    parse_size(text)
}

/// "1073741824", "512MiB", "1G", "2 GB" (units are powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 1GiB or 500MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use KiB, MiB, GiB or TiB"
            ))
        }
    };
    number
        .checked_mul(1u64 << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a usable size"))
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
    /// Backups from the command line, for the day the web console is down
    /// (same engine, lock and checks as the console).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Backups that happen by themselves: a cron expression read in an IANA
    /// time zone. Every running server runs the schedules; each due time
    /// gives one backup however many servers run.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// API tokens for pipelines: `Authorization: Bearer <token>` on the
    /// REST routes their scopes open (backup:create, backup:read,
    /// status:read; restoring is never in scope).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it, once, alone on the last line.
    Create {
        /// Who uses it, such as "deploy" (letters, digits, '.', '_', '-').
        #[arg(long)]
        name: String,
        /// What it may do: backup:create, backup:read, status:read
        /// (comma-separated or repeated).
        #[arg(long, required = true, num_args = 1.., value_delimiter = ',')]
        scopes: Vec<String>,
        /// Days until it stops working; without it, it works until revoked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
    },
    /// Every token: scopes, who created it, expiry, last use; never secrets.
    List,
    /// Revoke the live token of this name; it stops working at once.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Every schedule: its timing, next run and last outcome.
    List,
    /// Add a schedule; prints its next five due times.
    Add(ScheduleAdd),
    /// Change a schedule (only what is given changes).
    Edit(ScheduleEdit),
    /// Turn a schedule off (a run waiting for the lock is skipped).
    Disable { name: String },
    /// Remove a schedule (its backups stay).
    Remove {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct ScheduleAdd {
    /// What to call it ("nightly"); its backups are by this name.
    #[arg(long)]
    pub name: String,
    /// Five cron fields (minute hour day-of-month month day-of-week), such
    /// as "30 2 * * *", or @hourly, @daily, @weekly, @monthly, @yearly.
    #[arg(long)]
    pub cron: String,
    /// The IANA time zone the expression is read in (Europe/Berlin);
    /// defaults to the server's.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Notes each backup gets; {schedule} and {due} are filled in.
    #[arg(long)]
    pub notes: Option<String>,
    /// How old the newest verified backup may get before health turns red,
    /// in minutes; defaults to twice the interval.
    #[arg(long)]
    pub rpo_minutes: Option<i64>,
    /// Add it turned off.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub keep: KeepArgs,
}

/// Which of a schedule's backups retention keeps: the last N, plus the
/// newest backup of each of the newest hours, days, ISO weeks, months and
/// years that have one, in the schedule's zone. Unset ones keep their
/// value (on add: the last 7, 14 daily, 8 weekly, 12 monthly).
#[derive(Debug, Args, Default)]
pub struct KeepArgs {
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
}

impl KeepArgs {
    /// `base` with the values given here.
    pub fn over(&self, base: lms_backup::retention::Policy) -> lms_backup::retention::Policy {
        lms_backup::retention::Policy {
            keep_last: self.keep_last.unwrap_or(base.keep_last),
            keep_hourly: self.keep_hourly.unwrap_or(base.keep_hourly),
            keep_daily: self.keep_daily.unwrap_or(base.keep_daily),
            keep_weekly: self.keep_weekly.unwrap_or(base.keep_weekly),
            keep_monthly: self.keep_monthly.unwrap_or(base.keep_monthly),
            keep_yearly: self.keep_yearly.unwrap_or(base.keep_yearly),
        }
    }

    /// Whether any value is given.
    pub fn any(&self) -> bool {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
        .iter()
        .any(Option::is_some)
    }
}

#[derive(Debug, Args)]
pub struct ScheduleEdit {
    /// The schedule to change.
    pub name: String,
    #[arg(long)]
    pub rename: Option<String>,
    #[arg(long)]
    pub cron: Option<String>,
    #[arg(long)]
    pub timezone: Option<String>,
    /// New notes template ("" removes it).
    #[arg(long)]
    pub notes: Option<String>,
    /// New recovery point objective in minutes (0: twice the interval).
    #[arg(long)]
    pub rpo_minutes: Option<i64>,
    /// Turn it on.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Turn it off.
    #[arg(long)]
    pub disable: bool,
    #[command(flatten)]
    pub keep: KeepArgs,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// List backups, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Make a verified backup now and wait for it.
    Create {
        #[arg(long)]
        notes: Option<String>,
    },
    /// Restore a backup (by id) over the LMS database and wait for it.
    Restore {
        id: i64,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Restore-test a backup (by id; the newest verified one by default)
    /// into a scratch database: compared with the backup, migrated and
    /// queried, then dropped. The live database is never touched.
    Drill { id: Option<i64> },
    /// Compare two backups table by table from their manifests alone (no
    /// restore): which tables were added, removed or changed between them,
    /// with their rows in each.
    Compare {
        /// A backup's id.
        a: i64,
        /// The other backup's id (either order: the older is shown first).
        b: i64,
        /// Print the comparison as JSON (as GET /api/admin/backup/compare).
        #[arg(long)]
        json: bool,
    },
    /// Preview changes: restore a backup into a prepared copy beside the
    /// live database (kept for review, replacing any earlier one) and print
    /// what a restore would bring back, lose and revert, table by table.
    Preview {
        /// The backup's id.
        id: i64,
        /// Print the comparison as JSON (as GET /api/admin/backup/preview).
        #[arg(long)]
        json: bool,
    },
    /// Bring back a deleted record, and everything that belongs to it, from
    /// a backup without restoring it: the backup is prepared beside the live
    /// database (unless it already is), the plan printed, then inserted in one
    /// transaction. Never updates or deletes a live row.
    Recover {
        /// The backup to recover from.
        #[arg(long)]
        backup: i64,
        /// The record's table: schema.table, or a table of public.
        #[arg(long)]
        table: String,
        /// The record's primary key: a value, or col=value,col=value for a
        /// composite key.
        #[arg(long)]
        key: String,
        /// Print the plan and stop; nothing changes.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Delete again the rows a record recovery inserted (the newest one
    /// unless told which); refused, naming the row, when one changed since.
    RecoverUndo {
        /// The recovery's job id.
        job: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Swap the database from before the last restore back in.
    Undo {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Delete the backups retention no longer keeps (each schedule's
    /// policy; MAX_BACKUPS_TO_KEEP for manual and uploaded ones; pinned
    /// backups always stay), printing the rule for each.
    Prune {
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Keep a backup whatever retention says, until it is unpinned.
    Pin {
        id: i64,
        /// Why it is kept ("before the term upgrade").
        #[arg(long)]
        reason: String,
    },
    /// Let retention decide on a pinned backup again.
    Unpin { id: i64 },
    /// Check the catalog against the backup directory: backups whose file
    /// is gone are marked missing, and missing ones whose file is back,
    /// intact (size and SHA-256 as catalogued), are completed again.
    /// Refused while the directory itself is unavailable.
    Recheck,
    /// List again the backups whose manifests are on the off-site target
    /// and not in the catalog: disaster recovery on a new host (each is
    /// then restored from its off-site copy).
    Import {
        /// From the off-site target (S3_BUCKET and the rest).
        #[arg(long)]
        from_offsite: bool,
    },
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

    /// Reverse proxies in front of the console, as comma-separated addresses
    /// or CIDR ranges (10.0.0.1,192.168.0.0/16). Only for requests from
    /// these is the client address taken from X-Forwarded-For (the
    /// right-most entry that is not itself one of them); empty: forwarding
    /// headers are ignored.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: TrustedProxies,

    /// Days audit log entries are kept (checked at start and hourly; the
    /// newest 100 entries are always kept).
    #[arg(long, env = "AUDIT_RETENTION_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_retention_days: u32,

    /// Most audit log entries kept; beyond it the oldest are deleted.
    #[arg(long, env = "AUDIT_MAX_ROWS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub audit_max_rows: u64,

    /// Requests each API token may make per minute (all at once, then
    /// evenly); past it the answer is 429 with Retry-After.
    #[arg(long, env = "API_TOKEN_RATE_LIMIT", default_value_t = NonZeroU32::new(60).expect("not zero"))]
    pub api_token_rate_limit: NonZeroU32,
}

impl ServeArgs {
    /// How much of the audit log is kept.
    pub fn audit_retention(&self) -> lms_backup::audit::Retention {
        lms_backup::audit::Retention {
            max_age_days: self.audit_retention_days,
            max_rows: self.audit_max_rows,
        }
    }
}

fn parse_trusted_proxies(text: &str) -> Result<TrustedProxies, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input (one
    /// line), never from the command line.
    Create(CreateUserArgs),
    /// Make an account an active administrator with a new password (read
    /// from standard input), creating it if there is none of that name: how
    /// to get back into the console after a restore brought back accounts
    /// without yours, or with yours demoted, deactivated or on an old
    /// password.
    GrantAdmin(GrantAdminArgs),
}

#[derive(Debug, Args)]
pub struct GrantAdminArgs {
    #[arg(long)]
    pub username: String,
    /// Read the new password from standard input. Required: passwords never
    /// go on the command line.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// For an account the command creates; defaults to <username>@localhost.
    #[arg(long)]
    pub email: Option<String>,
    /// For an account the command creates.
    #[arg(long, default_value = "")]
    pub full_name: String,
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
    fn the_digest_time_is_a_time_of_day_and_a_wrong_one_says_the_form() {
        assert_eq!(
            parse_time_of_day("18:30").unwrap(),
            chrono::NaiveTime::from_hms_opt(18, 30, 0).unwrap()
        );
        for wrong in ["7", "25:00", "7pm", ""] {
            let why = parse_time_of_day(wrong).unwrap_err();
            assert!(why.contains("HH:MM"), "{why}");
        }
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_are_parsed() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1 PB").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(parse_size_or_zero("0"), Ok(0));
        assert_eq!(parse_size_or_zero("512MiB"), Ok(512 << 20));
        assert!(parse_size_or_zero("lots").is_err());
    }

    #[test]
    fn help_names_every_variable() {
        let help = Cli::command().render_long_help().to_string();
        for var in [
            "DATABASE_URL",
            "CONTROL_DATABASE_URL",
            "POSTGRES_BIN_PATH",
            "BACKUP_DIR",
            "MAX_BACKUP_SIZE",
            "MAX_BACKUPS_TO_KEEP",
            "BACKUP_RATE_LIMIT",
            "RESTORE_KEEP_PREVIOUS",
            "RESTORE_ROLE",
            "RESTORE_FREE_SPACE_MARGIN",
            "UPLOAD_IDLE_TIMEOUT",
            "UPLOAD_TIMEOUT",
            "MAX_CONCURRENT_UPLOADS",
            "MIN_FREE_SPACE",
            "SCHEDULE_GRACE",
            "OPERATION_LEASE_TIMEOUT",
            "S3_BUCKET",
            "S3_ENDPOINT",
            "S3_PREFIX",
            "S3_REGION",
            "S3_FORCE_PATH_STYLE",
            "AWS_ACCESS_KEY_ID_FILE",
            "AWS_SECRET_ACCESS_KEY_FILE",
            "AGE_RECIPIENTS",
            "AGE_PASSPHRASE_FILE",
            "AGE_IDENTITY_FILE",
            "ENCRYPT_LOCAL",
            "PREPARED_COPY_IDLE_TIMEOUT",
            "BACKUP_COMPRESSION",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
        let mut serve = Cli::command();
        let serve = serve
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for var in [
            "LISTEN_ADDR",
            "SECURE_COOKIES",
            "TRUSTED_PROXIES",
            "AUDIT_RETENTION_DAYS",
            "AUDIT_MAX_ROWS",
        ] {
            assert!(serve.contains(var), "{var} missing from serve --help");
        }
    }
}
