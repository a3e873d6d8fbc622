//! Sessions and the admin check. Every admin server function and REST route
//! gets an [`AdminUser`] (from [`admin_from_context`] or as an extractor)
//! before it does anything else; the operations in [`crate::ops`] take one
//! as proof, so none of them can run without the check.

use std::net::IpAddr;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use lms_backup::audit::Actor;
use lms_backup::tokens::TokenGrant;
use lms_backup::users::{self, Role, User};
use tower_sessions::Session;

use super::{AppState, ClientIp};
use crate::error::AppError;

const USER_ID_KEY: &str = "user_id";

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
) -> Result<AdminUser, AppError> {
    let user = current_user(state, session)
        .await?
        .ok_or_else(AppError::unauthorized)?;
    if user.role != Role::Admin {
        return Err(AppError::admins_only());
    }
    Ok(AdminUser(Principal::Session(SessionUser {
        user,
        ip: ip.0,
    })))
}

/// An administrator, or an API token acting for one: the proof the
/// operations layer asks for. Only [`require_admin`] and the extractor make
/// one (the field is private); REST handlers take it as an extractor that
/// answers 401/403 first.
#[derive(Debug, Clone)]
pub struct AdminUser(Principal);

#[derive(Debug, Clone)]
enum Principal {
    Session(SessionUser),
    /// A live token, checked by the server's token gate against the scope
    /// of the route it called (see [`VerifiedToken`]).
    Token {
        grant: TokenGrant,
        ip: Option<IpAddr>,
    },
}

/// Put in a request's extensions by the server's token gate once the
/// request's bearer token is live and its scopes open the route called.
/// Nothing else makes one.
#[derive(Debug, Clone)]
pub struct VerifiedToken(pub TokenGrant);

impl AdminUser {
    /// The actor to name in the audit log and on jobs (`token:NAME` for a
    /// token).
    pub fn actor(&self) -> Actor {
        match &self.0 {
            Principal::Session(user) => user.actor(),
            Principal::Token { grant, ip } => grant.actor(ip.map(|ip| ip.to_string())),
        }
    }

    /// The administrator's account; `None` for an API token.
    pub fn user(&self) -> Option<&User> {
        match &self.0 {
            Principal::Session(user) => Some(&user.user),
            Principal::Token { .. } => None,
        }
    }
}

impl<S> FromRequestParts<S> for AdminUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ip = ClientIp::from_request_parts(parts, state)
            .await
            .unwrap_or(ClientIp(None));
        if let Some(VerifiedToken(grant)) = parts.extensions.get::<VerifiedToken>() {
            return Ok(AdminUser(Principal::Token {
                grant: grant.clone(),
                ip: ip.0,
            }));
        }
        let app = AppState::from_ref(state);
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::internal())?;
        require_admin(&app, &session, ip).await
    }
}

/// The admin check for server functions, reading the request from context.
pub async fn admin_from_context() -> Result<(AppState, AdminUser), AppError> {
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

/// Signs the session in as `user`, under a new session id so that an id
/// planted before sign-in is worthless.
pub(crate) async fn attach_user(session: &Session, user: &User) -> Result<(), AppError> {
    session.cycle_id().await.map_err(|_| AppError::internal())?;
    session
        .insert(USER_ID_KEY, user.id)
        .await
        .map_err(|_| AppError::internal())
}
