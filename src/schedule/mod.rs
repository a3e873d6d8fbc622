//! Backups that happen by themselves: schedules (a cron expression in an
//! IANA zone, `cron`), kept in the control database, and the scheduler that
//! claims each due time once across every instance and starts the backup
//! through the same pipeline as a manual one (`runner`).

pub mod cron;
mod runner;

use chrono::{DateTime, Utc};
use lms_types::{AuditAction, AuditOutcome};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor, Event};
use crate::engine::Engine;
use crate::retention::Policy;
use crate::{Error, Result};

pub use cron::Timing;
pub use runner::{spawn_scheduler, TickReport};

/// A schedule as stored.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub notes_template: Option<String>,
    pub enabled: bool,
    /// The recovery point objective in seconds; `None`: twice the interval.
    pub rpo_seconds: Option<i64>,
    /// When it is next due (`None` while it is off).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Which of its backups retention keeps.
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub policy: Policy,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Schedule {
    /// Its expression read in its zone.
    pub fn timing(&self) -> Result<Timing> {
        Timing::parse(&self.cron, &self.timezone)
    }

    /// The notes a backup of its due time `due` gets: the template with
    /// `{schedule}` and `{due}` (in the schedule's zone) filled in.
    pub fn notes_for(&self, due: DateTime<Utc>) -> String {
        let template = self
            .notes_template
            .as_deref()
            .unwrap_or("Scheduled backup ({schedule}, due {due})");
        let due = cron::parse_zone(&self.timezone)
            .map(|z| {
                due.with_timezone(&z)
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|_| due.format("%Y-%m-%d %H:%M UTC").to_string());
        template
            .replace("{schedule}", &self.name)
            .replace("{due}", &due)
    }
}

/// What an administrator gives to add a schedule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewSchedule {
    pub name: String,
    pub cron: String,
    /// `None`: the server's zone.
    pub timezone: Option<String>,
    pub notes_template: Option<String>,
    pub enabled: bool,
    pub rpo_seconds: Option<i64>,
    /// Which of its backups retention keeps.
    pub policy: Policy,
}

/// What an administrator changes in a schedule; `None` keeps a value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScheduleChanges {
    pub name: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    /// `Some(None)` removes the template.
    pub notes_template: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// `Some(None)`: back to twice the interval.
    pub rpo_seconds: Option<Option<i64>>,
    pub policy: Option<Policy>,
}

/// How a run of a schedule stands.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct ScheduleRun {
    pub id: i64,
    pub schedule_id: i64,
    pub due_at: DateTime<Utc>,
    /// waiting, started, skipped or missed.
    pub state: String,
    pub job_id: Option<uuid::Uuid>,
    /// The job's status for a started run (running, succeeded, failed,
    /// interrupted).
    pub job_status: Option<String>,
    pub detail: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
}

/// A schedule with its last run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub schedule: Schedule,
    pub last_run: Option<ScheduleRun>,
}

const MAX_NAME: usize = 80;
const MAX_TEMPLATE: usize = 500;

fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::Invalid(
            "name: give the schedule a name, such as \"nightly\".".into(),
        ));
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::Invalid(format!(
            "name: at most {MAX_NAME} characters."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Invalid("name: no control characters.".into()));
    }
    Ok(name.to_owned())
}

fn clean_template(template: Option<&str>) -> Result<Option<String>> {
    let Some(t) = template.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > MAX_TEMPLATE {
        return Err(Error::Invalid(format!(
            "notes: at most {MAX_TEMPLATE} characters."
        )));
    }
    Ok(Some(t.to_owned()))
}

fn check_rpo(rpo: Option<i64>) -> Result<Option<i64>> {
    match rpo {
        Some(s) if s < 60 => Err(Error::Invalid(
            "rpo: at least one minute; it is how old the newest verified backup may get.".into(),
        )),
        other => Ok(other),
    }
}

/// A schedule's columns, in [`Schedule`]'s order.
pub(crate) const COLUMNS: &str = "id, name, cron, timezone, notes_template, enabled, rpo_seconds,
        next_run_at, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly,
        created_by_name, created_at, updated_at";

impl Engine {
    /// Every schedule with its last run, by name.
    pub async fn list_schedules(&self) -> Result<Vec<ScheduleInfo>> {
        let schedules: Vec<Schedule> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))
                .fetch_all(&self.dbs().control)
                .await?;
        let mut out = Vec::with_capacity(schedules.len());
        for schedule in schedules {
            let last_run = self.schedule_runs(schedule.id, 1).await?.into_iter().next();
            out.push(ScheduleInfo { schedule, last_run });
        }
        Ok(out)
    }

    /// One schedule by name.
    pub async fn schedule(&self, name: &str) -> Result<Schedule> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM schedules WHERE name = $1"))
            .bind(name.trim())
            .fetch_optional(&self.dbs().control)
            .await?
            .ok_or_else(|| Error::NotFound(format!("schedule \"{}\"", name.trim())))
    }

    /// A schedule's latest runs, newest due time first.
    pub async fn schedule_runs(&self, schedule_id: i64, limit: i64) -> Result<Vec<ScheduleRun>> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.schedule_id, r.due_at, r.state, r.job_id, j.status AS job_status,
                    r.detail, r.started_at
             FROM schedule_runs r LEFT JOIN jobs j ON j.id = r.job_id
             WHERE r.schedule_id = $1 ORDER BY r.due_at DESC, r.id DESC LIMIT $2",
        )
        .bind(schedule_id)
        .bind(limit)
        .fetch_all(&self.dbs().control)
        .await?)
    }

    /// Adds a schedule; it is first due at its next due time from `now`.
    pub async fn create_schedule(
        &self,
        new: NewSchedule,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Schedule> {
        let created = self.insert_schedule(new.clone(), actor, now).await;
        let target = new.name.trim();
        self.audit_schedule(actor, AuditAction::ScheduleCreate, target, &created)
            .await;
        created
    }

    async fn insert_schedule(
        &self,
        new: NewSchedule,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Schedule> {
        let name = clean_name(&new.name)?;
        let zone = new
            .timezone
            .clone()
            .unwrap_or_else(|| cron::server_zone().name().to_owned());
        let timing = Timing::parse(&new.cron, &zone)?;
        let template = clean_template(new.notes_template.as_deref())?;
        let rpo = check_rpo(new.rpo_seconds)?;
        crate::retention::policy::check(&new.policy)?;
        let next = new.enabled.then(|| timing.next_after(now)).transpose()?;
        let p = new.policy;
        sqlx::query_as(&format!(
            "INSERT INTO schedules (name, cron, timezone, notes_template, enabled, rpo_seconds,
                                    next_run_at, created_by_name, keep_last, keep_hourly,
                                    keep_daily, keep_weekly, keep_monthly, keep_yearly)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             RETURNING {COLUMNS}"
        ))
        .bind(&name)
        .bind(new.cron.trim())
        .bind(timing.zone().name())
        .bind(&template)
        .bind(new.enabled)
        .bind(rpo)
        .bind(next)
        .bind(&actor.name)
        .bind(p.keep_last as i32)
        .bind(p.keep_hourly as i32)
        .bind(p.keep_daily as i32)
        .bind(p.keep_weekly as i32)
        .bind(p.keep_monthly as i32)
        .bind(p.keep_yearly as i32)
        .fetch_one(&self.dbs().control)
        .await
        .map_err(|e| taken(e, &name))
    }

    /// Changes a schedule. A new expression, zone or turning it on counts
    /// its next due time from `now`; a run already waiting for the lock
    /// still runs.
    pub async fn edit_schedule(
        &self,
        name: &str,
        changes: ScheduleChanges,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Schedule> {
        let result = self.apply_changes(name, changes, now).await;
        self.audit_schedule(actor, AuditAction::ScheduleEdit, name.trim(), &result)
            .await;
        result
    }

    async fn apply_changes(
        &self,
        name: &str,
        changes: ScheduleChanges,
        now: DateTime<Utc>,
    ) -> Result<Schedule> {
        let mut tx = self.dbs().control.begin().await?;
        let current: Schedule = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE name = $1 FOR UPDATE"
        ))
        .bind(name.trim())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("schedule \"{}\"", name.trim())))?;
        let new_name = changes
            .name
            .as_deref()
            .map(clean_name)
            .transpose()?
            .unwrap_or_else(|| current.name.clone());
        let cron_expr = changes.cron.clone().unwrap_or_else(|| current.cron.clone());
        let zone = changes
            .timezone
            .clone()
            .unwrap_or_else(|| current.timezone.clone());
        let timing = Timing::parse(&cron_expr, &zone)?;
        let template = match &changes.notes_template {
            Some(t) => clean_template(t.as_deref())?,
            None => current.notes_template.clone(),
        };
        let rpo = match changes.rpo_seconds {
            Some(r) => check_rpo(r)?,
            None => current.rpo_seconds,
        };
        let policy = changes.policy.unwrap_or(current.policy);
        crate::retention::policy::check(&policy)?;
        let enabled = changes.enabled.unwrap_or(current.enabled);
        let timing_changed =
            cron_expr.trim() != current.cron || timing.zone().name() != current.timezone;
        let next = match (enabled, current.next_run_at) {
            (false, _) => None,
            (true, Some(next)) if !timing_changed => Some(next),
            (true, _) => Some(timing.next_after(now)?),
        };
        let updated = sqlx::query_as(&format!(
            "UPDATE schedules SET name = $2, cron = $3, timezone = $4, notes_template = $5,
                    enabled = $6, rpo_seconds = $7, next_run_at = $8, keep_last = $9,
                    keep_hourly = $10, keep_daily = $11, keep_weekly = $12, keep_monthly = $13,
                    keep_yearly = $14, updated_at = now()
             WHERE id = $1
             RETURNING {COLUMNS}"
        ))
        .bind(current.id)
        .bind(&new_name)
        .bind(cron_expr.trim())
        .bind(timing.zone().name())
        .bind(&template)
        .bind(enabled)
        .bind(rpo)
        .bind(next)
        .bind(policy.keep_last as i32)
        .bind(policy.keep_hourly as i32)
        .bind(policy.keep_daily as i32)
        .bind(policy.keep_weekly as i32)
        .bind(policy.keep_monthly as i32)
        .bind(policy.keep_yearly as i32)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| taken(e, &new_name))?;
        if !enabled {
            cancel_waiting(&mut tx, current.id, "the schedule was turned off").await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    /// Turns a schedule off; a run waiting for the lock is skipped.
    pub async fn disable_schedule(&self, name: &str, actor: &Actor) -> Result<Schedule> {
        let result = self
            .apply_changes(
                name,
                ScheduleChanges {
                    enabled: Some(false),
                    ..Default::default()
                },
                Utc::now(),
            )
            .await;
        self.audit_schedule(actor, AuditAction::ScheduleDisable, name.trim(), &result)
            .await;
        result
    }

    /// Removes a schedule and its record of runs. Its backups stay (under
    /// the manual backups' retention).
    pub async fn remove_schedule(&self, name: &str, actor: &Actor) -> Result<()> {
        let result = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name.trim())
            .execute(&self.dbs().control)
            .await
            .map_err(Error::from)
            .and_then(|done| match done.rows_affected() {
                0 => Err(Error::NotFound(format!("schedule \"{}\"", name.trim()))),
                _ => Ok(()),
            });
        self.audit_schedule(actor, AuditAction::ScheduleRemove, name.trim(), &result)
            .await;
        result
    }

    async fn audit_schedule<T>(
        &self,
        actor: &Actor,
        action: AuditAction,
        name: &str,
        result: &Result<T>,
    ) {
        let detail = result.as_ref().err().map(ToString::to_string);
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor,
                action,
                target: Some(name),
                outcome: if result.is_ok() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Failure
                },
                detail: detail.as_deref(),
            },
        )
        .await;
    }
}

/// Skips a schedule's runs still waiting for the lock.
async fn cancel_waiting(tx: &mut sqlx::PgConnection, schedule_id: i64, why: &str) -> Result<()> {
    sqlx::query(
        "UPDATE schedule_runs SET state = 'skipped', detail = $2
         WHERE schedule_id = $1 AND state = 'waiting'",
    )
    .bind(schedule_id)
    .bind(why)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A unique-name violation, said as such.
fn taken(e: sqlx::Error, name: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Error::Conflict(format!("name: a schedule named \"{name}\" exists already."))
        }
        _ => Error::from(e),
    }
}
