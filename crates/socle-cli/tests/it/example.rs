//! The README's main job: the shop example, end to end, on a copy of the project.

use crate::common::*;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".socle" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn shop_main_job_runs_twice_without_duplicates() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let tmp = tempfile::tempdir().unwrap();
    let shop = tmp.path().join("shop");
    copy_dir(&src, &shop);
    // Run from elsewhere with --project, as the README does: the daily pipeline.
    let first = ok(
        tmp.path(),
        &["--project", "shop", "run", "daily", "--date", "2024-06-30"],
    );
    assert!(
        first.contains("build succeeded")
            && first.contains("PASS=19 WARN=0 ERROR=0 SKIP=0 TOTAL=19"),
        "{first}"
    );
    assert!(
        first.contains("Run daily.20240630T060000.1 succeeded"),
        "{first}"
    );
    let export = std::fs::read_to_string(shop.join("target/exports/report_20240630.csv")).unwrap();
    assert!(
        export.starts_with("month,orders,revenue\n2024-01,"),
        "{export}"
    );
    let report = |s: &str| {
        s.lines()
            .filter(|l| l.starts_with("| 2024-"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let job = shop.join("jobs/report.sql");
    let before = ok(
        tmp.path(),
        &["--project", "shop", "sql", "-f", job.to_str().unwrap()],
    );
    assert_eq!(report(&before).len(), 12, "{before}");
    let second = ok(tmp.path(), &["--project", "shop", "build"]);
    assert!(second.contains("ERROR=0 SKIP=0"), "{second}");
    let after = ok(
        tmp.path(),
        &["--project", "shop", "sql", "-f", job.to_str().unwrap()],
    );
    assert_eq!(report(&before), report(&after));
    let q = |sql: &str| ok(&shop, &["sql", sql, "--format", "csv"]);
    assert_eq!(
        q("SELECT count(*) AS n FROM marts.daily_revenue"),
        "n\n366\n"
    );
    assert_eq!(q("SELECT count(*) AS n FROM raw.orders"), "n\n600\n");
    // Validation flags some of the deliberately broken contact details.
    let bad = q("SELECT count(*) AS n FROM staging.stg_customers WHERE NOT email_is_valid");
    assert_ne!(bad, "n\n0\n", "{bad}");
    let check = ok(&shop, &["check"]);
    assert!(check.contains("All checks passed"), "{check}");
    // The docs site traces the word-frequency mart back through UNNEST(SPLIT(...)).
    ok(&shop, &["docs"]);
    let docs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shop.join("target/docs/docs.json")).unwrap())
            .unwrap();
    let words = docs["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "model.shop.comment_words")
        .unwrap();
    assert_eq!(
        words["columns"][0]["lineage"],
        serde_json::json!({"transform": "derived", "sources": [
            {"node": "seed.shop.comments", "relation": "raw.comments", "column": "comment"}
        ]})
    );
}
