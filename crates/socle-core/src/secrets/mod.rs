//! Secret references: `${env:NAME}` and `${secret:NAME}`.
//!
//! Secrets never live in the project folder; configuration refers to them and they are
//! resolved at the moment of use through a [`Resolver`]. `$${` writes a literal `${`.
//! [`store`] is socle's local encrypted secrets store; [`store::StoreResolver`] resolves
//! `${secret:..}` from it. Every resolved value is remembered for the life of the
//! process and [`redact`] masks it in errors, logs and recorded messages.

pub mod store;

mod redact;

pub use redact::{redact, remember, remember_url_password};

/// Where reference values come from.
pub trait Resolver {
    /// The value of environment variable `name`.
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    /// The value of secret `name`, or an error saying why it cannot be read.
    fn secret(&self, name: &str) -> Result<Option<String>, String>;
}

/// Resolves `${env:..}` from the process environment and has no secrets store:
/// `${secret:..}` references fail with an explanation.
pub struct EnvOnly;

impl Resolver for EnvOnly {
    fn secret(&self, name: &str) -> Result<Option<String>, String> {
        Err(format!(
            "`${{secret:{name}}}` needs the encrypted secrets store, which is not available in this command; use `${{env:...}}` here"
        ))
    }
}

/// Why a reference could not be resolved. Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("malformed reference `{0}`: write ${{env:NAME}} or ${{secret:NAME}}")]
    Malformed(String),
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    #[error("secret `{0}` is not set (add it with `socle secrets set {0}`)")]
    MissingSecret(String),
    #[error("{0}")]
    Store(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Part<'a> {
    Text(&'a str),
    Env(&'a str),
    Secret(&'a str),
}

fn parse(s: &str) -> Result<Vec<Part<'_>>, SecretError> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i..];
        if after.starts_with("$${") {
            parts.push(Part::Text(&rest[..i + 1]));
            rest = &rest[i + 2..];
            // the `{` that follows is literal text
            parts.push(Part::Text("{"));
            rest = &rest[1..];
            continue;
        }
        if !after.starts_with("${") {
            parts.push(Part::Text(&rest[..i + 1]));
            rest = &rest[i + 1..];
            continue;
        }
        parts.push(Part::Text(&rest[..i]));
        let end = after
            .find('}')
            .ok_or_else(|| SecretError::Malformed(after.to_string()))?;
        let inner = &after[2..end];
        let (kind, name) = inner
            .split_once(':')
            .ok_or_else(|| SecretError::Malformed(after[..=end].to_string()))?;
        match (kind.trim(), is_valid_name(name)) {
            ("env", true) => parts.push(Part::Env(name)),
            ("secret", true) => parts.push(Part::Secret(name)),
            _ => return Err(SecretError::Malformed(after[..=end].to_string())),
        }
        rest = &after[end + 1..];
    }
    parts.push(Part::Text(rest));
    Ok(parts)
}

/// Whether `name` may be used in `${env:NAME}` / `${secret:NAME}`: ASCII letters, digits,
/// `_`, `-` and `.`, at least one.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Checks reference syntax without resolving anything (used by `socle check`).
pub fn check_syntax(s: &str) -> Result<(), SecretError> {
    parse(s).map(|_| ())
}

/// True when the whole value is a single reference (how credentials must be written).
pub fn is_reference(s: &str) -> bool {
    matches!(
        parse(s.trim()).as_deref(),
        Ok([
            Part::Text(""),
            Part::Env(_) | Part::Secret(_),
            Part::Text("")
        ])
    )
}

/// Names of the environment variables and secrets a value refers to.
pub fn references(s: &str) -> Vec<String> {
    parse(s)
        .map(|parts| {
            parts
                .into_iter()
                .filter_map(|p| match p {
                    Part::Env(n) => Some(format!("env:{n}")),
                    Part::Secret(n) => Some(format!("secret:{n}")),
                    Part::Text(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces every reference in `s` by its value.
pub fn resolve(s: &str, resolver: &dyn Resolver) -> Result<String, SecretError> {
    let mut out = String::with_capacity(s.len());
    for part in parse(s)? {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Env(n) => {
                let v = resolver
                    .env(n)
                    .ok_or_else(|| SecretError::MissingEnv(n.into()))?;
                remember(&v);
                out.push_str(&v);
            }
            Part::Secret(n) => {
                let v = resolver
                    .secret(n)
                    .map_err(SecretError::Store)?
                    .ok_or_else(|| SecretError::MissingSecret(n.into()))?;
                remember(&v);
                out.push_str(&v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fixed(HashMap<&'static str, &'static str>);
    impl Resolver for Fixed {
        fn env(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
        fn secret(&self, name: &str) -> Result<Option<String>, String> {
            Ok(self.0.get(name).map(|s| format!("s-{s}")))
        }
    }

    #[test]
    fn resolves_embedded_references() {
        let r = Fixed(HashMap::from([("PW", "hunter2"), ("tok", "t")]));
        assert_eq!(
            resolve("postgres://u:${env:PW}@h/db", &r).unwrap(),
            "postgres://u:hunter2@h/db"
        );
        assert_eq!(resolve("${secret:tok}", &r).unwrap(), "s-t");
        assert_eq!(
            resolve("cost $5 $${env:X}", &r).unwrap(),
            "cost $5 ${env:X}"
        );
        assert_eq!(
            resolve("${env:NOPE}", &r),
            Err(SecretError::MissingEnv("NOPE".into()))
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(check_syntax("${env:}").is_err());
        assert!(check_syntax("${vault:x}").is_err());
        assert!(check_syntax("${env:X").is_err());
        assert!(check_syntax("plain").is_ok());
    }

    #[test]
    fn whole_reference() {
        assert!(is_reference("${env:AWS_SECRET_ACCESS_KEY}"));
        assert!(is_reference(" ${secret:k} "));
        assert!(!is_reference("abc${env:X}"));
        assert!(!is_reference("abc"));
        assert_eq!(
            references("a${env:X}b${secret:y}"),
            vec!["env:X", "secret:y"]
        );
    }
}
