//! `socle init`, `socle check`, project discovery and config errors.

use crate::common::*;

#[test]
fn init_then_check_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(tmp.path(), &["init", "demo"]);
    assert!(out.contains("socle.yml"), "{out}");
    let out = ok(tmp.path(), &["--project", "demo", "check"]);
    assert!(out.contains("All checks passed"), "{out}");
    // --project after the subcommand, and discovery from a subfolder.
    ok(tmp.path(), &["check", "--project", "demo"]);
    let out = ok(
        &tmp.path().join("demo/models"),
        &["check", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    // init refuses to overwrite.
    let (success, _, err) = run(tmp.path(), &["init", "demo"]);
    assert!(!success && err.contains("already contains"), "{err}");
}

#[test]
fn misspelled_key_fails_with_location_and_suggestion() {
    let (_tmp, dir) = project();
    std::fs::write(
        dir.join("socle.yml"),
        "name: demo\nwarehouse:\n  defualt_schema: main\n",
    )
    .unwrap();
    let (success, _, err) = run(&dir, &["check"]);
    assert!(!success);
    assert!(
        err.contains("socle.yml:3:3: unknown field `defualt_schema`"),
        "{err}"
    );
    assert!(err.contains("did you mean `default_schema`?"), "{err}");
}

#[test]
fn bad_yaml_and_bad_values_are_located() {
    let (_tmp, dir) = project();
    std::fs::write(
        dir.join("socle.yml"),
        "name: demo\nlake:\n  url: [unclosed\n",
    )
    .unwrap();
    let (success, _, err) = run(&dir, &["check"]);
    assert!(!success);
    assert!(err.contains("socle.yml:"), "{err}");
    std::fs::write(
        dir.join("socle.yml"),
        "name: demo\nlake:\n  url: ftp://host/x\n",
    )
    .unwrap();
    let (_, _, err) = run(&dir, &["check"]);
    assert!(
        err.contains("socle.yml:3:8: unsupported lake scheme `ftp://`"),
        "{err}"
    );
}

#[test]
fn outside_a_project_says_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (success, _, err) = run(tmp.path(), &["sql", "select 1"]);
    assert!(!success);
    assert!(err.contains("socle init"), "{err}");
}

#[test]
fn dbt_project_alone_is_a_project() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("dbt_project.yml"),
        "name: jaffle_shop\nversion: '1.0.0'\nprofile: jaffle\n",
    )
    .unwrap();
    let out = ok(tmp.path(), &["check"]);
    assert!(out.contains("jaffle_shop"), "{out}");
    let out = ok(
        tmp.path(),
        &["sql", "select 41 + 1 as answer", "--format", "csv"],
    );
    assert_eq!(out, "answer\n42\n");
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in ["init", "check", "sql", "load", "table"] {
        let out = socle().args([cmd, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Examples:"),
            "{cmd}: {text}"
        );
    }
}
