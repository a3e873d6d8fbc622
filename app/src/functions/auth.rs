use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::CurrentUser;
#[cfg(feature = "ssr")]
use crate::{ops, ssr::as_visitor};

/// Signs in; the session cookie comes with the response.
#[server(prefix = "/api/fn", endpoint = "login", input = Json)]
pub async fn login(username: String, password: String) -> Result<CurrentUser, AppError> {
    as_visitor(|state, session, ip| async move {
        let credentials = ops::Credentials { username, password };
        ops::login(&state, &session, ip, credentials).await
    })
    .await
}

/// Signs out (the session is deleted on the server).
#[server(prefix = "/api/fn", endpoint = "logout", input = Json)]
pub async fn logout() -> Result<(), AppError> {
    as_visitor(|state, session, ip| async move { ops::logout(&state, &session, ip).await }).await
}

/// Who is signed in, if anyone. Open to everyone: it reveals nothing but the
/// caller's own account.
#[server(prefix = "/api/fn", endpoint = "whoami", input = Json)]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    as_visitor(|state, session, _| async move { ops::whoami(&state, &session).await }).await
}
