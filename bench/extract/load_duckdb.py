"""DuckDB side of the extraction benchmark: what a DuckDB user writes to load a CSV into a
keyed table. Runs as its own process (the driver measures it): a file-backed database, a
table with a primary key, `INSERT OR REPLACE ... SELECT * FROM read_csv(...)` (DuckDB's
upsert: the same semantics as a merge on `id`). Column types are the ones socle and dlt
infer from this file (amount as DOUBLE, created_at as a UTC timestamp).

Usage: load_duckdb.py CSV DATABASE   -> prints {"rows": N, "load_s": ...} as JSON
"""
import json
import sys
import time

import duckdb


def main():
    csv_path, db_path = sys.argv[1], sys.argv[2]
    con = duckdb.connect(db_path)
    con.execute("""
        CREATE TABLE events (
            id BIGINT PRIMARY KEY,
            customer_id BIGINT,
            event_type VARCHAR,
            amount DOUBLE,
            currency VARCHAR,
            created_at TIMESTAMPTZ,
            country VARCHAR,
            note VARCHAR
        )""")
    start = time.perf_counter()
    con.execute("INSERT OR REPLACE INTO events SELECT * FROM read_csv(?, header = true)", [csv_path])
    con.execute("CHECKPOINT")
    load_s = time.perf_counter() - start
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    print(json.dumps({"rows": rows, "load_s": load_s, "duckdb": duckdb.__version__}))


if __name__ == "__main__":
    main()
