//! The databases beside the live one: copies being built
//! (`<db>_restore_<job>`) and previous databases kept for undo
//! (`<db>_pre_restore_<ts>`), named by [`crate::postgres::names`].

use std::time::Duration;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::gates::Room;
use crate::engine::Engine;
use crate::jobs::messages::human;
use crate::postgres::databases::{quote_ident, quote_literal};
use crate::postgres::names::{
    copy_name, copy_pattern, drill_name, drill_pattern, prepared_pattern, previous_pattern,
};
use crate::{Error, Result};

impl Engine {
    /// Creates the empty copy a restore fills, with the live database's
    /// encoding and locale, and gives it to the restore role (see `role`).
    pub(super) async fn create_copy(&self, name: &str) -> Result<()> {
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        let result = async {
            let (encoding, collate, ctype): (String, String, String) = sqlx::query_as(
                "SELECT pg_encoding_to_char(encoding)::text, datcollate::text, datctype::text
                 FROM pg_database WHERE datname = $1",
            )
            .bind(self.dbs().lms_name())
            .fetch_one(&mut admin)
            .await?;
            for statement in [
                format!(
                    "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                    quote_ident(name),
                    quote_literal(&encoding),
                    quote_literal(&collate),
                    quote_literal(&ctype)
                ),
                format!(
                    "ALTER DATABASE {} OWNER TO {}",
                    quote_ident(name),
                    quote_ident(&self.restore_role())
                ),
            ] {
                sqlx::query(&statement).execute(&mut admin).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        let _ = admin.close().await;
        result
    }

    /// Watches the copy grow while pg_restore fills it, and returns an
    /// error as soon as it is larger than its budget or the database
    /// server's disk has less free than the margin (the write-ahead log
    /// counts there); never, without a `room` to watch. An archive can hold
    /// far more than its size suggests, and a full disk on the database
    /// server would take the live database down with the copy.
    pub(super) async fn watch_copy_growth(&self, copy: &str, room: Option<Room>) -> Error {
        let Some(room) = room else {
            return std::future::pending().await;
        };
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            if let Some(outgrown) = self.copy_outgrew(copy, Some(room)).await {
                return outgrown;
            }
            if let Some(free) = self.database_server_free_space().await {
                if free < room.margin {
                    return Error::Invalid(format!(
                        "The database server's disk fell to {} free while the restored copy was \
                         built (the copy and the write-ahead log it writes), below \
                         RESTORE_FREE_SPACE_MARGIN ({}); the restore was stopped before it could \
                         fill the disk, and nothing was changed. Free space on the database \
                         server and try again.",
                        human(free),
                        human(room.margin)
                    ));
                }
            }
        }
    }

    /// The error for a copy larger than its budget, if it is: checked once
    /// more when pg_restore has finished, so a copy that outgrew its budget
    /// between two looks of the watch is refused all the same.
    pub(super) async fn copy_outgrew(&self, copy: &str, room: Option<Room>) -> Option<Error> {
        let budget = room?.copy_budget;
        let size: std::result::Result<i64, _> = sqlx::query_scalar("SELECT pg_database_size($1)")
            .bind(copy)
            .fetch_one(&self.dbs().lms)
            .await;
        match size {
            Ok(size) if size.max(0) as u64 > budget => Some(Error::Invalid(format!(
                "The restored copy grew past {} (the free space on the database server's \
                 disk less RESTORE_FREE_SPACE_MARGIN and the write-ahead log the restore \
                 writes) and was stopped before it could fill the disk; nothing was changed. \
                 The backup holds more than its size suggests: free space on the database \
                 server and try again.",
                human(budget)
            ))),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "could not measure the copy");
                None
            }
        }
    }

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
                Some(job) => vec![
                    copy_name(self.dbs().lms_name(), job),
                    drill_name(self.dbs().lms_name(), job),
                ],
                None => self.shadow_databases().await?,
            };
            self.drop_databases(&names).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = ?e, "could not drop a shadow database");
        }
    }

    /// Every shadow database (`<db>_restore_<job>`, a drill's
    /// `<db>_drill_<job>`, and a preview's `<db>_prepared_<job>` that is not
    /// the recorded prepared copy) there is.
    pub(crate) async fn shadow_databases(&self) -> Result<Vec<String>> {
        let live = self.dbs().lms_name();
        // Without the record, no prepared copy is taken for an orphan.
        let prepared = match self.prepared_copy().await {
            Ok(copy) => Some((prepared_pattern(live), copy.map(|c| c.database_name))),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the prepared copy's record");
                None
            }
        };
        let (pattern, kept) = prepared.unzip();
        Ok(sqlx::query_scalar(
            "SELECT datname::text FROM pg_database
             WHERE datname LIKE $1 OR datname LIKE $2
                OR (datname LIKE $3 AND datname IS DISTINCT FROM $4)",
        )
        .bind(copy_pattern(live))
        .bind(drill_pattern(live))
        .bind(pattern)
        .bind(kept.flatten())
        .fetch_all(&self.dbs().control_or_lms())
        .await?)
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
    pub(super) async fn drop_databases(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        for name in names {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
            let mut attempt = 1;
            loop {
                match sqlx::query(&drop).execute(&mut admin).await {
                    Ok(_) => break,
                    // An autovacuum worker on the database (it has no role)
                    // makes PostgreSQL up to 15 refuse FORCE as if it were
                    // another role's session; it is gone within moments.
                    Err(sqlx::Error::Database(e))
                        if e.code().as_deref() == Some("42501") && attempt < DROP_ATTEMPTS =>
                    {
                        tracing::debug!(database = %name, attempt, "dropping again shortly: {e}");
                        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

/// How often a database is tried to be dropped before giving up (see
/// `drop_databases`).
const DROP_ATTEMPTS: u64 = 8;
