"""Connection flood: can one local client lock everyone out of `socle serve`?

1. A fresh project (`socle init`, default server settings) and `socle serve` on loopback.
2. Attackers on 127.0.0.1 (`--procs` processes, `--sockets` connections in all, each
   process raising its soft limit of open files to the hard limit) open connections that
   send nothing, half a request head, or a head and half a body, and hold them. Every
   second each attacker polls its sockets and opens again the ones the server closed (at
   most `--reopen` a second per process), as a persistent attacker would.
3. Meanwhile a victim on 127.0.0.2 calls `/healthz` every 50 ms and, signed in (session
   cookie), `/api/me` and `/api/project` every 250 ms, each on a new connection with a
   5 s timeout. Latencies are measured from the client.
4. Reported: the victim's p50/p99/max per route and its failures; what the attackers
   held (opened, closed by the server, held at the end); the server's open file
   descriptors (peak) and RSS. Saved to bench/results/flood.json.

Run it with bench/server/flood.sh (SOCLE=path/to/socle to measure another build).
"""
import argparse
import json
import os
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "bench", "data", "flood")
RESULTS = os.path.join(ROOT, "bench", "results")

KINDS = [
    b"",
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{\"username\": \"adm",
]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def attacker(port, count, seconds, reopen):
    """Holds `count` connections for `seconds`; prints a JSON summary."""
    raise_nofile()
    socks = {}
    opened = failed = closed = 0

    def open_one(i):
        nonlocal opened, failed
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.25)
        try:
            s.connect(("127.0.0.1", port))
            if KINDS[i % 3]:
                s.send(KINDS[i % 3])
        except OSError:
            s.close()
            failed += 1
            return
        opened += 1
        socks[s.fileno()] = (s, i)

    started = time.time()
    for i in range(count):
        if time.time() - started > seconds:
            break
        open_one(i)
    poller = select.poll()
    for fd in socks:
        poller.register(fd, select.POLLIN | select.POLLRDHUP)
    while time.time() - started < seconds:
        time.sleep(1.0)
        gone = []
        for fd, _ in poller.poll(0):
            s, i = socks[fd]
            try:
                s.setblocking(False)
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                gone.append(fd)
        for fd in gone:
            poller.unregister(fd)
            s, i = socks.pop(fd)
            s.close()
            closed += 1
        for again, fd in enumerate(gone):
            if again >= reopen or time.time() - started > seconds:
                break
            before = set(socks)
            open_one(fd)
            for new in set(socks) - before:
                poller.register(new, select.POLLIN | select.POLLRDHUP)
    print(json.dumps({"opened": opened, "failed": failed, "closed_by_server": closed,
                      "held_at_end": len(socks)}), flush=True)


def call(port, path, cookie=None, timeout=5.0):
    """GET on a new connection from 127.0.0.2; (status, seconds)."""
    t = time.perf_counter()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        s.sendall((head + "\r\n").encode())
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
        status = int(raw.split(b" ", 2)[1]) if raw else 0
    except (OSError, ValueError, IndexError):
        status = 0
    finally:
        s.close()
    return status, time.perf_counter() - t


def login(port, password):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    body = json.dumps({"username": "admin", "password": password}).encode()
    s.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
              b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
              + b"\r\n\r\n" + body)
    raw = b""
    while chunk := s.recv(65536):
        raw += chunk
    cookie = None
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"set-cookie: "):
            cookie = line[12:].split(b";")[0].decode()
    if cookie is None:
        raise SystemExit(f"sign-in failed: {raw[:300]!r}")
    # A one-time password opens a session that may only choose a new one: choose it (the
    # session goes on). A binary that predates the rule has no csrf_token to need it.
    answer = json.loads(raw.split(b"\r\n\r\n", 1)[1] or b"{}")
    if answer.get("must_change_password"):
        body = json.dumps({"current": password, "new": "flood bench passphrase"}).encode()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /api/password HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\nCookie: " + cookie.encode()
                  + b"\r\nX-CSRF-Token: " + answer["csrf_token"].encode()
                  + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        if b" 200 " not in reply.split(b"\r\n", 1)[0]:
            raise SystemExit(f"setting a new password failed: {reply[:300]!r}")
    return cookie


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--sockets", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--reopen", type=int, default=500)
    ap.add_argument("--attacker", nargs=4, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attacker:
        port, count, seconds, reopen = args.attacker
        return attacker(port, count, seconds, reopen)

    shutil.rmtree(DATA, ignore_errors=True)
    os.makedirs(DATA)
    subprocess.run([args.socle, "init", "project"], cwd=DATA, check=True,
                   stdout=subprocess.DEVNULL)
    project = os.path.join(DATA, "project")
    # The daemon's log (stderr) says where it listens; the one-time password is in a file.
    serve_log = open(os.path.join(DATA, "serve.err"), "w")
    server = subprocess.Popen([args.socle, "serve", "--port", "0"], cwd=project,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = None
    for line in server.stderr:
        serve_log.write(line)
        if "listening on http://" in line:
            port = int(line.rsplit(":", 1)[1])
            break
    with open(os.path.join(project, ".socle", "admin-password")) as f:
        password = f.read().strip()
    threading.Thread(target=lambda: [serve_log.write(l) for l in server.stderr], daemon=True).start()
    cookie = login(port, password)
    print(f"server pid {server.pid} on port {port}; open files limit "
          f"{open(f'/proc/{server.pid}/limits').read().split('Max open files')[1].split()[:2]}",
          file=sys.stderr)

    per = args.sockets // args.procs
    attackers = [subprocess.Popen([sys.executable, __file__, "--socle", args.socle, "--attacker",
                                   str(port), str(per), str(args.seconds), str(args.reopen)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(args.procs)]
    lat = {"/healthz": [], "/api/me": [], "/api/project": []}
    fail = {k: 0 for k in lat}
    peak_fds = peak_rss = 0
    started = time.time()
    n = 0
    while time.time() - started < args.seconds:
        routes = ["/healthz"] + (["/api/me", "/api/project"] if n % 5 == 0 else [])
        for route in routes:
            status, took = call(port, route, None if route == "/healthz" else cookie)
            if status == 200:
                lat[route].append(took)
            else:
                fail[route] += 1
        if n % 20 == 0:
            peak_fds = max(peak_fds, fds(server.pid))
            peak_rss = max(peak_rss, rss_mb(server.pid))
        n += 1
        time.sleep(0.05)
    held = [json.loads(a.communicate()[0] or "{}") for a in attackers]
    after, took = call(port, "/healthz")
    server.terminate()
    try:
        server.wait(timeout=30)
        stopped = "yes"
    except subprocess.TimeoutExpired:
        server.kill()
        stopped = "no (killed after 30 s)"

    result = {"sockets": args.sockets, "procs": args.procs, "seconds": args.seconds,
              "attackers": held, "server_peak_open_files": peak_fds,
              "server_peak_rss_mb": round(peak_rss, 1), "healthz_after": after,
              "stopped_on_sigterm": stopped, "routes": {}}
    print(f"{'route':14} {'ok':>6} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for route, values in lat.items():
        ms = [v * 1000 for v in values]
        r = {"ok": len(ms), "failed": fail[route],
             "p50_ms": round(pct(ms, 50), 1) if ms else None,
             "p99_ms": round(pct(ms, 99), 1) if ms else None,
             "max_ms": round(max(ms), 1) if ms else None}
        result["routes"][route] = r
        print(f"{route:14} {r['ok']:>6} {r['failed']:>6} {r['p50_ms']!s:>8} {r['p99_ms']!s:>8} "
              f"{r['max_ms']!s:>8}")
    for i, h in enumerate(held):
        print(f"attacker {i}: {h}")
    print(f"server: peak open files {peak_fds}, peak RSS {peak_rss:.0f} MB; /healthz after the "
          f"flood: {after}; stopped on SIGTERM: {stopped}")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "flood.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
