//! The daily digest: one message a day, for channels that choose it, of
//! how backups went in the past 24 hours and how they stand now, so a
//! quiet day reads as "all well" rather than as silence. Recorded once a
//! UTC day (a key names the day), by whichever instance looks first after
//! the digest time (`NOTIFY_DIGEST_AT`).

use chrono::{DateTime, Duration, NaiveTime, Utc};
use lms_types::{BackupStatus, HealthState, NotifyEvent};

use super::{Notice, Severity};
use crate::engine::Engine;
use crate::health::age_words;
use crate::jobs::messages::human;
use crate::Result;

/// What the past 24 hours held.
#[derive(Debug, Default, sqlx::FromRow)]
struct Day {
    verified: i64,
    failed: i64,
    verified_bytes: i64,
    offsite_verified: i64,
    offsite_failed: i64,
    offsite_missing: i64,
    restores: i64,
    drills: i64,
    drills_failed: i64,
}

impl Engine {
    /// Records the digest of the day `now` falls in once `now` is past
    /// `at` (UTC); returns whether this call recorded it (not before the
    /// time, not twice a day, not when no channel wants it).
    pub async fn record_digest(&self, now: DateTime<Utc>, at: NaiveTime) -> Result<bool> {
        if now.time() < at {
            return Ok(false);
        }
        let key = format!("digest:{}", now.format("%Y-%m-%d"));
        let notice = self.digest(now).await?;
        let mut conn = self.dbs().control.acquire().await?;
        let recorded = super::record(&mut conn, NotifyEvent::DailyDigest, &notice, Some(&key))
            .await?
            .is_some();
        if recorded {
            tracing::info!(key, "recorded the daily digest");
            self.wake_notifier();
        }
        Ok(recorded)
    }

    /// The digest's words at `now`.
    async fn digest(&self, now: DateTime<Utc>) -> Result<Notice> {
        let since = now - Duration::hours(24);
        let control = &self.dbs().control;
        let day: Day = sqlx::query_as(
            "SELECT
                 (SELECT count(*) FROM backup_history
                   WHERE created_at >= $1 AND status = $2) AS verified,
                 (SELECT count(*) FROM jobs
                   WHERE created_at >= $1 AND kind IN ('backup', 'upload')
                     AND status IN ('failed', 'interrupted')) AS failed,
                 (SELECT coalesce(sum(size_bytes), 0)::bigint FROM backup_history
                   WHERE created_at >= $1 AND status = $2) AS verified_bytes,
                 (SELECT count(*) FROM backup_history
                   WHERE offsite_verified_at >= $1 AND offsite_state = 'verified')
                   AS offsite_verified,
                 (SELECT count(*) FROM backup_history
                   WHERE status = $2 AND offsite_state = 'failed') AS offsite_failed,
                 (SELECT count(*) FROM backup_history
                   WHERE status = $2 AND offsite_state = 'missing') AS offsite_missing,
                 (SELECT count(*) FROM jobs
                   WHERE created_at >= $1 AND kind IN ('restore', 'undo')) AS restores,
                 (SELECT count(*) FROM restore_drills WHERE finished_at >= $1) AS drills,
                 (SELECT count(*) FROM restore_drills
                   WHERE finished_at >= $1 AND NOT succeeded) AS drills_failed",
        )
        .bind(since)
        .bind(BackupStatus::Completed)
        .fetch_one(control)
        .await?;
        let health = self.backup_health(now).await?;
        let newest: Option<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT filename, created_at FROM backup_history WHERE status = $1
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(BackupStatus::Completed)
        .fetch_optional(control)
        .await?;
        let drill = self.newest_drill().await?;

        let mut lines = vec![format!(
            "In the past 24 hours: {} verified backup{} ({}), {} failed.",
            day.verified,
            plural(day.verified),
            human(day.verified_bytes.max(0) as u64),
            day.failed
        )];
        lines.push(match &newest {
            Some((name, at)) => format!(
                "Newest verified backup: {name}, {} old.",
                age_words((now - *at).num_seconds())
            ),
            None => "There is no verified backup.".into(),
        });
        if let Some(target) = self.offsite() {
            lines.push(format!(
                "Off-site ({}): {} cop{} verified today; {} failing, {} missing.",
                target.description(),
                day.offsite_verified,
                if day.offsite_verified == 1 {
                    "y"
                } else {
                    "ies"
                },
                day.offsite_failed,
                day.offsite_missing
            ));
        }
        lines.push(match &drill {
            Some(d) if d.succeeded => format!(
                "Newest restore drill: {} on {}, restored and checked in {:.1} s.",
                d.backup_name,
                d.finished_at.format("%Y-%m-%d %H:%M UTC"),
                d.duration_ms as f64 / 1000.0
            ),
            Some(d) => format!(
                "Newest restore drill: {} on {}, FAILED.",
                d.backup_name,
                d.finished_at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => "No restore drill has run yet.".into(),
        });
        if day.drills > 0 {
            lines.push(format!(
                "Drills today: {}, {} failed.",
                day.drills, day.drills_failed
            ));
        }
        if day.restores > 0 {
            lines.push(format!(
                "Restores or undos started today: {}.",
                day.restores
            ));
        }
        lines.push(format!("Health: {}", health.reason));

        let (title, severity, todo) = match health.state {
            HealthState::Green if day.failed == 0 && day.drills_failed == 0 => (
                "Daily backup digest: all well",
                Severity::Info,
                "Nothing needs doing.".to_owned(),
            ),
            HealthState::Green => (
                "Daily backup digest: failures today",
                Severity::Warning,
                "Open the console's activity log to see why today's failures happened; the \
                 newest backups are within their objectives."
                    .to_owned(),
            ),
            HealthState::Amber => (
                "Daily backup digest: attention needed",
                Severity::Warning,
                format!("Open the console: {}", health.reason),
            ),
            HealthState::Red => (
                "Daily backup digest: backups at risk",
                Severity::Critical,
                format!("Open the console now: {}", health.reason),
            ),
        };
        Ok(Notice {
            title: title.into(),
            severity,
            happened: lines.join("\n"),
            since: Some(since),
            done: "This is the daily summary; each failure was also told as it happened to the \
                   channels that want it."
                .into(),
            todo,
            backup: None,
            job: None,
        })
    }
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
