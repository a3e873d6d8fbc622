//! What belongs to the LMS database rather than to its contents, and so is
//! not in an archive (pg_restore without `--create` leaves it out): who may
//! connect to it and create temporary tables (its ACL), its settings
//! (`ALTER DATABASE … SET`), the application role's settings in it
//! (`ALTER ROLE … IN DATABASE … SET`), its connection limit, its comment,
//! and the default privileges kept in it (`ALTER DEFAULT PRIVILEGES`, what
//! objects created later grant by themselves).
//! A restore carries them from the live database to the copy before the
//! switch, so the database the site runs on after a restore behaves as
//! before; settings PostgreSQL keeps per database would otherwise stay with
//! the replaced one.
//!
//! Settings other roles have in the LMS database, and default privileges of
//! roles the application role is not a member of, can only be made again by
//! a superuser or by those roles, so a restore refuses, before anything
//! changes, while there are any, and names them. An archive's own default
//! privileges are not restored (they would run as the restore role, which
//! may not make them): the live database's are the ones the site keeps.

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
    /// `pg_default_acl`, one line per (role, schema, kind) with its entries,
    /// as the catalog prints it; also what the copy is checked against.
    default_acls: Vec<DefaultAcl>,
}

/// One `pg_default_acl` row: what objects of `kind` that `role` creates
/// (in `schema`, or anywhere) grant by themselves.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct DefaultAcl {
    /// regrole's output: an identifier, quoted where it must be.
    role: String,
    /// regnamespace's output; `None`: every schema.
    schema: Option<String>,
    /// `r` tables, `S` sequences, `f` functions, `T` types, `n` schemas.
    kind: String,
    /// (grantee, privilege, grantable); grantee `None` is PUBLIC.
    entries: sqlx::types::Json<Vec<(Option<String>, String, bool)>>,
    /// Whether the application role may set this role's default privileges.
    settable: bool,
}

/// Reads `pg_default_acl` of the database `conn` is connected to.
const DEFAULT_ACLS: &str = "
    SELECT d.defaclrole::regrole::text AS role,
           CASE WHEN d.defaclnamespace = 0 THEN NULL ELSE d.defaclnamespace::regnamespace::text END AS schema,
           d.defaclobjtype::text AS kind,
           coalesce((SELECT json_agg(json_build_array(
                               CASE WHEN a.grantee = 0 THEN NULL ELSE a.grantee::regrole::text END,
                               a.privilege_type, a.is_grantable)
                             ORDER BY a.grantee::regrole::text NULLS FIRST, a.privilege_type)
                     FROM aclexplode(d.defaclacl) a), '[]'::json) AS entries,
           pg_has_role(current_user, d.defaclrole, 'USAGE') AS settable
    FROM pg_default_acl d
    ORDER BY 1, 2 NULLS FIRST, 3";

async fn default_acls(conn: impl sqlx::PgExecutor<'_>) -> Result<Vec<DefaultAcl>> {
    Ok(sqlx::query_as(DEFAULT_ACLS).fetch_all(conn).await?)
}

impl DefaultAcl {
    fn objects(&self) -> Result<&'static str> {
        Ok(match self.kind.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            other => {
                return Err(Error::Invalid(format!(
                    "The LMS database has default privileges of a kind this version does not know ({other:?}). Nothing was changed."
                )))
            }
        })
    }

    /// The statements that make this row in a database without it. A row
    /// for every schema replaces the built-in defaults, so those are revoked
    /// first; a row for one schema only adds to them.
    fn statements(&self) -> Result<Vec<String>> {
        let objects = self.objects()?;
        let head = match &self.schema {
            Some(schema) => format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {schema}",
                self.role
            ),
            None => format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}", self.role),
        };
        let mut out = Vec::new();
        if self.schema.is_none() {
            out.push(format!("{head} REVOKE ALL ON {objects} FROM PUBLIC"));
            out.push(format!("{head} REVOKE ALL ON {objects} FROM {}", self.role));
        }
        for (grantee, privilege, grantable) in self.entries.iter() {
            let to = grantee.clone().unwrap_or_else(|| "PUBLIC".to_owned());
            let option = if *grantable { " WITH GRANT OPTION" } else { "" };
            out.push(format!(
                "{head} GRANT {privilege} ON {objects} TO {to}{option}"
            ));
        }
        Ok(out)
    }
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
        let default_acls = default_acls(lms).await?;
        let unsettable: Vec<String> = default_acls
            .iter()
            .filter(|d| !d.settable)
            .map(|d| d.role.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unsettable.is_empty() {
            return Err(Error::Invalid(format!(
                "Roles the application role cannot act for have default privileges in the LMS \
                 database (ALTER DEFAULT PRIVILEGES FOR ROLE …), which a restore cannot carry to \
                 the restored database: {}. Nothing was changed. Have a superuser note and remove \
                 them, restore, and set them again.",
                unsettable.join(", ")
            )));
        }
        let mut profile = DatabaseProfile {
            acl,
            settings: Vec::new(),
            own_settings: Vec::new(),
            connection_limit,
            comment,
            default_acls,
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
        result?;
        self.carry_default_acls(copy, profile).await
    }

    /// Makes the live database's default privileges in the copy (the
    /// archive's are not restored), as the application role, connected to
    /// the copy; then checks the copy has exactly them.
    async fn carry_default_acls(&self, copy: &str, profile: &DatabaseProfile) -> Result<()> {
        let mut conn =
            PgConnection::connect_with(&self.dbs().lms_options.clone().database(copy)).await?;
        let result = async {
            let found = default_acls(&mut conn).await?;
            if !found.is_empty() {
                // pg_restore was told to leave them out; anything here came
                // from elsewhere and is not what the live database has.
                return Err(Error::Invalid(format!(
                    "The restored copy has default privileges of its own ({}). Nothing was changed.",
                    found.iter().map(|d| d.role.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let mut tx = conn.begin().await?;
            for row in &profile.default_acls {
                for statement in row.statements()? {
                    sqlx::query(&statement).execute(&mut *tx).await.map_err(|e| {
                        Error::Invalid(format!(
                            "The LMS database's default privileges could not be made in the \
                             restored copy ({}). Nothing was changed.",
                            db_message(&e)
                        ))
                    })?;
                }
            }
            tx.commit().await?;
            let made = default_acls(&mut conn).await?;
            if made != profile.default_acls {
                return Err(Error::Invalid(
                    "The LMS database's default privileges came out different in the restored \
                     copy. Nothing was changed."
                        .into(),
                ));
            }
            Ok(())
        }
        .await;
        let _ = conn.close().await;
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
