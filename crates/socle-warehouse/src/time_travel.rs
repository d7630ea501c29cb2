//! Time travel syntax: `SELECT * FROM orders VERSION AS OF 3` and
//! `SELECT * FROM orders TIMESTAMP AS OF '2026-11-23 10:00:00'` (Delta Lake's own syntax,
//! as Databricks and Spark write it), in every dialect.
//!
//! Most sqlparser dialects do not parse these clauses, so before parsing, the token stream
//! is scanned and `name VERSION AS OF n` becomes the quoted identifier `"name@v3"` (and
//! `"name@t=<timestamp>"`), which the catalog resolves to the table at that version.

use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// A reference to a table as of a past state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsOf {
    Version(i64),
    /// An RFC 3339 or `YYYY-MM-DD[ HH:MM:SS]` timestamp, UTC unless an offset is given.
    Timestamp(String),
}

/// Splits a catalog name produced by [`rewrite`] into the table name and its `AS OF`.
pub fn split_name(name: &str) -> (&str, Option<AsOf>) {
    if let Some((table, spec)) = name.rsplit_once('@') {
        if let Some(v) = spec.strip_prefix('v').and_then(|v| v.parse().ok()) {
            return (table, Some(AsOf::Version(v)));
        }
        if let Some(ts) = spec.strip_prefix("t=") {
            return (table, Some(AsOf::Timestamp(ts.to_string())));
        }
    }
    (name, None)
}

/// Byte offset of each line start, to map token locations (line, column in chars) to bytes.
fn byte_offset(sql: &str, line_starts: &[usize], line: u64, column: u64) -> usize {
    let start = line_starts
        .get(line.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(sql.len());
    sql[start..]
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map(|(i, _)| start + i)
        .unwrap_or(sql.len())
}

/// Rewrites time travel clauses; returns the SQL unchanged when there are none (or when it
/// does not tokenize: the parser will then report the error at its real position).
pub fn rewrite(sql: &str, dialect: &dyn Dialect, quote: char) -> Result<String, String> {
    let upper = sql.to_ascii_uppercase();
    if !(upper.contains("AS") && upper.contains("OF")) {
        return Ok(sql.to_string());
    }
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize_with_location() else {
        return Ok(sql.to_string());
    };
    let significant: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .collect();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let kw = |t: &TokenWithSpan, k: Keyword| matches!(&t.token, Token::Word(w) if w.keyword == k && w.quote_style.is_none());
    for i in 1..significant.len().saturating_sub(3) {
        let (name, clause) = (significant[i - 1], significant[i]);
        let is_version = kw(clause, Keyword::VERSION);
        if !(is_version || kw(clause, Keyword::TIMESTAMP))
            || !kw(significant[i + 1], Keyword::AS)
            || !kw(significant[i + 2], Keyword::OF)
        {
            continue;
        }
        let Token::Word(word) = &name.token else {
            continue;
        };
        if word.quote_style.is_none() && word.keyword != Keyword::NoKeyword {
            // `CAST(x AS TIMESTAMP) AS of` and the like: not a table reference.
            continue;
        }
        let value = significant[i + 3];
        let spec = match (&value.token, is_version) {
            (Token::Number(n, _), true) => {
                let v: i64 = n
                    .parse()
                    .map_err(|_| format!("VERSION AS OF needs a whole number, got {n}"))?;
                format!("v{v}")
            }
            (Token::SingleQuotedString(s), false) => format!("t={s}"),
            (other, true) => {
                return Err(format!("VERSION AS OF needs a version number, got {other}"));
            }
            (other, false) => {
                return Err(format!(
                    "TIMESTAMP AS OF needs a quoted timestamp such as '2026-11-23 10:00:00', got {other}"
                ));
            }
        };
        let table = if word.quote_style.is_some() {
            word.value.clone()
        } else {
            word.value.to_ascii_lowercase()
        };
        if table.contains(quote) || spec.contains(quote) {
            return Err("time travel target contains a quote character".into());
        }
        let start = byte_offset(
            sql,
            &line_starts,
            name.span.start.line,
            name.span.start.column,
        );
        let end = byte_offset(
            sql,
            &line_starts,
            value.span.end.line,
            value.span.end.column,
        );
        edits.push((start, end, format!("{quote}{table}@{spec}{quote}")));
    }
    let mut out = sql.to_string();
    for (start, end, text) in edits.into_iter().rev() {
        out.replace_range(start..end, &text);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "time_travel_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::{BigQueryDialect, GenericDialect};

    #[test]
    fn rewrites_version_and_timestamp() {
        let d = GenericDialect {};
        assert_eq!(
            rewrite(
                "SELECT * FROM main.Orders VERSION AS OF 3 o WHERE x = 1",
                &d,
                '"'
            )
            .unwrap(),
            "SELECT * FROM main.\"orders@v3\" o WHERE x = 1"
        );
        assert_eq!(
            rewrite(
                "select count(*)\nfrom orders timestamp as of '2026-01-02 03:04:05'",
                &d,
                '"'
            )
            .unwrap(),
            "select count(*)\nfrom \"orders@t=2026-01-02 03:04:05\""
        );
        assert_eq!(
            rewrite(
                "SELECT * FROM `t` VERSION AS OF 0",
                &BigQueryDialect {},
                '`'
            )
            .unwrap(),
            "SELECT * FROM `t@v0`"
        );
    }

    #[test]
    fn leaves_other_sql_alone() {
        let d = GenericDialect {};
        let sql = "SELECT CAST(x AS TIMESTAMP) AS of_day FROM t";
        assert_eq!(rewrite(sql, &d, '"').unwrap(), sql);
        assert!(rewrite("SELECT * FROM t VERSION AS OF 'x'", &d, '"').is_err());
    }

    #[test]
    fn splits_names() {
        assert_eq!(split_name("orders@v3"), ("orders", Some(AsOf::Version(3))));
        assert_eq!(
            split_name("orders@t=2026-01-01"),
            ("orders", Some(AsOf::Timestamp("2026-01-01".into())))
        );
        assert_eq!(split_name("orders"), ("orders", None));
    }
}
