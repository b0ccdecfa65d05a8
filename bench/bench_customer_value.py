"""Customer value engine alone (no Odoo): segments and repeat-purchase propensity on the
UCI Online Retail invoices, against the RFM quintile baseline in the same run, and its
speed on a 50,000-customer / 500,000-order replica.

    python bench/bench_customer_value.py [--csv PATH] [--out FILE.json]

Data: ``../shared/data/online_retail/online_retail.csv.gz`` (read, never copied).  One
invoice = one order (date = its first line, amount = the sum of its lines); invoices
starting with ``C`` are refunds; lines without a CustomerID are left out.

Protocol (fixed before looking at the test figures): features as of 2011-09-01, label =
an order in the next 91 days (before 2011-12-01).  crm_ai learns from five earlier
snapshots (30 days apart, the newest 91 days before the test cut-off, so no label
window overlaps the test); its C and recency half-life are chosen on the newest
snapshot.  The baseline's repeat rate per R + F + M quintile score is learnt on the
same newest training snapshot.
"""

import argparse
import json
import pathlib
import resource
import sys
import time

import numpy as np
import pandas as pd

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "crm_ai"))  # the engine is importable without Odoo

from ml import binary_metrics
from ml.customer_value import (
    FEATURES,
    RepeatPurchaseModel,
    RFMQuintileBaseline,
    RFMSegmenter,
    customer_features,
    purchase_labels,
    time_travel_frame,
    training_cutoffs,
)

DEFAULT_CSV = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
TEST_CUTOFF = pd.Timestamp("2011-09-01")
HORIZON_DAYS = 91
SEGMENT_AS_OF = pd.Timestamp("2011-12-10")
REPLICA_CUSTOMERS = 50_000
#: Each copied order is also repeated once, a few days apart: ~500,000 orders in all.
REPLICA_ORDER_COPIES = 2


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_orders(csv):
    lines = pd.read_csv(csv, dtype={"InvoiceNo": str, "StockCode": str}, encoding="latin-1")
    lines = lines.dropna(subset=["CustomerID"])
    lines["date"] = pd.to_datetime(lines["InvoiceDate"])
    lines["amount"] = lines["Quantity"] * lines["UnitPrice"]
    orders = lines.groupby("InvoiceNo").agg(partner=("CustomerID", "first"), date=("date", "min"),
                                            amount=("amount", "sum")).reset_index()
    orders["is_refund"] = orders["InvoiceNo"].str.startswith("C")
    return orders[["partner", "date", "amount", "is_refund"]]


def rounded(metrics):
    return {k: round(v, 4) for k, v in metrics.items()}


def bench_segments(orders):
    X = customer_features(orders, SEGMENT_AS_OF)
    started = time.monotonic()
    segmenter = RFMSegmenter().fit(X)
    names = segmenter.predict(X)
    seconds = time.monotonic() - started
    summary = segmenter.segment_summary(X, names)
    # stability: 2 % noise on revenue and up to a day on recency, refitted
    rng = np.random.default_rng(1)
    noisy = X.assign(monetary=X["monetary"] * rng.normal(1, 0.02, len(X)),
                     recency_days=X["recency_days"] + rng.integers(0, 2, len(X)))
    refit = RFMSegmenter().fit(noisy)
    return {
        "customers": len(X), "k": segmenter.k_, "seconds": seconds,
        "silhouettes": {k: round(v, 3) for k, v in segmenter.silhouettes_.items()},
        "clusters": [{"name": n, "r": round(float(s[0]), 2), "f": round(float(s[1]), 2), "m": round(float(s[2]), 2)}
                     for n, s in zip(segmenter.cluster_names_, segmenter.cluster_scores_)],
        "segments": {name: {"customers": int(row.customers), "median_recency_days": round(row.recency_days, 1),
                            "median_orders": round(row.frequency, 1), "median_revenue": round(row.monetary, 2)}
                     for name, row in summary.iterrows()},
        "noise_same_names": sorted(set(refit.cluster_names_)) == sorted(set(segmenter.cluster_names_)),
        "noise_kept_with_margin": round(float((refit.predict(noisy, previous=names) == names).mean()), 4),
        "noise_kept_without_margin": round(float((refit.predict(noisy) == names).mean()), 4),
    }


def bench_repeat(orders):
    cutoffs = training_cutoffs(TEST_CUTOFF, HORIZON_DAYS, n_cutoffs=5, step_days=30)
    X, y, age, cut = time_travel_frame(orders, cutoffs, HORIZON_DAYS)
    X_test = customer_features(orders, TEST_CUTOFF)
    y_test = purchase_labels(orders, X_test.index, TEST_CUTOFF, HORIZON_DAYS)
    started = time.monotonic()
    model = RepeatPurchaseModel(horizon_days=HORIZON_DAYS).fit(X, y, age_days=age)
    fit_seconds = time.monotonic() - started
    newest = cut == max(cut)
    baseline = RFMQuintileBaseline().fit(X[newest], y[newest])
    ours = binary_metrics(y_test, model.predict_proba(X_test)[:, 1])
    theirs = binary_metrics(y_test, baseline.predict_proba(X_test)[:, 1])
    return {
        "training_cutoffs": [str(c.date()) for c in cutoffs], "training_rows": len(y),
        "training_repeat_rate": round(float(y.mean()), 4), "test_customers": len(y_test),
        "test_repeat_rate": round(float(y_test.mean()), 4),
        "crm_ai": rounded(ours), "rfm_quintile": rounded(theirs), "fit_seconds": round(fit_seconds, 2),
        "hyperparameters": {"C": model.C_, "half_life_days": model.half_life_days_},
        "importance": [(label, round(v, 3)) for label, v in model.importance(FEATURES)],
    }


def replicate(orders, n_customers, order_copies=REPLICA_ORDER_COPIES):
    """``orders`` copied until ``n_customers`` customers, each copy's dates shifted by up
    to a week and amounts scaled by 0.8-1.2, so copies are not identical; every order
    appears ``order_copies`` times per copy, the extra ones up to two weeks later."""
    rng = np.random.default_rng(0)
    customers = orders["partner"].unique()
    copies, frames = int(np.ceil(n_customers / len(customers))), []
    for copy in range(copies):
        for repeat in range(order_copies):
            frame = orders.copy()
            frame["partner"] = frame["partner"] + copy * 1_000_000
            shift = rng.integers(-7, 8, len(frame)) + (rng.integers(1, 15, len(frame)) if repeat else 0)
            frame["date"] = frame["date"] + pd.to_timedelta(shift, unit="D")
            frame["amount"] = frame["amount"] * rng.uniform(0.8, 1.2, len(frame))
            frames.append(frame)
    big = pd.concat(frames, ignore_index=True)
    keep = big["partner"].isin(big["partner"].unique()[:n_customers])
    return big[keep].reset_index(drop=True)


def bench_speed(orders):
    big = replicate(orders, REPLICA_CUSTOMERS)
    result = {"customers": int(big["partner"].nunique()), "orders": len(big)}
    timings = {}
    t = time.monotonic()
    cutoffs = training_cutoffs(TEST_CUTOFF, HORIZON_DAYS, n_cutoffs=5, step_days=30)
    X, y, age, _cut = time_travel_frame(big, cutoffs, HORIZON_DAYS)
    timings["train: snapshots (features + labels)"] = time.monotonic() - t
    t = time.monotonic()
    model = RepeatPurchaseModel(horizon_days=HORIZON_DAYS).fit(X, y, age_days=age)
    timings["train: repeat-purchase model"] = time.monotonic() - t
    t = time.monotonic()
    current = customer_features(big, SEGMENT_AS_OF)
    timings["score: features as of today"] = time.monotonic() - t
    t = time.monotonic()
    segmenter = RFMSegmenter().fit(current)
    timings["train: segmenter (k = 3..8)"] = time.monotonic() - t
    t = time.monotonic()
    names = segmenter.predict(current, previous=segmenter.predict(current))
    timings["score: segments"] = time.monotonic() - t
    t = time.monotonic()
    model.predict_proba(current)
    model.explain(current, top=5, min_points=0.5, field_labels=FEATURES)
    timings["score: propensity + reasons"] = time.monotonic() - t
    result.update({"training_rows": len(y), "k": segmenter.k_, "segments": len(set(names)),
                   "timings": {k: round(v, 2) for k, v in timings.items()},
                   "train_seconds": round(sum(v for k, v in timings.items() if k.startswith("train")), 1),
                   "score_seconds": round(sum(v for k, v in timings.items() if k.startswith("score")), 1),
                   "peak_rss_mb": round(peak_rss_mb())})
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=str(DEFAULT_CSV))
    parser.add_argument("--out", default="/tmp/crm_ai_bench_customer_value.json")
    args = parser.parse_args()
    started = time.monotonic()
    orders = load_orders(args.csv)
    results = {"orders": len(orders), "load_seconds": round(time.monotonic() - started, 1),
               "segments": bench_segments(orders), "repeat_purchase": bench_repeat(orders),
               "speed": bench_speed(orders)}
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    seg, rep, speed = results["segments"], results["repeat_purchase"], results["speed"]
    print(f"segments as of {SEGMENT_AS_OF.date()}: {seg['customers']} customers, k = {seg['k']}, "
          f"silhouettes {seg['silhouettes']}")
    print("| segment | customers | median days since last order | median orders | median revenue |")
    print("|---|---|---|---|---|")
    for name, row in seg["segments"].items():
        print(f"| {name} | {row['customers']} | {row['median_recency_days']} | {row['median_orders']} | "
              f"{row['median_revenue']} |")
    print("clusters (mean R, F, M scores 1-5):", seg["clusters"])
    print(f"refit on 2 % noise: same names {seg['noise_same_names']}, kept {seg['noise_kept_with_margin']:.1%} "
          f"(without the margin {seg['noise_kept_without_margin']:.1%})")
    print(f"\nrepeat purchase within {HORIZON_DAYS} days of {TEST_CUTOFF.date()} ({rep['test_customers']} customers, "
          f"{rep['test_repeat_rate']:.1%} bought again); trained on {rep['training_rows']} rows "
          f"({rep['training_cutoffs']})")
    print("| model | AUC | Brier | log-loss | calibration error |")
    print("|---|---|---|---|---|")
    for label, key in (("crm_ai", "crm_ai"), ("RFM quintile score", "rfm_quintile")):
        m = rep[key]
        print(f"| {label} | {m['auc']:.3f} | {m['brier']:.4f} | {m['log_loss']:.4f} | {m['calibration_error']:.3f} |")
    print("hyper-parameters:", rep["hyperparameters"], "importance:", rep["importance"][:5])
    print(f"\nspeed, {speed['customers']} customers / {speed['orders']} orders: train {speed['train_seconds']} s, "
          f"score {speed['score_seconds']} s, peak RSS {speed['peak_rss_mb']} MB; {speed['timings']}")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
