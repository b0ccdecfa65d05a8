"""Speed benchmark: scoring 100,000 open leads and training on 100,000 closed leads.

Run it with ``bench/run speed``: it makes a fresh ``bench_speed`` database and pipes this
file into four ``odoo-bin shell`` processes, one per step (``$BENCH_STEP``), so each
step's peak memory is its own:

* ``load``  : 100,000 closed leads (the bank rows cycled, in time order, closed 0-59 days
              after creation) and 100,000 open leads (the bank rows again, created in the
              last 180 days), 10,000 customers (each with ~10 closed and ~10 open leads, so
              the customer-history join has work to do) and 2 notes per lead (so has the
              messages join).  Bulk SQL: see ``bank_leads.py``;
* ``train`` : ``crm.ai.driver._ai_train_unit("lead_propensity", company)`` (extract,
              hyper-parameter search, PLS port, gate, final fit, store) on the 100,000
              closed leads;
* ``score`` : ``crm.ai.model._cron_ai_score(time_budget=1e9)``: extract -> predict ->
              explain -> write, in committed batches of ``LeadPropensityEngine.batch_size``,
              for the 100,000 open leads; then once more, when nothing is pending;
* ``pls``   : Odoo's ``_cron_update_automated_probabilities`` on the same database
              (rebuild the frequency table from the closed leads, rewrite the open leads);
* ``batches``: the score cron again with ``LeadPropensityEngine.batch_size`` = 1,000 / 5,000 /
              20,000 / 100,000 (``$BENCH_BATCH_SIZES``): total time and longest batch
              (one batch = one transaction holding its row locks until its commit).

Wall time is ``time.monotonic()`` around the call; memory is the process's peak RSS
(``getrusage``), shown with the RSS the process had before the step (Odoo itself).
``python bench_propensity_speed.py --report DIR`` prints the table from the JSON files.
"""

import json
import os
import sys
import time
from collections import defaultdict
from datetime import timedelta

sys.path.insert(0, os.environ.get("BENCH_DIR") or os.path.join(os.getcwd(), "bench"))
import bank_leads as bl

N_LEADS = int(os.environ.get("BENCH_LEADS", 100000))
N_PARTNERS = int(os.environ.get("BENCH_PARTNERS", 10000))
N_MESSAGES = int(os.environ.get("BENCH_MESSAGES", 2))
PLS_FIELDS = ["medium_id", *bl.CATEGORICAL_X, *bl.BOOLEAN_X]
TARGETS = {"score": 60.0, "train": 120.0, "train_rss_mb": 1536.0, "incremental": 2.0}
TASK = "lead_propensity"
#: Open leads edited after their score for the incremental rescoring measure.
INCREMENTAL_LEADS = 1000


def timed(cls, name, bucket):
    """Wrap method ``name`` of ``cls`` to add its wall time to ``bucket[name]``."""
    original = getattr(cls, name)

    def wrapper(*args, **kwargs):
        t0 = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            bucket[name] += time.monotonic() - t0
    setattr(cls, name, wrapper)
    return original


def open_lead_count(env):
    env.cr.execute("SELECT count(*) FROM crm_lead WHERE active AND probability > 0 AND probability < 100")
    return env.cr.fetchone()[0]


def check_all_scored(env, done, what):
    """The driver logs and swallows a company's failure: a run that scored nothing must not pass as fast."""
    expected = open_lead_count(env)
    if done != expected:
        raise RuntimeError(f"{what}: {done} leads scored out of {expected} open leads (see the log above)")


def step_load(env):
    import numpy as np
    import pandas as pd

    from odoo import fields
    started = time.monotonic()
    data = bl.load_bank()
    rows = np.arange(N_LEADS) % len(data)
    copy = np.arange(N_LEADS) // len(data)
    sample = data.iloc[rows].reset_index(drop=True)
    bl.reset_crm(env)
    bl.ensure_custom_fields(env)
    mediums = bl.ensure_mediums(env)
    partners = bl.insert_partners(env, N_PARTNERS)
    team = env.ref("sales_team.team_sales_department").id
    company = env.company.id
    # Closed leads: copy k of the bank rows is shifted by k * 930 days (the file spans 926), so time
    # order holds; each closes 0-59 days after its creation.
    created = sample["contact_date"] + pd.to_timedelta(copy * 930, unit="D")
    closed_at = created + pd.to_timedelta((np.arange(N_LEADS) * 37) % 60, unit="D")
    partner_of = [partners[(i * 7919) % len(partners)] for i in range(2 * N_LEADS)]
    closed_ids = bl.insert_leads(env, sample, create_dates=created, close_dates=closed_at,
                                 closed=np.ones(N_LEADS, bool), won=sample["won"], team_id=team, company_id=company,
                                 mediums=mediums, partner_ids=partner_of[:N_LEADS], name_prefix="Closed lead")
    # Open leads: the bank rows again (from another offset), created in the last 180 days.
    rows_open = (np.arange(N_LEADS) + 12345) % len(data)
    sample_open = data.iloc[rows_open].reset_index(drop=True)
    now = fields.Datetime.now()
    created_open = [now - timedelta(days=int((i * 13) % 180), minutes=int(i % 1440)) for i in range(N_LEADS)]
    open_ids = bl.insert_leads(env, sample_open, create_dates=created_open, closed=np.zeros(N_LEADS, bool),
                               won=np.zeros(N_LEADS, bool), team_id=team, company_id=company, mediums=mediums,
                               partner_ids=partner_of[N_LEADS:], name_prefix="Open lead")
    messages = bl.insert_messages(env, closed_ids + open_ids, N_MESSAGES)
    bl.set_params(env, crm_ai__lead_propensity__fields=",".join(bl.AI_FIELDS), crm_ai__enabled="True",
                  crm__pls_fields=",".join(PLS_FIELDS), crm__pls_start_date="2008-01-01")
    bl.only_engines(env, "lead_propensity")  # the crons' counts are this engine's leads
    env.cr.commit()
    env.cr.execute("ANALYZE crm_lead; ANALYZE mail_message; ANALYZE res_partner")
    env.cr.commit()
    return {"closed": len(closed_ids), "open": len(open_ids), "partners": len(partners), "messages": messages,
            "won": int(sample["won"].sum()), "seconds": time.monotonic() - started}


def step_train(env):
    from odoo.addons.crm_ai.ml import OdooPLSBaseline, propensity
    from odoo.addons.crm_ai.models.engine_lead_propensity import LeadPropensityEngine
    company = env.company
    buckets = defaultdict(float)
    # where training goes: the extraction, each LeadPropensityModel.fit (the first is the
    # search on the training part, the second the search on every closed lead) and PLS
    fits = []
    original_fit = propensity.LeadPropensityModel.fit

    def fit(model, *args, **kwargs):
        t0 = time.monotonic()
        try:
            return original_fit(model, *args, **kwargs)
        finally:
            fits.append(round(time.monotonic() - t0, 2))
    propensity.LeadPropensityModel.fit = fit
    timed(LeadPropensityEngine, "extract", buckets)
    for name in ("fit", "predict_proba"):
        timed(OdooPLSBaseline, name, buckets)
    rss_before = bl.peak_rss_mb()
    t0 = time.monotonic()
    result = env["crm.ai.driver"].sudo().with_company(company)._ai_train_unit(TASK, company)
    seconds = time.monotonic() - t0
    propensity.LeadPropensityModel.fit = original_fit
    env.cr.commit()
    model = env["crm.ai.model"].browse(result["model_id"])
    return {"seconds": seconds, "rss_before_mb": rss_before, "peak_rss_mb": bl.peak_rss_mb(),
            "message": result["message"], "n_train": model.n_train, "n_holdout": model.n_holdout,
            "auc": model.score, "pls_auc": model.baseline_score, "hyperparameters": model.hyperparameters,
            "status": result["status"], "phases": {"extract": round(buckets["extract"], 2),
                                                   "pls_port": round(buckets["fit"] + buckets["predict_proba"], 2),
                                                   "model_fits": fits}}


def step_score(env):
    from odoo.addons.crm_ai.ml import propensity
    from odoo.addons.crm_ai.models.engine_lead_propensity import LeadPropensityEngine
    buckets = defaultdict(float)
    timed(type(env["crm.ai.driver"]), "_ai_pending_ids", buckets)
    for name in ("extract", "labels", "history_state", "after_write"):
        timed(LeadPropensityEngine, name, buckets)
    timed(propensity.LeadPropensityModel, "predict_explain", buckets)  # one encoding: proba and reasons
    rss_before = bl.peak_rss_mb()
    t0 = time.monotonic()
    done, remaining = env["crm.ai.model"]._cron_ai_score(time_budget=1e9)
    seconds = time.monotonic() - t0
    env.cr.commit()
    check_all_scored(env, done, "score")
    first = dict(buckets)
    buckets.clear()
    t1 = time.monotonic()
    again = env["crm.ai.model"]._cron_ai_score(time_budget=1e9)
    seconds_again = time.monotonic() - t1
    env.cr.execute("SELECT count(*) FROM crm_lead WHERE active AND ai_propensity_state = 'scored'")
    scored = env.cr.fetchone()[0]
    # incremental: 1,000 open leads edited since their score (as users would, write_date later)
    env.cr.execute("""UPDATE crm_lead SET write_date = now() AT TIME ZONE 'UTC' + interval '1 second',
                             x_campaign_contacts = COALESCE(x_campaign_contacts, 0) + 1
                       WHERE id IN (SELECT id FROM crm_lead WHERE active AND ai_propensity_state = 'scored'
                                     ORDER BY id LIMIT %s)""", [INCREMENTAL_LEADS])
    env.cr.commit()
    t2 = time.monotonic()
    incremental = env["crm.ai.model"]._cron_ai_score(time_budget=1e9)
    seconds_incremental = time.monotonic() - t2
    env.cr.commit()
    env.cr.execute("SELECT count(*) FROM crm_ai_propensity_history")
    history_rows = env.cr.fetchone()[0]
    # write = the UPDATEs and commits (what is not extract / predict / explain / labels / pending;
    # the old phase names _ai_extract / _ai_labels are kept in the JSON for comparison)
    first["_ai_extract"] = first.pop("extract", 0.0)
    first["_ai_labels"] = first.pop("labels", 0.0)
    # the rest: the UPDATEs and the commits (after_write, the history, runs inside the writer and is shown apart)
    first["write_and_commit"] = seconds - sum(first.values())
    return {"seconds": seconds, "done": done, "remaining": remaining, "scored_in_db": scored,
            "incremental_seconds": seconds_incremental, "incremental_done": incremental[0],
            "history_rows": history_rows,
            "batch": LeadPropensityEngine.batch_size, "phases": first,
            "rerun_seconds": seconds_again, "rerun_done": again[0],
            "rss_before_mb": rss_before, "peak_rss_mb": bl.peak_rss_mb()}


def step_pls(env):
    Lead = type(env["crm.lead"])
    buckets = defaultdict(float)
    for name in ("_rebuild_pls_frequency_table", "_update_automated_probabilities"):
        timed(Lead, name, buckets)
    rss_before = bl.peak_rss_mb()
    t0 = time.monotonic()
    env["crm.lead"]._cron_update_automated_probabilities()
    seconds = time.monotonic() - t0
    env.cr.commit()
    env.cr.execute("SELECT count(*) FROM crm_lead WHERE active AND probability > 0 AND probability < 100 "
                   "AND automated_probability IS DISTINCT FROM 10")
    changed = env.cr.fetchone()[0]
    return {"seconds": seconds, "phases": dict(buckets), "open_leads_rewritten": changed,
            "rss_before_mb": rss_before, "peak_rss_mb": bl.peak_rss_mb()}


def step_batches(env):
    """The score cron again with other batch sizes (every open lead made pending each time)."""
    from odoo.addons.crm_ai.models.engine_lead_propensity import LeadPropensityEngine
    Driver = type(env["crm.ai.driver"])
    per_call = []
    # One batch = engine.score (extract + predict + labels + explain) then driver._ai_write_scores (UPDATE).
    for cls, name in ((LeadPropensityEngine, "score"), (Driver, "_ai_write_scores")):
        original = getattr(cls, name)

        def wrapper(*args, _original=original, **kwargs):
            t0 = time.monotonic()
            try:
                return _original(*args, **kwargs)
            finally:
                per_call.append(time.monotonic() - t0)
        setattr(cls, name, wrapper)
    default = LeadPropensityEngine.batch_size
    out = []
    for size in [int(s) for s in os.environ.get("BENCH_BATCH_SIZES", "1000,5000,20000,100000").split(",")]:
        env.cr.execute("UPDATE crm_lead SET ai_propensity_date = NULL WHERE active AND ai_propensity_state = 'scored'")
        env.cr.commit()
        LeadPropensityEngine.batch_size = size
        per_call.clear()
        t0 = time.monotonic()
        done, _remaining = env["crm.ai.model"]._cron_ai_score(time_budget=1e9)
        seconds = time.monotonic() - t0
        env.cr.commit()
        check_all_scored(env, done, f"batch size {size}")
        batches = [a + b for a, b in zip(per_call[::2], per_call[1::2])]  # score (extract/predict/explain) + write
        out.append({"batch": size, "seconds": seconds, "done": done, "batches": len(batches),
                    "longest_batch_seconds": max(batches), "peak_rss_mb": bl.peak_rss_mb()})
    LeadPropensityEngine.batch_size = default
    return {"sizes": out}


def report(folder):
    r = {}
    for step in ("load", "train", "score", "pls", "batches"):
        path = os.path.join(folder, f"crm_ai_bench_speed_{step}.json")
        if os.path.exists(path):
            with open(path) as handle:
                r[step] = json.load(handle)
    ld, tr, sc, pls = r["load"], r["train"], r["score"], r["pls"]
    ok = lambda value, target: "met" if value <= target else "**MISSED**"
    ph = sc["phases"]
    lines = [
        f"machine: {ld['machine']}",
        f"database: {ld['closed']:,} closed leads ({ld['won']:,} won), {ld['open']:,} open leads, "
        f"{ld['partners']:,} customers, {ld['messages']:,} notes (loaded in {ld['seconds']:.0f}s)",
        "",
        "| what | crm_ai | Odoo PLS (same database) | target |",
        "|---|---|---|---|",
        f"| score {sc['done']:,} open leads, wall time | {sc['seconds']:.1f} s | "
        f"{pls['seconds']:.1f} s (`_cron_update_automated_probabilities`: rebuild "
        f"{pls['phases'].get('_rebuild_pls_frequency_table', 0):.1f} s + update "
        f"{pls['phases'].get('_update_automated_probabilities', 0):.1f} s) | ≤ 60 s: {ok(sc['seconds'], TARGETS['score'])} |",
        f"| score: peak RSS of the process (before) | {sc['peak_rss_mb']:.0f} MB ({sc['rss_before_mb']:.0f}) | "
        f"{pls['peak_rss_mb']:.0f} MB ({pls['rss_before_mb']:.0f}) | |",
        f"| score again, nothing changed | {sc['rerun_seconds']:.2f} s ({sc['rerun_done']} leads) | "
        f"(PLS always recomputes every open lead) | |",
        f"| train on {tr['n_train'] + tr['n_holdout']:,} closed leads, wall time | {tr['seconds']:.1f} s | "
        f"(included in the PLS cron above) | ≤ 120 s: {ok(tr['seconds'], TARGETS['train'])} |",
        f"| train: peak RSS of the process (before) | {tr['peak_rss_mb']:.0f} MB ({tr['rss_before_mb']:.0f}) | | "
        f"≤ 1.5 GB: {ok(tr['peak_rss_mb'], TARGETS['train_rss_mb'])} |",
        f"| rescore {sc['incremental_done']:,} leads edited since their score | {sc['incremental_seconds']:.2f} s | "
        f"(PLS always recomputes every open lead) | ≤ 2 s: {ok(sc['incremental_seconds'], TARGETS['incremental'])} |",
        "",

        f"crm_ai scoring phases (batches of {sc['batch']:,}): pending query {ph.get('_ai_pending_ids', 0):.1f} s, "
        f"SQL extract {ph.get('_ai_extract', 0):.1f} s, predict + explain {ph.get('predict_explain', 0):.1f} s, "
        f"history read (trend) {ph.get('history_state', 0):.1f} s, history rows {ph.get('after_write', 0):.1f} s, "
        f"UPDATE + commit {ph.get('write_and_commit', 0):.1f} s; {sc['history_rows']:,} history rows",
        f"training: {tr['message']}",
        f"training phases: extraction {tr.get('phases', {}).get('extract', 0):.1f} s, PLS port "
        f"{tr.get('phases', {}).get('pls_port', 0):.1f} s, LeadPropensityModel.fit calls (search on the training "
        f"part, search on every closed lead, ...): {tr.get('phases', {}).get('model_fits', [])} s",
    ]
    if "batches" in r:
        lines += ["", "score cron with other batch sizes (all open leads pending each time; one process, "
                  "sizes in increasing order, so peak RSS is cumulative):", "",
                  "| LeadPropensityEngine.batch_size | wall time | batches "
                  "| longest batch (extract + predict + explain + UPDATE) "
                  "| peak RSS |", "|---|---|---|---|---|"]
        for b in r["batches"]["sizes"]:
            lines.append(f"| {b['batch']:,} | {b['seconds']:.1f} s | {b['batches']} | {b['longest_batch_seconds']:.2f} s "
                         f"| {b['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


if "env" in globals():  # inside odoo-bin shell (bench/run)
    step = os.environ.get("BENCH_STEP")
    runner = {"load": step_load, "train": step_train, "score": step_score, "pls": step_pls,
              "batches": step_batches}.get(step)
    if not runner:
        raise SystemExit(f"BENCH_STEP must be load, train, score, pls or batches, not {step!r}")
    out = runner(env)  # noqa: F821 -- ``env`` comes from odoo-bin shell
    bl.emit(step, out)
elif __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--report":
    print(report(sys.argv[2]))
else:
    raise SystemExit("run through bench/run speed (or: python bench_propensity_speed.py --report DIR)")
