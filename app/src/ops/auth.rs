//! Signing in and out, and who is signed in: the operations open to
//! everyone (they reveal nothing but the caller's own account).

use lms_backup::audit::{self, Actor, Event, Refusal};
use lms_backup::users;
use lms_types::{AuditAction, AuditOutcome};
use tower_sessions::Session;

use super::Credentials;
use crate::error::AppError;
use crate::models::CurrentUser;
use crate::ssr::{attach_user, current_user, AppState, ClientIp, SessionUser, MAX_USERNAME_BYTES};

/// Checks the credentials and signs the session in. Rate-limited per address
/// and per username at an address; the error never says whether the
/// username exists. A success is audited as itself; refusals are counted
/// into one row per address and window, under the name tried, cut short and
/// marked unverified.
pub async fn login(
    state: &AppState,
    session: &Session,
    ip: ClientIp,
    credentials: Credentials,
) -> Result<CurrentUser, AppError> {
    // Before anything holds on to it: the limiter, the database, the log.
    if credentials.username.len() > MAX_USERNAME_BYTES {
        return Err(AppError::Invalid(format!(
            "A username is at most {MAX_USERNAME_BYTES} bytes long."
        )));
    }
    let username = credentials.username.trim();
    if let Err(wait) = state.login_limiter.check(ip.0, username) {
        audit_refused(state, ip, username, AuditOutcome::Denied).await;
        let secs = wait.as_secs().max(1);
        return Err(AppError::RateLimited {
            message: format!("Too many sign-in attempts. Try again in {secs} seconds."),
            retry_after_secs: secs,
        });
    }
    let Some(user) = users::authenticate(&state.dbs().lms, username, &credentials.password).await?
    else {
        audit_refused(state, ip, username, AuditOutcome::Failure).await;
        return Err(AppError::Unauthorized(
            "Invalid username or password.".into(),
        ));
    };
    attach_user(session, &user).await?;
    let actor = Actor {
        id: Some(user.id),
        name: user.username.clone(),
        client_ip: ip.0.map(|ip| ip.to_string()),
    };
    audit::record_or_log(
        &state.dbs().control,
        Event {
            actor: &actor,
            action: AuditAction::Login,
            target: None,
            outcome: AuditOutcome::Success,
            detail: None,
        },
    )
    .await;
    Ok(user.into())
}

/// Counts a refused sign-in into its address's row for the window.
async fn audit_refused(state: &AppState, ip: ClientIp, username: &str, outcome: AuditOutcome) {
    let address = ip.0.map(|ip| ip.to_string());
    let actor = Actor {
        id: None,
        name: audit::unverified_name(username),
        client_ip: address.clone(),
    };
    let counted = if outcome == AuditOutcome::Denied {
        "rate-limited sign-ins"
    } else {
        "refused sign-ins"
    };
    audit::tally_or_log(
        &state.dbs().control,
        &Refusal {
            actor: &actor,
            action: AuditAction::Login,
            outcome,
            source: address.as_deref().unwrap_or("an unknown address"),
            tried: &username.to_lowercase(),
            target: None,
            counted,
            distinct: "usernames",
        },
    )
    .await;
}

/// Ends the session on the server (the id is deleted from the store); the
/// sign-out is audited when someone was signed in.
pub async fn logout(state: &AppState, session: &Session, ip: ClientIp) -> Result<(), AppError> {
    if let Some(user) = current_user(state, session).await? {
        let actor = SessionUser { user, ip: ip.0 }.actor();
        audit::record_or_log(
            &state.dbs().control,
            Event {
                actor: &actor,
                action: AuditAction::Logout,
                target: None,
                outcome: AuditOutcome::Success,
                detail: None,
            },
        )
        .await;
    }
    session.flush().await.map_err(|_| AppError::internal())
}

/// Who is signed in, if anyone.
pub async fn whoami(state: &AppState, session: &Session) -> Result<Option<CurrentUser>, AppError> {
    Ok(current_user(state, session).await?.map(Into::into))
}
