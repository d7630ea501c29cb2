"""A large query answer through `POST /api/query`: the peak memory of the server and of its
query process while one client reads a big answer (issue 16, item 6).

A fresh project (`socle init`) is served; an analyst asks for
`select repeat('x', ROW_BYTES) from generate_series(1, ROWS)` (1,000 rows of 1 MB by
default: a 1 GB answer), as JSON or CSV, and reads the answer to the end. Every 50 ms the
peak resident memory (`VmHWM`) of the server and of its query process (`socle
query-worker`) is read from /proc. Printed (and saved to bench/results/answer.json):
status, bytes received, the headers and trailers that state a cut, seconds, and each
process's RSS before the query and its peak during it.

Usage: python3 bench/server/answer.py --socle target/debug/socle [--format csv]
  [--rows 1000] [--row-bytes 1000000] [--cap 64MiB]   (--cap sets server.max_answer_bytes;
  leave it out for a binary that predates it)
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "..", "results")


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def children(pid, name):
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []
    out = []
    for c in found:
        try:
            with open(f"/proc/{c}/cmdline", "rb") as f:
                if name.encode() in f.read().split(b"\0"):
                    out.append(c)
        except FileNotFoundError:
            pass
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--format", default="json", choices=["json", "csv"])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--row-bytes", type=int, default=1_000_000)
    ap.add_argument("--cap", help="server.max_answer_bytes (e.g. 64MiB)")
    args = ap.parse_args()
    socle = os.path.abspath(args.socle)
    tmp = tempfile.mkdtemp(prefix="socle-answer-")
    subprocess.run([socle, "init", "p"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    project = os.path.join(tmp, "p")
    if args.cap:
        with open(os.path.join(project, "socle.yml"), "a") as f:
            f.write(f"\nserver:\n  max_answer_bytes: {args.cap}\n")
    subprocess.run([socle, "users", "add", "a", "--role", "analyst", "--password-stdin"], cwd=project,
                   input="a long enough passphrase", text=True, check=True, stdout=subprocess.DEVNULL)
    token = [l for l in subprocess.run([socle, "tokens", "create", "t", "--user", "a", "--role", "analyst"],
                                       cwd=project, check=True, capture_output=True, text=True).stdout.splitlines()
             if l.startswith("socle_")][0]
    port = free_port()
    server = subprocess.Popen([socle, "serve", "--port", str(port)], cwd=project,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = {"binary": socle, "format": args.format, "rows": args.rows, "row_bytes": args.row_bytes,
              "cap": args.cap}
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
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "TE": "trailers"}
        path = "/api/query" + ("?format=csv" if args.format == "csv" else "")
        # A first small query starts the query process: the baseline.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("POST", path, body=json.dumps({"sql": "SELECT 1 AS one"}), headers=headers)
        conn.getresponse().read()
        time.sleep(2)
        worker = (children(server.pid, "query-worker") or [None])[0]
        result["server_rss_before_mib"] = status_kib(server.pid, "VmRSS") / 1024
        result["worker_rss_before_mib"] = status_kib(worker, "VmRSS") / 1024 if worker else None
        peaks = {"server": 0, "worker": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                peaks["server"] = max(peaks["server"], status_kib(server.pid, "VmHWM"))
                for w in children(server.pid, "query-worker"):
                    peaks["worker"] = max(peaks["worker"], status_kib(w, "VmHWM"))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        sql = f"select repeat('x', {args.row_bytes}) AS x from generate_series(1, {args.rows})"
        started = time.time()
        conn.request("POST", path, body=json.dumps({"sql": sql}), headers=headers)
        resp = conn.getresponse()
        received, tail = 0, b""
        try:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
                tail = (tail + chunk)[-400:]
            result["complete"] = True
        except http.client.IncompleteRead as e:
            received += len(e.partial)
            result["complete"] = False
        result["seconds"] = time.time() - started
        time.sleep(1)
        done.set()
        sampler.join()
        result["status"] = resp.status
        result["bytes"] = received
        result["headers"] = {k: v for k, v in resp.getheaders() if k.lower().startswith(("x-socle", "transfer", "content-length", "trailer"))}
        result["tail"] = tail[-200:].decode("utf-8", "replace")
        result["server_peak_rss_mib"] = peaks["server"] / 1024
        result["worker_peak_rss_mib"] = peaks["worker"] / 1024
    finally:
        server.terminate()
        server.wait()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "answer.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
