//! The role a restore runs as.
//!
//! An archive is code as much as data: a CHECK constraint, a default, a
//! trigger, a materialized view or a row-security policy can call a function
//! that runs while pg_restore loads the data, or while the copy is read back.
//! Whatever runs there runs with the rights of the role doing it, so the copy
//! is built, read and migrated by a role that can change nothing but the copy:
//! the restore role (`RESTORE_ROLE`, by default `<application role>_restore`).
//!
//! - It logs in, and is otherwise nothing: not a superuser, no CREATEDB, no
//!   CREATEROLE, a member of no role. The application role is a member of it,
//!   which lets the application create the copy and give it to the restore
//!   role, set the restore role's password for one job, and take everything
//!   back afterwards (`REASSIGN OWNED`, `ALTER DATABASE … OWNER`). The reverse
//!   is not true: from a restore role session there is no way back to the
//!   application role (`SET ROLE` needs membership, and the session user is
//!   the restore role itself).
//! - Its password exists only while a job uses it: a random one is set (as a
//!   SCRAM verifier, so the server never sees or logs it) when the job
//!   starts, and removed when it ends, with every setting the archive may
//!   have given the role and every session it still has.
//! - The application role never connects to the copy before it has taken it
//!   over and reset the database's settings, so nothing the archive left in
//!   the copy runs with the application's rights during the restore.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::engine::Engine;
use crate::postgres::databases::{quote_ident, quote_literal};
use crate::postgres::names::MAX_NAME_BYTES;
use crate::{Error, Result};

/// How a job's tools and checks reach the copy as the restore role.
pub(crate) struct RestoreLogin {
    pub user: String,
    pub options: PgConnectOptions,
    pub password: String,
}

impl Engine {
    /// The restore role's name: `RESTORE_ROLE`, or `<application role>_restore`.
    pub fn restore_role(&self) -> String {
        match &self.config().restore_role {
            Some(name) => name.clone(),
            None => format!("{}_restore", self.dbs().lms_options.get_username()),
        }
    }

    /// The restore role exists and is what it must be (see the module
    /// comment). The error names the SQL that sets it up.
    pub async fn check_restore_role(&self) -> Result<()> {
        let role = self.restore_role();
        let app = self.dbs().lms_options.get_username().to_owned();
        let setup = format!(
            "As a superuser, run: CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; \
             GRANT {r} TO {a};",
            r = quote_ident(&role),
            a = quote_ident(&app)
        );
        if role.len() > MAX_NAME_BYTES {
            return Err(Error::Config(format!(
                "The restore role name \"{role}\" is longer than PostgreSQL's {MAX_NAME_BYTES} bytes; \
                 set RESTORE_ROLE to a shorter name."
            )));
        }
        if role == app {
            return Err(Error::Config(format!(
                "RESTORE_ROLE names the application role \"{app}\" itself; restores need a role of \
                 their own. {setup}"
            )));
        }
        let row: Option<RoleRow> = sqlx::query_as(
            "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls,
                    r.rolcanlogin, r.rolinherit,
                    pg_has_role(current_user, r.oid, 'USAGE') AS app_has_it,
                    EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member_of_some
             FROM pg_roles r WHERE r.rolname = $1",
        )
        .bind(&role)
        .fetch_optional(&self.dbs().lms)
        .await?;
        let Some(row) = row else {
            return Err(Error::Config(format!(
                "The restore role \"{role}\" does not exist. Restores build their copy as a role \
                 that can change nothing else. {setup}"
            )));
        };
        let mut wrong = Vec::new();
        for (flag, what) in [
            (row.rolsuper, "NOSUPERUSER"),
            (row.rolcreatedb, "NOCREATEDB"),
            (row.rolcreaterole, "NOCREATEROLE"),
            (row.rolreplication, "NOREPLICATION"),
            (row.rolbypassrls, "NOBYPASSRLS"),
        ] {
            if flag {
                wrong.push(what);
            }
        }
        if !wrong.is_empty() {
            return Err(Error::Config(format!(
                "The restore role \"{role}\" has more rights than a restore may use. As a superuser, \
                 run: ALTER ROLE {} {};",
                quote_ident(&role),
                wrong.join(" ")
            )));
        }
        if !row.rolcanlogin {
            return Err(Error::Config(format!(
                "The restore role \"{role}\" cannot log in. As a superuser, run: ALTER ROLE {} LOGIN;",
                quote_ident(&role)
            )));
        }
        if !row.rolinherit {
            return Err(Error::Config(format!(
                "The restore role \"{role}\" does not inherit, so it cannot use the rights of the \
                 owner of the copy it builds (such as creating tables in its public schema). As a \
                 superuser, run: ALTER ROLE {} INHERIT;",
                quote_ident(&role)
            )));
        }
        if row.member_of_some {
            return Err(Error::Config(format!(
                "The restore role \"{role}\" is a member of other roles, whose rights an archive \
                 could use. Revoke them (\\du {role} lists them): it must be a member of nothing."
            )));
        }
        if !row.app_has_it {
            return Err(Error::Config(format!(
                "The application role \"{app}\" is not a member of the restore role \"{role}\" (with \
                 INHERIT), so it cannot hand copies to it and take them back. As a superuser, run: \
                 GRANT {} TO {};",
                quote_ident(&role),
                quote_ident(&app)
            )));
        }
        Ok(())
    }

    /// Gives the restore role a password for this job and returns how to
    /// connect as it (same server and TLS settings as the application).
    pub(crate) async fn open_restore_role(&self) -> Result<RestoreLogin> {
        let role = self.restore_role();
        let password = random_password();
        let verifier = scram_verifier(&password);
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        let result = async {
            sqlx::query(&format!("SET ROLE {}", quote_ident(&role)))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!(
                "ALTER ROLE {} PASSWORD {}",
                quote_ident(&role),
                quote_literal(&verifier)
            ))
            .execute(&mut admin)
            .await?;
            Ok::<_, Error>(())
        }
        .await;
        let _ = admin.close().await;
        result?;
        let options = self
            .dbs()
            .lms_options
            .clone()
            .username(&role)
            .password(&password);
        Ok(RestoreLogin {
            user: role,
            options,
            password,
        })
    }

    /// Ends every session of the restore role and takes back what a job gave
    /// it or what an archive set on it: its password, its settings (all, and
    /// per database). Runs after every job, whatever happened, and at
    /// start-up.
    pub(crate) async fn close_restore_role(&self) -> Result<()> {
        let role = self.restore_role();
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        let result = async {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE usename = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&role)
            .execute(&mut admin)
            .await?;
            let databases: Vec<Option<String>> = sqlx::query_scalar(
                "SELECT d.datname::text FROM pg_db_role_setting s
                 LEFT JOIN pg_database d ON d.oid = s.setdatabase
                 WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)",
            )
            .bind(&role)
            .fetch_all(&mut admin)
            .await?;
            sqlx::query(&format!("SET ROLE {}", quote_ident(&role)))
                .execute(&mut admin)
                .await?;
            for database in databases {
                let scope = match database {
                    Some(db) => format!(" IN DATABASE {}", quote_ident(&db)),
                    None => String::new(),
                };
                sqlx::query(&format!(
                    "ALTER ROLE {}{scope} RESET ALL",
                    quote_ident(&role)
                ))
                .execute(&mut admin)
                .await?;
            }
            sqlx::query(&format!("ALTER ROLE {} PASSWORD NULL", quote_ident(&role)))
                .execute(&mut admin)
                .await?;
            Ok::<_, Error>(())
        }
        .await;
        let _ = admin.close().await;
        result
    }

    /// The copy becomes the application's: its settings from the archive
    /// are dropped first (before the application connects to it), then
    /// every object the restore role owns in it, and the database itself,
    /// pass to the application role.
    pub(super) async fn take_over_copy(&self, copy: &str) -> Result<()> {
        let role = self.restore_role();
        let app = self.dbs().lms_options.get_username().to_owned();
        self.close_restore_role().await?;
        let mut admin = PgConnection::connect_with(&self.dbs().maintenance_options()).await?;
        for statement in [
            format!("ALTER DATABASE {} RESET ALL", quote_ident(copy)),
            format!(
                "ALTER DATABASE {} OWNER TO {}",
                quote_ident(copy),
                quote_ident(&app)
            ),
        ] {
            sqlx::query(&statement).execute(&mut admin).await?;
        }
        admin.close().await?;
        let mut conn = PgConnection::connect_with(&self.dbs().sibling_options(copy)).await?;
        sqlx::query("SET search_path = pg_catalog")
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!(
            "REASSIGN OWNED BY {} TO {}",
            quote_ident(&role),
            quote_ident(&app)
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct RoleRow {
    rolsuper: bool,
    rolcreatedb: bool,
    rolcreaterole: bool,
    rolreplication: bool,
    rolbypassrls: bool,
    rolcanlogin: bool,
    rolinherit: bool,
    app_has_it: bool,
    member_of_some: bool,
}

/// 32 random bytes, base64: a password used for one job.
fn random_password() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802,
/// RFC 7677), so `ALTER ROLE … PASSWORD` never carries the password itself.
fn scram_verifier(password: &str) -> String {
    const ITERATIONS: u32 = 4096;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, ITERATIONS, &mut salted);
    let hmac = |key: &[u8], message: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(message);
        mac.finalize().into_bytes()
    };
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_has_postgres_format() {
        let v = scram_verifier("secret");
        let (head, keys) = v.split_once('$').unwrap().1.split_once('$').unwrap();
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(head.contains(':'));
        let (stored, server) = keys.split_once(':').unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(b64.decode(stored).unwrap().len(), 32);
        assert_eq!(b64.decode(server).unwrap().len(), 32);
        assert_ne!(scram_verifier("secret"), v, "a fresh salt each time");
    }
}
