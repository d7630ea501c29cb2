//! The forecast spec: Prophet's constructor arguments, `add_seasonality` and `add_regressor`
//! calls and holidays data frame as one serde struct with Prophet 1.1–1.5's defaults, and its
//! validation (Prophet's `validate_inputs` and `validate_column_name`).

use serde::{Deserialize, Serialize};

use super::ForecastError;

/// The trend's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Growth {
    /// Piecewise linear with changepoints (Prophet's default).
    #[default]
    Linear,
    /// A constant level.
    Flat,
}

/// How a term combines with the trend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Added to the trend, in y's units.
    #[default]
    Additive,
    /// A proportion of the trend: y = trend·(1 + Σ terms) + …
    Multiplicative,
}

/// How y is scaled before fitting (Prophet's `scaling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// y / max|y|.
    #[default]
    Absmax,
    /// (y − min y) / (max y − min y).
    Minmax,
}

/// A built-in seasonality's setting: `"auto"`, `true`, `false` or a Fourier order (in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "SettingRepr", into = "SettingRepr")]
pub enum SeasonalitySetting {
    /// On when the history allows it (Prophet's rules: yearly with ≥ 2 years of history, weekly
    /// with ≥ 2 weeks and a spacing under 7 days, daily with ≥ 2 days and a spacing under a
    /// day), unless a custom seasonality has the same name.
    #[default]
    Auto,
    /// On, with the default order (yearly 10, weekly 3, daily 4).
    On,
    Off,
    /// On with this Fourier order (0 is off).
    Order(u32),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum SettingRepr {
    Flag(bool),
    Order(u32),
    Word(String),
}

impl TryFrom<SettingRepr> for SeasonalitySetting {
    type Error = String;

    fn try_from(repr: SettingRepr) -> Result<Self, String> {
        match repr {
            SettingRepr::Flag(true) => Ok(Self::On),
            SettingRepr::Flag(false) => Ok(Self::Off),
            SettingRepr::Order(n) => Ok(Self::Order(n)),
            SettingRepr::Word(w) if w == "auto" => Ok(Self::Auto),
            SettingRepr::Word(w) => Err(format!(
                "a seasonality is \"auto\", true, false or a Fourier order, not {w:?}"
            )),
        }
    }
}

impl From<SeasonalitySetting> for SettingRepr {
    fn from(setting: SeasonalitySetting) -> Self {
        match setting {
            SeasonalitySetting::Auto => Self::Word("auto".to_string()),
            SeasonalitySetting::On => Self::Flag(true),
            SeasonalitySetting::Off => Self::Flag(false),
            SeasonalitySetting::Order(n) => Self::Order(n),
        }
    }
}

/// Whether an extra regressor is standardised: `"auto"`, `true` or `false` (in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "StandardizeRepr", into = "StandardizeRepr")]
pub enum Standardize {
    /// Standardised unless binary (only 0 and 1) or constant.
    #[default]
    Auto,
    /// Standardised unless constant.
    Yes,
    No,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum StandardizeRepr {
    Flag(bool),
    Word(String),
}

impl TryFrom<StandardizeRepr> for Standardize {
    type Error = String;

    fn try_from(repr: StandardizeRepr) -> Result<Self, String> {
        match repr {
            StandardizeRepr::Flag(true) => Ok(Self::Yes),
            StandardizeRepr::Flag(false) => Ok(Self::No),
            StandardizeRepr::Word(w) if w == "auto" => Ok(Self::Auto),
            StandardizeRepr::Word(w) => {
                Err(format!("standardize is \"auto\", true or false, not {w:?}"))
            }
        }
    }
}

impl From<Standardize> for StandardizeRepr {
    fn from(s: Standardize) -> Self {
        match s {
            Standardize::Auto => Self::Word("auto".to_string()),
            Standardize::Yes => Self::Flag(true),
            Standardize::No => Self::Flag(false),
        }
    }
}

/// A seasonality added by name (Prophet's `add_seasonality`). Named `yearly`, `weekly` or
/// `daily` it replaces the built-in one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomSeasonality {
    pub name: String,
    /// Length of one cycle, in days (30.5 for monthly).
    pub period: f64,
    pub fourier_order: u32,
    /// Defaults to the spec's `seasonality_prior_scale`.
    #[serde(default)]
    pub prior_scale: Option<f64>,
    /// Defaults to the spec's `seasonality_mode`.
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// A holiday or one-off event: one indicator column per day offset in
/// `lower_window..=upper_window` around each date. A one-off shock is a holiday with one date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub name: String,
    /// Timestamps (seconds since the Unix epoch); each counts as its UTC day.
    pub dates: Vec<i64>,
    /// Days before each date that the effect starts (≤ 0).
    #[serde(default)]
    pub lower_window: i32,
    /// Days after each date that the effect lasts (≥ 0).
    #[serde(default)]
    pub upper_window: i32,
    /// Defaults to the spec's `holidays_prior_scale`.
    #[serde(default)]
    pub prior_scale: Option<f64>,
}

/// An extra regressor (Prophet's `add_regressor`): a column given to `fit` and `predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegressorSpec {
    pub name: String,
    /// Defaults to the spec's `holidays_prior_scale`, as Prophet.
    #[serde(default)]
    pub prior_scale: Option<f64>,
    #[serde(default)]
    pub standardize: Standardize,
    /// Defaults to the spec's `seasonality_mode`.
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// A forecast's settings, with Prophet's defaults (`Spec::default()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Spec {
    pub growth: Growth,
    /// Explicit changepoints (timestamps inside the history); `None` places `n_changepoints`.
    pub changepoints: Option<Vec<i64>>,
    /// Potential changepoints, evenly spread over the rows of the first `changepoint_range` of
    /// the history (25).
    pub n_changepoints: usize,
    /// Share of the history in which changepoints go (0.8).
    pub changepoint_range: f64,
    /// Scale τ of the Laplace prior on trend changes (0.05): larger is a more flexible trend.
    pub changepoint_prior_scale: f64,
    /// Fourier order 10, period 365.25 days.
    pub yearly_seasonality: SeasonalitySetting,
    /// Fourier order 3, period 7 days.
    pub weekly_seasonality: SeasonalitySetting,
    /// Fourier order 4, period 1 day.
    pub daily_seasonality: SeasonalitySetting,
    /// Further seasonalities, in this order after the built-in ones they do not replace.
    pub seasonalities: Vec<CustomSeasonality>,
    pub seasonality_mode: Mode,
    /// Prior scale of the seasonalities' coefficients (10).
    pub seasonality_prior_scale: f64,
    pub holidays: Vec<Holiday>,
    /// Prior scale of holiday and regressor coefficients (10).
    pub holidays_prior_scale: f64,
    /// Defaults to `seasonality_mode`.
    pub holidays_mode: Option<Mode>,
    pub regressors: Vec<RegressorSpec>,
    pub scaling: Scaling,
    /// Probability mass of the uncertainty interval (0.8).
    pub interval_width: f64,
    /// Simulated paths behind the intervals (1000); 0 gives intervals of zero width.
    pub uncertainty_samples: usize,
    /// Seed of the simulations.
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            growth: Growth::Linear,
            changepoints: None,
            n_changepoints: 25,
            changepoint_range: 0.8,
            changepoint_prior_scale: 0.05,
            yearly_seasonality: SeasonalitySetting::Auto,
            weekly_seasonality: SeasonalitySetting::Auto,
            daily_seasonality: SeasonalitySetting::Auto,
            seasonalities: Vec::new(),
            seasonality_mode: Mode::Additive,
            seasonality_prior_scale: 10.0,
            holidays: Vec::new(),
            holidays_prior_scale: 10.0,
            holidays_mode: None,
            regressors: Vec::new(),
            scaling: Scaling::Absmax,
            interval_width: 0.8,
            uncertainty_samples: 1000,
            seed: 0,
        }
    }
}

/// Names Prophet keeps for its own columns.
const RESERVED: [&str; 11] = [
    "trend",
    "additive_terms",
    "daily",
    "weekly",
    "yearly",
    "holidays",
    "zeros",
    "extra_regressors_additive",
    "yhat",
    "extra_regressors_multiplicative",
    "multiplicative_terms",
];

/// The widest holiday window accepted, in days either side of a date.
pub(crate) const MAX_WINDOW_DAYS: i32 = 366;

fn spec_error(message: String) -> ForecastError {
    ForecastError::Spec(message)
}

fn check_scale(what: &str, value: f64) -> Result<(), ForecastError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(spec_error(format!(
            "{what} is {value}; it must be a number above 0"
        )))
    }
}

/// Prophet's `validate_column_name`, without the cross-kind checks.
fn check_name(kind: &str, name: &str) -> Result<(), ForecastError> {
    if name.is_empty() {
        return Err(spec_error(format!("a {kind} has an empty name")));
    }
    if name.contains("_delim_") {
        return Err(spec_error(format!(
            "the {kind} name '{name}' contains \"_delim_\", which is reserved"
        )));
    }
    let reserved = RESERVED.iter().any(|r| {
        name == *r
            || name.strip_suffix("_lower") == Some(*r)
            || name.strip_suffix("_upper") == Some(*r)
    }) || ["ds", "y", "cap", "floor", "y_scaled", "cap_scaled"].contains(&name);
    if reserved {
        return Err(spec_error(format!(
            "the {kind} name '{name}' is reserved for a forecast column"
        )));
    }
    Ok(())
}

impl Spec {
    /// Holidays' mode: `holidays_mode`, or the seasonality mode.
    pub fn effective_holidays_mode(&self) -> Mode {
        self.holidays_mode.unwrap_or(self.seasonality_mode)
    }

    /// Checks the settings that do not depend on the data (Prophet's `validate_inputs` and
    /// the checks of `add_seasonality` / `add_regressor`).
    pub fn validate(&self) -> Result<(), ForecastError> {
        if !(0.0..=1.0).contains(&self.changepoint_range) {
            return Err(spec_error(format!(
                "changepoint_range is {}; it must be between 0 and 1",
                self.changepoint_range
            )));
        }
        if !(0.0..=1.0).contains(&self.interval_width) {
            return Err(spec_error(format!(
                "interval_width is {}; it must be between 0 and 1",
                self.interval_width
            )));
        }
        check_scale("changepoint_prior_scale", self.changepoint_prior_scale)?;
        check_scale("seasonality_prior_scale", self.seasonality_prior_scale)?;
        check_scale("holidays_prior_scale", self.holidays_prior_scale)?;
        for (i, s) in self.seasonalities.iter().enumerate() {
            if !["yearly", "weekly", "daily"].contains(&s.name.as_str()) {
                check_name("seasonality", &s.name)?;
            }
            if self.seasonalities[..i].iter().any(|o| o.name == s.name) {
                return Err(spec_error(format!(
                    "the seasonality '{}' is given twice",
                    s.name
                )));
            }
            if !(s.period.is_finite() && s.period > 0.0) {
                return Err(spec_error(format!(
                    "seasonality '{}' has period {}; it must be a number of days above 0",
                    s.name, s.period
                )));
            }
            if s.fourier_order == 0 {
                return Err(spec_error(format!(
                    "seasonality '{}' has fourier_order 0; it must be at least 1",
                    s.name
                )));
            }
            if let Some(p) = s.prior_scale {
                check_scale(&format!("the prior_scale of seasonality '{}'", s.name), p)?;
            }
        }
        for (i, h) in self.holidays.iter().enumerate() {
            check_name("holiday", &h.name)?;
            if !(-MAX_WINDOW_DAYS..=0).contains(&h.lower_window) {
                return Err(spec_error(format!(
                    "holiday '{}' has lower_window {}; it must be between -{MAX_WINDOW_DAYS} \
                     and 0",
                    h.name, h.lower_window
                )));
            }
            if !(0..=MAX_WINDOW_DAYS).contains(&h.upper_window) {
                return Err(spec_error(format!(
                    "holiday '{}' has upper_window {}; it must be between 0 and \
                     {MAX_WINDOW_DAYS}",
                    h.name, h.upper_window
                )));
            }
            let scale = h.prior_scale.unwrap_or(self.holidays_prior_scale);
            check_scale(&format!("the prior_scale of holiday '{}'", h.name), scale)?;
            let earlier = self.holidays[..i].iter().find(|o| o.name == h.name);
            if let Some(o) = earlier {
                let other = o.prior_scale.unwrap_or(self.holidays_prior_scale);
                if other != scale {
                    return Err(spec_error(format!(
                        "holiday '{}' is given with two prior scales, {other} and {scale}",
                        h.name
                    )));
                }
            }
            if self.seasonalities.iter().any(|s| s.name == h.name) {
                return Err(spec_error(format!(
                    "the name '{}' is used by a holiday and a seasonality",
                    h.name
                )));
            }
        }
        for (i, r) in self.regressors.iter().enumerate() {
            check_name("regressor", &r.name)?;
            if self.regressors[..i].iter().any(|o| o.name == r.name) {
                return Err(spec_error(format!(
                    "the regressor '{}' is given twice",
                    r.name
                )));
            }
            if self.holidays.iter().any(|h| h.name == r.name)
                || self.seasonalities.iter().any(|s| s.name == r.name)
            {
                return Err(spec_error(format!(
                    "the regressor name '{}' is already used by a holiday or a seasonality",
                    r.name
                )));
            }
            if let Some(p) = r.prior_scale {
                check_scale(&format!("the prior_scale of regressor '{}'", r.name), p)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_prophets() {
        let s = Spec::default();
        assert_eq!(s.n_changepoints, 25);
        assert_eq!(s.changepoint_range, 0.8);
        assert_eq!(s.changepoint_prior_scale, 0.05);
        assert_eq!(s.seasonality_prior_scale, 10.0);
        assert_eq!(s.holidays_prior_scale, 10.0);
        assert_eq!(s.interval_width, 0.8);
        assert_eq!(s.uncertainty_samples, 1000);
        assert_eq!(s.yearly_seasonality, SeasonalitySetting::Auto);
        assert_eq!(s.effective_holidays_mode(), Mode::Additive);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let s: Spec = serde_json::from_str(
            r#"{"seasonality_mode": "multiplicative", "yearly_seasonality": 5,
                "weekly_seasonality": false, "daily_seasonality": "auto",
                "regressors": [{"name": "price", "standardize": true}],
                "holidays": [{"name": "launch", "dates": [1700000000], "upper_window": 2}]}"#,
        )
        .unwrap();
        assert_eq!(s.seasonality_mode, Mode::Multiplicative);
        assert_eq!(s.yearly_seasonality, SeasonalitySetting::Order(5));
        assert_eq!(s.weekly_seasonality, SeasonalitySetting::Off);
        assert_eq!(s.daily_seasonality, SeasonalitySetting::Auto);
        assert_eq!(s.regressors[0].standardize, Standardize::Yes);
        assert_eq!(s.holidays[0].lower_window, 0);
        assert_eq!(s.n_changepoints, 25);
        let back: Spec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Spec>(r#"{"yearly_seasonality": "sometimes"}"#).is_err());
        assert!(serde_json::from_str::<Spec>(r#"{"n_changepoint": 3}"#).is_err());
    }

    fn bad(edit: impl FnOnce(&mut Spec)) -> String {
        let mut s = Spec::default();
        edit(&mut s);
        match s.validate() {
            Err(ForecastError::Spec(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    fn holiday(name: &str, lower_window: i32) -> Holiday {
        Holiday {
            name: name.to_string(),
            dates: vec![0],
            lower_window,
            upper_window: 0,
            prior_scale: None,
        }
    }

    fn regressor(name: &str) -> RegressorSpec {
        RegressorSpec {
            name: name.to_string(),
            prior_scale: None,
            standardize: Standardize::Auto,
            mode: None,
        }
    }

    fn seasonality(name: &str, period: f64, fourier_order: u32) -> CustomSeasonality {
        CustomSeasonality {
            name: name.to_string(),
            period,
            fourier_order,
            prior_scale: None,
            mode: None,
        }
    }

    #[test]
    fn invalid_settings_are_named() {
        assert!(bad(|s| s.changepoint_range = 1.5).contains("changepoint_range"));
        assert!(bad(|s| s.changepoint_prior_scale = 0.0).contains("changepoint_prior_scale"));
        assert!(bad(|s| s.interval_width = f64::NAN).contains("interval_width"));
        assert!(bad(|s| s.holidays = vec![holiday("x", 1)]).contains("lower_window"));
        assert!(bad(|s| s.holidays = vec![holiday("trend", 0)]).contains("reserved"));
        assert!(bad(|s| s.holidays = vec![holiday("yhat_lower", 0)]).contains("reserved"));
        assert!(bad(|s| s.holidays = vec![holiday("a_delim_b", 0)]).contains("_delim_"));
        assert!(bad(|s| s.regressors = vec![regressor("p"), regressor("p")]).contains("twice"));
        let clash = bad(|s| {
            s.holidays = vec![holiday("p", 0)];
            s.regressors = vec![regressor("p")];
        });
        assert!(clash.contains("already used"), "{clash}");
        let period = bad(|s| s.seasonalities = vec![seasonality("monthly", 0.0, 3)]);
        assert!(period.contains("period"), "{period}");
        let order = bad(|s| s.seasonalities = vec![seasonality("monthly", 30.5, 0)]);
        assert!(order.contains("fourier_order"), "{order}");
        let scales = bad(|s| {
            let mut other = holiday("x", 0);
            other.prior_scale = Some(1.0);
            s.holidays = vec![holiday("x", 0), other];
        });
        assert!(scales.contains("two prior scales"), "{scales}");
        // A custom seasonality may replace a built-in one, and a holiday may repeat.
        let s = Spec {
            seasonalities: vec![seasonality("weekly", 7.0, 5)],
            holidays: vec![holiday("x", 0), holiday("x", -1)],
            ..Spec::default()
        };
        assert!(s.validate().is_ok());
    }
}
