//! LMS accounts: roles, creation and password checks.
//!
//! Users live in the LMS database, because they are part of what the LMS is;
//! a restore therefore replaces them too, which is why every session is
//! invalidated after one.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::{Error, Result};

/// What a user may do in the LMS. Only administrators reach this console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Instructor,
    Student,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Instructor => "instructor",
            Role::Student => "student",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "instructor" => Ok(Role::Instructor),
            "student" => Ok(Role::Student),
            other => Err(Error::Invalid(format!(
                "unknown role \"{other}\": use admin, instructor or student"
            ))),
        }
    }
}

/// An LMS account as the console sees it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub is_active: bool,
}

/// What `create` needs.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub full_name: &'a str,
    pub role: Role,
    pub password: &'a str,
}

/// Shortest password accepted for an account that can sign in.
pub const MIN_PASSWORD_LEN: usize = 12;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    email: String,
    full_name: String,
    role: String,
    is_active: bool,
    password_hash: String,
}

impl TryFrom<UserRow> for User {
    type Error = Error;
    fn try_from(r: UserRow) -> Result<Self> {
        Ok(User {
            id: r.id,
            username: r.username,
            email: r.email,
            full_name: r.full_name,
            role: r.role.parse()?,
            is_active: r.is_active,
        })
    }
}

const USER_COLUMNS: &str = "id, username, email, full_name, role, is_active, password_hash";

/// Creates an account. Fails with [`Error::Conflict`] if the username or
/// email is taken and [`Error::Invalid`] for unusable input.
#[tracing::instrument(skip(pool, new), fields(username = new.username))]
pub async fn create(pool: &PgPool, new: NewUser<'_>) -> Result<User> {
    validate_username(new.username)?;
    check_password(new.password)?;
    if !new.email.contains('@') {
        return Err(Error::Invalid("the email address must contain @".into()));
    }
    let hash = hash_password(new.password.to_owned()).await?;
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (username, email, full_name, password_hash, role)
         VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
    ))
    .bind(new.username)
    .bind(new.email)
    .bind(new.full_name)
    .bind(hash)
    .bind(new.role.as_str())
    .fetch_one(pool)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Conflict("a user with this username or email already exists".into())
        }
        other => other.into(),
    })?;
    row.try_into()
}

/// What [`grant_admin`] needs.
pub struct AdminGrant<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// For an account created by the grant (an existing one keeps its own).
    pub email: &'a str,
    /// For an account created by the grant (an existing one keeps its own).
    pub full_name: &'a str,
}

/// What [`grant_admin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    pub user: User,
    /// There was no account of that name, so one was created.
    pub created: bool,
}

/// Makes `username` an active administrator who signs in with `password`,
/// creating the account when there is none of that name: how someone
/// locked out of the console (by a restore that brought back accounts
/// without theirs, say) gets back in from the server's command line.
#[tracing::instrument(skip(pool, grant), fields(username = grant.username))]
pub async fn grant_admin(pool: &PgPool, grant: AdminGrant<'_>) -> Result<Granted> {
    check_password(grant.password)?;
    let hash = hash_password(grant.password.to_owned()).await?;
    let updated: Option<UserRow> = sqlx::query_as(&format!(
        "UPDATE users SET role = $2, is_active = true, password_hash = $3, updated_at = now()
         WHERE username = $1 RETURNING {USER_COLUMNS}"
    ))
    .bind(grant.username)
    .bind(Role::Admin.as_str())
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = updated {
        return Ok(Granted {
            user: row.try_into()?,
            created: false,
        });
    }
    let user = create(
        pool,
        NewUser {
            username: grant.username,
            email: grant.email,
            full_name: grant.full_name,
            role: Role::Admin,
            password: grant.password,
        },
    )
    .await?;
    Ok(Granted {
        user,
        created: true,
    })
}

/// Looks a user up by id.
pub async fn get(pool: &PgPool, id: i64) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    row.map(User::try_from).transpose()
}

/// Checks a username and password. Returns the user only if the account
/// exists, is active and the password matches. An unknown username costs the
/// same argon2 work as a wrong password, so timing does not reveal which.
#[tracing::instrument(skip(pool, password))]
pub async fn authenticate(pool: &PgPool, username: &str, password: &str) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    let hash = match &row {
        Some(r) if is_usable_password_hash(&r.password_hash) => r.password_hash.clone(),
        _ => dummy_hash().to_owned(),
    };
    let matches = verify_password(password.to_owned(), hash).await?;
    match row {
        Some(r) if matches && r.is_active && is_usable_password_hash(&r.password_hash) => {
            Ok(Some(r.try_into()?))
        }
        _ => Ok(None),
    }
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// Whether a stored password hash is one a password can sign in with: an
/// argon2 PHC string (`!` marks accounts that cannot sign in).
pub fn is_usable_password_hash(hash: &str) -> bool {
    hash.starts_with("$argon2")
}

fn validate_username(username: &str) -> Result<()> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "usernames are 1 to 64 characters: letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

/// Argon2 computations allowed at once. Each takes 19 MiB and a core for a
/// few milliseconds; a burst of sign-ins queues here instead of growing the
/// process by 19 MiB per blocking thread (and crowding out a running backup).
fn argon2_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.clamp(1, 4))
    })
}

/// Hashes a password with argon2 (default parameters) off the async threads.
pub async fn hash_password(password: String) -> Result<String> {
    let _slot = argon2_slots().acquire().await.expect("never closed");
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| Error::Invalid("the password could not be hashed".into()))
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))?
}

async fn verify_password(password: String, hash: String) -> Result<bool> {
    let _slot = argon2_slots().acquire().await.expect("never closed");
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))
}

/// A valid hash of a random password, computed once, to verify against when
/// the username does not exist.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let random: [u8; 16] = rand::random();
        Argon2::default()
            .hash_password(&random, &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for role in [Role::Admin, Role::Instructor, Role::Student] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn usernames_are_checked() {
        assert!(validate_username("alice.admin-1").is_ok());
        assert!(validate_username("").is_err());
        assert!(validate_username("a b").is_err());
        assert!(validate_username("<script>").is_err());
        assert!(validate_username(&"x".repeat(65)).is_err());
    }

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(
            verify_password("correct horse battery".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), hash).await.unwrap());
        assert!(!verify_password("x".into(), "not a hash".into())
            .await
            .unwrap());
    }
}
