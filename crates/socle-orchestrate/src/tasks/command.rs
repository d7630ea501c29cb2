//! `command`: any program, with templated arguments, environment (secrets resolved from
//! `${env:..}` / `${secret:..}` references), working directory and captured output.
//!
//! ```yaml
//! load:
//!   kind: command
//!   command: [python3, load.py, --date, "{{ ds }}"]   # or one string, run by `sh -c`
//!   env: { API_TOKEN: "${env:SHOP_TOKEN}" }
//!   cwd: scripts
//! ```
//!
//! The program runs in its own process group; a timeout or a cancelled run kills the
//! whole group. It also sees `SOCLE_RUN_ID`, `SOCLE_DS`, `SOCLE_DATA_INTERVAL_START`,
//! `SOCLE_DATA_INTERVAL_END`, `SOCLE_PROJECT` (the project folder) and `SOCLE_BIN` (the
//! running socle binary, to call `"$SOCLE_BIN" sql ...` from a script).

use std::process::Stdio;

use std::collections::BTreeMap;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::process::GroupGuard;
use super::{Fields, Kind, TaskContext, TaskFailure};
use crate::pipeline::{StringOrList, TaskSpec};

/// A `command` task's own fields.
#[derive(Debug, Clone)]
pub struct Command {
    pub command: Option<StringOrList>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
}

impl Kind for Command {
    const NAME: &'static str = "command";
    const FIELDS: &'static [&'static str] = &["command", "env", "cwd"];

    fn parse(f: &mut Fields) -> Self {
        Self {
            command: f.value("command"),
            env: f.value("env").unwrap_or_default(),
            cwd: f.value("cwd"),
        }
    }

    fn templates(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.command {
            out.extend(c.to_vec());
        }
        out.extend(self.env.values().cloned());
        out.extend(self.cwd.clone());
        out
    }

    fn check(&self) -> Result<(), String> {
        match &self.command {
            None => Err(
                "a `command` task needs `command` (a string, or a list: program and arguments)"
                    .into(),
            ),
            Some(StringOrList::Many(v)) if v.is_empty() => Err("`command` is an empty list".into()),
            Some(StringOrList::One(s)) if s.trim().is_empty() => Err("`command` is empty".into()),
            _ => {
                for value in self.env.values() {
                    socle_core::secrets::check_syntax(value).map_err(|e| format!("env: {e}"))?;
                }
                Ok(())
            }
        }
    }

    async fn run(&self, _spec: &TaskSpec, ctx: &TaskContext) -> Result<String, TaskFailure> {
        let argv: Vec<String> = match self.command.as_ref().expect("checked") {
            StringOrList::One(s) => vec!["sh".into(), "-c".into(), ctx.render(s)?],
            StringOrList::Many(v) => v.iter().map(|a| ctx.render(a)).collect::<Result<_, _>>()?,
        };
        let cwd = match &self.cwd {
            Some(dir) => ctx.project.root.join(ctx.render(dir)?),
            None => ctx.project.root.clone(),
        };
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .env("SOCLE_RUN_ID", &ctx.run_id)
            .env("SOCLE_PROJECT", &ctx.project.root)
            .env("SOCLE_DS", ctx.dates.ds())
            .env(
                "SOCLE_DATA_INTERVAL_START",
                ctx.dates.local_start().to_rfc3339(),
            )
            .env(
                "SOCLE_DATA_INTERVAL_END",
                ctx.dates.local_end().to_rfc3339(),
            );
        if let Ok(me) = std::env::current_exe() {
            cmd.env("SOCLE_BIN", me);
        }
        let secrets = socle_core::secrets::store::StoreResolver::for_project(&ctx.project.root);
        for (key, value) in &self.env {
            let value = ctx.render(value)?;
            let value = socle_core::secrets::resolve(&value, &secrets)
                .map_err(|e| TaskFailure::new(format!("env {key}: {e}")))?;
            cmd.env(key, value);
        }
        ctx.log
            .line(&format!("$ {}  (in {})", shell_words(&argv), cwd.display()));
        let mut child = cmd
            .spawn()
            .map_err(|e| TaskFailure::new(format!("cannot start `{}`: {e}", argv[0])))?;
        let mut guard = GroupGuard::recorded(&child, ctx).await;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let log_out = ctx.log.clone();
        let log_err = ctx.log.clone();
        let read_out = async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log_out.line(&line);
            }
        };
        let read_err = async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log_err.line(&line);
            }
        };
        let (status, _, _) = tokio::join!(child.wait(), read_out, read_err);
        let status =
            status.map_err(|e| TaskFailure::new(format!("waiting for the program: {e}")))?;
        guard.pgid = None;
        if status.success() {
            return Ok(format!("`{}` exited with 0", argv[0]));
        }
        Err(TaskFailure {
            exit_code: status.code().map(i64::from),
            ..TaskFailure::new(format!("`{}` {}", argv[0], super::process::ended(&status)))
        })
    }
}

/// The argument list as a shell would show it (for the log).
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
