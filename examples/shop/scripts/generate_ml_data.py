"""Generates the exports the shop's models learn from (deterministic; run from examples/shop).

Each plants a signal the example's test checks, as real shops see them:
- store_sales.csv: the physical store's daily revenue in 2024, growing, with a weekly
  pattern (weekends sell more) and two one-off shocks: a roaster outage in March (sales
  fall by 70% for a week) and a summer sale in July (+60% for a week);
- cart_lines.csv: the web shop's carts, one row per category in a cart; coffee buyers
  often add equipment, tea buyers add bakery;
- roaster_log.csv: each roaster's daily log; downtime rises with the room temperature
  above 28 °C, whatever the machine.
"""
import csv
import datetime as dt
import math
import random

rng = random.Random(7)
START = dt.date(2024, 1, 1)
OUTAGE = (dt.date(2024, 3, 11), dt.date(2024, 3, 17))
SALE = (dt.date(2024, 7, 8), dt.date(2024, 7, 14))

with open("exports/store_sales.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["day", "revenue"])
    for i in range(366):
        day = START + dt.timedelta(days=i)
        base = 1000 + 1.5 * i
        weekly = 1.25 if day.weekday() >= 5 else 1.0
        shock = 0.3 if OUTAGE[0] <= day <= OUTAGE[1] else 1.6 if SALE[0] <= day <= SALE[1] else 1.0
        noise = rng.gauss(0, 25)
        w.writerow([day.isoformat(), f"{base * weekly * shock + noise:.2f}"])

with open("exports/cart_lines.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["cart_id", "category"])
    for cart in range(1, 1501):
        items = set()
        if rng.random() < 0.3:
            items.add("Coffee")
            if rng.random() < 0.8:
                items.add("Equipment")
        elif rng.random() < 0.03:
            items.add("Equipment")
        if rng.random() < 0.45:
            items.add("Tea")
            if rng.random() < 0.75:
                items.add("Bakery")
        elif rng.random() < 0.05:
            items.add("Bakery")
        # An abandoned empty cart is not exported.
        for item in sorted(items):
            w.writerow([cart, item])

with open("exports/roaster_log.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["roaster", "day", "temperature_c", "hours_run", "downtime_min"])
    for i in range(366):
        day = START + dt.timedelta(days=i)
        season = 22 + 9 * math.sin(2 * math.pi * (i - 100) / 366)
        for roaster in ["R1", "R2", "R3"]:
            temp = season + rng.gauss(0, 3) + (1.5 if roaster == "R3" else 0)
            hours = rng.choice([6, 8, 8, 10])
            downtime = max(0.0, (temp - 28) * 6) + hours * 0.5 + rng.gauss(0, 2)
            w.writerow([roaster, day.isoformat(), f"{temp:.1f}", hours, f"{max(0.0, downtime):.1f}"])
