//! Property tests of cron schedules ([`Schedule`]):
//! - parsing any text answers (a schedule or an error), never panics;
//! - for generated 5-field expressions in zones without DST, the next tick is after `t`,
//!   matches every field, and no tick lies between them (the previous tick of the next one
//!   is at or before `t`); the same for the previous tick, and `interval_at(t)` holds `t`;
//! - in zones with DST, around their changes (skipped and repeated hours, 30-minute
//!   changes), every schedule still has a next tick after `t` and a previous one before it.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::Schedule;

/// One cron field.
#[derive(Debug, Clone)]
enum Field {
    Star,
    List(Vec<u32>),
    Range(u32, u32),
    /// `*/n`: every n-th value from the field's first.
    Step(u32),
}

impl Field {
    fn text(&self) -> String {
        match self {
            Field::Star => "*".into(),
            Field::List(v) => v.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            Field::Range(a, b) => format!("{a}-{b}"),
            Field::Step(n) => format!("*/{n}"),
        }
    }

    /// Whether `v` matches, in a field of values `min..=max`.
    fn matches(&self, v: u32, min: u32, max: u32) -> bool {
        match self {
            Field::Star => (min..=max).contains(&v),
            Field::List(l) => l.contains(&v),
            Field::Range(a, b) => (*a..=*b).contains(&v),
            Field::Step(n) => (min..=max).contains(&v) && (v - min).is_multiple_of(*n),
        }
    }
}

/// A field of values `min..=max` (lists and ranges within `min..=list_max`).
fn field(min: u32, max: u32, list_max: u32, steps: bool) -> BoxedStrategy<Field> {
    let list = prop::collection::vec(min..=list_max, 1..4).prop_map(Field::List);
    let range =
        (min..=list_max, min..=list_max).prop_map(|(a, b)| Field::Range(a.min(b), a.max(b)));
    if steps {
        prop_oneof![
            Just(Field::Star),
            list,
            range,
            (1..=max - min + 1).prop_map(Field::Step)
        ]
        .boxed()
    } else {
        prop_oneof![Just(Field::Star), list, range].boxed()
    }
}

/// minute hour day-of-month month day-of-week. Days of the month in lists and ranges stop
/// at 28 and steps start at 1, so every expression has ticks in every year.
#[derive(Debug, Clone)]
struct Cron {
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

impl Cron {
    fn text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.minute.text(),
            self.hour.text(),
            self.dom.text(),
            self.month.text(),
            self.dow.text()
        )
    }

    /// Whether the wall-clock time `t` is a tick (cron's rule: with both day fields
    /// restricted, a day matches either).
    fn matches(&self, t: chrono::NaiveDateTime) -> bool {
        let dom = self.dom.matches(t.day(), 1, 31);
        let dow = self.dow.matches(t.weekday().num_days_from_sunday(), 0, 6);
        let day = match (
            matches!(self.dom, Field::Star),
            matches!(self.dow, Field::Star),
        ) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        };
        t.second() == 0
            && self.minute.matches(t.minute(), 0, 59)
            && self.hour.matches(t.hour(), 0, 23)
            && self.month.matches(t.month(), 1, 12)
            && day
    }
}

fn cron() -> impl Strategy<Value = Cron> {
    (
        field(0, 59, 59, true),
        field(0, 23, 23, true),
        field(1, 31, 28, true),
        field(1, 12, 12, true),
        field(0, 6, 6, false),
    )
        .prop_map(|(minute, hour, dom, month, dow)| Cron {
            minute,
            hour,
            dom,
            month,
            dow,
        })
}

/// An instant between 2000 and 2100.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (946_684_800i64..4_102_444_800).prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

/// Changes of offset: clocks forward and back in Paris and New York, Lord Howe's
/// 30-minute changes, Sao Paulo's skipped midnight.
const CHANGES: &[(Tz, i64)] = &[
    (chrono_tz::Europe::Paris, 1_711_846_800), // 2024-03-31T01:00:00Z
    (chrono_tz::Europe::Paris, 1_729_990_800), // 2024-10-27T01:00:00Z
    (chrono_tz::America::New_York, 1_710_054_000), // 2024-03-10T07:00:00Z
    (chrono_tz::America::New_York, 1_730_613_600), // 2024-11-03T06:00:00Z
    (chrono_tz::Australia::Lord_Howe, 1_712_415_600), // 2024-04-06T15:00:00Z
    (chrono_tz::Australia::Lord_Howe, 1_728_142_200), // 2024-10-05T15:30:00Z
    (chrono_tz::America::Sao_Paulo, 1_541_300_400), // 2018-11-04T03:00:00Z
];

/// The expression with a seconds field first, sometimes.
fn with_seconds() -> impl Strategy<Value = Option<Field>> {
    prop_oneof![Just(None), field(0, 59, 59, true).prop_map(Some)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = Schedule::parse(&text, chrono_tz::UTC);
    }

    /// Texts made of cron's own characters, with 1 to 8 fields.
    #[test]
    fn parse_never_panics_on_cron_characters(
        text in "@?[0-9*/,?LW#A-Z-]{0,8}( [0-9*/,?LW#A-Z+-]{0,8}){0,7}"
    ) {
        let _ = Schedule::parse(&text, chrono_tz::Europe::Paris);
    }

    #[test]
    fn generated_expressions_parse(c in cron()) {
        prop_assert!(Schedule::parse(&c.text(), chrono_tz::UTC).is_ok(), "{}", c.text());
    }

    /// Without DST, wall-clock and instants agree: the ticks are exactly the times that
    /// match the fields.
    #[test]
    fn next_and_previous_are_the_nearest_matching_ticks(
        c in cron(),
        t in instant(),
        kolkata in any::<bool>(),
    ) {
        let tz = if kolkata { chrono_tz::Asia::Kolkata } else { chrono_tz::UTC };
        let s = Schedule::parse(&c.text(), tz).expect("generated expressions parse");
        let wall = |x: DateTime<Utc>| x.with_timezone(&tz).naive_local();

        let next = s.next(t, false);
        prop_assert!(next.is_some(), "no tick after {}", t);
        let next = next.unwrap_or(t);
        prop_assert!(next > t);
        prop_assert!(c.matches(wall(next)), "{} does not match `{}`", next, c.text());
        prop_assert!(s.previous(next, false).is_none_or(|p| p <= t));

        let previous = s.previous(t, false);
        prop_assert!(previous.is_some(), "no tick before {}", t);
        let previous = previous.unwrap_or(t);
        prop_assert!(previous < t);
        prop_assert!(c.matches(wall(previous)), "{} does not match `{}`", previous, c.text());
        prop_assert!(s.next(previous, false).is_some_and(|n| n >= t));

        let expected = if c.matches(wall(t)) { t } else { next };
        prop_assert_eq!(s.next(t, true), Some(expected));

        let interval = s.interval_at(t);
        prop_assert!(interval.is_some());
        let (start, end) = interval.unwrap_or((t, t));
        prop_assert!(start <= t && t < end, "{} not in [{}, {})", t, start, end);
    }

    /// Around a change of offset, every schedule has a tick after and a tick before.
    #[test]
    fn ticks_exist_on_both_sides_of_offset_changes(
        c in cron(),
        seconds in with_seconds(),
        change in 0..CHANGES.len(),
        offset in -4 * 3600i64..4 * 3600,
    ) {
        let (tz, at) = CHANGES[change];
        let text = match &seconds {
            Some(sec) => format!("{} {}", sec.text(), c.text()),
            None => c.text(),
        };
        let s = Schedule::parse(&text, tz).expect("generated expressions parse");
        let t = DateTime::from_timestamp(at + offset, 0).expect("in range");
        let next = s.next(t, false);
        prop_assert!(
            next.is_some_and(|n| n > t),
            "`{}` in {}: next of {} is {:?}",
            text,
            tz,
            t,
            next
        );
        let previous = s.previous(t, false);
        prop_assert!(
            previous.is_some_and(|p| p < t),
            "`{}` in {}: previous of {} is {:?}",
            text,
            tz,
            t,
            previous
        );
        prop_assert!(s.next(t, true).is_some_and(|n| n >= t));
        prop_assert!(s.previous(t, true).is_some_and(|p| p <= t));
    }
}
