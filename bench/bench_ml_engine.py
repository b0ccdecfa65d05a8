"""The ml engine alone (no Odoo, no database): fit / predict_proba / explain at several sizes.

    PYTHONPATH=crm_ai python bench/bench_ml_engine.py        (or: bench/run engine)

Input rows are the bank leads (cycled to the size wanted) in the shape
``LeadPropensityEngine.extract`` (``crm_ai/models/engine_lead_propensity.py``) gives them:
medium + the 12 x_ fields + the six history signals (synthetic here: the bank data has
none).  What it measures:

* ``fit``: ``LeadPropensityModel(C="auto", half_life_days="auto")`` as the trainer's trial
  model (5 C x 5 half-lives on the newest 20 % of the rows, then a refit), then a fit with
  the chosen hyper-parameters (the deployed model), then the PLS port's fit + predict;
* ``predict_proba`` and ``explain`` (top 5 reasons each side, labels) on one batch, for
  batch sizes around ``LeadPropensityEngine.batch_size`` (5,000): the time per lead is what sets
  the throughput, the time per batch is how long one scoring transaction lasts.
"""

import os
import platform
import resource
import time

import ml
import numpy as np
import pandas as pd
from ml import LeadPropensityModel, OdooPLSBaseline, time_ordered_split

HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.environ.get("BANK_CSV") or os.path.join(HERE, "..", "..", "shared", "data", "bank_marketing", "bank-full.csv")
HISTORY = ["ai_partner_won_count", "ai_partner_lost_count", "ai_partner_won_revenue",
           "ai_message_count", "ai_activity_done_count", "ai_age_days"]
CATEGORICAL = ["medium_id", "x_job", "x_marital", "x_education", "x_poutcome"]
BOOLEAN = ["x_default", "x_housing", "x_loan"]
NUMERIC = ["x_age", "x_balance", "x_campaign_contacts", "x_pdays", "x_previous_contacts", *HISTORY]
FIT_SIZES = [int(s) for s in os.environ.get("BENCH_FIT_SIZES", "10000,50000,100000,200000").split(",")]
BATCH_SIZES = [int(s) for s in os.environ.get("BENCH_BATCH_SIZES", "1000,5000,20000,50000,100000").split(",")]


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def frame_of(n, rng):
    bank = pd.read_csv(CSV, sep=";")
    rows = bank.iloc[np.arange(n) % len(bank)].reset_index(drop=True)
    X = pd.DataFrame({
        "medium_id": rows["contact"].map({"cellular": 11, "telephone": 12, "unknown": 13}).astype(object),
        "x_job": rows["job"].astype(object), "x_marital": rows["marital"].astype(object),
        "x_education": rows["education"].astype(object), "x_poutcome": rows["poutcome"].astype(object),
        "x_default": rows["default"].eq("yes"), "x_housing": rows["housing"].eq("yes"),
        "x_loan": rows["loan"].eq("yes"),
        "x_age": rows["age"].astype(float), "x_balance": rows["balance"].astype(float),
        "x_campaign_contacts": rows["campaign"].astype(float), "x_pdays": rows["pdays"].astype(float),
        "x_previous_contacts": rows["previous"].astype(float),
        "ai_partner_won_count": rng.poisson(0.5, n).astype(float),
        "ai_partner_lost_count": rng.poisson(2.0, n).astype(float),
        "ai_partner_won_revenue": rng.gamma(1.0, 5000.0, n) * (rng.rand(n) < 0.3),
        "ai_message_count": rng.poisson(3.0, n).astype(float),
        "ai_activity_done_count": rng.poisson(1.0, n).astype(float),
        "ai_age_days": rng.uniform(0, 60, n),
        "team_id": 1,
    })
    y = rows["y"].eq("yes").astype(int).to_numpy()
    age = np.linspace(900.0, 0.0, n)  # oldest first, as the trainer passes them
    return X, y, age


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    rng = np.random.RandomState(0)
    n_max = max(FIT_SIZES + BATCH_SIZES)
    X_all, y_all, age_all = frame_of(n_max, rng)
    params = {"categorical": CATEGORICAL, "numeric": NUMERIC, "boolean": BOOLEAN}
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, pandas {pd.__version__}, ml from {os.path.dirname(ml.__file__)}")
    print("\nfit (rows = closed leads; trial = auto C + half-life search and refit; final = fixed hyper-parameters)\n")
    print("| rows | trial fit (auto) | final fit | PLS port fit + predict holdout | C, half-life | peak RSS |")
    print("|---|---|---|---|---|---|")
    model = None
    for n in FIT_SIZES:
        X, y, age = X_all.iloc[:n], y_all[:n], age_all[:n] - age_all[n - 1]
        train, hold = time_ordered_split(np.arange(n))
        trial, t_trial = timed(lambda: LeadPropensityModel(**params).fit(X.iloc[train], y[train], age_days=age[train]))
        model, t_final = timed(lambda: LeadPropensityModel(**params, C=trial.C_, half_life_days=trial.half_life_days_)
                               .fit(X, y, age_days=age))
        _p, t_pls = timed(lambda: OdooPLSBaseline(fields=CATEGORICAL + BOOLEAN, team_field="team_id")
                          .fit(X.iloc[train], y[train]).predict_proba(X.iloc[hold]))
        print(f"| {n:,} | {t_trial:.1f} s | {t_final:.1f} s | {t_pls:.1f} s | {trial.C_:g}, {trial.half_life_days_} "
              f"| {rss_mb():.0f} MB |", flush=True)

    print("\nscoring one batch with the last model (labels as the Odoo glue passes them)\n")
    print("| batch | predict_proba | explain (top 5 + 5) | total | per lead | leads / s |")
    print("|---|---|---|---|---|---|")
    labels = {c: c.replace("x_", "").replace("_", " ").capitalize() for c in model.feature_names_in_}
    values = {"medium_id": {"11": "cellular", "12": "telephone", "13": "unknown"}}
    for n in BATCH_SIZES:
        X = X_all.iloc[:n]
        _p, t_pred = timed(lambda: model.predict_proba(X))
        _r, t_expl = timed(lambda: model.explain(X, top=5, min_points=0.5, field_labels=labels, value_labels=values))
        total = t_pred + t_expl
        print(f"| {n:,} | {t_pred:.2f} s | {t_expl:.2f} s | {total:.2f} s | {1e6 * total / n:.0f} µs | "
              f"{n / total:,.0f} |", flush=True)
    print(f"\npeak RSS {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
