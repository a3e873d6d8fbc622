//! Which backups retention keeps, decided without touching anything: a pure
//! function of the catalog, the pins and the policies, so the console's dry
//! run, `lms-admin backup prune --dry-run` and the real pass agree, and a
//! property test can hold it against a reference model.
//!
//! Backups are grouped by the schedule that made them; each group follows
//! its schedule's policy in grandfather-father-son form: the last N, plus
//! the newest backup of each of the newest H hours, D days, W ISO weeks,
//! M months and Y years that have a backup, with periods read in the
//! schedule's zone. A period without a backup is not counted: when backups
//! stopped for a month, the daily ones from before are still kept. Manual,
//! uploaded and pre-restore backups, and those of a removed schedule, keep
//! the last `MAX_BACKUPS_TO_KEEP`.
//!
//! Whatever a policy says:
//! - only completed (verified) backups are ever deleted, and only they count
//!   toward what a policy keeps: failed, missing and running entries are
//!   left alone;
//! - pinned backups are kept and do not count either;
//! - the newest verified backup is kept, so every deleted backup has a newer
//!   verified one.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use lms_types::BackupStatus;
pub use lms_types::Policy;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Refuses a policy that keeps nothing or counts beyond reason, naming the
/// field.
pub fn check(policy: &Policy) -> Result<()> {
    match policy.problem() {
        Some(problem) => Err(Error::Invalid(problem)),
        None => Ok(()),
    }
}

/// The period counts of a policy, hourly first.
fn periods(policy: &Policy) -> [(u32, Period); 5] {
    [
        (policy.keep_hourly, Period::Hour),
        (policy.keep_daily, Period::Day),
        (policy.keep_weekly, Period::Week),
        (policy.keep_monthly, Period::Month),
        (policy.keep_yearly, Period::Year),
    ]
}

/// A period as a key that grows with time: (year, day of the year or
/// week or month, hour, 0).
pub type PeriodKey = (i32, u32, u32, u32);

/// A period a policy counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    fn adjective(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }

    /// The period `at` falls in, read in `zone`, as a key that grows with
    /// time (a repeated hour at the end of summer time is one hour).
    pub fn key(self, at: DateTime<Utc>, zone: Tz) -> PeriodKey {
        let local = at.with_timezone(&zone);
        match self {
            Period::Hour => (local.year(), local.ordinal(), local.hour(), 0),
            Period::Day => (local.year(), local.ordinal(), 0, 0),
            Period::Week => {
                let week = local.iso_week();
                (week.year(), week.week(), 0, 0)
            }
            Period::Month => (local.year(), local.month(), 0, 0),
            Period::Year => (local.year(), 0, 0, 0),
        }
    }

    /// The period `at` falls in, in words: "hour 2026-11-30 14:00",
    /// "day 2026-11-30", "week 2026-W48", "month 2026-11", "year 2026".
    pub fn label(self, at: DateTime<Utc>, zone: Tz) -> String {
        let local = at.with_timezone(&zone);
        match self {
            Period::Hour => format!("hour {}", local.format("%Y-%m-%d %H:00 %Z")),
            Period::Day => format!("day {}", local.format("%Y-%m-%d")),
            Period::Week => {
                let week = local.iso_week();
                format!("week {}-W{:02}", week.year(), week.week())
            }
            Period::Month => format!("month {}", local.format("%Y-%m")),
            Period::Year => format!("year {}", local.year()),
        }
    }
}

/// A catalog entry as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub filename: String,
    pub created_at: DateTime<Utc>,
    pub status: BackupStatus,
    /// The schedule that made it, if it still exists.
    pub schedule_id: Option<i64>,
    /// Why it is pinned, if it is.
    pub pinned: Option<String>,
}

/// A schedule's policy and the zone its periods are read in.
#[derive(Debug, Clone)]
pub struct Rules {
    pub name: String,
    pub policy: Policy,
    pub zone: Tz,
}

/// Every group's rules.
#[derive(Debug, Clone)]
pub struct Policies {
    /// By schedule id.
    pub schedules: HashMap<i64, Rules>,
    /// Everything else keeps the newest this many (`MAX_BACKUPS_TO_KEEP`).
    pub others_keep_last: u32,
}

/// What retention decides for one verified backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: i64,
    pub filename: String,
    pub created_at: DateTime<Utc>,
    pub keep: bool,
    /// The rule that keeps it, or the one under which it goes.
    pub rule: String,
}

/// Decides, for every completed backup, whether it is kept and by which
/// rule. Entries in any other state are not in the answer: they are never
/// deleted here. Newest first.
pub fn plan(entries: &[Entry], policies: &Policies) -> Vec<Verdict> {
    let mut verified: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.status == BackupStatus::Completed)
        .collect();
    verified.sort_by(|a, b| newest_first(a, b));

    // Per group, walking from the newest: how many the last-N rule has kept,
    // and for each period rule the periods it has kept one for.
    #[derive(Default)]
    struct Walk {
        last: u32,
        periods: HashMap<Period, (u32, Option<PeriodKey>)>,
    }
    let mut walks: HashMap<Option<i64>, Walk> = HashMap::new();

    let mut verdicts = Vec::with_capacity(verified.len());
    for (i, e) in verified.iter().enumerate() {
        let rules = e.schedule_id.and_then(|id| policies.schedules.get(&id));
        // Backups of a removed schedule join the manual ones.
        let group = rules.and(e.schedule_id);
        let keep = |rule: String| Verdict {
            id: e.id,
            filename: e.filename.clone(),
            created_at: e.created_at,
            keep: true,
            rule,
        };
        if let Some(reason) = &e.pinned {
            verdicts.push(keep(format!("pinned: {reason}")));
            continue;
        }
        let walk = walks.entry(group).or_default();
        let (policy, zone, who) = match rules {
            Some(r) => (r.policy, Some(r.zone), format!("schedule \"{}\"", r.name)),
            None => (
                Policy::last(policies.others_keep_last),
                None,
                "manual and uploaded backups".to_owned(),
            ),
        };
        let mut kept_by = None;
        if walk.last < policy.keep_last {
            walk.last += 1;
            kept_by = Some(format!("{who}: one of the last {}", policy.keep_last));
        }
        if let Some(zone) = zone {
            for (count, period) in periods(&policy) {
                if count == 0 {
                    continue;
                }
                let key = period.key(e.created_at, zone);
                let (used, last_key) = walk.periods.entry(period).or_insert((0, None));
                if *used < count && *last_key != Some(key) {
                    *used += 1;
                    *last_key = Some(key);
                    kept_by.get_or_insert_with(|| {
                        format!(
                            "{who}: newest of its {} ({} {})",
                            period.label(e.created_at, zone),
                            count,
                            period.adjective()
                        )
                    });
                }
            }
        }
        match kept_by {
            Some(rule) => verdicts.push(keep(rule)),
            None if i == 0 => verdicts.push(keep("the newest verified backup".into())),
            None => verdicts.push(Verdict {
                keep: false,
                rule: format!("{who}: beyond {}", policy.describe()),
                ..keep(String::new())
            }),
        }
    }
    verdicts
}

/// Newest first: by creation time, then by id (a clock set back can give
/// a later backup an earlier time; the order is still total).
pub fn newest_first(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    (b.created_at, b.id).cmp(&(a.created_at, a.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(id: i64, at: DateTime<Utc>, schedule: Option<i64>) -> Entry {
        Entry {
            id,
            filename: format!("b{id}.dump"),
            created_at: at,
            status: BackupStatus::Completed,
            schedule_id: schedule,
            pinned: None,
        }
    }

    fn nightly(policy: Policy) -> Policies {
        Policies {
            schedules: HashMap::from([(
                1,
                Rules {
                    name: "nightly".into(),
                    policy,
                    zone: "Europe/Berlin".parse().unwrap(),
                },
            )]),
            others_keep_last: 2,
        }
    }

    fn kept(verdicts: &[Verdict]) -> Vec<i64> {
        let mut ids: Vec<i64> = verdicts.iter().filter(|v| v.keep).map(|v| v.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn sixty_nightly_backups_keep_the_last_week_dailies_and_monthlies() {
        let start = Utc.with_ymd_and_hms(2026, 9, 1, 1, 0, 0).unwrap();
        let entries: Vec<Entry> = (0..60)
            .map(|d| entry(d + 1, start + chrono::Duration::days(d), Some(1)))
            .collect();
        let verdicts = plan(
            &entries,
            &nightly(Policy {
                keep_last: 3,
                keep_hourly: 0,
                keep_daily: 5,
                keep_weekly: 0,
                keep_monthly: 2,
                keep_yearly: 0,
            }),
        );
        // The last 5 days (56..60) cover the last 3; the newest of the two
        // newest months are Oct 30 (60) and Sep 30 (30).
        assert_eq!(kept(&verdicts), vec![30, 56, 57, 58, 59, 60]);
        let sep = verdicts.iter().find(|v| v.id == 30).unwrap();
        assert!(sep.rule.contains("month 2026-09"), "{}", sep.rule);
        let gone = verdicts.iter().find(|v| v.id == 10).unwrap();
        assert!(!gone.keep);
        assert!(
            gone.rule
                .contains("schedule \"nightly\": beyond the last 3, 5 daily, 2 monthly"),
            "{}",
            gone.rule
        );
    }

    #[test]
    fn periods_are_read_in_the_schedules_zone() {
        // 23:30 UTC on Nov 30 is Dec 1 in Berlin: two backups that day.
        let a = entry(
            1,
            Utc.with_ymd_and_hms(2026, 11, 30, 22, 30, 0).unwrap(),
            Some(1),
        );
        let b = entry(
            2,
            Utc.with_ymd_and_hms(2026, 11, 30, 23, 30, 0).unwrap(),
            Some(1),
        );
        let c = entry(
            3,
            Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap(),
            Some(1),
        );
        let verdicts = plan(
            &[a, b, c],
            &nightly(Policy {
                keep_last: 1,
                keep_daily: 2,
                ..Policy::last(1)
            }),
        );
        // Dec 1 Berlin: 3 (newest) and 2; Nov 30 Berlin: 1.
        assert_eq!(kept(&verdicts), vec![1, 3]);
    }

    #[test]
    fn pins_failures_and_the_newest_are_kept_and_do_not_count() {
        let t = |h| Utc.with_ymd_and_hms(2026, 11, 1, h, 0, 0).unwrap();
        let mut failed = entry(5, t(5), None);
        failed.status = BackupStatus::Failed;
        let mut pinned = entry(1, t(1), None);
        pinned.pinned = Some("before the term upgrade".into());
        let entries = vec![
            pinned,
            entry(2, t(2), None),
            entry(3, t(3), None),
            entry(4, t(4), None),
            failed,
        ];
        let verdicts = plan(&entries, &nightly(Policy::default()));
        assert_eq!(
            kept(&verdicts),
            vec![1, 3, 4],
            "the last 2 manual, and the pin"
        );
        assert!(
            verdicts.iter().all(|v| v.id != 5),
            "failed entries are not decided"
        );
        assert_eq!(
            verdicts.iter().find(|v| v.id == 1).unwrap().rule,
            "pinned: before the term upgrade"
        );
    }
}
