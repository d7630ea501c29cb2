//! `socle users` and `socle tokens`: one-time passwords, roles, tokens shown once and
//! stored hashed, scoped to the owner's role, revocable; every change audited.

use crate::common::*;

fn with_stdin(dir: &std::path::Path, args: &[&str], input: &str) -> (bool, String, String) {
    run_with(dir, args, &[], input)
}

#[test]
fn users_roles_and_tokens() {
    let (_tmp, dir) = project();
    let out = ok(&dir, &["users", "add", "ada", "--role", "admin"]);
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("one-time password (shown once; to change at first login): "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(password.len(), 20);
    let (okay, _, err) = run(&dir, &["users", "add", "ada"]);
    assert!(!okay && err.contains("exists"), "{err}");
    let (okay, _, err) = with_stdin(
        &dir,
        &[
            "users",
            "add",
            "bob",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!okay && err.contains("at least 12 characters"), "{err}");
    let (okay, out, err) = with_stdin(
        &dir,
        &[
            "users",
            "add",
            "bob",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        "a long enough passphrase\n",
    );
    assert!(okay, "{out}{err}");
    assert!(!out.contains("one-time"), "{out}");
    let (okay, _, err) = run(&dir, &["users", "role", "bob", "root"]);
    assert!(!okay && err.contains("unknown role `root`"), "{err}");
    ok(&dir, &["users", "role", "bob", "editor"]);
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&dir, &["users", "list", "--format", "json"])).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["must_change_password"], "yes");
    assert_eq!(list[1]["role"], "editor");

    // Tokens: printed once, at most the owner's role.
    let (okay, _, err) = run(
        &dir,
        &["tokens", "create", "x", "--user", "bob", "--role", "admin"],
    );
    assert!(!okay && err.contains("cannot be admin"), "{err}");
    let out = ok(
        &dir,
        &[
            "tokens",
            "create",
            "nightly",
            "--user",
            "bob",
            "--role",
            "analyst",
            "--expires",
            "30d",
        ],
    );
    let token = out
        .lines()
        .find(|l| l.starts_with("socle_"))
        .unwrap()
        .to_string();
    let id = token.split('_').nth(1).unwrap().to_string();
    let listed = ok(&dir, &["tokens", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("nightly"),
        "{listed}"
    );
    ok(&dir, &["tokens", "revoke", &id]);
    let (okay, _, err) = run(&dir, &["tokens", "revoke", &id]);
    assert!(!okay && err.contains("no live token"), "{err}");

    // Nothing secret is stored in clear; everything is audited.
    let db = std::fs::read(dir.join(".socle/socle.db")).unwrap();
    let wal = std::fs::read(dir.join(".socle/socle.db-wal")).unwrap_or_default();
    let stored = String::from_utf8_lossy(&[db, wal].concat()).into_owned();
    let secret = token.rsplit('_').next().unwrap();
    assert!(
        !stored.contains(secret) && !stored.contains(password),
        "a secret is stored in clear"
    );
    for action in ["user.add", "user.role", "token.create", "token.revoke"] {
        assert!(stored.contains(action), "no audit entry {action}");
    }
    ok(&dir, &["users", "rm", "bob"]);
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&dir, &["users", "list", "--format", "json"])).unwrap();
    assert_eq!(list.len(), 1);
}
