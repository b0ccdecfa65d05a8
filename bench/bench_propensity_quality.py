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
4. two configurations, one after the other on the same leads (the registry and the
   scores are reset in between):

   * **A**: crm_ai gets medium + the 12 client / campaign x_ fields (the month is the
     date, left out); Odoo PLS gets medium + the categorical / boolean x_ fields (A),
     + the integer x_ fields (B), + the balance (C: every field crm_ai gets);
   * **M**: every column is a custom field, the contact month (a category) and day of
     month included: crm_ai gets all of them, PLS every categorical one (M);

   for each, crm_ai trains (``crm.ai.driver._ai_train_unit``; its own quality holdout
   is the newest 20 % of the *closed* leads, where the registry compares it with its
   port of PLS on the first PLS field set) and the score cron writes ``ai_propensity``;
   then for each PLS field set ``_cron_update_automated_probabilities`` rebuilds the
   frequency table and writes ``automated_probability`` on the open leads;
5. AUC, Brier score, log-loss and calibration error on the open leads against their
   true outcome, and the registry's figures on the internal holdout;
6. ablations: crm_ai's engine refitted on the same extracted rows with one family
   only, without calibration, and as it was before v2 (logistic, one 20 % tail),
   each measured on the open leads and on the internal holdout.

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
PLS_BASE = ["medium_id", *bl.CATEGORICAL_X, *bl.BOOLEAN_X]
CONFIGS = {
    "A": {
        "label": "medium + 12 x_ fields (the month is the date: left out)",
        "ai": bl.AI_FIELDS,
        "pls": {"A": PLS_BASE, "B": [*PLS_BASE, *bl.INTEGER_X], "C": [*PLS_BASE, *bl.INTEGER_X, *bl.FLOAT_X]},
    },
    "M": {
        "label": "every column a custom field, contact month (category) and day included",
        "ai": ["medium_id", *bl.ALL_X_FIELDS],
        "pls": {"M": [*PLS_BASE, "x_month"]},
    },
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


def reset_scores(env):
    """Forget crm_ai's models and scores: the next configuration starts from nothing."""
    env.cr.execute("UPDATE crm_lead SET ai_propensity = NULL, ai_propensity_state = 'pending', "
                   "ai_propensity_model_id = NULL, ai_propensity_date = NULL")
    env.cr.execute("DELETE FROM crm_ai_model")
    env.invalidate_all()
    env.cr.commit()


def engine_variants(engine, frame, y_all, closed_at, n_closed, names, y_open, holdout_pls):
    """crm_ai's engine refitted on the extracted rows, the trainer's recipe (choose on the
    training part, refit the winner on every closed lead), with parts switched off."""
    age_all = ((closed_at.max() - closed_at).dt.total_seconds() / 86400.0).to_numpy()
    train_idx, hold_idx = time_ordered_split(closed_at.to_numpy())
    age_train = age_all[train_idx] - age_all[train_idx].min()
    params = engine.model_params(names)
    variants = {
        "as deployed (every family, calibration if it helps)": {},
        "logistic only": {"family": "logistic"},
        "naive Bayes only": {"family": "naive_bayes"},
        "blend only": {"family": "blend"},
        "every family, never calibrated": {"calibration": None},
        "before v2: logistic, one 20 % tail, no calibration": {"family": "logistic", "calibration": None,
                                                               "_validation_rows": 0.2},
    }
    out = {}
    for name, extra in variants.items():
        extra = dict(extra)
        share = extra.pop("_validation_rows", None)
        t0 = time.monotonic()
        trial = LeadPropensityModel(**params, **extra)
        if share:
            trial._validation_rows = int(len(train_idx) * share)
        trial.fit(frame.iloc[train_idx], y_all[train_idx], age_days=age_train)
        if share:  # before v2, the deployed model reused the trial's hyper-parameters
            final = LeadPropensityModel(**trial.recipe())
        else:  # since v2, it makes the same choice again on every closed lead (as the trainer)
            final = LeadPropensityModel(**params, **extra)
        final.fit(frame.iloc[:n_closed], y_all[:n_closed], age_days=age_all)
        out[name] = {
            "open": metrics(y_open, final.predict_proba(frame.iloc[n_closed:])[:, 1]),
            "holdout": metrics(y_all[hold_idx], trial.predict_proba(frame.iloc[hold_idx])[:, 1]),
            "holdout_chosen": trial.describe(), "open_chosen": final.describe(),
            "seconds": time.monotonic() - t0,
        }
        print(f"  engine {name}: open AUC {out[name]['open']['auc']:.3f} Brier {out[name]['open']['brier']:.4f}, "
              f"holdout AUC {out[name]['holdout']['auc']:.3f} Brier {out[name]['holdout']['brier']:.4f} "
              f"({out[name]['open_chosen']})", flush=True)
    out["Odoo PLS port (registry baseline)"] = {"holdout": holdout_pls}
    return out


def run_config(env, key, config, ids, data, n_closed, y_open, company):
    open_ids = ids[n_closed:]
    reset_scores(env)
    first_pls = next(iter(config["pls"].values()))
    bl.set_params(env, crm_ai__lead_propensity__fields=",".join(config["ai"]), crm_ai__enabled="True",
                  crm__pls_fields=",".join(first_pls), crm__pls_start_date=PLS_START)
    env.cr.commit()
    driver = env["crm.ai.driver"].sudo().with_company(company)
    engine = driver._ai_engine(TASK, company)
    t0 = time.monotonic()
    train = driver._ai_train_unit(TASK, company)
    train_seconds = time.monotonic() - t0
    env.cr.commit()
    print(f"[{key}] crm_ai train:", train["message"], flush=True)
    model = env["crm.ai.model"].browse(train["model_id"])
    t0 = time.monotonic()
    done, remaining = env["crm.ai.model"]._cron_ai_score(time_budget=1e9)
    score_seconds = time.monotonic() - t0
    env.cr.commit()
    p_ai = read_column(env, "ai_propensity", open_ids) / 100.0
    if np.isnan(p_ai).any():
        raise RuntimeError(f"{int(np.isnan(p_ai).sum())} open leads have no ai_propensity")
    result = {"label": config["label"], "ai_fields": config["ai"]}
    result["crm_ai"] = {
        **metrics(y_open, p_ai), "train_seconds": train_seconds, "score_seconds": score_seconds,
        "scored": done, "remaining": remaining, "status": train["status"],
        "registry": {
            **{k: model.metrics["model"][k] for k in ("auc", "log_loss", "brier", "calibration_error")},
            **{f"pls_{k}": model.metrics["baseline"][k] for k in ("auc", "log_loss", "brier", "calibration_error")},
            **{k: model[k] for k in ("score", "score_defined", "baseline", "baseline_score",
                                     "n_train", "n_holdout", "hyperparameters", "gate_reason")},
        },
        "selection": model.metrics.get("selection"),
        "registry_holdout": f"{model.holdout_date_from.date()} .. {model.holdout_date_to.date()}",
        "importance": model.importance.splitlines()[:8],
    }
    print(f"[{key}] crm_ai on open leads:", {k: round(v, 4) for k, v in result["crm_ai"].items()
                                             if k in ("auc", "brier", "log_loss", "ece")}, flush=True)

    names_for_port = list(dict.fromkeys(sum(config["pls"].values(), [])))
    frame = engine.extract(ids, list(dict.fromkeys([*config["ai"], *names_for_port, "team_id"])), fields.Datetime.now())
    y_all = data["won"].to_numpy().astype(int)
    result["pls"] = {}
    for variant, pls_fields in config["pls"].items():
        bl.set_params(env, crm__pls_fields=",".join(pls_fields))
        env.cr.commit()
        t0 = time.monotonic()
        env["crm.lead"]._cron_update_automated_probabilities()
        seconds = time.monotonic() - t0
        env.cr.commit()
        p_pls = read_column(env, "automated_probability", open_ids) / 100.0
        port = OdooPLSBaseline(fields=pls_fields, team_field="team_id").fit(frame.iloc[:n_closed], y_all[:n_closed])
        p_port = port.predict_proba(frame.iloc[n_closed:])[:, 1]
        result["pls"][variant] = {**metrics(y_open, p_pls), "fields": pls_fields, "cron_seconds": seconds,
                                  "port_max_abs_diff_points": float(np.max(np.abs(p_port - p_pls)) * 100)}
        print(f"[{key}] PLS {variant}:", {k: round(v, 4) for k, v in result["pls"][variant].items()
                                          if k in ("auc", "brier", "log_loss", "ece", "port_max_abs_diff_points")},
              flush=True)
    reg = result["crm_ai"]["registry"]
    holdout_pls = {"auc": reg["pls_auc"], "brier": reg["pls_brier"], "log_loss": reg["pls_log_loss"],
                   "ece": reg["pls_calibration_error"]}
    closed_at = data["contact_date"].iloc[:n_closed]
    result["ablations"] = engine_variants(engine, frame, y_all, closed_at, n_closed, config["ai"], y_open, holdout_pls)
    best_pls = max(result["pls"].values(), key=lambda m: m["auc"])
    ours = result["crm_ai"]
    result["targets"] = {
        "open: AUC >= best PLS": ours["auc"] >= best_pls["auc"],
        "open: Brier <= best PLS's": ours["brier"] <= best_pls["brier"],
        "open: calibration error <= best PLS's": ours["ece"] <= best_pls["ece"],
        "holdout: AUC >= PLS port": reg["auc"] >= reg["pls_auc"],
        "holdout: Brier <= PLS port's": reg["brier"] <= reg["pls_brier"],
        "holdout: calibration error <= PLS port's": reg["calibration_error"] <= reg["pls_calibration_error"],
    }
    return result


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
    bl.ensure_custom_fields(env, bl.ALL_X_FIELDS)
    mediums = bl.ensure_mediums(env)
    team = env.ref("sales_team.team_sales_department")
    ids = bl.insert_leads(env, data, create_dates=data["contact_date"], closed=closed, won=data["won"],
                          team_id=team.id, company_id=company.id, mediums=mediums, x_fields=bl.ALL_X_FIELDS)
    env.cr.commit()
    results["load_seconds"] = time.monotonic() - started
    results["data"] = {
        "rows": n, "closed": n_closed, "open": n_open,
        "closed_from": str(data["contact_date"].iloc[0].date()), "closed_to": str(data["contact_date"].iloc[n_closed - 1].date()),
        "open_from": str(data["contact_date"].iloc[n_closed].date()), "open_to": str(data["contact_date"].iloc[-1].date()),
        "closed_win_rate": float(data["won"].iloc[:n_closed].mean()), "open_win_rate": float(y_open.mean()),
    }
    print(f"loaded {n} leads ({n_closed} closed, {n_open} open) in {results['load_seconds']:.1f}s", flush=True)
    bl.only_engines(env, TASK)
    results["configs"] = {key: run_config(env, key, config, ids, data, n_closed, y_open, company)
                          for key, config in CONFIGS.items()}
    prior = data["won"].iloc[:n_closed].mean()
    results["constant"] = metrics(y_open, np.full(n_open, prior)) | {"auc": 0.5}
    results["total_seconds"] = time.monotonic() - started
    return results


def report(r):
    d = r["data"]
    row = lambda name, m: (f"| {name} | {m['auc']:.3f} | {m['brier']:.4f} | {m['log_loss']:.4f} | {m['ece']:.3f} "
                           f"| {m['mean_p']:.1%} |")
    lines = [
        f"machine: {r['machine']}",
        f"leads: {d['rows']:,} = {d['closed']:,} closed ({d['closed_from']} .. {d['closed_to']}, won {d['closed_win_rate']:.1%}) "
        f"+ {d['open']:,} open ({d['open_from']} .. {d['open_to']}, truly won {d['open_win_rate']:.1%})",
    ]
    for key, c in r["configs"].items():
        reg, ours = c["crm_ai"]["registry"], c["crm_ai"]
        lines += ["", f"### Configuration {key}: {c['label']}", "",
                  f"| model (scored on the {d['open']:,} newest leads, left open) | AUC | Brier | log-loss | "
                  "calibration error | mean predicted |", "|---|---|---|---|---|---|",
                  row(f"**crm_ai** ({len(c['ai_fields'])} fields)", ours)]
        for v, m in c["pls"].items():
            lines.append(row(f"Odoo PLS {v}: {', '.join(m['fields'])}", m))
        lines.append(row("constant (closed leads' win rate)", r["constant"]))
        lines += ["", f"Internal holdout (registry: newest {reg['n_holdout']:,} closed leads, {ours['registry_holdout']}; "
                  f"trained on {reg['n_train']:,}):", "",
                  "| registry | AUC | Brier | log-loss | calibration error |", "|---|---|---|---|---|",
                  f"| crm_ai | {reg['auc']:.3f} | {reg['brier']:.4f} | {reg['log_loss']:.4f} | {reg['calibration_error']:.3f} |",
                  f"| Odoo PLS port | {reg['pls_auc']:.3f} | {reg['pls_brier']:.4f} | {reg['pls_log_loss']:.4f} | "
                  f"{reg['pls_calibration_error']:.3f} |",
                  "", f"chosen: {reg['hyperparameters']}; gate: {ours['status']} ({reg['gate_reason']})"]
        sel = ours.get("selection") or {}
        for cand in sel.get("candidates") or []:
            lines.append(f"  best {cand['family']}: {cand['description']}: validation log-loss {cand['log_loss']:.4f}, "
                         f"AUC {cand['auc']:.3f}{'  <- chosen' if cand['chosen'] else ''}")
        if sel.get("calibration_test"):
            t = sel["calibration_test"]
            lines.append(f"  calibration test on the newest window: raw {t['raw_log_loss']:.4f}, Platt {t['platt_log_loss']:.4f} "
                         f"-> {'kept' if sel.get('calibration') else 'not kept'}")
        lines += ["", "| crm_ai engine variant | open AUC | open Brier | open cal. error | holdout AUC | holdout Brier | "
                  "holdout cal. error | chosen (for the open leads) | s |", "|---|---|---|---|---|---|---|---|---|"]
        for name, m in c["ablations"].items():
            o, h = m.get("open"), m["holdout"]
            lines.append(f"| {name} | {o['auc']:.3f} | {o['brier']:.4f} | {o['ece']:.3f} | " if o else f"| {name} | | | | ")
            lines[-1] += (f"{h['auc']:.3f} | {h['brier']:.4f} | {h['ece']:.3f} | {m.get('open_chosen', '')} | "
                          f"{m.get('seconds', 0):.1f} |")
        lines += ["", "targets: " + "; ".join(f"{t} {'met' if ok else 'NOT met'}" for t, ok in c["targets"].items()),
                  f"crm_ai train {ours['train_seconds']:.1f}s, score cron {ours['score_seconds']:.1f}s ({ours['scored']} leads); "
                  "PLS cron " + ", ".join(f"{v} {m['cron_seconds']:.1f}s" for v, m in c["pls"].items()),
                  "PLS port vs real PLS, max |difference| on the open leads (points): "
                  + ", ".join(f"{v} {m['port_max_abs_diff_points']:.3f}" for v, m in c["pls"].items()),
                  "crm_ai importance: " + "; ".join(ours["importance"])]
    lines.append(f"total {r['total_seconds']:.0f}s")
    return "\n".join(lines)


results = main(env)  # noqa: F821 -- ``env`` comes from odoo-bin shell
print("\n" + report(results))
if os.environ.get("BENCH_JSON"):
    with open(os.environ["BENCH_JSON"], "w") as handle:
        json.dump(results, handle, indent=2, default=str)
