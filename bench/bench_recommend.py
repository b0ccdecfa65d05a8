"""Recommendation engine alone (no Odoo): crm_ai's two lists against popularity, country
popularity, own history, item-item and LightFM alone on the UCI Online Retail invoices, in
the same run, then its speed there and on a 50,000-customer x 20,000-product replica.

    python bench/bench_recommend.py [--data PATH] [--out FILE.json]

Data: ``../shared/data/online_retail/online_retail.csv.gz`` (read, never copied).  Kept:
lines with a CustomerID, Quantity > 0, UnitPrice > 0, invoices not starting with ``C``
(refunds).  One line = (customer, product = StockCode, order = InvoiceNo, date).

Protocol: every model is fitted on the lines
before 2011-09-01 and measured on what the customers of that training data bought from
2011-09-01 on: precision@10, recall@10 (means over the customers who bought something
relevant) and catalogue coverage, for the two lists: REORDER ("all items": every product
bought in the test, repeat purchases count) and NEW ("new items only": products the
customer had never bought before).  crm_ai is the hybrid with its default parameters, given
what the Odoo engine gives it as far as the file has it (the customers' countries as cold-start
groups; LightFM features: country and spend quintile per customer, price quintile per product):
its blend weight, and whether LightFM uses the features, are chosen on the newest 90 days of
the training lines only (its validation table is printed).  Honest caveat: the engine's design (own history first for REORDER, an
item-item / LightFM blend for NEW, the alpha grid, popularity as the tie-break of own
products) was settled while these test figures (and the issue's own) were in view; only the
blend weight is chosen by the engine, on training data.  Country popularity: popularity per country, the country of a
customer's first training line.

Speed: crm_ai's fit on the training lines, then both lists (n = 5) for every customer of
the training data, in batches of 2,000 customers as the Odoo cron does (each batch gets its
customers' lines, as the cron reads them; that slicing is not timed).  Scale: the full
cleaned data set replicated: replica r of customer c is customer c + r * 100,000 and buys
product ``code + (r % 6) * 100,000`` (six product "worlds"; products and orders are integer
ids, as the Odoo engine reads them), the least-sold products dropped to
keep 20,000, replicas up to 50,000 customers; fit, then both lists for every customer in
batches of 2,000; peak RSS of that process alone (it runs in a subprocess,
``--scale-only``).  A fit longer than ``--scale-fit-limit`` seconds is stopped and reported.
"""

import argparse
import hashlib
import json
import os
import pathlib
import platform
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "crm_ai"))  # the engine is importable without Odoo

from ml.recommend import NEW, REORDER, ProductRecommender, evaluate

DEFAULT_DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
TEST_CUTOFF = pd.Timestamp("2011-09-01")
K = 10
N_SCORED = 5
BATCH = 2_000
SCALE_CUSTOMERS = 50_000
SCALE_PRODUCTS = 20_000
SCALE_WORLDS = 6
SCALE_ID_STEP = 100_000
TARGETS = {"fit_seconds": 60, "score_seconds": 10, "scale_score_seconds": 120, "scale_peak_rss_mb": 1536}
MODELS = (  # label, strategy, uses the country groups (and, for crm_ai, the features, as the Odoo engine)
    ("crm_ai", "hybrid", True),
    ("popularity", "popularity", False),
    ("country popularity", "popularity", True),
    ("own history", "history", False),
    ("item-item", "item_item", False),
    ("LightFM alone", "lightfm", False),
)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    versions = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "pandas", "lightfm"):
        try:
            versions[name] = __import__(name).__version__
        except Exception as error:  # LightFM missing or broken: the engine serves item-item
            versions[name] = f"not importable ({type(error).__name__})"
    return {"nproc": os.cpu_count(), "cpu": cpu,
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30), "versions": versions}


def engine_version():
    """The measured code: HEAD and the sha1 of ml/recommend.py (it may differ from HEAD)."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    source = (REPO / "crm_ai" / "ml" / "recommend.py").read_bytes()
    return {"head": head.stdout.strip() or None, "recommend_py_sha1": hashlib.sha1(source).hexdigest()[:12]}


def load_lines(path):
    """The cleaned invoice lines: customer, item, order, date, country."""
    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str}, encoding="latin-1",
                      usecols=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"])
    raw = raw[raw["CustomerID"].notna() & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)
              & ~raw["InvoiceNo"].str.startswith("C")]
    return pd.DataFrame({"customer": raw["CustomerID"].astype(int).to_numpy(), "item": raw["StockCode"].to_numpy(),
                         "order": raw["InvoiceNo"].to_numpy(), "date": pd.to_datetime(raw["InvoiceDate"]).to_numpy(),
                         "country": raw["Country"].to_numpy(),
                         "amount": (raw["Quantity"] * raw["UnitPrice"]).to_numpy(), "price": raw["UnitPrice"].to_numpy()})


def features(lines):
    """What the Odoo engine gives LightFM, as far as the file has it: per customer its country and
    quintile of spend; per product its price quintile (the file has no category, industry,
    segment nor tags)."""
    spend = lines.groupby("customer")["amount"].sum()
    customer = pd.DataFrame({"country": first_country(lines),
                             "spend": pd.qcut(spend.rank(method="first"), 5, labels=False)})
    price = lines.groupby("item")["price"].median()
    item = pd.DataFrame({"price": pd.qcut(price.rank(method="first"), 5, labels=False)})
    return {"customer_features": customer, "item_features": item}


def first_country(lines):
    return lines.sort_values("date", kind="stable").groupby("customer")["country"].first()


def batches(lines, customers, size=BATCH):
    """``[(customers, their lines)]`` by ``size`` customers, as the cron reads them."""
    customers = list(customers)
    batch_of = pd.Series(np.arange(len(customers)) // size, index=customers)
    by_batch = dict(iter(lines.groupby(lines["customer"].map(batch_of).to_numpy())))
    return [(customers[start:start + size], by_batch.get(start // size, lines.iloc[:0]))
            for start in range(0, len(customers), size)]


def score_all(model, parts, n=N_SCORED):
    """Both lists for every customer of ``parts`` (``recommend_lists``, one scoring for
    both, as the cron calls it, when the engine has it); seconds, mean list length."""
    seconds, sizes = {}, []
    started = time.monotonic()
    if hasattr(model, "recommend_lists"):
        for customers, lines in parts:
            lists = model.recommend_lists(lines, customers, (REORDER, NEW), n=n)
            sizes.extend(len(v) for kind in lists.values() for v in kind.values())
        seconds["call"] = "recommend_lists"
    else:
        for kind in (REORDER, NEW):
            for customers, lines in parts:
                sizes.extend(len(v) for v in model.recommend(lines, customers, kind, n=n).values())
        seconds["call"] = "recommend, once per list"
    seconds["both"] = round(time.monotonic() - started, 2)
    return seconds, round(float(np.mean(sizes)), 2) if sizes else 0.0


def bench_quality(before, after, groups):
    results, fitted = {}, {}
    for label, strategy, grouped in MODELS:
        started = time.monotonic()
        extra = features(before) if strategy == "hybrid" else {}
        model = ProductRecommender(strategy=strategy).fit(before, groups if grouped else None, **extra)
        fit_seconds = time.monotonic() - started
        row = {"strategy": strategy, "country_groups": grouped, "fit_seconds": round(fit_seconds, 2)}
        for kind in (REORDER, NEW):
            row[kind] = evaluate(model, before, after, kind, k=K, groups=groups if grouped else None)
        results[label] = row
        fitted[label] = model
        print(f"  {label}: fitted in {fit_seconds:.1f} s, REORDER {row[REORDER]['precision']}, "
              f"NEW {row[NEW]['precision']}", flush=True)
    return results, fitted["crm_ai"]


def validation(model):
    val = model.validation_ or {}
    return {"alpha": model.alpha_, "cut": str(val.get("cut")), "customers": val.get("customers"),
            "precision": {str(k): v for k, v in (val.get("precision") or {}).items()}}


def targets(quality, speed, scale):
    ours, rows = quality["crm_ai"], []

    def row(name, value, target, met):
        rows.append({"target": name, "value": value, "target_value": target, "met": bool(met)})

    p = lambda label, kind: quality[label][kind]["precision"]
    row("REORDER precision@10: crm_ai >= own history", p("crm_ai", REORDER), p("own history", REORDER),
        p("crm_ai", REORDER) >= p("own history", REORDER))
    row("NEW precision@10: crm_ai >= item-item", ours[NEW]["precision"], p("item-item", NEW),
        p("crm_ai", NEW) >= p("item-item", NEW))
    row("NEW precision@10: crm_ai >= 1.5 x popularity", p("crm_ai", NEW), round(1.5 * p("popularity", NEW), 4),
        p("crm_ai", NEW) >= 1.5 * p("popularity", NEW))
    row("Online Retail fit seconds <= 60", speed["fit_seconds"], TARGETS["fit_seconds"],
        speed["fit_seconds"] <= TARGETS["fit_seconds"])
    row("Online Retail scoring seconds (both lists) <= 10", speed["score_seconds"]["both"], TARGETS["score_seconds"],
        speed["score_seconds"]["both"] <= TARGETS["score_seconds"])
    if scale.get("score_seconds"):
        row("50,000 x 20,000 scoring seconds (both lists) <= 120", scale["score_seconds"]["both"],
            TARGETS["scale_score_seconds"], scale["score_seconds"]["both"] <= TARGETS["scale_score_seconds"])
    if scale.get("peak_rss_mb"):
        row("50,000 x 20,000 peak RSS MB <= 1,536", scale["peak_rss_mb"], TARGETS["scale_peak_rss_mb"],
            scale["peak_rss_mb"] <= TARGETS["scale_peak_rss_mb"])
    return rows


# -- scale (its own process) -------------------------------------------------------------------
def replicate(lines, n_customers=SCALE_CUSTOMERS, n_products=SCALE_PRODUCTS):
    """See the module docstring.  Products and orders are integer ids, as the Odoo engine
    reads them (``product_product.id``, ``sale_order.id``)."""
    customers = np.sort(lines["customer"].unique())
    replicas = int(np.ceil(n_customers / len(customers)))
    code_of, codes = pd.factorize(lines["item"])
    invoice_of, invoices = pd.factorize(lines["order"])
    worlds = [np.arange(len(codes), dtype=np.int64) + w * SCALE_ID_STEP for w in range(SCALE_WORLDS)]
    customer, date = lines["customer"].to_numpy(), lines["date"].to_numpy()
    carried = {name: lines[name].to_numpy() for name in ("country", "amount", "price")}  # for the features
    parts = {"customer": [], "item": [], "order": [], "date": [], **{name: [] for name in carried}}
    for r in range(replicas):
        named = np.arange(len(invoices), dtype=np.int64) + r * len(invoices)
        parts["customer"].append(customer + r * SCALE_ID_STEP)
        parts["item"].append(worlds[r % SCALE_WORLDS][code_of])
        parts["order"].append(named[invoice_of])
        parts["date"].append(date)
        for name, values in carried.items():
            parts[name].append(values)
    big = pd.DataFrame({name: np.concatenate(values) for name, values in parts.items()})
    del parts
    kept = np.sort(big["customer"].unique())[:n_customers]
    big = big[big["customer"].isin(kept)]
    sold = big.groupby("item")["customer"].nunique().sort_values(ascending=False, kind="stable")
    big = big[big["item"].isin(sold.index[:n_products])].reset_index(drop=True)
    return big, replicas


class FitTooLong(Exception):
    pass


def bench_scale(path, fit_limit):
    engine, started = engine_version(), time.monotonic()
    big, replicas = replicate(load_lines(path))
    result = {"engine": engine, "replicas": replicas, "customers": int(big["customer"].nunique()),
              "products": int(big["item"].nunique()), "lines": len(big),
              "customer_product_pairs": int(len(big.drop_duplicates(["customer", "item"]))),
              "build_seconds": round(time.monotonic() - started, 1), "rss_after_build_mb": round(peak_rss_mb())}
    print(f"  replica: {result['customers']} customers, {result['products']} products, {result['lines']} lines "
          f"({result['build_seconds']} s, RSS {result['rss_after_build_mb']} MB); fitting...", flush=True)

    def too_long(_signum, _frame):
        raise FitTooLong

    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(fit_limit)
    started = time.monotonic()
    try:
        model = ProductRecommender().fit(big, first_country(big), **features(big))
    except FitTooLong:
        result.update({"fit_stopped_after_seconds": round(time.monotonic() - started, 1),
                       "peak_rss_mb": round(peak_rss_mb())})
        return result
    finally:
        signal.alarm(0)
    result.update({"fit_seconds": round(time.monotonic() - started, 1), "rss_after_fit_mb": round(peak_rss_mb()),
                   "validation": validation(model)})
    print(f"  fitted in {result['fit_seconds']} s (alpha {model.alpha_}, RSS {result['rss_after_fit_mb']} MB); "
          "scoring...", flush=True)
    parts = batches(big, model.customers_.tolist())
    seconds, mean_size = score_all(model, parts)
    result.update({"batches": len(parts), "score_seconds": seconds, "mean_list_length": mean_size,
                   "peak_rss_mb": round(peak_rss_mb())})
    return result


def run_scale(args):
    """The scale part in a child process (its RSS is its own)."""
    out = pathlib.Path(args.out).with_suffix(".scale.json")
    out.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--scale-only", "--data", args.data, "--out", str(out),
               "--scale-fit-limit", str(args.scale_fit_limit)]
    completed = subprocess.run(command, check=False)
    if completed.returncode or not out.exists():
        return {"error": f"scale subprocess exited with {completed.returncode}"}
    return json.loads(out.read_text())


# -- report ------------------------------------------------------------------------------------
def fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(results):
    quality, val, speed, scale = results["quality"], results["validation"], results["speed"], results["scale"]
    m = results["machine"]
    print(f"\nmachine: {m['nproc']} cores, {m['cpu']}, {m['ram_gb']} GB; {m['versions']}; engine {results['engine']}"
          + (f", replica run on {scale['engine']}" if scale.get("engine", results["engine"]) != results["engine"] else ""))
    print(f"\nOnline Retail: {results['data']['train_lines']} training lines (before {TEST_CUTOFF.date()}), "
          f"{results['data']['test_lines']} test lines, {results['data']['train_customers']} training customers, "
          f"{results['data']['train_products']} products")
    print(f"| model | REORDER precision@{K} | recall@{K} | coverage | customers | NEW precision@{K} | recall@{K} "
          "| coverage | customers | fit s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, row in quality.items():
        a, b = row[REORDER], row[NEW]
        print(f"| {label} | {fmt(a['precision'])} | {fmt(a['recall'])} | {fmt(a['coverage'])} | {a['customers']} "
              f"| {fmt(b['precision'])} | {fmt(b['recall'])} | {fmt(b['coverage'])} | {b['customers']} "
              f"| {row['fit_seconds']:.1f} |")
    print(f"\ncrm_ai alpha = {val['alpha']} (chosen on the training lines from {val['cut']} on, "
          f"{val['customers']} customers; NEW precision@{K} by alpha, 1 = item-item, 0 = LightFM)")
    print("| alpha | " + " | ".join(val["precision"]) + " |")
    print("|---|" + "---|" * len(val["precision"]))
    print("| precision | " + " | ".join(fmt(v, 4) for v in val["precision"].values()) + " |")
    print(f"\nspeed on Online Retail: fit {speed['fit_seconds']} s; both lists (n = {N_SCORED}) for "
          f"{speed['customers']} customers in {speed['batches']} batches of {BATCH} ({speed['score_seconds']['call']}): "
          f"{speed['score_seconds']['both']} s; peak RSS of the process {speed['peak_rss_mb']} MB")
    print(f"\nscale, {scale.get('customers')} customers x {scale.get('products')} products "
          f"({scale.get('replicas')} replicas, {scale.get('lines')} lines, {scale.get('customer_product_pairs')} "
          "customer-product pairs):")
    if "skipped" in scale:
        print("  skipped (--no-scale)")
    elif "error" in scale:
        print(f"  {scale['error']}")
    elif "fit_stopped_after_seconds" in scale:
        print(f"  fit stopped after {scale['fit_stopped_after_seconds']} s (limit), peak RSS {scale['peak_rss_mb']} MB")
    else:
        print("| build s | fit s | alpha | both lists s | batches | RSS after build MB | RSS after fit MB "
              "| peak RSS MB |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {scale['build_seconds']} | {scale['fit_seconds']} | {scale['validation']['alpha']} "
              f"| {scale['score_seconds']['both']} | {scale['batches']} | {scale['rss_after_build_mb']} "
              f"| {scale['rss_after_fit_mb']} | {scale['peak_rss_mb']} |")
        print(f"  validation on the replica: {scale['validation']['precision']}")
    print("\n| target | value | target | met |")
    print("|---|---|---|---|")
    for row in results["targets"]:
        print(f"| {row['target']} | {row['value']} | {row['target_value']} | {'yes' if row['met'] else 'NO'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", "--csv", default=str(DEFAULT_DATA))
    parser.add_argument("--out", default="/tmp/crm_ai_bench_recommend.json")
    parser.add_argument("--scale-only", action="store_true", help="the scale part alone (run as a subprocess)")
    parser.add_argument("--scale-fit-limit", type=int, default=600, help="stop the replica's fit after that many s")
    parser.add_argument("--no-scale", action="store_true", help="skip the scale part")
    args = parser.parse_args()
    if args.scale_only:
        result = bench_scale(args.data, args.scale_fit_limit)
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2, default=str))
        return

    started = time.monotonic()
    lines = load_lines(args.data)
    before, after = lines[lines["date"] < TEST_CUTOFF], lines[lines["date"] >= TEST_CUTOFF]
    groups = first_country(before)
    results = {"machine": machine(), "engine": engine_version(), "load_seconds": round(time.monotonic() - started, 1),
               "data": {"lines": len(lines), "train_lines": len(before), "test_lines": len(after),
                        "train_customers": int(before["customer"].nunique()),
                        "train_products": int(before["item"].nunique()), "countries": int(groups.nunique())}}
    print("quality (each model fitted on the training lines):", flush=True)
    results["quality"], model = bench_quality(before, after, groups)
    results["validation"] = validation(model)
    parts = batches(before, model.customers_.tolist())
    seconds, mean_size = score_all(model, parts)
    results["speed"] = {"fit_seconds": results["quality"]["crm_ai"]["fit_seconds"], "customers": len(model.customers_),
                        "batches": len(parts), "score_seconds": seconds, "mean_list_length": mean_size,
                        "peak_rss_mb": round(peak_rss_mb())}
    print(f"speed: both lists in {seconds['both']} s; scale part (subprocess)...", flush=True)
    results["scale"] = {"skipped": True} if args.no_scale else run_scale(args)
    results["targets"] = targets(results["quality"], results["speed"], results["scale"])
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print_report(results)
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
