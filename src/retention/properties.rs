//! Retention held against a reference model over random histories: backups
//! of two schedules in two zones and manual ones, failures, missing files,
//! pins, and a clock that jumps back and forth (so creation order and id
//! order disagree).
//!
//! The model says the same thing another way: per group and period, the
//! distinct periods that have a backup, the newest of them taken, and the
//! newest backup of each kept; where `plan` walks the backups once from the
//! newest.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use lms_types::BackupStatus;
use proptest::prelude::*;

use super::policy::{
    newest_first, plan, Entry, Period, PeriodKey, Policies, Policy, Rules, Verdict,
};

const PERIODS: [Period; 5] = [
    Period::Hour,
    Period::Day,
    Period::Week,
    Period::Month,
    Period::Year,
];

fn counts(p: &Policy) -> [u32; 5] {
    [
        p.keep_hourly,
        p.keep_daily,
        p.keep_weekly,
        p.keep_monthly,
        p.keep_yearly,
    ]
}

/// The ids the model keeps.
fn model(entries: &[Entry], policies: &Policies) -> BTreeSet<i64> {
    let mut completed: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.status == BackupStatus::Completed)
        .collect();
    completed.sort_by(|a, b| newest_first(a, b));
    let mut keep = BTreeSet::new();
    if let Some(newest) = completed.first() {
        keep.insert(newest.id);
    }
    keep.extend(
        completed
            .iter()
            .filter(|e| e.pinned.is_some())
            .map(|e| e.id),
    );

    let mut groups: HashMap<Option<i64>, Vec<&Entry>> = HashMap::new();
    for e in completed.iter().filter(|e| e.pinned.is_none()) {
        let group = e
            .schedule_id
            .filter(|id| policies.schedules.contains_key(id));
        groups.entry(group).or_default().push(e);
    }
    for (group, members) in groups {
        // `members` are newest first.
        let (policy, zone) = match group.and_then(|id| policies.schedules.get(&id)) {
            Some(r) => (r.policy, Some(r.zone)),
            None => (Policy::last(policies.others_keep_last), None),
        };
        keep.extend(members.iter().take(policy.keep_last as usize).map(|e| e.id));
        let Some(zone) = zone else { continue };
        for (period, count) in PERIODS.iter().zip(counts(&policy)) {
            let mut newest_of: HashMap<PeriodKey, &Entry> = HashMap::new();
            for e in &members {
                // The first seen is the newest.
                newest_of.entry(period.key(e.created_at, zone)).or_insert(e);
            }
            let mut periods: Vec<_> = newest_of.keys().copied().collect();
            periods.sort_unstable_by(|a, b| b.cmp(a));
            for p in periods.into_iter().take(count as usize) {
                keep.insert(newest_of[&p].id);
            }
        }
    }
    keep
}

fn kept(verdicts: &[Verdict]) -> BTreeSet<i64> {
    verdicts.iter().filter(|v| v.keep).map(|v| v.id).collect()
}

fn zones() -> [Tz; 4] {
    [
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::UTC,
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (1u32..6, 0u32..5, 0u32..6, 0u32..4, 0u32..4, 0u32..3).prop_map(
        |(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)| Policy {
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_yearly,
        },
    )
}

/// One backup as generated: minutes after the previous one's time (negative:
/// the clock went back), its schedule (0, 1, 2: manual, 3: a removed
/// schedule), its status and whether it is pinned.
fn step() -> impl Strategy<Value = (i64, u8, u8, bool)> {
    (
        prop_oneof![
            6 => 1i64..180,
            3 => 180i64..3_000,
            2 => 3_000i64..60_000,
            1 => -3_000i64..0,
        ],
        0u8..4,
        0u8..10,
        prop::bool::weighted(0.08),
    )
}

fn history(steps: &[(i64, u8, u8, bool)], start: DateTime<Utc>) -> Vec<Entry> {
    let mut at = start;
    steps
        .iter()
        .enumerate()
        .map(|(i, &(minutes, schedule, status, pinned))| {
            at += Duration::minutes(minutes);
            Entry {
                id: i as i64 + 1,
                filename: format!("backup_{}.dump", i + 1),
                created_at: at,
                status: match status {
                    0 => BackupStatus::Failed,
                    1 => BackupStatus::Missing,
                    2 if i + 1 == steps.len() => BackupStatus::Running,
                    _ => BackupStatus::Completed,
                },
                schedule_id: match schedule {
                    0 | 1 => Some(schedule as i64 + 1),
                    2 => None,
                    _ => Some(99),
                },
                pinned: pinned.then(|| format!("pin {}", i + 1)),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn plan_agrees_with_the_model_and_keeps_its_promises(
        steps in prop::collection::vec(step(), 0..120),
        first in policy(),
        second in policy(),
        zone_a in 0usize..4,
        zone_b in 0usize..4,
        others in 1u32..5,
        start_hours in 0i64..(24 * 365 * 6),
    ) {
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::hours(start_hours);
        let entries = history(&steps, start);
        let policies = Policies {
            schedules: HashMap::from([
                (1, Rules { name: "nightly".into(), policy: first, zone: zones()[zone_a] }),
                (2, Rules { name: "hourly".into(), policy: second, zone: zones()[zone_b] }),
            ]),
            others_keep_last: others,
        };
        let verdicts = plan(&entries, &policies);

        // Exactly the completed backups are decided, each once.
        let completed: Vec<&Entry> = entries.iter().filter(|e| e.status == BackupStatus::Completed).collect();
        prop_assert_eq!(verdicts.len(), completed.len());
        prop_assert_eq!(
            verdicts.iter().map(|v| v.id).collect::<BTreeSet<_>>(),
            completed.iter().map(|e| e.id).collect::<BTreeSet<_>>()
        );

        // The same answer as the model.
        prop_assert_eq!(kept(&verdicts), model(&entries, &policies));

        let by_id: HashMap<i64, &Entry> = entries.iter().map(|e| (e.id, e)).collect();
        if let Some(newest) = completed.iter().min_by(|a, b| newest_first(a, b)) {
            prop_assert!(kept(&verdicts).contains(&newest.id), "the newest verified backup is kept");
        }
        for v in verdicts.iter().filter(|v| !v.keep) {
            let gone = by_id[&v.id];
            prop_assert!(gone.pinned.is_none(), "a pinned backup is never deleted");
            prop_assert!(
                verdicts.iter().any(|k| k.keep
                    && newest_first(by_id[&k.id], gone) == std::cmp::Ordering::Less),
                "{} is deleted with no newer verified backup kept", v.filename
            );
            prop_assert!(v.rule.contains("beyond"), "{}", v.rule);
        }
        for v in verdicts.iter().filter(|v| v.keep) {
            prop_assert!(!v.rule.is_empty());
        }

        // Failed, missing and running entries change nothing.
        let only_completed: Vec<Entry> = entries.iter().filter(|e| e.status == BackupStatus::Completed).cloned().collect();
        prop_assert_eq!(&plan(&only_completed, &policies), &verdicts);

        // A second pass over what the first kept deletes nothing more.
        let survivors: Vec<Entry> = entries.iter().filter(|e| {
            e.status != BackupStatus::Completed || kept(&verdicts).contains(&e.id)
        }).cloned().collect();
        prop_assert!(plan(&survivors, &policies).iter().all(|v| v.keep));
    }
}
