//! `postgres`, `mysql` (MySQL and MariaDB) and `sqlite`: tables or queries, read in
//! chunks over one connection, in full or incrementally on a cursor column with a
//! lookback window.
//!
//! ```yaml
//! type: postgres                     # or mysql, sqlite
//! url: "${secret:shop_db_url}"       # postgres://user:pw@host:5432/db; mysql://…;
//!                                    # sqlite: a path relative to the project
//! chunk_size: 10000                  # rows per batch (default 10,000)
//! streams:
//!   orders:
//!     from: public.orders            # a table or view
//!     incremental:
//!       cursor: updated_at           # a timestamp, date or integer column
//!       lookback: 1h                 # read again rows this far behind the cursor
//!       initial: "2024-01-01"        # only rows from here on the first run
//!     write: merge
//!     primary_key: [id]
//!   paid_orders:
//!     query: "select o.id, o.amount, c.country from orders o join customers c using (customer_id)"
//! ```
//!
//! An incremental run reads `WHERE cursor >= <last cursor − lookback>` (`>` with
//! `write: append`, so appended rows are not read twice); rows at the cursor or inside
//! the lookback are read again and a `merge` keeps one of each. The cursor committed is
//! the highest value read, together with the rows. Types: see [`decode`] and
//! `docs/sources.md`.

mod decode;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;
use socle_core::ConfigError;
use socle_core::duration::DurationText;

use self::decode::{CursorValue, Dialect};
use crate::config::{SourceCommon, SourceFile, StreamConfig, Write, common, loc};
use crate::{Result, Source, StreamContext};

crate::raw_stream! {
    pub struct RawSqlStream {
        from: Option<Spanned<String>>,
        query: Option<Spanned<String>>,
        incremental: Option<Spanned<RawSqlIncremental>>,
    }
}

crate::raw_source! {
    pub struct RawSqlSource<RawSqlStream> {
        url: Spanned<String>,
        chunk_size: Option<Spanned<usize>>,
    }
}

/// `incremental:` of a database stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqlIncremental {
    pub cursor: String,
    pub lookback: Option<DurationText>,
    pub initial: Option<String>,
}

#[derive(Debug, Clone)]
struct SqlStream {
    /// `SELECT * FROM …` or the query, before the cursor filter.
    select: String,
    incremental: Option<(String, Option<std::time::Duration>, Option<String>)>,
    append: bool,
}

/// A database source.
pub struct SqlSource {
    common: SourceCommon,
    dialect: Dialect,
    url: String,
    chunk_size: usize,
    streams: BTreeMap<String, SqlStream>,
}

pub fn parse_postgres(file: &SourceFile) -> std::result::Result<Box<dyn Source>, Vec<ConfigError>> {
    parse(file, Dialect::Postgres)
}

pub fn parse_mysql(file: &SourceFile) -> std::result::Result<Box<dyn Source>, Vec<ConfigError>> {
    parse(file, Dialect::MySql)
}

pub fn parse_sqlite(file: &SourceFile) -> std::result::Result<Box<dyn Source>, Vec<ConfigError>> {
    parse(file, Dialect::Sqlite)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
}

fn parse(
    file: &SourceFile,
    dialect: Dialect,
) -> std::result::Result<Box<dyn Source>, Vec<ConfigError>> {
    let raw: RawSqlSource = file.parse()?;
    let (common, mut errors) = common(file, &raw);
    if let Err(e) = socle_core::secrets::check_syntax(&raw.url.value) {
        errors.push(file.error(loc(&raw.url), format!("`url`: {e}")));
    }
    let chunk_size = match &raw.chunk_size {
        Some(c) if c.value == 0 => {
            errors.push(file.error(loc(c), "`chunk_size` must be at least 1"));
            1
        }
        Some(c) => c.value,
        None => 10_000,
    };
    let mut streams = BTreeMap::new();
    for ((name, s), config) in raw.streams.value.iter().zip(&common.streams) {
        let at = loc(s);
        let s = &s.value;
        let select = match (&s.from, &s.query) {
            (Some(f), None) => {
                if !is_name(f.value.trim()) {
                    errors.push(
                        file.error(
                            loc(f),
                            format!("stream `{name}`: `from` `{}` is not a table name", f.value),
                        )
                        .with_hint("write schema.table, or use `query:` for SQL"),
                    );
                }
                format!("SELECT * FROM {}", dialect.quote_path(f.value.trim()))
            }
            (None, Some(q)) => {
                if let Err(e) = crate::template::check(&q.value) {
                    errors.push(file.error(loc(q), format!("stream `{name}`: {e}")));
                }
                let q = q.value.trim().trim_end_matches(';');
                format!("SELECT * FROM ({q}) AS socle_query")
            }
            (Some(_), Some(_)) => {
                errors.push(file.error(
                    at,
                    format!("stream `{name}`: `from` and `query` exclude each other"),
                ));
                String::new()
            }
            (None, None) => {
                errors.push(
                    file.error(at, format!("stream `{name}`: say what to read"))
                        .with_hint("add `from: schema.table` or `query: select …`"),
                );
                String::new()
            }
        };
        let incremental = match &s.incremental {
            None => None,
            Some(i) => {
                let lookback = match &i.value.lookback {
                    None => None,
                    Some(l) => {
                        let d = l.get();
                        if d.is_none() {
                            errors.push(
                                file.error(
                                    loc(i),
                                    format!(
                                        "stream `{name}`: `incremental.lookback` is not a duration"
                                    ),
                                )
                                .with_hint(socle_core::duration::HINT),
                            );
                        }
                        d
                    }
                };
                if !is_name(&i.value.cursor) {
                    errors.push(file.error(
                        loc(i),
                        format!(
                            "stream `{name}`: `incremental.cursor` `{}` is not a column name",
                            i.value.cursor
                        ),
                    ));
                }
                Some((i.value.cursor.clone(), lookback, i.value.initial.clone()))
            }
        };
        streams.insert(
            name.clone(),
            SqlStream {
                select,
                incremental,
                append: config.write == Write::Append,
            },
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(SqlSource {
        common,
        dialect,
        url: raw.url.value.clone(),
        chunk_size,
        streams,
    }))
}

#[async_trait::async_trait]
impl Source for SqlSource {
    fn common(&self) -> &SourceCommon {
        &self.common
    }

    async fn extract(&self, stream: &StreamConfig, ctx: &mut StreamContext<'_>) -> Result<()> {
        let spec = &self.streams[&stream.name];
        let vars = ctx.template_vars();
        let url = socle_core::secrets::resolve(&self.url, ctx.resolver)
            .map_err(|e| ctx.fetch_error(format!("`url`: {e}")))?;
        socle_core::secrets::remember_url_password(&url);
        let url = match self.dialect {
            Dialect::Sqlite if !url.starts_with("sqlite:") => {
                let p = std::path::Path::new(&url);
                let p = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    ctx.root.join(p)
                };
                if !p.is_file() {
                    return Err(ctx.fetch_error(format!("no SQLite database at {}", p.display())));
                }
                format!("sqlite://{}?mode=ro", p.display())
            }
            _ => url,
        };
        let mut sql =
            crate::template::render(&spec.select, &vars).map_err(|e| ctx.fetch_error(e))?;
        let mut cursor = None;
        if let Some((column, lookback, initial)) = &spec.incremental {
            let from_state = ctx.state.get("cursor").and_then(CursorValue::from_state);
            let start = match (from_state, initial) {
                (Some(c), _) => Some(c.minus(*lookback)),
                (None, Some(i)) => {
                    let i = crate::template::render(i, &vars).map_err(|e| ctx.fetch_error(e))?;
                    Some(CursorValue::Text(i))
                }
                (None, None) => None,
            };
            if let Some(start) = &start {
                let op = if spec.append && lookback.is_none() {
                    ">"
                } else {
                    ">="
                };
                sql = format!(
                    "{sql} WHERE {} {op} {}",
                    self.dialect.quote_path(column),
                    start.literal(self.dialect)
                );
            }
            cursor = Some(column.clone());
        }
        tracing::debug!("{}.{}: {sql}", ctx.source.name, stream.name);
        let highest = decode::read(
            self.dialect,
            &url,
            &sql,
            self.chunk_size,
            cursor.as_deref(),
            ctx,
        )
        .await
        .map_err(|e| ctx.fetch_error(socle_core::secrets::redact(&e)))?;
        // One query read: an empty result still empties a `replace` table.
        ctx.sink.files_in += 1;
        if spec.incremental.is_some() {
            let previous = ctx.state.get("cursor").and_then(CursorValue::from_state);
            let next = match (highest, previous) {
                (Some(h), Some(p)) => Some(if h.greater_than(&p) { h } else { p }),
                (h, p) => h.or(p),
            };
            if let Some(n) = next {
                ctx.set_state(serde_json::json!({ "cursor": n.to_state() }));
            }
        }
        Ok(())
    }
}
