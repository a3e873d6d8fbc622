//! API tokens from the console and the REST API: list, create (the secret
//! is in the answer and nowhere else), revoke. Only a signed-in
//! administrator manages tokens: no token can make or revoke another.

use chrono::Utc;
use lms_backup::tokens::NewToken;

use crate::error::AppError;
use crate::models::{CreatedToken, TokenForm, TokenView};
use crate::ssr::{AdminUser, AppState};

fn signed_in(admin: &AdminUser) -> Result<(), AppError> {
    match admin.user() {
        Some(_) => Ok(()),
        None => Err(AppError::Forbidden(
            "API tokens are managed by a signed-in administrator, not with a token.".into(),
        )),
    }
}

/// Every token, live ones first; never a secret.
pub async fn list_tokens(state: &AppState, admin: &AdminUser) -> Result<Vec<TokenView>, AppError> {
    signed_in(admin)?;
    let tokens = state.engine.list_tokens().await?;
    Ok(tokens.into_iter().map(TokenView::from).collect())
}

/// Creates a token; audited under the administrator.
pub async fn create_token(
    state: &AppState,
    admin: &AdminUser,
    form: TokenForm,
) -> Result<CreatedToken, AppError> {
    signed_in(admin)?;
    let created = state
        .engine
        .create_token(
            NewToken {
                name: form.name,
                scopes: form.scopes,
                expires_days: form.expires_days,
            },
            &admin.actor(),
            Utc::now(),
        )
        .await?;
    Ok(CreatedToken {
        token: created.info.into(),
        secret: created.secret,
    })
}

/// Revokes the live token named `name`; audited.
pub async fn revoke_token(
    state: &AppState,
    admin: &AdminUser,
    name: &str,
) -> Result<TokenView, AppError> {
    signed_in(admin)?;
    let revoked = state.engine.revoke_token(name, &admin.actor()).await?;
    Ok(revoked.into())
}
