"""socle sql vs DuckDB: analytical queries over a 10M-row Parquet file, and merge-upsert.

Both engines get the same SQL text over the same files. socle runs as the CLI a user would
run (`socle sql`, one process per query, start-up included); DuckDB runs in-process through
its Python API (no start-up cost), so ratios slightly favour DuckDB. Each query runs
`--repeat` times and the median is kept. Peak memory is the child process's max RSS for
socle and the Python process's max RSS growth for DuckDB.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

import duckdb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "bench", "data", "warehouse")
RESULTS = os.path.join(ROOT, "bench", "results")

QUERIES = {
    "q1_groupby_low_card": """
        SELECT country, count(*) AS n, sum(amount) AS revenue, avg(quantity) AS avg_qty
        FROM 'sales.parquet' GROUP BY country ORDER BY country""",
    "q2_groupby_high_card_top": """
        SELECT customer_id, sum(amount) AS revenue
        FROM 'sales.parquet' GROUP BY customer_id ORDER BY revenue DESC, customer_id LIMIT 10""",
    "q3_join_dimension": """
        SELECT c.segment, count(*) AS n, sum(s.amount) AS revenue
        FROM 'sales.parquet' s JOIN 'customers.parquet' c ON s.customer_id = c.customer_id
        GROUP BY c.segment ORDER BY c.segment""",
    "q4_window_running_sum": """
        SELECT count(*) AS n, max(running) AS max_running FROM (
            SELECT sum(amount) OVER (PARTITION BY customer_id ORDER BY order_ts, order_id
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
            FROM 'sales.parquet')""",
    "q5_window_rank_per_group": """
        SELECT country, product_id, revenue FROM (
            SELECT country, product_id, sum(amount) AS revenue,
                   row_number() OVER (PARTITION BY country ORDER BY sum(amount) DESC, product_id) AS rn
            FROM 'sales.parquet' GROUP BY country, product_id)
        WHERE rn <= 3 ORDER BY country, rn""",
    "q6_count_distinct_filter": """
        SELECT count(DISTINCT customer_id) AS buyers, count(*) AS orders
        FROM 'sales.parquet' WHERE amount > 100 AND order_ts >= TIMESTAMP '2024-06-01 00:00:00'""",
}


def generate(rows):
    os.makedirs(DATA, exist_ok=True)
    marker = os.path.join(DATA, f".generated-{rows}")
    if os.path.exists(marker):
        return
    con = duckdb.connect()
    customers = max(rows // 10, 1000)
    con.execute(f"""
        COPY (SELECT i AS order_id,
                     CAST(hash(i) % {customers} AS BIGINT) AS customer_id,
                     CAST(hash(i * 7) % 5000 AS INTEGER) AS product_id,
                     ['FR','DE','ES','IT','BE','NL','CH','PT','SE','PL'][1 + CAST(hash(i * 3) % 10 AS INTEGER)] AS country,
                     TIMESTAMP '2024-01-01' + INTERVAL (CAST(hash(i * 11) % 31536000 AS BIGINT)) SECOND AS order_ts,
                     CAST(1 + hash(i * 13) % 5 AS INTEGER) AS quantity,
                     ROUND(CAST(hash(i * 17) % 50000 AS DOUBLE) / 100, 2) AS amount
              FROM range({rows}) t(i))
        TO '{DATA}/sales.parquet' (FORMAT parquet, ROW_GROUP_SIZE 122880)""")
    con.execute(f"""
        COPY (SELECT i AS customer_id,
                     ['consumer','smb','enterprise','public'][1 + CAST(hash(i) % 4 AS INTEGER)] AS segment,
                     DATE '2020-01-01' + CAST(hash(i * 5) % 1500 AS INTEGER) AS signup_date
              FROM range({customers}) t(i))
        TO '{DATA}/customers.parquet' (FORMAT parquet)""")
    # Merge input: half updates of existing orders, half new orders.
    updates = max(rows // 10, 1000)
    con.execute(f"""
        COPY (SELECT CASE WHEN i % 2 = 0 THEN CAST(hash(i) % {rows} AS BIGINT) ELSE {rows} + i END AS order_id,
                     CAST(hash(i) % {customers} AS BIGINT) AS customer_id,
                     CAST(hash(i * 7) % 5000 AS INTEGER) AS product_id,
                     'FR' AS country,
                     TIMESTAMP '2025-01-01' AS order_ts,
                     1 AS quantity,
                     CAST(9.99 AS DOUBLE) AS amount
              FROM range({updates}) t(i)
              QUALIFY row_number() OVER (PARTITION BY order_id) = 1)
        TO '{DATA}/updates.parquet' (FORMAT parquet)""")
    open(marker, "w").close()


def socle_project():
    project = os.path.join(DATA, "project")
    if not os.path.exists(os.path.join(project, "socle.yml")):
        os.makedirs(project, exist_ok=True)
        with open(os.path.join(project, "socle.yml"), "w") as f:
            f.write("name: bench\n")
    for name in ["sales.parquet", "customers.parquet", "updates.parquet"]:
        link = os.path.join(project, name)
        if not os.path.exists(link):
            os.symlink(os.path.join(DATA, name), link)
    return project


def run_socle(socle, project, args):
    """Runs socle; returns (seconds, max RSS in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([socle, "--project", project, *args], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(after, before) / 1024


def peak_rss_child(cmd):
    """Max RSS (MiB) of one child process, measured with /usr/bin/time-like wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--rows", type=int, default=int(os.environ.get("ROWS", 10_000_000)))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["queries", "merge"], help="run one half of the benchmark")
    args = ap.parse_args()
    generate(args.rows)
    project = socle_project()
    os.chdir(DATA)
    con = duckdb.connect()
    results = {"rows": args.rows, "queries": {}, "merge": {}}

    queries = {} if args.only == "merge" else QUERIES
    # Check both engines agree before timing anything.
    for name, sql in queries.items():
        out = subprocess.run([args.socle, "--project", project, "sql", sql, "--format", "csv"],
                             check=True, capture_output=True, text=True).stdout
        socle_rows = len(out.strip().splitlines()) - 1
        duck_rows = len(con.execute(sql).fetchall())
        assert socle_rows == duck_rows, f"{name}: socle {socle_rows} rows, duckdb {duck_rows}"

    print(f"{'query':<28}{'socle s':>10}{'duckdb s':>10}{'ratio':>8}")
    for name, sql in queries.items():
        socle_times, duck_times = [], []
        for _ in range(args.repeat):
            t, _ = peak_rss_child([args.socle, "--project", project, "sql", sql, "--format", "csv", "-o", "/dev/null"])
            socle_times.append(t)
            start = time.perf_counter()
            con.execute(sql).fetchall()
            duck_times.append(time.perf_counter() - start)
        s, d = statistics.median(socle_times), statistics.median(duck_times)
        results["queries"][name] = {"socle_s": s, "duckdb_s": d, "ratio": s / d}
        print(f"{name:<28}{s:>10.3f}{d:>10.3f}{s / d:>8.2f}")
    total_s = sum(q["socle_s"] for q in results["queries"].values())
    total_d = sum(q["duckdb_s"] for q in results["queries"].values())
    if queries:
        results["total_ratio"] = total_s / total_d
        print(f"{'total':<28}{total_s:>10.3f}{total_d:>10.3f}{total_s / total_d:>8.2f}")
    if args.only == "queries":
        return

    # Merge-upsert: a 10M-row table, then 1M rows (half updates, half inserts).
    shutil.rmtree(os.path.join(project, ".socle"), ignore_errors=True)
    t_load, rss_load = peak_rss_child([args.socle, "--project", project, "load", "sales.parquet", "--table", "bench.sales"])
    t_merge, rss_merge = peak_rss_child([args.socle, "--project", project, "load", "updates.parquet",
                                         "--table", "bench.sales", "--mode", "merge", "--key", "order_id"])
    update_rows = con.execute("SELECT count(*) FROM 'updates.parquet'").fetchone()[0]
    check = subprocess.run([args.socle, "--project", project, "sql", "SELECT count(*) FROM bench.sales", "--format", "csv"],
                           check=True, capture_output=True, text=True).stdout.splitlines()[1]
    dcon = duckdb.connect(os.path.join(DATA, "duck.db"))
    dcon.execute("DROP TABLE IF EXISTS sales")
    start = time.perf_counter()
    dcon.execute("CREATE TABLE sales AS SELECT * FROM 'sales.parquet'")
    d_load = time.perf_counter() - start
    start = time.perf_counter()
    dcon.execute("""MERGE INTO sales USING (SELECT * FROM 'updates.parquet') AS u ON sales.order_id = u.order_id
                    WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *""")
    d_merge = time.perf_counter() - start
    d_count = dcon.execute("SELECT count(*) FROM sales").fetchone()[0]
    assert int(check) == d_count, f"row counts differ after merge: socle {check}, duckdb {d_count}"
    results["merge"] = {
        "table_rows": args.rows, "batch_rows": update_rows, "rows_after": d_count,
        "socle_initial_load_s": t_load, "socle_initial_load_peak_mib": rss_load,
        "socle_merge_s": t_merge, "socle_merge_rows_per_s": update_rows / t_merge, "socle_merge_peak_mib": rss_merge,
        "duckdb_initial_load_s": d_load, "duckdb_merge_s": d_merge, "merge_ratio": t_merge / d_merge,
    }
    m = results["merge"]
    print(f"\nload {args.rows} rows: socle {t_load:.2f}s (peak {rss_load:.0f} MiB), duckdb {d_load:.2f}s")
    print(f"merge {update_rows} rows into {args.rows}: socle {t_merge:.2f}s = {m['socle_merge_rows_per_s']:,.0f} rows/s, "
          f"peak {rss_merge:.0f} MiB; duckdb {d_merge:.2f}s; ratio {m['merge_ratio']:.2f}")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "warehouse.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
