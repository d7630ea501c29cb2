//! Property and fuzz tests of [`super::parse`]: whatever the text, `parse` answers (it never
//! panics, even for values past `Duration::MAX`); whole seconds read as seconds; and a
//! duration written as parts with units (`1h30m`, `2d5s250ms`) reads back as the sum of
//! its parts.

use std::time::Duration;

use proptest::prelude::*;

use super::{DurationText, parse};

/// The units `parse` reads, with their length in nanoseconds.
const UNITS: &[(&str, u128)] = &[
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("sec", 1_000_000_000),
    ("secs", 1_000_000_000),
    ("m", 60_000_000_000),
    ("min", 60_000_000_000),
    ("mins", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("hour", 3_600_000_000_000),
    ("hours", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("day", 86_400_000_000_000),
    ("days", 86_400_000_000_000),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = parse(&text);
    }

    /// Digits, dots, spaces and the letters of the units: the texts that go deep into the
    /// parser, including numbers far past `Duration::MAX`.
    #[test]
    fn parse_never_panics_on_numbers_and_units(text in "[0-9. smhdayecinoru]{0,48}") {
        let _ = parse(&text);
    }

    #[test]
    fn whole_seconds_read_as_seconds(n in any::<u64>(), pad in " {0,2}") {
        prop_assert_eq!(parse(&format!("{pad}{n}{pad}")), Some(Duration::from_secs(n)));
        prop_assert_eq!(DurationText::Seconds(n).get(), Some(Duration::from_secs(n)));
    }

    /// `parse` goes through `f64` seconds: each part may be off by the rounding of a
    /// nanosecond, never more.
    #[test]
    fn parts_with_units_add_up(
        parts in prop::collection::vec((0u64..1_000_000, 0..UNITS.len()), 1..5)
    ) {
        let text: String = parts
            .iter()
            .map(|(v, u)| format!("{v}{}", UNITS[*u].0))
            .collect();
        let expected: u128 = parts.iter().map(|(v, u)| u128::from(*v) * UNITS[*u].1).sum();
        let got = parse(&text);
        prop_assert!(got.is_some(), "`{}` does not parse", text);
        let got = got.unwrap_or_default().as_nanos();
        prop_assert!(
            got.abs_diff(expected) <= parts.len() as u128,
            "`{}`: {} ns, expected {} ns",
            text,
            got,
            expected
        );
    }

    /// A text that ends in a number with no unit after a unit (`1h30`) is not a duration.
    #[test]
    fn a_trailing_number_without_unit_is_refused(
        value in 1u64..1000,
        unit in 0..UNITS.len(),
        rest in 1u64..1000,
    ) {
        let text = format!("{value}{}{rest}", UNITS[unit].0);
        prop_assert_eq!(parse(&text), None);
    }
}

/// Fuzz target: arbitrary bytes (as text when they are UTF-8).
#[test]
fn fuzz_parse() {
    bolero::check!()
        .with_test_time(Duration::from_secs(2))
        .for_each(|bytes: &[u8]| {
            if let Ok(text) = std::str::from_utf8(bytes) {
                let _ = parse(text);
                let _ = DurationText::Text(text.to_string()).get();
            }
        });
}
