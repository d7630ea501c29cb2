//! Task kinds: one module per kind (a type implementing [`Kind`]) and one line in
//! [`kinds!`] (which also declares the module) to add one. [`TaskKind`] is the enum of them, each variant holding its
//! kind's own fields.
//!
//! A kind names the fields it takes (the loader rejects the others with file and line),
//! reads them ([`Fields`]), checks them when the pipeline is loaded, and runs a task given
//! the run's context.

pub mod process;

use std::sync::{Arc, Mutex};

use crate::pipeline::TaskSpec;

/// Everything a kind may use while running one attempt of one task.
#[derive(Clone)]
pub struct TaskContext {
    pub project: Arc<socle_core::Project>,
    pub warehouse: socle_app::LazyWarehouse,
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

/// One task kind: its name, its own fields (read from the task's entry in the pipeline
/// file), and how it runs. A new kind is one module implementing this, plus one line in
/// [`kinds!`] below.
pub trait Kind: Sized + Send + Sync + std::fmt::Debug + Clone + 'static {
    /// The `kind:` value.
    const NAME: &'static str;
    /// The kind's own fields (besides the common ones: kind, depends_on, retries, ...).
    const FIELDS: &'static [&'static str];
    /// Reads the kind's fields; a field of the wrong type is an error recorded in `f`, at
    /// its place.
    fn parse(f: &mut Fields) -> Self;
    /// Checks the fields together once they are read.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    /// The fields that are templates (checked when the pipeline is loaded).
    fn templates(&self) -> Vec<String> {
        Vec::new()
    }
    /// Alert channels it names (checked against socle.yml).
    fn channels(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether it opens the warehouse: the daemon then runs it in a task process.
    fn uses_warehouse(&self) -> bool {
        false
    }
    /// Runs one attempt; `Ok` carries a one-line summary.
    fn run(
        &self,
        spec: &TaskSpec,
        ctx: &TaskContext,
    ) -> impl std::future::Future<Output = Result<String, TaskFailure>> + Send;
}

/// A task's own fields in its pipeline file, each with where it is.
pub use socle_core::fields::Fields;

/// Declares the task kinds and their modules: one line each, `module => Variant(Type);`.
macro_rules! kinds {
    ($($module:ident => $($variant:ident($ty:ident)),+;)+) => {
        $(pub mod $module;)+

        kinds!(@enum $($($variant($module::$ty)),+),+);
    };
    (@enum $($variant:ident($ty:ty)),+) => {
        /// A task's kind, holding the kind's own fields.
        #[derive(Debug, Clone)]
        pub enum TaskKind {
            $($variant($ty)),+
        }

        impl TaskKind {
            /// Every kind's name, in order.
            pub const NAMES: &'static [&'static str] = &[$(<$ty as Kind>::NAME),+];

            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$ty as Kind>::NAME),+
                }
            }

            /// The own fields of kind `name`, if there is such a kind.
            pub fn fields_of(name: &str) -> Option<&'static [&'static str]> {
                $(if name == <$ty as Kind>::NAME {
                    return Some(<$ty as Kind>::FIELDS);
                })+
                None
            }

            /// Reads kind `name` from its fields; `None` for an unknown kind.
            pub fn parse(name: &str, f: &mut Fields) -> Option<Self> {
                $(if name == <$ty as Kind>::NAME {
                    return Some(Self::$variant(<$ty as Kind>::parse(f)));
                })+
                None
            }

            pub fn check(&self) -> Result<(), String> {
                match self {
                    $(Self::$variant(k) => k.check()),+
                }
            }

            pub fn templates(&self) -> Vec<String> {
                match self {
                    $(Self::$variant(k) => k.templates()),+
                }
            }

            pub fn channels(&self) -> Vec<String> {
                match self {
                    $(Self::$variant(k) => k.channels()),+
                }
            }

            pub fn uses_warehouse(&self) -> bool {
                match self {
                    $(Self::$variant(k) => k.uses_warehouse()),+
                }
            }

            pub async fn run(&self, spec: &TaskSpec, ctx: &TaskContext) -> Result<String, TaskFailure> {
                match self {
                    $(Self::$variant(k) => k.run(spec, ctx).await),+
                }
            }
        }
    };
}

// Every task kind: `module => Variant(Type)`, the type in `tasks/<module>.rs`. A new kind
// is its module and one line here.
kinds! {
    command => Command(Command);
    sql => Sql(Sql);
    dbt => Build(Build), Test(Test);
    notify => Notify(Notify);
    extract => Extract(Extract);
    ml => Ml(Ml);
}
