//! `lms-admin schedule …`: schedules from a terminal, with the checks and
//! audit of the console.

use chrono::{DateTime, Utc};
use lms_backup::jobs::messages::failure_message;
use lms_backup::retention::Policy;
use lms_backup::schedule::{NewSchedule, Schedule, ScheduleChanges, ScheduleInfo, Timing};
use lms_backup::Engine;

use crate::backup_cli::{cli_actor, confirm, printable};
use crate::cli::{CliResult, ScheduleCommand};

/// Runs one `schedule` subcommand.
pub async fn run(engine: &Engine, command: ScheduleCommand) -> CliResult {
    let actor = cli_actor();
    let fail = |e: lms_backup::Error| failure_message(&e);
    match command {
        ScheduleCommand::List => {
            let schedules = engine.list_schedules().await.map_err(fail)?;
            if schedules.is_empty() {
                println!("No schedules. Add one: lms-admin schedule add --name nightly --cron \"30 2 * * *\" --timezone Europe/Berlin");
            }
            for info in &schedules {
                print_schedule(info);
            }
            Ok(())
        }
        ScheduleCommand::Add(add) => {
            let zone_given = add.timezone.is_some();
            let schedule = engine
                .create_schedule(
                    NewSchedule {
                        name: add.name,
                        cron: add.cron,
                        timezone: add.timezone,
                        notes_template: add.notes,
                        enabled: !add.disabled,
                        rpo_seconds: add.rpo_minutes.map(|m| m.saturating_mul(60)),
                        policy: add.keep.over(Policy::default()),
                    },
                    &actor,
                    Utc::now(),
                )
                .await
                .map_err(fail)?;
            println!("Added schedule \"{}\".", printable(&schedule.name));
            println!("Keeps {} of its backups.", schedule.policy.describe());
            if !zone_given {
                println!("Time zone: {} (this server's).", schedule.timezone);
            }
            print_upcoming(&schedule)
        }
        ScheduleCommand::Edit(edit) => {
            let policy = match edit.keep.any() {
                true => Some(
                    edit.keep
                        .over(engine.schedule(&edit.name).await.map_err(fail)?.policy),
                ),
                false => None,
            };
            let changes = ScheduleChanges {
                policy,
                name: edit.rename,
                cron: edit.cron,
                timezone: edit.timezone,
                notes_template: edit.notes.map(|n| Some(n).filter(|n| !n.trim().is_empty())),
                enabled: match (edit.enable, edit.disable) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                },
                rpo_seconds: edit
                    .rpo_minutes
                    .map(|m| Some(m.saturating_mul(60)).filter(|s| *s > 0)),
            };
            let schedule = engine
                .edit_schedule(&edit.name, changes, &actor, Utc::now())
                .await
                .map_err(fail)?;
            println!("Changed schedule \"{}\".", printable(&schedule.name));
            print_upcoming(&schedule)
        }
        ScheduleCommand::Disable { name } => {
            let schedule = engine.disable_schedule(&name, &actor).await.map_err(fail)?;
            println!(
                "Schedule \"{}\" is off; it starts no backups until it is turned on again \
                 (lms-admin schedule edit {} --enable).",
                printable(&schedule.name),
                printable(&schedule.name)
            );
            Ok(())
        }
        ScheduleCommand::Remove { name, yes } => {
            let schedule = engine.schedule(&name).await.map_err(fail)?;
            confirm(
                yes,
                &format!(
                    "Remove schedule \"{}\"? Its backups stay. Type the name to confirm: ",
                    printable(&schedule.name)
                ),
                &schedule.name,
            )?;
            engine.remove_schedule(&name, &actor).await.map_err(fail)?;
            println!("Removed schedule \"{}\".", printable(&schedule.name));
            Ok(())
        }
    }
}

fn print_schedule(info: &ScheduleInfo) {
    let s = &info.schedule;
    println!(
        "{}  [{}]  {}  ({})",
        printable(&s.name),
        if s.enabled { "on" } else { "off" },
        s.cron,
        s.timezone
    );
    println!("  keeps: {}", s.policy.describe());
    match s.next_run_at {
        Some(next) => println!("  next run: {}", in_zone_and_utc(next, &s.timezone)),
        None => println!("  next run: none (turned off)"),
    }
    match &info.last_run {
        Some(run) => println!(
            "  last run: due {}: {}{}",
            in_zone_and_utc(run.due_at, &s.timezone),
            run.job_status.as_deref().unwrap_or(&run.state),
            run.detail
                .as_deref()
                .map(|d| format!(" ({})", printable(d)))
                .unwrap_or_default()
        ),
        None => println!("  last run: none yet"),
    }
}

fn print_upcoming(schedule: &Schedule) -> CliResult {
    if !schedule.enabled {
        println!("It is off: nothing is due.");
        return Ok(());
    }
    let timing =
        Timing::parse(&schedule.cron, &schedule.timezone).map_err(|e| failure_message(&e))?;
    let upcoming = timing
        .upcoming(Utc::now(), 5)
        .map_err(|e| failure_message(&e))?;
    println!("Next due times:");
    for at in upcoming {
        println!("  {}", in_zone_and_utc(at, &schedule.timezone));
    }
    Ok(())
}

/// "2026-03-29 03:00 CEST (2026-03-29 01:00 UTC)".
fn in_zone_and_utc(at: DateTime<Utc>, zone: &str) -> String {
    let utc = at.format("%Y-%m-%d %H:%M UTC");
    match lms_backup::schedule::cron::parse_zone(zone) {
        Ok(z) => format!(
            "{} ({utc})",
            at.with_timezone(&z).format("%Y-%m-%d %H:%M %Z")
        ),
        Err(_) => utc.to_string(),
    }
}
