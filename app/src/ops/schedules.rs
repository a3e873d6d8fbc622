//! Schedules from the console and the REST API: list, preview the next due
//! times of an expression before saving, save (add or change), turn off,
//! remove. The engine checks every field and audits each change.

use chrono::Utc;
use lms_backup::schedule::{cron, NewSchedule, ScheduleChanges, Timing};

use crate::error::AppError;
use crate::models::{ScheduleForm, ScheduleList, SchedulePreview, ScheduleView, UpcomingRun};
use crate::ssr::{AdminUser, AppState};

/// How many due times a preview shows.
const PREVIEW_RUNS: usize = 5;

/// Every schedule, by name, with the server's zone.
pub async fn list_schedules(
    state: &AppState,
    _admin: &AdminUser,
) -> Result<ScheduleList, AppError> {
    let schedules = state.engine.list_schedules().await?;
    Ok(ScheduleList {
        server_zone: cron::server_zone().name().to_owned(),
        schedules: schedules.into_iter().map(ScheduleView::from).collect(),
    })
}

/// The next five due times of `expression` read in `timezone` (the
/// server's when `None`), or the field that is wrong.
pub async fn preview_schedule(
    _state: &AppState,
    _admin: &AdminUser,
    expression: &str,
    timezone: Option<&str>,
) -> Result<SchedulePreview, AppError> {
    let zone = match timezone.map(str::trim).filter(|z| !z.is_empty()) {
        Some(z) => z.to_owned(),
        None => cron::server_zone().name().to_owned(),
    };
    let timing = Timing::parse(expression, &zone)?;
    let zone = timing.zone();
    let upcoming = timing
        .upcoming(Utc::now(), PREVIEW_RUNS)?
        .into_iter()
        .map(|at| UpcomingRun {
            at,
            in_zone: at
                .with_timezone(&zone)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
        })
        .collect();
    Ok(SchedulePreview {
        timezone: zone.name().to_owned(),
        upcoming,
    })
}

/// Adds a schedule (`original` empty) or changes the one named
/// `original`; audited either way.
pub async fn save_schedule(
    state: &AppState,
    admin: &AdminUser,
    form: ScheduleForm,
) -> Result<ScheduleView, AppError> {
    let actor = admin.actor();
    let rpo_seconds = match form.rpo_minutes {
        Some(m) if m <= 0 => None,
        other => other.map(|m| m.saturating_mul(60)),
    };
    let timezone = form.timezone.filter(|z| !z.trim().is_empty());
    let notes = form.notes_template.filter(|n| !n.trim().is_empty());
    let saved = match form.original.filter(|o| !o.trim().is_empty()) {
        None => {
            state
                .engine
                .create_schedule(
                    NewSchedule {
                        name: form.name,
                        cron: form.cron,
                        timezone,
                        notes_template: notes,
                        enabled: form.enabled,
                        rpo_seconds,
                        policy: form.policy,
                    },
                    &actor,
                    Utc::now(),
                )
                .await?
        }
        Some(original) => {
            state
                .engine
                .edit_schedule(
                    &original,
                    ScheduleChanges {
                        name: Some(form.name),
                        cron: Some(form.cron),
                        timezone: Some(
                            timezone.unwrap_or_else(|| cron::server_zone().name().to_owned()),
                        ),
                        notes_template: Some(notes),
                        enabled: Some(form.enabled),
                        rpo_seconds: Some(rpo_seconds),
                        policy: Some(form.policy),
                    },
                    &actor,
                    Utc::now(),
                )
                .await?
        }
    };
    let info = state
        .engine
        .list_schedules()
        .await?
        .into_iter()
        .find(|i| i.schedule.id == saved.id)
        .ok_or_else(|| AppError::NotFound("schedule".into()))?;
    Ok(info.into())
}

/// Removes a schedule (its backups stay, under the manual backups'
/// retention); audited.
pub async fn remove_schedule(
    state: &AppState,
    admin: &AdminUser,
    name: &str,
) -> Result<(), AppError> {
    state.engine.remove_schedule(name, &admin.actor()).await?;
    Ok(())
}
