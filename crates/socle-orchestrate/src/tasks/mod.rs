//! Task kinds: one module per kind and one line in [`registry`] to add one.
//!
//! A kind names the fields it takes (the loader rejects the others with file and line),
//! checks them when the pipeline is loaded, and runs a task given the run's context.

mod command;
mod dbt;
mod extract;
mod notify;
pub mod process;
mod sql;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::pipeline::TaskSpec;

/// Everything a kind may use while running one attempt of one task.
#[derive(Clone)]
pub struct TaskContext {
    pub project: Arc<socle_core::Project>,
    pub warehouse: crate::lazy::LazyWarehouse,
    /// The template context (`ds`, `data_interval_start`, ...; see [`crate::template`]).
    pub template: minijinja::Value,
    pub log: Log,
    pub pipeline: String,
    /// The pipeline's file (named in template errors).
    pub pipeline_file: std::path::PathBuf,
    pub alerter: Option<Arc<crate::alerts::Alerter>>,
    /// Where to record the process group of a started program (the attempt's row).
    pub meta: Option<(socle_meta::MetaDb, String, i64)>,
    pub run_id: String,
    /// The run's data interval and time zone.
    pub dates: socle_core::dates::RunDates,
    /// Run kinds that use the warehouse in a child process (see [`process`]).
    pub task_command: Option<Vec<std::ffi::OsString>>,
}

impl TaskContext {
    /// The warehouse (opened on first use).
    pub async fn warehouse(&self) -> Result<socle_warehouse::Warehouse, TaskFailure> {
        self.warehouse
            .get()
            .await
            .map_err(|e| TaskFailure::new(format!("cannot open the warehouse: {e}")))
    }

    /// Renders a field of the task with the run's template context.
    pub fn render(&self, text: &str) -> Result<String, TaskFailure> {
        crate::template::render(text, &self.template).map_err(|e| TaskFailure {
            retryable: false,
            ..TaskFailure::new(format!(
                "template error in {}: {e}",
                self.pipeline_file.display()
            ))
        })
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub struct TaskFailure {
    pub message: String,
    pub exit_code: Option<i64>,
    /// Whether another attempt could succeed (a template error will not).
    pub retryable: bool,
}

impl TaskFailure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exit_code: None,
            retryable: true,
        }
    }
}

/// The log of one attempt: what the task printed and what socle says about it. Keeps the
/// last [`Log::LIMIT`] bytes (the end of a log is where the error is).
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<LogBuf>>, Option<Sink>);

/// Where a streaming log also sends each line.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Log").field(&self.0).finish()
    }
}

#[derive(Debug, Default)]
struct LogBuf {
    text: String,
    dropped: usize,
}

impl Log {
    pub const LIMIT: usize = 1 << 20;

    /// A log that also hands every line to `sink` as it is written (a task process sends
    /// its lines to the server this way).
    pub fn streaming(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::default(), Some(Arc::new(sink)))
    }

    pub fn line(&self, text: &str) {
        let text = &socle_core::secrets::redact(text);
        if let Some(sink) = &self.1 {
            sink(text);
        }
        let mut buf = self.0.lock().expect("log lock");
        buf.text.push_str(text);
        if !text.ends_with('\n') {
            buf.text.push('\n');
        }
        if buf.text.len() > Self::LIMIT {
            let mut cut = buf.text.len() - Self::LIMIT;
            while !buf.text.is_char_boundary(cut) {
                cut += 1;
            }
            buf.dropped += cut;
            buf.text.drain(..cut);
        }
    }

    pub fn text(&self) -> String {
        let buf = self.0.lock().expect("log lock");
        if buf.dropped > 0 {
            format!("[{} earlier bytes not kept]\n{}", buf.dropped, buf.text)
        } else {
            buf.text.clone()
        }
    }

    /// The last `n` lines (for error excerpts in alerts and summaries).
    pub fn tail(&self, n: usize) -> String {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

#[async_trait]
pub trait TaskKind: Send + Sync {
    /// The `kind:` value.
    fn name(&self) -> &'static str;
    /// The kind's own fields (besides the common ones: kind, depends_on, retries, ...).
    fn fields(&self) -> &'static [&'static str];
    /// Checks a task's fields when the pipeline is loaded.
    fn check(&self, spec: &TaskSpec) -> Result<(), String>;
    /// Runs one attempt; `Ok` carries a one-line summary.
    async fn run(&self, spec: &TaskSpec, ctx: &TaskContext) -> Result<String, TaskFailure>;
    /// Whether it opens the warehouse: the daemon then runs it in a task process.
    fn uses_warehouse(&self) -> bool {
        false
    }
}

/// Every task kind. Add a kind here (and a module above).
pub fn registry() -> &'static [&'static dyn TaskKind] {
    &[
        &command::Command,
        &sql::Sql,
        &dbt::Dbt {
            which: dbt::Which::Build,
        },
        &dbt::Dbt {
            which: dbt::Which::Test,
        },
        &notify::Notify,
        &extract::Extract,
    ]
}

pub fn kind(name: &str) -> Option<&'static dyn TaskKind> {
    registry().iter().copied().find(|k| k.name() == name)
}
