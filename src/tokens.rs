//! API tokens: how a deploy pipeline takes a backup without a browser.
//!
//! An administrator creates a token with a name, one or more scopes
//! ([`TokenScope`]) and an optional expiry. The token itself is shown once
//! and never stored: the control database keeps its SHA-256 (a token is 256
//! random bits, so there is nothing to guess and no need for a slow hash).
//! A token authenticates only while it is neither revoked nor expired, and
//! only for the REST routes its scopes open (the server's gate decides
//! which). What is done with a token is audited under `token:NAME`.

use chrono::{DateTime, Duration, Utc};
use lms_types::{AuditAction, AuditOutcome, TokenScope};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{self, Actor, Event};
use crate::{Engine, Error, Result};

/// Every token starts with this, so a leaked one is easy to recognise (and
/// for secret scanners to find).
pub const TOKEN_PREFIX: &str = "lmsa_";

/// The audit log names what a token did as `token:NAME`.
pub const ACTOR_PREFIX: &str = "token:";

/// The longest expiry a token can be given, in days.
pub const MAX_EXPIRES_DAYS: u32 = 3650;

const MAX_NAME: usize = 64;

/// A token as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub scopes: Vec<TokenScope>,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by_name: Option<String>,
}

impl TokenInfo {
    /// Whether the token still authenticates at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// What a new token is to be.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<TokenScope>,
    /// `None`: it never expires.
    pub expires_days: Option<u32>,
}

/// A token just created: the only time its secret exists outside the
/// caller's hands.
#[derive(Debug)]
pub struct CreatedToken {
    pub info: TokenInfo,
    pub secret: String,
}

/// Who a request presenting a live token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub name: String,
    pub scopes: Vec<TokenScope>,
}

impl TokenGrant {
    pub fn allows(&self, scope: TokenScope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The actor the audit log and jobs name for what the token does.
    pub fn actor(&self, client_ip: Option<String>) -> Actor {
        Actor {
            id: None,
            name: format!("{ACTOR_PREFIX}{}", self.name),
            client_ip,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    scopes: Vec<TokenScope>,
    created_by_name: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    revoked_by_name: Option<String>,
}

const COLUMNS: &str = "name, scopes, created_by_name, created_at, expires_at, last_used_at, \
                       revoked_at, revoked_by_name";

impl From<Row> for TokenInfo {
    fn from(r: Row) -> Self {
        TokenInfo {
            name: r.name,
            scopes: r.scopes,
            created_by_name: r.created_by_name,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            revoked_by_name: r.revoked_by_name,
        }
    }
}

/// Reads `a,b` or repeated scopes as the CLI and the API give them.
pub fn parse_scopes<S: AsRef<str>>(given: &[S]) -> Result<Vec<TokenScope>> {
    let mut scopes = Vec::new();
    for part in given.iter().flat_map(|g| g.as_ref().split(',')) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let scope: TokenScope = part.parse().map_err(|_| {
            Error::Invalid(format!(
                "scopes: \"{part}\" is not a scope; the scopes are {}.",
                scope_list()
            ))
        })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

fn scope_list() -> String {
    TokenScope::ALL
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() {
        return Err(Error::Invalid(
            "name: give the token a name that says who uses it, such as \"deploy\".".into(),
        ));
    }
    if !ok_start || !ok_rest || name.len() > MAX_NAME {
        return Err(Error::Invalid(format!(
            "name: letters, digits, '.', '_' and '-' only, starting with a letter or digit, at most {MAX_NAME} characters."
        )));
    }
    Ok(name.to_owned())
}

fn check_expiry(days: Option<u32>) -> Result<Option<u32>> {
    match days {
        Some(0) => Err(Error::Invalid(
            "expires-days: at least 1 (leave it out for a token that does not expire).".into(),
        )),
        Some(d) if d > MAX_EXPIRES_DAYS => Err(Error::Invalid(format!(
            "expires-days: at most {MAX_EXPIRES_DAYS}."
        ))),
        other => Ok(other),
    }
}

/// The SHA-256 of a presented token, as stored.
fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn new_secret() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Engine {
    /// Creates a token; audited. The secret is in the result and nowhere
    /// else.
    pub async fn create_token(
        &self,
        new: NewToken,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CreatedToken> {
        let created = self.insert_token(&new, actor, now).await;
        let (outcome, detail) = match &created {
            Ok(c) => (AuditOutcome::Success, describe(&c.info)),
            Err(e) => (AuditOutcome::Failure, e.to_string()),
        };
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor,
                action: AuditAction::TokenCreate,
                target: Some(new.name.trim()),
                outcome,
                detail: Some(&detail),
            },
        )
        .await;
        created
    }

    async fn insert_token(
        &self,
        new: &NewToken,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CreatedToken> {
        let name = clean_name(&new.name)?;
        if new.scopes.is_empty() {
            return Err(Error::Invalid(format!(
                "scopes: choose at least one of {}.",
                scope_list()
            )));
        }
        let expires_at =
            check_expiry(new.expires_days)?.map(|days| now + Duration::days(i64::from(days)));
        let secret = new_secret();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO api_tokens (name, secret_sha256, scopes, created_by_name, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        ))
        .bind(&name)
        .bind(digest(&secret))
        .bind(&new.scopes)
        .bind(&actor.name)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&self.dbs().control)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                Error::Conflict(format!(
                    "name: a live token named \"{name}\" exists already; revoke it first or choose another name."
                ))
            }
            _ => Error::from(e),
        })?;
        Ok(CreatedToken {
            info: row.into(),
            secret,
        })
    }

    /// Every token, live ones first, newest first; never their secrets.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM api_tokens
             ORDER BY (revoked_at IS NULL) DESC, created_at DESC, id DESC"
        ))
        .fetch_all(&self.dbs().control)
        .await?;
        Ok(rows.into_iter().map(TokenInfo::from).collect())
    }

    /// Revokes the live token named `name`; audited. It stops working at
    /// once, on every instance (each request reads the table).
    pub async fn revoke_token(&self, name: &str, actor: &Actor) -> Result<TokenInfo> {
        let name = name.trim();
        let revoked: Result<TokenInfo> = sqlx::query_as::<_, Row>(&format!(
            "UPDATE api_tokens SET revoked_at = now(), revoked_by_name = $2
             WHERE name = $1 AND revoked_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(&actor.name)
        .fetch_optional(&self.dbs().control)
        .await
        .map_err(Error::from)
        .and_then(|row| {
            row.map(TokenInfo::from)
                .ok_or_else(|| Error::NotFound(format!("A live API token named \"{name}\"")))
        });
        audit::record_result(
            &self.dbs().control,
            actor,
            AuditAction::TokenRevoke,
            name,
            &revoked,
        )
        .await;
        revoked
    }

    /// Who a presented token is, if it is a live token; records that it was
    /// used. `None` for anything else (unknown, revoked, expired, garbage):
    /// the caller says the same to all of them.
    pub async fn authenticate_token(&self, presented: &str) -> Result<Option<TokenGrant>> {
        if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
            return Ok(None);
        }
        let row: Option<(String, Vec<TokenScope>)> = sqlx::query_as(
            "UPDATE api_tokens SET last_used_at = now()
             WHERE secret_sha256 = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > now())
             RETURNING name, scopes",
        )
        .bind(digest(presented))
        .fetch_optional(&self.dbs().control)
        .await?;
        Ok(row.map(|(name, scopes)| TokenGrant { name, scopes }))
    }

    /// Records a live token used where its scopes do not reach.
    pub async fn audit_token_refused(
        &self,
        grant: &TokenGrant,
        client_ip: Option<String>,
        what: &str,
    ) {
        let actor = grant.actor(client_ip);
        audit::record_or_log(
            &self.dbs().control,
            Event {
                actor: &actor,
                action: AuditAction::TokenRefused,
                target: Some(what),
                outcome: AuditOutcome::Denied,
                detail: Some("outside the token's scopes"),
            },
        )
        .await;
    }
}

/// "backup:create, status:read; expires 2027-03-01" for the audit log.
fn describe(info: &TokenInfo) -> String {
    let scopes = info
        .scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match info.expires_at {
        Some(at) => format!("{scopes}; expires {}", at.format("%Y-%m-%d %H:%M UTC")),
        None => format!("{scopes}; does not expire"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_read_from_commas_and_repeats() {
        assert_eq!(
            parse_scopes(&["backup:create,status:read", "backup:create"]).unwrap(),
            vec![TokenScope::BackupCreate, TokenScope::StatusRead]
        );
        let err = parse_scopes(&["backup:restore"]).unwrap_err().to_string();
        assert!(err.contains("\"backup:restore\" is not a scope"), "{err}");
        assert!(
            err.contains("backup:create, backup:read, status:read"),
            "{err}"
        );
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(clean_name(" deploy-ci.1 ").unwrap(), "deploy-ci.1");
        for bad in ["", "-x", "a b", "tök", &"a".repeat(65)] {
            assert!(clean_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(digest(&a).len(), 32);
    }

    #[test]
    fn expiry_is_bounded() {
        assert!(check_expiry(Some(0)).is_err());
        assert!(check_expiry(Some(MAX_EXPIRES_DAYS + 1)).is_err());
        assert_eq!(check_expiry(Some(90)).unwrap(), Some(90));
        assert_eq!(check_expiry(None).unwrap(), None);
    }
}
