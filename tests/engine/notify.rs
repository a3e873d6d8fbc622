//! Notifications against real receivers: the SMTP server the test script
//! runs (aiosmtpd, keeping each message in a maildir), and a webhook
//! receiver here that checks the signature as a real one would. Each test
//! sends to its own recipient and receiver, so they run in parallel.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use lms_backup::notify::{channels, ChannelSettings, EmailSettings, NotifyConfig};
use lms_backup::postgres::tools as pgtools;
use lms_backup::schedule::NewSchedule;
use lms_backup::storage::offsite::Secret;
use lms_backup::testing::mails_to;
use lms_backup::testing::webhook::WebhookReceiver as Receiver;
use lms_backup::testing::{
    actor, spawn_engine_with, start_manual_backup, wait_for_job, wait_until, wrapped_pg_dump,
};
use lms_backup::Engine;
use lms_types::{ChannelKind, JobStatus, NotifyEvent, WebhookFormat};

fn smtp_url() -> String {
    std::env::var("TEST_SMTP_URL").expect("TEST_SMTP_URL (scripts/test.sh sets it)")
}

fn unique_address(what: &str) -> String {
    format!("{what}-{}@example.test", uuid::Uuid::new_v4().simple())
}

async fn engine_with(notify: NotifyConfig) -> Engine {
    let engine = spawn_engine_with(|c| {
        c.notify = NotifyConfig {
            retry_after: Duration::from_millis(50),
            ..notify
        }
    })
    .await;
    engine.sync_env_channels().await.unwrap();
    engine
}

/// Delivers until `done` holds (every pass sends what is due).
async fn deliver_until(engine: &Engine, what: &str, mut done: impl FnMut() -> bool) {
    wait_until(what, async || {
        engine.deliver_due().await.unwrap();
        done().then_some(())
    })
    .await
}

/// A console-made webhook channel's settings.
fn webhook_channel(
    name: &str,
    url: &str,
    secret: Option<&str>,
    events: &[NotifyEvent],
) -> ChannelSettings {
    ChannelSettings {
        name: name.into(),
        kind: ChannelKind::Webhook,
        format: WebhookFormat::Generic,
        webhook_url: Some(Secret::new(url)),
        webhook_secret: secret.map(Secret::new),
        smtp_url: None,
        email_from: None,
        email_to: vec![],
        events: events.to_vec(),
        enabled: true,
    }
}

/// An engine whose pg_dump fails at once.
async fn failing_backups(engine: &Engine) -> Engine {
    let dir = wrapped_pg_dump(
        engine.tools(),
        "echo 'pg_dump: error: the disk said no' >&2\nexit 1",
    );
    engine.with_tools(pgtools::locate(Some(&dir)).await.unwrap())
}

#[tokio::test]
async fn a_failed_backup_is_told_once_by_email_and_by_a_signed_webhook() {
    let receiver = Receiver::start("hook-secret").await;
    let to = unique_address("failed");
    let engine = engine_with(NotifyConfig {
        email: Some(EmailSettings {
            smtp_url: Secret::new(smtp_url()),
            from: "backups@example.test".into(),
            to: vec![to.clone()],
        }),
        webhook: Some(receiver.settings("hook-secret")),
        console_url: Some("https://lms.example.test/admin".into()),
        ..Default::default()
    })
    .await;
    let failing = failing_backups(&engine).await;

    let started = start_manual_backup(&failing, &actor("alice"))
        .await
        .unwrap();
    let job = wait_for_job(&engine, started.job.id).await;
    assert_eq!(job.status, JobStatus::Failed);

    deliver_until(&engine, "the e-mail and the webhook", || {
        !receiver.got().is_empty() && !mails_to(&to).is_empty()
    })
    .await;
    // Nothing is left to send, and nothing more arrives.
    let again = engine.deliver_due().await.unwrap();
    assert_eq!((again.delivered, again.failed), (0, 0));

    let hooks = receiver.got();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let hook = &hooks[0];
    assert!(hook.signature_ok);
    assert_eq!(hook.body["event"], "backup_failed");
    assert_eq!(hook.body["id"].as_str(), Some(hook.event_id.as_str()));
    assert_eq!(hook.body["job"].as_str(), Some(job.id.to_string().as_str()));
    let happened = hook.body["happened"].as_str().unwrap();
    assert!(happened.contains("alice"), "{happened}");
    assert!(hook.body["todo"].as_str().unwrap().contains("console"));
    assert_eq!(hook.body["console_url"], "https://lms.example.test/admin");

    let mails = mails_to(&to);
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.contains("Subject: [LMS backups] Backup failed"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("Message-ID: <{}@lms-admin>", hook.event_id)),
        "{mail}"
    );
    assert!(mail.contains("What to do:"), "{mail}");
    assert!(mail.contains("https://lms.example.test/admin"), "{mail}");
    // Neither carries internals: no path, no SQL, no stderr verbatim.
    for text in [mail.as_str(), &hook.body.to_string()] {
        assert!(!text.contains("/tmp/"), "{text}");
        assert!(!text.contains("SELECT"), "{text}");
    }

    let channels = engine.notification_channels().await.unwrap();
    assert!(
        channels
            .iter()
            .all(|c| c.last_delivered_at.is_some() && c.waiting == 0),
        "{channels:?}"
    );
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_the_message_once_when_it_is_back() {
    let receiver = Receiver::start("s").await;
    receiver.status.store(503, Ordering::SeqCst);
    let engine = engine_with(NotifyConfig {
        webhook: Some(receiver.settings("s")),
        ..Default::default()
    })
    .await;
    let failing = failing_backups(&engine).await;
    let started = start_manual_backup(&failing, &actor("alice"))
        .await
        .unwrap();
    wait_for_job(&engine, started.job.id).await;

    // Down: each try fails, the channel says so, the job is unaffected.
    let channel = wait_until("the channel to be failing", async || {
        engine.deliver_due().await.unwrap();
        let c = engine
            .notification_channel(channels::ENV_WEBHOOK)
            .await
            .unwrap();
        (c.consecutive_failures >= 2).then_some(c)
    })
    .await;
    assert!(channel.failing_since.is_some());
    assert!(
        channel.last_error.as_deref().unwrap().contains("HTTP 503"),
        "{channel:?}"
    );
    assert_eq!(channel.waiting, 1);
    assert!(receiver.got().is_empty());

    receiver.status.store(200, Ordering::SeqCst);
    deliver_until(&engine, "the delivery after the receiver is back", || {
        !receiver.got().is_empty()
    })
    .await;
    engine.deliver_due().await.unwrap();
    assert_eq!(receiver.got().len(), 1);
    let channel = engine
        .notification_channel(channels::ENV_WEBHOOK)
        .await
        .unwrap();
    assert_eq!(
        (
            channel.failing_since,
            channel.consecutive_failures,
            channel.waiting
        ),
        (None, 0, 0)
    );
}

#[tokio::test]
async fn two_instances_deliver_each_event_once() {
    let receiver = Receiver::start("s").await;
    let a = engine_with(NotifyConfig {
        webhook: Some(receiver.settings("s")),
        ..Default::default()
    })
    .await;
    let b = Engine::new(a.dbs().clone(), a.tools().clone(), a.config().clone())
        .await
        .unwrap();
    // Twenty events at once, both instances delivering as fast as they can.
    let notice = lms_backup::notify::Notice {
        title: "Backup failed".into(),
        severity: lms_backup::notify::Severity::Critical,
        happened: "A test event.".into(),
        since: None,
        done: String::new(),
        todo: String::new(),
        backup: None,
        job: None,
    };
    let mut ids = Vec::new();
    for _ in 0..20 {
        let mut conn = a.dbs().control.acquire().await.unwrap();
        let id = lms_backup::notify::record(&mut conn, NotifyEvent::BackupFailed, &notice, None)
            .await
            .unwrap()
            .unwrap();
        ids.push(id.to_string());
    }
    let run = |engine: Engine| async move {
        for _ in 0..10 {
            engine.deliver_due().await.unwrap();
        }
    };
    tokio::join!(run(a.clone()), run(b.clone()));
    wait_until("every event delivered", async || {
        a.deliver_due().await.unwrap();
        (receiver.got().len() >= ids.len()).then_some(())
    })
    .await;
    let mut got: Vec<String> = receiver.got().into_iter().map(|r| r.event_id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "each event exactly once");
}

#[tokio::test]
async fn the_dead_mans_switch_fires_once_when_nothing_happens() {
    let receiver = Receiver::start("s").await;
    let engine = engine_with(NotifyConfig {
        webhook: Some(receiver.settings("s")),
        ..Default::default()
    })
    .await;
    let now = Utc::now();
    engine
        .create_schedule(
            NewSchedule {
                name: "nightly".into(),
                cron: "0 3 * * *".into(),
                timezone: Some("UTC".into()),
                notes_template: None,
                enabled: true,
                rpo_seconds: Some(3600),
                policy: Default::default(),
            },
            &actor("alice"),
            now,
        )
        .await
        .unwrap();
    // Within the RPO: quiet.
    assert_eq!(engine.watch_for_trouble(now).await.unwrap(), 0);
    // Two hours on, with no backup at all: once, whoever looks and however often.
    let later = now + chrono::Duration::hours(2);
    let other = Engine::new(
        engine.dbs().clone(),
        engine.tools().clone(),
        engine.config().clone(),
    )
    .await
    .unwrap();
    assert_eq!(engine.watch_for_trouble(later).await.unwrap(), 1);
    assert_eq!(engine.watch_for_trouble(later).await.unwrap(), 0);
    assert_eq!(
        other
            .watch_for_trouble(later + chrono::Duration::minutes(5))
            .await
            .unwrap(),
        0
    );
    deliver_until(&engine, "the RPO breach", || !receiver.got().is_empty()).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["event"], "rpo_breached");
    assert!(got[0].body["title"].as_str().unwrap().contains("nightly"));
    assert!(
        got[0].body["happened"]
            .as_str()
            .unwrap()
            .contains("1 h 0 min"),
        "{:?}",
        got[0].body
    );
}

#[tokio::test]
async fn a_wrong_signing_secret_is_refused_by_the_receiver_and_said_so() {
    let receiver = Receiver::start("the-right-one").await;
    let engine = engine_with(NotifyConfig {
        webhook: Some(receiver.settings("a-wrong-one")),
        ..Default::default()
    })
    .await;
    let answer = engine
        .send_test(channels::ENV_WEBHOOK, "alice")
        .await
        .unwrap();
    let why = answer.unwrap_err();
    assert!(why.contains("HTTP 401"), "{why}");
    // The URL's token is never in what is shown.
    assert!(!why.contains("T0K3N"), "{why}");
    assert!(receiver.got().is_empty());
}

#[tokio::test]
async fn send_test_shows_the_receivers_answer() {
    let receiver = Receiver::start("s").await;
    let to = unique_address("test");
    let engine = engine_with(NotifyConfig::default()).await;
    engine
        .create_channel(&webhook_channel(
            "ops hook",
            &receiver.url,
            Some("s"),
            &[NotifyEvent::BackupFailed],
        ))
        .await
        .unwrap();
    engine
        .create_channel(&ChannelSettings {
            name: "ops mail".into(),
            kind: ChannelKind::Email,
            format: WebhookFormat::Generic,
            webhook_url: None,
            webhook_secret: None,
            smtp_url: Some(Secret::new(smtp_url())),
            email_from: Some("backups@example.test".into()),
            email_to: vec![to.clone()],
            events: vec![NotifyEvent::BackupFailed],
            enabled: true,
        })
        .await
        .unwrap();
    let hook = engine
        .send_test("ops hook", "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hook, "HTTP 200 OK");
    assert_eq!(receiver.got()[0].body["event"], "test");
    let mail = engine
        .send_test("ops mail", "alice")
        .await
        .unwrap()
        .unwrap();
    assert!(mail.starts_with("SMTP 250"), "{mail}");
    assert_eq!(mails_to(&to).len(), 1);

    // What the console lists never holds a secret.
    let listed = serde_json::to_string(&engine.notification_channels().await.unwrap()).unwrap();
    assert!(!listed.contains("T0K3N"), "{listed}");
    assert!(
        listed.contains(&receiver.url[..receiver.url.find("/hooks").unwrap()]),
        "{listed}"
    );

    // An unreachable receiver is said in words, without the URL.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let changed = ChannelSettings {
        format: WebhookFormat::Slack,
        ..webhook_channel(
            "ops hook",
            &format!("http://{closed}/T0K3N"),
            None,
            &[NotifyEvent::BackupFailed],
        )
    };
    engine.update_channel("ops hook", &changed).await.unwrap();
    let why = engine
        .send_test("ops hook", "alice")
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        why.starts_with("could not connect to the receiver"),
        "{why}"
    );
    assert!(!why.contains("T0K3N"), "{why}");
    // The signing secret stayed (left out of the change).
    assert!(
        engine
            .notification_channel("ops hook")
            .await
            .unwrap()
            .signed
    );
}

#[tokio::test]
async fn restores_and_undos_are_announced_when_they_start_and_end() {
    let receiver = Receiver::start("s").await;
    let engine = engine_with(NotifyConfig::default()).await;
    let events = [
        NotifyEvent::RestoreStarted,
        NotifyEvent::RestoreFinished,
        NotifyEvent::UndoStarted,
        NotifyEvent::UndoFinished,
    ];
    engine
        .create_channel(&webhook_channel(
            "restores",
            &receiver.url,
            Some("s"),
            &events,
        ))
        .await
        .unwrap();
    let who = actor("alice");
    let backup = start_manual_backup(&engine, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, backup.job.id).await.status,
        JobStatus::Succeeded
    );
    let restore = engine
        .start_restore(backup.backup.id, true, &who)
        .await
        .unwrap();
    assert_eq!(
        wait_for_job(&engine, restore.id).await.status,
        JobStatus::Succeeded
    );
    deliver_until(&engine, "both restore messages", || {
        receiver.got().len() >= 2
    })
    .await;
    let kinds = |receiver: &Receiver| {
        let mut kinds: Vec<String> = receiver
            .got()
            .iter()
            .map(|r| r.body["event"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        kinds
    };
    // Only what the channel chose: the backup's success is not among them.
    assert_eq!(kinds(&receiver), ["restore_finished", "restore_started"]);

    let undo = engine.start_undo(true, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, undo.id).await.status,
        JobStatus::Succeeded
    );
    deliver_until(&engine, "both undo messages", || receiver.got().len() >= 4).await;
    assert_eq!(
        kinds(&receiver),
        [
            "restore_finished",
            "restore_started",
            "undo_finished",
            "undo_started"
        ]
    );
    let undone = receiver
        .got()
        .into_iter()
        .find(|r| r.body["event"] == "undo_finished")
        .unwrap();
    let words = undone.body.to_string();
    assert!(words.contains(&undo.id.to_string()), "{words}");
    assert_eq!(undone.body["severity"], "info", "{words}");
}

/// The events recorded so far: (kind, title), oldest first.
async fn events(engine: &Engine) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kind, payload->>'title' FROM notification_events ORDER BY created_at, id",
    )
    .fetch_all(&engine.dbs().control)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_failing_off_site_copy_is_told_once_per_streak() {
    let bucket = format!("t-notify-{}", uuid::Uuid::new_v4().simple());
    let engine = spawn_engine_with(|c| {
        c.offsite = Some(lms_backup::testing::s3_target(&bucket, ""));
        c.offsite_retry_after = Duration::ZERO;
    })
    .await;
    // Someone listens for failed copies (a receiver that is not there).
    let wanted = [NotifyEvent::OffsiteFailed];
    engine
        .create_channel(&webhook_channel(
            "copies",
            "http://127.0.0.1:9/",
            None,
            &wanted,
        ))
        .await
        .unwrap();
    let who = actor("alice");
    let started = start_manual_backup(&engine, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, started.job.id).await.status,
        JobStatus::Succeeded
    );
    // Tried again, failing again: still one message.
    engine.offsite_pass().await.unwrap();
    engine.offsite_pass().await.unwrap();
    let told = events(&engine).await;
    assert_eq!(
        told,
        [(
            "offsite_failed".to_owned(),
            "Off-site copy failed".to_owned()
        )],
        "{told:?}"
    );
    let payload: serde_json::Value = sqlx::query_scalar("SELECT payload FROM notification_events")
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
    let happened = payload["happened"].as_str().unwrap();
    assert!(
        happened.contains(&started.backup.filename) && happened.contains("does not exist"),
        "{happened}"
    );
    assert!(payload["done"]
        .as_str()
        .unwrap()
        .contains("kept here, verified"));

    // It works once the bucket is there; a later failure is a new streak.
    lms_backup::testing::s3_request("PUT", &format!("/{bucket}"), b"").await;
    engine.offsite_pass().await.unwrap();
    assert_eq!(events(&engine).await.len(), 1);
}

#[tokio::test]
async fn a_backup_stopped_by_releasing_its_lock_is_told_as_interrupted() {
    let base = spawn_engine_with(|_| {}).await;
    let dump = lms_backup::testing::Gate::new();
    let bin = lms_backup::testing::gated_tools(base.tools(), Some(&dump), None);
    let engine = base.with_tools(pgtools::locate(Some(&bin)).await.unwrap());
    engine
        .create_channel(&webhook_channel(
            "ops",
            "http://127.0.0.1:9/",
            None,
            // Its own end, whatever it says, is not told a second time.
            &[NotifyEvent::BackupFailed, NotifyEvent::BackupSucceeded],
        ))
        .await
        .unwrap();
    let started = start_manual_backup(&engine, &actor("alice")).await.unwrap();
    dump.reached().await;
    engine.force_release_lock(&actor("bob")).await.unwrap();
    dump.open();
    wait_for_job(&engine, started.job.id).await;
    // The job's own end comes after: it must not tell a second time.
    wait_until("the job's own end (its audit entry)", async || {
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE action = 'backup.create' AND actor_name = 'alice'",
        )
        .fetch_one(&engine.dbs().control)
        .await
        .unwrap();
        (ended > 0).then_some(())
    })
    .await;
    let told = events(&engine).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        told[0],
        ("backup_failed".to_owned(), "Backup interrupted".to_owned())
    );
}

#[tokio::test]
async fn a_stuck_lock_is_told_once() {
    let receiver = Receiver::start("s").await;
    let engine = engine_with(NotifyConfig {
        webhook: Some(receiver.settings("s")),
        ..Default::default()
    })
    .await;
    // Held since long ago by a process that stopped renewing it.
    sqlx::query(
        "INSERT INTO operation_lock (id, holder_instance, job_id, operation_type, locked_by_name,
                                     locked_at, heartbeat_at)
         VALUES (1, 'gone:1:x:y:z', NULL, 'backup', 'alice', now() - interval '7 hours',
                 now() - interval '7 hours')",
    )
    .execute(&engine.dbs().control)
    .await
    .unwrap();
    let now = Utc::now();
    assert_eq!(engine.watch_for_trouble(now).await.unwrap(), 1);
    assert_eq!(
        engine
            .watch_for_trouble(now + chrono::Duration::minutes(1))
            .await
            .unwrap(),
        0
    );
    deliver_until(&engine, "the stuck lock", || !receiver.got().is_empty()).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["event"], "lock_stuck");
    let happened = got[0].body["happened"].as_str().unwrap();
    assert!(
        happened.contains("alice") && happened.contains("stopped renewing"),
        "{happened}"
    );
    assert!(got[0].body["todo"]
        .as_str()
        .unwrap()
        .contains("/api/admin/backup/lock/release"));
}

#[tokio::test]
async fn the_daily_digest_is_told_once_a_day_after_its_time() {
    let receiver = Receiver::start("d").await;
    let engine = engine_with(NotifyConfig::default()).await;
    engine
        .create_channel(&webhook_channel(
            "digest",
            &receiver.url,
            Some("d"),
            &[NotifyEvent::DailyDigest],
        ))
        .await
        .unwrap();
    let who = actor("alice");
    let good = start_manual_backup(&engine, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, good.job.id).await.status,
        JobStatus::Succeeded
    );
    let failing = failing_backups(&engine).await;
    let bad = start_manual_backup(&failing, &who).await.unwrap();
    assert_eq!(
        wait_for_job(&engine, bad.job.id).await.status,
        JobStatus::Failed
    );

    let seven = chrono::NaiveTime::from_hms_opt(7, 0, 0).unwrap();
    let early = Utc::now()
        .date_naive()
        .and_hms_opt(6, 59, 0)
        .unwrap()
        .and_utc();
    assert!(
        !engine.record_digest(early, seven).await.unwrap(),
        "not before its time"
    );
    let now = Utc::now();
    assert!(engine
        .record_digest(now, chrono::NaiveTime::MIN)
        .await
        .unwrap());
    // Once a day, however often (and by however many instances) it is looked at.
    assert!(!engine
        .record_digest(now, chrono::NaiveTime::MIN)
        .await
        .unwrap());
    deliver_until(&engine, "the digest", || !receiver.got().is_empty()).await;
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    let digest = &got[0].body;
    assert_eq!(digest["event"], "daily_digest");
    let happened = digest["happened"].as_str().unwrap();
    assert!(
        happened.contains("In the past 24 hours: 1 verified backup"),
        "{happened}"
    );
    assert!(happened.contains(", 1 failed."), "{happened}");
    assert!(
        happened.contains(&format!("Newest verified backup: {}", good.backup.filename)),
        "{happened}"
    );
    assert!(
        happened.contains("No restore drill has run yet."),
        "{happened}"
    );
    // No schedule: backups happen only when someone starts one, which the
    // digest says plainly.
    assert_eq!(digest["title"], "Daily backup digest: backups at risk");
    assert_eq!(digest["severity"], "critical");
    assert!(
        digest["todo"]
            .as_str()
            .unwrap()
            .contains("No schedule is enabled"),
        "{digest}"
    );

    // The next day's is another.
    assert!(engine
        .record_digest(now + chrono::Duration::days(1), chrono::NaiveTime::MIN)
        .await
        .unwrap());
    deliver_until(&engine, "the second digest", || receiver.got().len() >= 2).await;
}
