//! Telling people: e-mail over SMTP and signed webhooks, at least once.
//!
//! An event ([`Notice`] of a [`NotifyEvent`] kind) is written to an outbox
//! table in the same transaction as the outcome it reports (a job's end, an
//! off-site copy's failure), with one delivery row per channel that wants
//! that kind. Any instance's deliverer ([`spawn_notifier`]) claims due
//! deliveries for a while (two instances never send one at once), sends
//! them, and retries failures with backoff; the event id travels in the
//! payload and a header, so a receiver drops the rare second copy an
//! instance killed between sending and recording leaves behind. A channel
//! that keeps failing shows on the card; it never blocks or fails a backup.
//!
//! The deliverer also watches ([`watch`]): an RPO breached (the dead-man's
//! switch: nothing happened) and a stuck operation lock are recorded once
//! per situation, however many instances see it; and once a day it records
//! the daily digest ([`digest`]) for the channels that choose it.
//!
//! - [`channels`]: the channels (console-made, and the ones the environment
//!   configures), their settings and state.
//! - `deliver`: claiming, sending, retrying.
//! - `send`: the webhook bodies and signature, and the e-mail.

pub mod channels;
mod deliver;
mod digest;
pub(crate) mod outcomes;
mod send;
mod watch;

use std::time::Duration;

use chrono::{DateTime, Utc};
use lms_types::{NotifyEvent, WebhookFormat};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

pub use channels::{Channel, ChannelSettings};
pub use deliver::{spawn_notifier, DeliveryReport};
pub use send::{sign, Answer, SIGNATURE_HEADER};

use crate::storage::offsite::Secret;
use crate::Result;

/// Channels and delivery settings from the environment.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// `SMTP_URL`, `NOTIFY_EMAIL_FROM`, `NOTIFY_EMAIL_TO`.
    pub email: Option<EmailSettings>,
    /// `NOTIFY_WEBHOOK_URL`, `NOTIFY_WEBHOOK_SECRET`, `NOTIFY_WEBHOOK_FORMAT`.
    pub webhook: Option<WebhookSettings>,
    /// Where messages link to (`PUBLIC_URL`, the console's address as
    /// administrators reach it).
    pub console_url: Option<String>,
    /// The wait before a failed delivery is tried again, doubled at each
    /// failure up to an hour.
    pub retry_after: Duration,
    /// A delivery still failing this long after its event is given up on.
    pub give_up_after: Duration,
    /// How often the deliverer looks for due deliveries when nobody wakes it.
    pub poll_every: Duration,
    /// How often it checks for a breached RPO or a stuck lock.
    pub watch_every: Duration,
    /// When (UTC) the daily digest is recorded, for channels that want it.
    pub digest_at: chrono::NaiveTime,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            email: None,
            webhook: None,
            console_url: None,
            retry_after: Duration::from_secs(30),
            give_up_after: Duration::from_secs(3 * 24 * 60 * 60),
            poll_every: Duration::from_secs(5),
            watch_every: Duration::from_secs(60),
            digest_at: chrono::NaiveTime::from_hms_opt(7, 0, 0).expect("a time of day"),
        }
    }
}

/// An e-mail channel's server and addresses.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// `smtp://user:pass@host:port` (STARTTLS) or `smtps://…` (TLS).
    pub smtp_url: Secret,
    pub from: String,
    pub to: Vec<String>,
}

/// A webhook channel's receiver.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The URL may hold a token (Slack's do): a secret.
    pub url: Secret,
    /// Signs the body (`X-LMS-Signature`) when set.
    pub secret: Option<Secret>,
    pub format: WebhookFormat,
}

/// What a message says, in the words every channel renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// One line: "Backup failed".
    pub title: String,
    /// `critical`, `warning` or `info`.
    pub severity: Severity,
    /// What happened, in sentences.
    pub happened: String,
    /// Since when the situation holds (when the failed job started, the
    /// newest verified backup, when the lock was taken).
    pub since: Option<DateTime<Utc>>,
    /// What the product already did about it.
    pub done: String,
    /// What the administrator should do.
    pub todo: String,
    /// The backup concerned, by file name.
    pub backup: Option<String>,
    /// The job concerned.
    pub job: Option<Uuid>,
}

/// How urgent a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Records `notice` as an event of `kind` in the caller's transaction, with
/// a delivery for each enabled channel that wants it. Nothing is recorded
/// when no channel wants it (returns `None`). With a `dedupe_key`, an event
/// already recorded under it is not recorded again (returns `None`).
pub async fn record(
    conn: &mut PgConnection,
    kind: NotifyEvent,
    notice: &Notice,
    dedupe_key: Option<&str>,
) -> Result<Option<Uuid>> {
    let wanted: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notification_channels WHERE enabled AND $1 = ANY (events))",
    )
    .bind(kind)
    .fetch_one(&mut *conn)
    .await?;
    if !wanted {
        return Ok(None);
    }
    let id = Uuid::new_v4();
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO notification_events (id, kind, dedupe_key, payload)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING id",
    )
    .bind(id)
    .bind(kind)
    .bind(dedupe_key)
    .bind(sqlx::types::Json(notice))
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_none() {
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO notification_deliveries (event_id, channel_id)
         SELECT $1, id FROM notification_channels WHERE enabled AND $2 = ANY (events)",
    )
    .bind(id)
    .bind(kind)
    .execute(&mut *conn)
    .await?;
    Ok(Some(id))
}

/// A duration in words: "3 h 12 min", "2 days 4 h".
pub(crate) fn span(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, h) => format!("{h} h {mins} min"),
        (1, h) => format!("1 day {h} h"),
        (d, h) => format!("{d} days {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(chrono::Duration::seconds(59)), "0 min");
        assert_eq!(span(chrono::Duration::minutes(192)), "3 h 12 min");
        assert_eq!(span(chrono::Duration::hours(28)), "1 day 4 h");
        assert_eq!(span(chrono::Duration::hours(52)), "2 days 4 h");
    }
}
