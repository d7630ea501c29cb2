//! `socle.yml`: the project's configuration, parsed strictly and validated once.
//!
//! Parsing happens in two steps, as Vector does it: serde reads the YAML into `Raw*`
//! structs that keep source locations (`Spanned`), then [`Config::from_yaml`] validates
//! them into types that cannot be invalid. Unknown keys are errors with a suggestion.
//! Every field is documented in `docs/config.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;
use url::Url;

use crate::diag::{ConfigError, Location, did_you_mean};
use crate::secrets;

/// The validated project configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Project name: letters, digits, `_` and `-`.
    pub name: String,
    pub lake: LakeConfig,
    pub metadata: MetadataConfig,
    pub warehouse: WarehouseConfig,
    pub server: ServerConfig,
    pub security: SecurityConfig,
    pub alerts: AlertsConfig,
    /// Concurrency pools of pipeline tasks: name → slots.
    pub pools: BTreeMap<String, u32>,
}

/// A configuration string that may hold `${env:..}` / `${secret:..}` references, with
/// where it was written so that a failed resolution can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    pub raw: String,
    pub file: PathBuf,
    pub location: Location,
}

impl ConfigValue {
    pub fn plain(raw: impl Into<String>) -> Self {
        Self {
            raw: raw.into(),
            file: PathBuf::new(),
            location: Location::default(),
        }
    }

    /// Resolves references; the error names where the value was written.
    pub fn resolve(&self, resolver: &dyn secrets::Resolver) -> Result<String, ConfigError> {
        secrets::resolve(&self.raw, resolver)
            .map_err(|e| ConfigError::new(&self.file, self.location, e.to_string()))
    }
}

/// Where the lake lives and how to reach it.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// `file:///...` (default `<project>/.socle/lake`), `s3://bucket/prefix`,
    /// `gs://bucket/prefix` or `az://container/prefix`.
    pub url: Url,
    /// Store options (endpoint, region, credentials by reference).
    pub options: BTreeMap<String, ConfigValue>,
}

/// The metadata database.
#[derive(Debug, Clone)]
pub struct MetadataConfig {
    /// `sqlite:///abs/path.db` (default `<project>/.socle/socle.db`) or `postgres://...`;
    /// may contain references such as `${env:PGPASSWORD}`.
    pub url: ConfigValue,
}

/// SQL dialect used to parse queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    Generic,
    Postgres,
    Duckdb,
    Bigquery,
    Mysql,
}

impl Dialect {
    /// The name DataFusion's `datafusion.sql_parser.dialect` setting expects.
    pub fn datafusion_name(self) -> &'static str {
        match self {
            Dialect::Generic => "generic",
            Dialect::Postgres => "postgresql",
            Dialect::Duckdb => "duckdb",
            Dialect::Bigquery => "bigquery",
            Dialect::Mysql => "mysql",
        }
    }
}

/// Settings of the embedded warehouse.
#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    /// Schema used for unqualified names (dbt-duckdb's `main`).
    pub default_schema: String,
    pub dialect: Dialect,
    /// Memory the query engine may use before spilling or failing, in bytes.
    pub memory_limit: Option<u64>,
    /// Parallelism of query plans (default: number of cores).
    pub target_partitions: Option<usize>,
    /// Rows per Arrow batch.
    pub batch_size: Option<usize>,
}

/// The HTTP server (`socle serve`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: std::net::IpAddr,
    pub port: u16,
    /// Longest a query through the API runs.
    pub query_timeout: std::time::Duration,
    /// Most rows a query through the API returns.
    pub max_rows: usize,
    /// How long the catalog is served before it is read again in the background.
    pub catalog_refresh: std::time::Duration,
    /// How long the query process (queries through the API run in a child process) stays
    /// after its last query.
    pub query_idle: std::time::Duration,
    /// Longest a query through the API waits for a free slot before the server answers 503.
    pub query_queue_wait: std::time::Duration,
    /// Queries through the API that run at once (default: twice the cores).
    pub query_slots: Option<usize>,
    /// Largest answer of a query through the API, in bytes (longer answers are cut).
    pub max_answer_bytes: u64,
    /// PEM certificate chain and private key: the server speaks HTTPS.
    pub tls: Option<TlsConfig>,
    /// Most connections open at once, and from one client address.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Longest a request's head takes from its first byte; its body after the head; and
    /// how long a connection stays open with no request.
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
}

/// `server.tls`: files relative to the project folder.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 8080,
            query_timeout: std::time::Duration::from_secs(30),
            max_rows: 10_000,
            catalog_refresh: std::time::Duration::from_secs(60),
            query_idle: std::time::Duration::from_secs(60),
            query_queue_wait: std::time::Duration::from_millis(500),
            query_slots: None,
            max_answer_bytes: 64 << 20,
            tls: None,
            max_connections: 4096,
            max_connections_per_address: 256,
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(30),
            idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    bind: Option<Spanned<String>>,
    port: Option<u16>,
    query_timeout: Option<Spanned<crate::duration::DurationText>>,
    max_rows: Option<Spanned<usize>>,
    catalog_refresh: Option<Spanned<crate::duration::DurationText>>,
    query_idle: Option<Spanned<crate::duration::DurationText>>,
    query_queue_wait: Option<Spanned<crate::duration::DurationText>>,
    query_slots: Option<Spanned<usize>>,
    max_answer_bytes: Option<Spanned<SizeText>>,
    tls: Option<Spanned<RawTls>>,
    max_connections: Option<Spanned<usize>>,
    max_connections_per_address: Option<Spanned<usize>>,
    header_timeout: Option<Spanned<crate::duration::DurationText>>,
    body_timeout: Option<Spanned<crate::duration::DurationText>>,
    idle_timeout: Option<Spanned<crate::duration::DurationText>>,
}

/// A size in YAML: a number of bytes or a text with a unit (`64MiB`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeText {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<String>,
    key: Spanned<String>,
}

/// Security settings. Nothing is configurable yet; any key is rejected.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {}

pub use crate::alerts::AlertsConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: Option<Spanned<String>>,
    #[serde(default)]
    lake: RawLake,
    #[serde(default)]
    metadata: RawMetadata,
    #[serde(default)]
    warehouse: RawWarehouse,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    security: SecurityConfig,
    #[serde(default)]
    alerts: crate::alerts::RawAlerts,
    #[serde(default)]
    pools: BTreeMap<String, Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLake {
    url: Option<Spanned<String>>,
    #[serde(default)]
    options: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    url: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarehouse {
    default_schema: Option<Spanned<String>>,
    #[serde(default)]
    dialect: Dialect,
    memory_limit: Option<Spanned<String>>,
    target_partitions: Option<usize>,
    batch_size: Option<usize>,
}

/// Options accepted per lake scheme; the credential ones must be references.
const S3_OPTIONS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "allow_http",
    "virtual_hosted_style_request",
    "skip_signature",
];
const GS_OPTIONS: &[&str] = &[
    "service_account_path",
    "service_account_key",
    "endpoint",
    "allow_http",
];
const AZ_OPTIONS: &[&str] = &[
    "account_name",
    "account_key",
    "sas_token",
    "use_emulator",
    "endpoint",
    "allow_http",
];
const CREDENTIAL_OPTIONS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "session_token",
    "service_account_key",
    "account_key",
    "sas_token",
];

fn loc<T>(s: &Spanned<T>) -> Location {
    Location::from_saphyr(s.referenced)
}

impl Config {
    /// Defaults for a project that has no `socle.yml` (for example a bare dbt project).
    pub fn defaults(name: &str, root: &Path) -> Self {
        Self {
            name: name.to_string(),
            lake: LakeConfig {
                url: default_lake_url(root),
                options: BTreeMap::new(),
            },
            metadata: MetadataConfig {
                url: ConfigValue::plain(default_metadata_url(root)),
            },
            warehouse: WarehouseConfig {
                default_schema: "main".into(),
                dialect: Dialect::Generic,
                memory_limit: None,
                target_partitions: None,
                batch_size: None,
            },
            server: ServerConfig::default(),
            security: SecurityConfig::default(),
            alerts: AlertsConfig::default(),
            pools: BTreeMap::new(),
        }
    }

    /// Parses and validates `socle.yml` text. `file` is used in errors; `root` resolves
    /// relative paths.
    pub fn from_yaml(text: &str, file: &Path, root: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            return Err(ConfigError::file(file, "the file is empty")
                .with_hint("it needs at least `name: my_project`"));
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::from_yaml(file, &e))?
        };
        let err = |l: Location, m: String| ConfigError::new(file, l, m);

        let name = raw
            .name
            .ok_or_else(|| err(Location::new(1, 1), "missing key `name`".into()))
            .map_err(|e| e.with_hint("add `name: my_project` at the top of the file"))?;
        if name.value.is_empty()
            || !name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(
                err(loc(&name), format!("invalid project name `{}`", name.value))
                    .with_hint("use letters, digits, `_` and `-`"),
            );
        }
        let mut config = Config::defaults(&name.value, root);

        if let Some(url) = &raw.lake.url {
            config.lake.url = parse_lake_url(&url.value, root).map_err(|m| {
                err(loc(url), m).with_hint("use a path, file:///abs/path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix")
            })?;
        }
        let allowed: &[&str] = match config.lake.url.scheme() {
            "s3" | "s3a" => S3_OPTIONS,
            "gs" => GS_OPTIONS,
            "az" | "abfs" | "abfss" => AZ_OPTIONS,
            _ => &[],
        };
        for (key, value) in raw.lake.options {
            if !allowed.contains(&key.as_str()) {
                let mut e = err(
                    Location::new(loc(&value).line, 0),
                    format!(
                        "unknown lake option `{key}` for a {}:// lake",
                        config.lake.url.scheme()
                    ),
                );
                e.hint = Some(match did_you_mean(&key, allowed.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if allowed.is_empty() => "a local lake takes no options".into(),
                    None => format!("valid options: {}", allowed.join(", ")),
                });
                return Err(e);
            }
            if CREDENTIAL_OPTIONS.contains(&key.as_str()) && !secrets::is_reference(&value.value) {
                return Err(err(loc(&value), format!("`{key}` must not be written inline"))
                    .with_hint(format!(
                        "reference it instead: `${{env:NAME}}` or `${{secret:NAME}}`, e.g. {key}: \"${{env:{}}}\"",
                        key.to_ascii_uppercase()
                    )));
            }
            secrets::check_syntax(&value.value).map_err(|m| err(loc(&value), m.to_string()))?;
            config.lake.options.insert(
                key,
                ConfigValue {
                    raw: value.value.clone(),
                    file: file.to_path_buf(),
                    location: loc(&value),
                },
            );
        }

        if let Some(url) = &raw.metadata.url {
            secrets::check_syntax(&url.value).map_err(|m| err(loc(url), m.to_string()))?;
            let normalized = normalize_metadata_url(&url.value, root).map_err(|m| {
                err(loc(url), m)
                    .with_hint("use sqlite://path/to/file.db or postgres://user@host/db")
            })?;
            config.metadata.url = ConfigValue {
                raw: normalized,
                file: file.to_path_buf(),
                location: loc(url),
            };
        }

        let w = raw.warehouse;
        if let Some(schema) = w.default_schema {
            if !is_identifier(&schema.value) {
                return Err(err(
                    loc(&schema),
                    format!("invalid schema name `{}`", schema.value),
                )
                .with_hint("use a lowercase identifier such as `main`"));
            }
            config.warehouse.default_schema = schema.value;
        }
        config.warehouse.dialect = w.dialect;
        if let Some(limit) = w.memory_limit {
            config.warehouse.memory_limit = Some(
                parse_bytes(&limit.value)
                    .ok_or_else(|| {
                        err(
                            loc(&limit),
                            format!("invalid memory_limit `{}`", limit.value),
                        )
                    })
                    .map_err(|e| e.with_hint("write a size such as 512MiB, 4GiB or 2GB"))?,
            );
        }
        config.warehouse.target_partitions = w.target_partitions.filter(|n| *n > 0);
        config.warehouse.batch_size = w.batch_size.filter(|n| *n > 0);
        let sv = raw.server;
        if let Some(bind) = sv.bind {
            config.server.bind = bind.value.parse().map_err(|_| {
                err(loc(&bind), format!("`{}` is not an IP address", bind.value)).with_hint(
                    "use 127.0.0.1 (this machine only), 0.0.0.0 (every interface) or ::1",
                )
            })?;
        }
        if let Some(port) = sv.port {
            config.server.port = port;
        }
        let duration = |d: &Spanned<crate::duration::DurationText>, field: &str| {
            d.value.get().filter(|t| !t.is_zero()).ok_or_else(|| {
                err(loc(d), format!("`server.{field}` is not a duration"))
                    .with_hint(crate::duration::HINT)
            })
        };
        if let Some(t) = &sv.query_timeout {
            config.server.query_timeout = duration(t, "query_timeout")?;
        }
        if let Some(t) = &sv.catalog_refresh {
            config.server.catalog_refresh = duration(t, "catalog_refresh")?;
        }
        if let Some(t) = &sv.query_idle {
            config.server.query_idle = duration(t, "query_idle")?;
        }
        if let Some(t) = &sv.query_queue_wait {
            config.server.query_queue_wait = duration(t, "query_queue_wait")?;
        }
        if let Some(n) = sv.query_slots {
            if n.value == 0 {
                return Err(err(
                    loc(&n),
                    "`server.query_slots` must be at least 1".into(),
                ));
            }
            config.server.query_slots = Some(n.value);
        }
        if let Some(size) = &sv.max_answer_bytes {
            let bytes = match &size.value {
                SizeText::Bytes(n) => Some(*n),
                SizeText::Text(t) => parse_bytes(t),
            };
            // Below 1 KiB not even the names of a few columns fit.
            config.server.max_answer_bytes = bytes.filter(|b| *b >= 1024).ok_or_else(|| {
                err(
                    loc(size),
                    "`server.max_answer_bytes` is not a size of at least 1KiB".into(),
                )
                .with_hint("write a size such as 64MiB, 512KiB or 1GB")
            })?;
        }
        if let Some(n) = sv.max_rows {
            if n.value == 0 {
                return Err(err(loc(&n), "`server.max_rows` must be at least 1".into()));
            }
            config.server.max_rows = n.value;
        }
        for (t, field, value) in [
            (
                &sv.header_timeout,
                "header_timeout",
                &mut config.server.header_timeout,
            ),
            (
                &sv.body_timeout,
                "body_timeout",
                &mut config.server.body_timeout,
            ),
            (
                &sv.idle_timeout,
                "idle_timeout",
                &mut config.server.idle_timeout,
            ),
        ] {
            if let Some(t) = t {
                *value = duration(t, field)?;
            }
        }
        for (n, field, value) in [
            (
                &sv.max_connections,
                "max_connections",
                &mut config.server.max_connections,
            ),
            (
                &sv.max_connections_per_address,
                "max_connections_per_address",
                &mut config.server.max_connections_per_address,
            ),
        ] {
            if let Some(n) = n {
                if n.value == 0 {
                    return Err(err(loc(n), format!("`server.{field}` must be at least 1")));
                }
                *value = n.value;
            }
        }
        if config.server.max_connections_per_address > config.server.max_connections {
            let at = sv
                .max_connections_per_address
                .as_ref()
                .or(sv.max_connections.as_ref());
            return Err(err(
                at.map(loc).unwrap_or_default(),
                format!(
                    "`server.max_connections_per_address` ({}) is above `server.max_connections` ({})",
                    config.server.max_connections_per_address, config.server.max_connections
                ),
            )
            .with_hint("one address's share must fit in the whole"));
        }
        if let Some(tls) = sv.tls {
            let path = |p: &Spanned<String>| {
                let path = root.join(&p.value);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(err(loc(p), format!("no file `{}`", p.value))
                        .with_hint("give PEM files, relative to the project folder"))
                }
            };
            config.server.tls = Some(TlsConfig {
                cert: path(&tls.value.cert)?,
                key: path(&tls.value.key)?,
            });
        }
        config.security = raw.security;
        config.alerts = raw.alerts.validate(file)?;
        for (name, slots) in raw.pools {
            if slots.value == 0 {
                return Err(err(
                    loc(&slots),
                    format!("pool `{name}` has 0 slots: give it at least 1"),
                ));
            }
            config.pools.insert(name, slots.value);
        }
        Ok(config)
    }
}

/// `[a-z_][a-z0-9_]*`: the names socle creates schemas and tables with.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn default_lake_url(root: &Path) -> Url {
    Url::from_directory_path(root.join(".socle").join("lake")).expect("project root is absolute")
}

fn default_metadata_url(root: &Path) -> String {
    format!(
        "sqlite://{}",
        root.join(".socle").join("socle.db").display()
    )
}

fn parse_lake_url(s: &str, root: &Path) -> Result<Url, String> {
    if s.contains("://") {
        let url = Url::parse(s).map_err(|e| format!("invalid lake URL `{s}`: {e}"))?;
        match url.scheme() {
            "file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" => {}
            other => return Err(format!("unsupported lake scheme `{other}://`")),
        }
        if url.scheme() != "file" && url.host_str().unwrap_or("").is_empty() {
            return Err(format!("lake URL `{s}` has no bucket or container"));
        }
        Ok(ensure_trailing_slash(url))
    } else {
        let path = root.join(s);
        Url::from_directory_path(&path).map_err(|_| format!("invalid lake path `{s}`"))
    }
}

fn ensure_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    url
}

fn normalize_metadata_url(s: &str, root: &Path) -> Result<String, String> {
    if let Some(path) = s.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err("sqlite URL has no file path".into());
        }
        let abs = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            root.join(path)
        };
        Ok(format!("sqlite://{}", abs.display()))
    } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_string())
    } else {
        Err(format!("unsupported metadata database URL `{s}`"))
    }
}

/// Parses `512MiB`, `4GiB`, `2GB`, `1000000` into bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    (num >= 0.0).then_some((num * mult) as u64)
}

#[cfg(test)]
#[path = "config_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(text, Path::new("socle.yml"), Path::new("/p"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("name: shop\n").unwrap();
        assert_eq!(c.lake.url.as_str(), "file:///p/.socle/lake/");
        assert_eq!(c.metadata.url.raw, "sqlite:///p/.socle/socle.db");
        assert_eq!(c.warehouse.default_schema, "main");
        assert_eq!(c.server.port, 8080);
    }

    #[test]
    fn misspelled_key_is_located_with_suggestion() {
        let e = parse("name: shop\nwarehouse:\n  defualt_schema: main\n").unwrap_err();
        assert_eq!(e.location.line, 3, "{e}");
        assert_eq!(
            e.hint.as_deref(),
            Some("did you mean `default_schema`?"),
            "{e}"
        );
        let shown = e.to_string();
        assert!(shown.starts_with("socle.yml:3:"), "{shown}");
    }

    #[test]
    fn misspelled_top_level_key() {
        let e = parse("name: shop\nlaek:\n  url: /tmp/x\n").unwrap_err();
        assert_eq!(e.location.line, 2, "{e}");
        assert_eq!(e.hint.as_deref(), Some("did you mean `lake`?"));
    }

    #[test]
    fn unknown_key_in_minimal_sections_is_rejected() {
        let e = parse("name: shop\nsecurity:\n  tls: true\n").unwrap_err();
        assert_eq!(e.location.line, 3, "{e}");
    }

    #[test]
    fn bad_dialect_suggests() {
        let e = parse("name: shop\nwarehouse:\n  dialect: bigqeury\n").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `bigquery`?"), "{e}");
    }

    #[test]
    fn inline_credentials_are_refused() {
        let e = parse(
            "name: shop\nlake:\n  url: s3://b/lake\n  options:\n    secret_access_key: abc123\n",
        )
        .unwrap_err();
        assert_eq!(e.location.line, 5);
        assert!(e.message.contains("must not be written inline"), "{e}");
        let ok = parse(
            "name: shop\nlake:\n  url: s3://b/lake\n  options:\n    secret_access_key: \"${env:AWS_SECRET_ACCESS_KEY}\"\n    endpoint: http://127.0.0.1:9000\n",
        )
        .unwrap();
        assert_eq!(ok.lake.url.as_str(), "s3://b/lake/");
        assert_eq!(ok.lake.options.len(), 2);
    }

    #[test]
    fn unknown_lake_option_suggests() {
        let e =
            parse("name: shop\nlake:\n  url: s3://b/x\n  options:\n    regoin: eu\n").unwrap_err();
        assert_eq!(e.location.line, 5);
        assert_eq!(e.hint.as_deref(), Some("did you mean `region`?"));
    }

    #[test]
    fn relative_paths_resolve_against_root() {
        let c =
            parse("name: shop\nlake:\n  url: data/lake\nmetadata:\n  url: sqlite://meta/x.db\n")
                .unwrap();
        assert_eq!(c.lake.url.as_str(), "file:///p/data/lake/");
        assert_eq!(c.metadata.url.raw, "sqlite:///p/meta/x.db");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4GiB"), Some(4 << 30));
        assert_eq!(parse_bytes("512 MB"), Some(512_000_000));
        assert_eq!(parse_bytes("lots"), None);
        let e = parse("name: shop\nwarehouse:\n  memory_limit: lots\n").unwrap_err();
        assert_eq!(e.location.line, 3);
    }

    #[test]
    fn wrong_type_is_located() {
        let e = parse("name: shop\nserver:\n  port: eighty\n").unwrap_err();
        assert_eq!(e.location.line, 3, "{e}");
    }

    #[test]
    fn server_settings() {
        let c = parse("name: shop\nserver:\n  bind: 0.0.0.0\n  port: 9000\n  query_timeout: 2m\n  max_rows: 500\n  catalog_refresh: 10s\n  query_idle: 90s\n  query_queue_wait: 250ms\n  query_slots: 3\n  max_answer_bytes: 8MiB\n").unwrap();
        assert_eq!(c.server.query_queue_wait.as_millis(), 250);
        assert_eq!(c.server.query_slots, Some(3));
        assert_eq!(c.server.max_answer_bytes, 8 << 20);
        let small = parse("name: shop\nserver:\n  max_answer_bytes: 2048\n").unwrap();
        assert_eq!(small.server.max_answer_bytes, 2048);
        assert_eq!(small.server.query_queue_wait.as_millis(), 500);
        assert_eq!(c.server.bind.to_string(), "0.0.0.0");
        assert_eq!(c.server.port, 9000);
        assert_eq!(c.server.query_timeout.as_secs(), 120);
        assert_eq!(c.server.max_rows, 500);
        assert_eq!(c.server.catalog_refresh.as_secs(), 10);
        assert_eq!(c.server.query_idle.as_secs(), 90);
        let e = parse("name: shop\nserver:\n  bind: localhost\n").unwrap_err();
        assert_eq!(e.location.line, 3, "{e}");
        assert!(e.to_string().contains("not an IP address"), "{e}");
        let e = parse("name: shop\nserver:\n  query_timeout: soon\n").unwrap_err();
        assert_eq!(e.location.line, 3, "{e}");
        let e = parse("name: shop\nserver:\n  max_rows: 0\n").unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let c = parse("name: shop\nserver:\n  max_connections: 100\n  max_connections_per_address: 10\n  header_timeout: 2s\n  body_timeout: 5s\n  idle_timeout: 3m\n").unwrap();
        assert_eq!(
            (
                c.server.max_connections,
                c.server.max_connections_per_address
            ),
            (100, 10)
        );
        assert_eq!(c.server.header_timeout.as_secs(), 2);
        assert_eq!(c.server.body_timeout.as_secs(), 5);
        assert_eq!(c.server.idle_timeout.as_secs(), 180);
        let e = parse("name: shop\nserver:\n  idle_timeout: 0s\n").unwrap_err();
        assert!(e.to_string().contains("server.idle_timeout"), "{e}");
        let e = parse("name: shop\nserver:\n  max_connections: 0\n").unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let e = parse("name: shop\nserver:\n  max_connections: 10\n").unwrap_err();
        assert_eq!(e.location.line, 3, "{e}");
        assert!(e.to_string().contains("is above"), "{e}");
        let e = parse("name: shop\nserver:\n  query_slots: 0\n").unwrap_err();
        assert!(e.to_string().contains("query_slots"), "{e}");
        let e = parse("name: shop\nserver:\n  max_answer_bytes: lots\n").unwrap_err();
        assert!(e.to_string().contains("max_answer_bytes"), "{e}");
        let e = parse("name: shop\nserver:\n  query_queue_wait: 0s\n").unwrap_err();
        assert!(e.to_string().contains("query_queue_wait"), "{e}");
        let e = parse("name: shop\nserver:\n  tls:\n    cert: nope.pem\n    key: nope.key\n")
            .unwrap_err();
        assert_eq!(e.location.line, 4, "{e}");
        assert!(e.to_string().contains("no file `nope.pem`"), "{e}");
    }
}
