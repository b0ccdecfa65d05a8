"""Recommended products inside Odoo: the UCI Online Retail invoices loaded as partners,
products and confirmed sale orders with their lines, the recommendation engine trained
and scored by the crons, its holdout figures read from the registry.

Run it with ``bench/run recommend-odoo``: it makes a fresh ``bench_recommend`` database
and pipes this file into three ``odoo-bin shell`` processes, one per step
(``$BENCH_STEP``), so each step's peak memory is its own; then ``--report`` prints the
tables and writes ``$BENCH_OUT/crm_ai_bench_recommend_odoo.json`` (default ``/tmp``).

* ``load``  : ``bench_customer_value_odoo``'s loader, retail data, order lines always on
  (partners per CustomerID with their country, products per StockCode, one confirmed
  sale order per InvoiceNo with its ``sale.order.line`` rows; bulk SQL).  Every date is
  shifted by whole days so that 2011-12-01 00:00 is today's midnight (UTC, the
  database's clock), invoices from 2011-12-01 on are dropped.  ``C`` invoices are
  net-negative orders whose lines have a negative quantity: the engine leaves those
  lines out (``product_uom_qty > 0``), as the engine-alone bench drops them.  Then
  ``crm_ai.recommend.holdout_days`` = 91, so that the engine's holdout starts on
  (shifted) 2011-09-01, and every other engine off (``crm_ai.<task>.enabled`` =
  False): the crons' times are the recommendation engine's alone.
* ``train`` : ``crm.ai.driver._cron_train(time_budget=3600)``: wall time, phases, peak
  RSS; the registry row: both lists' precision@10 / recall@10 / coverage for crm_ai
  and, on the same holdout, item-item, own history and popularity (the issue's
  protocol: trained on the orders before 2011-09-01, measured on what the training
  customers bought from 2011-09-01 to 2011-12-01), hyperparameters, training seconds.
  The engine's cut is today's midnight minus ``holdout_days``; the step checks that no
  line of 2011-09-01 or later is trained on (the count must be 0).
* ``score`` : ``crm.ai.driver._cron_score(time_budget=3600)`` (every customer, in
  committed batches): wall time, phases, peak RSS, partners scored, rows of
  ``crm_ai_recommendation``; once more with nothing changed; a cProfile of one batch
  (``engine.score`` + ``after_write``, rolled back); three example customers with
  both lists (product, ``reason_text``).

``$BENCH_SAMPLE_CUSTOMERS`` keeps a random sample of that many customers (quick try).
``python bench_recommend_odoo.py --report DIR`` prints the tables from the step files.
"""

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

BENCH_DIR = Path(os.environ.get("BENCH_DIR") or Path(os.getcwd()) / "bench")
sys.path.insert(0, str(BENCH_DIR))
import bank_leads as bl

TASK = "recommend"
HOLDOUT_DAYS = 91  # shifted 2011-12-01 (today) - 91 days = shifted 2011-09-01
TEST_START = "2011-09-01"
K = 10
TARGETS = {"train_seconds": 60.0, "score_seconds": 10.0, "popularity_factor": 1.5}
BASELINES = ("Item-item", "Own history", "Popularity")  # labels of the registry's "others"
PROFILE_ROWS = 25


def customer_value_loader():
    """``bench_customer_value_odoo`` as a module, for its loader.  Its last lines
    dispatch a step (inside ``odoo-bin shell``) or the report, and end any other import
    with ``SystemExit``: every function is defined by then."""
    path = BENCH_DIR / "bench_customer_value_odoo.py"
    spec = importlib.util.spec_from_file_location("bench_customer_value_odoo", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SystemExit:
        pass
    if not hasattr(module, "step_load"):
        raise RuntimeError(f"{path} has no step_load: the loader moved")
    module.ORDER_LINES = True  # recommendations are learnt from order lines
    return module


# -- steps ------------------------------------------------------------------------------------
def step_load(env):
    cvo = customer_value_loader()
    out = cvo.step_load(env, "retail")
    bl.set_params(env, crm_ai__recommend__holdout_days=str(HOLDOUT_DAYS))
    out["engines_off"] = bl.only_engines(env, TASK)
    env.cr.commit()
    env.cr.execute("""SELECT count(*), count(DISTINCT sol.order_id), count(DISTINCT sol.product_id)
                        FROM sale_order_line sol JOIN sale_order so ON so.id = sol.order_id
                       WHERE so.state = 'sale' AND sol.product_uom_qty > 0""")
    out["positive_lines"], out["orders_with_positive_lines"], out["products_sold"] = env.cr.fetchone()
    return out


def registry_row(env):
    model = env["crm.ai.model"].sudo().search([("task", "=", TASK), ("company_id", "=", env.company.id)],
                                              order="version desc", limit=1)
    if not model:
        return None
    return {"version": model.version, "state": model.state, "score": model.score if model.score_defined else None,
            "baseline_score": model.baseline_score if model.baseline_score_defined else None,
            "metrics": model.metrics, "hyperparameters": model.hyperparameters, "gate_reason": model.gate_reason,
            "n_train": model.n_train, "n_holdout": model.n_holdout, "training_seconds": model.training_seconds,
            "holdout_date_from": str(model.holdout_date_from), "holdout_date_to": str(model.holdout_date_to),
            "train_date_to": str(model.train_date_to), "artifact_kb": len(model.artifact or b"") * 3 / 4 / 1024}


def holdout_gap(env, row):
    """What the engine's cut (``now`` - 91 days, to the second) moves from the protocol's
    holdout (from shifted 2011-09-01 00:00) into training."""
    import pandas as pd
    env.cr.execute("SELECT date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC')")
    today = pd.Timestamp(env.cr.fetchone()[0])
    start = today - pd.Timedelta(days=HOLDOUT_DAYS)
    cut = pd.Timestamp(row["holdout_date_from"])
    env.cr.execute("""SELECT count(*) FILTER (WHERE so.date_order < %(cut)s), count(DISTINCT so.id)
                                 FILTER (WHERE so.date_order < %(cut)s), count(*)
                        FROM sale_order_line sol JOIN sale_order so ON so.id = sol.order_id
                       WHERE so.state = 'sale' AND sol.product_uom_qty > 0 AND so.date_order >= %(start)s""",
                   {"start": start.to_pydatetime(), "cut": cut.to_pydatetime()})
    lines, orders, holdout_lines = env.cr.fetchone()
    return {"protocol_start": str(start), "engine_cut": str(cut), "lines_trained_instead": lines,
            "orders_trained_instead": orders, "protocol_holdout_lines": holdout_lines}


#: (phase, depth) in the order the tables show them; a key is the phase or "<prefix>: <phase>".
TRAIN_PHASES = [
    ("total (_ai_train_unit)", 0),
    ("data_shortfall (customer_count SQL)", 1),
    ("order_lines SQL -> DataFrame", 1),
    ("countries SQL", 1),
    ("ProductRecommender.fit", 1),
    ("_choose_alpha (fit without the newest 90 days, blends + popularity measured)", 2),
    ("_precision_by_alpha (every blend in one pass)", 3),
    ("item-item neighbours (_neighbours)", 2),
    ("LightFM fit (_fit_lightfm)", 2),
    ("holdout evaluate_lists() (both lists)", 1),
    ("holdout evaluate() (the active model)", 1),
    ("history(), every call (validation included)", 2),
    ("_components(), every call (validation included)", 2),
    ("_one_list(), every call", 2),
    ("_ai_register (pickle, sign, store)", 1),
]
SCORE_PHASES = [
    ("total (_ai_score_pair)", 0),
    ("pending query", 1),
    ("load model (unpickle)", 1),
    ("batches (_ai_score_batch)", 1),
    ("engine.score()", 2),
    ("commercial_partners SQL", 3),
    ("order_lines SQL -> DataFrame", 3),
    ("catalogue SQL", 3),
    ("countries SQL", 3),
    ("recommend_lists()", 3),
    ("history()", 4),
    ("_catalogue()", 4),
    ("_bought_matrix()", 4),
    ("_components()", 4),
    ("_blend()", 4),
    ("_over_catalogue()", 4),
    ("_one_list() (per customer and list)", 4),
    ("_anchors()", 5),
    ("ensure_group_lists (leads without a customer)", 3),
    ("UPDATE partners + after_write (_ai_write_scores)", 2),
    ("after_write", 3),
    ("write_rows (DELETE + INSERT)", 4),
]


def wrap_all(phases, wraps):
    """``phases.wrap`` for each ``(owner, name, phase[, task_of])`` whose method exists;
    returns the names that do not (the engine changed: those phases are not timed)."""
    missing = []
    for owner, name, phase, *task_of in wraps:
        if hasattr(owner, name):
            phases.wrap(owner, name, phase, *task_of)
        else:
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
    return missing


def kinds_of(args):
    """``task_of`` for ``recommend_lists(self, lines, customers, kinds, ...)``."""
    return "+".join(args[3]) if len(args) > 3 else "default lists"


def step_train(env):
    from odoo.addons.crm_ai.ml import recommend as rec
    from odoo.addons.crm_ai.models import engine_recommend as er
    phases = bl.Phases()
    Driver = type(env["crm.ai.driver"])
    Rec = rec.ProductRecommender
    fit_kind = lambda a: a[0].strategy + ("" if a[0].alpha is None else f", alpha {a[0].alpha}")
    missing = wrap_all(phases, [
        (Driver, "_ai_train_unit", "total (_ai_train_unit)", lambda a: a[1]),
        (er.RecommendEngine, "data_shortfall", "data_shortfall (customer_count SQL)"),
        (er.RecommendEngine, "order_lines", "order_lines SQL -> DataFrame"),
        (er.RecommendEngine, "countries", "countries SQL"),
        (Rec, "fit", "ProductRecommender.fit", fit_kind),
        (Rec, "_choose_alpha", "_choose_alpha (fit without the newest 90 days, blends + popularity measured)"),
        (Rec, "_precision_by_alpha", "_precision_by_alpha (every blend in one pass)"),
        (Rec, "_neighbours", "item-item neighbours (_neighbours)"),
        (Rec, "_fit_lightfm", "LightFM fit (_fit_lightfm)"),
        # the engine's own references (the module's functions call the originals)
        (er, "evaluate_lists", "holdout evaluate_lists() (both lists)", lambda a: a[0].strategy),
        (er, "evaluate", "holdout evaluate() (the active model)", lambda a: a[0].strategy),
        (Rec, "history", "history(), every call (validation included)"),
        (Rec, "_components", "_components(), every call (validation included)"),
        (Rec, "_one_list", "_one_list(), every call"),
        (type(env["crm.ai.model"]), "_ai_register", "_ai_register (pickle, sign, store)"),
    ])
    rss_before = bl.peak_rss_mb()
    t0 = time.monotonic()
    results = env["crm.ai.driver"]._cron_train(time_budget=3600)
    seconds = time.monotonic() - t0
    env.cr.commit()
    row = registry_row(env)
    return {"seconds": seconds, "rss_before_mb": rss_before, "peak_rss_mb": bl.peak_rss_mb(),
            "results": [{k: r[k] for k in ("task", "company", "status", "message")} for r in results],
            "phases": phases.result(), "not_timed": missing, "model": row,
            "holdout_gap": holdout_gap(env, row) if row else None}


def profile_batch(env):
    """cProfile of one batch of the score cron's work (``engine.score`` and
    ``after_write``, which rewrites the rows), rolled back: top functions by own time,
    and crm_ai's functions by cumulative time."""
    import cProfile
    import pstats

    from odoo.tools import SQL
    Driver = env["crm.ai.driver"].sudo()
    engine = Driver._ai_engine(TASK, env.company)
    model = env["crm.ai.model"].sudo()._ai_active(TASK, env.company)
    if not model:
        return None
    estimator = Driver._ai_load(engine, model)
    env.cr.execute(SQL("SELECT t.id FROM res_partner t WHERE %s ORDER BY t.id LIMIT %s", engine.scope_sql("t"),
                       engine.batch_size))
    ids = [r[0] for r in env.cr.fetchall()]
    now = engine.now()
    profiler = cProfile.Profile()
    t0 = time.monotonic()
    profiler.enable()
    engine.score(ids, estimator, model, now)
    engine.after_write(ids)
    profiler.disable()
    seconds = time.monotonic() - t0
    env.cr.rollback()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in stats.stats.items():
        short = filename.split("/site-packages/")[-1].split("/odoo/addons/")[-1].split("/work/main/")[-1]
        rows.append({"function": f"{short}:{line}({function})", "calls": calls, "own": round(own, 3),
                     "cumulative": round(cumulative, 3)})
    own = sorted(rows, key=lambda r: -r["own"])[:PROFILE_ROWS]
    ours = sorted((r for r in rows if r["function"].startswith("crm_ai/")), key=lambda r: -r["cumulative"])
    return {"customers": len(ids), "seconds_with_profiler": round(seconds, 2), "by_own_time": own,
            "crm_ai_by_cumulative": ours[:PROFILE_ROWS]}


def examples(env, state_sql):
    """Three scored customers: the most orders, the median, one order; both lists."""
    from odoo.tools import SQL
    env.cr.execute(SQL("""SELECT p.id, count(DISTINCT so.id) AS n
                            FROM res_partner p JOIN sale_order so ON so.partner_id = p.id AND so.state = 'sale'
                                 AND so.amount_untaxed >= 0
                           WHERE %s = 'scored' GROUP BY p.id ORDER BY n DESC, p.id""", state_sql))
    rows = env.cr.fetchall()
    if not rows:
        return []
    picks = [rows[0], rows[len(rows) // 2], next((r for r in rows if r[1] == 1), rows[-1])]
    out = []
    for partner_id, orders in picks:
        partner = env["res.partner"].browse(partner_id)
        lists = {}
        for kind, field in (("reorder", "ai_reorder_recommendation_ids"), ("new", "ai_new_recommendation_ids")):
            lists[kind] = [{"rank": r.rank, "product": r.product_id.display_name, "score": r.score,
                            "reason": r.reason, "why": r.reason_text} for r in partner[field].sorted("rank")]
        out.append({"partner": partner.display_name, "id": partner_id, "orders": orders,
                    "country": partner.country_id.name or None, **lists})
    return out


def step_score(env):
    from odoo.tools import SQL

    from odoo.addons.crm_ai.ml import recommend as rec
    from odoo.addons.crm_ai.models import engine_recommend as er
    phases = bl.Phases()
    Driver = type(env["crm.ai.driver"])
    Rec, Engine = rec.ProductRecommender, er.RecommendEngine
    missing = wrap_all(phases, [
        (Driver, "_ai_score_pair", "total (_ai_score_pair)", lambda a: a[1]),
        (Driver, "_ai_pending_ids", "pending query"),
        (Driver, "_ai_load", "load model (unpickle)"),
        (Driver, "_ai_score_batch", "batches (_ai_score_batch)"),
        (Engine, "score", "engine.score()"),
        (Engine, "commercial_partners", "commercial_partners SQL"),
        (Engine, "order_lines", "order_lines SQL -> DataFrame"),
        (Engine, "catalogue", "catalogue SQL"),
        (Engine, "countries", "countries SQL"),
        (Rec, "recommend_lists", "recommend_lists()", kinds_of),
        (Rec, "history", "history()"),
        (Rec, "_catalogue", "_catalogue()"),
        (Rec, "_bought_matrix", "_bought_matrix()"),
        (Rec, "_components", "_components()"),
        (Rec, "_blend", "_blend()"),
        (Rec, "_over_catalogue", "_over_catalogue()"),
        (Rec, "_one_list", "_one_list() (per customer and list)"),
        (Rec, "_anchors", "_anchors()"),
        (Engine, "ensure_group_lists", "ensure_group_lists (leads without a customer)"),
        (Driver, "_ai_write_scores", "UPDATE partners + after_write (_ai_write_scores)"),
        (Engine, "after_write", "after_write"),
        (Engine, "write_rows", "write_rows (DELETE + INSERT)"),
    ])
    rss_before = bl.peak_rss_mb()
    t0 = time.monotonic()
    done, remaining = env["crm.ai.driver"]._cron_score(time_budget=3600)
    seconds = time.monotonic() - t0
    env.cr.commit()
    peak = bl.peak_rss_mb()
    first = phases.result()
    phases.clear()
    t1 = time.monotonic()
    again = env["crm.ai.driver"]._cron_score(time_budget=3600)
    rerun_seconds = time.monotonic() - t1
    env.cr.commit()
    rerun = phases.result()
    Driver_ = env["crm.ai.driver"].sudo()
    engine = Driver_._ai_engine(TASK, env.company)
    state_sql = engine.column_sql("p", engine.state_field)
    env.cr.execute(SQL("SELECT %s, count(*) FROM res_partner p WHERE p.active GROUP BY 1 ORDER BY 2 DESC", state_sql))
    states = {str(k): n for k, n in env.cr.fetchall()}
    env.cr.execute("""SELECT list_type, partner_id IS NULL, count(*), count(DISTINCT partner_id),
                             count(DISTINCT product_id)
                        FROM crm_ai_recommendation WHERE company_id = %s GROUP BY 1, 2 ORDER BY 1, 2""",
                   [env.company.id])
    rows = [{"list": k, "without_partner": bool(c), "rows": n, "partners": p, "products": d}
            for k, c, n, p, d in env.cr.fetchall()]
    env.cr.execute("""SELECT list_type, reason, count(*) FROM crm_ai_recommendation
                       WHERE company_id = %s AND partner_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 3 DESC""",
                   [env.company.id])
    reasons = {}
    for kind, reason, n in env.cr.fetchall():
        reasons.setdefault(kind, {})[reason] = n
    return {"seconds": seconds, "done": done, "remaining": remaining, "phases": first, "not_timed": missing,
            "rss_before_mb": rss_before, "peak_rss_mb": peak, "rerun_seconds": rerun_seconds,
            "rerun_done": again[0], "rerun_phases": rerun, "pending_after": Driver_._ai_pending_count(TASK, env.company),
            "states": states, "rows": rows, "reasons": reasons, "batch": engine.batch_size,
            "examples": examples(env, state_sql), "profile": profile_batch(env)}


# -- report -----------------------------------------------------------------------------------
def fmt(value, digits=4):
    return "n/a" if value is None else f"{value:.{digits}f}"


def quality_rows(model_row):
    """{label: {"new": {...}, "reorder": {...}}} from the registry's flat metrics."""
    metrics = model_row["metrics"] or {}
    flat = {"crm_ai": metrics.get("model") or {}}
    flat.update({label: (metrics.get("others") or {}).get(label) or {} for label in BASELINES})
    out = {}
    for label, values in flat.items():
        out[label] = {kind: {"precision": values.get(f"{prefix}precision_at_10"),
                             "recall": values.get(f"{prefix}recall_at_10"),
                             "coverage": values.get(f"{prefix}coverage")}
                      for kind, prefix in (("new", ""), ("reorder", "reorder_"))}
    return out


def targets(quality, train, score):
    rows = []

    def add(name, value, target, met):
        rows.append({"target": name, "value": value, "target_value": target,
                     "met": None if met is None else bool(met)})

    p = lambda label, kind: quality[label][kind]["precision"]
    ours_new, ours_all = p("crm_ai", "new"), p("crm_ai", "reorder")
    known = lambda *values: None not in values
    add("new items precision@10: crm_ai >= item-item", ours_new, p("Item-item", "new"),
        ours_new >= p("Item-item", "new") if known(ours_new, p("Item-item", "new")) else None)
    popularity = p("Popularity", "new")
    add("new items precision@10: crm_ai >= 1.5 x popularity", ours_new,
        None if popularity is None else round(TARGETS["popularity_factor"] * popularity, 4),
        ours_new >= TARGETS["popularity_factor"] * popularity if known(ours_new, popularity) else None)
    add("all items precision@10: crm_ai >= own history", ours_all, p("Own history", "reorder"),
        ours_all >= p("Own history", "reorder") if known(ours_all, p("Own history", "reorder")) else None)
    add("training (_cron_train wall time) <= 60 s", round(train["seconds"], 1), TARGETS["train_seconds"],
        train["seconds"] <= TARGETS["train_seconds"])
    add("scoring every customer (_cron_score wall time) <= 10 s", round(score["seconds"], 1),
        TARGETS["score_seconds"], score["seconds"] <= TARGETS["score_seconds"])
    return rows


def ordered_phases(phases, order):
    """``[(label, values)]``: the phases in ``order`` (``[(phase, depth)]``), a key being the
    phase or "<prefix>: <phase>", indented by depth; unknown keys last."""
    out, seen = [], set()
    for phase, depth in order:
        for key in phases:
            if key == phase or key.endswith(f": {phase}"):
                out.append(("· " * depth + key, phases[key]))
                seen.add(key)
    return out + [(key, v) for key, v in phases.items() if key not in seen]


def phase_table(title, phases, order, extra=None):
    lines = ["", f"| {title} | wall time (calls) |" + (" score again |" if extra is not None else ""),
             "|---|---|" + ("---|" if extra is not None else "")]
    for label, v in ordered_phases(phases, order):
        row = f"| {label} | {v['seconds']:.2f} s ({v['calls']:,}) |"
        if extra is not None:
            again = extra.get(label.lstrip("· "), {}).get("seconds")
            row += f" {'' if again is None else f'{again:.2f} s'} |"
        lines.append(row)
    return lines


def report(folder):
    folder = Path(folder)
    r = {}
    for step in ("load", "train", "score"):
        path = folder / f"crm_ai_bench_recommend_odoo_{step}.json"
        if path.exists():
            r[step] = json.loads(path.read_text())
    lines = []
    ld, tr, sc = r.get("load"), r.get("train"), r.get("score")
    if ld:
        lines += [f"machine: {ld.get('machine')}", "",
                  f"Online Retail in Odoo: {ld['partners']:,} customers, {ld.get('products', 0):,} products, "
                  f"{ld['orders']:,} confirmed orders ({ld['returns']:,} returns), {ld.get('order_lines', 0):,} "
                  f"order lines ({ld['positive_lines']:,} with a positive quantity, the ones the engine reads; "
                  f"{ld['products_sold']:,} products sold); dates shifted {ld['shift_days']:,} days "
                  f"(2011-12-01 = {ld['today']}); loaded in {ld['seconds']:.0f} s, peak RSS "
                  f"{ld['peak_rss_mb']:.0f} MB" + (f" (sample of {ld['sample_customers']} customers)"
                                                   if ld.get("sample_customers") else "")
                  + f"; engines switched off: {', '.join(ld['engines_off'])}"]
    quality = target_rows = None
    if tr and tr.get("model"):
        m = tr["model"]
        quality = quality_rows(m)
        counts = (m["metrics"] or {}).get("counts") or {}
        gap = tr.get("holdout_gap") or {}
        lines += ["", f"### Holdout (registry row v{m['version']}, {m['state']})", "",
                  f"Holdout {m['holdout_date_from']} -> {m['holdout_date_to']} (protocol: from {gap.get('protocol_start')}"
                  f" = 2011-09-01); trained on {m['n_train']:,} customers; measured on {counts.get('customers')} "
                  f"customers (new items) / {counts.get('reorder_customers')} (all items); {counts.get('products')} "
                  f"products in the final model.",
                  "", f"| model | new items precision@{K} | recall@{K} | coverage | all items precision@{K} "
                      f"| recall@{K} | coverage |", "|---|---|---|---|---|---|---|"]
        for label in ("crm_ai", *BASELINES):
            a, b = quality[label]["new"], quality[label]["reorder"]
            name = "**crm_ai**" if label == "crm_ai" else label
            lines.append(f"| {name} | {fmt(a['precision'])} | {fmt(a['recall'])} | {fmt(a['coverage'])} "
                         f"| {fmt(b['precision'])} | {fmt(b['recall'])} | {fmt(b['coverage'])} |")
        alone_path = folder / "crm_ai_bench_recommend.json"
        if alone_path.exists() and not (ld or {}).get("sample_customers"):
            alone = json.loads(alone_path.read_text()).get("quality") or {}
            for label, key in (("crm_ai, engine alone (bench_recommend.py)", "crm_ai"),
                               ("item-item, engine alone", "item-item")):
                if key in alone:
                    a, b = alone[key]["new"], alone[key]["reorder"]
                    lines.append(f"| {label} | {fmt(a['precision'])} | {fmt(a['recall'])} | {fmt(a['coverage'])} "
                                 f"| {fmt(b['precision'])} | {fmt(b['recall'])} | {fmt(b['coverage'])} |")
        lines += ["", f"hyperparameters: {m['hyperparameters']}", "",
                  f"gate: {m['gate_reason']}", "",
                  f"training_seconds (registry): {m['training_seconds']:.1f} s; artifact {m['artifact_kb']:,.0f} KB",
                  "", f"protocol check: the engine's cut is {gap.get('engine_cut')} (midnight - {HOLDOUT_DAYS} days): "
                      f"{gap.get('lines_trained_instead', 0):,} order lines "
                      f"({gap.get('orders_trained_instead', 0):,} orders) of 2011-09-01 are trained on instead of "
                      f"measured, of {gap.get('protocol_holdout_lines', 0):,} holdout lines"]
    if tr and sc and quality:
        target_rows = targets(quality, tr, sc)
        lines += ["", "### Issue targets", "", "| target | value | target value | met |", "|---|---|---|---|"]
        for t in target_rows:
            met = "n/a" if t["met"] is None else ("met" if t["met"] else "**not met**")
            lines.append(f"| {t['target']} | {t['value']} | {t['target_value']} | {met} |")
    if tr and sc:
        lines += ["", "### Time and memory", "", "| what | wall time | peak RSS (before) |", "|---|---|---|",
                  f"| train (`_cron_train`) | {tr['seconds']:.1f} s | {tr['peak_rss_mb']:.0f} MB "
                  f"({tr['rss_before_mb']:.0f}) |",
                  f"| score (`_cron_score`, {sc['done']:,} partners, batches of {sc['batch']:,}) | "
                  f"{sc['seconds']:.1f} s | {sc['peak_rss_mb']:.0f} MB ({sc['rss_before_mb']:.0f}) |",
                  f"| score again, nothing changed ({sc['rerun_done']} partners) | {sc['rerun_seconds']:.2f} s | |",
                  "", "training results: " + " / ".join(f"{x['task']}: {x['status']} ({x['message']})"
                                                      for x in tr["results"])]
        lines += phase_table("train phase (· inside the phase above it)", tr["phases"], TRAIN_PHASES)
        lines += phase_table("score phase (· inside the phase above it)", sc["phases"], SCORE_PHASES,
                             sc["rerun_phases"])
        missing = sorted({*tr.get("not_timed", []), *sc.get("not_timed", [])})
        if missing:
            lines += ["", f"not timed (no such method in this version of the engine): {', '.join(missing)}"]
        lines += ["", f"partners by state: {sc['states']}; pending after: {sc['pending_after']}", "",
                  "| list | rows for | rows | partners | distinct products |", "|---|---|---|---|---|"]
        for x in sc["rows"]:
            lines.append(f"| {x['list']} | {'countries (leads without a customer)' if x['without_partner'] else 'customers'}"
                         f" | {x['rows']:,} | {x['partners']:,} | {x['products']:,} |")
        lines += ["", "reasons: " + "; ".join(f"{kind}: {counts}" for kind, counts in sc["reasons"].items())]
        prof = sc.get("profile")
        if prof:
            lines += ["", f"### cProfile of one batch ({prof['customers']:,} customers: engine.score + after_write, "
                          f"{prof['seconds_with_profiler']} s with the profiler, rolled back)", "",
                      "| crm_ai function | calls | cumulative s | own s |", "|---|---|---|---|"]
            lines += [f"| {x['function']} | {x['calls']:,} | {x['cumulative']:.3f} | {x['own']:.3f} |"
                      for x in prof["crm_ai_by_cumulative"][:15]]
            lines += ["", "| function (by own time) | calls | own s | cumulative s |", "|---|---|---|---|"]
            lines += [f"| {x['function']} | {x['calls']:,} | {x['own']:.3f} | {x['cumulative']:.3f} |"
                      for x in prof["by_own_time"][:15]]
        for ex in sc.get("examples") or []:
            lines += ["", f"**{ex['partner']}** ({ex['country']}, {ex['orders']} orders)", "",
                      "| list | # | product | why |", "|---|---|---|---|"]
            for kind, label in (("reorder", "order again"), ("new", "new for this customer")):
                for row in ex[kind]:
                    lines.append(f"| {label} | {row['rank']} | {row['product']} | {row['why']} |")
    out = {**r, "targets": target_rows, "quality": quality}
    path = folder / "crm_ai_bench_recommend_odoo.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    lines += ["", f"results: {path}"]
    return "\n".join(lines)


if "env" in globals():  # inside odoo-bin shell (bench/run)
    step = os.environ.get("BENCH_STEP")
    runner = {"load": step_load, "train": step_train, "score": step_score}.get(step)
    if not runner:
        raise SystemExit(f"BENCH_STEP must be load, train or score ({step!r})")
    bl.emit(step, runner(env), limit=2000)  # noqa: F821 -- ``env`` comes from odoo-bin shell
elif __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--report":
    print(report(sys.argv[2]))
else:
    raise SystemExit("run through bench/run recommend-odoo (or: python bench_recommend_odoo.py --report DIR)")
