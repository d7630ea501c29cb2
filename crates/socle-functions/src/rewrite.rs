//! Syntax rewrites applied to parsed statements before planning.
//!
//! BigQuery and Snowflake write date parts as bare keywords: `DATE_DIFF(a, b, DAY)`,
//! `DATE_TRUNC(d, WEEK(MONDAY))`, `datediff(day, a, b)`. Parsed generically those are column
//! references, so this pass turns them into the string literals the functions take. It
//! also maps `TIMESTAMP_TRUNC` / `DATETIME_TRUNC` to `DATE_TRUNC`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart, Value,
    VisitMut, visit_expressions_mut,
};

const PARTS: &[&str] = &[
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
    "dayofweek",
    "dayofyear",
    "week",
    "isoweek",
    "month",
    "quarter",
    "year",
    "isoyear",
];

fn is_part_name(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    PARTS.contains(&lower.as_str()) || lower.strip_suffix('s').is_some_and(|l| PARTS.contains(&l))
}

/// Which argument positions of a function may hold a bare date part.
fn part_positions(name: &str, arg_count: usize) -> &'static [usize] {
    match (name, arg_count) {
        ("date_diff" | "datediff", 3) => &[0, 2],
        ("timestamp_diff" | "datetime_diff", 3) => &[2],
        ("date_trunc" | "datetrunc" | "timestamp_trunc" | "datetime_trunc", 2) => &[0, 1],
        ("last_day", 2) => &[1],
        _ => &[],
    }
}

/// Applies every rewrite to `node` (a statement or an expression).
pub fn rewrite<V: VisitMut>(node: &mut V) {
    let _ = visit_expressions_mut(node, |expr| {
        match expr {
            Expr::Function(f) => rewrite_function(f),
            Expr::Value(v) => plain_string(&mut v.value),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// BigQuery's raw and triple-quoted strings (`r'\d+'`, `'''text'''`) are plain strings to
/// DataFusion's planner: the tokenizer already kept their text as written.
fn plain_string(value: &mut Value) {
    if let Value::SingleQuotedRawStringLiteral(s)
    | Value::DoubleQuotedRawStringLiteral(s)
    | Value::TripleSingleQuotedRawStringLiteral(s)
    | Value::TripleDoubleQuotedRawStringLiteral(s)
    | Value::TripleSingleQuotedString(s)
    | Value::TripleDoubleQuotedString(s) = value
    {
        *value = Value::SingleQuotedString(std::mem::take(s));
    }
}

fn rewrite_function(f: &mut Function) {
    let Some(ObjectNamePart::Identifier(last)) = f.name.0.last_mut() else {
        return;
    };
    let name = last.value.to_ascii_lowercase();
    if matches!(name.as_str(), "timestamp_trunc" | "datetime_trunc") {
        *last = Ident::new("date_trunc");
    }
    let FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    let positions = part_positions(&name, list.args.len());
    for &pos in positions {
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))) = list.args.get_mut(pos) else {
            continue;
        };
        if let Some(text) = part_literal(arg) {
            *arg = Expr::Value(Value::SingleQuotedString(text).into());
        }
    }
}

/// `DAY` → `"DAY"`, `WEEK(MONDAY)` → `"WEEK(MONDAY)"`; anything else is left alone.
fn part_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(id) if id.quote_style.is_none() && is_part_name(&id.value) => {
            Some(id.value.to_uppercase())
        }
        Expr::Function(f) => {
            let name = match f.name.0.as_slice() {
                [ObjectNamePart::Identifier(id)] => id.value.to_ascii_lowercase(),
                _ => return None,
            };
            if name != "week" {
                return None;
            }
            let FunctionArguments::List(list) = &f.args else {
                return None;
            };
            match list.args.as_slice() {
                [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(day)))] => {
                    Some(format!("WEEK({})", day.value.to_uppercase()))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut stmts = Parser::parse_sql(&GenericDialect {}, sql).unwrap();
        rewrite(&mut stmts);
        stmts[0].to_string()
    }

    #[test]
    fn bare_parts_become_strings() {
        assert_eq!(
            rewritten("SELECT DATE_DIFF(a, b, DAY)"),
            "SELECT DATE_DIFF(a, b, 'DAY')"
        );
        assert_eq!(
            rewritten("SELECT datediff(day, a, b)"),
            "SELECT datediff('DAY', a, b)"
        );
        assert_eq!(
            rewritten("SELECT DATE_TRUNC(d, WEEK(MONDAY))"),
            "SELECT DATE_TRUNC(d, 'WEEK(MONDAY)')"
        );
        assert_eq!(
            rewritten("SELECT TIMESTAMP_TRUNC(t, HOUR)"),
            "SELECT date_trunc(t, 'HOUR')"
        );
        // A column that is not a part name stays a column.
        assert_eq!(
            rewritten("SELECT DATE_DIFF(a, b, unit)"),
            "SELECT DATE_DIFF(a, b, unit)"
        );
        // Quoted identifiers are columns, never parts.
        assert_eq!(
            rewritten("SELECT DATE_DIFF(a, b, \"day\")"),
            "SELECT DATE_DIFF(a, b, \"day\")"
        );
    }

    #[test]
    fn raw_strings_become_plain_strings() {
        assert_eq!(rewritten(r"SELECT r'\d+\.'"), r"SELECT '\d+\.'");
    }
}
