//! Names of the databases kept beside the LMS one: the copy a restore
//! builds (`<db>_restore_<job>`), the scratch database of a restore drill
//! (`<db>_drill_<job>`), the prepared copy a preview keeps for review
//! (`<db>_prepared_<job>`) and the previous database kept for undo
//! (`<db>_pre_restore_<timestamp>`).
//!
//! PostgreSQL cuts names at 63 bytes without an error, so a long database
//! name would make these collide, or no longer match the patterns that find
//! them. When `<db>` plus the suffix would not fit, `<db>` is cut at a
//! character boundary and an 8-digit hash of the whole name is added
//! (`<start of db>_<hash>_pre_restore_<timestamp>`): every name fits, and
//! two long names starting alike still get different ones. Names that fit
//! are exactly as before, so databases kept by earlier versions are found.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::databases::like_escape;

/// The longest name PostgreSQL keeps whole (NAMEDATALEN - 1).
pub const MAX_NAME_BYTES: usize = 63;

const PREVIOUS: &str = "_pre_restore_";
/// `%Y%m%d%H%M%S%3f`: sortable, so the newest previous database sorts first.
const TIMESTAMP: &str = "%Y%m%d%H%M%S%3f";
const TIMESTAMP_LEN: usize = 17;
const COPY: &str = "_restore_";
const DRILL: &str = "_drill_";
const PREPARED: &str = "_prepared_";
const JOB_LEN: usize = 12;
/// `_` and 8 hex digits.
const HASH_LEN: usize = 9;

/// The name a previous database is kept under after a restore at `at`.
pub fn previous_name(live: &str, at: DateTime<Utc>) -> String {
    format!(
        "{}{PREVIOUS}{}",
        stem(live, PREVIOUS.len() + TIMESTAMP_LEN),
        at.format(TIMESTAMP)
    )
}

/// LIKE pattern matching every previous database of `live`.
pub fn previous_pattern(live: &str) -> String {
    pattern(&stem(live, PREVIOUS.len() + TIMESTAMP_LEN), PREVIOUS)
}

/// The name of the copy a restore job builds.
pub fn copy_name(live: &str, job: Uuid) -> String {
    format!(
        "{}{COPY}{}",
        stem(live, COPY.len() + JOB_LEN),
        &job.simple().to_string()[..JOB_LEN]
    )
}

/// LIKE pattern matching every restore copy of `live`.
pub fn copy_pattern(live: &str) -> String {
    pattern(&stem(live, COPY.len() + JOB_LEN), COPY)
}

/// The name of the scratch database a restore drill builds.
pub fn drill_name(live: &str, job: Uuid) -> String {
    format!(
        "{}{DRILL}{}",
        stem(live, DRILL.len() + JOB_LEN),
        &job.simple().to_string()[..JOB_LEN]
    )
}

/// LIKE pattern matching every drill database of `live`.
pub fn drill_pattern(live: &str) -> String {
    pattern(&stem(live, DRILL.len() + JOB_LEN), DRILL)
}

/// The name of the prepared copy a preview job builds and keeps.
pub fn prepared_name(live: &str, job: Uuid) -> String {
    format!(
        "{}{PREPARED}{}",
        stem(live, PREPARED.len() + JOB_LEN),
        &job.simple().to_string()[..JOB_LEN]
    )
}

/// LIKE pattern matching every prepared copy of `live`.
pub fn prepared_pattern(live: &str) -> String {
    pattern(&stem(live, PREPARED.len() + JOB_LEN), PREPARED)
}

fn pattern(stem: &str, infix: &str) -> String {
    format!("{}{}%", like_escape(stem), like_escape(infix))
}

/// `live` itself when a suffix of `suffix_len` bytes fits after it;
/// otherwise its longest start that leaves room for the suffix and the
/// hash, cut at a character boundary, and the hash of the whole name.
fn stem(live: &str, suffix_len: usize) -> String {
    if live.len() + suffix_len <= MAX_NAME_BYTES {
        return live.to_owned();
    }
    let mut end = MAX_NAME_BYTES.saturating_sub(suffix_len + HASH_LEN);
    while !live.is_char_boundary(end) {
        end -= 1;
    }
    let hash = hex::encode(&Sha256::digest(live.as_bytes())[..4]);
    format!("{}_{hash}", &live[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, second).unwrap()
    }

    /// `name` matches the LIKE `pattern` (with `\` escapes, `%` only at the end).
    fn like(pattern: &str, name: &str) -> bool {
        let literal = pattern.strip_suffix('%').unwrap().replace("\\", "");
        name.starts_with(&literal)
    }

    #[test]
    fn short_names_keep_their_old_form() {
        let job = Uuid::from_u128(0xabcdef0123456789);
        assert_eq!(
            previous_name("lms", at(5)),
            "lms_pre_restore_20261201093005000"
        );
        assert_eq!(copy_name("lms", job), "lms_restore_000000000000");
        assert_eq!(previous_pattern("lms"), "lms\\_pre\\_restore\\_%");
        assert_eq!(copy_pattern("my_lms"), "my\\_lms\\_restore\\_%");
    }

    #[test]
    fn every_name_fits_and_is_found_whatever_the_length() {
        let job = Uuid::new_v4();
        for live in [
            "x".repeat(33),
            "x".repeat(34),
            "x".repeat(42),
            "x".repeat(43),
            "x".repeat(60),
            "x".repeat(63),
            "é".repeat(31),
            "データベース".repeat(3),
            format!("{}{}", "x".repeat(23), "é".repeat(10)),
            format!("{}{}", "x".repeat(24), "é".repeat(10)),
        ] {
            let previous = previous_name(&live, at(1));
            let copy = copy_name(&live, job);
            let prepared = prepared_name(&live, job);
            assert!(like(&prepared_pattern(&live), &prepared), "{prepared}");
            assert!(!like(&copy_pattern(&live), &prepared), "{prepared}");
            for name in [&previous, &copy, &prepared] {
                assert!(
                    name.len() <= MAX_NAME_BYTES,
                    "{name} ({} bytes)",
                    name.len()
                );
            }
            assert!(like(&previous_pattern(&live), &previous), "{previous}");
            assert!(like(&copy_pattern(&live), &copy), "{copy}");
            assert!(!like(&copy_pattern(&live), &previous), "{previous}");
            assert!(previous.ends_with("_pre_restore_20261201093001000"));
        }
    }

    #[test]
    fn long_names_stay_apart() {
        let (a, b) = ("a".repeat(62) + "1", "a".repeat(62) + "2");
        assert_ne!(previous_name(&a, at(1)), previous_name(&b, at(1)));
        assert!(!like(&previous_pattern(&a), &previous_name(&b, at(1))));
        assert_ne!(previous_name(&a, at(1)), previous_name(&a, at(2)));
        assert!(previous_name(&a, at(2)) > previous_name(&a, at(1)));
    }
}
