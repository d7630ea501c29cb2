//! Reading one HTML page: items and their fields, the next-page link, detail links.
//! Parsing is synchronous (the parsed document never crosses an `await`).

use scraper::{ElementRef, Html, Selector};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ScrapeStream;

/// A field as written: a selector (its text), or the long form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawField {
    Selector(String),
    Spec(RawFieldSpec),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldSpec {
    /// Selector inside the item (default: the item itself).
    pub select: Option<String>,
    /// An attribute instead of the text.
    pub attr: Option<String>,
    /// The inner HTML instead of the text.
    #[serde(default)]
    pub html: bool,
    /// Every match, as a list (default: the first).
    #[serde(default)]
    pub all: bool,
    /// Resolve the value as a URL against the page's.
    #[serde(default)]
    pub url: bool,
}

/// A field, validated.
#[derive(Debug, Clone)]
pub struct Field {
    select: Option<Selector>,
    attr: Option<String>,
    html: bool,
    all: bool,
    url: bool,
}

impl Field {
    pub fn parse(raw: &RawField) -> Result<Self, String> {
        let spec = match raw {
            RawField::Selector(s) => RawFieldSpec {
                select: Some(s.clone()),
                ..Default::default()
            },
            RawField::Spec(s) => s.clone(),
        };
        if spec.html && spec.attr.is_some() {
            return Err("`html` and `attr` exclude each other".into());
        }
        let select = spec
            .select
            .as_deref()
            .map(|s| Selector::parse(s).map_err(|e| format!("`{s}` is not a CSS selector: {e}")))
            .transpose()?;
        Ok(Self {
            select,
            attr: spec.attr,
            html: spec.html,
            all: spec.all,
            url: spec.url,
        })
    }

    fn value_of(&self, el: ElementRef<'_>, base: &url::Url) -> Option<String> {
        let v = if let Some(a) = &self.attr {
            el.value().attr(a)?.trim().to_string()
        } else if self.html {
            el.inner_html().trim().to_string()
        } else {
            text(el)
        };
        if self.url {
            return Some(base.join(&v).map(|u| u.to_string()).unwrap_or(v));
        }
        Some(v)
    }

    /// The field's value in `scope` (an item, or a whole detail page).
    fn read(&self, scope: ElementRef<'_>, base: &url::Url) -> Value {
        let matches: Vec<ElementRef<'_>> = match &self.select {
            Some(s) => scope.select(s).collect(),
            None => vec![scope],
        };
        if self.all {
            let values: Vec<Value> = matches
                .into_iter()
                .filter_map(|m| self.value_of(m, base))
                .map(Value::String)
                .collect();
            return if values.is_empty() {
                Value::Null
            } else {
                Value::Array(values)
            };
        }
        matches
            .into_iter()
            .next()
            .and_then(|m| self.value_of(m, base))
            .map(Value::String)
            .unwrap_or(Value::Null)
    }
}

/// An element's text, whitespace collapsed.
fn text(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    for part in el.text() {
        for word in part.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

pub struct Item {
    pub record: Map<String, Value>,
    pub detail: Option<url::Url>,
}

pub struct Listing {
    pub items: Vec<Item>,
    pub next: Option<url::Url>,
}

fn href(el: ElementRef<'_>, base: &url::Url) -> Option<url::Url> {
    let h = el.value().attr("href")?;
    base.join(h.trim()).ok()
}

/// The items and the next link of a listing page.
pub(super) fn read_listing(html: &str, base: &url::Url, spec: &ScrapeStream) -> Listing {
    let doc = Html::parse_document(html);
    let items = doc
        .select(&spec.item)
        .map(|el| {
            let record = spec
                .fields
                .iter()
                .map(|(name, f)| (name.clone(), f.read(el, base)))
                .collect();
            let detail = spec
                .detail
                .as_ref()
                .and_then(|(link, _)| el.select(link).next())
                .and_then(|a| href(a, base));
            Item { record, detail }
        })
        .collect();
    let next = spec
        .next
        .as_ref()
        .and_then(|s| doc.select(s).next())
        .and_then(|a| href(a, base));
    Listing { items, next }
}

/// The fields of a detail page.
pub(super) fn read_detail(
    html: &str,
    base: &url::Url,
    fields: &[(String, Field)],
) -> Vec<(String, Value)> {
    let doc = Html::parse_document(html);
    let root = doc.root_element();
    fields
        .iter()
        .map(|(name, f)| (name.clone(), f.read(root, base)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_attributes_lists_and_html() {
        let html = r#"<article class="job" data-id="J1"><h2><a href="/job/J1"> Data
            Engineer </a></h2><ul><li>sql</li><li>rust</li></ul><div class="d"><p>Hi</p></div></article>"#;
        let base = url::Url::parse("http://x/jobs?page=1").unwrap();
        let doc = Html::parse_document(html);
        let item = doc
            .select(&Selector::parse("article").unwrap())
            .next()
            .unwrap();
        let f = |raw: RawField| Field::parse(&raw).unwrap().read(item, &base);
        let spec = |s: RawFieldSpec| RawField::Spec(s);
        assert_eq!(f(RawField::Selector("h2 a".into())), "Data Engineer");
        assert_eq!(
            f(spec(RawFieldSpec {
                attr: Some("data-id".into()),
                ..Default::default()
            })),
            "J1"
        );
        assert_eq!(
            f(spec(RawFieldSpec {
                select: Some("h2 a".into()),
                attr: Some("href".into()),
                url: true,
                ..Default::default()
            })),
            "http://x/job/J1"
        );
        assert_eq!(
            f(spec(RawFieldSpec {
                select: Some("li".into()),
                all: true,
                ..Default::default()
            })),
            serde_json::json!(["sql", "rust"])
        );
        assert_eq!(
            f(spec(RawFieldSpec {
                select: Some(".d".into()),
                html: true,
                ..Default::default()
            })),
            "<p>Hi</p>"
        );
        assert_eq!(f(RawField::Selector(".missing".into())), Value::Null);
    }
}
