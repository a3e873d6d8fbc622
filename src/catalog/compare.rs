//! Backup against backup, from their two manifests alone: which tables were
//! added, removed or changed between them, with their rows in each. Nothing
//! is restored; the fingerprints each backup recorded when it was verified
//! are compared (a table's row count and order-independent content hash).

use std::collections::BTreeMap;

use lms_types::{TableChange, TableComparison};
use serde::Serialize;
use sqlx::PgPool;

use super::{get, Backup};
use crate::postgres::fingerprint::TableFingerprint;
use crate::{Error, Result};

/// Two backups compared, the older first.
#[derive(Debug, Clone, Serialize)]
pub struct BackupComparison {
    pub older: Backup,
    pub newer: Backup,
    /// Every table of either, by schema and name.
    pub tables: Vec<TableComparison>,
}

impl BackupComparison {
    /// How many tables changed in each way.
    pub fn count(&self, change: TableChange) -> usize {
        self.tables.iter().filter(|t| t.change == change).count()
    }
}

/// Compares backups `a` and `b` (either order) from their manifests.
pub async fn compare(control: &PgPool, a: i64, b: i64) -> Result<BackupComparison> {
    if a == b {
        return Err(Error::Invalid(
            "Pick two different backups to compare.".into(),
        ));
    }
    let (a, b) = (get(control, a).await?, get(control, b).await?);
    let tables = |d: &super::BackupDetail| {
        d.manifest
            .as_ref()
            .and_then(|m| m.tables.clone())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{} has no record of its tables yet (an uploaded archive is fingerprinted \
                     by its first restore or restore drill): drill it once, then compare.",
                    d.backup.filename
                ))
            })
    };
    let (ta, tb) = (tables(&a)?, tables(&b)?);
    let taken = |d: &super::BackupDetail| {
        d.manifest
            .as_ref()
            .and_then(|m| m.taken_at)
            .unwrap_or(d.backup.created_at)
    };
    let (older, newer, to, tn) = if (taken(&a), a.backup.id) <= (taken(&b), b.backup.id) {
        (a.backup, b.backup, ta, tb)
    } else {
        (b.backup, a.backup, tb, ta)
    };
    Ok(BackupComparison {
        older,
        newer,
        tables: compare_tables(&to, &tn),
    })
}

/// Every table of `older` and `newer`, by schema and name, and how it
/// changed.
pub fn compare_tables(
    older: &[TableFingerprint],
    newer: &[TableFingerprint],
) -> Vec<TableComparison> {
    /// A table as each side has it.
    type Sides<'a> = (Option<&'a TableFingerprint>, Option<&'a TableFingerprint>);
    let mut both: BTreeMap<(&str, &str), Sides> = BTreeMap::new();
    for t in older {
        both.entry((&t.schema, &t.name)).or_default().0 = Some(t);
    }
    for t in newer {
        both.entry((&t.schema, &t.name)).or_default().1 = Some(t);
    }
    both.into_iter()
        .map(|((schema, name), (o, n))| {
            let change = match (o, n) {
                (Some(o), Some(n)) if o.method != n.method => {
                    if o.rows == n.rows {
                        TableChange::Incomparable
                    } else {
                        TableChange::Changed
                    }
                }
                (Some(o), Some(n)) if o.rows == n.rows && o.hash == n.hash => TableChange::Same,
                (Some(_), Some(_)) => TableChange::Changed,
                (None, Some(_)) => TableChange::Added,
                (Some(_), None) => TableChange::Removed,
                (None, None) => unreachable!("each entry comes from one side at least"),
            };
            TableComparison {
                schema: schema.to_owned(),
                name: name.to_owned(),
                older_rows: o.map(|t| t.rows),
                newer_rows: n.map(|t| t.rows),
                change,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::fingerprint::HashMethod;

    fn table(name: &str, rows: i64, hash: &str, method: HashMethod) -> TableFingerprint {
        TableFingerprint {
            schema: "public".into(),
            name: name.into(),
            rows,
            hash: hash.into(),
            size_bytes: 0,
            method,
        }
    }

    #[test]
    fn tables_are_same_changed_added_removed_or_incomparable() {
        use HashMethod::{Columns, Text};
        let older = [
            table("courses", 10, "1", Columns),
            table("lessons", 40, "2", Columns),
            table("old_log", 5, "3", Columns),
            table("users", 7, "4", Text),
            table("grades", 9, "5", Text),
        ];
        let newer = [
            table("courses", 10, "1", Columns),
            // Same count, other content: an edit.
            table("lessons", 40, "9", Columns),
            table("badges", 2, "6", Columns),
            table("users", 7, "8", Columns),
            table("grades", 11, "7", Columns),
        ];
        let got: Vec<(String, TableChange, Option<i64>, Option<i64>)> =
            compare_tables(&older, &newer)
                .into_iter()
                .map(|t| (t.name, t.change, t.older_rows, t.newer_rows))
                .collect();
        assert_eq!(
            got,
            [
                ("badges".into(), TableChange::Added, None, Some(2)),
                ("courses".into(), TableChange::Same, Some(10), Some(10)),
                // Hashed differently: the counts still tell a change apart.
                ("grades".into(), TableChange::Changed, Some(9), Some(11)),
                ("lessons".into(), TableChange::Changed, Some(40), Some(40)),
                ("old_log".into(), TableChange::Removed, Some(5), None),
                ("users".into(), TableChange::Incomparable, Some(7), Some(7)),
            ]
        );
    }
}
