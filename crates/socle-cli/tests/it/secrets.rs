//! `socle secrets`: the encrypted store, its key file, and values never shown.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use crate::common::*;

/// Runs `socle` in `dir` with a private home (so the key file lands in `home`), the key
/// given in `SOCLE_SECRETS_KEY` if any, and `stdin` piped in.
fn secrets(
    dir: &Path,
    home: &Path,
    key: Option<&str>,
    stdin: &str,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = socle();
    cmd.current_dir(dir)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("SOCLE_SECRETS_KEY_FILE")
        .env_remove("SOCLE_SECRETS_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match key {
        Some(k) => cmd.env("SOCLE_SECRETS_KEY", k),
        None => cmd.env_remove("SOCLE_SECRETS_KEY"),
    };
    let mut child = cmd.spawn().expect("socle runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn set_list_rm_with_a_generated_key_file() {
    let (tmp, dir) = project();
    let home = tmp.path().join("home");
    let run = |key, stdin, args: &[&str]| secrets(&dir, &home, key, stdin, args);
    let ok = |stdin, args: &[&str]| {
        let (success, out, err) = run(None, stdin, args);
        assert!(success, "socle {args:?} failed:\n{out}\n{err}");
        (out, err)
    };

    let (out, _) = ok("", &["secrets", "list"]);
    assert!(out.contains("no secrets yet"), "{out}");

    // the first set creates the key file, says where, and that it must be backed up
    let (out, err) = ok("stdin-Value-8842\n", &["secrets", "set", "api_token"]);
    assert!(out.contains("secret `api_token` set"), "{out}");
    let key_file = home.join("config/socle/secrets.key");
    assert!(err.contains(&key_file.display().to_string()), "{err}");
    assert!(err.contains("Back it up"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_, err) = ok(
        "",
        &[
            "secrets",
            "set",
            "db.password",
            "--value",
            "flag-Value-1177",
        ],
    );
    assert!(
        !err.contains("Back it up"),
        "the key file is made once: {err}"
    );
    let from = tmp.path().join("pem.txt");
    std::fs::write(&from, "file-Value-5521\n").unwrap();
    ok(
        "",
        &[
            "secrets",
            "set",
            "pem",
            "--from-file",
            from.to_str().unwrap(),
        ],
    );

    // list shows names, never values
    let (out, _) = ok("", &["secrets", "list"]);
    for n in ["api_token", "db.password", "pem"] {
        assert!(out.contains(n), "{out}");
    }
    assert!(!out.contains("Value"), "{out}");
    let (out, _) = ok("", &["secrets", "list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api_token", "db.password", "pem"]);
    assert!(v[0]["updated_at"].as_str().unwrap().ends_with('Z'));
    assert!(!out.contains("Value"), "{out}");

    // the file holds names but no value
    let file = std::fs::read(dir.join(".socle/secrets.json")).unwrap();
    let file = String::from_utf8_lossy(&file);
    assert!(file.contains("api_token"));
    for v in ["stdin-Value-8842", "flag-Value-1177", "file-Value-5521"] {
        assert!(!file.contains(v), "{file}");
    }

    let (out, _) = ok("", &["secrets", "check"]);
    assert!(out.contains("opens all 3 secrets"), "{out}");

    // rm
    let (out, _) = ok("", &["secrets", "rm", "pem"]);
    assert!(out.contains("removed"), "{out}");
    let (success, _, err) = run(None, "", &["secrets", "rm", "pem"]);
    assert!(!success && err.contains("`pem` is not set"), "{err}");
    let (out, _) = ok("", &["secrets", "list"]);
    assert!(!out.contains("pem"), "{out}");

    // bad input is refused before anything is written
    let (success, _, err) = run(None, "", &["secrets", "set", "bad name"]);
    assert!(!success && err.contains("invalid secret name"), "{err}");
    let (success, _, err) = run(None, "\n", &["secrets", "set", "empty"]);
    assert!(!success && err.contains("empty"), "{err}");

    // a key file others can read is refused
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (success, _, err) = run(None, "", &["secrets", "check"]);
        assert!(!success, "{err}");
        assert!(
            err.contains(&format!("chmod 600 {}", key_file.display())),
            "{err}"
        );
    }
}

#[test]
fn wrong_key_and_missing_key_are_explained() {
    let (tmp, dir) = project();
    let home = tmp.path().join("home");
    let (success, _, err) = secrets(
        &dir,
        &home,
        Some("first passphrase"),
        "v4lue",
        &["secrets", "set", "token"],
    );
    assert!(success, "{err}");
    assert!(
        !home.join("config/socle/secrets.key").exists(),
        "no key file when SOCLE_SECRETS_KEY is set"
    );

    let (success, out, _) = secrets(
        &dir,
        &home,
        Some("first passphrase"),
        "",
        &["secrets", "check"],
    );
    assert!(
        success && out.contains("(SOCLE_SECRETS_KEY) opens all 1 secrets"),
        "{out}"
    );

    let (success, _, err) = secrets(
        &dir,
        &home,
        Some("other passphrase"),
        "",
        &["secrets", "check"],
    );
    assert!(!success);
    assert!(
        err.contains("wrong secrets key (SOCLE_SECRETS_KEY)"),
        "{err}"
    );
    let (success, _, err) = secrets(
        &dir,
        &home,
        Some("other passphrase"),
        "x",
        &["secrets", "set", "other"],
    );
    assert!(!success && err.contains("wrong secrets key"), "{err}");

    // no key at all: list still works; set does not make a key that cannot open the store
    let (success, out, _) = secrets(&dir, &home, None, "", &["secrets", "list"]);
    assert!(success && out.contains("token"), "{out}");
    let (success, _, err) = secrets(&dir, &home, None, "x", &["secrets", "set", "other"]);
    assert!(!success && err.contains("no secrets key"), "{err}");
    assert!(!home.join("config/socle/secrets.key").exists());

    let raw = "base64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let (success, _, err) = secrets(&dir, &home, Some(raw), "", &["secrets", "check"]);
    assert!(!success && err.contains("wrong secrets key"), "{err}");
    let (success, _, err) = secrets(&dir, &home, Some("base64:AAAA"), "", &["secrets", "check"]);
    assert!(!success && err.contains("32 bytes"), "{err}");
}

#[test]
fn help_has_examples() {
    let (tmp, dir) = project();
    for sub in ["set", "list", "rm", "check"] {
        let (success, out, _) = secrets(&dir, tmp.path(), None, "", &["secrets", sub, "--help"]);
        assert!(success && out.contains("Examples:"), "{sub}: {out}");
    }
    let (success, _, _) = secrets(&dir, tmp.path(), None, "", &["secrets", "get", "x"]);
    assert!(!success, "values are never printed: no `get`");
}
