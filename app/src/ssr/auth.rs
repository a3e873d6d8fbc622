//! Sessions and the admin check. Every server function and REST route calls
//! [`require_admin`] (directly, through [`AdminUser`] or
//! [`admin_from_context`]) before it does anything else.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use http::request::Parts;
use lms_backup::audit::{self, Actor, Event};
use lms_backup::users::{self, Role, User};
use lms_types::{AuditAction, AuditOutcome};
use tower_sessions::Session;

use super::AppState;
use crate::error::AppError;

const USER_ID_KEY: &str = "user_id";

/// The client's address, from the TCP connection (forwarding headers are
/// not trusted: anyone can write them).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// A signed-in user together with where the request came from.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user: User,
    pub ip: Option<IpAddr>,
}

impl SessionUser {
    /// The actor to name in the audit log and on jobs.
    pub fn actor(&self) -> Actor {
        Actor {
            id: Some(self.user.id),
            name: self.user.username.clone(),
            client_ip: self.ip.map(|ip| ip.to_string()),
        }
    }
}

/// The user behind a session, if it is signed in to an active account.
pub async fn current_user(state: &AppState, session: &Session) -> Result<Option<User>, AppError> {
    let id: Option<i64> = session.get(USER_ID_KEY).await.map_err(|e| {
        tracing::error!(error = %e, "session store failed");
        AppError::internal()
    })?;
    let Some(id) = id else { return Ok(None) };
    // A restore's switch ends every connection to the LMS database: the
    // pool's next use of an ended one fails once, a fresh one works. While
    // the switch itself runs the database takes no connections at all:
    // that is "try again in a moment" (503), not a server error.
    let found = match users::get(&state.dbs().lms, id).await {
        Ok(found) => found,
        Err(first) => {
            tracing::warn!(error = %first, "reading the signed-in user failed; trying once more");
            users::get(&state.dbs().lms, id).await.map_err(|e| {
                tracing::error!(error = %e, "the LMS database is not reachable");
                AppError::Unavailable(
                    "The LMS database is not reachable right now (a restore may be switching it). \
                     Try again in a few seconds."
                        .into(),
                )
            })?
        }
    };
    match found {
        Some(user) if user.is_active => Ok(Some(user)),
        _ => {
            // The account was removed or disabled since sign-in.
            let _ = session.flush().await;
            Ok(None)
        }
    }
}

/// 401 without a signed-in user, 403 for anyone but an administrator.
pub async fn require_admin(
    state: &AppState,
    session: &Session,
    ip: ClientIp,
) -> Result<SessionUser, AppError> {
    let user = current_user(state, session)
        .await?
        .ok_or_else(AppError::unauthorized)?;
    if user.role != Role::Admin {
        return Err(AppError::admins_only());
    }
    Ok(SessionUser { user, ip: ip.0 })
}

/// Extractor for REST handlers: the request's admin, or a 401/403 response.
pub struct AdminUser(pub SessionUser);

impl<S> FromRequestParts<S> for AdminUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::internal())?;
        let ip = ClientIp::from_request_parts(parts, state)
            .await
            .unwrap_or(ClientIp(None));
        require_admin(&app, &session, ip).await.map(AdminUser)
    }
}

/// The admin check for server functions, reading the request from context.
pub async fn admin_from_context() -> Result<(AppState, SessionUser), AppError> {
    let (state, session, ip) = request_context().await?;
    let admin = require_admin(&state, &session, ip).await?;
    Ok((state, admin))
}

/// State, session and client address of the server function's request.
pub async fn request_context() -> Result<(AppState, Session, ClientIp), AppError> {
    let state = leptos::prelude::use_context::<AppState>().ok_or_else(AppError::internal)?;
    let session: Session = leptos_axum::extract().await.map_err(|e| {
        tracing::error!(error = %e, "no session layer");
        AppError::internal()
    })?;
    let ip: ClientIp = leptos_axum::extract().await.unwrap_or(ClientIp(None));
    Ok((state, session, ip))
}

/// Checks the credentials and signs the session in. Rate-limited per address
/// and username; every outcome is audited; the error never says whether the
/// username exists.
pub async fn sign_in(
    state: &AppState,
    session: &Session,
    ip: ClientIp,
    username: &str,
    password: &str,
) -> Result<User, AppError> {
    let username = username.trim();
    let attempt = Actor {
        id: None,
        name: username.chars().take(64).collect(),
        client_ip: ip.0.map(|ip| ip.to_string()),
    };
    if let Err(wait) = state.login_limiter.check(ip.0, username) {
        audit::record_or_log(
            &state.dbs().control,
            Event {
                actor: &attempt,
                action: AuditAction::Login,
                target: None,
                outcome: AuditOutcome::Denied,
                detail: Some("rate limited"),
            },
        )
        .await;
        let secs = wait.as_secs().max(1);
        return Err(AppError::RateLimited {
            message: format!("Too many sign-in attempts. Try again in {secs} seconds."),
            retry_after_secs: secs,
        });
    }
    let Some(user) = users::authenticate(&state.dbs().lms, username, password).await? else {
        audit::record_or_log(
            &state.dbs().control,
            Event {
                actor: &attempt,
                action: AuditAction::Login,
                target: None,
                outcome: AuditOutcome::Failure,
                detail: None,
            },
        )
        .await;
        return Err(AppError::Unauthorized(
            "Invalid username or password.".into(),
        ));
    };
    // A new id at sign-in, so a session id planted before it is worthless.
    session.cycle_id().await.map_err(|_| AppError::internal())?;
    session
        .insert(USER_ID_KEY, user.id)
        .await
        .map_err(|_| AppError::internal())?;
    let actor = Actor {
        id: Some(user.id),
        ..attempt
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
    Ok(user)
}

/// Ends the session on the server (the id is deleted from the store).
pub async fn sign_out(state: &AppState, session: &Session, ip: ClientIp) -> Result<(), AppError> {
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
