"""socle build vs dbt build (dbt-duckdb) on generated projects.

1. `wide`: N models (default 200) over a small seed: staging views, intermediate tables
   joining earlier models, marts with window functions, and generic tests. Small data: the
   time is the tools' own overhead (parsing, Jinja, scheduling).
2. `large`: 10 models over a 10M-row Parquet file (bench/data/warehouse, made by the
   warehouse benchmark or here): the time is the engines'.
3. Parse + compile of 1,000 models (`socle compile` vs `dbt compile`).

Each tool runs as a user runs it (a fresh process per build, start-up included). The
median of --repeat runs is kept.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "bench", "data", "transform")
RESULTS = os.path.join(ROOT, "bench", "results")
SALES = os.path.join(ROOT, "bench", "data", "warehouse", "sales.parquet")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def common_files(project, name):
    write(os.path.join(project, "dbt_project.yml"),
          f"name: {name}\nversion: '1.0'\nprofile: {name}\nmodels:\n  {name}:\n    +materialized: view\n")
    write(os.path.join(project, "socle.yml"), f"name: {name}\n")
    write(os.path.join(project, "profiles.yml"),
          f"{name}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: dbt.duckdb\n      schema: main\n      threads: 4\n")


def wide_project(n):
    name = f"wide{n}"
    project = os.path.join(DATA, name)
    shutil.rmtree(project, ignore_errors=True)
    common_files(project, name)
    rnd = random.Random(42)
    rows = ["id,customer_id,amount,category,ordered_at"]
    for i in range(1, 1001):
        rows.append(f"{i},{rnd.randint(1, 100)},{rnd.randint(100, 99999) / 100},{rnd.choice('abcde')},2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}")
    write(os.path.join(project, "seeds", "orders.csv"), "\n".join(rows) + "\n")
    write(os.path.join(project, "macros", "cents.sql"),
          "{% macro cents(col) %}cast(round({{ col }} * 100) as bigint){% endmacro %}\n")
    schema = ["version: 2", "models:"]
    for i in range(n):
        if i < n // 4:
            sql = (f"select id, customer_id, {{{{ cents('amount') }}}} as amount_cents, category, ordered_at\n"
                   f"from {{{{ ref('orders') }}}} where id % {i % 7 + 2} <> 0\n")
            kind = "staging"
        elif i < 3 * n // 4:
            a, b = rnd.randrange(0, n // 4), rnd.randrange(0, i)
            sql = ("{{ config(materialized='table') }}\n"
                   f"select a.customer_id, a.category, count(*) as orders, sum(a.amount_cents) as cents\n"
                   f"from {{{{ ref('m{a:04d}') }}}} a join (select distinct customer_id from {{{{ ref('m{b:04d}') }}}}) b\n"
                   f"  on a.customer_id = b.customer_id\n"
                   f"group by 1, 2\n")
            kind = "intermediate"
        else:
            a = rnd.randrange(n // 4, 3 * n // 4)
            cols = ", ".join(f"sum(case when category = '{c}' then cents else 0 end) as {c}_cents" for c in "abcde")
            sql = ("{{ config(materialized='table') }}\n"
                   f"select customer_id, {cols},\n"
                   f"  rank() over (order by sum(cents) desc, customer_id) as rnk\n"
                   f"from {{{{ ref('m{a:04d}') }}}} group by customer_id\n")
            kind = "marts"
        write(os.path.join(project, "models", kind, f"m{i:04d}.sql"), sql)
        if i % 10 == 0 and kind != "staging":
            schema += [f"  - name: m{i:04d}", "    columns:", "      - name: customer_id", "        data_tests: [not_null]"]
    write(os.path.join(project, "models", "schema.yml"), "\n".join(schema) + "\n")
    return project


def large_project():
    project = os.path.join(DATA, "large")
    shutil.rmtree(project, ignore_errors=True)
    common_files(project, "large")
    write(os.path.join(project, "macros", "parquet.sql"),
          "{% macro sales() %}{% if var('engine', 'duckdb') == 'socle' %}'" + SALES + "'"
          "{% else %}read_parquet('" + SALES + "'){% endif %}{% endmacro %}\n")
    models = {
        "stg_sales": "select order_id, customer_id, product_id, country, order_ts, quantity, amount from {{ sales() }}",
        "by_country": "{{ config(materialized='table') }} select country, count(*) as n, sum(amount) as revenue from {{ ref('stg_sales') }} group by 1",
        "by_customer": "{{ config(materialized='table') }} select customer_id, count(*) as orders, sum(amount) as revenue, max(order_ts) as last_order from {{ ref('stg_sales') }} group by 1",
        "by_product": "{{ config(materialized='table') }} select product_id, sum(quantity) as units, sum(amount) as revenue from {{ ref('stg_sales') }} group by 1",
        "by_month": "{{ config(materialized='table') }} select date_trunc('month', order_ts) as month, country, sum(amount) as revenue from {{ ref('stg_sales') }} group by 1, 2",
        "top_customers": "{{ config(materialized='table') }} select * from {{ ref('by_customer') }} order by revenue desc, customer_id limit 1000",
        "big_orders": "{{ config(materialized='table') }} select order_id, customer_id, amount from {{ ref('stg_sales') }} where amount > 450",
        "customer_countries": "{{ config(materialized='table') }} select customer_id, count(distinct country) as countries from {{ ref('stg_sales') }} group by 1",
        "product_rank": "{{ config(materialized='table') }} select product_id, revenue, rank() over (order by revenue desc, product_id) as rnk from {{ ref('by_product') }}",
        "summary": "{{ config(materialized='table') }} select (select count(*) from {{ ref('by_customer') }}) as customers, (select sum(revenue) from {{ ref('by_country') }}) as revenue",
    }
    for name, sql in models.items():
        write(os.path.join(project, "models", f"{name}.sql"), sql + "\n")
    return project


def timed(cmd, cwd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed in {cwd}: {' '.join(cmd)}\n{proc.stderr.read()}")
    return elapsed, usage.ru_maxrss / 1024


def clean(project):
    for d in [".socle", "target", "logs", "dbt_target"]:
        shutil.rmtree(os.path.join(project, d), ignore_errors=True)
    for f in ["dbt.duckdb", "dbt.duckdb.wal"]:
        if os.path.exists(os.path.join(project, f)):
            os.remove(os.path.join(project, f))


def compare(label, project, socle, repeat, socle_args, dbt_args):
    s_times, d_times, s_rss, d_rss = [], [], [], []
    for _ in range(repeat):
        clean(project)
        t, m = timed([socle, "--project", project, *socle_args], project)
        s_times.append(t)
        s_rss.append(m)
        t, m = timed(["dbt", *dbt_args, "--profiles-dir", ".", "--target-path", "dbt_target"], project)
        d_times.append(t)
        d_rss.append(m)
    s, d = statistics.median(s_times), statistics.median(d_times)
    print(f"{label:<36}{s:>9.2f}{d:>9.2f}{d / s:>8.1f}x{max(s_rss):>9.0f}{max(d_rss):>9.0f}")
    return {"socle_s": s, "dbt_s": d, "speedup": d / s, "socle_peak_mib": max(s_rss), "dbt_peak_mib": max(d_rss)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socle", required=True)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    results = {}
    print(f"{'project':<36}{'socle s':>9}{'dbt s':>9}{'speedup':>9}{'socle MiB':>10}{'dbt MiB':>9}")
    wide = wide_project(args.models)
    results[f"wide_{args.models}_build"] = compare(f"build, {args.models} models, small data", wide, args.socle, args.repeat,
                                                   ["build"], ["build"])
    if not os.path.exists(SALES):
        raise SystemExit(f"{SALES} is missing: run bench/warehouse/run.sh once to generate it")
    large = large_project()
    results["large_10_models_10M_rows"] = compare("build, 10 models over 10M rows", large, args.socle, args.repeat,
                                                  ["build", "--vars", "{engine: socle}"], ["build"])
    thousand = wide_project(1000)
    results["compile_1000_models"] = compare("parse + compile, 1,000 models", thousand, args.socle, args.repeat,
                                             ["compile"], ["compile"])
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "transform.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
