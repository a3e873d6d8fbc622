use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{CreatedToken, TokenForm, TokenView};
#[cfg(feature = "ssr")]
use crate::{ops, ssr::as_admin};

/// Every API token, live ones first; never a secret.
#[server(prefix = "/api/fn", endpoint = "list_tokens", input = Json)]
pub async fn list_tokens() -> Result<Vec<TokenView>, AppError> {
    as_admin(|state, admin| async move { ops::list_tokens(&state, &admin).await }).await
}

/// Creates an API token; the answer holds its secret, once.
#[server(prefix = "/api/fn", endpoint = "create_token", input = Json)]
pub async fn create_token(form: TokenForm) -> Result<CreatedToken, AppError> {
    as_admin(|state, admin| async move { ops::create_token(&state, &admin, form).await }).await
}

/// Revokes the live API token named `name`.
#[server(prefix = "/api/fn", endpoint = "revoke_token", input = Json)]
pub async fn revoke_token(name: String) -> Result<TokenView, AppError> {
    as_admin(|state, admin| async move { ops::revoke_token(&state, &admin, &name).await }).await
}
