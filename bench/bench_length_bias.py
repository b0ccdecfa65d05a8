"""Lead propensity and lifetime weights: does weighting each closed lead by its lifetime make
the model right on the open leads it scores?  A simulation (no Odoo, no real data: the bank
leads of benchmark 1 all close the day they are created, so they cannot show it).

    PYTHONPATH=crm_ai python bench/bench_length_bias.py [--out FILE.json]

A CRM creates leads for two years (20 a day; source web / fair / call, win rates 20 / 40 /
30 %), each lives a gamma-distributed time (mean by outcome, per scenario) and closes won or
lost.  Today, the closed leads train the model as the engine does (one snapshot per lead at a
uniform moment of its life: its age then is a feature; recency by closing date; every choice
automatic) and the open leads are scored, then measured against the outcomes they will have.
Weighted: each closed lead weighs its lifetime in days, within an hour and a year, divided by the mean
(``engine_lead_propensity.LIFETIME_WEIGHT_DAYS``).  Three scenarios: won deals live longer than
lost leads, the other way round, alike.  Seeds 0-4; the means over seeds are printed.
"""

import argparse
import json
import pathlib
import sys

import numpy as np
import pandas as pd

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "crm_ai"))
from ml import LeadPropensityModel, binary_metrics

DAYS, PER_DAY = 730, 20
WIN_RATES = {"web": 0.2, "fair": 0.4, "call": 0.3}
SCENARIOS = {"won live longer (60 d vs 15 d)": (60.0, 15.0), "lost live longer (15 d vs 60 d)": (15.0, 60.0),
             "alike (30 d)": (30.0, 30.0)}
WEIGHT_DAYS = (1.0 / 24, 365.0)  # as engine_lead_propensity.LIFETIME_WEIGHT_DAYS
SEEDS = range(5)


def simulate(mean_won, mean_lost, seed):
    rng = np.random.default_rng(seed)
    n = DAYS * PER_DAY
    created = np.sort(rng.random(n) * DAYS)
    source = rng.choice(list(WIN_RATES), n)
    won = (rng.random(n) < np.vectorize(WIN_RATES.get)(source)).astype(int)
    lifetime = rng.gamma(2.0, np.where(won == 1, mean_won, mean_lost) / 2.0)
    closed_at = created + lifetime
    closed, open_ = closed_at <= DAYS, closed_at > DAYS
    order = np.argsort(closed_at[closed])  # the engine trains in closing order
    c = np.flatnonzero(closed)[order]
    train = pd.DataFrame({"source": source[c], "age": rng.random(len(c)) * lifetime[c]})
    score = pd.DataFrame({"source": source[open_], "age": DAYS - created[open_]})
    return train, won[c], DAYS - closed_at[c], lifetime[c], score, won[open_]


def run(mean_won, mean_lost, seed):
    train, y, age_days, lifetime, score, y_open = simulate(mean_won, mean_lost, seed)
    weights = np.clip(lifetime, *WEIGHT_DAYS)
    weights /= weights.mean()
    rows = {}
    for name, sample_weight in (("one snapshot per lead", None), ("lifetime-weighted", weights)):
        model = LeadPropensityModel(categorical=["source"], numeric=["age"]).fit(
            train, y, age_days=age_days, sample_weight=sample_weight)
        p = model.predict_proba(score)[:, 1]
        young = score["age"].to_numpy() < 10
        rows[name] = {**binary_metrics(y_open, p), "mean_predicted": float(p.mean()),
                      "mean_predicted_young": float(p[young].mean()), "observed_young": float(y_open[young].mean())}
    rows["observed"] = float(y_open.mean())
    rows["closed_win_rate"] = float(y.mean())
    rows["open_leads"], rows["closed_leads"] = int(len(y_open)), int(len(y))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/crm_ai_bench_length_bias.json")
    args = parser.parse_args()
    results = {}
    for scenario, (mean_won, mean_lost) in SCENARIOS.items():
        runs = [run(mean_won, mean_lost, seed) for seed in SEEDS]
        results[scenario] = runs
        print(f"\n{scenario}: {np.mean([r['closed_leads'] for r in runs]):,.0f} closed leads (win rate "
              f"{np.mean([r['closed_win_rate'] for r in runs]):.3f}), {np.mean([r['open_leads'] for r in runs]):,.0f} "
              f"open (they will win {np.mean([r['observed'] for r in runs]):.3f}; those under 10 days "
              f"{np.mean([r['one snapshot per lead']['observed_young'] for r in runs]):.3f}); means over {len(runs)} seeds")
        print("| training rows | AUC | log-loss | Brier | calibration error | mean predicted | under 10 days |")
        print("|---|---|---|---|---|---|---|")
        for name in ("one snapshot per lead", "lifetime-weighted"):
            m = {k: np.mean([r[name][k] for r in runs]) for k in
                 ("auc", "log_loss", "brier", "calibration_error", "mean_predicted", "mean_predicted_young")}
            print(f"| {name} | {m['auc']:.3f} | {m['log_loss']:.4f} | {m['brier']:.4f} | {m['calibration_error']:.3f} | "
                  f"{m['mean_predicted']:.3f} | {m['mean_predicted_young']:.3f} |")
    pathlib.Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
