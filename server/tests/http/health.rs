//! What a monitor polls without a session: liveness, backup health against
//! each schedule's RPO (503 when breached), and the Prometheus metrics
//! behind their token; all of it in maintenance mode too, and none of it
//! telling more than states, ages and schedule names.

use chrono::Utc;
use lms_backup::schedule::NewSchedule;
use lms_backup::users::Role;
use serde_json::Value;

use crate::support::{spawn_app, METRICS_TOKEN};

async fn backups_health(client: &crate::client::ApiClient) -> (u16, Value) {
    let res = client.get("/healthz/backups").send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn a_monitor_sees_backups_stop_without_signing_in() {
    let app = spawn_app().await;
    let monitor = app.client();

    let live = monitor.get("/healthz").send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.text().await.unwrap(), "ok");

    // No schedule: backups happen only when someone clicks.
    let (status, body) = backups_health(&monitor).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["state"], "red");
    assert!(body["reason"]
        .as_str()
        .unwrap()
        .contains("No schedule is enabled"));

    // A schedule with a one-hour RPO and a fresh verified backup of its own.
    let schedule = app
        .engine
        .create_schedule(
            NewSchedule {
                name: "nightly".into(),
                cron: "@daily".into(),
                timezone: Some("Europe/Berlin".into()),
                enabled: true,
                rpo_seconds: Some(3600),
                ..Default::default()
            },
            &lms_backup::testing::actor("alice"),
            Utc::now(),
        )
        .await
        .unwrap();
    let admin = app.signed_in("alice", Role::Admin).await;
    let started = admin.backup_now().await;
    let control = &app.dbs.control;
    sqlx::query("UPDATE backup_history SET schedule_id = $2 WHERE id = $1")
        .bind(started.backup.id)
        .bind(schedule.id)
        .execute(control)
        .await
        .unwrap();
    let (status, body) = backups_health(&monitor).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "green");
    assert_eq!(body["schedules"][0]["name"], "nightly");
    assert_eq!(body["schedules"][0]["rpo_seconds"], 3600);

    // Its last run was skipped: amber, still 200.
    sqlx::query(
        "INSERT INTO schedule_runs (schedule_id, due_at, state, detail)
         VALUES ($1, now(), 'skipped', 'the lock was held past the grace')",
    )
    .bind(schedule.id)
    .execute(control)
    .await
    .unwrap();
    let (status, body) = backups_health(&monitor).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "amber");
    assert!(
        body["reason"].as_str().unwrap().contains("skipped"),
        "{body}"
    );

    // Two hours without a verified backup: the RPO is breached.
    sqlx::query("UPDATE backup_history SET created_at = now() - interval '2 hours'")
        .execute(control)
        .await
        .unwrap();
    let (status, body) = backups_health(&monitor).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["state"], "red");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("\"nightly\"") && reason.contains("2 h"),
        "{reason}"
    );
    let text = body.to_string();
    assert!(
        !text.contains(&started.backup.filename) && !text.contains("alice"),
        "nothing but states, ages and schedule names: {text}"
    );

    // Metrics: refused without the token, then the same story in numbers.
    let anonymous = monitor.get("/metrics").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = monitor
        .get("/metrics")
        .bearer_auth("not-the-token-at-all-000000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let scraped = monitor
        .get("/metrics")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let metrics = scraped.text().await.unwrap();
    for line in [
        "lms_backup_health 2",
        "lms_backup_schedule_health{schedule=\"nightly\"} 2",
        "lms_backup_rpo_seconds{schedule=\"nightly\"} 3600",
        "lms_backup_lock_held 0",
        "lms_backup_catalog_backups{status=\"completed\"} 1",
        "# EOF",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("lms_backup_last_success_timestamp_seconds{schedule=\"nightly\"} ")
            && metrics.contains("lms_backup_last_duration_seconds{operation=\"backup\"} "),
        "{metrics}"
    );

    // In maintenance mode a monitor still gets answers, not the maintenance page.
    lms_backup::settings::maintenance_on(control, "test")
        .await
        .unwrap();
    assert_eq!(monitor.get("/healthz").send().await.unwrap().status(), 200);
    let (status, body) = backups_health(&monitor).await;
    assert_eq!((status, body["state"].as_str()), (503, Some("red")));
    let scraped = monitor
        .get("/metrics")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    lms_backup::settings::maintenance_off(control)
        .await
        .unwrap();
}
