"""socle vs Airflow 3 on pipelines of no-op command tasks (`true`).

1. `chain`: 40 tasks, each depending on the previous one.
2. `fan`: one task, 500 tasks after it, one task after those (502 tasks).

socle: `socle run PIPELINE --date 2024-01-02` (a fresh process, run history in SQLite).
Airflow: `airflow dags test DAG 2024-01-02` (Airflow's in-process test mode, BashOperator,
SQLite metadata database). Each is a user's way of running a pipeline once on one
machine; the scheduler daemons would add their polling delays on top.

Also measured: the idle memory of `socle serve` (the scheduler daemon) with the two
pipelines loaded.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "bench", "data", "orchestrate")
RESULTS = os.path.join(ROOT, "bench", "results")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def socle_project():
    project = os.path.join(DATA, "socle")
    shutil.rmtree(project, ignore_errors=True)
    write(os.path.join(project, "socle.yml"), "name: bench\n")
    chain = ["schedule: \"@daily\"", "tasks:"]
    for i in range(40):
        chain += [f"  t{i:02d}:", "    kind: command", "    command: [\"true\"]"]
        if i:
            chain.append(f"    depends_on: [t{i - 1:02d}]")
    write(os.path.join(project, "pipelines", "chain.yml"), "\n".join(chain) + "\n")
    fan = ["schedule: \"@daily\"", "tasks:", "  start:", "    kind: command", "    command: [\"true\"]"]
    for i in range(500):
        fan += [f"  f{i:03d}:", "    kind: command", "    command: [\"true\"]", "    depends_on: [start]"]
    fan += ["  end:", "    kind: command", "    command: [\"true\"]",
            "    depends_on: [" + ", ".join(f"f{i:03d}" for i in range(500)) + "]"]
    write(os.path.join(project, "pipelines", "fan.yml"), "\n".join(fan) + "\n")
    return project


AIRFLOW_DAGS = '''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("chain", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    prev = None
    for i in range(40):
        t = BashOperator(task_id=f"t{i:02d}", bash_command="true")
        if prev is not None:
            prev >> t
        prev = t

with DAG("fan", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    start = BashOperator(task_id="start", bash_command="true")
    end = BashOperator(task_id="end", bash_command="true")
    for i in range(500):
        start >> BashOperator(task_id=f"f{i:03d}", bash_command="true") >> end
'''


def airflow_home(airflow):
    home = os.path.join(DATA, "airflow")
    shutil.rmtree(home, ignore_errors=True)
    write(os.path.join(home, "dags", "bench.py"), AIRFLOW_DAGS)
    env = dict(os.environ, AIRFLOW_HOME=home, AIRFLOW__CORE__LOAD_EXAMPLES="False")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return env


def timed(cmd, cwd, env=None):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def idle_rss(socle, project, seconds=5):
    proc = subprocess.Popen([socle, "--project", project, "serve"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    with open(f"/proc/{proc.pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
    proc.terminate()
    proc.wait(timeout=30)
    return rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--airflow", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    project = socle_project()
    env = airflow_home(args.airflow)
    results = {}
    print(f"{'pipeline':<30}{'socle s':>9}{'airflow s':>11}{'speedup':>9}{'socle ms/task':>15}{'airflow ms/task':>17}{'socle MiB':>11}{'airflow MiB':>13}")
    for name, tasks, repeat in [("chain", 40, args.repeat), ("fan", 502, 1)]:
        s_t, a_t, s_m, a_m = [], [], [], []
        for _ in range(repeat):
            shutil.rmtree(os.path.join(project, ".socle"), ignore_errors=True)
            t, m = timed([args.socle, "--project", project, "run", name, "--date", "2024-01-02"], project)
            s_t.append(t)
            s_m.append(m)
            t, m = timed([args.airflow, "dags", "test", name, "2024-01-02"], DATA, env)
            a_t.append(t)
            a_m.append(m)
        s, a = statistics.median(s_t), statistics.median(a_t)
        label = f"{name} ({tasks} no-op tasks)"
        print(f"{label:<30}{s:>9.2f}{a:>11.2f}{a / s:>8.1f}x{1000 * s / tasks:>15.1f}{1000 * a / tasks:>17.1f}{max(s_m):>11.0f}{max(a_m):>13.0f}")
        results[name] = {"tasks": tasks, "socle_s": s, "airflow_s": a, "speedup": a / s,
                         "socle_ms_per_task": 1000 * s / tasks, "airflow_ms_per_task": 1000 * a / tasks,
                         "socle_peak_mib": max(s_m), "airflow_peak_mib": max(a_m)}
    rss = idle_rss(args.socle, project)
    print(f"socle serve idle RSS: {rss:.1f} MiB (2 pipelines, 542 tasks loaded)")
    results["serve_idle_rss_mib"] = rss
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "orchestrate.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
