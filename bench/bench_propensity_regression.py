"""Lead propensity v2 against v1 and Odoo PLS where crm_ai already led: no regression?

Two data sets, one run:

1. **synthetic**: 20,000 leads with many informative custom fields (8 categorical, 6
   numeric with monotone and non-monotone effects, 4 booleans, tags), a mild drift of
   the win rate, time-ordered; generated here (``--seed``), no Odoo needed;
2. **demo** (only inside ``odoo-bin shell``, on the ``scripts/run`` demo database): the
   demo company's closed leads, extracted by the engine itself.

For each: the newest 20 % are the holdout (as the registry's); v2 (the shipped model:
every family chosen on three rolling windows, calibration if it helps), v1 (logistic
regression, C and half-life chosen on one 20 % tail, no calibration) and the PLS port
(categorical and boolean fields: PLS's best set-up) learn on the older 80 %.

    bench/run regression      (builds the demo database with scripts/run if missing)
"""

import json
import os
import sys
import time

import numpy as np
import pandas as pd

try:  # inside odoo-bin shell
    from odoo.addons.crm_ai.ml import LeadPropensityModel, OdooPLSBaseline, binary_metrics
except ImportError:  # plain Python: the engine is importable from crm_ai/
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crm_ai"))
    from ml import LeadPropensityModel, OdooPLSBaseline, binary_metrics

HOLDOUT = 0.2


def synthetic(n=20000, seed=0):
    """Leads whose outcome depends on many custom fields (additively), with a slow drift."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(index=range(n))
    logit = np.linspace(-1.4, -0.8, n)  # the win rate rises slowly over time
    cats = {}
    for k in range(8):
        levels = [f"v{j}" for j in range(rng.randint(4, 11))]
        effect = dict(zip(levels, rng.normal(0, 0.6, len(levels))))
        X[f"x_cat{k}"] = rng.choice(levels, n)
        logit += X[f"x_cat{k}"].map(effect).to_numpy()
        cats[f"x_cat{k}"] = levels
    for k in range(6):
        value = rng.gamma(2, 10, n)
        X[f"x_num{k}"] = np.round(value, 1)
        z = (value - 20) / 15
        logit += 0.5 * z if k % 2 == 0 else -0.4 * z ** 2
    for k in range(4):
        X[f"x_flag{k}"] = rng.rand(n) < 0.4
        logit += (0.7 if k % 2 else -0.5) * X[f"x_flag{k}"].to_numpy()
    tags = {"vip": 0.8, "partner": 0.4, "price_sensitive": -0.7, "newsletter": 0.0}
    X["tag_ids"] = [tuple(t for t in tags if rng.rand() < 0.25) for _ in range(n)]
    logit += np.array([sum(tags[t] for t in ts) for ts in X["tag_ids"]])
    y = (rng.rand(n) < 1 / (1 + np.exp(-logit))).astype(int)
    age = np.linspace(720, 0, n)
    kinds = {"categorical": [f"x_cat{k}" for k in range(8)], "numeric": [f"x_num{k}" for k in range(6)],
             "boolean": [f"x_flag{k}" for k in range(4)], "multilabel": ["tag_ids"]}
    pls_fields = kinds["categorical"] + kinds["boolean"]
    X["team_id"] = 1
    return X, y, age, kinds, pls_fields


def compare(X, y, age, kinds, pls_fields, tag_field=None):
    """v2, v1 and PLS on the newest 20 % (learning on the older 80 %)."""
    n = len(y)
    cut = n - int(round(n * HOLDOUT))
    train, hold = slice(0, cut), slice(cut, n)
    age_train = age[train] - age[train].min()
    out = {}
    t0 = time.monotonic()
    v2 = LeadPropensityModel(**kinds).fit(X.iloc[train], y[train], age_days=age_train)
    out["crm_ai v2"] = {**binary_metrics(y[hold], v2.predict_proba(X.iloc[hold])[:, 1]),
                        "chosen": v2.describe(), "seconds": time.monotonic() - t0}
    t0 = time.monotonic()
    v1 = LeadPropensityModel(**kinds, family="logistic", calibration=None)
    v1._validation_rows = int(cut * 0.2)
    v1.fit(X.iloc[train], y[train], age_days=age_train)
    out["crm_ai v1"] = {**binary_metrics(y[hold], v1.predict_proba(X.iloc[hold])[:, 1]),
                        "chosen": v1.describe(), "seconds": time.monotonic() - t0}
    pls = OdooPLSBaseline(fields=pls_fields, tag_field=tag_field, team_field="team_id").fit(X.iloc[train], y[train])
    p = np.nan_to_num(pls.predict_proba(X.iloc[hold])[:, 1], nan=y[train].mean())
    out["Odoo PLS port"] = binary_metrics(y[hold], p)
    return {"rows": n, "holdout": n - cut, "holdout_win_rate": float(y[hold].mean()), "models": out}


def demo(env):
    """The demo company's closed leads, as the engine extracts them."""
    company = env.company
    driver = env["crm.ai.driver"].sudo().with_company(company)
    engine = driver._ai_engine("lead_propensity", company)
    closed = engine.closed_leads()
    names = engine.input_fields()
    pls_fields, pls_tags = engine.pls_fields()
    frame = engine.extract([row[0] for row in closed], list(dict.fromkeys(names + pls_fields + ["team_id", "tag_ids"])),
                           pd.Timestamp.now().to_pydatetime())
    y = np.array([1 if won else 0 for _i, won, _d in closed])
    at = pd.to_datetime(pd.Series([d for _i, _w, d in closed]))
    age = ((at.max() - at).dt.total_seconds() / 86400.0).to_numpy()
    kinds = engine.model_params(names)
    return compare(frame, y, age, kinds, pls_fields, "tag_ids" if pls_tags else None)


def report(results):
    lines = []
    for name, r in results.items():
        lines += ["", f"### {name}: {r['rows']:,} closed leads, holdout = newest {r['holdout']:,} "
                      f"(won {r['holdout_win_rate']:.1%})", "",
                  "| model | AUC | Brier | log-loss | calibration error | chosen |", "|---|---|---|---|---|---|"]
        for model, m in r["models"].items():
            lines.append(f"| {model} | {m['auc']:.3f} | {m['brier']:.4f} | {m['log_loss']:.4f} | "
                         f"{m['calibration_error']:.3f} | {m.get('chosen', '')} |")
    return "\n".join(lines)


def main(env=None):
    # PLS reads the tags too (Odoo's PLS can use tag_ids; they carry signal here): its best set-up
    results = {"synthetic (20 informative custom fields)": compare(*synthetic(), tag_field="tag_ids")}
    if env is not None:
        results["demo database (scripts/run)"] = demo(env)
    print(report(results))
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as handle:
            json.dump(results, handle, indent=2, default=str)


if "env" in globals():  # inside odoo-bin shell
    main(env)  # noqa: F821
elif __name__ == "__main__":
    main()
