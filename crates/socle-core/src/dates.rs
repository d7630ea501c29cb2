//! A run's dates, Airflow-style: the data interval it covers (`start` to `end`, instants in
//! UTC) and the time zone of its pipeline's schedule, in which its logical date (`ds`) and
//! the template values are read. One type from the scheduler to every task kind and
//! connector: nothing travels as text to be parsed back.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The data interval of a run, and the time zone it is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunDates {
    /// Start of the data interval (its logical date is this day, in `tz`).
    pub start: DateTime<Utc>,
    /// End of the data interval (exclusive).
    pub end: DateTime<Utc>,
    /// The schedule's time zone (UTC without a schedule).
    pub tz: Tz,
}

impl RunDates {
    /// The day `date` in UTC: from its midnight to the next.
    pub fn day(date: NaiveDate) -> Self {
        let start = date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        Self {
            start,
            end: start + chrono::Duration::days(1),
            tz: chrono_tz::UTC,
        }
    }

    /// The logical date: the interval's start, as a date in the time zone.
    pub fn logical_date(&self) -> NaiveDate {
        self.local_start().date_naive()
    }

    /// The logical date as `YYYY-MM-DD` (Airflow's `ds`).
    pub fn ds(&self) -> String {
        self.logical_date().format("%Y-%m-%d").to_string()
    }

    /// The interval's start in the time zone.
    pub fn local_start(&self) -> DateTime<Tz> {
        self.start.with_timezone(&self.tz)
    }

    /// The interval's end in the time zone.
    pub fn local_end(&self) -> DateTime<Tz> {
        self.end.with_timezone(&self.tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logical_date_is_read_in_the_time_zone() {
        let d = RunDates {
            start: "2024-03-30T23:00:00Z".parse().unwrap(),
            end: "2024-03-31T22:00:00Z".parse().unwrap(),
            tz: chrono_tz::Europe::Paris,
        };
        assert_eq!(d.ds(), "2024-03-31");
        assert_eq!(d.local_start().to_rfc3339(), "2024-03-31T00:00:00+01:00");
        assert_eq!(d.local_end().to_rfc3339(), "2024-04-01T00:00:00+02:00");
        let day = RunDates::day(NaiveDate::from_ymd_opt(2024, 6, 30).unwrap());
        assert_eq!(day.ds(), "2024-06-30");
        assert_eq!(day.end.to_rfc3339(), "2024-07-01T00:00:00+00:00");
    }
}
