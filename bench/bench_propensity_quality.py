"""Quality benchmark: crm_ai vs Odoo's Predictive Lead Scoring on the UCI Bank Marketing leads.

Run it with ``bench/run quality`` (it makes a fresh ``bench_`` database, pipes this file
into ``odoo-bin shell``, prints the results, drops the database).  Inside the shell
``env`` is defined; the script commits what it loads.

Protocol (one run, both models on the same leads):

1. the 45,211 bank calls become crm.lead records (see ``bank_leads.py`` for the mapping;
   ``duration`` is left out because it is only known after the call);
2. the oldest 80 % (by contact date, file order) are closed: won (y = yes: active, won
   stage, probability 100) or lost (archived, probability 0), closed on their contact date;
3. the newest 20 % stay OPEN (first stage, probability 10); their true outcome is kept
   in memory by this script only;
4. crm_ai: ``crm_ai.lead_propensity.fields`` = medium + every x_ field,
   ``crm.ai.driver._ai_train_unit("lead_propensity", company)`` (the engine's own quality
   holdout is the newest 20 % of the *closed* leads), then the score cron writes
   ``ai_propensity`` on the open leads;
5. Odoo PLS: ``crm.pls_fields`` = medium + the categorical / boolean x_ fields (variant
   A); + the integer x_ fields (variant B); + the balance too (variant C: every field
   crm_ai gets).  PLS treats each distinct value as a category.  For each variant
   ``_cron_update_automated_probabilities`` rebuilds the frequency table from the
   closed leads and writes ``automated_probability`` on the open leads;
6. AUC, Brier score and log-loss on the open leads, against their true outcome.

A constant forecast (the closed leads' win rate) is reported as a floor.  crm_ai's PLS
port (``ml.OdooPLSBaseline``, the registry's baseline "Odoo PLS") is also checked
against the real PLS output on the same open leads.
"""

import json
import os
import sys
import time

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

sys.path.insert(0, os.environ.get("BENCH_DIR") or os.path.join(os.getcwd(), "bench"))
import bank_leads as bl

from odoo import fields

from odoo.addons.crm_ai.ml import LeadPropensityModel, OdooPLSBaseline, calibration_error, time_ordered_split

TASK = "lead_propensity"

OPEN_FRACTION = 0.2
PLS_START = "2008-01-01"
PLS_VARIANTS = {
    "A": ["medium_id", *bl.CATEGORICAL_X, *bl.BOOLEAN_X],
    "B": ["medium_id", *bl.CATEGORICAL_X, *bl.BOOLEAN_X, *bl.INTEGER_X],
    "C": ["medium_id", *bl.CATEGORICAL_X, *bl.BOOLEAN_X, *bl.INTEGER_X, *bl.FLOAT_X],
}


def metrics(y, p):
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return {"auc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p)),
            "log_loss": float(log_loss(y, p, labels=[0, 1])), "mean_p": float(p.mean()),
            "ece": calibration_error(y, p)}


def read_column(env, column, ids):
    env.cr.execute(f"SELECT id, {column} FROM crm_lead WHERE id = ANY(%s)", [ids])
    values = dict(env.cr.fetchall())
    return np.array([values.get(i) for i in ids], dtype=float)


def main(env):
    results = {"machine": bl.machine()}
    company = env.company
    started = time.monotonic()
    data = bl.load_bank()
    n = len(data)
    n_open = int(round(n * OPEN_FRACTION))
    n_closed = n - n_open
    closed = np.arange(n) < n_closed
    y_open = data["won"].to_numpy()[n_closed:].astype(int)

    bl.reset_crm(env)
    bl.ensure_custom_fields(env)
    mediums = bl.ensure_mediums(env)
    team = env.ref("sales_team.team_sales_department")
    ids = bl.insert_leads(env, data, create_dates=data["contact_date"], closed=closed, won=data["won"],
                          team_id=team.id, company_id=company.id, mediums=mediums)
    env.cr.commit()
    open_ids = ids[n_closed:]
    results["load_seconds"] = time.monotonic() - started
    results["data"] = {
        "rows": n, "closed": n_closed, "open": n_open,
        "closed_from": str(data["contact_date"].iloc[0].date()), "closed_to": str(data["contact_date"].iloc[n_closed - 1].date()),
        "open_from": str(data["contact_date"].iloc[n_closed].date()), "open_to": str(data["contact_date"].iloc[-1].date()),
        "closed_win_rate": float(data["won"].iloc[:n_closed].mean()), "open_win_rate": float(y_open.mean()),
    }
    print(f"loaded {n} leads ({n_closed} closed, {n_open} open) in {results['load_seconds']:.1f}s", flush=True)

    # ---- crm_ai -------------------------------------------------------------------------
    bl.set_params(env, crm_ai__lead_propensity__fields=",".join(bl.AI_FIELDS), crm_ai__enabled="True",
                  crm__pls_fields=",".join(PLS_VARIANTS["A"]), crm__pls_start_date=PLS_START)
    env.cr.commit()
    driver = env["crm.ai.driver"].sudo().with_company(company)
    engine = driver._ai_engine(TASK, company)
    t0 = time.monotonic()
    train = driver._ai_train_unit(TASK, company)
    train_seconds = time.monotonic() - t0
    env.cr.commit()
    print("crm_ai train:", train["message"], flush=True)
    model = env["crm.ai.model"].browse(train["model_id"])
    t0 = time.monotonic()
    done, remaining = env["crm.ai.model"]._cron_ai_score(time_budget=1e9)
    score_seconds = time.monotonic() - t0
    env.cr.commit()
    p_ai = read_column(env, "ai_propensity", open_ids) / 100.0
    if np.isnan(p_ai).any():
        raise RuntimeError(f"{int(np.isnan(p_ai).sum())} open leads have no ai_propensity")
    results["crm_ai"] = {
        **metrics(y_open, p_ai), "train_seconds": train_seconds, "score_seconds": score_seconds,
        "scored": done, "remaining": remaining, "status": train["status"],
        "registry": {
            # metrics JSON: {"model": {auc, log_loss, brier, calibration_error}, "baseline": {same, PLS port}}
            **{k: model.metrics["model"][k] for k in ("auc", "log_loss", "brier", "calibration_error")},
            **{f"pls_{k}": model.metrics["baseline"][k] for k in ("auc", "log_loss", "brier", "calibration_error")},
            **{k: model[k] for k in ("score", "score_defined", "baseline", "baseline_score",
                                     "n_train", "n_holdout", "hyperparameters", "gate_reason")},
        },
        "registry_holdout": f"{model.holdout_date_from.date()} .. {model.holdout_date_to.date()}",
        "importance": model.importance.splitlines()[:8],
    }
    print("crm_ai on open leads:", {k: round(v, 4) for k, v in results["crm_ai"].items() if k in ("auc", "brier", "log_loss")},
          flush=True)

    # ---- Odoo PLS, one run per field set ---------------------------------------------
    names_for_port = list(dict.fromkeys(sum(PLS_VARIANTS.values(), [])))
    frame = engine.extract(ids, [*names_for_port, "team_id"], fields.Datetime.now())
    y_all = data["won"].to_numpy().astype(int)
    results["pls"] = {}
    for variant, pls_fields in PLS_VARIANTS.items():
        bl.set_params(env, crm__pls_fields=",".join(pls_fields))
        env.cr.commit()
        t0 = time.monotonic()
        env["crm.lead"]._cron_update_automated_probabilities()
        seconds = time.monotonic() - t0
        env.cr.commit()
        p_pls = read_column(env, "automated_probability", open_ids) / 100.0
        port = OdooPLSBaseline(fields=pls_fields, team_field="team_id").fit(frame.iloc[:n_closed], y_all[:n_closed])
        p_port = port.predict_proba(frame.iloc[n_closed:])[:, 1]
        results["pls"][variant] = {**metrics(y_open, p_pls), "fields": pls_fields, "cron_seconds": seconds,
                                   "port_max_abs_diff_points": float(np.max(np.abs(p_port - p_pls)) * 100)}
        print(f"PLS {variant}:", {k: round(v, 4) for k, v in results["pls"][variant].items()
                                  if k in ("auc", "brier", "log_loss", "port_max_abs_diff_points")}, flush=True)

    # ---- ablations with crm_ai's engine on the same extracted rows (no Odoo in the loop) ---
    # Same recipe as LeadPropensityEngine.train: hyper-parameters chosen by a trial fit on the
    # oldest 80 % of the closed leads, then a fit on all of them.
    closed_at = data["contact_date"].iloc[:n_closed]
    age_days = ((closed_at.max() - closed_at).dt.total_seconds() / 86400.0).to_numpy()
    train_idx, _hold = time_ordered_split(closed_at.to_numpy())

    def refit(names, half_life="auto"):
        params = engine.model_params(names)
        trial = LeadPropensityModel(**params, half_life_days=half_life).fit(
            frame.iloc[train_idx], y_all[train_idx], age_days=age_days[train_idx] - age_days[train_idx].min())
        final = LeadPropensityModel(**params, C=trial.C_, half_life_days=trial.half_life_days_).fit(
            frame.iloc[:n_closed], y_all[:n_closed], age_days=age_days)
        out = metrics(y_open, final.predict_proba(frame.iloc[n_closed:])[:, 1])
        out["hyperparameters"] = f"C={final.C_:g}, half-life={final.half_life_days_}"
        return out

    results["ablations"] = {
        "same as deployed (all fields, recency auto)": refit(bl.AI_FIELDS),
        "all fields, no recency weighting": refit(bl.AI_FIELDS, None),
        "only PLS A's fields (medium + categorical/boolean x_)": refit(PLS_VARIANTS["A"]),
        "only PLS A's fields, no recency weighting": refit(PLS_VARIANTS["A"], None),
    }
    for name, m in results["ablations"].items():
        print(f"engine ablation {name}:", {k: round(v, 4) for k, v in m.items() if k in ("auc", "brier", "log_loss")},
              m["hyperparameters"], flush=True)

    prior = data["won"].iloc[:n_closed].mean()
    results["constant"] = metrics(y_open, np.full(n_open, prior)) | {"auc": 0.5}
    results["total_seconds"] = time.monotonic() - started
    return results


def report(r):
    d = r["data"]
    lines = [
        f"machine: {r['machine']}",
        f"leads: {d['rows']:,} = {d['closed']:,} closed ({d['closed_from']} .. {d['closed_to']}, won {d['closed_win_rate']:.1%}) "
        f"+ {d['open']:,} open ({d['open_from']} .. {d['open_to']}, truly won {d['open_win_rate']:.1%})",
        "",
        "| model (scored on the 9,042 newest leads, left open) | AUC | Brier | log-loss | calibration error | mean predicted |",
        "|---|---|---|---|---|---|",
    ]
    row = lambda name, m: (f"| {name} | {m['auc']:.3f} | {m['brier']:.4f} | {m['log_loss']:.4f} | {m['ece']:.3f} "
                           f"| {m['mean_p']:.1%} |")
    lines.append(row("**crm_ai** (medium + 12 x_ fields)", r["crm_ai"]))
    labels = {"A": "Odoo PLS A: medium + categorical/boolean x_", "B": "Odoo PLS B: A + integer x_ fields",
              "C": "Odoo PLS C: B + balance (float)"}
    for v, m in r["pls"].items():
        lines.append(row(labels[v], m))
    lines.append(row("constant (closed leads' win rate)", r["constant"]))
    lines += ["", "crm_ai's engine refitted on the same extracted rows (ablations, same recipe as the trainer):", "",
              "| crm_ai engine variant | AUC | Brier | log-loss | calibration error | mean predicted | hyper-parameters |",
              "|---|---|---|---|---|---|---|"]
    for name, m in r["ablations"].items():
        lines.append(row(name, m) + f" {m['hyperparameters']} |")
    reg = r["crm_ai"]["registry"]
    lines += [
        "",
        f"crm_ai registry (internal holdout = newest {reg['n_holdout']:,} closed leads, {r['crm_ai']['registry_holdout']}; "
        f"trained on {reg['n_train']:,}): AUC {reg['auc']:.3f} vs its PLS port (fields A) {reg['pls_auc']:.3f}; "
        f"Brier {reg['brier']:.4f} vs {reg['pls_brier']:.4f}; log-loss {reg['log_loss']:.4f} vs {reg['pls_log_loss']:.4f}; "
        f"calibration error {reg['calibration_error']:.3f} vs {reg['pls_calibration_error']:.3f}; "
        f"{reg['hyperparameters']}; status {r['crm_ai']['status']} ({reg['gate_reason']})",
        f"registry primary metric: score {reg['score']:.3f} (defined: {reg['score_defined']}) vs "
        f"{reg['baseline']} {reg['baseline_score']:.3f}",
        f"crm_ai train {r['crm_ai']['train_seconds']:.1f}s, score cron {r['crm_ai']['score_seconds']:.1f}s "
        f"({r['crm_ai']['scored']} leads); PLS cron " + ", ".join(f"{v} {m['cron_seconds']:.1f}s" for v, m in r["pls"].items()),
        "PLS port vs real PLS, max |difference| on the open leads (points): "
        + ", ".join(f"{v} {m['port_max_abs_diff_points']:.3f}" for v, m in r["pls"].items()),
        "crm_ai importance: " + "; ".join(r["crm_ai"]["importance"]),
        f"total {r['total_seconds']:.0f}s",
    ]
    return "\n".join(lines)


results = main(env)  # noqa: F821 -- ``env`` comes from odoo-bin shell
print("\n" + report(results))
if os.environ.get("BENCH_JSON"):
    with open(os.environ["BENCH_JSON"], "w") as handle:
        json.dump(results, handle, indent=2, default=str)
