//! Data shared by the server and the browser (serde DTOs). The engine has its
//! own types; the conversions live beside them under `ssr`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a user may do in the LMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Instructor,
    Student,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub full_name: String,
    pub role: Role,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The name to greet the user with.
    pub fn display_name(&self) -> &str {
        if self.full_name.is_empty() {
            &self.username
        } else {
            &self.full_name
        }
    }
}

/// What the LMS database holds right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseOverview {
    pub database: String,
    pub size_bytes: i64,
    pub server_version: String,
    pub tables: Vec<TableStats>,
}

/// One LMS table: exact row count and size on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStats {
    pub schema: String,
    pub name: String,
    pub rows: i64,
    pub size_bytes: i64,
}

/// A backup as listed in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    pub id: i64,
    pub filename: String,
    pub kind: String,
    pub status: String,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A page of backups, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupList {
    pub backups: Vec<BackupSummary>,
    pub total: i64,
}

/// Formats a byte count for people ("1.5 MB").
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use lms_backup::{catalog, overview, users};

    impl From<users::Role> for Role {
        fn from(r: users::Role) -> Self {
            match r {
                users::Role::Admin => Role::Admin,
                users::Role::Instructor => Role::Instructor,
                users::Role::Student => Role::Student,
            }
        }
    }

    impl From<users::User> for CurrentUser {
        fn from(u: users::User) -> Self {
            CurrentUser {
                id: u.id,
                username: u.username,
                full_name: u.full_name,
                role: u.role.into(),
            }
        }
    }

    impl From<overview::DatabaseOverview> for DatabaseOverview {
        fn from(o: overview::DatabaseOverview) -> Self {
            DatabaseOverview {
                database: o.database,
                size_bytes: o.size_bytes,
                server_version: o.server_version,
                tables: o
                    .tables
                    .into_iter()
                    .map(|t| TableStats {
                        schema: t.schema,
                        name: t.name,
                        rows: t.rows,
                        size_bytes: t.size_bytes,
                    })
                    .collect(),
            }
        }
    }

    impl From<catalog::BackupPage> for BackupList {
        fn from(p: catalog::BackupPage) -> Self {
            BackupList {
                total: p.total,
                backups: p
                    .backups
                    .into_iter()
                    .map(|b| BackupSummary {
                        id: b.id,
                        filename: b.filename,
                        kind: b.kind,
                        status: b.status,
                        size_bytes: b.size_bytes,
                        sha256: b.sha256,
                        notes: b.notes,
                        created_by: b.created_by_name,
                        created_at: b.created_at,
                    })
                    .collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MB");
    }
}
