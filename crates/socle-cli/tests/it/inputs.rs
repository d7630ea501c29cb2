//! Inputs that used to pass without a word: a CSV quote left open (three lines read as
//! one row), blank or repeated header names (worded as a field count), and a path glob
//! that matches no file (success, nothing said). Each is refused or reported, by
//! `socle load` and by a `files` source alike.

use crate::common::*;

/// The quote opened on line 3 is never closed: before, the rest of the file became one
/// value and the load succeeded with fewer rows.
const OPEN_QUOTE: &str = "id,note\n1,\"fine\"\n2,\"never closed\n3,x\n4,y\n";

#[test]
fn a_quote_left_open_is_refused_with_its_line() {
    let (_tmp, dir) = project();
    write(&dir, "data/open.csv", OPEN_QUOTE);
    write(
        &dir,
        "data/good.csv",
        "id,note\n1,\"a, quoted \"\"note\"\"\"\n2,\"two\"\n",
    );

    // socle load: refused before anything is written, with the file and the line.
    let (okay, out, err) = run(&dir, &["load", "data/open.csv", "--table", "raw.open"]);
    assert!(!okay, "{out}{err}");
    assert!(err.contains("open.csv") && err.contains("line 3"), "{err}");
    assert!(err.contains("never closed"), "{err}");
    let (exists, _, _) = run(&dir, &["sql", "SELECT count(*) FROM raw.open"]);
    assert!(!exists, "no table is created from a refused file");

    // Quotes that close load as before.
    ok(&dir, &["load", "data/good.csv", "--table", "raw.good"]);
    let rows = query(&dir, "SELECT id, note FROM raw.good ORDER BY id");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["note"], "a, quoted \"note\"");
    assert_eq!(rows[1]["note"], "two");

    // A files source: the stream fails with the line, and loads nothing.
    write(
        &dir,
        "sources/drop.yml",
        "type: files\nstreams:\n  open:\n    path: data/open.csv\n",
    );
    let (okay, out, err) = run(&dir, &["extract", "--date", "2024-06-30"]);
    assert!(!okay, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("line 3") && said.contains("never closed"),
        "{said}"
    );
    let (exists, _, _) = run(&dir, &["sql", "SELECT count(*) FROM raw.drop__open"]);
    assert!(!exists, "nothing loaded from a refused file");
}

#[test]
fn blank_and_repeated_header_names_are_named() {
    let (_tmp, dir) = project();
    write(&dir, "data/dup.csv", "id,name,name,\n1,a,b,c\n");
    let (okay, out, err) = run(&dir, &["load", "data/dup.csv", "--table", "raw.dup"]);
    assert!(!okay, "{out}{err}");
    assert!(err.contains("dup.csv") && err.contains("line 1"), "{err}");
    assert!(err.contains("`name` names columns 2 and 3"), "{err}");
    assert!(err.contains("column 4 has no name"), "{err}");
    assert!(!err.contains("expected"), "not a field count: {err}");
}

#[test]
fn a_path_that_matches_no_file_is_said_or_fails_as_asked() {
    let (_tmp, dir) = project();
    write(&dir, "data/sales_1.csv", "id,amount\n1,10\n");
    write(
        &dir,
        "sources/shop.yml",
        "type: files\nstreams:\n  sales:\n    path: data/sales_*.csv\n  returns:\n    path: data/returns_*.csv\n  refunds:\n    path: data/refunds_*.csv\n    on_missing: skip\n",
    );
    // Default for a glob: warn, in the JSON report and in the text summary.
    let reports = extract_json(&dir, &["--date", "2024-06-30"]);
    let returns = report(&reports, "returns");
    let warnings = returns["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{returns}");
    assert!(
        warnings[0].as_str().unwrap().contains("data/returns_*.csv"),
        "{returns}"
    );
    assert!(
        report(&reports, "refunds")["warnings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        report(&reports, "sales")["warnings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let text = ok(&dir, &["extract", "--date", "2024-07-01"]);
    assert!(
        text.contains("shop.returns: warning:") && text.contains("matched no file"),
        "{text}"
    );

    // `on_missing: fail`: the stream fails and says which path.
    write(
        &dir,
        "sources/shop.yml",
        "type: files\nstreams:\n  returns:\n    path: data/returns_*.csv\n    on_missing: fail\n",
    );
    let (okay, out, err) = run(&dir, &["extract", "--date", "2024-07-02"]);
    assert!(!okay, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("data/returns_*.csv"),
        "{out}{err}"
    );

    // A wrong value is a configuration error with its line.
    write(
        &dir,
        "sources/shop.yml",
        "type: files\nstreams:\n  returns:\n    path: data/returns_*.csv\n    on_missing: maybe\n",
    );
    let (okay, out, err) = run(&dir, &["check"]);
    assert!(!okay, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("shop.yml:5") && said.contains("on_missing"),
        "{said}"
    );
}
