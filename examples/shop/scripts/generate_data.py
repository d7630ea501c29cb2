"""Generates the shop example's raw exports in exports/ (deterministic; run from examples/shop).

Each export comes in the format its system produces, as in real back offices: orders as
CSV (the order system), customers as an Excel workbook (the CRM export, with a title row),
the catalogue as JSON (the e-shop API), comments as JSON Lines (the review widget). The
Excel file needs openpyxl (`pip install openpyxl`); socle itself needs nothing.

The shapes follow what e-commerce teams export from their back office: customers with
contact details to validate and hash, a product catalogue, orders with statuses and
discounts, and free-text satisfaction comments (French and English, accents included).
"""
import csv
import json
import os
import datetime as dt
import random

rng = random.Random(42)
os.makedirs("exports", exist_ok=True)
FIRST = ["Camille", "Léa", "Hugo", "Zoé", "Lucas", "Chloé", "Noah", "Inès", "Jules", "Manon", "Ana", "Omar", "Mei", "Sven"]
LAST = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Silva", "Haddad", "Chen", "Larsen"]
COUNTRIES = ["FR", "FR", "FR", "BE", "CH", "DE", "ES", "CA"]
CATEGORIES = {
    "Coffee": ["Espresso beans 1kg", "Filter coffee 500g", "Decaf 250g"],
    "Tea": ["Green tea tin", "Earl Grey 100g", "Rooibos 200g"],
    "Equipment": ["Grinder", "French press", "Kettle gooseneck", "Scale 0.1g"],
    "Bakery": ["Croissant box", "Cookies 6-pack"],
}
COMMENTS = [
    "Livraison rapide, café excellent !", "Great taste, will order again", "Colis abîmé à l'arrivée",
    "Le moulin est bruyant mais efficace", "Too expensive for the quantity", "Service client très réactif",
    "Délicieux thé vert, parfait le matin", "Arrived late but good quality", "Excellent rapport qualité prix",
    "", "Je recommande vivement", "The kettle stopped working after a week",
]

def email(first, last, i):
    if i % 17 == 0:
        return f"{first}.{last}@invalid"          # no TLD: fails validation
    if i % 23 == 0:
        return ""                                  # missing
    domain = rng.choice(["gmail.com", "orange.fr", "proton.me", "example.org"])
    return f"{first}.{last}{i}@{domain}".lower().replace("é", "e").replace("è", "e").replace("ï", "i").replace("ö", "o")

def phone(i):
    if i % 19 == 0:
        return "12-34"                             # too short
    return "+33 6 " + " ".join(f"{rng.randrange(100):02d}" for _ in range(4))

def ip(i):
    if i % 29 == 0:
        return "999.1.2"                           # malformed
    return ".".join(str(rng.randrange(1, 255)) for _ in range(4))

with open("exports/customers.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "first_name", "last_name", "email", "phone", "ip_address", "country", "signup_date"])
    for i in range(1, 121):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        signup = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(540))
        w.writerow([i, first, last, email(first, last, i), phone(i), ip(i), rng.choice(COUNTRIES), signup.isoformat()])

products = []
with open("exports/products.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["product_id", "product_name", "category", "unit_price"])
    pid = 1
    for cat, names in CATEGORIES.items():
        for name in names:
            price = round(rng.uniform(3, 25) if cat != "Equipment" else rng.uniform(25, 140), 2)
            products.append((pid, price))
            w.writerow([pid, name, cat, f"{price:.2f}"])
            pid += 1

with open("exports/orders.csv", "w", newline="", encoding="utf-8") as f, \
        open("exports/comments.csv", "w", newline="", encoding="utf-8") as c:
    w = csv.writer(f)
    wc = csv.writer(c)
    w.writerow(["order_id", "customer_id", "product_id", "quantity", "discount_pct", "status", "ordered_at"])
    wc.writerow(["order_id", "rating", "comment"])
    start = dt.datetime(2024, 1, 1, 8, 0)
    for oid in range(1, 601):
        when = start + dt.timedelta(minutes=rng.randrange(60 * 24 * 365))
        status = rng.choices(["delivered", "shipped", "cancelled", "returned"], [80, 10, 6, 4])[0]
        pid, _ = rng.choice(products)
        w.writerow([oid, rng.randrange(1, 121), pid, rng.choice([1, 1, 1, 2, 3]), rng.choice([0, 0, 0, 10, 20]), status,
                    when.strftime("%Y-%m-%d %H:%M:%S")])
        if status == "delivered" and rng.random() < 0.4:
            wc.writerow([oid, rng.randrange(1, 6), rng.choice(COMMENTS)])


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        out = list(csv.DictReader(f))
    os.remove(path)
    return out

# The catalogue, as the e-shop API returns it.
catalogue = [{"product_id": int(r["product_id"]), "product_name": r["product_name"], "category": r["category"],
              "unit_price": float(r["unit_price"])} for r in rows("exports/products.csv")]
with open("exports/products.json", "w", encoding="utf-8") as f:
    json.dump({"exported_at": "2025-01-01T00:00:00Z", "products": catalogue}, f, ensure_ascii=False, indent=1)

# Reviews, one JSON object per line; an empty comment is null.
with open("exports/comments.jsonl", "w", encoding="utf-8") as f:
    for r in rows("exports/comments.csv"):
        f.write(json.dumps({"order_id": int(r["order_id"]), "rating": int(r["rating"]),
                            "comment": r["comment"] or None}, ensure_ascii=False) + "\n")

# The CRM's workbook: a title row, then the table; dates are date cells, blanks are empty.
import openpyxl  # noqa: E402
book = openpyxl.Workbook()
sheet = book.active
sheet.title = "Customers"
sheet.append(["CRM export — customers"])
customers = rows("exports/customers.csv")
sheet.append(list(customers[0].keys()))
for r in customers:
    sheet.append([int(r["customer_id"]), r["first_name"], r["last_name"], r["email"] or None, r["phone"],
                  r["ip_address"], r["country"], dt.date.fromisoformat(r["signup_date"])])
for cell in sheet["H"][2:]:
    cell.number_format = "yyyy-mm-dd"
book.save("exports/customers.xlsx")
