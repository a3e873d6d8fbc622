//! Sending one message: the webhook bodies (this product's own JSON, signed;
//! Slack/Mattermost; Teams/Discord) and the e-mail. Errors say what the
//! receiver did in words, never a URL (it may hold a token) or a password.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use lms_types::{NotifyEvent, WebhookFormat};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

use super::channels::Destination;
use super::{EmailSettings, Notice, WebhookSettings};

/// The header a signed webhook carries: `t=<unix seconds>,v1=<hex HMAC-SHA256
/// of "<t>.<raw body>">`.
pub const SIGNATURE_HEADER: &str = "X-LMS-Signature";
/// The event's id, for the receiver to drop a second delivery.
pub const EVENT_ID_HEADER: &str = "X-LMS-Event-Id";
/// The event's kind.
pub const EVENT_HEADER: &str = "X-LMS-Event";

/// How long one delivery may take before it counts as failed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// What the receiver answered to a delivery that worked.
pub type Answer = String;

/// One message to send: the event and its words.
pub(crate) struct Outgoing<'a> {
    pub id: Uuid,
    pub kind: NotifyEvent,
    pub at: DateTime<Utc>,
    pub notice: &'a Notice,
    pub console_url: Option<&'a str>,
}

/// The signature header's value for `body` sent at `t` (unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl Outgoing<'_> {
    /// The message as text: what happened, since when, what was done, what
    /// to do, where to look.
    pub fn text(&self) -> String {
        let n = self.notice;
        let mut text = format!("{}\n\n{}\n", n.title, n.happened);
        if let Some(since) = n.since {
            text.push_str(&format!(
                "\nSince: {}\n",
                since.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        if !n.done.is_empty() {
            text.push_str(&format!("\nWhat was done: {}\n", n.done));
        }
        if !n.todo.is_empty() {
            text.push_str(&format!("\nWhat to do: {}\n", n.todo));
        }
        if let Some(url) = self.console_url {
            text.push_str(&format!("\nConsole: {url}\n"));
        }
        text.push_str(&format!(
            "\nEvent {} ({}), {}\n",
            self.id,
            self.kind,
            self.at.to_rfc3339()
        ));
        text
    }

    /// The webhook body in `format`.
    pub fn webhook_body(&self, format: WebhookFormat) -> serde_json::Value {
        let n = self.notice;
        match format {
            WebhookFormat::Generic => json!({
                "id": self.id,
                "event": self.kind,
                "occurred_at": self.at,
                "severity": n.severity,
                "title": n.title,
                "happened": n.happened,
                "since": n.since,
                "done": n.done,
                "todo": n.todo,
                "backup": n.backup,
                "job": n.job,
                "console_url": self.console_url,
                "text": self.text(),
            }),
            WebhookFormat::Slack => json!({
                "text": format!("*{}*\n{}", n.title, self.text_without_title()),
            }),
            WebhookFormat::Teams => json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": n.title,
                "title": n.title,
                "themeColor": match n.severity {
                    super::Severity::Critical => "C4314B",
                    super::Severity::Warning => "F2C811",
                    super::Severity::Info => "0078D7",
                },
                "text": self.text_without_title().replace('\n', "<br>"),
                // Discord reads `content`.
                "content": format!("**{}**\n{}", n.title, self.text_without_title()),
            }),
        }
    }

    fn text_without_title(&self) -> String {
        let text = self.text();
        text.split_once("\n\n")
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or(text)
    }
}

/// Sends one message to `destination`; the receiver's answer, or why it
/// did not take it.
pub(crate) async fn send(
    destination: &Destination,
    message: &Outgoing<'_>,
) -> std::result::Result<Answer, String> {
    match destination {
        Destination::Webhook(webhook) => post(webhook, message).await,
        Destination::Email(email) => mail(email, message).await,
    }
}

async fn post(
    webhook: &WebhookSettings,
    message: &Outgoing<'_>,
) -> std::result::Result<Answer, String> {
    let body = serde_json::to_vec(&message.webhook_body(webhook.format))
        .map_err(|e| format!("the message could not be written ({e})"))?;
    let client = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("lms-admin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("no HTTP client ({})", e.without_url()))?;
    let mut request = client
        .post(webhook.url.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, message.id.to_string())
        .header(EVENT_HEADER, message.kind.as_str());
    if let Some(secret) = &webhook.secret {
        request = request.header(
            SIGNATURE_HEADER,
            sign(secret.expose(), Utc::now().timestamp(), &body),
        );
    }
    let response = request.body(body).send().await.map_err(|e| {
        let e = e.without_url();
        if e.is_timeout() {
            format!(
                "the receiver did not answer within {} s",
                SEND_TIMEOUT.as_secs()
            )
        } else if e.is_connect() {
            format!("could not connect to the receiver ({})", root_cause(&e))
        } else {
            format!("the request failed ({})", root_cause(&e))
        }
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let said = said(&text);
    if status.is_success() {
        Ok(format!("HTTP {status}{said}"))
    } else {
        Err(format!("the receiver answered HTTP {status}{said}"))
    }
}

/// The first words of what a receiver said, on one line.
fn said(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        String::new()
    } else if line.chars().count() > 200 {
        format!(": {}…", line.chars().take(200).collect::<String>())
    } else {
        format!(": {line}")
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The transport an SMTP URL names: `smtps://` is TLS from the start;
/// `smtp://` upgrades with STARTTLS, required when it carries a password
/// (a password never crosses the network in clear), else when offered.
/// `?tls=required|opportunistic` overrides for `smtp://`.
fn transport(url: &str) -> std::result::Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("the SMTP URL is not a URL ({e})"))?;
    let host = parsed
        .host_str()
        .ok_or("the SMTP URL names no host")?
        .to_owned();
    let tls =
        || TlsParameters::new(host.clone()).map_err(|e| format!("TLS cannot be set up ({e})"));
    let asked = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let credentials = match parsed.password() {
        Some(password) => {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| "the SMTP URL's user or password is not UTF-8".to_owned())
            };
            Some(Credentials::new(
                decode(parsed.username())?,
                decode(password)?,
            ))
        }
        None => None,
    };
    let (tls, default_port) = match (parsed.scheme(), asked.as_deref()) {
        ("smtps", _) => (Tls::Wrapper(tls()?), 465),
        ("smtp", Some("required")) => (Tls::Required(tls()?), 587),
        ("smtp", Some("opportunistic")) if credentials.is_none() => {
            (Tls::Opportunistic(tls()?), 587)
        }
        ("smtp", Some("opportunistic")) => {
            return Err(
                "tls=opportunistic would send the SMTP password in clear to a server \
                        without STARTTLS: use tls=required or smtps://"
                    .into(),
            )
        }
        ("smtp", None) if credentials.is_some() => (Tls::Required(tls()?), 587),
        ("smtp", None) => (Tls::Opportunistic(tls()?), 587),
        ("smtp", Some(other)) => {
            return Err(format!(
                "tls={other} in the SMTP URL: use required or opportunistic"
            ))
        }
        (scheme, _) => {
            return Err(format!(
                "the SMTP URL's scheme is {scheme}: use smtp or smtps"
            ))
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
        .port(parsed.port().unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok(builder.build())
}

async fn mail(
    email: &EmailSettings,
    message: &Outgoing<'_>,
) -> std::result::Result<Answer, String> {
    let from = email
        .from
        .parse()
        .map_err(|_| format!("the sender \"{}\" is not an e-mail address", email.from))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(format!("[LMS backups] {}", message.notice.title))
        .message_id(Some(format!("<{}@lms-admin>", message.id)))
        .date(std::time::SystemTime::from(message.at));
    for to in &email.to {
        builder = builder.to(to
            .parse()
            .map_err(|_| format!("the recipient \"{to}\" is not an e-mail address"))?);
    }
    let mail = builder
        .header(ContentType::TEXT_PLAIN)
        .body(message.text())
        .map_err(|e| format!("the e-mail could not be written ({e})"))?;
    let transport = transport(email.smtp_url.expose())?;
    let response = transport.send(mail).await.map_err(|e| {
        if let Some(code) = e.status() {
            format!("the SMTP server refused it ({code}: {})", root_cause(&e))
        } else if e.is_timeout() {
            format!(
                "the SMTP server did not answer within {} s",
                SEND_TIMEOUT.as_secs()
            )
        } else {
            format!("the SMTP server could not be reached ({})", root_cause(&e))
        }
    })?;
    Ok(format!(
        "SMTP {} {}",
        response.code(),
        response.message().collect::<Vec<_>>().join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_time_dot_body() {
        // Checked against an HMAC-SHA256 computed by another implementation
        // (Python's hmac module) for this key, time and body.
        let header = sign("s3cret", 1700000000, br#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn chat_bodies_carry_the_words_where_each_service_reads_them() {
        let notice = Notice {
            title: "Backup failed".into(),
            severity: super::super::Severity::Critical,
            happened: "The backup started by alice failed: no room.".into(),
            since: None,
            done: "Nothing was kept.".into(),
            todo: "Free some space.".into(),
            backup: None,
            job: None,
        };
        let message = Outgoing {
            id: Uuid::nil(),
            kind: NotifyEvent::BackupFailed,
            at: Utc::now(),
            notice: &notice,
            console_url: Some("https://lms.example.test/admin"),
        };
        let slack = message.webhook_body(WebhookFormat::Slack);
        let text = slack["text"].as_str().unwrap();
        assert!(text.starts_with("*Backup failed*\n"), "{text}");
        assert!(
            text.contains("What to do: Free some space.")
                && text.contains("https://lms.example.test/admin")
        );
        let teams = message.webhook_body(WebhookFormat::Teams);
        assert_eq!(teams["@type"], "MessageCard");
        assert_eq!(teams["title"], "Backup failed");
        assert!(teams["text"].as_str().unwrap().contains("<br>"));
        assert!(teams["content"]
            .as_str()
            .unwrap()
            .starts_with("**Backup failed**"));
        let generic = message.webhook_body(WebhookFormat::Generic);
        assert_eq!(generic["event"], "backup_failed");
        assert_eq!(generic["severity"], "critical");
    }

    #[test]
    fn smtp_passwords_never_go_in_clear() {
        assert!(transport("smtp://u:p@mail.example:25?tls=opportunistic").is_err());
        assert!(transport("smtp://u:p@mail.example:25").is_ok());
        assert!(transport("smtps://u:p@mail.example").is_ok());
        let err = transport("http://u:p@mail.example").unwrap_err();
        assert!(!err.contains(":p@"), "{err}");
    }
}
