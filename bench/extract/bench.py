"""Extraction: load a generated CSV (10M rows, about 1 GB) into a keyed warehouse table.

Three tools, each as its own process, on the same file, same machine, same run:

- socle: `socle extract bench` with a `files` source, stream `events`, `write: merge`,
  `primary_key: [id]`, into the empty table raw.bench__events. The project's state
  (.socle: lake, metadata database) is removed before every run, so each run merges into a
  new, empty table; `--full-refresh` is not used because it turns a merge stream into a
  replace (overwrite), which skips the merge path. socle also lands the records as raw
  Parquet files in the lake before loading them (see docs/sources.md): it writes the data
  twice, the other two once.
- dlt (PyPI `dlt[duckdb]`): a pipeline into a DuckDB file, write_disposition="merge",
  primary_key="id" (load_dlt.py; reader chosen with --dlt-reader, default dlt's
  filesystem source + `read_csv_duckdb` on the Arrow path).
- DuckDB (PyPI `duckdb`, through Python): `CREATE TABLE ... PRIMARY KEY (id)` then
  `INSERT OR REPLACE INTO events SELECT * FROM read_csv(...)` into a file-backed database
  (load_duckdb.py).

Measured per run: wall time of the process (start-up included) and peak memory of its
process tree: the larger of the kernel's max RSS for the process (wait4, as /usr/bin/time
-v reports it) and the sum of the RSS of the process and its descendants polled from /proc
every 50 ms. Runs are interleaved (socle, dlt, duckdb, socle, ...); the median time and
the maximum peak memory over --repeat runs are kept. The CSV is read from the page cache
(generated just before, or read once before timing). MB is 10^6 bytes of CSV.

Each tool's load is verified: the table must hold exactly the generated number of rows.
"""
import argparse
import datetime
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(ROOT, "bench", "data", "extract")
RESULTS = os.path.join(ROOT, "bench", "results")
CSV = os.path.join(DATA, "events.csv")
TOOLS = ["socle", "dlt", "duckdb"]

# ---------------------------------------------------------------------------------------
# Data


EVENT_TYPES = ["page_view"] * 6 + ["add_to_cart"] * 2 + ["checkout", "purchase", "purchase",
                                                          "refund", "signup", "login"]
CURRENCIES = ["EUR"] * 5 + ["USD"] * 3 + ["GBP", "CHF", "SEK", "PLN"]
COUNTRIES = ["FR", "DE", "ES", "IT", "BE", "NL", "CH", "PT", "SE", "PL", "GB", "US", "IE",
             "AT", "DK", "NO", "FI", "CZ", "RO", "GR"]
PHRASES = ["delivered late", "gift wrap requested", "promo SPRING24 applied", "paid by card",
           "left at reception", "second attempt", "customer called back", "address corrected",
           "express shipping", "split payment", "loyalty points used", "first order",
           "returned unopened", "partial refund", "voucher expired", "gift card balance"]
CHANNELS = ["web shop", "mobile app", "call centre", "partner API", "marketplace"]


def generate(rows):
    """Writes CSV (deterministic, streamed in blocks) unless it exists with `rows` rows."""
    sidecar = CSV + ".rows"
    if os.path.exists(CSV) and os.path.exists(sidecar):
        with open(sidecar) as f:
            if f.read().strip() == str(rows):
                return False
    os.makedirs(DATA, exist_ok=True)
    print(f"generating {CSV} ({rows:,} rows) ...", file=sys.stderr)
    started = time.perf_counter()
    rng = random.Random(20240601)
    rnd = rng.random
    start_day = datetime.date(2024, 1, 1)
    days = {}
    span = 366 * 86400 - 1  # created_at rises through 2024, with some jitter
    n_phrases, n_events, n_cur = len(PHRASES), len(EVENT_TYPES), len(CURRENCIES)
    n_countries, n_channels = len(COUNTRIES), len(CHANNELS)
    tmp = CSV + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write("id,customer_id,event_type,amount,currency,created_at,country,note\n")
        block = []
        for i in range(rows):
            t = i * span // rows + int(rnd() * 600)
            t = min(t, span)
            day = t // 86400
            d = days.get(day)
            if d is None:
                d = days[day] = (start_day + datetime.timedelta(days=day)).isoformat()
            sec = t % 86400
            cents = int(rnd() * 500_000)
            r = rnd()
            a = PHRASES[int(rnd() * n_phrases)]
            n = int(rnd() * 1_000_000)
            if r < 0.10:
                note = ""  # NULL
            elif r < 0.20:
                note = f'"{a}, {PHRASES[n % n_phrases]} (ref {n})"'  # comma inside quotes
            elif r < 0.21:
                note = f'"{a}: customer wrote ""thanks, all good"" (ref {n})"'  # quotes inside quotes
            else:
                note = f"{a} via {CHANNELS[n % n_channels]} - ref {n}"
            block.append(
                f"{1_000_000 + i},{1 + int(rnd() * 1_000_000)},{EVENT_TYPES[int(rnd() * n_events)]},"
                f"{cents // 100}.{cents % 100:02d},{CURRENCIES[int(rnd() * n_cur)]},"
                f"{d}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z,"
                f"{COUNTRIES[int(rnd() * n_countries)]},{note}\n")
            if len(block) == 10_000:
                f.write("".join(block))
                block.clear()
        f.write("".join(block))
    os.replace(tmp, CSV)
    with open(sidecar, "w") as f:
        f.write(f"{rows}\n")
    print(f"generated {os.path.getsize(CSV) / 1e6:,.0f} MB in {time.perf_counter() - started:.0f}s",
          file=sys.stderr)
    return True


def warm_cache(path):
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


# ---------------------------------------------------------------------------------------
# Measuring a process tree


def tree_rss(pid, page):
    """Sum of the RSS (bytes) of pid and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total


def measure(cmd, env=None, cwd=None):
    """Runs cmd; returns (seconds, peak MiB of the process tree, stdout)."""
    page = os.sysconf("SC_PAGE_SIZE")
    peak = [0]
    done = threading.Event()
    out_path = os.path.join(DATA, ".stdout")
    with open(out_path, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True)

        def poll():
            while not done.wait(0.05):
                peak[0] = max(peak[0], tree_rss(proc.pid, page))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        err = proc.stderr.read()  # drained while it runs
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        poller.join()
    with open(out_path) as f:
        stdout = f.read()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{stdout[-2000:]}\n{err[-4000:]}")
    return elapsed, max(peak[0], usage.ru_maxrss * 1024) / 2**20, stdout


# ---------------------------------------------------------------------------------------
# The three tools


def socle_project(socle):
    project = os.path.join(DATA, "socle_project")
    if not os.path.exists(os.path.join(project, "socle.yml")):
        subprocess.run([socle, "init", project], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(project, "sources", "bench.yml"), "w") as f:
        f.write(f"type: files\nstreams:\n  events:\n    path: {CSV}\n    write: merge\n    primary_key: [id]\n")
    return project


def run_socle(socle, project, rows):
    shutil.rmtree(os.path.join(project, ".socle"), ignore_errors=True)
    t, mib, out = measure([socle, "--project", project, "extract", "bench", "--format", "json"])
    reports = json.loads(out)
    r = reports[0]
    assert r["status"] == "success" and r["rejected"] == 0 and r["rows_read"] == rows, \
        f"socle extract report: {json.dumps(r)[:2000]}"
    count = subprocess.run([socle, "--project", project, "sql", "--format", "json",
                            "select count(*) as n from raw.bench__events"],
                           check=True, capture_output=True, text=True).stdout
    n = json.loads(count)[0]["n"]
    assert n == rows, f"socle: raw.bench__events has {n} rows, expected {rows}"
    return t, mib, {k: r.get(k) for k in ["rows_read", "rows_inserted", "rows_updated", "bytes", "duration_ms",
                                           "table_version", "raw_files"]}


def run_dlt(reader, chunk_size, rows):
    work = os.path.join(DATA, "dlt")
    shutil.rmtree(work, ignore_errors=True)
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false")
    t, mib, out = measure([sys.executable, os.path.join(HERE, "load_dlt.py"), CSV, work,
                           "--reader", reader, "--chunk-size", str(chunk_size)], env=env)
    info = json.loads(out.strip().splitlines()[-1])
    assert info["rows"] == rows, f"dlt: events has {info['rows']} rows, expected {rows}"
    return t, mib, info


def run_duckdb(rows):
    work = os.path.join(DATA, "duckdb")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t, mib, out = measure([sys.executable, os.path.join(HERE, "load_duckdb.py"), CSV,
                           os.path.join(work, "events.duckdb")])
    info = json.loads(out.strip().splitlines()[-1])
    assert info["rows"] == rows, f"duckdb: events has {info['rows']} rows, expected {rows}"
    return t, mib, info


def version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--rows", type=int, default=int(os.environ.get("ROWS", 10_000_000)))
    ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", 3)))
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of socle,dlt,duckdb")
    ap.add_argument("--dlt-reader", default="duckdb", choices=["duckdb", "pyarrow", "pandas", "csv"],
                    help="how the dlt pipeline reads the CSV (see load_dlt.py)")
    ap.add_argument("--dlt-chunk-size", type=int, default=100_000)
    args = ap.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        raise SystemExit(f"unknown tools: {', '.join(sorted(unknown))} (use {','.join(TOOLS)})")

    if "socle" in tools and subprocess.run([args.socle, "extract", "--help"], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL).returncode != 0:
        raise SystemExit(f"{args.socle} has no `extract` command (stale binary? run without SKIP_BUILD=1), "
                         "or leave socle out with --tools dlt,duckdb")
    if not generate(args.rows):
        warm_cache(CSV)
    size = os.path.getsize(CSV)
    project = socle_project(args.socle) if "socle" in tools else None

    runs = {t: [] for t in tools}
    for i in range(args.repeat):
        for tool in tools:
            if tool == "socle":
                res = run_socle(args.socle, project, args.rows)
            elif tool == "dlt":
                res = run_dlt(args.dlt_reader, args.dlt_chunk_size, args.rows)
            else:
                res = run_duckdb(args.rows)
            runs[tool].append(res)
            print(f"  run {i + 1}/{args.repeat} {tool:<7}{res[0]:8.2f}s {res[1]:8.0f} MiB", file=sys.stderr)

    labels = {"socle": "socle extract", "dlt": f"dlt ({args.dlt_reader})", "duckdb": "duckdb read_csv"}
    results = {
        "rows": args.rows, "csv_bytes": size, "repeat": args.repeat, "cpus": os.cpu_count(),
        "versions": {"socle": version([args.socle, "--version"]) if "socle" in tools else None},
        "dlt_reader": args.dlt_reader if "dlt" in tools else None,
        "tools": {},
    }
    print(f"\nload {args.rows:,} rows, {size / 1e6:,.0f} MB of CSV into a table keyed on id "
          f"(median of {args.repeat}, peak = max):")
    print(f"{'tool':<18}{'seconds':>9}{'rows/s':>13}{'MB/s':>9}{'peak MiB':>10}")
    for tool in tools:
        secs = statistics.median(r[0] for r in runs[tool])
        peak = max(r[1] for r in runs[tool])
        detail = runs[tool][-1][2]
        results["tools"][tool] = {"seconds": secs, "rows_per_s": args.rows / secs, "mb_per_s": size / 1e6 / secs,
                                  "peak_mib": peak, "runs_s": [r[0] for r in runs[tool]],
                                  "runs_peak_mib": [r[1] for r in runs[tool]], "detail": detail}
        if tool == "dlt":
            results["versions"]["dlt"] = detail.get("dlt")
        if tool == "duckdb":
            results["versions"]["duckdb"] = detail.get("duckdb")
        print(f"{labels[tool]:<18}{secs:>9.2f}{args.rows / secs:>13,.0f}{size / 1e6 / secs:>9.1f}{peak:>10.0f}")

    r = results["tools"]
    if "socle" in r:
        s = r["socle"]
        print()
        if "dlt" in r:
            ratio = s["seconds"] / r["dlt"]["seconds"]
            results["socle_vs_dlt"] = {"time_ratio": ratio, "speedup": 1 / ratio,
                                       "memory_ratio": s["peak_mib"] / r["dlt"]["peak_mib"], "target_met": ratio < 1}
            print(f"socle vs dlt:    {ratio:5.2f}x the time ({1 / ratio:.1f}x as fast), "
                  f"{s['peak_mib'] / r['dlt']['peak_mib']:.2f}x the memory   "
                  f"target faster than dlt: {'met' if ratio < 1 else 'MISSED'}")
        if "duckdb" in r:
            ratio = s["seconds"] / r["duckdb"]["seconds"]
            results["socle_vs_duckdb"] = {"time_ratio": ratio, "memory_ratio": s["peak_mib"] / r["duckdb"]["peak_mib"],
                                          "target_met": ratio <= 2}
            print(f"socle vs duckdb: {ratio:5.2f}x the time, "
                  f"{s['peak_mib'] / r['duckdb']['peak_mib']:.2f}x the memory   "
                  f"target within 2x of DuckDB: {'met' if ratio <= 2 else 'MISSED'}")
        results["socle_peak_under_1gib"] = s["peak_mib"] < 1024
        print(f"socle peak memory {s['peak_mib']:.0f} MiB   target under 1 GiB: "
              f"{'met' if s['peak_mib'] < 1024 else 'MISSED'}")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "extract.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
