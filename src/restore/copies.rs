//! The databases beside the live one: copies being built
//! (`<db>_restore_<job>`) and previous databases kept for undo
//! (`<db>_pre_restore_<ts>`), named by [`crate::postgres::names`].

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::engine::Engine;
use crate::postgres::databases::quote_ident;
use crate::postgres::names::{copy_name, copy_pattern, previous_pattern};
use crate::Result;

impl Engine {
    /// Databases kept from before restores, newest first.
    pub async fn previous_databases(&self) -> Result<Vec<String>> {
        let pattern = previous_pattern(self.dbs().lms_name());
        Ok(sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY datname DESC",
        )
        .bind(pattern)
        .fetch_all(&self.dbs().control_or_lms())
        .await?)
    }

    /// Drops shadow databases: those of `job` (after it ends), or with `None`
    /// every one not belonging to a live job (start-up recovery).
    pub(crate) async fn drop_shadows(&self, job: Option<Uuid>) {
        let result = async {
            let names: Vec<String> = match job {
                Some(job) => vec![copy_name(self.dbs().lms_name(), job)],
                None => self.shadow_databases().await?,
            };
            self.drop_databases(&names).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = ?e, "could not drop a shadow database");
        }
    }

    /// Every shadow database (`<db>_restore_<job>`) there is.
    pub(crate) async fn shadow_databases(&self) -> Result<Vec<String>> {
        let pattern = copy_pattern(self.dbs().lms_name());
        Ok(
            sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
                .bind(pattern)
                .fetch_all(&self.dbs().control_or_lms())
                .await?,
        )
    }

    /// Keeps `RESTORE_KEEP_PREVIOUS` previous databases, drops older ones.
    pub(crate) async fn trim_previous_databases(&self) -> Result<()> {
        let keep = self.config().restore_keep_previous as usize;
        let old: Vec<String> = self
            .previous_databases()
            .await?
            .into_iter()
            .skip(keep)
            .collect();
        self.drop_databases(&old).await
    }

    /// Drops databases beside the LMS one (ending their sessions).
    async fn drop_databases(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        for name in names {
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .execute(&mut admin)
            .await?;
        }
        Ok(())
    }
}
