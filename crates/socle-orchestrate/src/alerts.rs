//! Alerts: pipeline events (a task failing for good, a retry, a run succeeding, an SLA
//! missed) and `notify` tasks, sent to the channels of `socle.yml` (`alerts:`): a Slack
//! incoming webhook, a generic JSON webhook, or email over SMTP (STARTTLS or TLS, with
//! authentication).
//!
//! Every message names the pipeline, the task, the logical date, the attempt, carries an
//! excerpt of the error and a link to the logs (`alerts.logs_url`, or the `socle logs`
//! command to type). A channel that cannot be reached is logged; it never fails a run.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use socle_core::alerts::{AlertsConfig, Channel, TlsMode};
use socle_core::secrets::resolve;
use socle_core::secrets::store::StoreResolver;

use crate::pipeline::Pipeline;

/// One thing to tell people.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Alert {
    /// `failure`, `retry`, `success`, `sla_miss` or `notify`.
    pub event: String,
    pub pipeline: String,
    pub task: Option<String>,
    pub run_id: String,
    /// The run's `ds`.
    pub logical_date: String,
    pub attempt: Option<u32>,
    /// The error excerpt, or the text of a `notify` task.
    pub message: String,
    /// Where to read the logs.
    pub logs: String,
}

impl Alert {
    pub fn subject(&self) -> String {
        let what = match (self.event.as_str(), &self.task) {
            ("failure", Some(t)) => format!("task {t} failed"),
            ("retry", Some(t)) => format!(
                "task {t} failed on try {}, retrying",
                self.attempt.unwrap_or(1)
            ),
            ("success", _) => "run succeeded".to_string(),
            ("sla_miss", _) => "run missed its SLA".to_string(),
            ("notify", _) => "notification".to_string(),
            (other, _) => other.to_string(),
        };
        format!("[socle] {}: {what} ({})", self.pipeline, self.logical_date)
    }

    pub fn text(&self) -> String {
        let mut out = self.subject();
        out.push_str(&format!("\nrun: {}", self.run_id));
        if let Some(a) = self.attempt {
            out.push_str(&format!("  attempt: {a}"));
        }
        if !self.message.is_empty() {
            out.push_str(&format!("\n\n{}", self.message.trim_end()));
        }
        out.push_str(&format!("\n\nlogs: {}", self.logs));
        out
    }
}

/// Sends alerts to the configured channels.
pub struct Alerter {
    config: AlertsConfig,
    http: reqwest::Client,
    root: std::path::PathBuf,
}

impl Alerter {
    pub fn new(config: AlertsConfig, root: &std::path::Path) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("socle/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client");
        Arc::new(Self {
            config,
            http,
            root: root.to_path_buf(),
        })
    }

    /// The channels of `alerts.to` in socle.yml.
    pub fn default_channels(&self) -> Vec<String> {
        self.config.to.clone()
    }

    /// Where to read the logs of a run (or one task of it).
    pub fn logs_link(&self, pipeline: &str, run_id: &str, task: Option<&str>) -> String {
        match &self.config.logs_url {
            Some(url) => url
                .replace("{run_id}", run_id)
                .replace("{pipeline}", pipeline)
                .replace("{task}", task.unwrap_or("")),
            None => format!(
                "socle --project {} logs {run_id}{}",
                self.root.display(),
                task.map(|t| format!(" {t}")).unwrap_or_default()
            ),
        }
    }

    /// Sends `alert` where the pipeline (or the defaults of socle.yml) route its event.
    pub async fn emit(&self, pipeline: &Pipeline, alert: Alert) {
        let (on, to) = match &pipeline.alerts {
            Some(a) => (
                a.on.clone().unwrap_or_else(|| self.config.on.clone()),
                a.to.clone().unwrap_or_else(|| self.config.to.clone()),
            ),
            None => (self.config.on.clone(), self.config.to.clone()),
        };
        if !on.contains(&alert.event) || to.is_empty() {
            return;
        }
        for (channel, result) in self.send(&to, &alert).await {
            if let Err(e) = result {
                tracing::warn!(channel, event = alert.event, "alert not delivered: {e}");
            }
        }
    }

    /// Sends to the named channels; one result per channel.
    pub async fn send(
        &self,
        channels: &[String],
        alert: &Alert,
    ) -> Vec<(String, Result<(), String>)> {
        let mut out = Vec::new();
        for name in channels {
            let result = match self.config.channels.get(name) {
                None => Err(format!("no alerts channel `{name}` in socle.yml")),
                Some(channel) => self.send_one(channel, alert).await,
            };
            out.push((name.clone(), result));
        }
        out
    }

    async fn send_one(&self, channel: &Channel, alert: &Alert) -> Result<(), String> {
        let store = StoreResolver::for_project(&self.root);
        let secret = |v: &str| resolve(v, &store).map_err(|e| e.to_string());
        match channel {
            Channel::Slack { url } => {
                let body = serde_json::json!({ "text": alert.text() });
                self.post(&secret(url)?, &body, &Default::default()).await
            }
            Channel::Webhook { url, headers } => {
                let mut resolved = std::collections::BTreeMap::new();
                for (k, v) in headers {
                    resolved.insert(k.clone(), secret(v)?);
                }
                let body = serde_json::to_value(alert).map_err(|e| e.to_string())?;
                self.post(&secret(url)?, &body, &resolved).await
            }
            Channel::Email {
                host,
                port,
                tls,
                username,
                password,
                from,
                to,
                ca_file,
            } => {
                let mut message = Message::builder()
                    .from(
                        from.parse::<Mailbox>()
                            .map_err(|e| format!("from `{from}`: {e}"))?,
                    )
                    .subject(alert.subject());
                for t in to {
                    message =
                        message.to(t.parse::<Mailbox>().map_err(|e| format!("to `{t}`: {e}"))?);
                }
                let message = message
                    .body(alert.text())
                    .map_err(|e| format!("cannot build the email: {e}"))?;
                let mut params = TlsParameters::builder(host.clone());
                if let Some(file) = ca_file {
                    let pem = std::fs::read(self.root.join(file))
                        .map_err(|e| format!("ca_file {file}: {e}"))?;
                    params = params.add_root_certificate(
                        Certificate::from_pem(&pem).map_err(|e| format!("ca_file {file}: {e}"))?,
                    );
                }
                let params = params.build().map_err(|e| format!("TLS: {e}"))?;
                let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(*port)
                    .timeout(Some(Duration::from_secs(10)))
                    .tls(match tls {
                        TlsMode::StartTls => Tls::Required(params),
                        TlsMode::Tls => Tls::Wrapper(params),
                        TlsMode::None => Tls::None,
                    });
                if let (Some(user), Some(pass)) = (username, password) {
                    transport =
                        transport.credentials(Credentials::new(secret(user)?, secret(pass)?));
                }
                transport
                    .build()
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("SMTP {host}:{port}: {e}"))
            }
        }
    }

    async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
            let mut request = self.http.post(url).json(body);
            for (k, v) in headers {
                request = request.header(k, v);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    return Err(format!(
                        "HTTP {status}: {}",
                        text.chars().take(200).collect::<String>()
                    ));
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                // The URL may hold a token: say what failed, not where.
                Err(e) => last = e.without_url().to_string(),
            }
        }
        Err(last)
    }
}
