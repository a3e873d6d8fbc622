//! The deliverer: claims due deliveries (for a while, so no other instance
//! sends them meanwhile), sends them, records the answer, and retries
//! failures with backoff. Every serving instance runs one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lms_types::NotifyEvent;
use uuid::Uuid;

use super::send::{self, Outgoing};
use super::Notice;
use crate::engine::Engine;
use crate::Result;

/// A claim lasts this long: longer than a send may take.
const CLAIM: Duration = Duration::from_secs(120);
/// The longest wait between two tries of a failing delivery.
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// Deliveries claimed at once.
const BATCH: i64 = 16;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub failed: usize,
    pub abandoned: usize,
}

#[derive(sqlx::FromRow)]
struct Claimed {
    event_id: Uuid,
    channel_id: i64,
    attempts: i32,
    kind: NotifyEvent,
    payload: sqlx::types::Json<Notice>,
    created_at: DateTime<Utc>,
}

/// Runs this instance's deliverer until the process ends: delivers what
/// is due, and watches for a breached RPO or a stuck lock.
pub fn spawn_notifier(engine: Engine) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = engine.sync_env_channels().await {
            tracing::error!(error = %e, "could not record the notification channels the environment configures");
        }
        let notify = engine.config().notify.clone();
        let mut last_watch: Option<std::time::Instant> = None;
        loop {
            if last_watch.is_none_or(|t| t.elapsed() >= notify.watch_every) {
                last_watch = Some(std::time::Instant::now());
                if let Err(e) = engine.watch_for_trouble(Utc::now()).await {
                    tracing::warn!(error = %e, "could not check backups' health for notifications");
                }
                if let Err(e) = engine.record_digest(Utc::now(), notify.digest_at).await {
                    tracing::warn!(error = %e, "could not record the daily digest");
                }
            }
            let report = match engine.deliver_due().await {
                Ok(report) => report,
                Err(e) => {
                    tracing::warn!(error = %e, "could not deliver notifications; trying again");
                    DeliveryReport::default()
                }
            };
            if report.delivered + report.failed + report.abandoned > 0 {
                // More may be waiting behind a full batch.
                continue;
            }
            let wait = notify.poll_every.min(notify.watch_every);
            tokio::select! {
                () = engine.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    })
}

impl Engine {
    /// Sends every delivery that is due and not claimed by another
    /// instance, one batch at a time.
    pub async fn deliver_due(&self) -> Result<DeliveryReport> {
        let control = &self.dbs().control;
        let config = &self.config().notify;
        let mut report = DeliveryReport::default();
        // Given up: failing since longer than allowed.
        let abandoned = sqlx::query(
            "UPDATE notification_deliveries d SET abandoned_at = now()
             FROM notification_events e
             WHERE e.id = d.event_id AND d.delivered_at IS NULL AND d.abandoned_at IS NULL
               AND d.attempts > 0 AND e.created_at < now() - $1 * interval '1 millisecond'",
        )
        .bind(config.give_up_after.as_millis() as f64)
        .execute(control)
        .await?;
        report.abandoned = abandoned.rows_affected() as usize;
        let claimed: Vec<Claimed> = sqlx::query_as(
            "WITH due AS (
                SELECT d.event_id, d.channel_id
                FROM notification_deliveries d
                JOIN notification_channels c ON c.id = d.channel_id
                WHERE d.delivered_at IS NULL AND d.abandoned_at IS NULL
                  AND d.next_attempt_at <= now()
                  AND (d.claimed_until IS NULL OR d.claimed_until < now())
                  AND c.enabled AND (NOT c.from_env OR c.name = ANY ($2))
                ORDER BY d.next_attempt_at
                LIMIT $4
                FOR UPDATE OF d SKIP LOCKED
             )
             UPDATE notification_deliveries d
             SET claimed_by = $1, claimed_until = now() + $3 * interval '1 millisecond',
                 attempts = d.attempts + 1
             FROM due, notification_events e
             WHERE d.event_id = due.event_id AND d.channel_id = due.channel_id
               AND e.id = d.event_id
             RETURNING d.event_id, d.channel_id, d.attempts, e.kind, e.payload, e.created_at",
        )
        .bind(self.instance_id())
        .bind(self.env_channels())
        .bind(CLAIM.as_millis() as f64)
        .bind(BATCH)
        .fetch_all(control)
        .await?;
        for delivery in claimed {
            let outcome = match self.destination(delivery.channel_id).await? {
                Some(destination) => {
                    let message = Outgoing {
                        id: delivery.event_id,
                        kind: delivery.kind,
                        at: delivery.created_at,
                        notice: &delivery.payload,
                        console_url: config.console_url.as_deref(),
                    };
                    send::send(&destination, &message).await
                }
                None => Err("this instance does not hold the channel's settings".into()),
            };
            match outcome {
                Ok(answer) => {
                    report.delivered += 1;
                    self.record_delivered(&delivery, &answer).await?;
                }
                Err(why) => {
                    report.failed += 1;
                    tracing::warn!(event = %delivery.event_id, channel = delivery.channel_id, attempts = delivery.attempts, reason = %why, "notification not delivered; will try again");
                    self.record_failed(&delivery, &why).await?;
                }
            }
        }
        Ok(report)
    }

    async fn record_delivered(&self, delivery: &Claimed, answer: &str) -> Result<()> {
        let mut tx = self.dbs().control.begin().await?;
        sqlx::query(
            "UPDATE notification_deliveries
             SET delivered_at = now(), answer = $3, claimed_by = NULL, claimed_until = NULL
             WHERE event_id = $1 AND channel_id = $2",
        )
        .bind(delivery.event_id)
        .bind(delivery.channel_id)
        .bind(answer)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE notification_channels
             SET last_delivered_at = now(), failing_since = NULL, consecutive_failures = 0,
                 last_error = NULL
             WHERE id = $1",
        )
        .bind(delivery.channel_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_failed(&self, delivery: &Claimed, why: &str) -> Result<()> {
        let base = self.config().notify.retry_after;
        let mut tx = self.dbs().control.begin().await?;
        sqlx::query(
            "UPDATE notification_deliveries
             SET answer = $3, claimed_by = NULL, claimed_until = NULL,
                 next_attempt_at = now() + least($4 * power(2, greatest(attempts - 1, 0)), $5)
                                         * interval '1 millisecond'
             WHERE event_id = $1 AND channel_id = $2",
        )
        .bind(delivery.event_id)
        .bind(delivery.channel_id)
        .bind(why)
        .bind(base.as_millis() as f64)
        .bind(MAX_BACKOFF.as_millis() as f64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE notification_channels
             SET failing_since = coalesce(failing_since, now()),
                 consecutive_failures = consecutive_failures + 1, last_error = $2
             WHERE id = $1",
        )
        .bind(delivery.channel_id)
        .bind(why)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sends a test message to channel `name` now (not through the outbox:
    /// the administrator waits for the answer), and returns the receiver's
    /// answer or why it failed, in words.
    pub async fn send_test(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<std::result::Result<String, String>> {
        let channel = self.notification_channel(name).await?;
        let Some(destination) = self.destination(channel.id).await? else {
            return Ok(Err(
                "This instance does not hold the channel's settings (it is configured by another \
                 instance's environment)."
                    .into(),
            ));
        };
        let notice = Notice {
            title: "Test message".into(),
            severity: super::Severity::Info,
            happened: format!(
                "{actor} sent this test from the backup console to check that messages to the \
                 channel \"{}\" arrive.",
                channel.name
            ),
            since: None,
            done: String::new(),
            todo: "Nothing: this is only a test.".into(),
            backup: None,
            job: None,
        };
        let message = Outgoing {
            id: Uuid::new_v4(),
            kind: NotifyEvent::Test,
            at: Utc::now(),
            notice: &notice,
            console_url: self.config().notify.console_url.as_deref(),
        };
        Ok(send::send(&destination, &message).await)
    }

    /// Wakes this instance's deliverer (an event was just recorded).
    pub(crate) fn wake_notifier(&self) {
        self.notifier().notify_one();
    }

    async fn notified(&self) {
        self.notifier().notified().await
    }
}
