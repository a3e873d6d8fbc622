//! Sessions live in the control database, so they survive a server restart,
//! are shared by every instance, and are untouched by an LMS restore (which
//! then deletes them all on purpose).

use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::PgPool;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// Where the sessions are (the sqlx store's default schema and table).
const TABLE: &str = "tower_sessions.session";

/// Ends every session: the engine calls this after a restore or undo (the
/// users table changed), so everyone signs in again.
pub fn sign_out_everyone(control: &PgPool) -> BoxFuture<'_, lms_backup::Result<()>> {
    Box::pin(async move {
        sqlx::query(&format!("DELETE FROM {TABLE}"))
            .execute(control)
            .await?;
        Ok(())
    })
}

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "lms_admin_session";

/// Creates the session table if needed and starts the task that deletes
/// expired sessions.
pub async fn store(control: &PgPool) -> Result<PostgresStore, sqlx::Error> {
    let store = PostgresStore::new(control.clone());
    store.migrate().await?;
    let cleaner = store.clone();
    tokio::spawn(async move {
        use tower_sessions::ExpiredDeletion;
        if let Err(e) = cleaner
            .continuously_delete_expired(Duration::from_secs(600))
            .await
        {
            tracing::error!(error = %e, "expired-session cleanup stopped");
        }
    });
    Ok(store)
}

/// The session layer: HttpOnly, SameSite=Strict, Secure when configured,
/// expiring after eight idle hours.
pub fn layer(store: PostgresStore, secure: bool) -> SessionManagerLayer<PostgresStore> {
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)))
}
