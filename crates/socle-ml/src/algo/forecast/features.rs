//! The design of a forecast, as Prophet's `forecaster.py`: which seasonalities are on
//! (`set_auto_seasonalities`), how regressors are standardised (`initialize_scales`), and the
//! feature matrix (`make_all_seasonality_features`): Fourier columns (sin, cos for orders
//! 1..=N, of days since the epoch), then one indicator column per holiday and day offset sorted
//! by Prophet's column name (`{name}_delim_{±offset}`), then the standardised regressors.
//! [`Layout`] is stored in the fitted model so the same columns can be built for any timestamps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SECONDS_PER_DAY;
use super::spec::{Mode, SeasonalitySetting, Spec, Standardize};
use crate::algo::Matrix;

/// A seasonality of the fitted model: its Fourier block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalityTerm {
    pub name: String,
    /// In days.
    pub period: f64,
    pub fourier_order: u32,
    pub prior_scale: f64,
    pub mode: Mode,
}

/// One holiday column: 1 on the UTC days `days` (each date of the holiday shifted by `offset`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolidayColumn {
    /// Prophet's column name, `{holiday}_delim_{+|-}{|offset|}`.
    pub key: String,
    pub holiday: String,
    pub offset: i32,
    /// Days since 1970-01-01, sorted, without repeats.
    pub days: Vec<i64>,
}

/// A holiday name and the prior scale of its columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolidayTerm {
    pub name: String,
    pub prior_scale: f64,
}

/// An extra regressor and its standardisation: its column is (value − `mu`) / `std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressorTerm {
    pub name: String,
    pub prior_scale: f64,
    pub mode: Mode,
    pub mu: f64,
    pub std: f64,
}

/// The columns of the feature matrix, in Prophet's order: seasonalities, holidays, regressors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub seasonalities: Vec<SeasonalityTerm>,
    /// Sorted by `key`.
    pub holiday_columns: Vec<HolidayColumn>,
    /// In the order the spec first names them.
    pub holidays: Vec<HolidayTerm>,
    pub holidays_mode: Mode,
    pub regressors: Vec<RegressorTerm>,
}

/// A named sum of columns reported by `predict` (a seasonality, a holiday, all holidays, a
/// regressor, all regressors of one mode).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ComponentDef {
    pub name: String,
    pub mode: Mode,
    pub columns: Vec<usize>,
}

impl Layout {
    fn seasonal_columns(&self) -> usize {
        self.seasonalities
            .iter()
            .map(|s| 2 * s.fourier_order as usize)
            .sum()
    }

    /// Columns of the feature matrix.
    pub fn n_columns(&self) -> usize {
        self.seasonal_columns() + self.holiday_columns.len() + self.regressors.len()
    }

    /// The regressors' names, in column order.
    pub fn regressor_names(&self) -> Vec<&str> {
        self.regressors.iter().map(|r| r.name.as_str()).collect()
    }

    /// Each column's prior scale and mode.
    pub(crate) fn column_priors_and_modes(&self) -> (Vec<f64>, Vec<Mode>) {
        let mut scales = Vec::with_capacity(self.n_columns());
        let mut modes = Vec::with_capacity(self.n_columns());
        for s in &self.seasonalities {
            for _ in 0..2 * s.fourier_order {
                scales.push(s.prior_scale);
                modes.push(s.mode);
            }
        }
        for c in &self.holiday_columns {
            let scale = self
                .holidays
                .iter()
                .find(|h| h.name == c.holiday)
                .map_or(1.0, |h| h.prior_scale);
            scales.push(scale);
            modes.push(self.holidays_mode);
        }
        for r in &self.regressors {
            scales.push(r.prior_scale);
            modes.push(r.mode);
        }
        (scales, modes)
    }

    /// The feature matrix at `timestamps` (one row each). `regressors` holds each regressor's
    /// raw values, in [`Layout::regressor_names`] order, as long as `timestamps`.
    pub(crate) fn matrix(&self, timestamps: &[i64], regressors: &[&[f64]]) -> Matrix {
        assert_eq!(regressors.len(), self.regressors.len(), "regressor columns");
        let cols = self.n_columns();
        let mut x = Matrix::zeros(timestamps.len(), cols);
        let holiday_start = self.seasonal_columns();
        let regressor_start = holiday_start + self.holiday_columns.len();
        for (i, &ts) in timestamps.iter().enumerate() {
            let row = x.row_mut(i);
            // As Prophet's `fourier_series`: days since the epoch, 2π·t, (k / period)·2πt.
            let x_t = std::f64::consts::PI * 2.0 * (ts as f64 / SECONDS_PER_DAY as f64);
            let mut at = 0;
            for s in &self.seasonalities {
                for k in 0..s.fourier_order {
                    let c = f64::from(k + 1) / s.period * x_t;
                    row[at] = c.sin();
                    row[at + 1] = c.cos();
                    at += 2;
                }
            }
            let day = ts.div_euclid(SECONDS_PER_DAY);
            for (cell, column) in row[holiday_start..regressor_start]
                .iter_mut()
                .zip(&self.holiday_columns)
            {
                if column.days.binary_search(&day).is_ok() {
                    *cell = 1.0;
                }
            }
            for ((cell, term), values) in row[regressor_start..]
                .iter_mut()
                .zip(&self.regressors)
                .zip(regressors)
            {
                *cell = (values[i] - term.mu) / term.std;
            }
        }
        x
    }

    /// The components `predict` reports besides the trend and the additive / multiplicative
    /// totals, as Prophet's `regressor_column_matrix`.
    pub(crate) fn components(&self) -> Vec<ComponentDef> {
        let mut out = Vec::new();
        let mut at = 0;
        for s in &self.seasonalities {
            let width = 2 * s.fourier_order as usize;
            out.push(ComponentDef {
                name: s.name.clone(),
                mode: s.mode,
                columns: (at..at + width).collect(),
            });
            at += width;
        }
        let holiday_start = at;
        for h in &self.holidays {
            out.push(ComponentDef {
                name: h.name.clone(),
                mode: self.holidays_mode,
                columns: (0..self.holiday_columns.len())
                    .filter(|&c| self.holiday_columns[c].holiday == h.name)
                    .map(|c| holiday_start + c)
                    .collect(),
            });
        }
        if !self.holiday_columns.is_empty() {
            out.push(ComponentDef {
                name: "holidays".to_string(),
                mode: self.holidays_mode,
                columns: (holiday_start..holiday_start + self.holiday_columns.len()).collect(),
            });
        }
        let regressor_start = holiday_start + self.holiday_columns.len();
        for (j, r) in self.regressors.iter().enumerate() {
            out.push(ComponentDef {
                name: r.name.clone(),
                mode: r.mode,
                columns: vec![regressor_start + j],
            });
        }
        for (mode, name) in [
            (Mode::Additive, "extra_regressors_additive"),
            (Mode::Multiplicative, "extra_regressors_multiplicative"),
        ] {
            let columns: Vec<usize> = (0..self.regressors.len())
                .filter(|&j| self.regressors[j].mode == mode)
                .map(|j| regressor_start + j)
                .collect();
            if !columns.is_empty() {
                out.push(ComponentDef {
                    name: name.to_string(),
                    mode,
                    columns,
                });
            }
        }
        out
    }
}

/// The seasonalities of a fit on the sorted history `ts` (≥ 2 distinct timestamps), as
/// Prophet's `set_auto_seasonalities`: custom ones first, then yearly, weekly and daily when on
/// (a built-in one set on explicitly replaces a custom one of its name, in its place). Adds a
/// note for each seasonality with too little history to learn it.
pub(crate) fn seasonality_terms(
    spec: &Spec,
    ts: &[i64],
    notes: &mut Vec<String>,
) -> Vec<SeasonalityTerm> {
    let mut terms: Vec<SeasonalityTerm> = spec
        .seasonalities
        .iter()
        .map(|s| SeasonalityTerm {
            name: s.name.clone(),
            period: s.period,
            fourier_order: s.fourier_order,
            prior_scale: s.prior_scale.unwrap_or(spec.seasonality_prior_scale),
            mode: s.mode.unwrap_or(spec.seasonality_mode),
        })
        .collect();
    let span = ts[ts.len() - 1] - ts[0];
    let min_step = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d != 0)
        .min()
        .unwrap_or(span);
    let day = SECONDS_PER_DAY;
    let yearly_off = span < 730 * day;
    let builtins = [
        ("yearly", spec.yearly_seasonality, yearly_off, 10, 365.25),
        (
            "weekly",
            spec.weekly_seasonality,
            span < 14 * day || min_step >= 7 * day,
            3,
            7.0,
        ),
        (
            "daily",
            spec.daily_seasonality,
            span < 2 * day || min_step >= day,
            4,
            1.0,
        ),
    ];
    for (name, setting, auto_off, default_order, period) in builtins {
        let order = match setting {
            SeasonalitySetting::Auto => {
                if auto_off || terms.iter().any(|t| t.name == name) {
                    0
                } else {
                    default_order
                }
            }
            SeasonalitySetting::On => default_order,
            SeasonalitySetting::Off => 0,
            SeasonalitySetting::Order(n) => n,
        };
        if order == 0 {
            continue;
        }
        if name == "yearly" && yearly_off {
            notes.push(
                "yearly seasonality is on with less than 730 days (about 2 years) of history: \
                 the model may be under-identified and its split of trend and seasonality \
                 unstable"
                    .to_string(),
            );
        }
        let term = SeasonalityTerm {
            name: name.to_string(),
            period,
            fourier_order: order,
            prior_scale: spec.seasonality_prior_scale,
            mode: spec.seasonality_mode,
        };
        match terms.iter_mut().find(|t| t.name == name) {
            Some(existing) => *existing = term,
            None => terms.push(term),
        }
    }
    let span_days = span as f64 / day as f64;
    for t in &terms {
        if t.period > span_days {
            notes.push(format!(
                "seasonality '{}' has a period of {} days, longer than the {:.1} days of \
                 history: its shape comes from its prior, not from the data",
                t.name, t.period, span_days
            ));
        }
    }
    terms
}

/// The holiday columns (sorted by Prophet's column name) and the holidays in first-named order,
/// as Prophet's `make_holiday_features`. The spec is validated (windows bounded).
pub(crate) fn holiday_layout(spec: &Spec) -> (Vec<HolidayColumn>, Vec<HolidayTerm>) {
    let mut terms: Vec<HolidayTerm> = Vec::new();
    let mut columns: BTreeMap<String, HolidayColumn> = BTreeMap::new();
    for h in &spec.holidays {
        if !terms.iter().any(|t| t.name == h.name) {
            terms.push(HolidayTerm {
                name: h.name.clone(),
                prior_scale: h.prior_scale.unwrap_or(spec.holidays_prior_scale),
            });
        }
        for offset in h.lower_window..=h.upper_window {
            let sign = if offset >= 0 { '+' } else { '-' };
            let key = format!("{}_delim_{}{}", h.name, sign, offset.unsigned_abs());
            let column = columns.entry(key.clone()).or_insert_with(|| HolidayColumn {
                key,
                holiday: h.name.clone(),
                offset,
                days: Vec::new(),
            });
            for &date in &h.dates {
                column
                    .days
                    .push(date.div_euclid(SECONDS_PER_DAY) + i64::from(offset));
            }
        }
    }
    let columns = columns
        .into_values()
        .map(|mut c| {
            c.days.sort_unstable();
            c.days.dedup();
            c
        })
        .collect();
    (columns, terms)
}

/// Each regressor's term, its standardisation computed on its history `values` (finite, in
/// spec order), as Prophet's `initialize_scales`: not standardised when constant, nor, under
/// `auto`, when binary (only 0 and 1); otherwise by the mean and the sample standard deviation.
pub(crate) fn regressor_terms(spec: &Spec, values: &[Vec<f64>]) -> Vec<RegressorTerm> {
    spec.regressors
        .iter()
        .zip(values)
        .map(|(r, v)| {
            let (mu, std) = standardization(r.standardize, v);
            RegressorTerm {
                name: r.name.clone(),
                prior_scale: r.prior_scale.unwrap_or(spec.holidays_prior_scale),
                mode: r.mode.unwrap_or(spec.seasonality_mode),
                mu,
                std,
            }
        })
        .collect()
}

fn standardization(setting: Standardize, values: &[f64]) -> (f64, f64) {
    let mut distinct = values.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let on = match setting {
        _ if distinct.len() < 2 => false,
        Standardize::No => false,
        Standardize::Yes => true,
        Standardize::Auto => !(distinct.len() == 2 && distinct[0] == 0.0 && distinct[1] == 1.0),
    };
    if !on {
        return (0.0, 1.0);
    }
    let n = values.len() as f64;
    let mu = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / (n - 1.0)).sqrt();
    if std.is_finite() && std > 0.0 {
        (mu, std)
    } else {
        (0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::forecast::spec::{CustomSeasonality, Holiday};

    const DAY: i64 = SECONDS_PER_DAY;

    fn layout(seasonalities: Vec<SeasonalityTerm>, spec: &Spec) -> Layout {
        let (holiday_columns, holidays) = holiday_layout(spec);
        Layout {
            seasonalities,
            holiday_columns,
            holidays,
            holidays_mode: spec.effective_holidays_mode(),
            regressors: Vec::new(),
        }
    }

    fn term(name: &str, period: f64, fourier_order: u32) -> SeasonalityTerm {
        SeasonalityTerm {
            name: name.to_string(),
            period,
            fourier_order,
            prior_scale: 10.0,
            mode: Mode::Additive,
        }
    }

    #[test]
    fn fourier_columns_match_prophets_fourier_series() {
        // Prophet.fourier_series(dates, 7, 3) and (dates, 365.25, 2) for 2024-03-05 00:00,
        // 2024-03-05 06:00 and 1969-12-31 12:00 (Prophet 1.5.0, numpy 2.4).
        let ts = [1_709_596_800, 1_709_618_400, -43_200];
        let l = layout(
            vec![term("weekly", 7.0, 3), term("yearly", 365.25, 2)],
            &Spec::default(),
        );
        let x = l.matrix(&ts, &[]);
        let expected: [[f64; 10]; 3] = [
            [
                -0.9749279121816837,
                -0.22252093395692704,
                0.43388373911869044,
                -0.9009688679018738,
                0.7818314824645862,
                0.6234898018630517,
                0.8877131077605683,
                0.46039704420214694,
                0.8174009818249351,
                -0.5760691233798527,
            ],
            [
                -1.0,
                4.4834020453147823e-14,
                -8.966804090629565e-14,
                -1.0,
                1.0,
                3.5034767457322695e-12,
                0.8896848787210859,
                0.4565750941247745,
                0.8124159144869367,
                -0.5830783668499067,
            ],
            [
                -0.4338837391175581,
                0.9009688679024191,
                -0.7818314824680298,
                0.6234898018587336,
                -0.9749279121818236,
                0.22252093395631445,
                -0.008601105865715108,
                0.9999630098048061,
                -0.017201575418260506,
                0.9998520419557735,
            ],
        ];
        for (i, row) in expected.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                assert!(
                    (x.get(i, j) - v).abs() < 1e-11,
                    "({i}, {j}): {}",
                    x.get(i, j)
                );
            }
        }
    }

    #[test]
    fn holiday_columns_follow_prophets_names_and_order() {
        let holiday = |name: &str, dates: Vec<i64>, lower_window, upper_window| Holiday {
            name: name.to_string(),
            dates,
            lower_window,
            upper_window,
            prior_scale: None,
        };
        let spec = Spec {
            holidays: vec![
                holiday("xmas", vec![1_703_462_400, 1_735_084_800], -1, 1),
                holiday("sale", vec![1_709_683_200], 0, 10),
                holiday("big", vec![1_709_596_800], -12, 0),
            ],
            ..Spec::default()
        };
        let l = layout(Vec::new(), &spec);
        // Prophet 1.5.0's make_holiday_features columns for the same holidays.
        let keys: Vec<&str> = l.holiday_columns.iter().map(|c| c.key.as_str()).collect();
        let mut expected = vec!["big_delim_+0"];
        let minus: Vec<String> = [1, 10, 11, 12, 2, 3, 4, 5, 6, 7, 8, 9]
            .iter()
            .map(|o| format!("big_delim_-{o}"))
            .collect();
        expected.extend(minus.iter().map(String::as_str));
        let plus: Vec<String> = [0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9]
            .iter()
            .map(|o| format!("sale_delim_+{o}"))
            .collect();
        expected.extend(plus.iter().map(String::as_str));
        expected.extend(["xmas_delim_+0", "xmas_delim_+1", "xmas_delim_-1"]);
        assert_eq!(keys, expected);
        let names: Vec<&str> = l.holidays.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["xmas", "sale", "big"]);
        // 2024-03-04, 03-05, 03-06 13:00, 03-16, 12-24, 12-26: Prophet's non-zero cells.
        let ts = [
            1_709_510_400,
            1_709_596_800,
            1_709_730_000,
            1_710_547_200,
            1_734_998_400,
            1_735_171_200,
        ];
        let x = l.matrix(&ts, &[]);
        let mut ones = Vec::new();
        for (j, key) in keys.iter().enumerate() {
            for i in 0..ts.len() {
                if x.get(i, j) == 1.0 {
                    ones.push((key.to_string(), i));
                }
            }
        }
        let expected_ones: Vec<(String, usize)> = [
            ("big_delim_+0", 1),
            ("big_delim_-1", 0),
            ("sale_delim_+0", 2),
            ("sale_delim_+10", 3),
            ("xmas_delim_+1", 5),
            ("xmas_delim_-1", 4),
        ]
        .iter()
        .map(|(k, i)| (k.to_string(), *i))
        .collect();
        assert_eq!(ones, expected_ones);
        let components = l.components();
        let sale = components.iter().find(|c| c.name == "sale").unwrap();
        assert_eq!(sale.columns, (13..24).collect::<Vec<_>>());
        let all = components.iter().find(|c| c.name == "holidays").unwrap();
        assert_eq!(all.columns.len(), 27);
    }

    #[test]
    fn automatic_seasonalities_follow_prophets_rules() {
        let names = |ts: &[i64], spec: &Spec| {
            let mut notes = Vec::new();
            let terms = seasonality_terms(spec, ts, &mut notes);
            let names: Vec<(String, u32)> = terms
                .iter()
                .map(|t| (t.name.clone(), t.fourier_order))
                .collect();
            (names, notes)
        };
        let spec = Spec::default();
        // Monthly over 12 years: yearly only.
        let monthly: Vec<i64> = (0..144).map(|i| i * 30 * DAY).collect();
        assert_eq!(names(&monthly, &spec).0, [("yearly".to_string(), 10)]);
        // Daily over 30 days: weekly only.
        let daily: Vec<i64> = (0..30).map(|i| i * DAY).collect();
        assert_eq!(names(&daily, &spec).0, [("weekly".to_string(), 3)]);
        // Hourly over 3 days: daily only (under 2 weeks).
        let hourly: Vec<i64> = (0..72).map(|i| i * 3600).collect();
        assert_eq!(names(&hourly, &spec).0, [("daily".to_string(), 4)]);
        // Weekly data over 3 years: yearly, not weekly (spacing of 7 days).
        let weekly: Vec<i64> = (0..156).map(|i| i * 7 * DAY).collect();
        assert_eq!(names(&weekly, &spec).0, [("yearly".to_string(), 10)]);
        // Forced on, with a note; a custom "weekly" stays under auto and goes first.
        let forced = Spec {
            yearly_seasonality: SeasonalitySetting::On,
            seasonalities: vec![CustomSeasonality {
                name: "weekly".to_string(),
                period: 7.0,
                fourier_order: 5,
                prior_scale: None,
                mode: None,
            }],
            ..Spec::default()
        };
        let (terms, notes) = names(&daily, &forced);
        assert_eq!(
            terms,
            [("weekly".to_string(), 5), ("yearly".to_string(), 10)]
        );
        assert!(notes.iter().any(|n| n.contains("730 days")), "{notes:?}");
        assert!(
            notes.iter().any(|n| n.contains("'yearly' has a period")),
            "{notes:?}"
        );
        let explicit = Spec {
            weekly_seasonality: SeasonalitySetting::Order(2),
            ..forced
        };
        assert_eq!(
            names(&daily, &explicit).0,
            [("weekly".to_string(), 2), ("yearly".to_string(), 10)]
        );
    }

    #[test]
    fn regressors_are_standardised_unless_binary_or_constant() {
        // pandas: mean 3.875, std 2.748376143938713 for these values.
        let (mu, std) =
            standardization(Standardize::Auto, &[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]);
        assert_eq!(mu, 3.875);
        assert!((std - 2.748376143938713).abs() < 1e-14, "{std}");
        assert_eq!(
            standardization(Standardize::Auto, &[0.0, 1.0, 1.0]),
            (0.0, 1.0)
        );
        assert_eq!(standardization(Standardize::Yes, &[0.0, 1.0]).0, 0.5);
        assert_eq!(standardization(Standardize::Yes, &[4.0, 4.0]), (0.0, 1.0));
        assert_eq!(standardization(Standardize::No, &[1.0, 5.0]), (0.0, 1.0));
    }
}
