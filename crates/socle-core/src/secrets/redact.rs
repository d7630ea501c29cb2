//! Masking of credentials in text that leaves the process (errors, logs, messages
//! stored in the metadata DB, rejected-record locations).
//!
//! Every value resolved from a `${secret:..}` or `${env:..}` reference is remembered
//! (connectors also remember credentials written in clear and tokens they obtain), and
//! [`redact`] replaces each occurrence, raw or percent-encoded, by `***`. Values shorter
//! than [`MIN_LEN`] characters are not remembered: masking `1` or `on` everywhere would
//! make every message unreadable and protects nothing.

use std::sync::RwLock;

/// Shortest value worth masking.
pub const MIN_LEN: usize = 4;

/// What to mask and what to write instead, longest first.
static SECRETS: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

fn add(needle: String, replacement: &str) {
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|(n, _)| *n == needle) {
        secrets.push((needle, replacement.to_string()));
    }
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
}

/// Remembers a credential so [`redact`] masks it from now on.
pub fn remember(value: &str) {
    if value.chars().count() < MIN_LEN {
        return;
    }
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let path_encoded = encoded.replace('+', "%20");
    for v in [value.to_string(), encoded, path_encoded] {
        add(v, "***");
    }
}

/// Remembers the password of a connection URL (`postgres://user:pw@host/db`): it is
/// masked where it appears as the URL's password (`user:***@host`), so a short password
/// equal to a common word does not blank that word everywhere.
pub fn remember_url_password(url: &str) {
    if let Ok(u) = url::Url::parse(url)
        && let Some(p) = u.password()
    {
        add(format!(":{p}@"), ":***@");
        let decoded: String = url::form_urlencoded::parse(format!("p={p}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| p.to_string());
        if decoded.chars().count() >= 8 {
            remember(&decoded);
        }
    }
}

/// `text` with every remembered credential replaced by `***`.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for (needle, replacement) in secrets.iter() {
        if out.contains(needle.as_str()) {
            out = out.replace(needle.as_str(), replacement);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_raw_and_encoded_values() {
        remember("pa:ss word-42");
        remember("no");
        let text = "login pa:ss word-42 failed; url ?p=pa%3Ass+word-42 or /pa%3Ass%20word-42; no";
        assert_eq!(redact(text), "login *** failed; url ?p=*** or /***; no");
    }
}
