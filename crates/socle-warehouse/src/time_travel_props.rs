//! Property and fuzz tests of time travel rewriting ([`rewrite`], [`split_name`]):
//! - `rewrite` answers for any text in every dialect socle parses (never panics);
//! - SQL without a `VERSION` or `TIMESTAMP` word comes back unchanged;
//! - each generated `name VERSION AS OF n` / `name TIMESTAMP AS OF '...'` (several per
//!   query, after multi-line text and non-ASCII characters) becomes the quoted name
//!   `"name@vN"` / `"name@t=..."`, the rest of the text stays as it was, and
//!   [`split_name`] reads the name back into the table and its `AS OF`.

use std::time::Duration;

use datafusion::sql::sqlparser::dialect::{Dialect, dialect_from_str};
use proptest::prelude::*;

use super::{AsOf, rewrite, split_name};

/// socle's dialects (DataFusion's names) and the identifier quote socle uses with each.
const DIALECTS: &[(&str, char)] = &[
    ("generic", '"'),
    ("postgresql", '"'),
    ("duckdb", '"'),
    ("bigquery", '`'),
    ("mysql", '`'),
];

fn dialect(i: usize) -> (Box<dyn Dialect>, char) {
    let (name, quote) = DIALECTS[i % DIALECTS.len()];
    (dialect_from_str(name).expect("known dialect"), quote)
}

/// A reference to a table as of a past state, as written and as rewritten.
#[derive(Debug, Clone)]
struct Travel {
    /// How the table is written: a plain name (any case) or a quoted one.
    name: String,
    quoted: bool,
    as_of: AsOf,
}

impl Travel {
    fn written(&self, quote: char) -> String {
        let name = if self.quoted {
            format!("{quote}{}{quote}", self.name)
        } else {
            self.name.clone()
        };
        match &self.as_of {
            AsOf::Version(v) => format!("{name} VERSION AS OF {v}"),
            AsOf::Timestamp(t) => format!("{name} timestamp as of '{t}'"),
        }
    }

    /// The table's name in the catalog: plain names are lowercased.
    fn table(&self) -> String {
        if self.quoted {
            self.name.clone()
        } else {
            self.name.to_ascii_lowercase()
        }
    }

    fn rewritten(&self, quote: char) -> String {
        let spec = match &self.as_of {
            AsOf::Version(v) => format!("v{v}"),
            AsOf::Timestamp(t) => format!("t={t}"),
        };
        format!("{quote}{}@{spec}{quote}", self.table())
    }
}

fn travel() -> impl Strategy<Value = Travel> {
    let as_of = prop_oneof![
        (0..=i64::MAX).prop_map(AsOf::Version),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2})?".prop_map(AsOf::Timestamp),
    ];
    // Plain names start with `tbl_`, so that none is a keyword; quoted names may hold
    // spaces, dots and `@`, but not the quotes.
    let name = prop_oneof![
        "tbl_[A-Za-z0-9_]{0,10}".prop_map(|n| (n, false)),
        "[A-Za-z0-9 _.@-]{1,12}".prop_map(|n| (n, true)),
    ];
    (name, as_of).prop_map(|((name, quoted), as_of)| Travel {
        name,
        quoted,
        as_of,
    })
}

/// Words and symbols of SQL, time travel's own included, and characters that are several
/// bytes long.
const TOKENS: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "t",
    "tbl_x",
    "VERSION",
    "TIMESTAMP",
    "AS",
    "OF",
    "as",
    "of",
    "1",
    "-1",
    "3.5",
    "99999999999999999999",
    "'2024-01-01'",
    "'",
    "\"q\"",
    "\"",
    "`b`",
    "`",
    "/*!",
    "/*",
    "*/",
    "--",
    "#",
    "\n",
    "\r\n",
    "\t",
    " ",
    ",",
    "(",
    ")",
    ".",
    ";",
    "CAST(x AS TIMESTAMP)",
    "JOIN",
    "ON",
    "\u{e9}",
    "\u{65e5}",
    "\u{1f600}",
    "$1",
    "@",
    "versıon",
    "X'00'",
    "E'\\n'",
    "$$x$$",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(0..TOKENS.len(), 0..24)
        .prop_map(|ix| ix.iter().map(|i| TOKENS[*i]).collect::<Vec<_>>().join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rewrite_never_panics(sql in any::<String>(), d in 0..DIALECTS.len()) {
        let (dialect, quote) = dialect(d);
        let _ = rewrite(&sql, dialect.as_ref(), quote);
    }

    #[test]
    fn rewrite_never_panics_on_sql_words(sql in soup(), d in 0..DIALECTS.len()) {
        let (dialect, quote) = dialect(d);
        let _ = rewrite(&sql, dialect.as_ref(), quote);
    }

    /// No `VERSION` or `TIMESTAMP` (in any ASCII case; keywords are ASCII, so `versıon`
    /// with a dotless i is a plain name): nothing to rewrite.
    #[test]
    fn sql_without_time_travel_is_left_alone(
        sql in prop_oneof![soup(), any::<String>()],
        d in 0..DIALECTS.len(),
    ) {
        let upper = sql.to_ascii_uppercase();
        prop_assume!(!upper.contains("VERSION") && !upper.contains("TIMESTAMP"));
        let (dialect, quote) = dialect(d);
        prop_assert_eq!(rewrite(&sql, dialect.as_ref(), quote), Ok(sql.clone()));
    }

    #[test]
    fn time_travel_becomes_a_name_that_splits_back(
        travels in prop::collection::vec(travel(), 1..4),
        text in "[^'\\\\]{0,16}",
        d in 0..DIALECTS.len(),
    ) {
        let (dialect, quote) = dialect(d);
        prop_assume!(travels.iter().all(|t| !t.name.contains(quote)));
        // A string literal before the tables moves them to other lines and columns, after
        // characters of several bytes.
        let head = format!("SELECT '{text}' AS c0, * FROM ");
        let mut sql = head.clone();
        let mut expected = head;
        for (i, t) in travels.iter().enumerate() {
            let join = if i == 0 { "" } else { " JOIN " };
            let on = if i == 0 { String::new() } else { format!(" ON c{i} = 1") };
            sql.push_str(&format!("{join}{}{on}", t.written(quote)));
            expected.push_str(&format!("{join}{}{on}", t.rewritten(quote)));
        }
        sql.push_str("\nWHERE x = 1");
        expected.push_str("\nWHERE x = 1");
        let out = rewrite(&sql, dialect.as_ref(), quote);
        prop_assert_eq!(out.as_deref(), Ok(expected.as_str()), "{}", sql);
        for t in &travels {
            let inner = t.rewritten(quote);
            let inner = &inner[quote.len_utf8()..inner.len() - quote.len_utf8()];
            let table = t.table();
            prop_assert_eq!(split_name(inner), (table.as_str(), Some(t.as_of.clone())));
        }
    }

    /// Names without `@` are plain names.
    #[test]
    fn names_without_an_at_sign_have_no_as_of(name in "[^@]{0,20}") {
        prop_assert_eq!(split_name(&name), (name.as_str(), None));
    }
}

/// Fuzz target: arbitrary text in every dialect.
#[test]
fn fuzz_rewrite() {
    bolero::check!()
        .with_test_time(Duration::from_secs(2))
        .for_each(|bytes: &[u8]| {
            let Some((d, rest)) = bytes.split_first() else {
                return;
            };
            if let Ok(sql) = std::str::from_utf8(rest) {
                let (dialect, quote) = dialect(usize::from(*d));
                if let Ok(out) = rewrite(sql, dialect.as_ref(), quote) {
                    let _ = split_name(&out);
                }
            }
        });
}
