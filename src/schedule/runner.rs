//! The scheduler: every instance runs it; the control database makes sure
//! each due time is claimed once and started once.
//!
//! A tick, at `now` (injected, so tests step a clock instead of sleeping):
//! 1. each enabled schedule whose `next_run_at` has come is claimed by
//!    moving `next_run_at` past `now` with a conditional update, and its
//!    run is recorded as waiting in the same transaction. When several due
//!    times passed (no server was running) they are recorded as missed and
//!    one run stands for them all: one catch-up backup, not one per slot;
//! 2. waiting runs are started through the backup pipeline, which flips the
//!    run to started in the transaction that takes the operation lock, so a
//!    run starts once even when two instances try at the same moment. While
//!    another operation holds the lock the run waits (holding nothing: a
//!    restore is never blocked by it); past the grace it is skipped, loudly.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lms_types::{AuditAction, AuditOutcome, BackupKind};

use super::Schedule;
use crate::audit::{self, Actor, Event};
use crate::backup::{BackupRequest, ScheduledStart};
use crate::engine::Engine;
use crate::{Error, Result};

/// What one tick did.
#[derive(Debug, Default, Clone)]
pub struct TickReport {
    /// Due times claimed: (schedule, due time).
    pub claimed: Vec<(String, DateTime<Utc>)>,
    /// Due times recorded as missed (passed while no server ran).
    pub missed: u64,
    /// Jobs started for waiting runs.
    pub started: Vec<uuid::Uuid>,
    /// Runs given up on this tick.
    pub skipped: Vec<(String, DateTime<Utc>)>,
    /// Runs still waiting for the lock.
    pub waiting: usize,
}

impl TickReport {
    fn is_empty(&self) -> bool {
        self.claimed.is_empty() && self.started.is_empty() && self.skipped.is_empty()
    }
}

/// The longest a scheduler sleeps between ticks (edits made through another
/// instance are seen within it).
const MAX_SLEEP: Duration = Duration::from_secs(15);
/// How often a run waiting for the lock tries again.
const WAITING_RETRY: Duration = Duration::from_secs(2);

/// Runs the scheduler of this instance until the process ends.
pub fn spawn_scheduler(engine: Engine) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = Utc::now();
            let report = match engine.scheduler_tick(now).await {
                Ok(report) => {
                    if !report.is_empty() {
                        tracing::info!(?report, "scheduler");
                    }
                    Some(report)
                }
                Err(e) => {
                    tracing::error!(error = ?e, "the scheduler could not look at the schedules");
                    None
                }
            };
            let sleep = match report {
                Some(r) if r.waiting > 0 => WAITING_RETRY,
                _ => engine.until_next_due(now).await.unwrap_or(MAX_SLEEP),
            };
            tokio::time::sleep(sleep).await;
        }
    })
}

impl Engine {
    /// One pass of the scheduler at `now`: claims what is due, starts what
    /// waits, skips what waited too long.
    pub async fn scheduler_tick(&self, now: DateTime<Utc>) -> Result<TickReport> {
        let mut report = TickReport::default();
        let due: Vec<Schedule> = sqlx::query_as(&format!(
            "SELECT {} FROM schedules WHERE enabled AND next_run_at <= $1 ORDER BY next_run_at",
            super::COLUMNS
        ))
        .bind(now)
        .fetch_all(&self.dbs().control)
        .await?;
        for schedule in due {
            if let Err(e) = self.claim_due(&schedule, now, &mut report).await {
                tracing::error!(error = ?e, schedule = %schedule.name, "could not claim a due time");
            }
        }
        self.start_waiting(now, &mut report).await?;
        Ok(report)
    }

    /// How long until the next schedule is due, at most [`MAX_SLEEP`].
    pub async fn until_next_due(&self, now: DateTime<Utc>) -> Result<Duration> {
        let next: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT min(next_run_at) FROM schedules WHERE enabled")
                .fetch_one(&self.dbs().control)
                .await?;
        // Nothing enabled: look again after the longest sleep (an edit on
        // another instance is seen then). Overdue: soon, not at once.
        let Some(next) = next else {
            return Ok(MAX_SLEEP);
        };
        Ok((next - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(200), MAX_SLEEP))
    }

    /// Claims a schedule's due time(s) up to `now`, once across instances.
    async fn claim_due(
        &self,
        schedule: &Schedule,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<()> {
        let Some(first) = schedule.next_run_at else {
            return Ok(());
        };
        let timing = schedule.timing()?;
        let (listed, count) = timing.due_between(first, now)?;
        let Some(&latest) = listed.last() else {
            return Ok(());
        };
        let next = timing.next_after(now)?;
        let mut tx = self.dbs().control.begin().await?;
        let moved = sqlx::query(
            "UPDATE schedules SET next_run_at = $3
             WHERE id = $1 AND enabled AND next_run_at = $2",
        )
        .bind(schedule.id)
        .bind(first)
        .bind(next)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            // Another instance claimed it (or it was edited meanwhile).
            return Ok(());
        }
        let missed = count.saturating_sub(1);
        let detail = (missed > 0).then(|| {
            format!(
                "catch-up: {missed} earlier due time{} passed while no server was running \
                 (from {} on); one backup stands for them",
                if missed == 1 { "" } else { "s" },
                first.format("%Y-%m-%d %H:%M UTC")
            )
        });
        sqlx::query(
            "INSERT INTO schedule_runs (schedule_id, due_at, state, detail)
             VALUES ($1, $2, 'waiting', $3) ON CONFLICT (schedule_id, due_at) DO NOTHING",
        )
        .bind(schedule.id)
        .bind(latest)
        .bind(&detail)
        .execute(&mut *tx)
        .await?;
        if missed > 0 {
            let slots: Vec<DateTime<Utc>> = listed[..listed.len() - 1].to_vec();
            sqlx::query(
                "INSERT INTO schedule_runs (schedule_id, due_at, state, detail)
                 SELECT $1, due, 'missed', 'no server was running at this due time'
                 FROM unnest($2::timestamptz[]) AS due
                 ON CONFLICT (schedule_id, due_at) DO NOTHING",
            )
            .bind(schedule.id)
            .bind(&slots)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if let Some(detail) = &detail {
            tracing::warn!(schedule = %schedule.name, %detail, "scheduled backups were missed");
            self.audit_skip(schedule, detail).await;
        }
        report.missed += missed;
        report.claimed.push((schedule.name.clone(), latest));
        Ok(())
    }

    /// Starts runs waiting for the lock, oldest first; skips those past the
    /// grace.
    async fn start_waiting(&self, now: DateTime<Utc>, report: &mut TickReport) -> Result<()> {
        let waiting: Vec<(i64, DateTime<Utc>, Schedule)> = sqlx::query_as::<_, WaitingRow>(
            "SELECT r.id AS run_id, r.due_at, s.id, s.name, s.cron, s.timezone, s.notes_template,
                    s.enabled, s.rpo_seconds, s.next_run_at, s.keep_last, s.keep_hourly,
                    s.keep_daily, s.keep_weekly, s.keep_monthly, s.keep_yearly,
                    s.created_by_name, s.created_at, s.updated_at
             FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id
             WHERE r.state = 'waiting' ORDER BY r.due_at, r.id",
        )
        .fetch_all(&self.dbs().control)
        .await?
        .into_iter()
        .map(WaitingRow::split)
        .collect();
        let grace = chrono::Duration::from_std(self.config().schedule_grace)
            .unwrap_or(chrono::Duration::MAX);
        let mut stop_trying = false;
        for (run_id, due, schedule) in waiting {
            if now > due + grace {
                let why = format!(
                    "not started within {} of its due time: another operation held the lock, \
                     or the backup directory could not be used",
                    human_duration(self.config().schedule_grace)
                );
                self.skip_run(&schedule, run_id, due, &why, report).await?;
                continue;
            }
            if stop_trying {
                report.waiting += 1;
                continue;
            }
            match self.start_scheduled(&schedule, run_id, due).await {
                Ok(job) => {
                    stop_trying = true;
                    report.started.push(job);
                }
                // Started by another instance a moment ago.
                Err(Error::Conflict(_)) => {}
                Err(Error::Busy(_)) | Err(Error::StorageUnavailable(_)) => {
                    stop_trying = true;
                    report.waiting += 1;
                }
                Err(other) => {
                    let why = format!("the backup could not start: {other}");
                    self.skip_run(&schedule, run_id, due, &why, report).await?;
                }
            }
        }
        Ok(())
    }

    /// Starts the backup of a waiting run; [`Error::Conflict`] when another
    /// instance started it first.
    async fn start_scheduled(
        &self,
        schedule: &Schedule,
        run_id: i64,
        due: DateTime<Utc>,
    ) -> Result<uuid::Uuid> {
        let actor = schedule_actor(schedule);
        let notes = schedule.notes_for(due);
        let started = self
            .start_backup_as(
                BackupRequest {
                    actor: &actor,
                    notes: Some(&notes),
                    kind: BackupKind::Scheduled,
                },
                Some(ScheduledStart {
                    run_id,
                    schedule_id: schedule.id,
                }),
            )
            .await?;
        tracing::info!(schedule = %schedule.name, due = %due, job = %started.job.id, backup = %started.backup.filename, "scheduled backup started");
        Ok(started.job.id)
    }

    async fn skip_run(
        &self,
        schedule: &Schedule,
        run_id: i64,
        due: DateTime<Utc>,
        why: &str,
        report: &mut TickReport,
    ) -> Result<()> {
        let skipped = sqlx::query(
            "UPDATE schedule_runs SET state = 'skipped', detail = $2
             WHERE id = $1 AND state = 'waiting'",
        )
        .bind(run_id)
        .bind(why)
        .execute(&self.dbs().control)
        .await?
        .rows_affected();
        if skipped == 1 {
            tracing::error!(schedule = %schedule.name, due = %due, why, "a scheduled backup was skipped");
            self.audit_skip(schedule, why).await;
            report.skipped.push((schedule.name.clone(), due));
        }
        Ok(())
    }

    async fn audit_skip(&self, schedule: &Schedule, why: &str) {
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor: &schedule_actor(schedule),
                action: AuditAction::ScheduleSkip,
                target: Some(&schedule.name),
                outcome: AuditOutcome::Failure,
                detail: Some(why),
            },
        )
        .await;
    }
}

/// Who a schedule's backups are by: the schedule itself.
fn schedule_actor(schedule: &Schedule) -> Actor {
    Actor {
        id: None,
        name: schedule.name.clone(),
        client_ip: None,
    }
}

/// "1 h", "30 min", "45 s".
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[derive(sqlx::FromRow)]
struct WaitingRow {
    run_id: i64,
    due_at: DateTime<Utc>,
    #[sqlx(flatten)]
    schedule: Schedule,
}

impl WaitingRow {
    fn split(self) -> (i64, DateTime<Utc>, Schedule) {
        (self.run_id, self.due_at, self.schedule)
    }
}
