//! `alerts:` in `socle.yml`: named channels (Slack incoming webhook, generic JSON webhook,
//! email over SMTP) and which pipeline events go to which channels by default.
//!
//! ```yaml
//! alerts:
//!   channels:
//!     team: { type: slack, url: "${env:SLACK_WEBHOOK_URL}" }
//!     ops:
//!       type: webhook
//!       url: https://ops.example.com/hooks/socle
//!       headers: { Authorization: "Bearer ${env:OPS_TOKEN}" }
//!     mail:
//!       type: email
//!       host: smtp.example.com
//!       port: 587
//!       tls: starttls
//!       username: "${env:SMTP_USER}"
//!       password: "${env:SMTP_PASSWORD}"
//!       from: socle@example.com
//!       to: [data-team@example.com]
//!   on: [failure, sla_miss]        # default events, for pipelines that do not say
//!   to: [team]                     # default channels
//!   logs_url: "https://socle.example.com/runs/{run_id}"
//! ```
//!
//! Secret values must be references (`${env:..}` / `${secret:..}`): URLs of webhooks carry
//! their token, so `url` of `slack` and `webhook` channels and `password` must be.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{ConfigError, Location};
use crate::secrets;

/// Events a pipeline can alert on.
pub const EVENTS: [&str; 4] = ["failure", "retry", "success", "sla_miss"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (port 587). The default.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (a relay on localhost).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Slack {
        url: String,
    },
    Webhook {
        url: String,
        headers: BTreeMap<String, String>,
    },
    Email {
        host: String,
        port: u16,
        tls: TlsMode,
        username: Option<String>,
        password: Option<String>,
        from: String,
        to: Vec<String>,
        /// A PEM file of an extra CA to trust (a private mail relay).
        ca_file: Option<String>,
    },
}

/// Validated alert settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertsConfig {
    pub channels: BTreeMap<String, Channel>,
    pub on: Vec<String>,
    pub to: Vec<String>,
    /// `{run_id}`, `{pipeline}` and `{task}` are replaced.
    pub logs_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerts {
    #[serde(default)]
    channels: BTreeMap<String, Spanned<RawChannel>>,
    on: Option<Vec<Spanned<String>>>,
    to: Option<Vec<Spanned<String>>>,
    logs_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
#[serde(tag = "type")]
enum RawChannel {
    Slack {
        url: String,
    },
    Webhook {
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    Email {
        host: String,
        port: Option<u16>,
        tls: Option<String>,
        username: Option<String>,
        password: Option<String>,
        from: String,
        to: Vec<String>,
        ca_file: Option<String>,
    },
}

fn loc<T>(s: &Spanned<T>) -> Location {
    Location::from_saphyr(s.referenced)
}

/// Checks event names (`on:` lists), reporting the first unknown one.
pub fn check_events(file: &Path, events: &[Spanned<String>]) -> Result<Vec<String>, ConfigError> {
    events
        .iter()
        .map(|e| {
            if EVENTS.contains(&e.value.as_str()) {
                Ok(e.value.clone())
            } else {
                let mut err =
                    ConfigError::new(file, loc(e), format!("unknown alert event `{}`", e.value));
                err.hint = Some(match crate::diag::did_you_mean(&e.value, EVENTS) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("events: {}", EVENTS.join(", ")),
                });
                Err(err)
            }
        })
        .collect()
}

impl RawAlerts {
    pub(crate) fn validate(self, file: &Path) -> Result<AlertsConfig, ConfigError> {
        let mut channels = BTreeMap::new();
        for (name, raw) in self.channels {
            let at = loc(&raw);
            let bad =
                |msg: String| ConfigError::new(file, at, format!("alerts channel `{name}`: {msg}"));
            let must_be_reference = |what: &str, value: &str| -> Result<(), ConfigError> {
                secrets::check_syntax(value).map_err(|e| bad(e.to_string()))?;
                if !secrets::is_reference(value) {
                    return Err(bad(format!(
                        "`{what}` holds a credential: write it as ${{env:NAME}} or ${{secret:NAME}}"
                    )));
                }
                Ok(())
            };
            let channel = match raw.value {
                RawChannel::Slack { url } => {
                    must_be_reference("url", &url)?;
                    Channel::Slack { url }
                }
                RawChannel::Webhook { url, headers } => {
                    secrets::check_syntax(&url).map_err(|e| bad(e.to_string()))?;
                    for v in headers.values() {
                        secrets::check_syntax(v).map_err(|e| bad(e.to_string()))?;
                    }
                    Channel::Webhook { url, headers }
                }
                RawChannel::Email {
                    host,
                    port,
                    tls,
                    username,
                    password,
                    from,
                    to,
                    ca_file,
                } => {
                    let tls = match tls.as_deref() {
                        None | Some("starttls") => TlsMode::StartTls,
                        Some("tls") => TlsMode::Tls,
                        Some("none") => TlsMode::None,
                        Some(other) => {
                            return Err(bad(format!(
                                "tls `{other}` is not one of starttls, tls, none"
                            )));
                        }
                    };
                    if let Some(p) = &password {
                        must_be_reference("password", p)?;
                    }
                    if to.is_empty() {
                        return Err(bad("`to` lists no address".into()));
                    }
                    Channel::Email {
                        port: port.unwrap_or(match tls {
                            TlsMode::StartTls => 587,
                            TlsMode::Tls => 465,
                            TlsMode::None => 25,
                        }),
                        host,
                        tls,
                        username,
                        password,
                        from,
                        to,
                        ca_file,
                    }
                }
            };
            channels.insert(name, channel);
        }
        let on = match &self.on {
            Some(events) => check_events(file, events)?,
            None => vec!["failure".into(), "sla_miss".into()],
        };
        let to = self.to.unwrap_or_default();
        for t in &to {
            check_channel(file, t, &channels)?;
        }
        Ok(AlertsConfig {
            channels,
            on,
            to: to.into_iter().map(|t| t.value).collect(),
            logs_url: self.logs_url,
        })
    }
}

/// Checks that `name` is a configured channel.
pub fn check_channel(
    file: &Path,
    name: &Spanned<String>,
    channels: &BTreeMap<String, Channel>,
) -> Result<(), ConfigError> {
    if channels.contains_key(&name.value) {
        return Ok(());
    }
    Err(unknown_channel(file, loc(name), &name.value, channels))
}

/// The error for a channel name (written at `at` in `file`) that socle.yml does not define.
pub fn unknown_channel(
    file: &Path,
    at: Location,
    name: &str,
    channels: &BTreeMap<String, Channel>,
) -> ConfigError {
    let mut err = ConfigError::new(file, at, format!("no alerts channel `{name}` in socle.yml"));
    err.hint = Some(
        match crate::diag::did_you_mean(name, channels.keys().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None if channels.is_empty() => {
                "define channels under `alerts: channels:` in socle.yml".into()
            }
            None => format!(
                "channels: {}",
                channels.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        },
    );
    err
}
