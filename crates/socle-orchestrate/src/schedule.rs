//! Schedules and data intervals, as Airflow has them: a run covers the interval between
//! two schedule ticks and is due at the end of it; its logical date is the start.
//!
//! Cron expressions (5 fields, or 6 with seconds first) and the presets `@hourly`,
//! `@daily`, `@weekly`, `@monthly`, `@yearly` are read by `croner` and evaluated in the
//! pipeline's time zone (`chrono-tz`), so a daily run at 02:30 in a zone that skips that
//! hour on the day clocks go forward still runs once, and intervals across DST changes
//! are 23 or 25 hours long.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// How far from its start (in wall-clock hours) a search walks past ticks that do not fit;
/// longer than any change of a zone's offset.
const SEARCH_SPAN_HOURS: i64 = 26;
/// The most ticks a search looks at: every second of [`SEARCH_SPAN_HOURS`], and more.
const SEARCH_TICKS: u32 = 100_000;

#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    pub tz: Tz,
    cron: Cron,
}

impl Schedule {
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, String> {
        let cron = Cron::from_str(expr.trim()).map_err(|e| format!("`{expr}`: {e}"))?;
        Ok(Self {
            expr: expr.trim().to_string(),
            tz,
            cron,
        })
    }

    /// The first tick strictly after `t` (inclusive when `inclusive`).
    pub fn next(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        self.find(t, inclusive, true)
    }

    /// The last tick strictly before `t` (inclusive when `inclusive`).
    pub fn previous(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        self.find(t, inclusive, false)
    }

    /// The cron expression is matched against wall-clock times of the zone; a wall-clock
    /// tick that does not exist (clocks going forward) runs at the same offset after the
    /// change (02:30 becomes 03:30), and one that exists twice (clocks going back) runs
    /// once, at the first.
    ///
    /// Ticks whose instant does not fit are those of the repeated hour after `t` (their
    /// first pass is over) or of the skipped hour before it: the search walks past them,
    /// as many as the schedule has there (3,600 for every second), and gives up only on
    /// ticks more than [`SEARCH_SPAN_HOURS`] of wall-clock time away.
    fn find(&self, t: DateTime<Utc>, inclusive: bool, forward: bool) -> Option<DateTime<Utc>> {
        let start = Utc.from_utc_datetime(&t.with_timezone(&self.tz).naive_local());
        let mut wall = start;
        let mut incl = inclusive;
        for _ in 0..SEARCH_TICKS {
            let tick = if forward {
                self.cron.find_next_occurrence(&wall, incl).ok()?
            } else {
                self.cron.find_previous_occurrence(&wall, incl).ok()?
            };
            let at = self.instant(tick.naive_utc());
            let fits = if forward {
                at > t || (inclusive && at == t)
            } else {
                at < t || (inclusive && at == t)
            };
            if fits {
                return Some(at);
            }
            if (tick - start).abs() > chrono::Duration::hours(SEARCH_SPAN_HOURS) {
                return None;
            }
            wall = tick;
            incl = false;
        }
        None
    }

    /// The instant of a wall-clock time in the zone (see [`Schedule::find`]).
    fn instant(&self, wall: chrono::NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&wall) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            chrono::LocalResult::None => {
                // In a gap: read the wall-clock time with the offset in force before it.
                for minutes in [60, 120, 180] {
                    let before = wall - chrono::Duration::minutes(minutes);
                    if let Some(t) = self.tz.from_local_datetime(&before).earliest() {
                        let offset = t.offset().fix().local_minus_utc();
                        return Utc.from_utc_datetime(
                            &(wall - chrono::Duration::seconds(i64::from(offset))),
                        );
                    }
                }
                Utc.from_utc_datetime(&wall)
            }
        }
    }

    /// The interval that starts at the tick at or before `t`.
    pub fn interval_at(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let start = self.previous(t, true)?;
        Some((start, self.next(start, false)?))
    }

    /// The latest interval that has ended by `now` (what the scheduler would run next).
    pub fn latest_complete(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let end = self.previous(now, true)?;
        Some((self.previous(end, false)?, end))
    }
}

/// Midnight of `date` in `tz` (the first instant of the day when midnight is skipped).
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut t = date.and_hms_opt(0, 0, 0).expect("midnight");
    for _ in 0..4 {
        if let Some(local) = tz.from_local_datetime(&t).earliest() {
            return local.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
}

#[cfg(test)]
#[path = "schedule_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_intervals_follow_the_time_zone_across_dst() {
        let s = Schedule::parse("@daily", chrono_tz::Europe::Paris).unwrap();
        // 2024-03-31: clocks go from 02:00 to 03:00 in Paris; the day is 23 hours long.
        let (start, end) = s.interval_at(utc("2024-03-31T12:00:00Z")).unwrap();
        assert_eq!(start, utc("2024-03-30T23:00:00Z"));
        assert_eq!(end, utc("2024-03-31T22:00:00Z"));
        // 2024-10-27: back from 03:00 to 02:00; 25 hours.
        let (start, end) = s.interval_at(utc("2024-10-27T12:00:00Z")).unwrap();
        assert_eq!(start, utc("2024-10-26T22:00:00Z"));
        assert_eq!(end, utc("2024-10-27T23:00:00Z"));
    }

    #[test]
    fn a_skipped_local_time_still_runs_that_day() {
        // 02:30 does not exist in Paris on 2024-03-31.
        let s = Schedule::parse("30 2 * * *", chrono_tz::Europe::Paris).unwrap();
        let next = s.next(utc("2024-03-30T02:00:00Z"), false).unwrap();
        assert_eq!(next, utc("2024-03-31T01:30:00Z"), "03:30 Paris summer time");
        assert_eq!(s.next(next, false), Some(utc("2024-04-01T00:30:00Z")));
        assert_eq!(s.previous(utc("2024-04-01T00:00:00Z"), false), Some(next));
        // Clocks going back: 02:30 happens twice on 2024-10-27 and runs once.
        let a = s.next(utc("2024-10-26T12:00:00Z"), false).unwrap();
        assert_eq!(a, utc("2024-10-27T00:30:00Z"));
        assert_eq!(s.next(a, false), Some(utc("2024-10-28T01:30:00Z")));
    }

    #[test]
    fn latest_complete_interval_and_seconds() {
        let s = Schedule::parse("0 * * * *", chrono_tz::UTC).unwrap();
        let (a, b) = s.latest_complete(utc("2024-05-01T10:30:00Z")).unwrap();
        assert_eq!(
            (a, b),
            (utc("2024-05-01T09:00:00Z"), utc("2024-05-01T10:00:00Z"))
        );
        let every_10s = Schedule::parse("*/10 * * * * *", chrono_tz::UTC).unwrap();
        assert_eq!(
            every_10s.next(utc("2024-05-01T10:30:01Z"), false),
            Some(utc("2024-05-01T10:30:10Z"))
        );
        assert!(Schedule::parse("61 * * * *", chrono_tz::UTC).is_err());
        assert!(Schedule::parse("@sometimes", chrono_tz::UTC).is_err());
    }

    /// Found while writing the property tests: in the hour that clocks going back repeat, every
    /// minute of the schedule maps to the first pass, already over; the search gave up after 8
    /// ticks and there was no next run (nor a previous one just after a skipped hour).
    #[test]
    fn regression_every_minute_across_a_repeated_and_a_skipped_hour() {
        let s = Schedule::parse("* * * * *", chrono_tz::Europe::Paris).unwrap();
        // 02:30 CET, the second pass of 02:00-03:00 on 2024-10-27.
        assert_eq!(
            s.next(utc("2024-10-27T01:30:00Z"), false),
            Some(utc("2024-10-27T02:00:00Z"))
        );
        // 03:00 CEST on 2024-03-31, just after the skipped hour.
        assert_eq!(
            s.previous(utc("2024-03-31T01:00:00Z"), false),
            Some(utc("2024-03-31T00:59:00Z"))
        );
        let every_second = Schedule::parse("* * * * * *", chrono_tz::Europe::Paris).unwrap();
        assert_eq!(
            every_second.next(utc("2024-10-27T01:00:00Z"), false),
            Some(utc("2024-10-27T02:00:00Z"))
        );
    }

    #[test]
    fn midnight_that_does_not_exist() {
        // America/Sao_Paulo skipped midnight on 2018-11-04.
        let t = start_of_day(
            NaiveDate::from_ymd_opt(2018, 11, 4).unwrap(),
            chrono_tz::America::Sao_Paulo,
        );
        assert_eq!(t, utc("2018-11-04T03:00:00Z"));
    }
}
