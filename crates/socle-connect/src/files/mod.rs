//! `files`: local files and object-store URLs matched by globs, in CSV/TSV, JSON, JSON
//! Lines, Excel (`.xlsx`), Parquet and Avro.
//!
//! ```yaml
//! type: files
//! storage_options: { aws_region: eu-west-3, aws_access_key_id: "${secret:aws_key}", ... }
//! streams:
//!   orders:
//!     path: data/orders_*.csv          # or a list; relative to the project, or s3://..., gs://...
//!     format: csv                      # default: from the extension
//!     csv: { delimiter: ";", encoding: latin-1, header: true, null_values: ["", "NULL"] }
//!     incremental: true                # only new or changed files (the default)
//!     detect_changes: metadata         # path + size + modification time; or `hash` (content)
//!     on_missing: warn                 # a path that matches no file: fail | warn | skip
//!   budget:
//!     path: data/budget.xlsx
//!     excel: { sheet: Budget, range: "A3:F40" }
//!   events:
//!     path: data/events.json
//!     json: { records: /data/items }   # JSON pointer to the array of records
//! ```
//!
//! Each file is read whole into the run; the stream's state remembers every file read
//! (with its size, time and hash), so an incremental run reads only files that are new
//! or changed. A file that cannot be read at all (truncated Parquet, invalid JSON) is
//! rejected as one record naming the file and why.

mod columnar;
mod csv;
mod excel;
mod json;
pub mod quotes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;
use sha2::Digest;
use socle_core::ConfigError;
use socle_lake::Lake;

use crate::config::{OneOrMany, SourceCommon, SourceFile, StreamConfig, common, loc};
use crate::{Result, Source, StreamContext};

pub use self::csv::CsvOptions;

crate::raw_stream! {
    pub struct RawFilesStream {
        path: Spanned<OneOrMany>,
        format: Option<Spanned<String>>,
        csv: Option<Spanned<CsvOptions>>,
        excel: Option<Spanned<excel::ExcelOptions>>,
        json: Option<Spanned<json::JsonOptions>>,
        incremental: Option<bool>,
        detect_changes: Option<Spanned<String>>,
        on_missing: Option<Spanned<String>>,
    }
}

crate::raw_source! {
    pub struct RawFilesSource<RawFilesStream> {
        storage_options: Option<BTreeMap<String, String>>,
    }
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    Json,
    Jsonl,
    Xlsx,
    Parquet,
    Avro,
}

impl Format {
    fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::Jsonl,
            "xlsx" | "xlsm" | "xls" | "excel" => Format::Xlsx,
            "parquet" | "pq" => Format::Parquet,
            "avro" => Format::Avro,
            _ => return None,
        })
    }
}

/// What a stream does when one of its paths matches no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnMissing {
    /// The stream fails.
    Fail,
    /// The stream goes on, and its summary says which path matched nothing.
    Warn,
    /// The stream goes on without a word.
    Skip,
}

impl OnMissing {
    fn parse(s: &str) -> Option<OnMissing> {
        match s {
            "fail" => Some(OnMissing::Fail),
            "warn" => Some(OnMissing::Warn),
            "skip" => Some(OnMissing::Skip),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct FilesStream {
    paths: Vec<String>,
    format: Option<Format>,
    csv: CsvOptions,
    excel: excel::ExcelOptions,
    json: json::JsonOptions,
    incremental: bool,
    hash: bool,
    /// Set in the file; otherwise a glob warns and a plain path fails.
    on_missing: Option<OnMissing>,
}

/// A `files` source.
pub struct FilesSource {
    common: SourceCommon,
    streams: BTreeMap<String, FilesStream>,
    storage_options: BTreeMap<String, String>,
}

/// Parses a `type: files` source file.
pub fn parse(file: &SourceFile) -> std::result::Result<Box<dyn Source>, Vec<ConfigError>> {
    let raw: RawFilesSource = file.parse()?;
    let (common, mut errors) = common(file, &raw);
    let mut streams = BTreeMap::new();
    for (name, s) in &raw.streams.value {
        let s = &s.value;
        let format = match &s.format {
            None => None,
            Some(f) => match Format::parse(&f.value) {
                Some(x) => Some(x),
                None => {
                    errors.push(
                        file.error(
                            loc(f),
                            format!("stream `{name}`: unknown format `{}`", f.value),
                        )
                        .with_hint("use csv, tsv, json, jsonl, xlsx, parquet or avro"),
                    );
                    None
                }
            },
        };
        let paths = s.path.value.to_vec();
        if paths.is_empty() {
            errors.push(file.error(loc(&s.path), format!("stream `{name}`: `path` is empty")));
        }
        if format.is_none() {
            for p in &paths {
                let ext = p.rsplit('.').next().unwrap_or("");
                if Format::parse(ext).is_none() {
                    errors.push(
                        file.error(
                            loc(&s.path),
                            format!("stream `{name}`: cannot tell the format of `{p}` from its extension"),
                        )
                        .with_hint("add `format: csv` (or tsv, json, jsonl, xlsx, parquet, avro)"),
                    );
                }
            }
        }
        let hash = match &s.detect_changes {
            None => false,
            Some(d) if d.value == "metadata" => false,
            Some(d) if d.value == "hash" => true,
            Some(d) => {
                errors.push(
                    file.error(
                        loc(d),
                        format!("stream `{name}`: unknown `detect_changes` `{}`", d.value),
                    )
                    .with_hint("use metadata (size and modification time) or hash (content)"),
                );
                false
            }
        };
        let on_missing = match &s.on_missing {
            None => None,
            Some(m) => match OnMissing::parse(&m.value) {
                Some(x) => Some(x),
                None => {
                    errors.push(
                        file.error(
                            loc(m),
                            format!("stream `{name}`: unknown `on_missing` `{}`", m.value),
                        )
                        .with_hint("use fail, warn or skip"),
                    );
                    None
                }
            },
        };
        let csv = s.csv.as_ref().map(|c| c.value.clone()).unwrap_or_default();
        if let Some(c) = &s.csv
            && let Err(e) = csv.validate()
        {
            errors.push(file.error(loc(c), format!("stream `{name}`: `csv`: {e}")));
        }
        streams.insert(
            name.clone(),
            FilesStream {
                paths,
                format,
                csv,
                excel: s
                    .excel
                    .as_ref()
                    .map(|c| c.value.clone())
                    .unwrap_or_default(),
                json: s.json.as_ref().map(|c| c.value.clone()).unwrap_or_default(),
                incremental: s.incremental.unwrap_or(true),
                hash,
                on_missing,
            },
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(FilesSource {
        common,
        streams,
        storage_options: raw.storage_options.unwrap_or_default(),
    }))
}

/// A file matched by a stream's paths.
#[derive(Debug, Clone)]
struct Found {
    /// How the file is named in state, rejects and `_file`.
    display: String,
    size: u64,
    modified: String,
    location: Location,
}

#[derive(Debug, Clone)]
enum Location {
    Local(PathBuf),
    Store { lake: Lake, rel: String },
}

impl Location {
    async fn read(&self) -> std::result::Result<Vec<u8>, String> {
        match self {
            Location::Local(p) => tokio::fs::read(p).await.map_err(|e| e.to_string()),
            Location::Store { lake, rel } => lake.get(rel).await.map_err(|e| e.to_string()),
        }
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl FilesSource {
    async fn list(&self, pattern: &str, ctx: &StreamContext<'_>) -> Result<Vec<Found>> {
        if let Some((scheme, _)) = pattern.split_once("://")
            && scheme != "file"
        {
            return self.list_store(pattern, ctx).await;
        }
        let pattern = pattern.strip_prefix("file://").unwrap_or(pattern);
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            ctx.root.join(pattern)
        };
        let mut out = Vec::new();
        let paths: Vec<PathBuf> = if has_glob(pattern) {
            glob::glob(&full.to_string_lossy())
                .map_err(|e| ctx.fetch_error(format!("bad glob `{pattern}`: {e}")))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect()
        } else if full.is_file() {
            vec![full.clone()]
        } else {
            Vec::new()
        };
        for p in paths {
            let meta = std::fs::metadata(&p)
                .map_err(|e| ctx.fetch_error(format!("{}: {e}", p.display())))?;
            let modified = meta
                .modified()
                .ok()
                .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339())
                .unwrap_or_default();
            let display = p
                .strip_prefix(ctx.root)
                .map(|r| r.display().to_string())
                .unwrap_or_else(|_| p.display().to_string());
            out.push(Found {
                display,
                size: meta.len(),
                modified,
                location: Location::Local(p),
            });
        }
        Ok(out)
    }

    async fn list_store(&self, pattern: &str, ctx: &StreamContext<'_>) -> Result<Vec<Found>> {
        // The lake-style root is everything before the first glob character's folder.
        let cut = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
        let base = &pattern[..pattern[..cut].rfind('/').map_or(cut, |i| i + 1)];
        let url =
            url::Url::parse(base).map_err(|e| ctx.fetch_error(format!("bad URL `{base}`: {e}")))?;
        let mut options = Vec::new();
        for (k, v) in &self.storage_options {
            let v = socle_core::secrets::resolve(v, ctx.resolver)
                .map_err(|e| ctx.fetch_error(format!("storage_options.{k}: {e}")))?;
            options.push((k.clone(), v));
        }
        let lake = Lake::open_url(&url, &options).map_err(|e| ctx.fetch_error(e.to_string()))?;
        let rest = &pattern[base.len()..];
        let matcher = glob::Pattern::new(rest)
            .map_err(|e| ctx.fetch_error(format!("bad glob `{pattern}`: {e}")))?;
        let objects = lake
            .list_objects("")
            .await
            .map_err(|e| ctx.fetch_error(e.to_string()))?;
        Ok(objects
            .into_iter()
            .filter(|o| matcher.matches(&o.path))
            .map(|o| Found {
                display: format!("{base}{}", o.path),
                size: o.size,
                modified: o.modified,
                location: Location::Store {
                    lake: lake.clone(),
                    rel: o.path,
                },
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Source for FilesSource {
    fn common(&self) -> &SourceCommon {
        &self.common
    }

    async fn extract(&self, stream: &StreamConfig, ctx: &mut StreamContext<'_>) -> Result<()> {
        let spec = &self.streams[&stream.name];
        let vars = ctx.template_vars();
        let mut found: Vec<Found> = Vec::new();
        for p in &spec.paths {
            let p = crate::template::render(p, &vars).map_err(|e| ctx.fetch_error(e))?;
            let matched = self.list(&p, ctx).await?;
            if matched.is_empty() {
                let glob = has_glob(&p);
                let what = if glob {
                    format!("`{p}` matched no file")
                } else {
                    format!("no file `{p}`")
                };
                let default = if glob {
                    OnMissing::Warn
                } else {
                    OnMissing::Fail
                };
                match spec.on_missing.unwrap_or(default) {
                    OnMissing::Fail => {
                        return Err(ctx.fetch_error(format!(
                            "{what} (set `on_missing: warn` or `skip` if that can happen)"
                        )));
                    }
                    OnMissing::Warn => ctx.warn(what),
                    OnMissing::Skip => {}
                }
            }
            for f in matched {
                if !found.iter().any(|x| x.display == f.display) {
                    found.push(f);
                }
            }
        }
        found.sort_by(|a, b| a.display.cmp(&b.display));
        let mut seen = ctx
            .state
            .get("files")
            .and_then(|f| f.as_object())
            .cloned()
            .unwrap_or_default();
        for f in found {
            if ctx.cancelled() {
                break;
            }
            let previous = seen.get(&f.display).cloned();
            let same_meta = previous.as_ref().is_some_and(|p| {
                p.get("size").and_then(|s| s.as_u64()) == Some(f.size)
                    && p.get("modified").and_then(|m| m.as_str()) == Some(f.modified.as_str())
            });
            if spec.incremental && !spec.hash && same_meta {
                continue;
            }
            let hash = if spec.hash {
                Some(
                    hash_of(&f.location)
                        .await
                        .map_err(|e| ctx.fetch_error(format!("cannot read {}: {e}", f.display)))?,
                )
            } else {
                None
            };
            if spec.incremental
                && hash.is_some()
                && previous
                    .as_ref()
                    .and_then(|p| p.get("sha256"))
                    .and_then(|h| h.as_str())
                    == hash.as_deref()
            {
                continue;
            }
            let format = spec.format.unwrap_or_else(|| {
                Format::parse(f.display.rsplit('.').next().unwrap_or("")).unwrap_or(Format::Csv)
            });
            let input = match (&f.location, format) {
                // Text files stream from disk: memory stays flat whatever their size.
                (Location::Local(p), Format::Csv | Format::Tsv) => Input::File(p.clone()),
                (loc, _) => Input::Bytes(
                    loc.read()
                        .await
                        .map_err(|e| ctx.fetch_error(format!("cannot read {}: {e}", f.display)))?,
                ),
            };
            ctx.sink.files_in += 1;
            ctx.sink.bytes_in += f.size;
            read_file(format, spec, &f.display, input, ctx).await?;
            ctx.sink.maybe_flush_rejects().await?;
            seen.insert(
                f.display.clone(),
                match hash {
                    Some(h) => {
                        serde_json::json!({ "size": f.size, "modified": f.modified, "sha256": h })
                    }
                    None => serde_json::json!({ "size": f.size, "modified": f.modified }),
                },
            );
        }
        ctx.set_state(serde_json::json!({ "files": seen }));
        Ok(())
    }
}

/// A file's content: streamed from disk, or in memory.
pub(crate) enum Input {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Input {
    fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        match self {
            Input::File(p) => std::fs::read(p),
            Input::Bytes(b) => Ok(b),
        }
    }
}

/// The SHA-256 of a file's content (streamed for local files).
async fn hash_of(location: &Location) -> std::result::Result<String, String> {
    match location {
        Location::Local(p) => {
            let p = p.clone();
            tokio::task::spawn_blocking(move || {
                let mut f = std::fs::File::open(&p).map_err(|e| e.to_string())?;
                let mut h = sha2::Sha256::new();
                std::io::copy(&mut f, &mut h).map_err(|e| e.to_string())?;
                Ok(format!("{:x}", h.finalize()))
            })
            .await
            .map_err(|e| e.to_string())?
        }
        other => Ok(format!("{:x}", sha2::Sha256::digest(other.read().await?))),
    }
}

async fn read_file(
    format: Format,
    spec: &FilesStream,
    name: &str,
    input: Input,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let meta = crate::RowMeta {
        account: None,
        file: Some(name.to_string()),
    };
    match format {
        Format::Csv | Format::Tsv => {
            let mut options = spec.csv.clone();
            if format == Format::Tsv && options.delimiter.is_none() {
                options.delimiter = Some("\t".into());
            }
            return csv::read(&options, name, input, &meta, ctx).await;
        }
        _ => {}
    }
    let bytes = input
        .into_bytes()
        .map_err(|e| ctx.fetch_error(format!("cannot read {name}: {e}")))?;
    match format {
        Format::Csv | Format::Tsv => unreachable!("read above"),
        Format::Json => json::read_json(&spec.json, name, bytes, &meta, ctx).await,
        Format::Jsonl => json::read_jsonl(name, bytes, &meta, ctx).await,
        Format::Xlsx => excel::read(&spec.excel, name, bytes, &meta, ctx).await,
        Format::Parquet => columnar::read_parquet(name, bytes, &meta, ctx).await,
        Format::Avro => columnar::read_avro(name, bytes, &meta, ctx).await,
    }
}

/// Column names from a header row: blanks become `column_<n>`, repeats get `_2`, `_3`.
pub(super) fn column_names(header: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(header.len());
    for (i, h) in header.iter().enumerate() {
        let base = h.trim().trim_start_matches('\u{feff}').to_string();
        let base = if base.is_empty() {
            format!("column_{}", i + 1)
        } else {
            base
        };
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// Settles the column kinds of a file: declared types (`columns:`) win over inference, and
/// a column with no value at all is text. Returns the file's schema.
pub(super) fn settle_kinds(
    names: &[String],
    kinds: &mut [crate::infer::Kind],
    declared: &BTreeMap<String, crate::infer::Kind>,
) -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{Field, Schema};
    for (i, n) in names.iter().enumerate() {
        if let Some(d) = declared.get(n) {
            kinds[i] = *d;
        }
        if kinds[i] == crate::infer::Kind::Null {
            kinds[i] = crate::infer::Kind::String;
        }
    }
    std::sync::Arc::new(Schema::new(
        names
            .iter()
            .zip(kinds.iter())
            .map(|(n, k)| Field::new(n, k.data_type(), true))
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_header() {
        let n = super::column_names(&["id".into(), "".into(), "id".into(), " name ".into()]);
        assert_eq!(n, vec!["id", "column_2", "id_2", "name"]);
    }
}
