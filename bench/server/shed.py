"""Load shedding of `POST /api/query` (issue 16, item 4): open-loop load at RATE requests/s
for SECONDS seconds (bench/server/loadgen: latency from the moment each request was due)
of a small query, a GROUP BY over a 5,000-row table, on a fresh project.

The server must answer every request within `server.query_queue_wait` plus
`server.query_timeout` (a query that found no slot in time gets 503 with `Retry-After`),
and the queries it admits stay fast. Printed (and saved to bench/results/shed.json): the
answers by status, the share of 503s, p50/p99/max of the admitted (200) answers and of all
answers, and whether the slowest answer came within queue wait + timeout.

Usage: python3 bench/server/shed.py --socle BIN --loadgen BIN [--rate 1000] [--seconds 30]
  [--server-yml 'query_queue_wait: 500ms']   (extra `server:` lines; none for a binary
  that predates them)
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "..", "results")
SQL = "SELECT category, count(*) AS n, sum(amount) AS total FROM raw.src GROUP BY 1 ORDER BY 1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--server-yml", action="append", default=[])
    args = ap.parse_args()
    socle = os.path.abspath(args.socle)
    tmp = tempfile.mkdtemp(prefix="socle-shed-")
    subprocess.run([socle, "init", "p"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    project = os.path.join(tmp, "p")
    if args.server_yml:
        with open(os.path.join(project, "socle.yml"), "a") as f:
            f.write("\nserver:\n" + "".join(f"  {line}\n" for line in args.server_yml))
    subprocess.run([socle, "sql", "CREATE SCHEMA IF NOT EXISTS raw; CREATE TABLE raw.src AS SELECT value AS id, "
                    "CAST(value % 11 AS VARCHAR) AS category, (value * 7919 % 1000) / 10.0 AS amount "
                    "FROM generate_series(1, 5000)"], cwd=project, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([socle, "users", "add", "a", "--role", "analyst", "--password-stdin"], cwd=project,
                   input="a long enough passphrase", text=True, check=True, stdout=subprocess.DEVNULL)
    token = [l for l in subprocess.run([socle, "tokens", "create", "t", "--user", "a", "--role", "analyst"],
                                       cwd=project, check=True, capture_output=True, text=True).stdout.splitlines()
             if l.startswith("socle_")][0]
    port = free_port()
    server = subprocess.Popen([socle, "serve", "--port", str(port)], cwd=project,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
        project_info = subprocess.run(
            ["curl", "-s", "-H", f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}/api/project"],
            capture_output=True, text=True).stdout
        limits = json.loads(project_info).get("limits", {}) if project_info.startswith("{") else {}
        gen = subprocess.run([args.loadgen, "--url", f"http://127.0.0.1:{port}", "--rate", str(args.rate),
                              "--seconds", str(args.seconds), "--header", f"Authorization: Bearer {token}",
                              "--post", "/api/query=" + json.dumps({"sql": SQL})],
                             check=True, capture_output=True, text=True)
        load = json.loads(gen.stdout)
    finally:
        server.terminate()
        server.wait()
    total = load["requests"]
    statuses = load["statuses"]
    admitted = load["by_status"].get("200", {})
    timeout_s = limits.get("query_timeout_seconds", 30)
    wait_s = limits.get("query_queue_wait_seconds")
    result = {
        "binary": socle, "server_yml": args.server_yml, "rate": args.rate, "seconds": args.seconds,
        "requests": total, "statuses": statuses, "errors": load["errors"],
        "share_503": statuses.get("503", 0) / total if total else None,
        "admitted_p50_ms": admitted.get("p50_ms"), "admitted_p99_ms": admitted.get("p99_ms"),
        "admitted_max_ms": admitted.get("max_ms"),
        "all_p99_ms": load["p99_ms"], "all_max_ms": load["max_ms"],
        "queue_wait_s": wait_s, "query_timeout_s": timeout_s,
        "within_wait_plus_timeout": (load["max_ms"] <= ((wait_s or 0) + timeout_s) * 1000) and load["errors"] == 0,
        "by_status": load["by_status"],
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "shed.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
