//! What belongs to the LMS database rather than to its contents, and so is
//! not in an archive (pg_restore without `--create` leaves it out): who may
//! connect to it and create temporary tables (its ACL), its settings
//! (`ALTER DATABASE … SET`), the application role's settings in it
//! (`ALTER ROLE … IN DATABASE … SET`), its connection limit and its comment.
//! A restore carries them from the live database to the copy before the
//! switch, so the database the site runs on after a restore behaves as
//! before; settings PostgreSQL keeps per database would otherwise stay with
//! the replaced one.
//!
//! Settings other roles have in the LMS database can only be set again by a
//! superuser or by those roles, so a restore refuses, before anything
//! changes, while there are any, and names them.

use sqlx::{Connection, PgConnection};

use crate::engine::Engine;
use crate::postgres::databases::{quote_ident, quote_literal};
use crate::{Error, Result};

/// The live database's own properties.
pub(super) struct DatabaseProfile {
    /// `None`: the default ACL (PUBLIC may connect and create temporary
    /// tables). Otherwise (grantee, privilege, grantable); grantee `None`
    /// is PUBLIC.
    acl: Option<Vec<(Option<String>, String, bool)>>,
    /// `name=value` settings of the database.
    settings: Vec<String>,
    /// `name=value` settings of the application role in the database.
    own_settings: Vec<String>,
    connection_limit: i32,
    comment: Option<String>,
}

impl Engine {
    /// Reads the live database's properties; refuses when some cannot be
    /// carried (settings of other roles in it, settings the application
    /// role may not make).
    pub(super) async fn live_database_profile(&self) -> Result<DatabaseProfile> {
        let lms = &self.dbs().lms;
        let (acl_is_default, connection_limit, comment): (bool, i32, Option<String>) =
            sqlx::query_as(
                "SELECT datacl IS NULL, datconnlimit, shobj_description(oid, 'pg_database')
                 FROM pg_database WHERE datname = current_database()",
            )
            .fetch_one(lms)
            .await?;
        let acl = if acl_is_default {
            None
        } else {
            Some(
                sqlx::query_as(
                    "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE a.grantee::regrole::text END,
                            a.privilege_type, a.is_grantable
                     FROM pg_database d, aclexplode(d.datacl) a
                     WHERE d.datname = current_database()
                     ORDER BY 1 NULLS FIRST, 2",
                )
                .fetch_all(lms)
                .await?,
            )
        };
        let rows: Vec<(Option<String>, Vec<String>)> = sqlx::query_as(
            "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE s.setrole::regrole::text END, s.setconfig
             FROM pg_db_role_setting s, pg_database d
             WHERE d.datname = current_database() AND s.setdatabase = d.oid",
        )
        .fetch_all(lms)
        .await?;
        let app = quote_ident(self.dbs().lms_options.get_username());
        let mut profile = DatabaseProfile {
            acl,
            settings: Vec::new(),
            own_settings: Vec::new(),
            connection_limit,
            comment,
        };
        let mut others = Vec::new();
        for (role, config) in rows {
            match role {
                None => profile.settings = config,
                // regrole prints a role as an identifier, quoted when it must be.
                Some(role) if role == app || quote_ident(&role) == app => {
                    profile.own_settings = config
                }
                Some(role) => others.push(format!("{role} ({})", config.join(", "))),
            }
        }
        if !others.is_empty() {
            let db = self.dbs().lms_name();
            return Err(Error::Invalid(format!(
                "Other roles have settings in the LMS database that a restore cannot carry to the \
                 restored database (only a superuser may set them): {}. Nothing was changed. Make \
                 them settings of the roles themselves (ALTER ROLE name SET …), or remove them \
                 (ALTER ROLE name IN DATABASE \"{db}\" RESET ALL) and set them again after the \
                 restore.",
                others.join("; ")
            )));
        }
        self.check_settings_can_be_made(&profile).await?;
        Ok(profile)
    }

    /// Every setting can be made by the application role (tried in a
    /// transaction that is rolled back).
    async fn check_settings_can_be_made(&self, profile: &DatabaseProfile) -> Result<()> {
        let mut tx = self.dbs().lms.begin().await?;
        for setting in profile.settings.iter().chain(&profile.own_settings) {
            let (name, value) = split_setting(setting)?;
            let tried = sqlx::query("SELECT set_config($1, $2, true)")
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await;
            if let Err(e) = tried {
                return Err(Error::Invalid(format!(
                    "The LMS database's setting {setting} cannot be carried to the restored \
                     database by the application role ({}). Nothing was changed. Remove it, \
                     restore, and have a superuser set it again.",
                    db_message(&e)
                )));
            }
        }
        tx.rollback().await?;
        Ok(())
    }

    /// Gives the copy (owned by the application role by now) the live
    /// database's properties.
    pub(super) async fn carry_to_copy(&self, copy: &str, profile: &DatabaseProfile) -> Result<()> {
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        let result = apply(
            &mut admin,
            copy,
            profile,
            self.dbs().lms_options.get_username(),
        )
        .await;
        let _ = admin.close().await;
        result
    }
}

async fn apply(
    conn: &mut PgConnection,
    copy: &str,
    profile: &DatabaseProfile,
    app: &str,
) -> Result<()> {
    let db = quote_ident(copy);
    let mut statements = vec![format!(
        "ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true CONNECTION LIMIT {}",
        profile.connection_limit
    )];
    statements.push(match &profile.comment {
        Some(text) => format!("COMMENT ON DATABASE {db} IS {}", quote_literal(text)),
        None => format!("COMMENT ON DATABASE {db} IS NULL"),
    });
    if let Some(acl) = &profile.acl {
        statements.push(format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"));
        statements.push(format!(
            "REVOKE ALL ON DATABASE {db} FROM {}",
            quote_ident(app)
        ));
        for (grantee, privilege, grantable) in acl {
            let to = match grantee {
                // regrole output is already an identifier.
                Some(role) => role.clone(),
                None => "PUBLIC".to_owned(),
            };
            let option = if *grantable { " WITH GRANT OPTION" } else { "" };
            statements.push(format!(
                "GRANT {privilege} ON DATABASE {db} TO {to}{option}"
            ));
        }
    }
    for statement in statements {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    // Each setting is made in this session first (so its value is parsed
    // exactly as PostgreSQL parses a stored setting), then stored for the
    // copy with FROM CURRENT.
    for (settings, target) in [
        (&profile.settings, format!("DATABASE {db}")),
        (
            &profile.own_settings,
            format!("ROLE {} IN DATABASE {db}", quote_ident(app)),
        ),
    ] {
        for setting in settings {
            let (name, value) = split_setting(setting)?;
            sqlx::query("SELECT set_config($1, $2, false)")
                .bind(name)
                .bind(value)
                .execute(&mut *conn)
                .await?;
            sqlx::query(&format!(
                "ALTER {target} SET {} FROM CURRENT",
                quote_ident(name)
            ))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

fn split_setting(setting: &str) -> Result<(&str, &str)> {
    setting
        .split_once('=')
        .ok_or_else(|| Error::Invalid(format!("unreadable database setting {setting:?}")))
}

fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}
