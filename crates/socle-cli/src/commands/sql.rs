//! `socle sql`: run SQL one-shot, from a file or standard input, or interactively.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use socle_warehouse::{Outcome, Warehouse};

use crate::context;
use crate::output::{Format, Sink, write_stream};

/// Query the warehouse
///
/// With a QUERY, runs it and exits; with -f, runs a SQL file; with neither, reads standard
/// input, or opens an interactive shell when standard input is a terminal (\? for help).
/// Several statements separated by `;` run in order.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  socle sql \"select region, sum(amount) from orders group by 1\"
  socle sql \"select * from orders\" --format csv -o orders.csv
  socle sql \"select * from orders VERSION AS OF 3\"
  socle sql -f queries/revenue.sql --format json
  socle sql                                  # interactive shell")]
pub struct Args {
    /// SQL to run
    pub query: Option<String>,
    /// Run the SQL in this file
    #[arg(long, short = 'f', conflicts_with = "query", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write results to FILE instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Most rows shown by the table format (other formats write every row)
    #[arg(long, default_value_t = 1000)]
    pub max_rows: usize,
    /// Print how long each statement took (on stderr)
    #[arg(long)]
    pub timing: bool,
}

pub async fn run(project: Option<PathBuf>, mut args: Args) -> Result<ExitCode> {
    // Paths on the command line are relative to where the user is, not to the project.
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    args.file = args.file.map(|f| cwd.join(f));
    args.output = args.output.map(|o| cwd.join(o));
    let opened = context::open(project).await?;
    let wh = &opened.warehouse;
    let sink = match &args.output {
        Some(p) => Sink::File(p.clone()),
        None => Sink::Stdout,
    };
    let (sql, source) = match (&args.query, &args.file) {
        (Some(q), _) => (q.clone(), None),
        (None, Some(f)) => {
            let shown = f.strip_prefix(&cwd).unwrap_or(f).display().to_string();
            (
                std::fs::read_to_string(f).with_context(|| format!("cannot read {shown}"))?,
                Some(shown),
            )
        }
        (None, None) if std::io::stdin().is_terminal() => {
            let history = opened.project.state_dir().join("sql_history");
            return interactive(wh, &args, history).await;
        }
        (None, None) => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("cannot read standard input")?;
            (s, Some("<stdin>".to_string()))
        }
    };
    match run_script(wh, &sql, source.as_deref(), &args, &sink).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs every statement of `sql` in order, printing results; stops at the first error.
async fn run_script(
    wh: &Warehouse,
    sql: &str,
    source: Option<&str>,
    args: &Args,
    sink: &Sink,
) -> Result<()> {
    let with_source = |e: socle_warehouse::WarehouseError| match source {
        Some(s) => e.with_source(s),
        None => e,
    };
    let statements = wh.parse(sql).map_err(with_source)?;
    for stmt in statements {
        let started = Instant::now();
        match wh.run(stmt).await.map_err(with_source)? {
            Outcome::Query(df) => {
                let stream = df.execute_stream().await.map_err(|e| {
                    with_source(socle_warehouse::WarehouseError::from_datafusion(e, sql))
                })?;
                let written = write_stream(stream, args.format, sink, args.max_rows).await?;
                if written.truncated {
                    eprintln!(
                        "(showing the first {} rows; use --max-rows or another --format for all)",
                        written.rows
                    );
                }
            }
            Outcome::Done(message) => {
                if args.format == Format::Table {
                    println!("{message}");
                } else {
                    eprintln!("{message}");
                }
            }
        }
        if args.timing {
            eprintln!("Time: {:.3}s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

const HELP: &str = "\
Statements end with `;` and may span lines.
  \\d            list tables and views
  \\d NAME       describe a table or view (columns, types, version)
  \\dn           list schemas
  \\timing       toggle timing of statements
  \\q            quit (or Ctrl-D)
Time travel: SELECT * FROM t VERSION AS OF 3, or TIMESTAMP AS OF '2026-11-23 10:00:00'";

async fn interactive(wh: &Warehouse, args: &Args, history: PathBuf) -> Result<ExitCode> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new()?;
    let _ = editor.load_history(&history);
    println!("socle sql — \\? for help, \\q to quit");
    let mut buffer = String::new();
    let mut timing = args.timing;
    loop {
        let prompt = if buffer.is_empty() {
            "socle> "
        } else {
            "   ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let mut parts = trimmed.splitn(2, char::is_whitespace);
            let cmd = parts.next().unwrap_or_default();
            let arg = parts.next().map(str::trim).filter(|s| !s.is_empty());
            let result = match cmd {
                "\\q" | "\\quit" => break,
                "\\?" | "\\h" | "\\help" => {
                    println!("{HELP}");
                    Ok(())
                }
                "\\timing" => {
                    timing = !timing;
                    println!("Timing is {}.", if timing { "on" } else { "off" });
                    Ok(())
                }
                "\\d" => match arg {
                    None => super::table::print_list(wh, None).await,
                    Some(name) => super::table::print_describe(wh, name).await,
                },
                "\\dn" => super::table::print_schemas(wh).await,
                other => {
                    println!("unknown command {other}; \\? lists the commands");
                    Ok(())
                }
            };
            if let Err(e) = result {
                eprintln!("error: {e:#}");
            }
            continue;
        }
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(sql.trim());
        let run_args = Args {
            timing,
            query: None,
            file: None,
            format: args.format,
            output: None,
            max_rows: args.max_rows,
        };
        if let Err(e) = run_script(wh, &sql, None, &run_args, &Sink::Stdout).await {
            eprintln!("error: {e:#}");
        }
    }
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = editor.save_history(&history);
    Ok(ExitCode::SUCCESS)
}
