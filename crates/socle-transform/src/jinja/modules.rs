//! dbt's `modules`: the parts of Python's `datetime` and `re` that dbt projects and
//! packages call (`modules.datetime.datetime.now().strftime('%Y-%m-%d')`,
//! `modules.re.sub('[^a-z]', '_', name)`), with Python's semantics where they are cheap to
//! keep: `strftime` codes, `\1` back-references in replacements, `None` for no match.
//!
//! Not covered: arithmetic between datetimes and timedeltas (`now() - timedelta(days=1)`):
//! minijinja has no operator hooks for objects. Dates format and compare as strings; use
//! SQL date functions for arithmetic, or the `modules.datetime` constructors with computed
//! fields.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use minijinja::value::{Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};

fn err(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// The `modules` global.
pub fn modules() -> Value {
    crate::jinja::map_value([
        ("datetime".to_string(), Value::from_object(DatetimeModule)),
        ("re".to_string(), Value::from_object(ReModule)),
    ])
}

#[derive(Debug)]
struct DatetimeModule;

impl Object for DatetimeModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "datetime" => Value::from_object(Class::DateTime),
            "date" => Value::from_object(Class::Date),
            "timedelta" => Value::from_object(Class::Timedelta),
            _ => return None,
        })
    }
}

/// `datetime.datetime`, `datetime.date`, `datetime.timedelta`: callable, with class methods.
#[derive(Debug)]
enum Class {
    DateTime,
    Date,
    Timedelta,
}

impl Object for Class {
    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match **self {
            Class::DateTime | Class::Date => {
                // Positional or keyword: year, month, day[, hour, minute, second, microsecond].
                const FIELDS: [&str; 7] = [
                    "year",
                    "month",
                    "day",
                    "hour",
                    "minute",
                    "second",
                    "microsecond",
                ];
                let mut f = [0i64; 7];
                let mut positional = args;
                let mut kwargs = None;
                if let Some(last) = args.last()
                    && let Ok(k) = Kwargs::try_from(last.clone())
                {
                    positional = &args[..args.len() - 1];
                    kwargs = Some(k);
                }
                if positional.len() > FIELDS.len() {
                    return Err(err("datetime: too many arguments"));
                }
                for (slot, v) in f.iter_mut().zip(positional) {
                    *slot = v
                        .as_i64()
                        .ok_or_else(|| err(format!("datetime: `{v}` is not an integer")))?;
                }
                if let Some(k) = &kwargs {
                    for (slot, name) in f.iter_mut().zip(FIELDS) {
                        if let Some(v) = k.get::<Option<i64>>(name)? {
                            *slot = v;
                        }
                    }
                    k.assert_all_used()?;
                }
                let u = |i: usize| u32::try_from(f[i]).unwrap_or(u32::MAX);
                let dt = NaiveDate::from_ymd_opt(f[0] as i32, u(1), u(2))
                    .and_then(|d| d.and_hms_micro_opt(u(3), u(4), u(5), u(6)))
                    .ok_or_else(|| err("datetime: day or time out of range"))?;
                Ok(DateTime::value(dt, matches!(**self, Class::Date)))
            }
            Class::Timedelta => {
                let (days, seconds, kwargs): (Option<f64>, Option<f64>, Kwargs) = from_args(args)?;
                let get = |k: &str| -> Result<f64, Error> {
                    Ok(kwargs.get::<Option<f64>>(k)?.unwrap_or(0.0))
                };
                let total = (days.unwrap_or(0.0) + get("days")? + 7.0 * get("weeks")?) * 86_400.0
                    + seconds.unwrap_or(0.0)
                    + get("seconds")?
                    + 60.0 * get("minutes")?
                    + 3_600.0 * get("hours")?
                    + get("milliseconds")? / 1_000.0
                    + get("microseconds")? / 1_000_000.0;
                kwargs.assert_all_used()?;
                Ok(Value::from_object(Timedelta {
                    micros: (total * 1_000_000.0).round() as i64,
                }))
            }
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let date_only = matches!(**self, Class::Date);
        match method {
            "now" | "today" => Ok(DateTime::value(
                chrono::Local::now().naive_local(),
                date_only,
            )),
            "utcnow" => Ok(DateTime::value(chrono::Utc::now().naive_utc(), date_only)),
            "fromisoformat" => {
                let (text,): (String,) = from_args(args)?;
                let t = text.trim();
                let dt = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"))
                    .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
                    .or_else(|_| {
                        NaiveDate::parse_from_str(t, "%Y-%m-%d")
                            .map(|d| d.and_time(Default::default()))
                    })
                    .map_err(|e| {
                        err(format!(
                            "fromisoformat: invalid isoformat string `{t}`: {e}"
                        ))
                    })?;
                Ok(DateTime::value(dt, date_only))
            }
            "strptime" => {
                let (text, format): (String, String) = from_args(args)?;
                let fmt = python_format(&format);
                let dt = NaiveDateTime::parse_from_str(&text, &fmt)
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&text, &fmt)
                            .map(|d| d.and_time(Default::default()))
                    })
                    .map_err(|e| {
                        err(format!(
                            "strptime: `{text}` does not match format `{format}`: {e}"
                        ))
                    })?;
                Ok(DateTime::value(dt, false))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("modules.datetime has no method `{method}` here"),
            )),
        }
    }
}

/// Python's strftime codes are chrono's, except `%f` (microseconds, 6 digits).
fn python_format(format: &str) -> String {
    format.replace("%f", "%6f")
}

/// A `datetime.datetime` or `datetime.date`.
#[derive(Debug)]
struct DateTime {
    dt: NaiveDateTime,
    date_only: bool,
}

impl DateTime {
    fn value(dt: NaiveDateTime, date_only: bool) -> Value {
        let dt = if date_only {
            dt.date().and_time(Default::default())
        } else {
            dt
        };
        Value::from_object(DateTime { dt, date_only })
    }

    fn isoformat(&self, sep: &str) -> String {
        if self.date_only {
            return self.dt.format("%Y-%m-%d").to_string();
        }
        let micros = self.dt.nanosecond() / 1_000;
        // `sep` is the template's text: kept out of the format, where `%Q` would fail the
        // `Display` (and `to_string` panic).
        let base = format!(
            "{}{sep}{}",
            self.dt.format("%Y-%m-%d"),
            self.dt.format("%H:%M:%S")
        );
        if micros == 0 {
            base
        } else {
            format!("{base}.{micros:06}")
        }
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let dt = &self.dt;
        Some(Value::from(match key.as_str()? {
            "year" => dt.year() as i64,
            "month" => dt.month() as i64,
            "day" => dt.day() as i64,
            "hour" if !self.date_only => dt.hour() as i64,
            "minute" if !self.date_only => dt.minute() as i64,
            "second" if !self.date_only => dt.second() as i64,
            "microsecond" if !self.date_only => (dt.nanosecond() / 1_000) as i64,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                let mut out = String::new();
                use std::fmt::Write;
                write!(out, "{}", self.dt.format(&python_format(&format)))
                    .map_err(|_| err(format!("strftime: invalid format `{format}`")))?;
                Ok(Value::from(out))
            }
            "isoformat" => {
                let (sep,): (Option<String>,) = from_args(args)?;
                Ok(Value::from(self.isoformat(sep.as_deref().unwrap_or("T"))))
            }
            "date" => Ok(DateTime::value(self.dt, true)),
            "weekday" => Ok(Value::from(self.dt.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.dt.weekday().number_from_monday())),
            "timestamp" => Ok(Value::from(
                self.dt.and_utc().timestamp_micros() as f64 / 1_000_000.0,
            )),
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let d = &self.dt;
                let pick = |k: &str, cur: u32| -> Result<u32, Error> {
                    Ok(kwargs.get::<Option<u32>>(k)?.unwrap_or(cur))
                };
                let year = kwargs.get::<Option<i32>>("year")?.unwrap_or(d.year());
                let dt =
                    NaiveDate::from_ymd_opt(year, pick("month", d.month())?, pick("day", d.day())?)
                        .and_then(|x| {
                            x.and_hms_micro_opt(
                                pick("hour", d.hour()).ok()?,
                                pick("minute", d.minute()).ok()?,
                                pick("second", d.second()).ok()?,
                                pick("microsecond", d.nanosecond() / 1_000).ok()?,
                            )
                        })
                        .ok_or_else(|| err("replace: day or time out of range"))?;
                kwargs.assert_all_used()?;
                Ok(DateTime::value(dt, self.date_only))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("datetime has no method `{method}`"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

#[derive(Debug)]
struct Timedelta {
    micros: i64,
}

impl Object for Timedelta {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let days = self.micros.div_euclid(86_400_000_000);
        let rest = self.micros.rem_euclid(86_400_000_000);
        Some(Value::from(match key.as_str()? {
            "days" => days,
            "seconds" => rest / 1_000_000,
            "microseconds" => rest % 1_000_000,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(self.micros as f64 / 1_000_000.0)),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("timedelta has no method `{method}`"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days = self.micros.div_euclid(86_400_000_000);
        let rest = self.micros.rem_euclid(86_400_000_000) / 1_000_000;
        let hms = format!("{}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60);
        match days {
            0 => f.write_str(&hms),
            1 | -1 => write!(f, "{days} day, {hms}"),
            _ => write!(f, "{days} days, {hms}"),
        }
    }
}

// --- re ---------------------------------------------------------------------------------

const IGNORECASE: i64 = 2;
const MULTILINE: i64 = 8;
const DOTALL: i64 = 16;

#[derive(Debug)]
struct ReModule;

fn compile(pattern: &str, flags: i64) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(flags & IGNORECASE != 0)
        .multi_line(flags & MULTILINE != 0)
        .dot_matches_new_line(flags & DOTALL != 0)
        .build()
        .map_err(|e| err(format!("re: invalid pattern `{pattern}`: {e}")))
}

/// Python replacement syntax (`\1`, `\g<name>`) in Rust's (`${1}`, `${name}`).
fn replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// `re.X(pattern, ...)` and `compiled.X(...)` share one implementation.
fn re_call(re: &regex::Regex, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "match" | "search" | "fullmatch" => {
            let (text,): (String,) = from_args(args)?;
            let found = re.captures(&text).filter(|c| {
                let m = c.get(0).expect("group 0");
                match method {
                    "match" => m.start() == 0,
                    "fullmatch" => m.start() == 0 && m.end() == text.len(),
                    _ => true,
                }
            });
            // `match` must start at 0: retry anchored if the first match was later.
            let found = match (found, method) {
                (None, "match" | "fullmatch") => {
                    let anchored = compile(&format!("^(?:{})", re.as_str()), 0)?;
                    anchored.captures(&text).filter(|c| {
                        method == "match" || c.get(0).is_some_and(|m| m.end() == text.len())
                    })
                }
                (found, _) => found,
            };
            Ok(match found {
                Some(c) => Value::from_object(Match {
                    groups: (0..c.len())
                        .map(|i| {
                            c.get(i)
                                .map(|m| (m.start(), m.end(), m.as_str().to_string()))
                        })
                        .collect(),
                }),
                None => Value::from(()),
            })
        }
        "findall" => {
            let (text,): (String,) = from_args(args)?;
            Ok(Value::from(
                re.captures_iter(&text)
                    .map(|c| match c.len() {
                        1 => Value::from(c[0].to_string()),
                        2 => Value::from(c.get(1).map_or("", |m| m.as_str()).to_string()),
                        n => Value::from(
                            (1..n)
                                .map(|i| Value::from(c.get(i).map_or("", |m| m.as_str())))
                                .collect::<Vec<_>>(),
                        ),
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        "sub" => {
            let (repl, text, count): (String, String, Option<usize>) = from_args(args)?;
            let repl = replacement(&repl);
            Ok(Value::from(
                re.replacen(&text, count.unwrap_or(0), repl.as_str())
                    .into_owned(),
            ))
        }
        "split" => {
            let (text,): (String,) = from_args(args)?;
            Ok(Value::from(
                re.split(&text).map(Value::from).collect::<Vec<_>>(),
            ))
        }
        _ => Err(Error::new(
            ErrorKind::UnknownMethod,
            format!("re has no function `{method}` here"),
        )),
    }
}

impl Object for ReModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "I" | "IGNORECASE" => IGNORECASE,
            "M" | "MULTILINE" => MULTILINE,
            "S" | "DOTALL" => DOTALL,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method == "escape" {
            let (text,): (String,) = from_args(args)?;
            return Ok(Value::from(regex::escape(&text)));
        }
        let Some((pattern, rest)) = args.split_first() else {
            return Err(err(format!("re.{method}: a pattern is needed")));
        };
        let pattern = pattern
            .as_str()
            .ok_or_else(|| err("re: the pattern must be a string"))?;
        // Flags come last (`re.sub(p, r, s, count, flags)` takes them by keyword too).
        let (flags, rest) = split_flags(method, rest)?;
        let re = compile(pattern, flags)?;
        if method == "compile" {
            return Ok(Value::from_object(Pattern(re)));
        }
        re_call(&re, method, &rest)
    }
}

/// Separates a `flags=` keyword (or positional flags after the arguments a function takes).
fn split_flags(method: &str, args: &[Value]) -> Result<(i64, Vec<Value>), Error> {
    let mut rest: Vec<Value> = args.to_vec();
    let mut flags = 0;
    if let Some(last) = rest.last()
        && let Ok(kwargs) = Kwargs::try_from(last.clone())
    {
        flags = kwargs.get::<Option<i64>>("flags")?.unwrap_or(0);
        let count: Option<usize> = kwargs.get("count")?;
        kwargs.assert_all_used()?;
        rest.pop();
        if let Some(count) = count {
            rest.push(Value::from(count));
        }
    }
    let positional = match method {
        "compile" => 0,
        "sub" => 3,
        _ => 1,
    };
    if rest.len() > positional {
        flags |= rest[positional].as_i64().unwrap_or(0);
        rest.truncate(positional);
    }
    Ok((flags, rest))
}

#[derive(Debug)]
struct Pattern(regex::Regex);

impl Object for Pattern {
    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        re_call(&self.0, method, args)
    }
}

#[derive(Debug)]
struct Match {
    groups: Vec<Option<(usize, usize, String)>>,
}

impl Object for Match {
    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let group = |i: usize| -> Value {
            self.groups
                .get(i)
                .cloned()
                .flatten()
                .map_or(Value::from(()), |g| Value::from(g.2))
        };
        match method {
            "group" => {
                if args.len() > 1 {
                    return Ok(Value::from(
                        args.iter()
                            .map(|a| group(a.as_usize().unwrap_or(0)))
                            .collect::<Vec<_>>(),
                    ));
                }
                let (i,): (Option<usize>,) = from_args(args)?;
                Ok(group(i.unwrap_or(0)))
            }
            "groups" => Ok(Value::from(
                (1..self.groups.len()).map(group).collect::<Vec<_>>(),
            )),
            "start" | "end" | "span" => {
                let (i,): (Option<usize>,) = from_args(args)?;
                let (s, e) = self
                    .groups
                    .get(i.unwrap_or(0))
                    .cloned()
                    .flatten()
                    .map_or((-1, -1), |g| (g.0 as i64, g.1 as i64));
                Ok(match method {
                    "start" => Value::from(s),
                    "end" => Value::from(e),
                    _ => Value::from(vec![Value::from(s), Value::from(e)]),
                })
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("match has no method `{method}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_global("modules", modules());
        env.render_str(template, ()).unwrap()
    }

    #[test]
    fn datetime_constructs_formats_and_parses() {
        let dt = "modules.datetime.datetime(2024, 3, 9, 14, 5, 7)";
        assert_eq!(render(&format!("{{{{ {dt} }}}}")), "2024-03-09 14:05:07");
        assert_eq!(
            render(&format!("{{{{ {dt}.strftime('%Y%m%d %H:%M %j %A') }}}}")),
            "20240309 14:05 069 Saturday"
        );
        assert_eq!(
            render(&format!("{{{{ {dt}.isoformat() }}}}")),
            "2024-03-09T14:05:07"
        );
        assert_eq!(render(&format!("{{{{ {dt}.date() }}}}")), "2024-03-09");
        assert_eq!(
            render(&format!("{{{{ {dt}.year }}}}-{{{{ {dt}.month }}}}")),
            "2024-3"
        );
        assert_eq!(
            render(&format!("{{{{ {dt}.replace(day=1, hour=0) }}}}")),
            "2024-03-01 00:05:07"
        );
        assert_eq!(
            render(
                "{{ modules.datetime.datetime.strptime('09/03/2024', '%d/%m/%Y').strftime('%Y-%m-%d') }}"
            ),
            "2024-03-09"
        );
        assert_eq!(
            render("{{ modules.datetime.date.fromisoformat('2024-02-29').isoformat() }}"),
            "2024-02-29"
        );
        assert_eq!(
            render("{{ modules.datetime.datetime(year=2024, month=1, day=2).strftime('%f') }}"),
            "000000"
        );
        // Today's date is today's.
        assert_eq!(
            render("{{ modules.datetime.date.today() }}"),
            chrono::Local::now().date_naive().to_string()
        );
        assert_eq!(
            render("{{ modules.datetime.timedelta(days=1, hours=2).total_seconds() }}"),
            "93600.0"
        );
        assert_eq!(
            render("{{ modules.datetime.timedelta(days=2, minutes=3) }}"),
            "2 days, 0:03:00"
        );
        let mut env = minijinja::Environment::new();
        env.add_global("modules", modules());
        let bad = env
            .render_str("{{ modules.datetime.datetime(2024, 2, 30) }}", ())
            .unwrap_err();
        assert!(bad.to_string().contains("out of range"), "{bad}");
    }

    /// Found while writing the fuzz tests: the separator of `isoformat` went into a chrono
    /// format, and one chrono cannot write (`%Q`) panicked.
    #[test]
    fn regression_isoformat_with_a_percent_separator() {
        let dt = "modules.datetime.datetime(2024, 3, 9, 14, 5, 7)";
        assert_eq!(
            render(&format!("{{{{ {dt}.isoformat('%Q') }}}}")),
            "2024-03-09%Q14:05:07"
        );
        assert_eq!(
            render(&format!("{{{{ {dt}.isoformat('%') }}}}")),
            "2024-03-09%14:05:07"
        );
    }

    #[test]
    fn re_matches_substitutes_and_splits_like_python() {
        assert_eq!(
            render("{{ modules.re.sub('[^a-z0-9]+', '_', 'Order Items (EU)'|lower) }}"),
            "order_items_eu_"
        );
        assert_eq!(
            render(r"{{ modules.re.sub('(\\w+)@(\\w+)', '\\2 at \\1', 'ada@example') }}"),
            "example at ada"
        );
        assert_eq!(
            render("{{ modules.re.sub('a', 'x', 'banana', 2) }}"),
            "bxnxna"
        );
        assert_eq!(
            render(
                "{{ modules.re.match('b', 'abc') is none }} {{ modules.re.search('b', 'abc').group(0) }}"
            ),
            "True b"
        );
        assert_eq!(
            render(
                r"{% set m = modules.re.match('(\\d+)-(\\d+)', '12-34 rest') %}{{ m.groups() }} {{ m.span() }}"
            ),
            "['12', '34'] [0, 5]"
        );
        assert_eq!(
            render(r"{{ modules.re.findall('\\d+', 'a1b22c333') }}"),
            "['1', '22', '333']"
        );
        assert_eq!(
            render("{{ modules.re.split(',\\\\s*', 'a, b,c') }}"),
            "['a', 'b', 'c']"
        );
        assert_eq!(
            render(
                "{{ modules.re.search('ABC', 'xabc', flags=modules.re.IGNORECASE) is not none }}"
            ),
            "True"
        );
        assert_eq!(
            render("{% set p = modules.re.compile('^stg_') %}{{ p.sub('', 'stg_orders') }}"),
            "orders"
        );
        assert_eq!(
            render("{{ modules.re.fullmatch('ab', 'abc') is none }}"),
            "True"
        );
    }
}
