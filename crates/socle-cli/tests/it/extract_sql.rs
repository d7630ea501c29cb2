//! `socle extract` from real PostgreSQL and MariaDB servers (started by
//! `scripts/test-services.sh`) and a SQLite file: typed columns, chunked reads,
//! incremental cursors with a lookback window that catches late-arriving rows, queries,
//! and credentials kept out of messages.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn mariadb(url: &str, sql: &str) {
    let u = url::Url::parse(url).unwrap();
    let out = Command::new("mariadb")
        .args([
            "-h",
            u.host_str().unwrap(),
            "-P",
            &u.port().unwrap().to_string(),
            "-u",
            u.username(),
            &format!("-p{}", u.password().unwrap()),
            u.path().trim_start_matches('/'),
            "-e",
            sql,
        ])
        .output()
        .expect("the mariadb client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const PG_ORDERS: &str = "
CREATE TABLE shop_orders (
  id integer PRIMARY KEY, customer text NOT NULL, amount numeric(10,2), paid boolean,
  ordered_on date, updated_at timestamptz NOT NULL, note varchar(40), tags jsonb,
  ref uuid, small smallint, big bigint, ratio real, local_ts timestamp);
INSERT INTO shop_orders
SELECT i, 'customer-' || (i % 7), (i * 12.5)::numeric(10,2), i % 2 = 0,
       date '2024-06-01' + (i % 30), timestamptz '2024-06-01 00:00:00+00' + i * interval '1 hour',
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'note ' || i END, jsonb_build_object('i', i),
       ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, i::smallint, i * 10000000000,
       i / 4.0, timestamp '2024-06-01 12:00:00' + i * interval '1 minute'
FROM generate_series(1, 25) AS i;
";

fn pg_source(url: &str) -> String {
    format!(
        r#"type: postgres
url: "{url}"
chunk_size: 10
streams:
  orders:
    from: public.shop_orders
    incremental: {{ cursor: updated_at, lookback: 1h }}
    write: merge
    primary_key: [id]
  by_customer:
    query: "select customer, count(*) as n, sum(amount) as total from shop_orders group by customer"
    write: replace
"#
    )
}

#[test]
fn postgres_tables_and_queries_incremental_with_late_rows() {
    let url = pg_database(&format!("socle_x_{}", std::process::id()));
    psql(&url, PG_ORDERS);
    let (_tmp, dir) = project();
    write(&dir, "sources/shopdb.yml", &pg_source(&url));
    let reports = extract_json(&dir, &[]);
    let r = report(&reports, "orders");
    assert_eq!(r["rows_inserted"], 25, "{r}");
    assert_eq!(report(&reports, "by_customer")["rows_inserted"], 7);
    let types = query(
        &dir,
        "select arrow_typeof(id) as id, arrow_typeof(amount) as amount, arrow_typeof(paid) as paid, \
         arrow_typeof(ordered_on) as d, arrow_typeof(updated_at) as ts, arrow_typeof(tags) as tags, \
         arrow_typeof(ref) as uid, arrow_typeof(local_ts) as local from raw.shopdb__orders limit 1",
    );
    assert_eq!(types[0]["id"], "Int64");
    assert_eq!(types[0]["amount"], "Float64");
    assert_eq!(types[0]["paid"], "Boolean");
    assert_eq!(types[0]["d"], "Date32");
    assert!(
        types[0]["ts"].as_str().unwrap().starts_with("Timestamp(µs"),
        "{types:?}"
    );
    assert!(
        types[0]["tags"].as_str().unwrap().starts_with("Utf8"),
        "{types:?}"
    );
    let row = query(
        &dir,
        "select amount, paid, note, tags, ref, big, ratio, cast(updated_at as varchar) as u, \
         cast(local_ts as varchar) as l from raw.shopdb__orders where id = 5",
    );
    assert_eq!(row[0]["amount"], 62.5);
    assert_eq!(row[0]["paid"], false);
    assert_eq!(row[0]["note"], serde_json::Value::Null);
    assert_eq!(row[0]["tags"], r#"{"i":5}"#);
    assert_eq!(row[0]["ref"], "00000000-0000-0000-0000-000000000005");
    assert_eq!(row[0]["big"], 50_000_000_000i64);
    assert_eq!(row[0]["ratio"], 1.25);
    assert!(
        row[0]["u"]
            .as_str()
            .unwrap()
            .starts_with("2024-06-01T05:00:00"),
        "{row:?}"
    );
    assert!(
        row[0]["l"]
            .as_str()
            .unwrap()
            .starts_with("2024-06-01T12:05:00"),
        "{row:?}"
    );
    // 25 rows in chunks of 10: three batches, one part.
    assert_eq!(r["raw_files"].as_array().unwrap().len(), 1);

    // New rows, an update, and a late row committed with an older timestamp (inside the
    // one-hour lookback): all read; rows before the lookback are not read again.
    psql(
        &url,
        "INSERT INTO shop_orders (id, customer, amount, updated_at) VALUES
           (26, 'customer-new', 1.00, '2024-06-02 03:00:00+00'),
           (27, 'customer-late', 2.00, '2024-06-02 00:30:00+00');
         UPDATE shop_orders SET amount = 999.99, updated_at = '2024-06-02 04:00:00+00' WHERE id = 3;",
    );
    let reports = extract_json(&dir, &["shopdb.orders"]);
    let r = report(&reports, "orders");
    // Read: 24 (00:00, lookback from 01:00), 25, 26, 27, 3.
    assert_eq!(r["rows_read"], 5, "{r}");
    assert_eq!(r["rows_inserted"], 2, "{r}");
    let t = query(
        &dir,
        "select count(*) as n, count(distinct id) as ids, max(case when id = 3 then amount end) as a3 \
         from raw.shopdb__orders",
    );
    assert_eq!(
        (t[0]["n"].as_i64(), t[0]["ids"].as_i64()),
        (Some(27), Some(27))
    );
    assert_eq!(t[0]["a3"], 999.99);
    // Nothing new: the lookback re-reads, the merge keeps one of each.
    let reports = extract_json(&dir, &["shopdb.orders"]);
    assert_eq!(report(&reports, "orders")["rows_inserted"], 0);
    let t = query(&dir, "select count(*) as n from raw.shopdb__orders");
    assert_eq!(t[0]["n"], 27);

    // An unsupported type names the column and the way out; the password stays hidden.
    psql(
        &url,
        "CREATE TABLE blobs (id int, data bytea); INSERT INTO blobs VALUES (1, 'x');",
    );
    let bad_url = url.replacen("postgres://socle@", "postgres://socle:hunter2secret@", 1);
    write(
        &dir,
        "sources/blobs.yml",
        &format!("type: postgres\nurl: \"{bad_url}\"\nstreams:\n  blobs:\n    from: blobs\n"),
    );
    let (okay, out, err) = run(&dir, &["extract", "blobs"]);
    let all = format!("{out}{err}");
    assert!(!okay);
    assert!(all.contains("column `data` has type BYTEA"), "{all}");
    assert!(!all.contains("hunter2secret"), "{all}");
}

#[test]
fn mariadb_typed_incremental_with_lookback() {
    let url = std::env::var("SOCLE_TEST_MYSQL_URL")
        .expect("SOCLE_TEST_MYSQL_URL (scripts/test-services.sh starts MariaDB)");
    let table = format!("orders_{}", std::process::id());
    mariadb(
        &url,
        &format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id BIGINT UNSIGNED PRIMARY KEY, customer VARCHAR(40) NOT NULL,
               amount DECIMAL(10,2), paid TINYINT(1), ordered_on DATE, updated_at DATETIME(6) NOT NULL,
               status ENUM('new','paid','shipped'), doc JSON, qty SMALLINT, price DOUBLE, note TEXT);
             INSERT INTO {table} VALUES
               (1, 'Zoé', 10.50, 1, '2024-06-01', '2024-06-01 10:00:00', 'paid', '{{\"a\": 1}}', 2, 5.25, 'crème brûlée'),
               (2, 'Anna', 20.00, 0, '2024-06-02', '2024-06-01 11:00:00.250000', 'new', NULL, 1, 20.0, NULL),
               (3, 'Bo', NULL, NULL, NULL, '2024-06-01 12:00:00', NULL, NULL, NULL, NULL, '');"
        ),
    );
    let (_tmp, dir) = project();
    write(
        &dir,
        "sources/maria.yml",
        &format!(
            "type: mysql\nurl: \"{url}\"\nchunk_size: 2\nstreams:\n  orders:\n    from: {table}\n    table: orders\n    incremental: {{ cursor: updated_at, lookback: 30m }}\n    write: merge\n    primary_key: [id]\n"
        ),
    );
    let reports = extract_json(&dir, &[]);
    assert_eq!(report(&reports, "orders")["rows_inserted"], 3);
    let rows = query(
        &dir,
        "select id, customer, amount, paid, ordered_on, cast(updated_at as varchar) as u, status, doc, qty, price, note, \
         arrow_typeof(paid) as tp, arrow_typeof(amount) as ta from raw.orders order by id",
    );
    assert_eq!(rows[0]["customer"], "Zoé");
    assert_eq!(rows[0]["amount"], 10.5);
    assert_eq!(rows[0]["paid"], true);
    assert_eq!(rows[0]["tp"], "Boolean");
    assert_eq!(rows[0]["ta"], "Float64");
    assert_eq!(rows[0]["ordered_on"], "2024-06-01");
    assert_eq!(rows[0]["status"], "paid");
    assert_eq!(rows[0]["note"], "crème brûlée");
    assert!(
        rows[1]["u"]
            .as_str()
            .unwrap()
            .starts_with("2024-06-01T11:00:00.250"),
        "{rows:?}"
    );
    assert_eq!(rows[2]["amount"], serde_json::Value::Null);
    assert_eq!(rows[2]["note"], "");

    // A late row (11:45, before the 12:00 cursor, inside the 30-minute lookback) and an
    // old one (09:00, outside it).
    mariadb(
        &url,
        &format!(
            "INSERT INTO {table} (id, customer, updated_at) VALUES (4, 'late', '2024-06-01 11:45:00'), (5, 'old', '2024-06-01 09:00:00');"
        ),
    );
    let reports = extract_json(&dir, &[]);
    assert_eq!(report(&reports, "orders")["rows_inserted"], 1);
    let n = query(
        &dir,
        "select count(*) as n, max(case when id = 4 then customer end) as late from raw.orders",
    );
    assert_eq!(n[0]["n"], 4);
    assert_eq!(n[0]["late"], "late");
    mariadb(&url, &format!("DROP TABLE {table}"));
}

#[test]
fn sqlite_file_with_dynamic_types() {
    let (_tmp, dir) = project();
    let db = dir.join("data/app.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let made = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(\"\"\"
create table users (id integer primary key, name text, active boolean, score real, signed_up text);
insert into users values (1, 'ada', 1, 9.5, '2024-06-01 10:00:00'), (2, 'bob', 0, null, '2024-06-02 11:30:00'),
  (3, 'cy', 1, 7, '2024-06-03 09:15:00');
\"\"\"); c.commit()",
            db.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(made.success());
    write(
        &dir,
        "sources/app.yml",
        "type: sqlite\nurl: data/app.db\nstreams:\n  users:\n    from: users\n    incremental: { cursor: signed_up }\n    write: merge\n    primary_key: [id]\n",
    );
    let reports = extract_json(&dir, &[]);
    assert_eq!(report(&reports, "users")["rows_inserted"], 3);
    let rows = query(
        &dir,
        "select name, active, score, arrow_typeof(signed_up) as t from raw.app__users order by id",
    );
    assert_eq!(rows[0]["active"], true);
    assert_eq!(rows[1]["active"], false);
    assert_eq!(rows[1]["score"], serde_json::Value::Null);
    assert_eq!(rows[2]["score"], 7.0);
    assert!(
        rows[0]["t"].as_str().unwrap().starts_with("Timestamp"),
        "{rows:?}"
    );
    let state = Path::new(&dir).join(".socle");
    assert!(state.exists());
    // Incremental: only rows at or after the cursor.
    let reports = extract_json(&dir, &[]);
    assert_eq!(report(&reports, "users")["rows_read"], 1);
}
