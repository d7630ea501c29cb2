"""`socle ml` vs the Python library a user would otherwise pick, on the same data, same run.

1. `rules`: groceries baskets, `association_rules` vs mlxtend 0.25 (`TransactionEncoder` +
   `fpgrowth` + `association_rules`): the same itemsets and rules, every metric to 1e-9; time
   and memory; then again with one extra basket of 1,000 distinct items (plus every real item).
2. `forecast`: the three Prophet example series, last 20% of rows held out, vs Prophet with
   the same settings: MAPE, 80% interval coverage, ordered intervals, fit+predict time.
3. `clustering`: k-means inertia vs scikit-learn `KMeans` on 100,000 generated blobs (raw
   features) and on MovieLens per-user genre shares (standardised on both sides).
4. `recommend`: MovieLens ratings, each user's last 20% held out, vs implicit 0.7
   (`AlternatingLeastSquares`, `CosineRecommender`) and a most-popular baseline:
   precision@10 / recall@10 computed the same way on both sides; fold-in latency.
5. `regression`: make_friedman1 (100,000 rows) plus three categorical columns, 5% of every
   feature missing: socle's boosted learner vs scikit-learn `HistGradientBoostingRegressor`
   (native categorical support), 5-fold RMSE (different random folds on each side), fit time
   on every row; socle's lasso vs sklearn `Lasso` on the complete rows, standardised:
   coefficients to 1e-6.

socle runs as a user runs it: a fresh project per comparison (`socle init`), the data loaded
with `socle load`, `ml/<name>.yml`, `socle ml train NAME --format json`, outputs read back
with `socle sql --format json`. Three socle times: the fit alone (between the `fitting` and
`writing the version` progress lines of `-v --log-json`), the training as recorded
(`duration_ms`: reading the input, fitting, writing the output tables) and the process's
wall time. Each Python peer runs in its own process (this file with `--peer NAME`): its fit
is timed inside, its wall time and peak RSS outside. Memory is each process's peak RSS.

The median of --repeat runs is kept for times, the largest peak for memory; accuracy is
from the first run (both sides are seeded).
"""
import argparse
import csv
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "bench", "data", "ml")
RESULTS = os.path.join(ROOT, "bench", "results")
DATASETS = os.path.abspath(os.path.join(ROOT, "..", "shared", "datasets"))

COMPARISONS = ["rules", "forecast", "clustering", "recommend", "regression"]


# ---------------------------------------------------------------------------------------------
# Processes


class Failed(Exception):
    """A command that failed, with its exact error output."""


class Run:
    def __init__(self, cmd, code, out, err, wall, peak_mib):
        self.cmd, self.code, self.out, self.err = cmd, code, out, err
        self.wall, self.peak_mib = wall, peak_mib


# Runs a command and reports its exit code, wall time and peak RSS. A child's ru_maxrss
# starts at the RSS of the process it was forked from (Linux keeps the old address space's
# high-water mark across exec), so the command is forked from this small interpreter
# (`python -S`, ~10 MiB) rather than from the benchmark, whose own RSS would otherwise be
# reported as every child's peak.
LAUNCHER = r"""
import json, os, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(out, "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "wall": wall, "maxrss_kib": usage.ru_maxrss}, f)
"""


def measure(cmd, cwd=None, env=None, check=True):
    """Runs `cmd` to its end: its output, wall time and peak RSS (MiB, of that process)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([sys.executable, "-S", "-c", LAUNCHER, report.name, *cmd], cwd=cwd, env=env,
                       stdin=subprocess.DEVNULL, stdout=out, stderr=err, check=True)
        with open(report.name) as f:
            r = json.load(f)
        out.seek(0)
        err.seek(0)
        run = Run(cmd, r["code"], out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                  r["wall"], r["maxrss_kib"] / 1024)
    if check and run.code != 0:
        shown = " ".join(c if len(c) < 200 else c[:200] + "..." for c in cmd)
        raise Failed(f"`{shown}` exited {run.code}:\n{run.err.strip()[-4000:]}")
    return run


class Socle:
    """A fresh socle project in `root/name`."""

    def __init__(self, binary, root, name):
        self.bin = binary
        self.dir = os.path.join(root, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        measure([binary, "init", self.dir])

    def run(self, *args, check=True):
        return measure([self.bin, "--project", self.dir, *args], cwd=self.dir, check=check)

    def load(self, path, table):
        self.run("load", path, "--table", table, "--mode", "overwrite", "--output", "json")

    def sql(self, query):
        return json.loads(self.run("sql", "--format", "json", query).out or "[]")

    def spec(self, name, text):
        with open(os.path.join(self.dir, "ml", f"{name}.yml"), "w") as f:
            f.write(text)

    def train(self, name, since="fitting"):
        """Trains `name`: its report, and fit / duration / wall seconds and peak MiB. The fit
        runs from the progress line `since` (its first occurrence) to `writing the version`."""
        run = self.run("-v", "--log-json", "ml", "train", name, "--format", "json")
        report = json.loads(run.out)
        return {"report": report, "fit_s": between(run.err, since, "writing the version"),
                "duration_s": report["duration_ms"] / 1000, "wall_s": run.wall, "peak_mib": run.peak_mib,
                "kmeans_s": between(run.err, since, "silhouette")}

    def model_file(self, name, version):
        """A version's stored model: `model.json` (kind, format) with `fitted` from `fitted.json`."""
        base = os.path.join(self.dir, ".socle", "lake", "models", name, str(version))
        with open(os.path.join(base, "model.json")) as f:
            out = json.load(f)
        with open(os.path.join(base, "fitted.json")) as f:
            out["fitted"] = json.load(f)
        return out

    def predict(self, name, input_sql, output=None):
        """Applies `name`: its report and the run, whose `predict_s` is the time from the
        progress line `predicting` to `writing the predictions` (the model applied, in
        memory: what a library's `predict` call does)."""
        args = ["-v", "--log-json", "ml", "predict", name, "--input", input_sql, "--format", "json"]
        if output:
            args += ["--output", output]
        run = self.run(*args)
        run.predict_s = between(run.err, "predicting", "writing the predictions")
        return json.loads(run.out), run


def between(log, start, end):
    """Seconds between the first progress lines `start` and `end` of a `--log-json` log."""
    marks = {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("fields", {}).get("message")
        if message in (start, end) and message not in marks:
            marks[message] = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
    if len(marks) != 2:
        return None
    return (marks[end] - marks[start]).total_seconds()


def run_peer(name, payload, repeat=1, env=None):
    """Runs this file's peer `name` in its own process `repeat` times: its results (first
    run), and median wall seconds, peak MiB over the runs, and the medians of its timings."""
    work = tempfile.mkdtemp(prefix=f"peer-{name}-")
    try:
        with open(os.path.join(work, "payload.json"), "w") as f:
            json.dump(payload, f)
        results, walls, peaks = [], [], []
        for _ in range(repeat):
            out = os.path.join(work, "result.json")
            run = measure([sys.executable, os.path.abspath(__file__), "--peer", name,
                           "--payload", os.path.join(work, "payload.json"), "--result", out],
                          env=dict(os.environ, **(env or {})))
            with open(out) as f:
                results.append(json.load(f))
            walls.append(run.wall)
            peaks.append(run.peak_mib)
        first = results[0]
        timings = {k: statistics.median(r["timings"][k] for r in results) for k in first.get("timings", {})}
        return first, statistics.median(walls), max(peaks), timings
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train_repeated(project, name, repeat, since="fitting"):
    """Trains `repeat` times: the first report, median times, largest peak."""
    runs = [project.train(name, since) for _ in range(repeat)]
    med = lambda key: statistics.median(r[key] for r in runs) if all(r[key] is not None for r in runs) else None
    return {"report": runs[0]["report"], "fit_s": med("fit_s"), "duration_s": med("duration_s"),
            "wall_s": med("wall_s"), "peak_mib": max(r["peak_mib"] for r in runs), "kmeans_s": med("kmeans_s")}


# ---------------------------------------------------------------------------------------------
# Results


class Table:
    """Rows of one comparison: a measure, socle's and the peer's values, their ratio and the
    target (a string such as `<= 1.05` read against the ratio or the socle value)."""

    def __init__(self, comparison):
        self.comparison = comparison
        self.rows = []
        self.details = {}

    def add(self, case, measure, socle=None, peer=None, ratio="auto", target=None, on="ratio", note=None,
            passed=None):
        """`passed`, when given, is the verdict (with `target` a text saying what was checked)."""
        if ratio == "auto":
            ratio = (socle / peer if isinstance(socle, (int, float)) and isinstance(peer, (int, float))
                     and not isinstance(socle, bool) and peer not in (0, None) else None)
        verdict = None
        if passed is not None:
            verdict = "ok" if passed else "MISS"
        elif target is not None:
            value = ratio if on == "ratio" else socle
            verdict = "ok" if check_target(value, target) else "MISS"
        self.rows.append({"comparison": self.comparison, "case": case, "measure": measure, "socle": socle,
                          "peer": peer, "socle/peer": ratio, "target": target, "verdict": verdict, "note": note})


def check_target(value, target):
    if value is None:
        return False
    if isinstance(target, str):
        op, _, num = target.partition(" ")
        if op == "==":
            return value == (num if not isinstance(value, (int, float)) else float(num))
        if op == "is":
            return str(value) == num
        n = float(num)
        return {"<=": value <= n, ">=": value >= n, "<": value < n, ">": value > n}[op]
    if isinstance(target, tuple):  # (low, high)
        return target[0] <= value <= target[1]
    return value == target


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        a = abs(v)
        if a == 0:
            return "0"
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1:
            return f"{v:.3f}"
        if a >= 0.001:
            return f"{v:.4f}"
        return f"{v:.2e}"
    if isinstance(v, tuple):
        return f"[{fmt(v[0])}, {fmt(v[1])}]"
    return str(v)


def print_table(rows):
    headers = ["comparison", "case", "measure", "socle", "peer", "socle/peer", "target", "verdict"]
    cells = [[fmt(r[h]) if h not in ("comparison", "case", "measure", "verdict") else (r[h] or "")
              for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    right = {"socle", "peer", "socle/peer"}
    line = lambda cs: "  ".join(c.rjust(w) if h in right else c.ljust(w) for c, w, h in zip(cs, widths, headers))
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    last = None
    for r, c in zip(rows, cells):
        if last is not None and r["comparison"] != last:
            print()
        last = r["comparison"]
        print(line(c).rstrip() + (f"   # {r['note']}" if r.get("note") else ""))


# ---------------------------------------------------------------------------------------------
# 1. rules

RULE_METRICS = ["antecedent_support", "consequent_support", "support", "confidence", "lift",
                "representativity", "leverage", "conviction", "zhangs_metric", "jaccard", "certainty",
                "kulczynski"]


def read_baskets(path):
    """The one-column basket CSV split as socle splits `items` text (`,`, trimmed, no empties)."""
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        return [[s.strip() for s in row[0].split(",") if s.strip()] for row in r]


def write_baskets(path, baskets):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(["items"])
        for b in baskets:
            w.writerow([",".join(b)])


def same_number(a, b, tol=1e-9):
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def compare_rules(socle_sets, socle_rules, peer_sets, peer_rules):
    """Itemsets and rules as sets of frozensets, metrics to 1e-9: a summary."""
    s_sets = {frozenset(i): s for i, s in socle_sets}
    p_sets = {frozenset(i): s for i, s in peer_sets}
    key = lambda r: (frozenset(r["antecedents"]), frozenset(r["consequents"]))
    s_rules = {key(r): r["metrics"] for r in socle_rules}
    p_rules = {key(r): r["metrics"] for r in peer_rules}
    out = {"itemsets_socle": len(s_sets), "itemsets_peer": len(p_sets), "itemsets_same": s_sets.keys() == p_sets.keys(),
           "rules_socle": len(s_rules), "rules_peer": len(p_rules), "rules_same": s_rules.keys() == p_rules.keys(),
           "itemsets_only_socle": [sorted(k) for k in list(s_sets.keys() - p_sets.keys())[:5]],
           "itemsets_only_peer": [sorted(k) for k in list(p_sets.keys() - s_sets.keys())[:5]],
           "rules_only_socle": [[sorted(a), sorted(c)] for a, c in list(s_rules.keys() - p_rules.keys())[:5]],
           "rules_only_peer": [[sorted(a), sorted(c)] for a, c in list(p_rules.keys() - s_rules.keys())[:5]]}
    bad_support = [k for k in s_sets.keys() & p_sets.keys() if not same_number(s_sets[k], p_sets[k])]
    out["itemset_support_mismatches"] = len(bad_support)
    diffs, mismatches, infinite = {}, {}, 0
    for k in s_rules.keys() & p_rules.keys():
        for m in RULE_METRICS:
            if m not in p_rules[k]:
                continue
            a, b = s_rules[k].get(m), p_rules[k][m]
            if m == "conviction" and b is not None and math.isinf(b):
                infinite += 1
            if not same_number(a, b):
                mismatches.setdefault(m, []).append({"rule": [sorted(k[0]), sorted(k[1])], "socle": a, "peer": b})
            elif a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
                diffs[m] = max(diffs.get(m, 0.0), abs(a - b))
    out["metric_max_abs_diff"] = diffs
    out["metric_mismatches"] = {m: len(v) for m, v in mismatches.items()}
    out["metric_mismatch_examples"] = {m: v[:3] for m, v in mismatches.items()}
    out["infinite_convictions"] = infinite
    out["metrics_compared"] = sorted({m for k in p_rules for m in p_rules[k]} & set(RULE_METRICS))
    out["all_equal"] = (out["itemsets_same"] and out["rules_same"] and not bad_support and not mismatches)
    return out


def socle_rules_output(project, name):
    text = lambda c: f"CAST({c} AS VARCHAR) AS {c}"
    sets = project.sql(f"SELECT itemsets, {text('support')} FROM ml.{name}_itemsets")
    rules = project.sql(f"SELECT antecedents, consequents, {', '.join(text(m) for m in RULE_METRICS)} FROM ml.{name}_rules")
    num = lambda v: None if v is None else float(v)
    return ([(r["itemsets"], num(r["support"])) for r in sets],
            [{"antecedents": r["antecedents"], "consequents": r["consequents"],
              "metrics": {m: num(r[m]) for m in RULE_METRICS}} for r in rules])


def bench_rules(args, t):
    baskets = [[s.strip() for s in line.split(",") if s.strip()]
               for line in open(os.path.join(args.datasets, "groceries", "groceries.csv"))]
    baskets = [b for b in baskets if b]
    real = sorted({i for b in baskets for i in b})
    big = baskets + [[f"x{i:04d}" for i in range(1000)] + real]
    t.details["settings"] = {"min_support": 0.01, "min_confidence": 0.2, "baskets": len(baskets),
                             "items": len(real), "big_basket_items": len(big[-1])}
    runs = {}
    for case, data in [("groceries", baskets), ("groceries + 1 basket of 1,169 items", big)]:
        path = os.path.join(DATA, "rules", f"baskets_{len(data)}.csv")
        write_baskets(path, data)
        project = Socle(args.socle, args.work, f"rules_{len(data)}")
        project.load(path, "main.baskets")
        project.spec("basket", "kind: association_rules\ninput: { table: main.baskets }\ncolumns: { items: items }\n"
                     "params: { min_support: 0.01, min_confidence: 0.2 }\n")
        s = train_repeated(project, "basket", args.repeat)
        s_sets, s_rules = socle_rules_output(project, "basket")
        p, p_wall, p_peak, p_t = run_peer("rules", {"csv": path, "min_support": 0.01, "min_confidence": 0.2},
                                          args.repeat)
        cmp = compare_rules(s_sets, s_rules, [(i, v) for i, v in p["itemsets"]], p["rules"])
        runs[case] = (s, p_t, p_wall)
        t.details[case] = {"socle": {k: v for k, v in s.items() if k != "report"} | {"metrics": s["report"]["metrics"]},
                           "mlxtend": {"wall_s": p_wall, "peak_mib": p_peak, **p_t}, "comparison": cmp}
        t.add(case, "itemsets (socle, mlxtend)", cmp["itemsets_socle"], cmp["itemsets_peer"], ratio=None,
              target="same sets", passed=cmp["itemsets_same"] and cmp["itemset_support_mismatches"] == 0)
        t.add(case, "rules (socle, mlxtend)", cmp["rules_socle"], cmp["rules_peer"], ratio=None,
              target="same sets", passed=cmp["rules_same"])
        worst = max(cmp["metric_max_abs_diff"].values(), default=0.0)
        t.add(case, f"metric mismatches over 1e-9 ({len(cmp['metrics_compared'])} metrics)",
              sum(cmp["metric_mismatches"].values()), None, ratio=None, target="0", passed=not cmp["metric_mismatches"],
              note=f"max |diff| {worst:.1e}; {cmp['infinite_convictions']} infinite convictions")
        t.add(case, "fit s (socle fit / mlxtend encode+fpgrowth+rules)", s["fit_s"], p_t["total_s"])
        t.add(case, "socle duration_ms / mlxtend in-process s", s["duration_s"], p_t["total_s"])
        t.add(case, "process wall s", s["wall_s"], p_wall)
        t.add(case, "peak MiB", s["peak_mib"], p_peak)
    (s0, p0, w0), (s1, p1, w1) = runs.values()
    t.add("big basket / clean", "socle fit time ratio", s1["fit_s"] / s0["fit_s"], None, ratio=None,
          target="<= 2", on="socle")
    t.add("big basket / clean", "socle duration ratio", s1["duration_s"] / s0["duration_s"], None, ratio=None)
    t.add("big basket / clean", "mlxtend time ratio", None, p1["total_s"] / p0["total_s"], ratio=None)


def peer_rules(p):
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder
    baskets = read_baskets(p["csv"])
    t0 = time.perf_counter()
    te = TransactionEncoder()
    df = pd.DataFrame(te.fit(baskets).transform(baskets), columns=te.columns_)
    t1 = time.perf_counter()
    fi = fpgrowth(df, min_support=p["min_support"], use_colnames=True)
    t2 = time.perf_counter()
    rules = association_rules(fi, num_itemsets=len(baskets), metric="confidence", min_threshold=p["min_confidence"])
    t3 = time.perf_counter()
    names = {c: c.replace(" ", "_") for c in rules.columns if c not in ("antecedents", "consequents")}
    return {
        "itemsets": [[sorted(s), float(v)] for s, v in zip(fi["itemsets"], fi["support"])],
        "rules": [{"antecedents": sorted(r["antecedents"]), "consequents": sorted(r["consequents"]),
                   "metrics": {names[c]: float(r[c]) for c in names}} for _, r in rules.iterrows()],
        "timings": {"encode_s": t1 - t0, "fpgrowth_s": t2 - t1, "rules_s": t3 - t2, "total_s": t3 - t0},
    }


# ---------------------------------------------------------------------------------------------
# 2. forecast

LOCKDOWNS = [("lockdown_1", "2020-03-21", "2020-06-06"), ("lockdown_2", "2020-07-09", "2020-10-27"),
             ("lockdown_3", "2021-02-13", "2021-02-17"), ("lockdown_4", "2021-05-28", "2021-06-10")]

SERIES = [
    # name, file, Prophet settings (the same on both sides)
    ("air_passengers", "example_air_passengers.csv", {"seasonality_mode": "multiplicative"}, []),
    # Prophet's "Non-daily data" docs fit this series with seasonality_mode='multiplicative'.
    ("retail_sales", "example_retail_sales.csv", {"seasonality_mode": "multiplicative"}, []),
    # Prophet's "Handling shocks" docs: each lockdown a one-off holiday (lower_window 0,
    # upper_window = days to its end); socle's `shocks`.
    ("pedestrians", "example_pedestrians_covid.csv", {}, LOCKDOWNS),
]


def read_series(path):
    with open(path, newline="") as f:
        rows = [(r["ds"][:10], float(r["y"])) for r in csv.DictReader(f)]
    return sorted(rows)


def mape(truth, pred):
    return sum(abs(p - y) / max(abs(y), sys.float_info.epsilon) for y, p in zip(truth, pred)) / len(truth)


def bench_forecast(args, t):
    project = Socle(args.socle, args.work, "forecast")
    for name, file, settings, shocks in SERIES:
        path = os.path.join(args.datasets, "timeseries", file)
        rows = read_series(path)
        cut = int(len(rows) * 0.8)
        test = rows[cut:]
        project.load(path, f"main.{name}_full")
        project.run("sql", f"CREATE OR REPLACE TABLE main.{name}_train AS SELECT * FROM main.{name}_full "
                           f"WHERE ds < DATE '{test[0][0]}'")
        params = {"horizon": 0, **settings}
        if shocks:
            params["shocks"] = [{"name": n, "start": a, "end": b} for n, a, b in shocks]
        project.spec(name, f"kind: forecast\ninput: {{ table: main.{name}_train }}\ncolumns: {{ time: ds, target: y }}\n"
                           f"params: {json.dumps(params)}\n")
        s = train_repeated(project, name, args.repeat)
        walls, peaks, computes = [], [], []
        for _ in range(args.repeat):
            _, run = project.predict(name, f"SELECT ds FROM main.{name}_full WHERE ds >= DATE '{test[0][0]}'")
            walls.append(run.wall)
            peaks.append(run.peak_mib)
            computes.append(run.predict_s)
        predict_wall = statistics.median(walls)
        predict_s = statistics.median(computes) if None not in computes else None
        got = {r["ds"][:10]: r for r in project.sql(
            f"SELECT CAST(ds AS VARCHAR) AS ds, yhat, yhat_lower, yhat_upper FROM ml.{name}_predictions")}
        missing = [d for d, _ in test if d not in got]
        if missing:
            raise Failed(f"{name}: socle predicted no row for {len(missing)} held-out times, e.g. {missing[:3]}")
        ordered = project.sql(
            f"SELECT count(*) AS n, sum(CASE WHEN yhat_lower <= yhat AND yhat <= yhat_upper THEN 1 ELSE 0 END) AS ok "
            f"FROM (SELECT yhat, yhat_lower, yhat_upper FROM ml.{name} UNION ALL "
            f"SELECT yhat, yhat_lower, yhat_upper FROM ml.{name}_predictions)")[0]
        truth = [y for _, y in test]
        s_pred = [got[d]["yhat"] for d, _ in test]
        s_cov = sum(got[d]["yhat_lower"] <= y <= got[d]["yhat_upper"] for d, y in test) / len(test)
        p, p_wall, p_peak, p_t = run_peer("forecast", {"csv": path, "cut": cut, "settings": settings,
                                                       "shocks": shocks}, args.repeat)
        p_pred = [p["yhat"][d] for d, _ in test]
        p_cov = sum(p["yhat_lower"][d] <= y <= p["yhat_upper"][d] for d, y in test) / len(test)
        s_mape, p_mape = mape(truth, s_pred), mape(truth, p_pred)
        s_time = s["fit_s"] + predict_s if s["fit_s"] is not None and predict_s is not None else None
        case = f"{name} ({cut}+{len(test)})"
        t.add(case, "holdout MAPE", s_mape, p_mape, target="<= 1.05")
        t.add(case, "80% interval coverage", s_cov, p_cov, ratio=None, target=(p_cov - 0.05, p_cov + 0.05), on="socle")
        t.add(case, "lower <= yhat <= upper (socle rows)", ordered["ok"], ordered["n"], ratio=None,
              target="== " + str(ordered["n"]), on="socle")
        t.add(case, "fit+predict s (in process, data in memory; socle's fit includes the in-sample forecast)",
              s_time, p_t["fit_s"] + p_t["predict_s"], target="<= 0.1")
        t.add(case, "socle fit alone / Prophet fit s", s["fit_s"], p_t["fit_s"])
        t.add(case, "socle predict alone / Prophet predict s", predict_s, p_t["predict_s"])
        t.add(case, "socle train duration_ms + predict process s / Prophet fit+predict s",
              s["duration_s"] + predict_wall, p_t["fit_s"] + p_t["predict_s"],
              note="socle's side also reads the input and writes its tables")
        t.add(case, "process wall s (socle train + predict)", s["wall_s"] + predict_wall, p_wall)
        t.add(case, "peak MiB", max(s["peak_mib"], max(peaks)), p_peak)
        t.details[name] = {"rows": len(rows), "train_rows": cut, "test_rows": len(test), "settings": settings,
                           "shocks": shocks,
                           "socle": {"mape": s_mape, "coverage": s_cov, "ordered": ordered, "fit_s": s["fit_s"],
                                     "train_duration_s": s["duration_s"], "train_wall_s": s["wall_s"],
                                     "predict_wall_s": predict_wall, "predict_s": predict_s, "peak_mib": max(s["peak_mib"], max(peaks))},
                           "prophet": {"mape": p_mape, "coverage": p_cov, "wall_s": p_wall, "peak_mib": p_peak, **p_t}}


def peer_forecast(p):
    import logging
    import numpy as np
    import pandas as pd
    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from prophet import Prophet
    df = pd.read_csv(p["csv"])
    df["ds"] = pd.to_datetime(df["ds"])
    df = df.sort_values("ds").reset_index(drop=True)
    train, test = df.iloc[:p["cut"]], df.iloc[p["cut"]:]
    kwargs = dict(p["settings"])
    if p["shocks"]:
        h = pd.DataFrame([{"holiday": n, "ds": pd.Timestamp(a), "lower_window": 0,
                           "upper_window": (pd.Timestamp(b) - pd.Timestamp(a)).days} for n, a, b in p["shocks"]])
        kwargs["holidays"] = h
    np.random.seed(0)  # Prophet's interval samples
    t0 = time.perf_counter()
    m = Prophet(**kwargs).fit(train)
    t1 = time.perf_counter()
    f = m.predict(test[["ds"]])
    t2 = time.perf_counter()
    day = f["ds"].dt.strftime("%Y-%m-%d")
    return {"yhat": dict(zip(day, f["yhat"])), "yhat_lower": dict(zip(day, f["yhat_lower"])),
            "yhat_upper": dict(zip(day, f["yhat_upper"])), "timings": {"fit_s": t1 - t0, "predict_s": t2 - t1}}


# ---------------------------------------------------------------------------------------------
# 3. clustering


def threads_info():
    try:
        from threadpoolctl import threadpool_info
        return [{k: i.get(k) for k in ("user_api", "internal_api", "num_threads")} for i in threadpool_info()]
    except Exception:  # noqa: BLE001
        return []


def genre_shares(datasets, path):
    """One row per user: the share of their rated movies tagged with each genre."""
    genres_of = {}
    with open(os.path.join(datasets, "movielens-small", "movies.csv"), newline="") as f:
        for r in csv.DictReader(f):
            genres_of[r["movieId"]] = r["genres"].split("|")
    all_genres = sorted({g for gs in genres_of.values() for g in gs})
    col = {g: "g_" + "".join(c if c.isalnum() else "_" for c in g.lower()).strip("_") for g in all_genres}
    counts, rated = {}, {}
    with open(os.path.join(datasets, "movielens-small", "ratings.csv"), newline="") as f:
        for r in csv.DictReader(f):
            if r["movieId"] not in genres_of:
                continue  # a rating of a movie that movies.csv does not list
            u = int(r["userId"])
            rated[u] = rated.get(u, 0) + 1
            c = counts.setdefault(u, {})
            for g in genres_of.get(r["movieId"], []):
                c[g] = c.get(g, 0) + 1
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id"] + [col[g] for g in all_genres])
        for u in sorted(rated):
            w.writerow([u] + [repr(counts[u].get(g, 0) / rated[u]) for g in all_genres])
    return [col[g] for g in all_genres], len(rated)


def bench_clustering(args, t):
    import numpy as np
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score
    blobs = os.path.join(DATA, "clustering", "blobs_100k.csv")
    features = [f"f{i}" for i in range(10)]
    if not os.path.exists(blobs):
        x, _ = make_blobs(n_samples=100_000, n_features=10, centers=8, random_state=0)
        os.makedirs(os.path.dirname(blobs), exist_ok=True)
        tmp = blobs + ".tmp"
        np.savetxt(tmp, np.column_stack([np.arange(len(x)), x]), delimiter=",", header="id," + ",".join(features),
                   comments="", fmt=["%d"] + ["%.17g"] * 10)
        os.replace(tmp, blobs)
    shares = os.path.join(DATA, "clustering", "genre_shares.csv")
    genre_cols, users = genre_shares(args.datasets, shares)
    cases = [("blobs 100k x 10, k=8, raw", blobs, features, False),
             (f"movielens genre shares {users} x {len(genre_cols)}, k=8, standardised", shares, genre_cols, True)]
    project = Socle(args.socle, args.work, "clustering")
    for i, (case, path, cols, standardize) in enumerate(cases):
        name = f"c{i}"
        project.load(path, f"main.{name}")
        project.spec(name, f"kind: clustering\ninput: {{ table: main.{name} }}\ncolumns: {{ features: [{', '.join(cols)}] }}\n"
                           f"params: {{ k: 8, n_init: 10, standardize: {'true' if standardize else 'false'} }}\n")
        s = train_repeated(project, name, args.repeat)
        labels = [r["cluster_id"] for r in project.sql(f"SELECT id, cluster_id FROM ml.{name} ORDER BY id")]
        p, p_wall, p_peak, p_t = run_peer("kmeans", {"csv": path, "features": cols, "standardize": standardize,
                                                     "k": 8, "n_init": 10}, args.repeat)
        inertia = s["report"]["metrics"]["inertia"]
        ari = adjusted_rand_score(p["labels"], labels)
        t.add(case, "k-means inertia", inertia, p["inertia"], target="<= 1.01")
        t.add(case, "adjusted Rand index socle vs sklearn labels", ari, None, ratio=None)
        t.add(case, "k-means s (socle: standardise + k-means++ + Lloyd, n_init runs / sklearn KMeans fit)",
              s["kmeans_s"], p_t["fit_s"], target="< 1")
        t.add(case, "fit s (socle fit incl. silhouette and assigning every row / sklearn KMeans)", s["fit_s"], p_t["fit_s"])
        t.add(case, "fit s vs sklearn KMeans + silhouette(10k sample)", s["fit_s"], p_t["fit_s"] + p_t["silhouette_s"])
        t.add(case, "fit s vs sklearn KMeans on 1 OpenMP thread", s["fit_s"], p_t["fit_one_thread_s"],
              note="information: sklearn pinned to one thread (not the default)")
        t.add(case, "socle duration_ms / sklearn fit s", s["duration_s"], p_t["fit_s"])
        t.add(case, "process wall s", s["wall_s"], p_wall)
        t.add(case, "peak MiB", s["peak_mib"], p_peak)
        t.details[case] = {"socle": {k: v for k, v in s.items() if k != "report"} | {"metrics": s["report"]["metrics"]},
                           "sklearn": {"inertia": p["inertia"], "silhouette": p["silhouette"], "n_iter": p["n_iter"],
                                       "threads": p["threads"], "wall_s": p_wall, "peak_mib": p_peak, **p_t},
                           "ari": ari}


def peer_kmeans(p):
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler
    df = pd.read_csv(p["csv"], float_precision="round_trip").sort_values("id")
    x = df[p["features"]].to_numpy(dtype="float64")
    t0 = time.perf_counter()
    if p["standardize"]:
        x = StandardScaler().fit_transform(x)
    km = KMeans(n_clusters=p["k"], n_init=p["n_init"], random_state=0).fit(x)
    t1 = time.perf_counter()
    sil = silhouette_score(x, km.labels_, sample_size=10_000 if len(x) > 10_000 else None, random_state=0)
    t2 = time.perf_counter()
    # The same fit on one OpenMP thread: on a busy machine, OpenMP's waiting threads can cost more
    # than they bring (shown for information; the default above is what a user gets).
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="openmp"):
        t3 = time.perf_counter()
        KMeans(n_clusters=p["k"], n_init=p["n_init"], random_state=0).fit(x)
        t4 = time.perf_counter()
    return {"inertia": float(km.inertia_), "labels": km.labels_.tolist(), "n_iter": int(km.n_iter_),
            "silhouette": float(sil), "threads": threads_info(),
            "timings": {"fit_s": t1 - t0, "silhouette_s": t2 - t1, "fit_one_thread_s": t4 - t3}}


# ---------------------------------------------------------------------------------------------
# 4. recommend

ALS = {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15}
KNN_K = 20
TOP_N = 10
TEST_FRACTION = 0.2
RELEVANT_FROM = 4.0
NEW_USERS = 5000
PEER_FOLDIN_CALLS = 200
NEW_USER_ITEMS = 5


def split_ratings(path):
    """socle's `recommend` holdout: rows in time order (ties: movieId, the input's ORDER BY),
    each user's first ceil(n·(1 − 0.2)) rows to train on, the rest to test on."""
    by_user = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            by_user.setdefault(int(r["userId"]), []).append(
                (int(r["timestamp"]), int(r["movieId"]), float(r["rating"])))
    train, test = [], []
    for u, rows in by_user.items():
        rows.sort()
        cut = min(math.ceil(len(rows) * (1.0 - TEST_FRACTION)), len(rows))
        train += [(u, i, w) for _, i, w in rows[:cut]]
        test += [(u, i, w) for _, i, w in rows[cut:]]
    return train, test


def ranking(recs, relevant, k):
    """socle's (implicit's) precision@k = Σ hits / Σ min(k, |R|); recall@k = mean hits / |R|;
    over users with a relevant item."""
    hits_total = divisor = recall = 0.0
    users = 0
    for u, rel in relevant.items():
        if not rel:
            continue
        hit = sum(1 for i in recs.get(u, [])[:k] if i in rel)
        hits_total += hit
        divisor += min(k, len(rel))
        recall += hit / len(rel)
        users += 1
    return {"precision": hits_total / divisor, "recall": recall / users, "users": users}


def bench_recommend(args, t):
    ratings = os.path.join(args.datasets, "movielens-small", "ratings.csv")
    train, test = split_ratings(ratings)
    project = Socle(args.socle, args.work, "recommend")
    project.load(ratings, "main.ratings")
    source = ('SELECT "userId" AS user_id, "movieId" AS item_id, rating, to_timestamp("timestamp") AS ts '
              'FROM main.ratings ORDER BY "timestamp", "movieId"')
    columns = "columns: { user: user_id, item: item_id, weight: rating, time: ts }\n"
    validation = f"validation: {{ method: holdout, test_fraction: {TEST_FRACTION} }}\n"
    project.spec("als", f"kind: recommend\ninput: {{ sql: '{source}' }}\n{columns}"
                        f"params: {{ method: als, n: {TOP_N}, factors: {ALS['factors']}, regularization: {ALS['regularization']}, "
                        f"alpha: {ALS['alpha']}, iterations: {ALS['iterations']}, relevant_weight: {RELEVANT_FROM} }}\n{validation}")
    project.spec("knn", f"kind: recommend\ninput: {{ sql: '{source}' }}\n{columns}"
                        f"params: {{ method: knn, n: {TOP_N}, k: {KNN_K}, relevant_weight: {RELEVANT_FROM} }}\n{validation}")
    # New users for the fold-in: 5 training items each.
    items = sorted({i for _, i, _ in train})
    rnd = random.Random(0)
    newcomers = [(1_000_000 + u, rnd.sample(items, NEW_USER_ITEMS)) for u in range(NEW_USERS)]
    path = os.path.join(DATA, "recommend", "newcomers.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("user_id,item_id,rating\n")
        for u, its in newcomers:
            f.writelines(f"{u},{i},5.0\n" for i in its)
    project.load(path, "main.newcomers")
    p, p_wall, p_peak, p_t = run_peer("recommend", {"train": train, "test": test, "newcomers": newcomers},
                                      args.repeat, env={"OPENBLAS_NUM_THREADS": "1"})
    t.details["split"] = {"train_rows": len(train), "test_rows": len(test),
                          "relevant_users": p["als"]["validation"]["users"], "settings": ALS | {"knn_K": KNN_K}}
    base = p["baseline"]
    t.add("most-popular baseline (same split)", "precision@10", None, base["precision"], ratio=None,
          note="computed in Python on the same split; compared with both sides below")
    t.add("most-popular baseline (same split)", "recall@10", None, base["recall"], ratio=None)
    for method in ("als", "knn"):
        s = train_repeated(project, method, args.repeat)
        m = s["report"]["metrics"]
        peer = p[method]["validation"]
        label = "ALS (factors 64)" if method == "als" else f"item-kNN cosine K={KNN_K}"
        case = f"{label}"
        s_users = int(m["validation_users"]) if "validation_users" in m else None
        t.add(case, "evaluated users (same split)", s_users, peer["users"], ratio=None,
              target="equal", passed=s_users == peer["users"])
        t.add(case, "precision@10", m["precision@10"], peer["precision"], target=">= 0.95")
        t.add(case, "recall@10", m["recall@10"], peer["recall"], target=">= 0.95")
        t.add(case, "precision@10 above baseline", m["precision@10"] > base["precision"],
              peer["precision"] > base["precision"], ratio=None, target="is True", on="socle")
        t.add(case, "recall@10 above baseline", m["recall@10"] > base["recall"],
              peer["recall"] > base["recall"], ratio=None, target="is True", on="socle")
        # Top-10 of every user from the model fitted on every row: agreement of the two sides.
        s_top = {}
        for r in project.sql(f"SELECT \"user\" AS u, item FROM ml.{method} ORDER BY \"user\", rank"):
            s_top.setdefault(r["u"], []).append(r["item"])
        p_top = {int(u): v for u, v in p[method]["top"].items()}
        overlap = statistics.mean(len(set(s_top.get(u, [])) & set(v)) / TOP_N for u, v in p_top.items())
        t.add(case, "top-10 overlap with implicit (full fit)", overlap, None, ratio=None)
        t.add(case, "train s (socle fit: validate + refit + top-10 all / same in implicit)", s["fit_s"],
              p_t[f"{method}_total_s"])
        t.add(case, "socle duration_ms / implicit same work s", s["duration_s"], p_t[f"{method}_total_s"])
        t.add(case, "process wall s (socle train / whole peer script)", s["wall_s"], p_wall,
              note="the peer script does ALS, kNN and the baseline")
        t.add(case, "peak MiB (peer: whole script)", s["peak_mib"], p_peak)
        # Fold-in: one process for 1 new user, one for NEW_USERS; the difference is the marginal cost.
        one, many = [], []
        for _ in range(args.repeat):
            one.append(project.predict(method, f"SELECT user_id, item_id, rating, to_timestamp(0) AS ts FROM main.newcomers "
                                               f"WHERE user_id = {newcomers[0][0]}", output=f"ml.{method}_new1")[1].wall)
            many.append(project.predict(method, "SELECT user_id, item_id, rating, to_timestamp(0) AS ts FROM main.newcomers",
                                        output=f"ml.{method}_new_many")[1].wall)
        one, many = min(one), min(many)  # the least disturbed run of each
        answered = project.sql(f'SELECT count(DISTINCT "user") AS users, count(*) AS n FROM ml.{method}_new_many')[0]
        t.add(case, f"new users answered by predict (of {NEW_USERS:,})", answered["users"], None, ratio=None,
              target="all", passed=answered["users"] == NEW_USERS, note=f"{answered['n']:,} rows")
        marginal = (many - one) / (NEW_USERS - 1)
        t.add(case, "1 new user of 5 items: socle predict process s / implicit call s", one,
              p_t[f"{method}_foldin_s"])
        t.add(case, f"fold-in per new user s (socle marginal / implicit call)", marginal,
              p_t[f"{method}_foldin_s"],
              note=f"socle: (predict {NEW_USERS:,} new users - predict 1) / {NEW_USERS - 1:,}, fastest of "
                   f"{args.repeat} each, output rows included; implicit: mean of {PEER_FOLDIN_CALLS} calls")
        t.details[method] = {"socle": {k: v for k, v in s.items() if k != "report"} | {"metrics": m,
                             "predict_1_user_wall_s": one, f"predict_{NEW_USERS}_users_wall_s": many, "foldin_marginal_s": marginal},
                             "implicit": p[method]["validation"] | {"implicit_ranking_metrics_at_k": p[method]["implicit_check"]},
                             "top10_overlap": overlap}
    t.details["implicit"] = {"wall_s": p_wall, "peak_mib": p_peak, "threads": p["threads"], **p_t}


def peer_recommend(p):
    import numpy as np
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from implicit.evaluation import ranking_metrics_at_k
    from implicit.nearest_neighbours import CosineRecommender

    def matrix(rows, users=None, items=None):
        users = users or {u: n for n, u in enumerate(sorted({u for u, _, _ in rows}))}
        items = items or {i: n for n, i in enumerate(sorted({i for _, i, _ in rows}))}
        kept = [(users[u], items[i], w) for u, i, w in rows if u in users and i in items and w != 0]
        r, c, w = zip(*kept)
        m = sp.csr_matrix((np.array(w, dtype=np.float32), (r, c)), shape=(len(users), len(items)))
        m.sum_duplicates()
        return m, users, items

    def models():
        return {"als": lambda: AlternatingLeastSquares(**p_als, random_state=42, calculate_training_loss=False),
                "knn": lambda: CosineRecommender(K=KNN_K)}

    def top_all(model, ui):
        ids, _ = model.recommend(np.arange(ui.shape[0]), ui, N=TOP_N, filter_already_liked_items=True)
        return ids

    p_als = dict(ALS)
    train = [tuple(r) for r in p["train"]]
    test = [tuple(r) for r in p["test"]]
    full = train + test
    out, timings = {"threads": threads_info()}, {}
    ui, users, items = matrix(train)
    relevant = {}
    for u, i, w in test:
        if w >= RELEVANT_FROM and u in users and i in items:
            relevant.setdefault(users[u], set()).add(items[i])
    test_m = sp.csr_matrix((np.ones(sum(len(v) for v in relevant.values()), dtype=np.float32),
                            ([u for u, v in relevant.items() for _ in v], [i for v in relevant.values() for i in v])),
                           shape=ui.shape)
    # Most popular: distinct training users per item, ties by index; liked items left out.
    popularity = np.diff(ui.tocsc().indptr)
    ranked = sorted(range(len(popularity)), key=lambda i: (-popularity[i], i))
    base = {}
    for u in relevant:
        liked = set(ui.indices[ui.indptr[u]:ui.indptr[u + 1]])
        base[u] = [i for i in ranked[:TOP_N + len(liked)] if i not in liked][:TOP_N]
    out["baseline"] = ranking(base, relevant, TOP_N)
    ui_full, users_full, items_full = matrix(full)
    for method, make in models().items():
        t0 = time.perf_counter()
        model = make()
        model.fit(ui, show_progress=False)
        ids = top_all(model, ui)
        recs = {u: list(ids[u]) for u in relevant}
        validation = ranking(recs, relevant, TOP_N)
        t1 = time.perf_counter()
        check = ranking_metrics_at_k(model, ui, test_m, K=TOP_N, show_progress=False)
        t2 = time.perf_counter()
        full_model = make()
        full_model.fit(ui_full, show_progress=False)
        ids_full = top_all(full_model, ui_full)
        t3 = time.perf_counter()
        inv_u = {n: u for u, n in users_full.items()}
        inv_i = {n: i for i, n in items_full.items()}
        top = {inv_u[n]: [inv_i[int(i)] for i in row if i >= 0] for n, row in enumerate(ids_full)}
        # Fold-in: a new user from 5 items, one call each.
        rows = []
        for _, its in p["newcomers"][:PEER_FOLDIN_CALLS]:
            cols = [items_full[i] for i in its if i in items_full]
            rows.append(sp.csr_matrix((np.full(len(cols), 5.0, dtype=np.float32), ([0] * len(cols), cols)),
                                      shape=(1, len(items_full))))
        t4 = time.perf_counter()
        for row in rows:
            if method == "als":
                full_model.recommend(0, row, N=TOP_N, recalculate_user=True, filter_already_liked_items=True)
            else:
                full_model.recommend(0, row, N=TOP_N, filter_already_liked_items=True)
        t5 = time.perf_counter()
        out[method] = {"validation": validation, "implicit_check": {k: float(v) for k, v in check.items()}, "top": top}
        timings |= {f"{method}_validate_s": t1 - t0, f"{method}_refit_s": t3 - t2,
                    f"{method}_total_s": (t1 - t0) + (t3 - t2), f"{method}_foldin_s": (t5 - t4) / len(rows)}
    out["timings"] = timings
    return out


# ---------------------------------------------------------------------------------------------
# 5. regression

REG_ROWS = 100_000
REG_FEATURES = [f"x{i}" for i in range(10)]
# name, levels, label prefix; the first adds an effect to the target, the others are noise.
REG_CATEGORICAL = [("cat_effect", 6, "e"), ("cat_noise5", 5, "n"), ("cat_noise12", 12, "m")]
REG_MISSING = 0.05
REG_FOLDS = 5
LASSO_ALPHA = 0.1
LASSO_PEER = {"tol": 1e-10, "max_iter": 1_000_000}
LASSO_SOCLE = {"tol": 1e-4, "max_iter": 10_000}  # fixed inside socle (`fit` in regression.rs)
LASSO_COEF_TOL = 1e-6


def friedman_data(path):
    """make_friedman1(100,000 rows, 10 features, noise 1, random_state 0) plus three categorical
    columns (`cat_effect`: 6 levels, each adding an effect drawn once to `y`; two of pure noise,
    5 and 12 levels), then 5% of every feature column's values blanked (NULL). Seeded: the
    same file every time. Returns the effects."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_friedman1
    x, y = make_friedman1(n_samples=REG_ROWS, n_features=len(REG_FEATURES), noise=1.0, random_state=0)
    rng = np.random.default_rng(0)
    effects = rng.normal(0.0, 2.0, size=REG_CATEGORICAL[0][1])
    codes = {name: rng.integers(0, levels, size=REG_ROWS) for name, levels, _ in REG_CATEGORICAL}
    y = y + effects[codes[REG_CATEGORICAL[0][0]]]
    df = pd.DataFrame({"y": y} | {c: x[:, j] for j, c in enumerate(REG_FEATURES)})
    for name, levels, prefix in REG_CATEGORICAL:
        df[name] = pd.Series([f"{prefix}{k:02d}" for k in codes[name]], dtype=object)
    blank = int(round(REG_ROWS * REG_MISSING))
    for c in REG_FEATURES + [n for n, _, _ in REG_CATEGORICAL]:
        df.loc[rng.choice(REG_ROWS, size=blank, replace=False), c] = np.nan if c in REG_FEATURES else None
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        df.to_csv(path + ".tmp", index=False, float_format="%.17g", na_rep="")
        os.replace(path + ".tmp", path)
    return [float(e) for e in effects]


def bench_regression(args, t):
    path = os.path.join(DATA, "regression", "friedman1_100k_cat3_missing5.csv")
    effects = friedman_data(path)
    categorical = [n for n, _, _ in REG_CATEGORICAL]
    project = Socle(args.socle, args.work, "regression")
    project.load(path, "main.f")
    columns = (f"columns: {{ target: y, features: [{', '.join(REG_FEATURES)}], "
               f"categorical: [{', '.join(categorical)}] }}\n")
    project.spec("boosted_cv", f"kind: regression\ninput: {{ table: main.f }}\n{columns}params: {{ learner: boosted }}\n"
                               f"validation: {{ method: kfold, folds: {REG_FOLDS}, shuffle: true }}\n")
    project.spec("boosted", f"kind: regression\ninput: {{ table: main.f }}\n{columns}params: {{ learner: boosted }}\n")
    complete = " AND ".join(f"{c} IS NOT NULL" for c in REG_FEATURES)
    project.spec("lasso", f"kind: regression\ninput: {{ sql: 'SELECT y, {', '.join(REG_FEATURES)} FROM main.f "
                          f"WHERE {complete}' }}\ncolumns: {{ target: y, features: [{', '.join(REG_FEATURES)}] }}\n"
                          f"params: {{ learner: lasso, alpha: {LASSO_ALPHA}, standardize: true }}\n")
    # The k-fold training: the 5 validation fits, then the fit on every row (timed from its
    # progress line); the training without validation: the fit on every row alone.
    cv = train_repeated(project, "boosted_cv", args.repeat, since="fitting on every row")
    full = train_repeated(project, "boosted", args.repeat)
    lasso = project.train("lasso")
    m = cv["report"]["metrics"]
    s_folds = [m[f"rmse.fold{f + 1}"] for f in range(REG_FOLDS)]
    s_trees = len(project.model_file("boosted", full["report"]["version"])["fitted"]["learner"]["booster"]["trees"])
    lasso_file = project.model_file("lasso", lasso["report"]["version"])["fitted"]["learner"]
    p, p_wall, p_peak, p_t = run_peer("regression", {"csv": path, "features": REG_FEATURES, "categorical": categorical,
                                                     "folds": REG_FOLDS, "alpha": LASSO_ALPHA}, args.repeat)
    case = f"friedman1 {REG_ROWS // 1000}k x {len(REG_FEATURES)} + 3 categorical, 5% missing"
    t.add(case, f"{REG_FOLDS}-fold RMSE, mean (different random folds on each side)", m["rmse"], p["cv_rmse"],
          target="<= 1.05", note=f"std socle {m['rmse.std']:.4f}, sklearn {statistics.pstdev(p['cv_folds']):.4f}")
    t.add(case, "boosting iterations, fit on every row (early stopping)", s_trees, p["n_iter"], ratio=None)
    t.add(case, "fit s on every row (socle fit, training without validation / sklearn .fit)", full["fit_s"],
          p_t["fit_s"], target="<= 1", note="socle: `fitting` to `writing the version`, input encoding included")
    t.add(case, "fit s on every row (socle k-fold training: `fitting on every row` on)", cv["fit_s"], p_t["fit_s"],
          note="that progress line is logged as the fit sends it")
    t.add(case, "socle duration_ms without validation / sklearn .fit s", full["duration_s"], p_t["fit_s"])
    t.add(case, "k-fold training s (socle duration_ms / sklearn 5 fits + fit on every row)", cv["duration_s"],
          p_t["cv_s"] + p_t["fit_s"])
    t.add(case, "process wall s (socle k-fold train / whole peer script)", cv["wall_s"], p_wall,
          note="the peer script also fits the lasso")
    t.add(case, "peak MiB (socle k-fold train / whole peer script)", cv["peak_mib"], p_peak)
    t.add(case, "peak MiB (socle train without validation / whole peer script)", full["peak_mib"], p_peak)
    # Lasso on the complete rows, standardised on both sides.
    s_coef, s_icpt = lasso_file["model"]["coef"], lasso_file["model"]["intercept"]
    s_scaler = lasso_file["scaler"]
    diff = lambda a, b: max(abs(u - v) for u, v in zip(a, b))
    coef_diff = diff(s_coef, p["lasso"]["coef"])
    lcase = f"lasso alpha={LASSO_ALPHA}, complete rows, standardised"
    s_rows = int(lasso["report"]["metrics"]["rows"])
    t.add(lcase, "rows (complete numeric rows)", s_rows, p["lasso"]["rows"], ratio=None, target="equal",
          passed=s_rows == p["lasso"]["rows"])
    t.add(lcase, "scaler max |diff| (mean, scale) vs StandardScaler", max(diff(s_scaler["mean"], p["lasso"]["mean"]),
                                                                         diff(s_scaler["scale"], p["lasso"]["scale"])),
          None, ratio=None)
    t.add(lcase, f"coef max |diff| vs sklearn (tol {LASSO_PEER['tol']:g})", coef_diff, None, ratio=None,
          target=f"<= {LASSO_COEF_TOL:g}", on="socle",
          note=f"socle fits with tol {LASSO_SOCLE['tol']:g}, max_iter {LASSO_SOCLE['max_iter']:,} (fixed)")
    t.add(lcase, "intercept |diff| vs sklearn", abs(s_icpt - p["lasso"]["intercept"]), None, ratio=None)
    t.add(lcase, f"coef max |diff| vs sklearn with socle's tol {LASSO_SOCLE['tol']:g}",
          diff(s_coef, p["lasso_socle_tol"]["coef"]), None, ratio=None,
          note="information: sklearn with the tolerance socle uses")
    t.add(lcase, "fit s (socle fit / sklearn Lasso.fit, tol 1e-10)", lasso["fit_s"], p_t["lasso_fit_s"])
    t.details["data"] = {"csv": path, "rows": REG_ROWS, "features": REG_FEATURES, "categorical": REG_CATEGORICAL,
                         "cat_effect_effects": effects, "missing_share": REG_MISSING,
                         "generator": "make_friedman1(n_samples=100_000, n_features=10, noise=1.0, random_state=0); "
                                      "numpy default_rng(0) for effects, categories and blanks"}
    t.details["boosted"] = {
        "socle_kfold": {k: v for k, v in cv.items() if k != "report"} | {"metrics": m, "fit_from": "fitting on every row"},
        "socle_no_validation": {k: v for k, v in full.items() if k != "report"} | {"trees": s_trees},
        "sklearn": {"cv_rmse": p["cv_rmse"], "cv_folds": p["cv_folds"], "fold_n_iter": p["fold_n_iter"],
                    "n_iter": p["n_iter"], "threads": p["threads"], "wall_s": p_wall, "peak_mib": p_peak, **p_t},
        "socle_folds": s_folds,
        "note": "socle's folds (seed 42) and sklearn's (KFold(shuffle=True, random_state=0)) are different random splits; "
                "so are the early-stopping holdouts (socle seed 42, sklearn random_state=0)"}
    t.details["lasso"] = {"socle": {"coef": s_coef, "intercept": s_icpt, "scaler": s_scaler, "fit_s": lasso["fit_s"],
                                    "duration_s": lasso["duration_s"], "tol": LASSO_SOCLE["tol"],
                                    "max_iter": LASSO_SOCLE["max_iter"], "metrics": lasso["report"]["metrics"]},
                          "sklearn": p["lasso"] | LASSO_PEER, "sklearn_socle_tol": p["lasso_socle_tol"] | LASSO_SOCLE,
                          "coef_max_abs_diff": coef_diff}


def peer_regression(p):
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Lasso
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler
    df = pd.read_csv(p["csv"], float_precision="round_trip", keep_default_na=False, na_values=[""])
    cols = {c: df[c].to_numpy(dtype="float64") for c in p["features"]}
    for c in p["categorical"]:  # ordinal codes, NaN for missing
        codes = pd.Categorical(df[c], categories=sorted(df[c].dropna().unique())).codes.astype("float64")
        codes[codes < 0] = np.nan
        cols[c] = codes
    x = np.column_stack([cols[c] for c in p["features"] + p["categorical"]])
    y = df["y"].to_numpy(dtype="float64")
    cat = list(range(len(p["features"]), x.shape[1]))
    make = lambda: HistGradientBoostingRegressor(categorical_features=cat, random_state=0)
    folds, fold_iters = [], []
    t0 = time.perf_counter()
    for train, test in KFold(n_splits=p["folds"], shuffle=True, random_state=0).split(x):
        model = make().fit(x[train], y[train])
        folds.append(float(np.sqrt(np.mean((model.predict(x[test]) - y[test]) ** 2))))
        fold_iters.append(int(model.n_iter_))
    t1 = time.perf_counter()
    full = make().fit(x, y)
    t2 = time.perf_counter()
    # Lasso: numeric features, complete rows, standardised.
    n_num = len(p["features"])
    keep = ~np.isnan(x[:, :n_num]).any(axis=1)
    xc, yc = x[keep, :n_num], y[keep]
    t3 = time.perf_counter()
    scaler = StandardScaler().fit(xc)
    xs = scaler.transform(xc)
    lasso = Lasso(alpha=p["alpha"], **LASSO_PEER).fit(xs, yc)
    t4 = time.perf_counter()
    loose = Lasso(alpha=p["alpha"], **LASSO_SOCLE).fit(xs, yc)
    fitted = lambda m: {"coef": [float(v) for v in m.coef_], "intercept": float(m.intercept_),
                        "n_iter": int(m.n_iter_), "dual_gap": float(m.dual_gap_)}
    return {"cv_rmse": float(np.mean(folds)), "cv_folds": folds, "fold_n_iter": fold_iters, "n_iter": int(full.n_iter_),
            "threads": threads_info(),
            "lasso": fitted(lasso) | {"rows": int(keep.sum()), "mean": scaler.mean_.tolist(),
                                      "scale": scaler.scale_.tolist()},
            "lasso_socle_tol": fitted(loose),
            "timings": {"cv_s": t1 - t0, "fit_s": t2 - t1, "lasso_fit_s": t4 - t3}}


# ---------------------------------------------------------------------------------------------

PEERS = {"rules": peer_rules, "forecast": peer_forecast, "kmeans": peer_kmeans, "recommend": peer_recommend,
         "regression": peer_regression}
BENCHES = {"rules": bench_rules, "forecast": bench_forecast, "clustering": bench_clustering,
           "recommend": bench_recommend, "regression": bench_regression}


def versions():
    out = {"python": platform.python_version()}
    for module, dist in [("prophet", "prophet"), ("mlxtend", "mlxtend"), ("sklearn", "scikit-learn"),
                         ("implicit", "implicit"), ("pandas", "pandas"), ("numpy", "numpy")]:
        try:
            from importlib.metadata import version
            out[dist] = version(dist)
        except Exception:  # noqa: BLE001
            out[dist] = None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--socle", help="the socle binary")
    ap.add_argument("--only", default=",".join(COMPARISONS), help=f"comma-separated, of: {', '.join(COMPARISONS)}")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the median time is kept")
    ap.add_argument("--datasets", default=DATASETS, help="the shared datasets folder")
    ap.add_argument("--out", default=os.path.join(RESULTS, "ml.json"), help="where the JSON results go")
    ap.add_argument("--keep", action="store_true", help="keep the socle projects (their folder is printed)")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--payload", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        with open(args.payload) as f:
            payload = json.load(f)
        result = PEERS[args.peer](payload)
        with open(args.result, "w") as f:
            json.dump(result, f)
        return 0
    if not args.socle:
        ap.error("--socle is required")
    args.socle = os.path.abspath(args.socle)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in only if c not in COMPARISONS]
    if unknown:
        ap.error(f"unknown comparison(s) {', '.join(unknown)}; choose from {', '.join(COMPARISONS)}")
    args.work = tempfile.mkdtemp(prefix="socle-bench-ml-")
    version = measure([args.socle, "--version"]).out.strip()
    machine = {"cores": os.cpu_count(), "socle": args.socle, "socle_version": version,
               "socle_build": "debug" if "/debug/" in args.socle else "release", "repeat": args.repeat,
               "packages": versions(),
               "threads": "socle: every core (its fits split rows over threads); sklearn KMeans, "
                          "HistGradientBoosting, implicit: every core (OpenMP); implicit runs with "
                          "OPENBLAS_NUM_THREADS=1 as it asks; Prophet (Stan): one"}
    machine["load_average_at_start"] = os.getloadavg()
    print(f"{version} ({machine['socle_build']} build, {args.socle}); {machine['cores']} cores, load average "
          f"{machine['load_average_at_start'][0]:.1f}; median of {args.repeat} run(s)", file=sys.stderr)
    print("peers: " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()), file=sys.stderr)
    results = {"machine": machine, "comparisons": {}}
    rows = []
    try:
        for name in only:
            t = Table(name)
            started = time.perf_counter()
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            try:
                BENCHES[name](args, t)
                status = "done"
            except NotImplementedError as e:
                status = "pending"
                t.rows.append({"comparison": name, "case": "-", "measure": str(e), "socle": None, "peer": None,
                               "socle/peer": None, "target": None, "verdict": "pending", "note": None})
            except Exception as e:  # noqa: BLE001 - one comparison's failure does not stop the others
                status = "failed"
                t.details["error"] = str(e)
                t.details["traceback"] = traceback.format_exc()
                lines = [l.strip() for l in str(e).splitlines() if l.strip()]
                shown = next((l for l in lines if l.startswith("error")), lines[-1] if lines else repr(e))
                t.rows.append({"comparison": name, "case": "-", "measure": f"FAILED: {shown[:200]}",
                               "socle": None, "peer": None, "socle/peer": None, "target": None, "verdict": "FAILED",
                               "note": None})
                print(f"[{name}] failed:\n{traceback.format_exc()}", file=sys.stderr)
            elapsed = time.perf_counter() - started
            print(f"[{name}] {status} in {elapsed:.0f} s", file=sys.stderr, flush=True)
            results["comparisons"][name] = {"status": status, "seconds": elapsed, "rows": t.rows, "details": t.details}
            rows += t.rows
    finally:
        if args.keep:
            print(f"socle projects kept in {args.work}", file=sys.stderr)
        else:
            shutil.rmtree(args.work, ignore_errors=True)
    print()
    print_table(rows)
    misses = [r for r in rows if r["verdict"] in ("MISS", "FAILED")]
    machine["load_average_at_end"] = os.getloadavg()
    print(f"\nload average {machine['load_average_at_start'][0]:.1f} at the start, "
          f"{machine['load_average_at_end'][0]:.1f} at the end ({machine['cores']} cores): other work on the machine "
          f"slows both sides, OpenMP peers most")
    print(f"{len(misses)} target(s) missed or failed; ratios are socle/peer (time, memory: below 1 = socle "
          f"faster / smaller). Details: {os.path.relpath(args.out, ROOT)}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2, default=str)
    return 1 if any(r["verdict"] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
