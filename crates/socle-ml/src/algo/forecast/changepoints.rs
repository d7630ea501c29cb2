//! Where the trend may change, as Prophet's `set_changepoints`: explicit changepoints (inside
//! the history), or `n_changepoints` spread evenly over the rows (not the time) of the first
//! `changepoint_range` of the history, at the same rows as Prophet (numpy's `linspace` rounded
//! half to even).

use super::ForecastError;
use super::spec::Spec;

/// The changepoints of a fit on the sorted history `ts`, as Prophet's `set_changepoints`:
/// the explicit ones (sorted, each inside the history), or `n_changepoints` (fewer when the
/// history is short, with a note) at the rows `round(linspace(0, h − 1, n + 1))[1..]` of the
/// first h = ⌊rows · changepoint_range⌋ rows.
pub(crate) fn place(
    spec: &Spec,
    ts: &[i64],
    notes: &mut Vec<String>,
) -> Result<Vec<i64>, ForecastError> {
    let (first, last) = (ts[0], ts[ts.len() - 1]);
    if let Some(given) = &spec.changepoints {
        if let Some(&at) = given.iter().find(|&&c| !(first..=last).contains(&c)) {
            return Err(ForecastError::ChangepointOutsideHistory { at, first, last });
        }
        let mut sorted = given.clone();
        sorted.sort_unstable();
        return Ok(sorted);
    }
    let hist_size = (ts.len() as f64 * spec.changepoint_range).floor() as usize;
    let mut count = spec.n_changepoints;
    if count >= hist_size {
        let fewer = hist_size.saturating_sub(1);
        if fewer != count {
            notes.push(format!(
                "n_changepoints {count} is more than the first {:.0}% of the history allows \
                 ({hist_size} rows): using {fewer}",
                spec.changepoint_range * 100.0
            ));
        }
        count = fewer;
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    // numpy's linspace: i · ((h − 1) / n), the last one exactly h − 1; rounded half to even.
    let step = (hist_size - 1) as f64 / count as f64;
    Ok((1..=count)
        .map(|i| {
            let index = if i == count {
                hist_size - 1
            } else {
                (i as f64 * step).round_ties_even() as usize
            };
            ts[index]
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::forecast::SECONDS_PER_DAY;

    const DAY: i64 = SECONDS_PER_DAY;

    #[test]
    fn changepoints_sit_where_prophet_puts_them() {
        // 40 days from 2024-01-01 without days 3, 10, 11 and 25 (as missing y): Prophet 1.5.0
        // gives 01-06, 01-10, 01-16, 01-19, 01-23, 01-28, 02-01 for n_changepoints = 7, and
        // 01-05, 01-09, 01-14, 01-18, 01-21 for 5 in the first half.
        let start = 1_704_067_200;
        let ts: Vec<i64> = (0..40)
            .filter(|d| ![3, 10, 11, 25].contains(d))
            .map(|d| start + d * DAY)
            .collect();
        let days = |cps: Vec<i64>| -> Vec<i64> { cps.iter().map(|c| (c - start) / DAY).collect() };
        let mut notes = Vec::new();
        let spec = Spec {
            n_changepoints: 7,
            ..Spec::default()
        };
        let cps = place(&spec, &ts, &mut notes).unwrap();
        assert_eq!(days(cps), [5, 9, 15, 18, 22, 27, 31]);
        let spec = Spec {
            n_changepoints: 5,
            changepoint_range: 0.5,
            ..Spec::default()
        };
        let cps = place(&spec, &ts, &mut notes).unwrap();
        assert_eq!(days(cps), [4, 8, 13, 17, 20]);
        assert!(notes.is_empty());
        // The default 25 on 36 rows: 28 rows hold at most 27, and Prophet uses 25 here.
        let cps = place(&Spec::default(), &ts, &mut notes).unwrap();
        assert_eq!(cps.len(), 25);
        assert_eq!((cps[0] - start) / DAY, 1);
        // Too few rows: fewer changepoints, with a note; none at all on two rows.
        let cps = place(&Spec::default(), &ts[..10], &mut notes).unwrap();
        assert_eq!(cps.len(), 7);
        assert_eq!(notes.len(), 1);
        assert!(
            place(&Spec::default(), &ts[..2], &mut notes)
                .unwrap()
                .is_empty()
        );
        // Explicit ones must lie inside the history.
        let spec = Spec {
            changepoints: Some(vec![start + 20 * DAY, start + 2 * DAY]),
            ..Spec::default()
        };
        let cps = place(&spec, &ts, &mut notes).unwrap();
        assert_eq!(days(cps), [2, 20]);
        let spec = Spec {
            changepoints: Some(vec![start - 1]),
            ..Spec::default()
        };
        assert!(matches!(
            place(&spec, &ts, &mut notes),
            Err(ForecastError::ChangepointOutsideHistory { .. })
        ));
    }
}
