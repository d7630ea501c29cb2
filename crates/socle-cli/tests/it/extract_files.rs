//! `socle extract` with the `files` connector over real files in every format: CSV with
//! bad rows, a Latin-1 CSV with title lines, JSON Lines with a broken line, nested JSON,
//! Parquet (and a truncated one), Avro and an Excel workbook with an error cell. Checks
//! the loaded rows, rejects with their locations, raw files, incremental runs, merges,
//! type evolution, and crash recovery at both sides of the commit.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/files")
}

fn copy_fixtures(dir: &Path) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("data").join(p.file_name().unwrap())).unwrap();
    }
}

const SOURCE: &str = r#"type: files
description: Back-office exports in every format.
streams:
  orders:
    path: data/orders.csv
    write: merge
    primary_key: [order_id]
    max_rejected: 20%
    columns: { amount: double, ordered_on: date }
  clients:
    path: data/clients_latin1.csv
    csv: { delimiter: ";", encoding: latin-1, skip_rows: 2 }
  events:
    path: data/events.jsonl
  products:
    path: data/products.json
    json: { records: /data/items }
    write: replace
  payments:
    path: data/payments*.parquet
  reviews:
    path: data/reviews.avro
  budget:
    path: data/budget.xlsx
    excel: { sheet: Budget, range: "A3:F16" }
"#;

#[test]
fn every_format_lands_raw_files_and_loads_with_rejects() {
    let (_tmp, dir) = project();
    copy_fixtures(&dir);
    write(&dir, "sources/shop_files.yml", SOURCE);
    let check = ok(&dir, &["check"]);
    assert!(check.contains("shop_files (files, 7 streams)"), "{check}");

    let reports = extract_json(&dir, &["--date", "2024-06-30"]);
    let r = report(&reports, "orders");
    assert_eq!(
        (r["rows_inserted"].as_u64(), r["rejected"].as_u64()),
        (Some(20), Some(3))
    );
    assert_eq!(r["table"], "raw.shop_files__orders");

    // Typed columns; a quoted field with a comma and quotes survives.
    let rows = query(
        &dir,
        "select count(*) as n, sum(amount) as total, min(ordered_on) as first, \
         arrow_typeof(ordered_on) as t, max(note) as note from raw.shop_files__orders group by 4",
    );
    assert_eq!(rows[0]["n"], 20);
    assert_eq!(rows[0]["total"], 2625.0);
    assert_eq!(rows[0]["first"], "2024-06-01");
    assert_eq!(rows[0]["t"], "Date32");
    assert_eq!(rows[0]["note"], "said \"hi\", twice");

    // Rejects: the raw line, the reason and file:line.
    let rejects = query(
        &dir,
        "select reason, location, raw from raw.shop_files__orders__rejected order by location",
    );
    assert_eq!(rejects.len(), 3, "{rejects:?}");
    assert_eq!(rejects[0]["location"], "data/orders.csv:12");
    assert_eq!(rejects[0]["reason"], "expected 6 fields, found 5");
    assert_eq!(rejects[0]["raw"], "21,101,2024-06-21,13.00,paid");
    assert_eq!(rejects[1]["location"], "data/orders.csv:13");
    assert!(
        rejects[1]["reason"]
            .as_str()
            .unwrap()
            .contains("column `amount`: `12,50` is not a number")
    );
    assert!(
        rejects[2]["reason"]
            .as_str()
            .unwrap()
            .contains("`2024-13-01` is not a date")
    );

    // Latin-1 with title lines above the header.
    let rows = query(
        &dir,
        "select nom, ville, inscrit_le from raw.shop_files__clients order by id",
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["nom"], "Hélène");
    assert_eq!(rows[3]["ville"], "Évry");
    assert_eq!(rows[1]["inscrit_le"], "2024-02-15");

    // JSON Lines: nested objects flattened, arrays as JSON text, timestamps typed.
    let r = report(&reports, "events");
    assert_eq!(
        (r["rows_inserted"].as_u64(), r["rejected"].as_u64()),
        (Some(10), Some(1))
    );
    let rows = query(
        &dir,
        "select props__page, tags, arrow_typeof(\"at\") as t from raw.shop_files__events where id = 2",
    );
    assert_eq!(rows[0]["props__page"], "/p/2");
    assert_eq!(rows[0]["tags"], "[\"a\",\"b\"]");
    assert_eq!(rows[0]["t"], "Timestamp(µs, \"UTC\")");
    let rejects = query(
        &dir,
        "select location, reason from raw.shop_files__events__rejected",
    );
    assert_eq!(rejects[0]["location"], "data/events.jsonl:6");
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );

    // JSON document with a records pointer.
    let rows = query(
        &dir,
        "select sku, name, stock__paris from raw.shop_files__products order by sku",
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["name"], "Café");
    assert_eq!(rows[0]["stock__paris"], 4);
    assert_eq!(rows[2]["name"], "Chocolat 🍫");

    // Parquet: the truncated file is one rejected record; the good one loads whole.
    let r = report(&reports, "payments");
    assert_eq!(
        (r["rows_inserted"].as_u64(), r["rejected"].as_u64()),
        (Some(100), Some(1))
    );
    let rejects = query(
        &dir,
        "select location, reason from raw.shop_files__payments__rejected",
    );
    assert_eq!(rejects[0]["location"], "data/payments_truncated.parquet");
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a readable Parquet file")
    );
    let rows = query(
        &dir,
        "select count(distinct _file) as files, sum(amount) as s from raw.shop_files__payments",
    );
    assert_eq!(rows[0]["files"], 1);

    // Avro.
    let rows = query(
        &dir,
        "select count(*) as n, max(stars) as m from raw.shop_files__reviews",
    );
    assert_eq!(
        (rows[0]["n"].as_i64(), rows[0]["m"].as_i64()),
        (Some(15), Some(5))
    );

    // Excel: sheet and range; the row with #DIV/0! is rejected with its cell.
    let r = report(&reports, "budget");
    assert_eq!(
        (r["rows_inserted"].as_u64(), r["rejected"].as_u64()),
        (Some(12), Some(1))
    );
    let rows = query(
        &dir,
        "select month, planned, actual, starts_on from raw.shop_files__budget order by month limit 1",
    );
    assert_eq!(rows[0]["month"], "2024-01");
    assert_eq!(rows[0]["planned"], 11);
    assert_eq!(rows[0]["actual"], 10.75);
    assert_eq!(rows[0]["starts_on"], "2024-01-01");
    let rejects = query(
        &dir,
        "select location from raw.shop_files__budget__rejected",
    );
    assert_eq!(rejects[0]["location"], "data/budget.xlsx!D16");

    // Metadata columns, and the raw files in the lake.
    let rows = query(
        &dir,
        "select distinct _socle_source, _file, _socle_run_id is not null as has_run from raw.shop_files__clients",
    );
    assert_eq!(rows[0]["_socle_source"], "shop_files");
    assert_eq!(rows[0]["_file"], "data/clients_latin1.csv");
    let raw = dir.join(".socle/lake/raw/shop_files/orders/dt=2024-06-30");
    let files: Vec<String> = std::fs::read_dir(&raw)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with("-00001.parquet")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.contains("-rejected-")), "{files:?}");

    // Text summary names every stream; a second run reads nothing new.
    let out = ok(&dir, &["extract", "--date", "2024-06-30"]);
    assert!(out.contains("shop_files.orders"), "{out}");
    let again = extract_json(&dir, &[]);
    for r in &again {
        assert_eq!(r["files"], 0, "{r}");
        assert_eq!(r["rows_inserted"], 0, "{r}");
    }
    let rows = query(&dir, "select count(*) as n from raw.shop_files__events");
    assert_eq!(rows[0]["n"], 10);
}

#[test]
fn incremental_files_merges_and_type_evolution() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "sources/drops.yml",
        "type: files\nstreams:\n  sales:\n    path: drops/sales_*.csv\n  stock:\n    path: drops/stock.csv\n    write: merge\n    primary_key: sku\n",
    );
    write(
        &dir,
        "drops/sales_1.csv",
        "id,amount,day\n1,10,2024-06-01\n2,20,2024-06-01\n",
    );
    write(&dir, "drops/stock.csv", "sku,qty\nA,1\nB,2\n");
    extract_json(&dir, &[]);
    // A new file is read alone; its decimals widen `amount` from BIGINT to DOUBLE.
    write(
        &dir,
        "drops/sales_2.csv",
        "id,amount,day\n3,2.5,2024-06-02 10:00:00\n",
    );
    let r = extract_json(&dir, &["drops.sales"]);
    assert_eq!(
        (r[0]["files"].as_u64(), r[0]["rows_inserted"].as_u64()),
        (Some(1), Some(1))
    );
    let rows = query(
        &dir,
        "select sum(amount) as s, arrow_typeof(amount) as t, arrow_typeof(day) as d from raw.drops__sales group by 2, 3",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["s"], 32.5);
    assert_eq!(rows[0]["t"], "Float64");
    assert!(
        rows[0]["d"].as_str().unwrap().starts_with("Timestamp"),
        "{rows:?}"
    );
    // Text in a numeric column: the column becomes text (on_type_conflict: string).
    write(
        &dir,
        "drops/sales_3.csv",
        "id,amount,day\n4,n/a,2024-06-03\n",
    );
    extract_json(&dir, &["drops.sales"]);
    let rows = query(&dir, "select amount from raw.drops__sales order by id");
    assert_eq!(
        rows.iter().map(|r| r["amount"].clone()).collect::<Vec<_>>(),
        vec!["10.0", "20.0", "2.5", "n/a"]
    );

    // A changed file of a merge stream updates rows instead of adding them.
    write(&dir, "drops/stock.csv", "sku,qty\nA,5\nB,2\nC,7\nC,8\n");
    let r = extract_json(&dir, &["drops.stock"]);
    assert_eq!(r[0]["files"], 1);
    let rows = query(&dir, "select sku, qty from raw.drops__stock order by sku");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["qty"], 5);
    assert_eq!(rows[2]["qty"], 8, "the last record of a repeated key wins");

    // --full-refresh reads every file again and replaces the table: no duplicates.
    extract_json(&dir, &["--full-refresh", "drops.sales"]);
    let rows = query(&dir, "select count(*) as n from raw.drops__sales");
    assert_eq!(rows[0]["n"], 4);
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features socle-cli/failpoints"
)]
fn a_crash_on_either_side_of_the_commit_neither_loses_nor_duplicates() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "sources/drops.yml",
        "type: files\nstreams:\n  sales:\n    path: drops/*.csv\n",
    );
    write(&dir, "drops/a.csv", "id,amount\n1,10\n2,20\n");
    extract_json(&dir, &[]);
    write(&dir, "drops/b.csv", "id,amount\n3,30\n");

    // Killed after the pending state is written, before the data commit.
    let out = socle()
        .current_dir(&dir)
        .env("SOCLE_FAILPOINT", "extract-before-load")
        .args(["extract"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let rows = query(&dir, "select count(*) as n from raw.drops__sales");
    assert_eq!(rows[0]["n"], 2);
    let (success, _out, err) = run(&dir, &["extract"]);
    assert!(success, "{err}");
    assert!(err.contains("discarded the unfinished load"), "{err}");
    let rows = query(
        &dir,
        "select count(*) as n, sum(amount) as s from raw.drops__sales",
    );
    assert_eq!(
        (rows[0]["n"].as_i64(), rows[0]["s"].as_i64()),
        (Some(3), Some(60))
    );

    // Killed after the data commit, before the state moved: the rerun finishes the state
    // and does not load the file again.
    write(&dir, "drops/c.csv", "id,amount\n4,40\n");
    let out = socle()
        .current_dir(&dir)
        .env("SOCLE_FAILPOINT", "extract-after-load")
        .args(["extract"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let (success, _out, err) = run(&dir, &["extract"]);
    assert!(success, "{err}");
    assert!(err.contains("finished the load"), "{err}");
    let rows = query(
        &dir,
        "select count(*) as n, sum(amount) as s from raw.drops__sales",
    );
    assert_eq!(
        (rows[0]["n"].as_i64(), rows[0]["s"].as_i64()),
        (Some(4), Some(100))
    );
}

#[test]
fn source_mistakes_are_reported_with_file_and_line() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "sources/bad.yml",
        "type: files\nstreams:\n  orders:\n    path: data/x.csv\n    write: upsert\n    csv: { delimter: \";\" }\n  events:\n    path: data/events.unknown\n",
    );
    write(&dir, "sources/worse.yml", "type: fils\nstreams: {}\n");
    let (success, out, err) = run(&dir, &["extract"]);
    assert!(!success);
    let all = format!("{out}{err}");
    assert!(all.contains("bad.yml:6"), "{all}");
    assert!(all.contains("delimter"), "{all}");
    assert!(
        all.contains("worse.yml:1:7: unknown source type `fils`"),
        "{all}"
    );
    assert!(all.contains("did you mean `files`?"), "{all}");

    // Too many rejects fail the stream and load nothing but the rejects.
    std::fs::remove_file(dir.join("sources/worse.yml")).unwrap();
    write(
        &dir,
        "sources/bad.yml",
        "type: files\nstreams:\n  nums:\n    path: data/n.csv\n    columns: { n: bigint }\n",
    );
    write(&dir, "data/n.csv", "n\n1\nx\ny\n");
    let (success, out, _err) = run(&dir, &["extract"]);
    assert!(!success);
    assert!(
        out.contains("2 of 3 records rejected, more than max_rejected (10% of the records)"),
        "{out}"
    );
    let rows = query(&dir, "select count(*) as n from raw.bad__nums__rejected");
    assert_eq!(rows[0]["n"], 2);
    let (exists, _, _) = run(&dir, &["sql", "select * from raw.bad__nums"]);
    assert!(!exists, "nothing was loaded");
}

#[test]
fn a_pipeline_extracts_then_builds_on_the_raw_tables() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "sources/drops.yml",
        "type: files\nstreams:\n  sales:\n    path: \"drops/sales_{{ ds_nodash }}.csv\"\n",
    );
    write(&dir, "drops/sales_20240630.csv", "id,amount\n1,10\n2,20\n");
    write(
        &dir,
        "pipelines/ingest.yml",
        "tasks:\n  extract:\n    kind: extract\n    sources: [drops.sales]\n  check:\n    kind: sql\n    sql: \"SELECT CASE WHEN sum(amount) = 30 THEN 'ok' ELSE error('wrong total') END FROM raw.drops__sales\"\n    depends_on: [extract]\n",
    );
    let out = ok(&dir, &["run", "ingest", "--date", "2024-06-30"]);
    assert!(out.to_lowercase().contains("success"), "{out}");
    // A date whose file is missing fails the extract task and skips the check.
    let (success, out, err) = run(&dir, &["run", "ingest", "--date", "2024-07-01"]);
    assert!(!success, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("sales_20240701.csv"),
        "{out}{err}"
    );
}
