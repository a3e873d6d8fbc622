//! Notification channels from the console and the REST API: list, add,
//! change, remove, send a test. Secrets go in and never come back out;
//! channels the environment configures are shown, locked. Changes are
//! audited under the administrator.

use lms_backup::audit::{self, Event};
use lms_backup::notify::ChannelSettings;
use lms_backup::storage::offsite::Secret;
use lms_types::{AuditAction, AuditOutcome};

use crate::error::AppError;
use crate::models::{ChannelForm, ChannelView, TestAnswer};
use crate::ssr::{AdminUser, AppState};

fn settings(form: ChannelForm) -> ChannelSettings {
    // An empty secret field means "keep the stored one".
    let secret = |s: Option<String>| {
        s.filter(|s| !s.trim().is_empty())
            .map(|s| Secret::new(s.trim()))
    };
    ChannelSettings {
        name: form.name,
        kind: form.kind,
        format: form.format,
        webhook_url: secret(form.webhook_url),
        webhook_secret: secret(form.webhook_secret),
        smtp_url: secret(form.smtp_url),
        email_from: form.email_from,
        email_to: form
            .email_to
            .into_iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        events: form.events,
        enabled: form.enabled,
    }
}

async fn audited(
    state: &AppState,
    admin: &AdminUser,
    action: AuditAction,
    name: &str,
    ok: bool,
    detail: Option<&str>,
) {
    audit::record_or_log(
        &state.engine.dbs().control,
        Event {
            actor: &admin.actor(),
            action,
            target: Some(name),
            outcome: if ok {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            },
            detail,
        },
    )
    .await;
}

/// Every channel, the environment's first.
pub async fn list_channels(
    state: &AppState,
    _admin: &AdminUser,
) -> Result<Vec<ChannelView>, AppError> {
    let channels = state.engine.notification_channels().await?;
    Ok(channels.into_iter().map(ChannelView::from).collect())
}

/// Adds a channel.
pub async fn create_channel(
    state: &AppState,
    admin: &AdminUser,
    form: ChannelForm,
) -> Result<ChannelView, AppError> {
    let settings = settings(form);
    let result = state.engine.create_channel(&settings).await;
    let detail = result.as_ref().err().map(|e| e.to_string());
    audited(
        state,
        admin,
        AuditAction::ChannelCreate,
        settings.name.trim(),
        result.is_ok(),
        detail.as_deref(),
    )
    .await;
    Ok(result?.into())
}

/// Changes the channel named `name`.
pub async fn update_channel(
    state: &AppState,
    admin: &AdminUser,
    name: &str,
    form: ChannelForm,
) -> Result<ChannelView, AppError> {
    let settings = settings(form);
    let result = state.engine.update_channel(name, &settings).await;
    let detail = result.as_ref().err().map(|e| e.to_string());
    audited(
        state,
        admin,
        AuditAction::ChannelEdit,
        name,
        result.is_ok(),
        detail.as_deref(),
    )
    .await;
    Ok(result?.into())
}

/// Removes the channel named `name` and what it had still to send.
pub async fn delete_channel(
    state: &AppState,
    admin: &AdminUser,
    name: &str,
) -> Result<(), AppError> {
    let result = state.engine.delete_channel(name).await;
    let detail = result.as_ref().err().map(|e| e.to_string());
    audited(
        state,
        admin,
        AuditAction::ChannelRemove,
        name,
        result.is_ok(),
        detail.as_deref(),
    )
    .await;
    Ok(result?)
}

/// Sends a test message to the channel named `name` and waits for the
/// receiver's answer.
pub async fn test_channel(
    state: &AppState,
    admin: &AdminUser,
    name: &str,
) -> Result<TestAnswer, AppError> {
    let outcome = state.engine.send_test(name, &admin.actor().name).await?;
    let answer = match outcome {
        Ok(answer) => TestAnswer {
            delivered: true,
            answer,
        },
        Err(why) => TestAnswer {
            delivered: false,
            answer: why,
        },
    };
    audited(
        state,
        admin,
        AuditAction::ChannelTest,
        name,
        answer.delivered,
        Some(&answer.answer),
    )
    .await;
    Ok(answer)
}
