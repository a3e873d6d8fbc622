use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{ChannelForm, ChannelView, TestAnswer};
#[cfg(feature = "ssr")]
use crate::{ops, ssr::as_admin};

/// Every notification channel; never a secret.
#[server(prefix = "/api/fn", endpoint = "list_channels", input = Json)]
pub async fn list_channels() -> Result<Vec<ChannelView>, AppError> {
    as_admin(|state, admin| async move { ops::list_channels(&state, &admin).await }).await
}

/// Adds a notification channel (`name` empty) or changes the one named
/// `name`.
#[server(prefix = "/api/fn", endpoint = "save_channel", input = Json)]
pub async fn save_channel(name: String, form: ChannelForm) -> Result<ChannelView, AppError> {
    as_admin(|state, admin| async move {
        if name.is_empty() {
            ops::create_channel(&state, &admin, form).await
        } else {
            ops::update_channel(&state, &admin, &name, form).await
        }
    })
    .await
}

/// Removes the notification channel named `name`.
#[server(prefix = "/api/fn", endpoint = "remove_channel", input = Json)]
pub async fn remove_channel(name: String) -> Result<(), AppError> {
    as_admin(|state, admin| async move { ops::delete_channel(&state, &admin, &name).await }).await
}

/// Sends a test message to the channel named `name`; the receiver's answer.
#[server(prefix = "/api/fn", endpoint = "test_channel", input = Json)]
pub async fn test_channel(name: String) -> Result<TestAnswer, AppError> {
    as_admin(|state, admin| async move { ops::test_channel(&state, &admin, &name).await }).await
}
