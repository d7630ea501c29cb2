//! Durations as written in configuration: seconds (`30`) or numbers with units
//! (`30s`, `5m`, `2h`, `1d`, `1h30m`, `250ms`).

use std::time::Duration;

use serde::Deserialize;

/// A duration field as written: a number of seconds or a text with units.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DurationText {
    Seconds(u64),
    Text(String),
}

impl DurationText {
    /// The duration, or None when the text is not one.
    pub fn get(&self) -> Option<Duration> {
        match self {
            DurationText::Seconds(s) => Some(Duration::from_secs(*s)),
            DurationText::Text(t) => parse(t),
        }
    }
}

/// The hint for a duration that does not parse.
pub const HINT: &str = "write seconds (30) or a number with a unit: 30s, 5m, 2h, 1d, 1h30m";

/// `30`, `30s`, `5m`, `2h`, `1d`, `1h30m`, `250ms`.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let secs = match unit.as_str() {
            "ms" => value / 1000.0,
            "s" | "sec" | "secs" => value,
            "m" | "min" | "mins" => value * 60.0,
            "h" | "hour" | "hours" => value * 3600.0,
            "d" | "day" | "days" => value * 86_400.0,
            _ => return None,
        };
        // Past `Duration::MAX` (`99999999999999999999d`) is not a duration.
        total = total.checked_add(Duration::try_from_secs_f64(secs).ok()?)?;
    }
    number.is_empty().then_some(total)
}

#[cfg(test)]
#[path = "duration_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("5 parsecs"), None);
    }

    /// Found while writing the property tests: these panicked (a float past `Duration::MAX`,
    /// then a sum past it).
    #[test]
    fn regression_values_past_the_largest_duration() {
        assert_eq!(parse("99999999999999999999d"), None);
        assert_eq!(parse(&format!("1{}s", "0".repeat(400))), None);
        assert_eq!(parse("10000000000000000000s10000000000000000000s"), None);
        assert_eq!(
            parse("10000000000000000000s"),
            Some(Duration::from_secs(10_000_000_000_000_000_000))
        );
    }
}
