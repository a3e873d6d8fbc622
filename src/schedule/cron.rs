//! When a schedule is due: a cron expression read in an IANA time zone.
//!
//! Parsing and the search for due times are the `croner` crate's; zones are
//! `chrono-tz`'s. Nothing here does date arithmetic of its own. Across
//! daylight-saving changes croner follows Vixie cron. An expression with one
//! minute and one hour (a time of day, `30 2 * * *`, `@daily`) runs once a
//! day whatever the clocks do: in the hour the clocks skip it runs once, at
//! the first instant after the gap; in the hour they repeat it runs once, at
//! its first occurrence. Any other expression (`*/15 * * * *`, `@hourly`,
//! several hours such as `30 1,2 * * *`) keeps its pace in real time: a
//! slot inside the skipped hour does not exist, and both halves of a
//! repeated hour are real time that passes, so each runs.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use crate::{Error, Result};

/// A parsed cron expression and the zone it is read in.
#[derive(Debug, Clone)]
pub struct Timing {
    cron: Cron,
    zone: Tz,
}

/// At most this many due times are listed between two instants (a catch-up
/// after a long downtime counts the rest without listing them).
pub const MAX_LISTED: usize = 1000;

impl Timing {
    /// Reads `expression` (five fields, or `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`, `@yearly`) in `zone` (an IANA name such as
    /// `Europe/Berlin`). The error names the field that is wrong.
    pub fn parse(expression: &str, zone: &str) -> Result<Self> {
        let zone = parse_zone(zone)?;
        let expression = expression.trim();
        if expression.is_empty() {
            return Err(Error::Invalid(
                "cron: enter an expression, such as \"0 2 * * *\" (every day at 02:00) or @daily."
                    .into(),
            ));
        }
        if !expression.starts_with('@') && expression.split_whitespace().count() != 5 {
            return Err(Error::Invalid(format!(
                "cron: \"{expression}\" has {} fields; use five (minute hour day-of-month month \
                 day-of-week), such as \"30 2 * * *\", or @hourly, @daily, @weekly, @monthly.",
                expression.split_whitespace().count()
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| {
                Error::Invalid(format!(
                    "cron: \"{expression}\" is not a valid expression ({e}). Use five fields \
                     (minute hour day-of-month month day-of-week), such as \"30 2 * * *\"."
                ))
            })?;
        let timing = Self { cron, zone };
        // An expression that never matches (30 February) is refused now,
        // not discovered when nothing runs.
        timing.next_after(Utc::now()).map_err(|_| {
            Error::Invalid(format!(
                "cron: \"{expression}\" never comes due; check the day and month fields."
            ))
        })?;
        Ok(timing)
    }

    /// The zone the expression is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first due time strictly after `instant`.
    pub fn next_after(&self, instant: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let local = instant.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::Invalid(format!("cron: no due time after {instant} ({e})")))
    }

    /// The next `n` due times after `instant`.
    pub fn upcoming(&self, instant: DateTime<Utc>, n: usize) -> Result<Vec<DateTime<Utc>>> {
        let mut times = Vec::with_capacity(n);
        let mut at = instant;
        for _ in 0..n {
            at = self.next_after(at)?;
            times.push(at);
        }
        Ok(times)
    }

    /// The due times from `first` (itself a due time) up to and including
    /// `until`, at most [`MAX_LISTED`] of them, and how many there are in
    /// all.
    pub fn due_between(
        &self,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(Vec<DateTime<Utc>>, u64)> {
        let mut listed = Vec::new();
        let mut count = 0u64;
        let mut at = first;
        while at <= until {
            count += 1;
            if listed.len() < MAX_LISTED {
                listed.push(at);
            } else {
                // Past the list: keep only the newest, counting the rest.
                *listed.last_mut().expect("listed is full") = at;
            }
            at = self.next_after(at)?;
        }
        Ok((listed, count))
    }

    /// About how far apart due times are: the shortest gap among the next
    /// few (a recovery point objective defaults to twice this).
    pub fn interval(&self, from: DateTime<Utc>) -> Result<chrono::Duration> {
        let times = self.upcoming(from, 6)?;
        Ok(times
            .windows(2)
            .map(|w| w[1] - w[0])
            .min()
            .unwrap_or_else(|| chrono::Duration::days(1)))
    }
}

/// An IANA zone name, or an error naming the field.
pub fn parse_zone(zone: &str) -> Result<Tz> {
    let zone = zone.trim();
    zone.parse::<Tz>().map_err(|_| {
        Error::Invalid(format!(
            "timezone: \"{zone}\" is not an IANA time zone; use a name such as Europe/Berlin, \
             America/New_York or UTC."
        ))
    })
}

/// The zone this server's clock is set to (`TZ`, else the system's), or
/// UTC when it cannot be told.
pub fn server_zone() -> Tz {
    std::env::var("TZ")
        .ok()
        .and_then(|z| z.trim_start_matches(':').parse::<Tz>().ok())
        .or_else(|| iana_time_zone::get_timezone().ok()?.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin(expression: &str) -> Timing {
        Timing::parse(expression, "Europe/Berlin").unwrap()
    }

    #[test]
    fn a_daily_time_in_the_skipped_hour_runs_once_right_after_the_gap() {
        // 2026-03-29: Berlin's clocks go from 02:00 CET to 03:00 CEST.
        let t = berlin("30 2 * * *");
        let runs = t.upcoming(utc("2026-03-27T12:00:00Z"), 4).unwrap();
        let local: Vec<String> = runs
            .iter()
            .map(|r| r.with_timezone(&t.zone()).to_rfc3339())
            .collect();
        assert_eq!(
            local,
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00",
                "2026-03-31T02:30:00+02:00",
            ]
        );
    }

    #[test]
    fn a_daily_time_in_the_repeated_hour_runs_once() {
        // 2026-10-25: Berlin's clocks go from 03:00 CEST back to 02:00 CET.
        let t = berlin("30 2 * * *");
        let runs = t.upcoming(utc("2026-10-24T12:00:00Z"), 3).unwrap();
        assert_eq!(
            runs,
            [
                utc("2026-10-25T00:30:00Z"), // 02:30 CEST, the first of the two
                utc("2026-10-26T01:30:00Z"),
                utc("2026-10-27T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn us_zone_changes_are_followed_too() {
        // New York: 2026-03-08 02:00 → 03:00; 2026-11-01 02:00 → 01:00.
        let spring = Timing::parse("30 2 * * *", "America/New_York")
            .unwrap()
            .upcoming(utc("2026-03-07T12:00:00Z"), 3)
            .unwrap();
        assert_eq!(
            spring,
            [
                utc("2026-03-08T07:00:00Z"), // 02:30 does not exist: 03:00 EDT
                utc("2026-03-09T06:30:00Z"), // 02:30 EDT
                utc("2026-03-10T06:30:00Z"),
            ]
        );
        let autumn = Timing::parse("30 1 * * *", "America/New_York")
            .unwrap()
            .upcoming(utc("2026-10-31T12:00:00Z"), 3)
            .unwrap();
        assert_eq!(
            autumn,
            [
                utc("2026-11-01T05:30:00Z"), // 01:30 EDT, once
                utc("2026-11-02T06:30:00Z"), // 01:30 EST
                utc("2026-11-03T06:30:00Z"),
            ]
        );
    }

    #[test]
    fn several_hours_keep_real_time_pace() {
        // Not a single time of day: 02:30 inside the gap does not exist, and
        // 01:30 in the repeated hour is two real instants.
        let t = Timing::parse("30 1,2 * * *", "America/New_York").unwrap();
        assert_eq!(
            t.upcoming(utc("2026-03-08T05:00:00Z"), 2).unwrap(),
            [utc("2026-03-08T06:30:00Z"), utc("2026-03-09T05:30:00Z")]
        );
        assert_eq!(
            t.upcoming(utc("2026-11-01T04:00:00Z"), 3).unwrap(),
            [
                utc("2026-11-01T05:30:00Z"),
                utc("2026-11-01T06:30:00Z"),
                utc("2026-11-01T07:30:00Z")
            ]
        );
    }

    #[test]
    fn an_hourly_schedule_keeps_real_time_pace_across_both_changes() {
        let t = berlin("@hourly");
        let spring = t.upcoming(utc("2026-03-29T00:30:00Z"), 3).unwrap();
        assert_eq!(
            spring,
            [
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-29T02:00:00Z"),
                utc("2026-03-29T03:00:00Z")
            ]
        );
        let autumn = t.upcoming(utc("2026-10-25T00:30:00Z"), 3).unwrap();
        assert_eq!(
            autumn,
            [
                utc("2026-10-25T01:00:00Z"),
                utc("2026-10-25T02:00:00Z"),
                utc("2026-10-25T03:00:00Z")
            ]
        );
    }

    #[test]
    fn due_times_between_two_instants_are_listed_and_counted() {
        let t = Timing::parse("0 * * * *", "UTC").unwrap();
        let (listed, count) = t
            .due_between(utc("2026-01-01T00:00:00Z"), utc("2026-01-01T05:30:00Z"))
            .unwrap();
        assert_eq!(count, 6);
        assert_eq!(listed.len(), 6);
        assert_eq!(listed[5], utc("2026-01-01T05:00:00Z"));
        let (listed, count) = Timing::parse("* * * * *", "UTC")
            .unwrap()
            .due_between(utc("2026-01-01T00:00:00Z"), utc("2026-01-02T00:00:00Z"))
            .unwrap();
        assert_eq!(count, 24 * 60 + 1);
        assert_eq!(listed.len(), MAX_LISTED);
        assert_eq!(*listed.last().unwrap(), utc("2026-01-02T00:00:00Z"));
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = Timing::parse("0 2 * *", "UTC").unwrap_err().to_string();
        assert!(e.starts_with("cron:") && e.contains("4 fields"), "{e}");
        let e = Timing::parse("61 2 * * *", "UTC").unwrap_err().to_string();
        assert!(e.starts_with("cron:"), "{e}");
        let e = Timing::parse("0 2 30 2 *", "UTC").unwrap_err().to_string();
        assert!(e.contains("never comes due"), "{e}");
        let e = Timing::parse("0 2 * * *", "Europe/Atlantis")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("timezone:") && e.contains("Europe/Atlantis"),
            "{e}"
        );
        assert!(Timing::parse("@daily", "America/New_York").is_ok());
    }

    #[test]
    fn the_interval_is_the_shortest_gap() {
        let t = Timing::parse("0 2 * * *", "UTC").unwrap();
        assert_eq!(
            t.interval(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
                .unwrap(),
            chrono::Duration::days(1)
        );
    }
}
