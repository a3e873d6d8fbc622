//! Notification channels: made in the console (their secrets write-only,
//! kept in the control database) or configured by environment (shown
//! locked; each instance holds their secrets, the database only their
//! name, what they show and which events they want).

use chrono::{DateTime, Utc};
use lms_types::{ChannelKind, NotifyEvent, WebhookFormat};
use serde::{Deserialize, Serialize};

use super::{EmailSettings, WebhookSettings};
use crate::engine::Engine;
use crate::storage::offsite::Secret;
use crate::{Error, Result};

/// The name of the e-mail channel the environment configures.
pub const ENV_EMAIL: &str = "e-mail (environment)";
/// The name of the webhook channel the environment configures.
pub const ENV_WEBHOOK: &str = "webhook (environment)";

/// A channel as the console shows it: never its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub format: WebhookFormat,
    /// Where it goes, without secrets: recipients and server, or the
    /// webhook's scheme and host.
    pub shown_target: String,
    pub email_from: Option<String>,
    pub email_to: Vec<String>,
    pub events: Vec<NotifyEvent>,
    /// Configured by environment: not editable in the console.
    pub from_env: bool,
    pub enabled: bool,
    /// A webhook signing secret is set.
    pub signed: bool,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Failing since (the first of the failures in a row).
    pub failing_since: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub last_error: Option<String>,
    /// Deliveries waiting (to be sent or tried again).
    pub waiting: i64,
}

/// What the console sends to make or change a channel. A secret left out
/// of a change keeps the one stored.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    pub name: String,
    pub kind: ChannelKind,
    pub format: WebhookFormat,
    pub webhook_url: Option<Secret>,
    pub webhook_secret: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub email_from: Option<String>,
    pub email_to: Vec<String>,
    pub events: Vec<NotifyEvent>,
    pub enabled: bool,
}

/// Where a channel's deliveries go, secrets included.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    Email(EmailSettings),
    Webhook(WebhookSettings),
}

const CHANNEL_COLUMNS: &str = "c.id, c.name, c.kind, c.format, c.shown_target, c.email_from,
    coalesce(c.email_to, '{}') AS email_to, c.events, c.from_env, c.enabled,
    (c.webhook_secret IS NOT NULL) AS signed, c.last_delivered_at, c.failing_since,
    c.consecutive_failures, c.last_error,
    (SELECT count(*) FROM notification_deliveries d
      WHERE d.channel_id = c.id AND d.delivered_at IS NULL AND d.abandoned_at IS NULL) AS waiting";

#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: i64,
    name: String,
    kind: ChannelKind,
    format: WebhookFormat,
    shown_target: String,
    email_from: Option<String>,
    email_to: Vec<String>,
    events: Vec<String>,
    from_env: bool,
    enabled: bool,
    signed: bool,
    last_delivered_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    consecutive_failures: i32,
    last_error: Option<String>,
    waiting: i64,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Self {
        Channel {
            id: r.id,
            name: r.name,
            kind: r.kind,
            format: r.format,
            shown_target: r.shown_target,
            email_from: r.email_from,
            email_to: r.email_to,
            // Unknown spellings (from a newer version) are left out.
            events: r.events.iter().filter_map(|e| e.parse().ok()).collect(),
            from_env: r.from_env,
            enabled: r.enabled,
            signed: r.signed,
            last_delivered_at: r.last_delivered_at,
            failing_since: r.failing_since,
            consecutive_failures: r.consecutive_failures,
            last_error: r.last_error,
            waiting: r.waiting,
        }
    }
}

/// A webhook URL as it may be shown: scheme, host and port.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path().len() > 1 || u.query().is_some() {
                "/…"
            } else {
                ""
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "(an address that is not a URL)".into(),
    }
}

/// An SMTP URL as it may be shown: the server, without credentials.
pub fn shown_smtp(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(an address that is not a URL)".into(),
    }
}

fn shown_email(email: &EmailSettings) -> String {
    format!(
        "{} via {}",
        email.to.join(", "),
        shown_smtp(email.smtp_url.expose())
    )
}

/// Checks a webhook URL: http or https with a host. The error never holds
/// the URL (it may hold a token).
pub fn check_webhook_url(url: &str) -> std::result::Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(_) => {
            Err("The webhook URL must start with https:// (or http://) and name a host.".into())
        }
        Err(e) => Err(format!("The webhook URL is not a URL ({e}).")),
    }
}

/// Checks an SMTP URL: `smtp://[user:pass@]host[:port]` or `smtps://…`.
/// The error never holds the URL (it holds a password).
pub fn check_smtp_url(url: &str) -> std::result::Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some() => Ok(()),
        Ok(_) => Err(
            "The SMTP URL must be smtp://user:password@host:port (STARTTLS) or smtps://… (TLS)."
                .into(),
        ),
        Err(e) => Err(format!("The SMTP URL is not a URL ({e}).")),
    }
}

/// Checks an e-mail address.
pub fn check_address(address: &str) -> std::result::Result<(), String> {
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|_| format!("\"{address}\" is not an e-mail address."))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

impl ChannelSettings {
    /// Checks the settings of a channel made or changed in the console;
    /// `stored` says which secrets it already has.
    fn check(&self, stored: Option<&StoredSecrets>) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(invalid("A channel needs a name of 1 to 64 characters."));
        }
        if name == ENV_EMAIL || name == ENV_WEBHOOK {
            return Err(invalid(format!(
                "\"{name}\" is the name of the channel the environment configures; choose another."
            )));
        }
        if let Some(e) = self.events.iter().find(|e| **e == NotifyEvent::Test) {
            return Err(invalid(format!(
                "{} is not an event a channel chooses.",
                e.words()
            )));
        }
        match self.kind {
            ChannelKind::Webhook => {
                match (&self.webhook_url, stored.is_some_and(|s| s.webhook_url)) {
                    (Some(url), _) => check_webhook_url(url.expose()).map_err(invalid)?,
                    (None, true) => {}
                    (None, false) => return Err(invalid("A webhook channel needs its URL.")),
                }
            }
            ChannelKind::Email => {
                match (&self.smtp_url, stored.is_some_and(|s| s.smtp_url)) {
                    (Some(url), _) => check_smtp_url(url.expose()).map_err(invalid)?,
                    (None, true) => {}
                    (None, false) => {
                        return Err(invalid("An e-mail channel needs its SMTP server's URL."))
                    }
                }
                let from = self.email_from.as_deref().unwrap_or("").trim();
                if from.is_empty() {
                    return Err(invalid("An e-mail channel needs a sender (From) address."));
                }
                check_address(from).map_err(invalid)?;
                if self.email_to.is_empty() {
                    return Err(invalid("An e-mail channel needs at least one recipient."));
                }
                for to in &self.email_to {
                    check_address(to).map_err(invalid)?;
                }
            }
        }
        Ok(())
    }
}

/// Which secrets a stored channel has.
struct StoredSecrets {
    webhook_url: bool,
    smtp_url: bool,
}

impl Engine {
    /// Every channel, environment ones first.
    pub async fn notification_channels(&self) -> Result<Vec<Channel>> {
        let rows: Vec<ChannelRow> = sqlx::query_as(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM notification_channels c ORDER BY c.from_env DESC, c.name"
        ))
        .fetch_all(&self.dbs().control)
        .await?;
        Ok(rows.into_iter().map(Channel::from).collect())
    }

    /// One channel by name.
    pub async fn notification_channel(&self, name: &str) -> Result<Channel> {
        let row: Option<ChannelRow> = sqlx::query_as(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM notification_channels c WHERE c.name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.dbs().control)
        .await?;
        row.map(Channel::from)
            .ok_or_else(|| Error::NotFound(format!("Channel \"{name}\"")))
    }

    /// Makes a channel from the console.
    pub async fn create_channel(&self, settings: &ChannelSettings) -> Result<Channel> {
        settings.check(None)?;
        let shown = match settings.kind {
            ChannelKind::Webhook => {
                shown_url(settings.webhook_url.as_ref().map_or("", |s| s.expose()))
            }
            ChannelKind::Email => format!(
                "{} via {}",
                settings.email_to.join(", "),
                shown_smtp(settings.smtp_url.as_ref().map_or("", |s| s.expose()))
            ),
        };
        let events: Vec<&str> = settings.events.iter().map(|e| e.as_str()).collect();
        let created = sqlx::query(
            "INSERT INTO notification_channels
                (name, kind, format, shown_target, email_to, email_from, webhook_url,
                 webhook_secret, smtp_url, events, enabled)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(settings.name.trim())
        .bind(settings.kind)
        .bind(settings.format)
        .bind(&shown)
        .bind(&settings.email_to)
        .bind(settings.email_from.as_deref().map(str::trim))
        .bind(settings.webhook_url.as_ref().map(Secret::expose))
        .bind(settings.webhook_secret.as_ref().map(Secret::expose))
        .bind(settings.smtp_url.as_ref().map(Secret::expose))
        .bind(&events)
        .bind(settings.enabled)
        .execute(&self.dbs().control)
        .await?;
        if created.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "A channel named \"{}\" exists already.",
                settings.name.trim()
            )));
        }
        self.notification_channel(settings.name.trim()).await
    }

    /// Changes a console-made channel (`name` is its current name). Secrets
    /// left out are kept.
    pub async fn update_channel(&self, name: &str, settings: &ChannelSettings) -> Result<Channel> {
        let stored: Option<(bool, bool, bool, ChannelKind)> = sqlx::query_as(
            "SELECT from_env, webhook_url IS NOT NULL, smtp_url IS NOT NULL, kind
             FROM notification_channels WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.dbs().control)
        .await?;
        let Some((from_env, webhook_url, smtp_url, kind)) = stored else {
            return Err(Error::NotFound(format!("Channel \"{name}\"")));
        };
        if from_env {
            return Err(Error::Conflict(format!(
                "\"{name}\" is configured by environment; change its variables and restart."
            )));
        }
        let same_kind = kind == settings.kind;
        settings.check(Some(&StoredSecrets {
            webhook_url: webhook_url && same_kind,
            smtp_url: smtp_url && same_kind,
        }))?;
        let mut tx = self.dbs().control.begin().await?;
        let events: Vec<&str> = settings.events.iter().map(|e| e.as_str()).collect();
        sqlx::query(
            "UPDATE notification_channels SET
                name = $2, kind = $3, format = $4, email_to = $5, email_from = $6,
                webhook_url = coalesce($7, CASE WHEN kind = $3 THEN webhook_url END),
                webhook_secret = CASE WHEN $8::text IS NOT NULL THEN $8
                                      WHEN kind = $3 THEN webhook_secret END,
                smtp_url = coalesce($9, CASE WHEN kind = $3 THEN smtp_url END),
                events = $10, enabled = $11
             WHERE name = $1",
        )
        .bind(name)
        .bind(settings.name.trim())
        .bind(settings.kind)
        .bind(settings.format)
        .bind(&settings.email_to)
        .bind(settings.email_from.as_deref().map(str::trim))
        .bind(settings.webhook_url.as_ref().map(Secret::expose))
        .bind(settings.webhook_secret.as_ref().map(Secret::expose))
        .bind(settings.smtp_url.as_ref().map(Secret::expose))
        .bind(&events)
        .bind(settings.enabled)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(format!(
                "A channel named \"{}\" exists already.",
                settings.name.trim()
            )),
            _ => e.into(),
        })?;
        // What it shows follows what it now points at.
        let (webhook, smtp, to): (Option<String>, Option<String>, Option<Vec<String>>) =
            sqlx::query_as(
                "SELECT webhook_url, smtp_url, email_to FROM notification_channels WHERE name = $1",
            )
            .bind(settings.name.trim())
            .fetch_one(&mut *tx)
            .await?;
        let shown = match settings.kind {
            ChannelKind::Webhook => shown_url(webhook.as_deref().unwrap_or("")),
            ChannelKind::Email => format!(
                "{} via {}",
                to.unwrap_or_default().join(", "),
                shown_smtp(smtp.as_deref().unwrap_or(""))
            ),
        };
        sqlx::query("UPDATE notification_channels SET shown_target = $2 WHERE name = $1")
            .bind(settings.name.trim())
            .bind(shown)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.notification_channel(settings.name.trim()).await
    }

    /// Removes a console-made channel and whatever it had still to send.
    pub async fn delete_channel(&self, name: &str) -> Result<()> {
        let deleted: Option<bool> = sqlx::query_scalar(
            "DELETE FROM notification_channels WHERE name = $1 AND NOT from_env RETURNING true",
        )
        .bind(name)
        .fetch_optional(&self.dbs().control)
        .await?;
        if deleted.is_some() {
            return Ok(());
        }
        match self.notification_channel(name).await {
            Ok(_) => Err(Error::Conflict(format!(
                "\"{name}\" is configured by environment; unset its variables and restart."
            ))),
            Err(e) => Err(e),
        }
    }

    /// Writes the channels the environment configures into the control
    /// database (so events can be addressed to them) and removes the ones
    /// it no longer does. Run by serving instances at start-up.
    pub async fn sync_env_channels(&self) -> Result<()> {
        let notify = &self.config().notify;
        let control = &self.dbs().control;
        let defaults: Vec<&str> = NotifyEvent::DEFAULTS.iter().map(|e| e.as_str()).collect();
        let mut keep = Vec::new();
        if let Some(email) = &notify.email {
            sqlx::query(
                "INSERT INTO notification_channels
                    (name, kind, shown_target, email_to, email_from, events, from_env)
                 VALUES ($1, 'email', $2, $3, $4, $5, true)
                 ON CONFLICT (name) DO UPDATE SET
                    shown_target = $2, email_to = $3, email_from = $4, enabled = true",
            )
            .bind(ENV_EMAIL)
            .bind(shown_email(email))
            .bind(&email.to)
            .bind(&email.from)
            .bind(&defaults)
            .execute(control)
            .await?;
            keep.push(ENV_EMAIL);
        }
        if let Some(webhook) = &notify.webhook {
            sqlx::query(
                "INSERT INTO notification_channels
                    (name, kind, format, shown_target, events, from_env)
                 VALUES ($1, 'webhook', $2, $3, $4, true)
                 ON CONFLICT (name) DO UPDATE SET format = $2, shown_target = $3, enabled = true",
            )
            .bind(ENV_WEBHOOK)
            .bind(webhook.format)
            .bind(shown_url(webhook.url.expose()))
            .bind(&defaults)
            .execute(control)
            .await?;
            keep.push(ENV_WEBHOOK);
        }
        sqlx::query("DELETE FROM notification_channels WHERE from_env AND NOT (name = ANY ($1))")
            .bind(&keep)
            .execute(control)
            .await?;
        Ok(())
    }

    /// Where channel `id` delivers, if this instance can deliver it (an
    /// environment channel needs this instance's environment).
    pub(crate) async fn destination(&self, id: i64) -> Result<Option<Destination>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            name: String,
            kind: ChannelKind,
            format: WebhookFormat,
            from_env: bool,
            email_to: Option<Vec<String>>,
            email_from: Option<String>,
            webhook_url: Option<String>,
            webhook_secret: Option<String>,
            smtp_url: Option<String>,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT name, kind, format, from_env, email_to, email_from, webhook_url,
                    webhook_secret, smtp_url
             FROM notification_channels WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.dbs().control)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let notify = &self.config().notify;
        Ok(match (row.from_env, row.kind) {
            (true, ChannelKind::Email) if row.name == ENV_EMAIL => {
                notify.email.clone().map(Destination::Email)
            }
            (true, ChannelKind::Webhook) if row.name == ENV_WEBHOOK => {
                notify.webhook.clone().map(Destination::Webhook)
            }
            (true, _) => None,
            (false, ChannelKind::Email) => match (row.smtp_url, row.email_from) {
                (Some(url), Some(from)) => Some(Destination::Email(EmailSettings {
                    smtp_url: Secret::new(url),
                    from,
                    to: row.email_to.unwrap_or_default(),
                })),
                _ => None,
            },
            (false, ChannelKind::Webhook) => row.webhook_url.map(|url| {
                Destination::Webhook(WebhookSettings {
                    url: Secret::new(url),
                    secret: row.webhook_secret.map(Secret::new),
                    format: row.format,
                })
            }),
        })
    }

    /// The names of the environment channels this instance can deliver.
    pub(crate) fn env_channels(&self) -> Vec<&'static str> {
        let notify = &self.config().notify;
        let mut names = Vec::new();
        if notify.email.is_some() {
            names.push(ENV_EMAIL);
        }
        if notify.webhook.is_some() {
            names.push(ENV_WEBHOOK);
        }
        names
    }
}
