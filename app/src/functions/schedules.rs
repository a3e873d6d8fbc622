use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::{ScheduleForm, ScheduleList, SchedulePreview, ScheduleView};
#[cfg(feature = "ssr")]
use crate::{ops, ssr::as_admin};

/// Every schedule, with the server's zone.
#[server(prefix = "/api/fn", endpoint = "list_schedules", input = Json)]
pub async fn list_schedules() -> Result<ScheduleList, AppError> {
    as_admin(|state, admin| async move { ops::list_schedules(&state, &admin).await }).await
}

/// The next due times of an expression in a zone, before it is saved.
#[server(prefix = "/api/fn", endpoint = "preview_schedule", input = Json)]
pub async fn preview_schedule(
    cron: String,
    timezone: Option<String>,
) -> Result<SchedulePreview, AppError> {
    as_admin(|state, admin| async move {
        ops::preview_schedule(&state, &admin, &cron, timezone.as_deref()).await
    })
    .await
}

/// Adds a schedule, or changes the one named `form.original`.
#[server(prefix = "/api/fn", endpoint = "save_schedule", input = Json)]
pub async fn save_schedule(form: ScheduleForm) -> Result<ScheduleView, AppError> {
    as_admin(|state, admin| async move { ops::save_schedule(&state, &admin, form).await }).await
}

/// Removes a schedule; its backups stay.
#[server(prefix = "/api/fn", endpoint = "remove_schedule", input = Json)]
pub async fn remove_schedule(name: String) -> Result<(), AppError> {
    as_admin(|state, admin| async move { ops::remove_schedule(&state, &admin, &name).await }).await
}
