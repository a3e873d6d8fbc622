//! Schedules and the scheduler, with an injected clock: each tick is given
//! its `now`, so due times, downtime and the grace are stepped through
//! without sleeping. The backups they start are real (pg_dump, verified).

use chrono::{DateTime, Duration as Span, Utc};
use lms_backup::schedule::{NewSchedule, ScheduleChanges, TickReport};
use lms_backup::testing::{actor, spawn_engine, spawn_engine_with, wait_for_job};
use lms_backup::{Engine, Error};
use lms_types::{BackupKind, JobStatus};
use uuid::Uuid;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn add(engine: &Engine, name: &str, cron: &str, zone: &str, now: DateTime<Utc>) {
    engine
        .create_schedule(
            NewSchedule {
                name: name.into(),
                cron: cron.into(),
                timezone: Some(zone.into()),
                notes_template: None,
                enabled: true,
                rpo_seconds: None,
                policy: Default::default(),
            },
            &actor("alice"),
            now,
        )
        .await
        .unwrap();
}

/// Ticks and waits for whatever the tick started to end.
async fn tick(engine: &Engine, now: DateTime<Utc>) -> TickReport {
    let report = engine.scheduler_tick(now).await.unwrap();
    for job in &report.started {
        let done = wait_for_job(engine, *job).await;
        assert_eq!(done.status, JobStatus::Succeeded, "{:?}", done.message);
    }
    report
}

/// Ticks every `step` from `from` to `to`; the due times claimed.
async fn tick_through(
    engine: &Engine,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Span,
) -> Vec<DateTime<Utc>> {
    let mut claimed = Vec::new();
    let mut now = from;
    while now <= to {
        let report = tick(engine, now).await;
        claimed.extend(report.claimed.iter().map(|(_, due)| *due));
        now += step;
    }
    claimed
}

async fn runs(engine: &Engine, name: &str) -> Vec<(DateTime<Utc>, String)> {
    let schedule = engine.schedule(name).await.unwrap();
    let mut runs: Vec<_> = engine
        .schedule_runs(schedule.id, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.due_at, r.state))
        .collect();
    runs.sort();
    runs
}

async fn scheduled_backups(engine: &Engine) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT created_by_name, status, notes FROM backup_history
         WHERE kind = $1 ORDER BY id",
    )
    .bind(BackupKind::Scheduled)
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap()
}

/// A lock row held by another, live instance (its heartbeat is fresh).
async fn hold_lock(engine: &Engine) {
    let control = &engine.dbs().control;
    let job = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO jobs (id, kind, status, phase, started_by_name, instance_id, started_at)
         VALUES ($1, 'restore', 'running', 'restoring', 'bob', 'other-host:1:x', now())",
    )
    .bind(job)
    .execute(control)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO operation_lock (id, holder_instance, job_id, operation_type, locked_by_name)
         VALUES (1, 'other-host:1:x', $1, 'restore', 'bob')",
    )
    .bind(job)
    .execute(control)
    .await
    .unwrap();
}

async fn release_lock(engine: &Engine) {
    sqlx::query("DELETE FROM operation_lock")
        .execute(&engine.dbs().control)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_due_time_gives_one_verified_backup_by_the_schedule() {
    let engine = spawn_engine_with(|c| c.backup_rate_limit = 1).await;
    let t0 = utc("2026-06-01T00:00:00Z");
    add(&engine, "nightly", "0 2 * * *", "UTC", t0).await;
    assert_eq!(
        engine.schedule("nightly").await.unwrap().next_run_at,
        Some(utc("2026-06-01T02:00:00Z"))
    );

    assert!(tick(&engine, utc("2026-06-01T01:59:59Z"))
        .await
        .claimed
        .is_empty());
    let report = tick(&engine, utc("2026-06-01T02:00:03Z")).await;
    assert_eq!(
        report.claimed,
        [("nightly".to_owned(), utc("2026-06-01T02:00:00Z"))]
    );
    assert_eq!(report.started.len(), 1);
    // The same due time again, later: nothing more.
    let again = tick(&engine, utc("2026-06-01T02:05:00Z")).await;
    assert!(
        again.claimed.is_empty() && again.started.is_empty(),
        "{again:?}"
    );

    let backups = scheduled_backups(&engine).await;
    assert_eq!(backups.len(), 1);
    let (by, status, notes) = &backups[0];
    assert_eq!(by, "nightly");
    assert_eq!(status, "completed");
    assert!(notes.as_deref().unwrap().contains("nightly"), "{notes:?}");
    let schedule = engine.schedule("nightly").await.unwrap();
    assert_eq!(schedule.next_run_at, Some(utc("2026-06-02T02:00:00Z")));
    let info = engine.list_schedules().await.unwrap();
    let last = info[0].last_run.as_ref().unwrap();
    assert_eq!(last.state, "started");
    assert_eq!(last.job_status.as_deref(), Some("succeeded"));
    // Scheduled backups do not count against anyone's hourly limit, and the
    // schedule's backups are tied to it.
    let tied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM backup_history WHERE schedule_id = $1")
            .bind(schedule.id)
            .fetch_one(&engine.dbs().control)
            .await
            .unwrap();
    assert_eq!(tied, 1);
}

#[tokio::test]
async fn two_instances_waking_at_the_same_moment_make_one_backup() {
    let a = spawn_engine().await;
    let b = Engine::new(a.dbs().clone(), a.tools().clone(), a.config().clone())
        .await
        .unwrap();
    assert_ne!(a.instance_id(), b.instance_id());
    let t0 = utc("2026-06-01T00:00:00Z");
    add(&a, "hourly", "@hourly", "UTC", t0).await;
    let now = utc("2026-06-01T01:00:01Z");
    for _ in 0..5 {
        let (ra, rb) = tokio::join!(a.scheduler_tick(now), b.scheduler_tick(now));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        for job in ra.started.iter().chain(&rb.started) {
            wait_for_job(&a, *job).await;
        }
    }
    assert_eq!(scheduled_backups(&a).await.len(), 1);
    assert_eq!(
        runs(&a, "hourly").await,
        [(utc("2026-06-01T01:00:00Z"), "started".to_owned())]
    );
}

#[tokio::test]
async fn after_downtime_one_catch_up_backup_runs_and_the_missed_slots_are_recorded() {
    let engine = spawn_engine().await;
    let t0 = utc("2026-06-01T00:10:00Z");
    add(&engine, "hourly", "0 * * * *", "UTC", t0).await;
    // No server ran from 00:10 to 05:30: 01:00 … 05:00 passed.
    let report = tick(&engine, utc("2026-06-01T05:30:00Z")).await;
    assert_eq!(
        report.claimed,
        [("hourly".to_owned(), utc("2026-06-01T05:00:00Z"))]
    );
    assert_eq!(report.missed, 4);
    assert_eq!(report.started.len(), 1);
    let states: Vec<String> = runs(&engine, "hourly")
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(states, ["missed", "missed", "missed", "missed", "started"]);
    assert_eq!(scheduled_backups(&engine).await.len(), 1);
    let skips: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'schedule.skip' AND target = 'hourly'
           AND detail LIKE '%4 earlier due times%'",
    )
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(skips, 1);
    // The next due time is the next one after the catch-up, not a backlog.
    assert_eq!(
        engine.schedule("hourly").await.unwrap().next_run_at,
        Some(utc("2026-06-01T06:00:00Z"))
    );
}

#[tokio::test]
async fn a_run_that_finds_the_lock_held_waits_holding_nothing_then_starts() {
    let engine = spawn_engine().await;
    let t0 = utc("2026-06-01T00:00:00Z");
    add(&engine, "nightly", "0 2 * * *", "UTC", t0).await;
    hold_lock(&engine).await;
    let report = tick(&engine, utc("2026-06-01T02:00:00Z")).await;
    assert_eq!(report.claimed.len(), 1);
    assert!(report.started.is_empty());
    assert_eq!(report.waiting, 1);
    // Waiting takes nothing: the lock is still the restore's alone.
    let lock = engine.lock_status().await.unwrap().unwrap();
    assert_eq!(lock.locked_by, "bob");
    // Still held a few minutes later: still waiting, not started twice.
    let later = tick(&engine, utc("2026-06-01T02:05:00Z")).await;
    assert_eq!((later.started.len(), later.waiting), (0, 1));

    release_lock(&engine).await;
    let report = tick(&engine, utc("2026-06-01T02:06:00Z")).await;
    assert_eq!(report.started.len(), 1);
    assert!(tick(&engine, utc("2026-06-01T02:07:00Z"))
        .await
        .started
        .is_empty());
    assert_eq!(scheduled_backups(&engine).await.len(), 1);
}

#[tokio::test]
async fn a_run_still_waiting_after_the_grace_is_skipped_and_reported() {
    let engine =
        spawn_engine_with(|c| c.schedule_grace = std::time::Duration::from_secs(10 * 60)).await;
    add(
        &engine,
        "nightly",
        "0 2 * * *",
        "UTC",
        utc("2026-06-01T00:00:00Z"),
    )
    .await;
    hold_lock(&engine).await;
    tick(&engine, utc("2026-06-01T02:00:00Z")).await;
    let report = tick(&engine, utc("2026-06-01T02:10:01Z")).await;
    assert_eq!(
        report.skipped,
        [("nightly".to_owned(), utc("2026-06-01T02:00:00Z"))]
    );
    release_lock(&engine).await;
    // Once skipped, never started late.
    assert!(tick(&engine, utc("2026-06-01T02:11:00Z"))
        .await
        .started
        .is_empty());
    assert_eq!(
        runs(&engine, "nightly").await,
        [(utc("2026-06-01T02:00:00Z"), "skipped".to_owned())]
    );
    let info = engine.list_schedules().await.unwrap();
    let detail = info[0].last_run.as_ref().unwrap().detail.clone().unwrap();
    assert!(detail.contains("10 min"), "{detail}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'schedule.skip' AND outcome = 'failure'",
    )
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // The next due time still comes.
    let next = tick(&engine, utc("2026-06-02T02:00:00Z")).await;
    assert_eq!(next.started.len(), 1);
}

#[tokio::test]
async fn a_schedule_edited_while_its_run_waits_runs_that_run_once_then_keeps_the_new_timing() {
    let engine = spawn_engine().await;
    add(
        &engine,
        "nightly",
        "0 2 * * *",
        "UTC",
        utc("2026-06-01T00:00:00Z"),
    )
    .await;
    hold_lock(&engine).await;
    tick(&engine, utc("2026-06-01T02:00:00Z")).await;
    let edited = engine
        .edit_schedule(
            "nightly",
            ScheduleChanges {
                cron: Some("30 3 * * *".into()),
                ..Default::default()
            },
            &actor("alice"),
            utc("2026-06-01T02:01:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(edited.next_run_at, Some(utc("2026-06-01T03:30:00Z")));
    release_lock(&engine).await;
    let report = tick(&engine, utc("2026-06-01T02:02:00Z")).await;
    assert_eq!(report.started.len(), 1);
    let report = tick(&engine, utc("2026-06-01T03:30:00Z")).await;
    assert_eq!(
        report.claimed,
        [("nightly".to_owned(), utc("2026-06-01T03:30:00Z"))]
    );
    assert_eq!(scheduled_backups(&engine).await.len(), 2);

    // Turned off while a run waits: the run is skipped, nothing is due.
    hold_lock(&engine).await;
    tick(&engine, utc("2026-06-02T03:30:00Z")).await;
    let off = engine
        .disable_schedule("nightly", &actor("alice"))
        .await
        .unwrap();
    assert_eq!(off.next_run_at, None);
    release_lock(&engine).await;
    assert!(tick(&engine, utc("2026-06-02T03:31:00Z"))
        .await
        .started
        .is_empty());
    let last = runs(&engine, "nightly").await.pop().unwrap();
    assert_eq!(last, (utc("2026-06-02T03:30:00Z"), "skipped".to_owned()));
}

#[tokio::test]
async fn across_daylight_saving_changes_each_day_runs_once() {
    let engine = spawn_engine().await;
    let step = Span::minutes(10);
    // Berlin, spring: 02:30 does not exist on 2026-03-29; it runs at 03:00.
    add(
        &engine,
        "berlin",
        "30 2 * * *",
        "Europe/Berlin",
        utc("2026-03-27T22:00:00Z"),
    )
    .await;
    let claimed = tick_through(
        &engine,
        utc("2026-03-27T22:00:00Z"),
        utc("2026-03-30T12:00:00Z"),
        step,
    )
    .await;
    assert_eq!(
        claimed,
        [
            utc("2026-03-28T01:30:00Z"),
            utc("2026-03-29T01:00:00Z"),
            utc("2026-03-30T00:30:00Z")
        ]
    );
    engine
        .remove_schedule("berlin", &actor("alice"))
        .await
        .unwrap();
    // Berlin, autumn: 02:30 happens twice on 2026-10-25; it runs once.
    add(
        &engine,
        "berlin",
        "30 2 * * *",
        "Europe/Berlin",
        utc("2026-10-23T22:00:00Z"),
    )
    .await;
    let claimed = tick_through(
        &engine,
        utc("2026-10-23T22:00:00Z"),
        utc("2026-10-26T12:00:00Z"),
        step,
    )
    .await;
    assert_eq!(
        claimed,
        [
            utc("2026-10-24T00:30:00Z"),
            utc("2026-10-25T00:30:00Z"),
            utc("2026-10-26T01:30:00Z")
        ]
    );
    engine
        .remove_schedule("berlin", &actor("alice"))
        .await
        .unwrap();
    // New York, both changes of 2026.
    add(
        &engine,
        "ny",
        "30 2 * * *",
        "America/New_York",
        utc("2026-03-07T12:00:00Z"),
    )
    .await;
    let spring = tick_through(
        &engine,
        utc("2026-03-07T12:00:00Z"),
        utc("2026-03-09T12:00:00Z"),
        step,
    )
    .await;
    assert_eq!(
        spring,
        [utc("2026-03-08T07:00:00Z"), utc("2026-03-09T06:30:00Z")]
    );
    engine.remove_schedule("ny", &actor("alice")).await.unwrap();
    add(
        &engine,
        "ny",
        "30 1 * * *",
        "America/New_York",
        utc("2026-10-31T12:00:00Z"),
    )
    .await;
    let autumn = tick_through(
        &engine,
        utc("2026-10-31T12:00:00Z"),
        utc("2026-11-02T12:00:00Z"),
        step,
    )
    .await;
    // 01:30 happens twice on 2026-11-01 (EDT, then EST): once.
    assert_eq!(
        autumn,
        [utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
    );
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_field() {
    let engine = spawn_engine().await;
    let now = utc("2026-06-01T00:00:00Z");
    let try_add = |name: &'static str, cron: &'static str, zone: &'static str| {
        let engine = engine.clone();
        async move {
            engine
                .create_schedule(
                    NewSchedule {
                        name: name.into(),
                        cron: cron.into(),
                        timezone: Some(zone.into()),
                        enabled: true,
                        ..Default::default()
                    },
                    &actor("alice"),
                    now,
                )
                .await
        }
    };
    let e = try_add("x", "0 2 * *", "UTC").await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.starts_with("cron:")),
        "{e}"
    );
    let e = try_add("x", "0 2 * * *", "Mars/Olympus").await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.starts_with("timezone:")),
        "{e}"
    );
    let e = try_add(" ", "0 2 * * *", "UTC").await.unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.starts_with("name:")),
        "{e}"
    );
    try_add("nightly", "0 2 * * *", "UTC").await.unwrap();
    let e = try_add("nightly", "0 3 * * *", "UTC").await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict(m) if m.starts_with("name:")),
        "{e}"
    );
    assert_eq!(engine.list_schedules().await.unwrap().len(), 1);
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'schedule.create' AND outcome = 'failure'",
    )
    .fetch_one(&engine.dbs().control)
    .await
    .unwrap();
    assert_eq!(refused, 4, "every refusal is on record");
}

#[tokio::test]
async fn the_scheduler_sleeps_long_while_nothing_is_due() {
    let engine = spawn_engine().await;
    let now = utc("2026-12-06T10:00:00Z");
    let longest = std::time::Duration::from_secs(15);
    // No schedule at all: it looks again after its longest sleep, not at
    // once (it polled five times a second).
    assert_eq!(engine.until_next_due(now).await.unwrap(), longest);
    add(&engine, "nightly", "30 2 * * *", "UTC", now).await;
    assert_eq!(engine.until_next_due(now).await.unwrap(), longest);
    // Due in three seconds: it wakes then; overdue: shortly.
    let soon = utc("2026-12-07T02:29:57Z");
    assert_eq!(
        engine.until_next_due(soon).await.unwrap(),
        std::time::Duration::from_secs(3)
    );
    let late = utc("2026-12-07T02:31:00Z");
    assert_eq!(
        engine.until_next_due(late).await.unwrap(),
        std::time::Duration::from_millis(200)
    );
}
