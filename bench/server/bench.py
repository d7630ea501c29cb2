"""The server: idle memory with a 200-table catalog (beside Airflow 3's api-server and
scheduler, idle), server time of every UI page, and a loopback load test of the catalog
and query endpoints.

1. A generated project: 20 raw tables (5,000 rows each, loaded with `socle sql`) declared
   as dbt sources, 100 staging models and 80 marts joining two of them (tables), every
   model and column described in schema YAML with `unique`/`not_null` tests: 200 tables.
   `socle build` materializes it; three runs of its pipeline fill the grid. The pipeline
   is scheduled from 2099, so an idle server has nothing to do.
2. `socle serve` (release build) starts; its RSS is read after 10 s (idle, nothing asked
   yet: it has read the catalog at start, in a child process), then after the catalog has been read and every catalog and pipeline page's API
   calls made, then after the SQL page's query too (idle again, 5 s later each time). The
   RSS counts the server's child processes: the query process (`socle query-worker`),
   which runs queries, and the catalog reader while it reads. After the load tests it is
   read again once the query process has stopped (`server.query_idle`, 20 s here), and
   after a run of the pipeline (the build of the 180 models, in task processes).
3. UI pages: the API calls each page makes, timed from the client on loopback
   (keep-alive), 20 times each after a first call; median and max are reported.
4. Load: bench/server/loadgen (open loop, latency from the moment each request was due)
   sends 1,000 requests/s for 30 s, once over the catalog endpoints (tables, a table, the
   lineage, search) and once over POST /api/query (a GROUP BY over a 5,000-row table);
   p50/p90/p99/max and errors are reported, with the server's peak RSS.
5. Airflow 3 (its own virtualenv, ~/.cache/airflow-venv): `airflow api-server` and
   `airflow scheduler` (and the `dag-processor` Airflow 3 needs to read DAG files, reported
   apart) on a SQLite metadata database with one DAG; the RSS of each process tree is read
   after 60 s idle.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(ROOT, "bench", "data", "server")
RESULTS = os.path.join(ROOT, "bench", "results")
PROJECT = os.path.join(DATA, "project")
RAW, STAGING, MARTS = 20, 100, 80


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_project(socle):
    shutil.rmtree(PROJECT, ignore_errors=True)
    write(os.path.join(PROJECT, "socle.yml"), "name: catalog200\nserver:\n  catalog_refresh: 1h\n  query_idle: 20s\n")
    write(os.path.join(PROJECT, "dbt_project.yml"),
          "name: catalog200\nversion: '1.0'\nprofile: catalog200\nmodels:\n  catalog200:\n"
          "    +materialized: table\n    staging:\n      +schema: staging\n    marts:\n      +schema: marts\n")
    sql = ["CREATE SCHEMA IF NOT EXISTS raw;"]
    sources = ["version: 2", "sources:", "  - name: raw", "    schema: raw", "    tables:"]
    for i in range(RAW):
        sql.append(
            f"CREATE TABLE raw.src_{i} AS SELECT value AS id, value % 37 AS customer_id, "
            f"CAST(value % 11 AS VARCHAR) AS category, (value * 7919 % 1000) / 10.0 AS amount, "
            f"DATE '2024-01-01' + CAST(value % 366 AS INT) AS day FROM generate_series(1, 5000);")
        sources += [f"      - name: src_{i}", f"        description: Raw export number {i} of the back office.",
                    "        columns:", "          - name: id", "            description: Row id.",
                    "            tests: [unique, not_null]"]
    write(os.path.join(PROJECT, "load.sql"), "\n".join(sql) + "\n")
    write(os.path.join(PROJECT, "models", "sources.yml"), "\n".join(sources) + "\n")
    schema = ["version: 2", "models:"]
    for i in range(STAGING):
        write(os.path.join(PROJECT, "models", "staging", f"stg_{i}.sql"),
              f"SELECT id, customer_id, category, amount, day, amount * 1.2 AS amount_gross\n"
              f"FROM {{{{ source('raw', 'src_{i % RAW}') }}}}\nWHERE amount > {i % 5}\n")
        schema += [f"  - name: stg_{i}", f"    description: Cleaned rows of export {i % RAW}, variant {i}.",
                   "    columns:",
                   "      - name: id", "        description: Row id.", "        tests: [unique, not_null]",
                   "      - name: amount_gross", "        description: Amount with 20% tax."]
    for i in range(MARTS):
        a, b = i % STAGING, (i * 7 + 3) % STAGING
        write(os.path.join(PROJECT, "models", "marts", f"mart_{i}.sql"),
              f"SELECT a.day, a.category, count(*) AS orders, sum(a.amount) AS revenue, max(b.amount) AS top_amount\n"
              f"FROM {{{{ ref('stg_{a}') }}}} a JOIN {{{{ ref('stg_{b}') }}}} b ON a.id = b.id\nGROUP BY a.day, a.category\n")
        schema += [f"  - name: mart_{i}", f"    description: Daily revenue by category from staging {a} and {b}.",
                   "    columns:", "      - name: revenue", "        description: Sum of net amounts.",
                   "        tests: [not_null]"]
    write(os.path.join(PROJECT, "models", "schema.yml"), "\n".join(schema) + "\n")
    write(os.path.join(PROJECT, "pipelines", "daily.yml"),
          "description: Rebuild the catalog.\nschedule: \"0 6 * * *\"\nstart_date: 2099-01-01\ncatchup: false\n"
          "tasks:\n  build:\n    kind: build\n  check:\n    kind: sql\n    sql: SELECT count(*) FROM main_marts.mart_0\n    depends_on: [build]\n")
    run = lambda *a: subprocess.run([socle, *a], cwd=PROJECT, check=True, stdout=subprocess.DEVNULL)
    run("sql", "-f", "load.sql")
    for d in ["2024-01-01", "2024-01-02", "2024-01-03"]:
        run("run", "daily", "--date", d)
    out = subprocess.run([socle, "table", "list", "--format", "json"], cwd=PROJECT, check=True,
                         capture_output=True, text=True).stdout
    tables = [t for t in json.loads(out) if t["kind"] == "table"]
    print(f"project: {len(tables)} tables", file=sys.stderr)
    return len(tables)


def tree_sum(pid, file, field, children=True):
    """KiB summed over `field:` lines of /proc/<p>/<file> for a process and (unless told not
    to) its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/{file}") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
            # Each thread lists the children it started (the query process is started
            # from a runtime thread, not the main one).
            for task in os.listdir(f"/proc/{p}/task") if children else []:
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return total


def rss_tree(pid, field="VmRSS", children=True):
    """KiB of resident memory of a process and its descendants (`VmRSS`, or its private
    heap part `RssAnon`, or the mapped files `RssFile`: program code and libraries)."""
    return tree_sum(pid, "status", field, children)


def pss_tree(pid):
    """KiB of proportional set size of a process and its descendants: a page shared by n
    processes (the query process maps the same executable as the server) counts 1/n in
    each, so the tree's pages are counted once."""
    return tree_sum(pid, "smaps_rollup", "Pss")


def memory(pid):
    return {"rss_mib": rss_tree(pid) / 1024, "anon_mib": rss_tree(pid, "RssAnon") / 1024,
            "file_mib": rss_tree(pid, "RssFile") / 1024, "pss_mib": pss_tree(pid) / 1024}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


class Api:
    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        t = time.perf_counter()
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        ms = (time.perf_counter() - t) * 1000
        if resp.status >= 400:
            raise SystemExit(f"{method} {path}: {resp.status} {data[:300]}")
        return ms, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--airflow", required=True)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--rate", type=int, default=1000)
    args = ap.parse_args()
    socle = args.socle
    tables = make_project(socle)
    subprocess.run([socle, "users", "add", "bench", "--role", "admin", "--password-stdin"], cwd=PROJECT,
                   input="a long enough passphrase", text=True, check=True, stdout=subprocess.DEVNULL)
    token = [l for l in subprocess.run([socle, "tokens", "create", "bench", "--user", "bench", "--role", "analyst"],
                                       cwd=PROJECT, check=True, capture_output=True, text=True).stdout.splitlines()
             if l.startswith("socle_")][0]
    editor_token = [l for l in subprocess.run([socle, "tokens", "create", "bench-run", "--user", "bench", "--role", "editor"],
                                              cwd=PROJECT, check=True, capture_output=True, text=True).stdout.splitlines()
                    if l.startswith("socle_")][0]
    port = free_port()
    server = subprocess.Popen([socle, "serve", "--port", str(port)], cwd=PROJECT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {"tables": tables}
    try:
        wait_port(port)
        time.sleep(10)
        results["socle_idle"] = memory(server.pid)
        api = Api(port, token)
        first, _ = api.call("GET", "/api/tables")
        results["catalog_first_read_ms"] = first
        results["catalog_read_ms"] = json.loads(api.call("GET", "/api/project")[1])["catalog_read_ms"]
        runs = json.loads(api.call("GET", "/api/runs?pipeline=daily")[1])
        run_id = runs[0]["run_id"]
        pages = {
            "/ (page)": [("GET", "/")],
            "pipelines": [("GET", "/api/me"), ("GET", "/api/pipelines"), ("GET", "/api/pipelines/daily?runs=25")],
            "run": [("GET", f"/api/runs/{run_id}"), ("GET", f"/api/runs/{run_id}/logs")],
            "catalog": [("GET", "/api/tables"), ("GET", "/api/sources")],
            "table": [("GET", "/api/tables/main_marts/mart_7"), ("GET", "/api/lineage")],
            "search": [("GET", "/api/search?q=revenue")],
            "sql": [("POST", "/api/query", {"sql": "SELECT category, count(*) AS n, sum(amount) AS total FROM raw.src_3 GROUP BY 1 ORDER BY 1", "limit": 1000})],
        }
        results["pages"] = {}
        for page, calls in pages.items():
            if page == "sql":
                # The catalog pages are done: the memory of a server that has shown them,
                # before any query has loaded the query engine into it.
                time.sleep(5)
                results["socle_after_catalog"] = memory(server.pid)
            for c in calls:
                api.call(*c)
            times = []
            for _ in range(20):
                t = 0.0
                for c in calls:
                    t += api.call(*c)[0]
                times.append(t)
            results["pages"][page] = {"median_ms": statistics.median(times), "max_ms": max(times)}
        time.sleep(5)
        results["socle_after_pages"] = memory(server.pid)
        loads = {
            "catalog": ["--get", "/api/tables", "--get", "/api/tables/main_marts/mart_7", "--get", "/api/lineage",
                        "--get", "/api/search?q=revenue", "--get", "/api/tables/main_staging/stg_42"],
            "query": ["--post", '/api/query={"sql":"SELECT category, count(*) AS n, sum(amount) AS total FROM raw.src_3 GROUP BY 1 ORDER BY 1"}'],
        }
        results["load"] = {}
        for name, spec in loads.items():
            gen = subprocess.Popen([args.loadgen, "--url", f"http://127.0.0.1:{port}", "--rate", str(args.rate),
                                    "--seconds", str(args.seconds), "--header", f"Authorization: Bearer {token}", *spec],
                                   stdout=subprocess.PIPE, text=True)
            peak = 0
            while gen.poll() is None:
                peak = max(peak, rss_tree(server.pid))
                time.sleep(0.2)
            r = json.loads(gen.stdout.read())
            r["server_peak_rss_mib"] = peak / 1024
            results["load"][name] = r
            time.sleep(2)
        time.sleep(5)
        results["socle_after_load"] = memory(server.pid)
        # The query process stops after `query_idle` (20 s here, 1 min by default).
        deadline = time.time() + 120
        while rss_tree(server.pid) != rss_tree(server.pid, "VmRSS", children=False) and time.time() < deadline:
            time.sleep(1)
        time.sleep(2)
        results["socle_after_query_idle"] = memory(server.pid)
        # A pipeline run: the build of the 200 models, in task processes.
        editor = Api(port, editor_token)
        run_id = json.loads(editor.call("POST", "/api/pipelines/daily/trigger", {})[1])["run_id"]
        deadline = time.time() + 900
        while (state := json.loads(editor.call("GET", f"/api/runs/{run_id}")[1])["state"]) in ("running", "queued"):
            if time.time() > deadline:
                raise SystemExit("the pipeline run did not end")
            time.sleep(1)
        if state != "success":
            raise SystemExit(f"the pipeline run ended {state}")
        time.sleep(5)
        results["socle_after_run"] = memory(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    results["airflow"] = airflow_idle(args.airflow)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "server.json"), "w") as f:
        json.dump(results, f, indent=2)
    report(results)


AIRFLOW_DAG = '''
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("daily", schedule="0 6 * * *", start_date=pendulum.datetime(2099, 1, 1), catchup=False):
    build = BashOperator(task_id="build", bash_command="true")
    check = BashOperator(task_id="check", bash_command="true")
    build >> check
'''


def airflow_idle(airflow):
    home = os.path.join(DATA, "airflow")
    shutil.rmtree(home, ignore_errors=True)
    write(os.path.join(home, "dags", "daily.py"), AIRFLOW_DAG)
    env = dict(os.environ, AIRFLOW_HOME=home, AIRFLOW__CORE__LOAD_EXAMPLES="False")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    procs = {
        "api-server": subprocess.Popen([airflow, "api-server", "--port", str(port)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True),
        "scheduler": subprocess.Popen([airflow, "scheduler"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True),
        "dag-processor": subprocess.Popen([airflow, "dag-processor"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True),
    }
    out = {}
    try:
        wait_port(port, 180)
        time.sleep(60)
        for name, p in procs.items():
            out[name] = memory(p.pid)
    finally:
        for p in procs.values():
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    out["api-server + scheduler"] = {k: out["api-server"][k] + out["scheduler"][k] for k in out["scheduler"]}
    return out


def report(r):
    a = r["airflow"]
    print(f"\ncatalog: {r['tables']} tables; read at start in {r['catalog_read_ms']} ms (child process); "
          f"first /api/tables {r['catalog_first_read_ms']:.1f} ms")
    print(f"\n{'idle memory, MiB':<44}{'RSS':>8}{'anon':>8}{'files':>8}{'PSS':>8}")
    rows = [("socle serve, idle (catalog read at start)", r["socle_idle"]),
            ("socle serve, idle after the catalog pages", r["socle_after_catalog"]),
            ("socle serve, idle after pages + a query", r["socle_after_pages"]),
            ("socle serve, idle after the load tests", r["socle_after_load"]),
            ("socle serve, after the query process left", r["socle_after_query_idle"]),
            ("socle serve, idle after a pipeline run", r["socle_after_run"]),
            ("airflow api-server", a["api-server"]), ("airflow scheduler", a["scheduler"]),
            ("airflow api-server + scheduler", a["api-server + scheduler"]),
            ("airflow dag-processor (also needed)", a["dag-processor"])]
    for name, m in rows:
        print(f"{name:<44}{m['rss_mib']:>8.1f}{m['anon_mib']:>8.1f}{m['file_mib']:>8.1f}{m['pss_mib']:>8.1f}")
    for key, label in [("socle_after_catalog", "the catalog pages"), ("socle_after_pages", "pages + a query")]:
        print(f"ratio airflow (api-server + scheduler) / socle idle after {label}: "
              f"{a['api-server + scheduler']['rss_mib'] / r[key]['rss_mib']:.1f}x RSS, "
              f"{a['api-server + scheduler']['anon_mib'] / r[key]['anon_mib']:.1f}x anon, "
              f"{a['api-server + scheduler']['pss_mib'] / r[key]['pss_mib']:.1f}x PSS")
    print(f"\n{'UI page (its API calls)':<24}{'median ms':>11}{'max ms':>9}")
    for page, t in r["pages"].items():
        print(f"{page:<24}{t['median_ms']:>11.1f}{t['max_ms']:>9.1f}")
    print(f"\n{'load (open loop)':<10}{'rate/s':>8}{'requests':>10}{'200':>7}{'503':>7}{'other':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'peak MiB':>10}")
    for name, l in r["load"].items():
        st = l["statuses"]
        other = l["requests"] - st.get("200", 0) - st.get("503", 0)
        print(f"{name:<10}{l['achieved_rate']:>8.0f}{l['requests']:>10}{st.get('200', 0):>7}{st.get('503', 0):>7}{other:>7}"
              f"{l['p50_ms']:>9.1f}{l['p90_ms']:>9.1f}{l['p99_ms']:>9.1f}{l['max_ms']:>9.1f}{l['server_peak_rss_mib']:>10.1f}")


if __name__ == "__main__":
    main()
