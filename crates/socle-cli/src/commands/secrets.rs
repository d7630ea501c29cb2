//! `socle secrets`: the project's encrypted secrets store (`${secret:NAME}` references).
//! Values go in and are never printed.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use socle_core::secrets::is_valid_name;
use socle_core::secrets::store::{SecretStore, SecretsKey, StoreError, key_file_path, store_path};

use crate::context;

/// Manage the encrypted secrets that `${secret:NAME}` references read
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  socle secrets set warehouse_password          # prompts, without echo
  printf %s \"$TOKEN\" | socle secrets set api_token
  socle secrets list
  socle secrets rm api_token
  socle secrets check

Values are encrypted in .socle/secrets.json (or SOCLE_SECRETS_FILE) with a key from
SOCLE_SECRETS_KEY or the key file ~/.config/socle/secrets.key (SOCLE_SECRETS_KEY_FILE).")]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Set a secret (from stdin, a prompt, --from-file or --value); creates the key file
    /// on first use when there is no key
    #[command(after_help = "Examples:
  socle secrets set warehouse_password                  # prompts without echo on a terminal
  printf %s \"$TOKEN\" | socle secrets set api_token      # one trailing newline is dropped
  socle secrets set gcp_key --from-file key.json        # the file's exact contents
  socle secrets set smtp_password --value 'hunter2'     # visible in shell history: avoid")]
    Set {
        /// Secret name: ASCII letters, digits, `_`, `-` and `.`
        name: String,
        /// The value (visible in shell history and process lists: prefer stdin)
        #[arg(long, conflicts_with = "from_file")]
        value: Option<String>,
        /// Read the value from this file, exactly as it is
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
    },
    /// List secret names and when they were last set (never values; needs no key)
    #[command(after_help = "Examples:
  socle secrets list
  socle secrets list --format json")]
    List {
        /// Output format
        #[arg(long, value_enum, default_value_t = super::table::OutFormat::Text)]
        format: super::table::OutFormat,
    },
    /// Remove a secret
    #[command(after_help = "Examples:\n  socle secrets rm api_token")]
    Rm {
        /// Secret name
        name: String,
    },
    /// Check that the key opens every secret (values are never printed)
    #[command(after_help = "Examples:
  socle secrets check
  SOCLE_SECRETS_KEY_FILE=/etc/socle/secrets.key socle secrets check")]
    Check,
}

pub fn run(project: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let project = context::project(project)?;
    let path = store_path(&project.root);
    let shown = project.display_path(&path).into_owned();
    match args.action {
        Action::Set {
            name,
            value,
            from_file,
        } => {
            if !is_valid_name(&name) {
                return Err(StoreError::InvalidName(name).into());
            }
            let key = SecretsKey::from_env()?;
            let store = SecretStore::open_with_key(&path, key)?;
            if store.key().is_none() && store.exists() {
                return Err(StoreError::NoKey {
                    key_file: key_file_path(),
                    store_exists: true,
                }
                .into());
            }
            let value = read_value(&name, value, from_file)?;
            let mut store = match store.key() {
                Some(_) => store,
                None => {
                    let Some(key_file) = key_file_path() else {
                        bail!(
                            "no secrets key and no place for a key file ($HOME is not set): set SOCLE_SECRETS_KEY or SOCLE_SECRETS_KEY_FILE"
                        );
                    };
                    let key = SecretsKey::create_key_file(&key_file)?;
                    eprintln!(
                        "Created the secrets key file {} (mode 0600).\nBack it up somewhere safe: without it the secrets in {shown} cannot be read.\nElsewhere (CI, servers), give the same key as SOCLE_SECRETS_KEY=base64:<its contents>.",
                        key_file.display()
                    );
                    SecretStore::open_with_key(&path, Some(key))?
                }
            };
            store.set(&name, &value)?;
            println!("secret `{name}` set in {shown}");
        }
        Action::List { format } => {
            let store = SecretStore::open_with_key(&path, None)?;
            let list = store.list();
            if format == super::table::OutFormat::Json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|(n, t)| serde_json::json!({ "name": n, "updated_at": t }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if list.is_empty() {
                println!("no secrets yet (add one with `socle secrets set NAME`)");
            } else {
                println!("{:<40} updated_at", "name");
                for (n, t) in &list {
                    println!("{n:<40} {t}");
                }
            }
        }
        Action::Rm { name } => {
            let key = SecretsKey::from_env()?;
            let mut store = SecretStore::open_with_key(&path, key)?;
            if !store.remove(&name)? {
                bail!("secret `{name}` is not set in {shown}");
            }
            println!("secret `{name}` removed from {shown}");
        }
        Action::Check => {
            let store = SecretStore::open(&path)?;
            if !store.exists() {
                println!("no secrets yet ({shown} does not exist)");
                return Ok(ExitCode::SUCCESS);
            }
            let n = store.check()?;
            let origin = store
                .key()
                .map(|k| k.origin().to_string())
                .unwrap_or_default();
            println!("ok: the key ({origin}) opens all {n} secrets in {shown}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The value from `--value`, `--from-file`, a prompt (stdin is a terminal) or stdin.
fn read_value(name: &str, value: Option<String>, from_file: Option<PathBuf>) -> Result<String> {
    let value = if let Some(v) = value {
        v
    } else if let Some(f) = from_file {
        let bytes = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", f.display()))?
    } else if std::io::stdin().is_terminal() {
        prompt(&format!("Value for secret `{name}` (input hidden): "))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the value from stdin")?;
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        s
    };
    if value.is_empty() {
        bail!("the value of `{name}` is empty (to delete a secret: socle secrets rm {name})");
    }
    Ok(value)
}

/// Reads a line from the terminal without showing it (each character is drawn as a blank).
fn prompt(text: &str) -> Result<String> {
    use rustyline::config::Configurer as _;
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::Editor::<Masked, rustyline::history::DefaultHistory>::new()?;
    editor.set_helper(Some(Masked));
    editor.set_color_mode(rustyline::ColorMode::Forced);
    editor.set_auto_add_history(false);
    let guard = editor.set_cursor_visibility(false)?;
    let line = editor.readline(text);
    drop(guard);
    match line {
        Ok(l) => Ok(l),
        Err(ReadlineError::Interrupted | ReadlineError::Eof) => bail!("cancelled"),
        Err(e) => Err(e.into()),
    }
}

/// Draws typed characters as blanks.
struct Masked;

impl rustyline::highlight::Highlighter for Masked {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> std::borrow::Cow<'l, str> {
        " ".repeat(line.chars().count()).into()
    }
    fn highlight_char(
        &self,
        _line: &str,
        _pos: usize,
        kind: rustyline::highlight::CmdKind,
    ) -> bool {
        kind != rustyline::highlight::CmdKind::MoveCursor
    }
}
impl rustyline::completion::Completer for Masked {
    type Candidate = String;
}
impl rustyline::hint::Hinter for Masked {
    type Hint = String;
}
impl rustyline::validate::Validator for Masked {}
impl rustyline::Helper for Masked {}
