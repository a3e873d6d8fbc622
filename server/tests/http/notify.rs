//! Notifications from real `lms-admin serve` processes: configured by
//! environment, delivered after the server is killed between recording and
//! delivering, and e-mail through a submission server that requires
//! STARTTLS and a password (the test script's second SMTP server).

use std::sync::atomic::Ordering;

use lms_backup::notify::{Notice, Severity};
use lms_backup::testing::wait_until;
use lms_backup::testing::webhook::WebhookReceiver;
use lms_types::NotifyEvent;
use serde_json::Value;
use sqlx::PgPool;

use crate::crash::{create_admin, lms_admin, sign_in, start, start_logging};

fn base_env(url: String, backups: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", url),
        ("BACKUP_DIR", backups.display().to_string()),
        ("NOTIFY_RETRY_AFTER", "1".to_string()),
    ]
}

async fn control(env: &[(&str, String)]) -> PgPool {
    let url = &env.iter().find(|(k, _)| *k == "DATABASE_URL").unwrap().1;
    PgPool::connect(&format!("{url}_control")).await.unwrap()
}

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("notify-{}", uuid::Uuid::new_v4().simple()));
    crate::support::backup_dir_in(&dir)
}

#[tokio::test]
async fn a_server_killed_between_recording_and_delivering_delivers_after_restart_once() {
    let receiver = WebhookReceiver::start("restart-secret").await;
    // Down at first: the first server records the event and fails to send it.
    receiver.status.store(503, Ordering::SeqCst);
    let backups = scratch();
    let mut env = base_env(lms_backup::testing::fresh_database_url().await, &backups);
    env.push(("NOTIFY_WEBHOOK_URL", receiver.url.clone()));
    env.push(("NOTIFY_WEBHOOK_SECRET", "restart-secret".to_string()));
    create_admin(&env);
    let mut first = start(&env).await;
    let control = control(&env).await;
    // An outcome recorded as the engine records one (its own transaction).
    let notice = Notice {
        title: "Backup failed".into(),
        severity: Severity::Critical,
        happened: "The backup started by alice failed: the disk said no".into(),
        since: None,
        done: String::new(),
        todo: "Look at the job.".into(),
        backup: None,
        job: None,
    };
    let mut conn = control.acquire().await.unwrap();
    let id = lms_backup::notify::record(&mut conn, NotifyEvent::BackupFailed, &notice, None)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    wait_until("the first server to have tried and failed", async || {
        let attempts: Option<i32> = sqlx::query_scalar(
            "SELECT attempts FROM notification_deliveries WHERE event_id = $1 AND answer IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&control)
        .await
        .unwrap();
        attempts.filter(|a| *a >= 1)
    })
    .await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    receiver.status.store(200, Ordering::SeqCst);

    let _second = start(&env).await;
    wait_until("the delivery after the restart", async || {
        (!receiver.got().is_empty()).then_some(())
    })
    .await;
    let delivered: Option<chrono::DateTime<chrono::Utc>> =
        wait_until("it to be recorded", async || {
            sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
                "SELECT delivered_at FROM notification_deliveries WHERE event_id = $1",
            )
            .bind(id)
            .fetch_one(&control)
            .await
            .unwrap()
            .map(Some)
        })
        .await;
    assert!(delivered.is_some());
    let got = receiver.got();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].event_id, id.to_string());
    assert!(got[0].signature_ok);
}

fn tls_sink() -> (String, String) {
    (
        std::env::var("TEST_SMTP_TLS_URL").expect("TEST_SMTP_TLS_URL (scripts/test.sh sets it)"),
        std::env::var("TEST_SMTP_TLS_CA").expect("TEST_SMTP_TLS_CA (scripts/test.sh sets it)"),
    )
}

/// The environment channel's test, through the REST API.
async fn test_env_email(server: &crate::crash::Server) -> Value {
    let client = sign_in(server).await;
    let response = client
        .post("/api/admin/channels/e-mail%20(environment)/test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn e_mail_goes_over_starttls_with_a_password_that_is_never_shown() {
    let (url, ca) = tls_sink();
    // smtp://notify:PASSWORD@host:port
    let password = url["smtp://notify:".len()..url.rfind('@').unwrap()].to_owned();
    let to = format!("tls-{}@example.test", uuid::Uuid::new_v4().simple());
    let backups = scratch();
    let mut env = base_env(lms_backup::testing::fresh_database_url().await, &backups);
    env.extend([
        ("SMTP_URL", url.clone()),
        ("NOTIFY_EMAIL_FROM", "backups@example.test".to_string()),
        ("NOTIFY_EMAIL_TO", to.clone()),
        // The test CA: the sink's certificate is for 127.0.0.1.
        ("SSL_CERT_FILE", ca.clone()),
        ("RUST_LOG", "debug".to_string()),
    ]);
    create_admin(&env);
    let log = backups.parent().unwrap().join("server.log");
    let server = start_logging(&env, Some(&log)).await;

    let answer = test_env_email(&server).await;
    assert_eq!(answer["delivered"], true, "{answer}");
    assert!(
        answer["answer"].as_str().unwrap().starts_with("SMTP 250"),
        "{answer}"
    );
    let mail = wait_until("the e-mail in the sink", async || {
        lms_backup::testing::mails_to(&to).into_iter().next()
    })
    .await;
    assert!(
        mail.contains("Subject: [LMS backups] Test message"),
        "{mail}"
    );

    // The channel as the console shows it: the server, not the password.
    let client = sign_in(&server).await;
    let listed = client
        .get("/api/admin/channels")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains("127.0.0.1"), "{listed}");
    assert!(!listed.contains(&password));
    drop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains(&password), "the SMTP password is in the log");

    // A wrong password: refused, said so, and the password still not shown.
    let wrong = url.replace(&password, "not-the-password");
    let env: Vec<_> = env
        .into_iter()
        .map(|(k, v)| {
            if k == "SMTP_URL" {
                (k, wrong.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    let server = start(&env).await;
    let answer = test_env_email(&server).await;
    assert_eq!(answer["delivered"], false, "{answer}");
    let why = answer["answer"].as_str().unwrap();
    assert!(why.contains("refused") && why.contains("535"), "{why}");
    assert!(!why.contains("not-the-password"), "{why}");
}

#[tokio::test]
async fn a_half_configured_channel_stops_the_server_with_a_clear_message() {
    let backups = scratch();
    let mut env = base_env(lms_backup::testing::fresh_database_url().await, &backups);
    env.push((
        "SMTP_URL",
        "smtp://notify:hunter2-secret@127.0.0.1:2525".to_string(),
    ));
    let out = lms_admin(&env)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("NOTIFY_EMAIL_FROM"), "{said}");
    assert!(!said.contains("hunter2-secret"), "{said}");

    let mut env = base_env(lms_backup::testing::fresh_database_url().await, &backups);
    env.push((
        "NOTIFY_WEBHOOK_URL",
        "ftp://hooks.example.test/T0K3N".to_string(),
    ));
    let out = lms_admin(&env)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("NOTIFY_WEBHOOK_URL") && said.contains("https://"),
        "{said}"
    );
    assert!(!said.contains("T0K3N"), "{said}");
}
