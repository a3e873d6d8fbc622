//! The dead-man's switch: what is wrong because nothing happened. A
//! schedule whose newest verified backup is older than its RPO, and an
//! operation lock that is stuck, are each recorded once per situation (a
//! key names it), however many instances look and however often.

use chrono::{DateTime, Utc};
use lms_types::{HealthState, NotifyEvent};

use super::{span, Notice, Severity};
use crate::engine::Engine;
use crate::Result;

impl Engine {
    /// Records an event for each breached RPO and a stuck lock not yet
    /// recorded; returns how many were new.
    pub async fn watch_for_trouble(&self, now: DateTime<Utc>) -> Result<usize> {
        let health = self.backup_health(now).await?;
        let mut found = Vec::new();
        for schedule in &health.schedules {
            if schedule.state != HealthState::Red || schedule.age_seconds <= schedule.rpo_seconds {
                continue;
            }
            let since = schedule.newest_verified_at;
            let key = format!(
                "rpo:{}:{}",
                schedule.name,
                since
                    .map(|s| s.to_rfc3339())
                    .unwrap_or_else(|| "never".into())
            );
            let rpo = span(chrono::Duration::seconds(schedule.rpo_seconds));
            let happened = match since {
                Some(at) => format!(
                    "The schedule \"{}\" has no verified backup newer than {} ago (taken {}); its \
                     recovery point objective is {rpo}. {}",
                    schedule.name,
                    span(now - at),
                    at.format("%Y-%m-%d %H:%M UTC"),
                    schedule.reason
                ),
                None => format!(
                    "The schedule \"{}\" has not made a verified backup yet, {} after it was set \
                     up; its recovery point objective is {rpo}. {}",
                    schedule.name,
                    span(chrono::Duration::seconds(schedule.age_seconds)),
                    schedule.reason
                ),
            };
            let notice = Notice {
                title: format!("No recent backup: schedule \"{}\"", schedule.name),
                severity: Severity::Critical,
                happened,
                since,
                done: "Backups of this schedule keep being attempted at their due times; the \
                       health endpoint (/healthz/backups) answers 503 until one is verified."
                    .into(),
                todo: "Open the console: see why the recent runs failed or were skipped (the \
                       activity log and the schedule's last run say), fix it, and start a backup \
                       now."
                    .into(),
                backup: None,
                job: None,
            };
            found.push((NotifyEvent::RpoBreached, notice, key));
        }
        if health.lock_stuck {
            let lock =
                crate::jobs::lock::status(&self.dbs().control, self.config().lease_timeout).await?;
            if let Some(lock) = lock {
                let key = format!(
                    "lock:{}:{}",
                    lock.holder_instance,
                    lock.locked_at.to_rfc3339()
                );
                let notice = Notice {
                    title: "The operation lock is stuck".into(),
                    severity: Severity::Critical,
                    happened: format!(
                        "A {} started by {} holds the operation lock since {} ago{}. No backup, \
                         restore or deletion can run until it is released.",
                        lock.operation_type,
                        lock.locked_by,
                        span(now - lock.locked_at),
                        if lock.stale {
                            ", and the instance holding it has stopped renewing it"
                        } else {
                            ""
                        }
                    ),
                    since: Some(lock.locked_at),
                    done: "Scheduled backups wait for the lock and are skipped, loudly, after \
                           their grace."
                        .into(),
                    todo: "If nothing is really running (the instance holding it is gone), \
                           release it: POST /api/admin/backup/lock/release as an administrator \
                           (audited); a restore drill can be cancelled from the console."
                        .into(),
                    backup: None,
                    job: lock.job_id,
                };
                found.push((NotifyEvent::LockStuck, notice, key));
            }
        }
        // What was delivered (or given up on) long ago is forgotten.
        sqlx::query(
            "DELETE FROM notification_events e
             WHERE e.created_at < $1 - interval '30 days'
               AND NOT EXISTS (SELECT 1 FROM notification_deliveries d
                               WHERE d.event_id = e.id
                                 AND d.delivered_at IS NULL AND d.abandoned_at IS NULL)",
        )
        .bind(now)
        .execute(&self.dbs().control)
        .await?;
        let mut new = 0;
        for (kind, notice, key) in found {
            let mut conn = self.dbs().control.acquire().await?;
            if super::record(&mut conn, kind, &notice, Some(&key))
                .await?
                .is_some()
            {
                tracing::warn!(event = %kind, key, "recorded a notification");
                new += 1;
            }
        }
        if new > 0 {
            self.wake_notifier();
        }
        Ok(new)
    }
}
