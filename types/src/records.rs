//! What a prepared copy shows before anything changes: how the live
//! database differs from the backup (table by table, rows by primary key),
//! and the plan of a record recovery (what would be inserted, what is left
//! alone, what blocks it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How one table differs between the live database and the prepared copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDiff {
    pub schema: String,
    pub name: String,
    /// Compared row by row by primary key; `false`: the table has no
    /// primary key (or is only on one side) and is compared by row count
    /// and content hash alone.
    pub keyed: bool,
    /// `None`: the table is not in that database.
    pub live_rows: Option<i64>,
    pub copy_rows: Option<i64>,
    /// Rows only in the live database: added since the backup, lost by a
    /// full restore.
    pub added: i64,
    /// Rows only in the copy: deleted since the backup, back after a
    /// restore.
    pub deleted: i64,
    /// Rows in both whose content differs: changed since, reverted by a
    /// restore.
    pub changed: i64,
    /// For a table compared by count and hash: its content differs.
    pub differs: bool,
    /// A few of the rows of each kind, in the LMS's words where it knows the
    /// table (a course by title), by primary key otherwise.
    pub added_samples: Vec<String>,
    pub deleted_samples: Vec<String>,
    pub changed_samples: Vec<String>,
    /// Rows deleted since the backup that can be brought back, by key (the
    /// first few hundred, in key order): what the console offers to
    /// recover and its search looks through.
    #[serde(default)]
    pub recoverable: Vec<RecoverableRow>,
}

/// A row deleted since the backup, as a recovery would name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverableRow {
    /// The key as `lms-admin backup recover --key` takes it: `42`, or
    /// `course_id=3,user_id=7`.
    pub key: String,
    /// The row in the LMS's words (a course by title), or by key.
    pub words: String,
}

impl TableDiff {
    pub fn is_same(&self) -> bool {
        self.added == 0
            && self.deleted == 0
            && self.changed == 0
            && !self.differs
            && self.live_rows.is_some() == self.copy_rows.is_some()
    }

    fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A backup restored into a prepared copy, compared with the live database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub backup_id: i64,
    pub backup_name: String,
    /// The prepared copy's database name (readable with any SQL client).
    pub database: String,
    pub prepared_at: DateTime<Utc>,
    pub prepared_by: String,
    /// When the live database was compared with it.
    pub compared_at: DateTime<Utc>,
    /// How long the comparison took, in milliseconds.
    pub compare_ms: i64,
    /// When it is dropped unless used before.
    pub expires_at: DateTime<Utc>,
    /// Every table of either side, in schema and name order.
    pub tables: Vec<TableDiff>,
}

impl Preview {
    /// "1 course, 12 lessons, 230 enrollments would come back", or `None`.
    pub fn would_come_back(&self) -> Option<String> {
        counted(self.tables.iter().map(|t| (t, t.deleted)))
            .map(|list| format!("{list} would come back"))
    }

    /// "1,204 rows would be lost (…)", or `None`.
    pub fn would_be_lost(&self) -> Option<String> {
        let total: i64 = self.tables.iter().map(|t| t.added).sum();
        (total > 0).then(|| {
            format!(
                "{} would be lost ({})",
                rows(total),
                counted(self.tables.iter().map(|t| (t, t.added))).unwrap_or_default()
            )
        })
    }

    /// "3 users would be reverted", or `None`.
    pub fn would_be_reverted(&self) -> Option<String> {
        counted(self.tables.iter().map(|t| (t, t.changed)))
            .map(|list| format!("{list} would be reverted to the backup's version"))
    }

    /// Tables compared by count and hash whose content differs.
    pub fn unkeyed_differences(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|t| !t.keyed && !t.is_same())
            .map(|t| t.qualified())
            .collect()
    }
}

/// One table of a recovery plan, in the order rows are inserted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTable {
    pub schema: String,
    pub name: String,
    /// Rows to insert: in the backup, absent live.
    pub insert: i64,
    /// Of those, rows brought because a recovered row needs them (its
    /// parent deleted since, e.g. the instructor's account).
    pub needed: i64,
    /// Rows of the closure that exist live as in the backup: left alone.
    pub unchanged: i64,
    /// Rows of the closure that exist live, changed since: left alone,
    /// never overwritten.
    pub changed: i64,
    pub insert_samples: Vec<String>,
    pub changed_samples: Vec<String>,
}

/// Something that stops a plan: the row and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// "schema.table".
    pub table: String,
    /// The row, in words.
    pub row: String,
    pub reason: String,
}

/// What a recovery would do, worked out before anything changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPlan {
    pub backup_id: i64,
    pub backup_name: String,
    /// "schema.table" of the record asked for.
    pub table: String,
    /// The record asked for, in words.
    pub root: String,
    /// In insertion order (a table's parents before it).
    pub tables: Vec<PlanTable>,
    pub blockers: Vec<Blocker>,
}

impl RecoveryPlan {
    pub fn rows_to_insert(&self) -> i64 {
        self.tables.iter().map(|t| t.insert).sum()
    }

    /// "1 course, 12 lessons, 230 enrollments", or `None` when there is
    /// nothing to insert.
    pub fn insert_words(&self) -> Option<String> {
        counted_names(self.tables.iter().map(|t| (&t.schema, &t.name, t.insert)))
    }

    /// Nothing blocks it and there is something to insert.
    pub fn can_run(&self) -> bool {
        self.blockers.is_empty() && self.rows_to_insert() > 0
    }
}

/// A recovery done: what it inserted, and whether it was undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryRecord {
    pub job_id: String,
    pub backup_id: i64,
    pub backup_name: String,
    pub table: String,
    pub root: String,
    /// ("schema.table", rows) in insertion order.
    pub inserted: Vec<(String, i64)>,
    pub recovered_by: String,
    pub recovered_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

impl RecoveryRecord {
    pub fn inserted_words(&self) -> String {
        count_list(&self.inserted)
    }
}

/// ("schema.table", rows) in words: "1 course, 12 lessons", or "nothing".
pub fn count_list(items: &[(String, i64)]) -> String {
    counted_names(items.iter().map(|(t, n)| {
        let (schema, name) = t.split_once('.').unwrap_or(("public", t));
        (schema, name, *n)
    }))
    .unwrap_or_else(|| "nothing".into())
}

/// The LMS's tables in the order an administrator thinks of them, with
/// their words: (name, singular, plural).
const LMS_TABLES: [(&str, &str, &str); 6] = [
    ("users", "user", "users"),
    ("courses", "course", "courses"),
    ("lessons", "lesson", "lessons"),
    ("enrollments", "enrollment", "enrollments"),
    ("lesson_attachments", "attachment", "attachments"),
    ("activity_events", "activity event", "activity events"),
];

/// The LMS's own words for its tables: (singular, plural).
pub fn table_nouns(schema: &str, name: &str) -> Option<(&'static str, &'static str)> {
    LMS_TABLES
        .iter()
        .find(|(n, _, _)| schema == "public" && *n == name)
        .map(|(_, one, many)| (*one, *many))
}

/// Where a table goes in a list: the LMS's in their order, then the rest.
pub fn rank(schema: &str, name: &str) -> usize {
    LMS_TABLES
        .iter()
        .position(|(n, _, _)| schema == "public" && *n == name)
        .unwrap_or(LMS_TABLES.len())
}

/// "1 course" / "230 enrollments" / "4 rows of app.tags".
pub fn count_of(schema: &str, name: &str, n: i64) -> String {
    match table_nouns(schema, name) {
        Some((one, _)) if n == 1 => format!("1 {one}"),
        Some((_, many)) => format!("{} {many}", thousands(n)),
        None => format!("{} of {schema}.{name}", rows(n)),
    }
}

fn counted<'a>(items: impl Iterator<Item = (&'a TableDiff, i64)>) -> Option<String> {
    counted_names(items.map(|(t, n)| (t.schema.as_str(), t.name.as_str(), n)))
}

fn counted_names<'a, S: AsRef<str> + 'a>(
    items: impl Iterator<Item = (S, S, i64)>,
) -> Option<String> {
    let mut items: Vec<(S, S, i64)> = items.filter(|(_, _, n)| *n > 0).collect();
    // Stable: tables the LMS does not know keep their order.
    items.sort_by_key(|(s, t, _)| rank(s.as_ref(), t.as_ref()));
    let parts: Vec<String> = items
        .iter()
        .map(|(s, t, n)| count_of(s.as_ref(), t.as_ref(), *n))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn rows(n: i64) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{} rows", thousands(n))
    }
}

/// A count with thousands separators ("1,234,567"), as people read them.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(name: &str, added: i64, deleted: i64, changed: i64) -> TableDiff {
        TableDiff {
            schema: "public".into(),
            name: name.into(),
            keyed: true,
            live_rows: Some(100),
            copy_rows: Some(100),
            added,
            deleted,
            changed,
            differs: false,
            added_samples: vec![],
            deleted_samples: vec![],
            changed_samples: vec![],
            recoverable: vec![],
        }
    }

    #[test]
    fn a_preview_says_what_would_come_back_and_be_lost_in_lms_words() {
        let preview = Preview {
            backup_id: 1,
            backup_name: "b".into(),
            database: "lms_prepared_x".into(),
            prepared_at: Utc::now(),
            prepared_by: "admin".into(),
            compared_at: Utc::now(),
            compare_ms: 1,
            expires_at: Utc::now(),
            tables: vec![
                diff("courses", 0, 1, 0),
                diff("lessons", 0, 12, 0),
                diff("enrollments", 3, 230, 0),
                diff("users", 1200, 0, 2),
                TableDiff {
                    schema: "app".into(),
                    ..diff("tags", 1, 0, 0)
                },
            ],
        };
        assert_eq!(
            preview.would_come_back().unwrap(),
            "1 course, 12 lessons, 230 enrollments would come back"
        );
        assert_eq!(
            preview.would_be_lost().unwrap(),
            "1,204 rows would be lost (1,200 users, 3 enrollments, 1 row of app.tags)"
        );
        assert_eq!(
            preview.would_be_reverted().unwrap(),
            "2 users would be reverted to the backup's version"
        );
        assert!(preview.unkeyed_differences().is_empty());
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
    }
}
