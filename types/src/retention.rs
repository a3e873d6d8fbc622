//! A retention policy in grandfather-father-son form, as the engine applies
//! it, the CLI takes it (`--keep-*`) and the console's form edits it.

use serde::{Deserialize, Serialize};

/// Which of a schedule's backups retention keeps: the last N, plus the
/// newest backup of each of the newest H hours, D days, W ISO weeks, M
/// months and Y years that have one, read in the schedule's zone. The
/// columns of `schedules` have these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Policy {
    /// The newest N verified backups (at least one).
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "i32"))]
    pub keep_last: u32,
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "i32"))]
    pub keep_hourly: u32,
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "i32"))]
    pub keep_daily: u32,
    /// ISO weeks (Monday to Sunday).
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "i32"))]
    pub keep_weekly: u32,
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "i32"))]
    pub keep_monthly: u32,
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "i32"))]
    pub keep_yearly: u32,
}

/// Largest count a policy takes for any period.
pub const MAX_KEEP: u32 = 10_000;

impl Default for Policy {
    /// A week of backups, then two weeks of dailies, two months of
    /// weeklies and a year of monthlies.
    fn default() -> Self {
        Policy {
            keep_last: 7,
            keep_hourly: 0,
            keep_daily: 14,
            keep_weekly: 8,
            keep_monthly: 12,
            keep_yearly: 0,
        }
    }
}

impl Policy {
    /// Only the newest `n` (at least one).
    pub fn last(n: u32) -> Self {
        Policy {
            keep_last: n.max(1),
            keep_hourly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
        }
    }

    /// The period counts, hourly first: (field as the CLI spells it, the
    /// word for it, count).
    pub fn periods(&self) -> [(&'static str, &'static str, u32); 5] {
        [
            ("keep-hourly", "hourly", self.keep_hourly),
            ("keep-daily", "daily", self.keep_daily),
            ("keep-weekly", "weekly", self.keep_weekly),
            ("keep-monthly", "monthly", self.keep_monthly),
            ("keep-yearly", "yearly", self.keep_yearly),
        ]
    }

    /// Why the policy cannot be saved, naming the field as the CLI spells
    /// it ("keep-last: at least 1; …"); `None` when it can.
    pub fn problem(&self) -> Option<String> {
        if self.keep_last == 0 {
            return Some("keep-last: at least 1; the newest backup is always kept.".into());
        }
        std::iter::once(("keep-last", self.keep_last))
            .chain(self.periods().map(|(field, _, n)| (field, n)))
            .find(|(_, n)| *n > MAX_KEEP)
            .map(|(field, _)| format!("{field}: at most {MAX_KEEP}."))
    }

    /// The policy in words: "the last 7, 14 daily, 8 weekly, 12 monthly".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("the last {}", self.keep_last)];
        for (_, word, n) in self.periods() {
            if n > 0 {
                parts.push(format!("{n} {word}"));
            }
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_described_and_checked_field_by_field() {
        assert_eq!(
            Policy::default().describe(),
            "the last 7, 14 daily, 8 weekly, 12 monthly"
        );
        assert_eq!(Policy::last(0).keep_last, 1);
        assert!(Policy::default().problem().is_none());
        let none = Policy {
            keep_last: 0,
            ..Policy::default()
        };
        assert!(none.problem().unwrap().starts_with("keep-last"));
        let too_many = Policy {
            keep_monthly: MAX_KEEP + 1,
            ..Policy::default()
        };
        assert!(too_many.problem().unwrap().starts_with("keep-monthly"));
    }
}
