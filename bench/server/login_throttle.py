#!/usr/bin/env python3
"""Sign-in throttling under a password-guessing attack, on loopback.

Starts `socle serve` on a fresh project with two users, then measures another user's
requests (a sign-in from 127.0.0.2 every 250 ms, and `GET /api/me` with its session in a
loop) for --seconds alone (the baseline), then again while --attackers processes guess
the admin's password from 127.0.0.1 as fast as they can. Prints the p50/p99 of each, the
ratio to the baseline, and what the attackers got (how many guesses were checked, how
many answered 429 at once). The target (docs/server.md): others' p99 <= 2x the baseline.

    python3 bench/server/login_throttle.py --socle target/release/socle
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import subprocess
import tempfile
import threading
import time

PASSWORD = "a long enough passphrase"


def request(port, method, path, body=None, headers=None, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    data = json.dumps(body).encode() if body is not None else None
    h = {"Content-Type": "application/json"} if data else {}
    h.update(headers or {})
    t0 = time.perf_counter()
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    payload = resp.read()
    elapsed = time.perf_counter() - t0
    cookie = resp.getheader("set-cookie")
    conn.close()
    return resp.status, elapsed, payload, cookie


def attacker(port, stop_at, rate, out):
    """Guesses the admin's password at `rate` sign-ins a second (0: as fast as it can)."""
    counts = {}
    while time.time() < stop_at:
        t0 = time.time()
        status, _, _, _ = request(port, "POST", "/api/login", {"username": "admin", "password": "guess-" + os.urandom(6).hex()})
        counts[status] = counts.get(status, 0) + 1
        if rate:
            time.sleep(max(0.0, 1 / rate - (time.time() - t0)))
    out.put(counts)


def probe(port, seconds):
    """The other user's latencies: (sign-ins, /api/me), in seconds."""
    logins, mes = [], []
    stop_at = time.time() + seconds
    next_login = 0.0
    cookie = None
    while time.time() < stop_at:
        if time.time() >= next_login or cookie is None:
            status, t, _, set_cookie = request(port, "POST", "/api/login", {"username": "victim", "password": PASSWORD}, source="127.0.0.2")
            assert status == 200, status
            logins.append(t)
            cookie = set_cookie.split(";")[0]
            next_login = time.time() + 0.25
        status, t, _, _ = request(port, "GET", "/api/me", headers={"Cookie": cookie}, source="127.0.0.2")
        assert status == 200, status
        mes.append(t)
        time.sleep(0.01)
    return logins, mes


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--attackers", type=int, default=16)
    ap.add_argument("--rate", type=float, default=16, help="sign-ins a second per attacker (0: flat out)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    subprocess.run([args.socle, "init", "proj"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    proj = os.path.join(tmp, "proj")
    subprocess.run([args.socle, "users", "add", "victim", "--role", "viewer", "--password-stdin"],
                   cwd=proj, input=PASSWORD + "\n", text=True, check=True, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([args.socle, "serve", "--port", "0"],
                              cwd=proj, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = None
    for line in server.stderr:  # the daemon's log says where it listens
        m = re.search(r"listening on http://[^ ]*:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    assert port, "the server did not start"
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    try:
        # Warm up (the first sign-in builds the dummy hash, etc.).
        probe(port, 1)
        base_logins, base_mes = probe(port, args.seconds)
        out = mp.Queue()
        stop_at = time.time() + args.seconds + 1
        procs = [mp.Process(target=attacker, args=(port, stop_at, args.rate, out)) for _ in range(args.attackers)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        logins, mes = probe(port, args.seconds)
        totals = {}
        for _ in procs:
            for k, v in out.get().items():
                totals[k] = totals.get(k, 0) + v
        for p in procs:
            p.join()
        guesses = sum(totals.values())
        print(f"attack: {args.attackers} clients at {args.rate or 'full'}/s each, {guesses} sign-ins in {args.seconds + 1:.0f} s "
              f"({guesses / (args.seconds + 1):.0f}/s): {totals.get(401, 0)} passwords checked (401), "
              f"{totals.get(429, 0)} answered 429 at once, other {({k: v for k, v in totals.items() if k not in (401, 429)})}")
        for name, base, under in [("sign-in", base_logins, logins), ("GET /api/me", base_mes, mes)]:
            b99, u99 = pct(base, 99), pct(under, 99)
            print(f"{name:12} baseline p50 {pct(base, 50):7.1f} ms p99 {b99:7.1f} ms (n={len(base)}) | "
                  f"under attack p50 {pct(under, 50):7.1f} ms p99 {u99:7.1f} ms (n={len(under)}) | p99 ratio {u99 / b99:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
