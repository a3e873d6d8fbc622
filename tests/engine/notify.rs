//! Notifications against real receivers: the SMTP server the test script
//! runs (aiosmtpd, keeping each message in a maildir), and a webhook
//! receiver here that checks the signature as a real one would. Each test
//! sends to its own recipient and receiver, so they run in parallel.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use hmac::{Hmac, Mac};
use lms_backup::notify::{
    channels, ChannelSettings, EmailSettings, NotifyConfig, WebhookSettings, SIGNATURE_HEADER,
};
use lms_backup::postgres::tools as pgtools;
use lms_backup::schedule::NewSchedule;
use lms_backup::storage::offsite::Secret;
use lms_backup::testing::{
    actor, spawn_engine_with, start_manual_backup, wait_for_job, wait_until, wrapped_pg_dump,
};
use lms_backup::Engine;
use lms_types::{ChannelKind, JobStatus, NotifyEvent, WebhookFormat};
use sha2::Sha256;

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    event_id: String,
    body: serde_json::Value,
    signature_ok: bool,
}

/// A webhook receiver on the loopback: verifies `X-LMS-Signature` with its
/// secret, answers with the status it is told to (503: "down"), and keeps
/// what it accepted, de-duplicated by nothing (so a test sees every copy).
#[derive(Clone)]
struct Receiver {
    url: String,
    secret: String,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(secret: &str) -> Self {
        let receiver = Receiver {
            url: String::new(),
            secret: secret.to_owned(),
            status: Arc::new(AtomicU16::new(200)),
            got: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hooks/T0K3N-in-the-path",
            listener.local_addr().unwrap()
        );
        let app = axum::Router::new()
            .route("/hooks/{token}", axum::routing::post(Self::take))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, ..receiver }
    }

    async fn take(State(me): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let status = StatusCode::from_u16(me.status.load(Ordering::SeqCst)).unwrap();
        if !status.is_success() {
            return status;
        }
        let signature_ok = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| verify(&me.secret, v, &body));
        if !signature_ok {
            return StatusCode::UNAUTHORIZED;
        }
        me.got.lock().unwrap().push(Received {
            event_id: headers
                .get("x-lms-event-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: serde_json::from_slice(&body).unwrap(),
            signature_ok,
        });
        StatusCode::OK
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn settings(&self, secret: &str) -> WebhookSettings {
        WebhookSettings {
            url: Secret::new(&self.url),
            secret: Some(Secret::new(secret)),
            format: WebhookFormat::Generic,
        }
    }
}

/// Checks a signature header as a receiver's documentation would tell it
/// to: HMAC-SHA256 of "<t>.<raw body>", compared in constant time.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(expected) = hex::decode(v1) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The messages the SMTP test server kept for `to`.
fn mails_to(to: &str) -> Vec<String> {
    let dir =
        std::env::var("TEST_SMTP_MAILDIR").expect("TEST_SMTP_MAILDIR (scripts/test.sh sets it)");
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(std::path::Path::new(&dir).join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
            {
                found.push(text);
            }
        }
    }
    found
}

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
async fn restores_are_announced_when_they_start_and_end() {
    let receiver = Receiver::start("s").await;
    let engine = engine_with(NotifyConfig::default()).await;
    let events = [NotifyEvent::RestoreStarted, NotifyEvent::RestoreFinished];
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
    let mut events: Vec<String> = receiver
        .got()
        .iter()
        .map(|r| r.body["event"].as_str().unwrap().to_owned())
        .collect();
    events.sort();
    // Only what the channel chose: the backup's success is not among them.
    assert_eq!(events, ["restore_finished", "restore_started"]);
}
