//! Date parts (`DAY`, `WEEK(MONDAY)`, `'month'`, ...) and calendar arithmetic on days since
//! the Unix epoch, shared by `DATE_DIFF`, `DATE_TRUNC` and friends.

use chrono::{Datelike, NaiveDate, Weekday};
use datafusion::common::{Result, exec_err};

/// A unit of `DATE_DIFF` / `DATE_TRUNC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    /// Weeks starting on the given day (`WEEK` is Sunday in BigQuery, Monday elsewhere).
    Week(Weekday),
    Month,
    Quarter,
    Year,
    IsoYear,
}

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

impl Part {
    /// Parses a part name, case-insensitively, singular or plural. `default_week_start`
    /// is what plain `WEEK` means in the calling dialect.
    pub fn parse(func: &str, s: &str, default_week_start: Weekday) -> Result<Part> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower
            .strip_suffix('s')
            .filter(|n| !n.is_empty() && *n != "micro")
            .unwrap_or(&lower);
        Ok(match name {
            "microsecond" | "us" | "usec" => Part::Microsecond,
            "millisecond" | "ms" | "msec" => Part::Millisecond,
            "second" | "sec" => Part::Second,
            "minute" | "min" => Part::Minute,
            "hour" | "h" => Part::Hour,
            "day" | "d" | "dayofyear" => Part::Day,
            "week" => Part::Week(default_week_start),
            "isoweek" => Part::Week(Weekday::Mon),
            "month" | "mon" => Part::Month,
            "quarter" => Part::Quarter,
            "year" | "y" | "yr" => Part::Year,
            "isoyear" => Part::IsoYear,
            other => {
                if let Some(day) = other
                    .strip_prefix("week(")
                    .and_then(|r| r.strip_suffix(')'))
                {
                    let wd = match day.trim() {
                        "sunday" => Weekday::Sun,
                        "monday" => Weekday::Mon,
                        "tuesday" => Weekday::Tue,
                        "wednesday" => Weekday::Wed,
                        "thursday" => Weekday::Thu,
                        "friday" => Weekday::Fri,
                        "saturday" => Weekday::Sat,
                        _ => return exec_err!("{func}: unknown week start in '{s}'"),
                    };
                    Part::Week(wd)
                } else {
                    return exec_err!(
                        "{func}: unknown date part '{s}' (use microsecond, millisecond, second, minute, hour, day, week, isoweek, month, quarter, year or isoyear)"
                    );
                }
            }
        })
    }

    /// Length of a fixed-size part in microseconds (None for calendar parts).
    pub fn micros(self) -> Option<i64> {
        match self {
            Part::Microsecond => Some(1),
            Part::Millisecond => Some(1_000),
            Part::Second => Some(1_000_000),
            Part::Minute => Some(60_000_000),
            Part::Hour => Some(3_600_000_000),
            Part::Day => Some(MICROS_PER_DAY),
            _ => None,
        }
    }
}

pub fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")
}

pub fn date_of(days: i32) -> NaiveDate {
    epoch() + chrono::Duration::days(days as i64)
}

pub fn days_of(date: NaiveDate) -> i32 {
    (date - epoch()).num_days() as i32
}

/// Index of the week containing `days` for weeks starting on `start` (1970-01-01 was a Thursday).
pub fn week_index(days: i64, start: Weekday) -> i64 {
    let offset = (Weekday::Thu.num_days_from_monday() as i64 - start.num_days_from_monday() as i64)
        .rem_euclid(7);
    (days + offset).div_euclid(7)
}

/// Number of `part` boundaries between two dates (`end - start`), for calendar parts.
pub fn date_boundaries(part: Part, start: i32, end: i32) -> Option<i64> {
    let (s, e) = (date_of(start), date_of(end));
    Some(match part {
        Part::Day => end as i64 - start as i64,
        Part::Week(wd) => week_index(end as i64, wd) - week_index(start as i64, wd),
        Part::Month => {
            (e.year() as i64 * 12 + e.month0() as i64) - (s.year() as i64 * 12 + s.month0() as i64)
        }
        Part::Quarter => {
            (e.year() as i64 * 4 + e.month0() as i64 / 3)
                - (s.year() as i64 * 4 + s.month0() as i64 / 3)
        }
        Part::Year => e.year() as i64 - s.year() as i64,
        Part::IsoYear => e.iso_week().year() as i64 - s.iso_week().year() as i64,
        _ => return None,
    })
}

/// Truncates a date (days since epoch) to the start of its `part`.
pub fn trunc_date(part: Part, days: i32) -> Option<i32> {
    let d = date_of(days);
    let out = match part {
        Part::Day => d,
        Part::Week(wd) => {
            let back = (d.weekday().num_days_from_monday() as i64
                - wd.num_days_from_monday() as i64)
                .rem_euclid(7);
            d - chrono::Duration::days(back)
        }
        Part::Month => d.with_day(1)?,
        Part::Quarter => NaiveDate::from_ymd_opt(d.year(), d.month0() / 3 * 3 + 1, 1)?,
        Part::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1)?,
        Part::IsoYear => NaiveDate::from_isoywd_opt(d.iso_week().year(), 1, Weekday::Mon)?,
        _ => return None,
    };
    Some(days_of(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks() {
        let sun = days_of(NaiveDate::from_ymd_opt(2024, 1, 7).unwrap());
        let sat = sun - 1;
        assert_eq!(date_boundaries(Part::Week(Weekday::Sun), sat, sun), Some(1));
        assert_eq!(date_boundaries(Part::Week(Weekday::Mon), sat, sun), Some(0));
        assert_eq!(trunc_date(Part::Week(Weekday::Mon), sun), Some(sun - 6));
        assert_eq!(trunc_date(Part::Week(Weekday::Sun), sun), Some(sun));
    }

    #[test]
    fn parts_parse() {
        assert_eq!(Part::parse("f", "Days", Weekday::Sun).unwrap(), Part::Day);
        assert_eq!(
            Part::parse("f", "WEEK(MONDAY)", Weekday::Sun).unwrap(),
            Part::Week(Weekday::Mon)
        );
        assert!(Part::parse("f", "fortnight", Weekday::Sun).is_err());
    }
}
