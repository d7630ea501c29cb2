//! Pagination and record selection of `rest` responses.
//!
//! ```yaml
//! paginate: { type: page, param: page, size_param: per_page, size: 100, start: 1 }
//! paginate: { type: page, size: 50 }           # with `{{ page }}` in the path: no parameter
//! paginate: { type: offset, param: offset, size_param: limit, size: 100, total: /total }
//! paginate: { type: cursor, param: cursor, next: /meta/next_cursor, size_param: limit, size: 100 }
//! paginate: { type: link }                     # follows `Link: <…>; rel="next"`
//! paginate: { type: next_url, next: /next }    # follows a URL in the body
//! records: /data                               # JSON pointer to the array of records
//! records: { rows: /rows, header: /columnHeaders }   # tabular: arrays of values + names
//! ```
//!
//! A `page` or `offset` stream stops at an empty page, a page shorter than `size`, the
//! page count at `total_pages` or the record count at `total`; `cursor`, `link` and
//! `next_url` stop when there is no next. `max_pages` (default 10,000) bounds every
//! stream; a next page equal to the current one is an error, not an endless loop.

use serde::Deserialize;

/// `paginate:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaginate {
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub start: Option<i64>,
    pub size_param: Option<String>,
    pub size: Option<i64>,
    pub next: Option<String>,
    pub total_pages: Option<String>,
    pub total: Option<String>,
    pub max_pages: Option<u64>,
}

/// How a stream pages, validated.
#[derive(Debug, Clone)]
pub enum Paginate {
    None,
    Page {
        /// None when the path carries `{{ page }}`.
        param: Option<String>,
        start: i64,
        size: Option<(String, i64)>,
        total_pages: Option<String>,
    },
    Offset {
        param: String,
        start: i64,
        size_param: String,
        size: i64,
        total: Option<String>,
    },
    Cursor {
        param: String,
        next: String,
        size: Option<(String, i64)>,
    },
    Link,
    NextUrl {
        next: String,
    },
}

pub const DEFAULT_MAX_PAGES: u64 = 10_000;

impl Paginate {
    /// Validates `paginate:`; `path_has_page` says whether the path uses `{{ page }}`.
    pub fn parse(raw: &RawPaginate, path_has_page: bool) -> Result<Self, String> {
        let size = |default_param: &str| -> Result<Option<(String, i64)>, String> {
            match (raw.size, &raw.size_param) {
                (Some(n), _) if n <= 0 => Err(format!("`paginate.size` must be positive, not {n}")),
                (Some(n), p) => Ok(Some((
                    p.clone().unwrap_or_else(|| default_param.to_string()),
                    n,
                ))),
                (None, Some(p)) => Err(format!(
                    "`paginate.size_param` `{p}` needs `paginate.size` (the page size to ask for)"
                )),
                (None, None) => Ok(None),
            }
        };
        let pointer = |v: &Option<String>, f: &str| -> Result<Option<String>, String> {
            match v {
                Some(p) if !p.is_empty() && !p.starts_with('/') => Err(format!(
                    "`paginate.{f}`: `{p}` is not a JSON pointer (write `/{p}`)"
                )),
                other => Ok(other.clone()),
            }
        };
        Ok(match raw.kind.as_str() {
            "none" => Paginate::None,
            "page" => Paginate::Page {
                param: match (&raw.param, path_has_page) {
                    (Some(p), _) => Some(p.clone()),
                    (None, true) => None,
                    (None, false) => Some("page".into()),
                },
                start: raw.start.unwrap_or(1),
                size: size("per_page")?,
                total_pages: pointer(&raw.total_pages, "total_pages")?,
            },
            "offset" => {
                let (size_param, size) = size("limit")?.unwrap_or(("limit".into(), 100));
                Paginate::Offset {
                    param: raw.param.clone().unwrap_or_else(|| "offset".into()),
                    start: raw.start.unwrap_or(0),
                    size_param,
                    size,
                    total: pointer(&raw.total, "total")?,
                }
            }
            "cursor" => Paginate::Cursor {
                param: raw.param.clone().unwrap_or_else(|| "cursor".into()),
                next: pointer(&raw.next, "next")?.ok_or(
                    "`paginate.next` is required for `type: cursor`: the JSON pointer to the next cursor (e.g. /meta/next_cursor)",
                )?,
                size: size("limit")?,
            },
            "link" => Paginate::Link,
            "next_url" => Paginate::NextUrl {
                next: pointer(&raw.next, "next")?.ok_or(
                    "`paginate.next` is required for `type: next_url`: the JSON pointer to the next page's URL (e.g. /next)",
                )?,
            },
            other => {
                return Err(format!(
                    "`paginate.type`: unknown `{other}` (use none, page, offset, cursor, link or next_url)"
                ));
            }
        })
    }

    /// Query parameters of the first request, and the `page` template variable.
    pub fn first(&self) -> (Vec<(String, String)>, Option<i64>) {
        match self {
            Paginate::Page {
                param, start, size, ..
            } => {
                let mut q = Vec::new();
                if let Some(p) = param {
                    q.push((p.clone(), start.to_string()));
                }
                if let Some((p, n)) = size {
                    q.push((p.clone(), n.to_string()));
                }
                (q, Some(*start))
            }
            Paginate::Offset {
                param,
                start,
                size_param,
                size,
                ..
            } => (
                vec![
                    (param.clone(), start.to_string()),
                    (size_param.clone(), size.to_string()),
                ],
                None,
            ),
            Paginate::Cursor {
                size: Some((p, n)), ..
            } => (vec![(p.clone(), n.to_string())], None),
            _ => (Vec::new(), None),
        }
    }
}

/// What follows a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Done,
    /// The same request with these query parameters replaced, and the new `page`.
    Params(Vec<(String, String)>, Option<i64>),
    /// This URL, as is.
    Url(String),
}

/// Where a stream is in its pages.
#[derive(Debug, Clone, Default)]
pub struct Position {
    /// Page number (page pagination) or offset.
    pub index: i64,
    /// Records seen so far.
    pub records: u64,
}

/// The next request after a page with `count` records.
pub fn next(
    p: &Paginate,
    pos: &mut Position,
    doc: &serde_json::Value,
    link: Option<&str>,
    count: usize,
) -> Result<Next, String> {
    pos.records += count as u64;
    Ok(match p {
        Paginate::None => Next::Done,
        Paginate::Page {
            param,
            size,
            total_pages,
            ..
        } => {
            if count == 0 || size.as_ref().is_some_and(|(_, n)| (count as i64) < *n) {
                return Ok(Next::Done);
            }
            if let Some(tp) = total_pages {
                match doc.pointer(tp).and_then(as_i64) {
                    Some(total) if pos.index >= total => return Ok(Next::Done),
                    Some(_) => {}
                    None => {
                        return Err(format!(
                            "`paginate.total_pages`: no number at `{tp}` in the response"
                        ));
                    }
                }
            }
            pos.index += 1;
            let q = param
                .iter()
                .map(|p| (p.clone(), pos.index.to_string()))
                .collect();
            Next::Params(q, Some(pos.index))
        }
        Paginate::Offset {
            param, size, total, ..
        } => {
            if count == 0 || (count as i64) < *size {
                return Ok(Next::Done);
            }
            pos.index += count as i64;
            if let Some(t) = total {
                match doc.pointer(t).and_then(as_i64) {
                    Some(total) if pos.index >= total => return Ok(Next::Done),
                    Some(_) => {}
                    None => {
                        return Err(format!(
                            "`paginate.total`: no number at `{t}` in the response"
                        ));
                    }
                }
            }
            Next::Params(vec![(param.clone(), pos.index.to_string())], None)
        }
        Paginate::Cursor { param, next, .. } => match doc.pointer(next) {
            None | Some(serde_json::Value::Null) => Next::Done,
            Some(serde_json::Value::String(s)) if s.is_empty() => Next::Done,
            Some(serde_json::Value::String(s)) => {
                Next::Params(vec![(param.clone(), s.clone())], None)
            }
            Some(serde_json::Value::Bool(false)) => Next::Done,
            Some(v @ serde_json::Value::Number(_)) => {
                Next::Params(vec![(param.clone(), v.to_string())], None)
            }
            Some(other) => {
                return Err(format!(
                    "`paginate.next`: `{next}` is {other}, not a cursor"
                ));
            }
        },
        Paginate::Link => match link.and_then(link_next) {
            Some(u) => Next::Url(u),
            None => Next::Done,
        },
        Paginate::NextUrl { next } => match doc.pointer(next) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Next::Url(s.clone()),
            _ => Next::Done,
        },
    })
}

fn as_i64(v: &serde_json::Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str()?.trim().parse().ok())
}

/// The `rel="next"` URL of a `Link` header (RFC 8288).
pub fn link_next(header: &str) -> Option<String> {
    for part in split_links(header) {
        let part = part.trim();
        let Some(end) = part.find('>') else { continue };
        let url = part.strip_prefix('<').map(|p| &p[..end - 1])?;
        let params = &part[end + 1..];
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=").is_some_and(|v| {
                v.trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(url.to_string());
        }
    }
    None
}

/// Splits a Link header on the commas between links (not those inside `<…>`).
fn split_links(header: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = false;
    let mut start = 0;
    for (i, c) in header.char_indices() {
        match c {
            '<' => depth = true,
            '>' => depth = false,
            ',' if !depth => {
                out.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&header[start..]);
    out
}

/// `records:` as written: a pointer, or a tabular layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawRecords {
    Pointer(String),
    Tabular { rows: String, header: String },
}

/// Picks the records out of a response body. The error says what is there instead.
pub fn select(
    records: &RawRecords,
    doc: &serde_json::Value,
) -> Result<Vec<serde_json::Value>, String> {
    match records {
        RawRecords::Pointer(p) => match doc.pointer(p) {
            Some(serde_json::Value::Array(items)) => Ok(items.clone()),
            Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(v @ serde_json::Value::Object(_)) => Ok(vec![v.clone()]),
            Some(other) => Err(format!(
                "`records`: `{p}` is {}, not a list of records",
                kind(other)
            )),
            None => Err(format!("`records`: no `{p}` in the response")),
        },
        RawRecords::Tabular { rows, header } => {
            let names: Vec<String> = match doc.pointer(header) {
                Some(serde_json::Value::Array(h)) => h
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match c {
                        serde_json::Value::String(s) => Ok(s.clone()),
                        serde_json::Value::Object(o) => o
                            .get("name")
                            .and_then(|n| n.as_str())
                            .map(str::to_string)
                            .ok_or_else(|| {
                                format!("`records.header`: column {} has no `name`", i + 1)
                            }),
                        other => Err(format!(
                            "`records.header`: column {} is {}",
                            i + 1,
                            kind(other)
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    return Err(format!(
                        "`records.header`: `{header}` is {}, not a list",
                        kind(other)
                    ));
                }
                None => return Err(format!("`records.header`: no `{header}` in the response")),
            };
            let rows = match doc.pointer(rows) {
                Some(serde_json::Value::Array(r)) => r,
                // Reporting APIs leave `rows` out when there is no data.
                None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
                Some(other) => {
                    return Err(format!(
                        "`records.rows`: `{rows}` is {}, not a list",
                        kind(other)
                    ));
                }
            };
            Ok(rows
                .iter()
                .map(|r| match r {
                    serde_json::Value::Array(values) if values.len() == names.len() => {
                        serde_json::Value::Object(
                            names.iter().cloned().zip(values.iter().cloned()).collect(),
                        )
                    }
                    // Kept as is: the sink rejects it as not a record, with its text.
                    other => other.clone(),
                })
                .collect())
        }
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_link_headers() {
        let h =
            r#"<http://x/events?page=2&q=a,b>; rel="next", <http://x/events?page=10>; rel="last""#;
        assert_eq!(
            link_next(h).as_deref(),
            Some("http://x/events?page=2&q=a,b")
        );
        assert_eq!(link_next(r#"<http://x/?page=1>; rel="prev first""#), None);
    }

    #[test]
    fn selects_tabular_rows() {
        let doc = json!({"columnHeaders": [{"name": "day"}, {"name": "views"}], "rows": [["2024-06-01", 4306], ["x"]]});
        let r = RawRecords::Tabular {
            rows: "/rows".into(),
            header: "/columnHeaders".into(),
        };
        let out = select(&r, &doc).unwrap();
        assert_eq!(out[0], json!({"day": "2024-06-01", "views": 4306}));
        assert_eq!(out[1], json!(["x"]));
    }

    #[test]
    fn pages_stop_on_short_pages() {
        let p = Paginate::parse(
            &RawPaginate {
                kind: "page".into(),
                size: Some(10),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        let mut pos = Position {
            index: 1,
            records: 0,
        };
        assert_eq!(
            next(&p, &mut pos, &json!({}), None, 10).unwrap(),
            Next::Params(vec![("page".into(), "2".into())], Some(2))
        );
        assert_eq!(next(&p, &mut pos, &json!({}), None, 3).unwrap(), Next::Done);
    }
}
