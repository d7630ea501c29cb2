"""dlt side of the extraction benchmark: a dlt pipeline loading the CSV into DuckDB with
write_disposition="merge", primary_key="id". Runs as its own process (the driver measures
it), with its pipeline folder and DuckDB file under WORK_DIR.

Readers (--reader):
  duckdb   (default) dlt's filesystem source with its `read_csv_duckdb` reader and
           use_pyarrow=True: the documented readers, on the Arrow path, which dlt's docs
           recommend for speed (Arrow batches skip row-by-row normalization). This is dlt's
           fast path; the chunk size is raised from the default 5,000 to --chunk-size.
  pyarrow  a resource of our own yielding pyarrow.csv RecordBatches (the "yield Arrow
           tables" pattern from dlt's performance docs).
  pandas   the filesystem source's `read_csv` reader (pandas, yields rows as dicts): the
           first reader dlt's filesystem docs show. Needs pandas.
  csv      a resource yielding lists of dicts from Python's csv module: the plain-Python way.
           The pandas and csv readers go through dlt's row-by-row normalizer: slow.

Usage: load_dlt.py CSV WORK_DIR [--reader duckdb] [--chunk-size N]
Prints {"rows": N, "steps": {...}, "dlt": version} as JSON on stdout.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402


def resource_for(reader, csv_path, chunk_size):
    folder, name = os.path.split(os.path.abspath(csv_path))
    if reader in ("duckdb", "pandas"):
        from dlt.sources.filesystem import filesystem, read_csv, read_csv_duckdb

        files = filesystem(bucket_url="file://" + folder, file_glob=name)
        if reader == "duckdb":
            return files | read_csv_duckdb(use_pyarrow=True, chunk_size=chunk_size)
        return files | read_csv(chunksize=chunk_size)
    if reader == "pyarrow":
        import pyarrow.csv as pv

        @dlt.resource
        def events():
            reader = pv.open_csv(csv_path, read_options=pv.ReadOptions(block_size=16 << 20),
                                 convert_options=pv.ConvertOptions(strings_can_be_null=True))
            for batch in reader:
                yield batch

        return events()
    if reader == "csv":
        import csv

        @dlt.resource
        def events():
            with open(csv_path, newline="") as f:
                chunk = []
                for row in csv.DictReader(f):
                    chunk.append(row)
                    if len(chunk) >= chunk_size:
                        yield chunk
                        chunk = []
                if chunk:
                    yield chunk

        return events()
    raise SystemExit(f"unknown reader {reader}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("work_dir")
    ap.add_argument("--reader", default="duckdb", choices=["duckdb", "pyarrow", "pandas", "csv"])
    ap.add_argument("--chunk-size", type=int, default=100_000)
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    pipeline = dlt.pipeline(
        pipeline_name="bench_extract",
        pipelines_dir=os.path.join(args.work_dir, "pipelines"),
        destination=dlt.destinations.duckdb(os.path.join(args.work_dir, "bench.duckdb")),
        dataset_name="raw",
    )
    resource = resource_for(args.reader, args.csv, args.chunk_size)
    start = time.perf_counter()
    pipeline.run(resource, table_name="events", write_disposition="merge", primary_key="id")
    run_s = time.perf_counter() - start
    steps = {}
    for step in pipeline.last_trace.steps:
        if step.started_at and step.finished_at:
            steps[step.step] = (step.finished_at - step.started_at).total_seconds()
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM events")[0][0]
    print(json.dumps({"rows": rows, "run_s": run_s, "steps": steps, "reader": args.reader,
                      "dlt": dlt.__version__}))


if __name__ == "__main__":
    sys.exit(main())
