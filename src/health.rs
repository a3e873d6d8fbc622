//! Whether backups are still happening: each enabled schedule's newest
//! verified backup against its recovery point objective (RPO), the last
//! run's outcome, and the operation lock. Read from the control database
//! only, so every instance answers the same and a monitor can poll it.
//!
//! - green: every enabled schedule has a verified backup within its RPO;
//! - amber: that still holds, but a schedule's last run failed, was
//!   interrupted or skipped;
//! - red: an RPO is breached, no schedule is enabled (backups happen only
//!   when someone clicks), or the operation lock is stuck.
//!
//! A schedule that has not made a backup yet is measured from when it was
//! created or last changed, so a new one is not red at once.

use chrono::{DateTime, Duration, Utc};
use lms_types::{BackupStatus, HealthState};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::jobs::lock;
use crate::schedule::{Schedule, ScheduleRun};
use crate::Result;

/// A lock held this long, even with a live heartbeat, counts as stuck: no
/// operation of this console takes that long.
pub const LOCK_STUCK_AFTER: Duration = Duration::hours(6);

/// One enabled schedule against its RPO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleHealth {
    pub name: String,
    pub state: HealthState,
    /// Why, in words.
    pub reason: String,
    pub rpo_seconds: i64,
    /// When its newest verified backup was taken.
    pub newest_verified_at: Option<DateTime<Utc>>,
    /// How old that backup is (or, with none yet, how long the schedule
    /// has waited for its first).
    pub age_seconds: i64,
    /// Its newest verified backup's size.
    pub newest_verified_bytes: Option<i64>,
    pub next_run_at: Option<DateTime<Utc>>,
}

/// How backups stand, all in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHealth {
    pub state: HealthState,
    /// The worst reason, in words.
    pub reason: String,
    /// The newest verified backup of any kind, and its age.
    pub newest_verified_at: Option<DateTime<Utc>>,
    pub newest_age_seconds: Option<i64>,
    pub schedules: Vec<ScheduleHealth>,
    /// Seconds the operation lock has been held (`None`: free).
    pub lock_held_seconds: Option<i64>,
    pub lock_stuck: bool,
}

impl Engine {
    /// How backups stand at `now`.
    pub async fn backup_health(&self, now: DateTime<Utc>) -> Result<BackupHealth> {
        let control = &self.dbs().control;
        let lock = lock::status(control, self.config().lease_timeout).await?;
        let lock_held = lock
            .as_ref()
            .map(|l| (now - l.locked_at).num_seconds().max(0));
        let lock_stuck = lock
            .as_ref()
            .is_some_and(|l| l.stale || now - l.locked_at > LOCK_STUCK_AFTER);

        let newest: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT max(created_at) FROM backup_history
             WHERE status = $1 AND ($2 OR offsite_state = 'verified')",
        )
        .bind(BackupStatus::Completed)
        .bind(self.offsite().is_none())
        .fetch_one(control)
        .await?;

        let mut schedules = Vec::new();
        for info in self.list_schedules().await? {
            if !info.schedule.enabled {
                continue;
            }
            schedules.push(
                self.schedule_health(&info.schedule, info.last_run, now)
                    .await?,
            );
        }

        let (state, reason) = if lock_stuck {
            let l = lock.as_ref().expect("a stuck lock is held");
            (
                HealthState::Red,
                format!(
                    "The operation lock looks stuck: a {} started by {} {} ago{}. Nothing else can \
                     run until it is released.",
                    l.operation_type,
                    l.locked_by,
                    age_words((now - l.locked_at).num_seconds()),
                    if l.stale { " has stopped renewing it" } else { "" }
                ),
            )
        } else if schedules.is_empty() {
            (
                HealthState::Red,
                "No schedule is enabled: backups happen only when someone starts one.".to_owned(),
            )
        } else {
            let worst = schedules
                .iter()
                .max_by_key(|s| (s.state, s.age_seconds - s.rpo_seconds))
                .expect("at least one schedule");
            let reason = match worst.state {
                HealthState::Green => format!(
                    "Every schedule's newest verified backup is within its recovery point \
                     objective; the newest is {} old.",
                    newest
                        .map(|n| age_words((now - n).num_seconds()))
                        .unwrap_or_else(|| "not there yet".into())
                ),
                _ => worst.reason.clone(),
            };
            (worst.state, reason)
        };
        // A target that cannot be used is not green, whatever the ages say;
        // nor are backups whose restore was not proven lately.
        let problem = match self.target_watch().problem() {
            Some(problem) => Some(problem),
            None => self.drill_problem(now).await?,
        }
        .filter(|_| state == HealthState::Green);
        let (state, reason) = match problem {
            Some(problem) => (HealthState::Amber, problem),
            None => (state, reason),
        };
        Ok(BackupHealth {
            state,
            reason,
            newest_verified_at: newest,
            newest_age_seconds: newest.map(|n| (now - n).num_seconds().max(0)),
            schedules,
            lock_held_seconds: lock_held,
            lock_stuck,
        })
    }

    /// Why the restore drills do not vouch for the backups: the newest one
    /// failed, or it is older than the drill interval (and a day's grace).
    /// `None` without drills on a schedule or without a backup to drill.
    async fn drill_problem(&self, now: DateTime<Utc>) -> Result<Option<String>> {
        let Some(interval) = self.config().drill_interval else {
            return Ok(None);
        };
        let first_backup: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT min(created_at) FROM backup_history WHERE status = $1")
                .bind(BackupStatus::Completed)
                .fetch_one(&self.dbs().control)
                .await?;
        let Some(first_backup) = first_backup else {
            return Ok(None);
        };
        let allowed = Duration::from_std(interval).unwrap_or(Duration::MAX) + Duration::days(1);
        Ok(match self.newest_drill().await? {
            Some(d) if !d.succeeded => Some(format!(
                "The newest restore drill ({} on {}) failed: {} Drill a newer backup.",
                d.backup_name,
                d.finished_at.format("%Y-%m-%d %H:%M UTC"),
                d.error.unwrap_or_default()
            )),
            Some(d) if now - d.finished_at > allowed => Some(format!(
                "No restore drill for {}: the newest was on {}. Backups are not proven to restore \
                 until one runs.",
                age_words((now - d.finished_at).num_seconds()),
                d.finished_at.format("%Y-%m-%d")
            )),
            None if now - first_backup > allowed => Some(
                "No backup has been restore-tested yet: run a restore drill (Details → Run \
                 restore drill)."
                    .into(),
            ),
            _ => None,
        })
    }

    async fn schedule_health(
        &self,
        schedule: &Schedule,
        last_run: Option<ScheduleRun>,
        now: DateTime<Utc>,
    ) -> Result<ScheduleHealth> {
        let rpo_seconds = match schedule.rpo_seconds {
            Some(rpo) => rpo,
            None => schedule
                .timing()
                .and_then(|t| t.interval(now))
                .map(|i| 2 * i.num_seconds())
                .unwrap_or(2 * 86_400),
        };
        let newest: Option<(DateTime<Utc>, Option<i64>)> = sqlx::query_as(
            "SELECT created_at, size_bytes FROM backup_history
             WHERE schedule_id = $1 AND status = $2 AND ($3 OR offsite_state = 'verified')
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(schedule.id)
        .bind(BackupStatus::Completed)
        .bind(self.offsite().is_none())
        .fetch_optional(&self.dbs().control)
        .await?;
        let since = newest.map(|(at, _)| at).unwrap_or(schedule.updated_at);
        // With an off-site target, a backup counts once its copy is verified.
        let verified = if self.offsite().is_some() {
            "off-site-verified"
        } else {
            "verified"
        };
        let age_seconds = (now - since).num_seconds().max(0);
        let name = &schedule.name;
        let last_failed = last_run.as_ref().and_then(|run| {
            match (run.state.as_str(), run.job_status.as_deref()) {
                ("skipped", _) => Some(format!(
                    "its last run (due {}) was skipped{}",
                    run.due_at.format("%Y-%m-%d %H:%M UTC"),
                    run.detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                )),
                ("started", Some(status @ ("failed" | "interrupted"))) => Some(format!(
                    "its last run (due {}) {status}",
                    run.due_at.format("%Y-%m-%d %H:%M UTC")
                )),
                _ => None,
            }
        });
        let (state, reason) = if age_seconds > rpo_seconds {
            let what = match newest {
                Some(_) => format!(
                    "Schedule \"{name}\": its newest {verified} backup is {} old",
                    age_words(age_seconds)
                ),
                None => format!(
                    "Schedule \"{name}\" has made no {verified} backup in {}",
                    age_words(age_seconds)
                ),
            };
            (
                HealthState::Red,
                format!(
                    "{what}, beyond its recovery point objective of {}{}.",
                    age_words(rpo_seconds),
                    last_failed
                        .as_deref()
                        .map(|f| format!("; {f}"))
                        .unwrap_or_default()
                ),
            )
        } else if let Some(failed) = last_failed {
            (
                HealthState::Amber,
                format!(
                    "Schedule \"{name}\": {failed}; its newest {verified} backup is {} old, within \
                     its recovery point objective of {}.",
                    age_words(age_seconds),
                    age_words(rpo_seconds)
                ),
            )
        } else {
            (
                HealthState::Green,
                match newest {
                    Some(_) => format!(
                        "Schedule \"{name}\": newest {verified} backup {} old.",
                        age_words(age_seconds)
                    ),
                    None => format!("Schedule \"{name}\": no backup yet; the first is due."),
                },
            )
        };
        Ok(ScheduleHealth {
            name: name.clone(),
            state,
            reason,
            rpo_seconds,
            newest_verified_at: newest.map(|(at, _)| at),
            age_seconds,
            newest_verified_bytes: newest.and_then(|(_, size)| size),
            next_run_at: schedule.next_run_at,
        })
    }
}

/// An age in words, to the unit that matters: "45 s", "12 min", "5 h 20 min",
/// "3 days 4 h".
pub fn age_words(seconds: i64) -> String {
    let s = seconds.max(0);
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (1, 0, _) => "1 day".into(),
        (1, h, _) => format!("1 day {h} h"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::age_words;

    #[test]
    fn ages_are_said_to_the_unit_that_matters() {
        assert_eq!(age_words(45), "45 s");
        assert_eq!(age_words(12 * 60 + 5), "12 min");
        assert_eq!(age_words(5 * 3600 + 20 * 60), "5 h 20 min");
        assert_eq!(age_words(2 * 3600), "2 h");
        assert_eq!(age_words(86_400 + 3600), "1 day 1 h");
        assert_eq!(age_words(3 * 86_400 + 4 * 3600 + 59), "3 days 4 h");
        assert_eq!(age_words(-5), "0 s");
    }
}

/// What `/metrics` reports, read from the control database at scrape time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsFacts {
    pub health: BackupHealth,
    /// Seconds the newest succeeded job of each kind took (backup, restore…).
    pub last_durations: Vec<(String, f64)>,
    /// Jobs on record that failed or were interrupted, by kind.
    pub failures: Vec<(String, i64)>,
    /// Backups retention deleted, on record in the audit log.
    pub retention_deletions: i64,
    /// Catalog entries by status.
    pub catalog: Vec<(String, i64)>,
    /// Bytes of the verified archives stored.
    pub stored_bytes: i64,
}

impl Engine {
    /// Everything `/metrics` reports, at `now`.
    pub async fn metrics_facts(&self, now: DateTime<Utc>) -> Result<MetricsFacts> {
        let control = &self.dbs().control;
        let health = self.backup_health(now).await?;
        let last_durations = sqlx::query_as(
            "SELECT DISTINCT ON (kind) kind,
                    extract(epoch FROM finished_at - started_at)::float8
             FROM jobs WHERE status = 'succeeded' AND started_at IS NOT NULL
                         AND finished_at IS NOT NULL
             ORDER BY kind, finished_at DESC",
        )
        .fetch_all(control)
        .await?;
        let failures = sqlx::query_as(
            "SELECT kind, count(*) FROM jobs WHERE status IN ('failed', 'interrupted')
             GROUP BY kind ORDER BY kind",
        )
        .fetch_all(control)
        .await?;
        let retention_deletions = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log
             WHERE action = $1 AND outcome = 'success' AND target IS DISTINCT FROM $2",
        )
        .bind(lms_types::AuditAction::BackupCleanup)
        .bind(crate::retention::PASS_TARGET)
        .fetch_one(control)
        .await?;
        let catalog = sqlx::query_as(
            "SELECT status, count(*) FROM backup_history GROUP BY status ORDER BY status",
        )
        .fetch_all(control)
        .await?;
        let stored_bytes = crate::catalog::stats(control).await?.stored_bytes;
        Ok(MetricsFacts {
            health,
            last_durations,
            failures,
            retention_deletions,
            catalog,
            stored_bytes,
        })
    }
}
