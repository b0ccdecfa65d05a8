"""Customer value inside Odoo: segments and repeat-purchase propensity on the UCI Online
Retail invoices loaded as partners, products and confirmed sale orders, trained and
scored by the crons, then the same on a 50,000-customer / ~500,000-order replica.

Run it with ``bench/run customer-odoo``: for each data set (``$BENCH_DATA``: ``retail``
then ``scale``) it makes a fresh ``bench_customer_<data>`` database and pipes this file
into three ``odoo-bin shell`` processes, one per step (``$BENCH_STEP``), so each step's
peak memory is its own:

* ``load``  : the data set, with bulk SQL (``INSERT ... SELECT FROM unnest``, no ORM):

  - ``retail``: ``../shared/data/online_retail/online_retail.csv.gz`` (``$RETAIL_CSV``;
    read, never copied).  Lines without a CustomerID are dropped.  One ``res.partner``
    per CustomerID (a company, "Customer <id>", its country when the file's name is a
    ``res.country``, with three aliases: EIRE, USA, RSA), one ``product.template`` +
    ``product.product`` per StockCode (its most frequent Description, its median
    UnitPrice as list price), one confirmed ``sale.order`` per InvoiceNo (state
    ``sale``, the company's currency at rate 1, no pricelist, dated at its first line,
    untaxed = total = the sum of Quantity x UnitPrice) with its ``sale.order.line``
    rows (``$BENCH_ORDER_LINES=0`` leaves them out).  ``C`` invoices are cancellations:
    their amount is negative, which makes them returns for crm_ai.
  - ``scale``: the same orders replicated as ``bench_customer_value.replicate`` does
    (copies of the customers with new ids, dates shifted by up to a week, amounts x
    0.8-1.2, every order twice, the copy up to two weeks later) up to
    ``$BENCH_REPLICA_CUSTOMERS`` (50,000) customers; partners and orders only (no
    products nor lines: the engines read ``sale_order`` alone).

  Dates: every date is shifted by a whole number of days so that 2011-12-01 00:00 is
  today's midnight (UTC, the database's clock: the engines' "now"), and invoices from
  2011-12-01 on are dropped (they would be in the future).  With
  ``crm_ai.repeat_purchase.horizon_days`` = 91 the engine's holdout cut-off (today - 91
  days) is 2011-09-01 and its labels end on 2011-12-01: the protocol of the engine-alone
  bench (``bench/run customer``: features as of 2011-09-01, label = an order before
  2011-12-01), so both must give the same holdout figures.  The segment window keeps
  its default (730 days; the data spans one year).

* ``train`` : ``crm.ai.driver._cron_train(time_budget=3600)`` (every engine and company
  that is due: customer segments, repeat purchase, and lead propensity, which finds no
  lead), wall time, phases and peak RSS; then the registry rows.
* ``score`` : ``crm.ai.driver._cron_score(time_budget=3600)`` (every partner, in
  committed batches of 5,000, for each engine), wall time, phases and peak RSS; then
  once more when nothing changed (the pending query alone); then the segments.

``$BENCH_SAMPLE_CUSTOMERS`` keeps a random sample of that many retail customers (for a
quick try).  ``python bench_customer_value_odoo.py --report DIR`` prints the tables from
the JSON files.
"""

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

BENCH_DIR = Path(os.environ.get("BENCH_DIR") or Path(os.getcwd()) / "bench")
sys.path.insert(0, str(BENCH_DIR))
import bank_leads as bl

REFERENCE_DAY = "2011-12-01"  # -> today's midnight (UTC)
HORIZON_DAYS = 91
REPLICA_CUSTOMERS = int(os.environ.get("BENCH_REPLICA_CUSTOMERS", 50_000))
SAMPLE_CUSTOMERS = int(os.environ.get("BENCH_SAMPLE_CUSTOMERS", 0))
ORDER_LINES = os.environ.get("BENCH_ORDER_LINES", "1") not in ("0", "", "false", "False")
CHUNK = 100_000  # rows per INSERT (bank_leads.insert)
TARGETS = {"score": 60.0, "train": 120.0, "rss_mb": 1536.0}
TASKS = ("customer_segment", "repeat_purchase")
#: Online Retail country names -> res.country English names (the others match as they are, or not at all).
COUNTRY_ALIASES = {"EIRE": "Ireland", "USA": "United States", "RSA": "South Africa"}


def retail_csv():
    return Path(os.environ.get("RETAIL_CSV") or bl.repo_root().parent / "shared/data/online_retail/online_retail.csv.gz")


def replicate(orders, n_customers):
    """``bench_customer_value.replicate`` (imported from there: the same replica as the engine-alone bench)."""
    crm_ai_dir = str(bl.repo_root() / "crm_ai")
    sys.path.insert(0, crm_ai_dir)  # bench_customer_value imports the pure engine as ``ml``
    try:
        import bench_customer_value
    finally:
        sys.path.remove(crm_ai_dir)
    return bench_customer_value.replicate(orders, n_customers)


# -- data -------------------------------------------------------------------------------------
def read_retail(shift):
    """(lines, orders) of the file with dates shifted by ``shift``, invoices from
    2011-12-01 on and lines without a CustomerID left out.  ``orders``: one row per
    invoice: invoice, partner (CustomerID), date (its first line), amount, country."""
    import numpy as np
    import pandas as pd
    lines = pd.read_csv(retail_csv(), dtype={"InvoiceNo": str, "StockCode": str}, encoding="latin-1")
    lines = lines.dropna(subset=["CustomerID"]).copy()
    lines["partner"] = lines["CustomerID"].astype("int64")
    lines["date"] = pd.to_datetime(lines["InvoiceDate"])
    lines["amount"] = lines["Quantity"] * lines["UnitPrice"]
    if SAMPLE_CUSTOMERS:
        customers = np.sort(lines["partner"].unique())
        keep = np.random.default_rng(0).choice(customers, size=min(SAMPLE_CUSTOMERS, len(customers)), replace=False)
        lines = lines[lines["partner"].isin(keep)]
    orders = lines.groupby("InvoiceNo", sort=False).agg(
        partner=("partner", "first"), date=("date", "min"), amount=("amount", "sum"),
        country=("Country", "first")).reset_index().rename(columns={"InvoiceNo": "invoice"})
    future = orders.loc[orders["date"] >= pd.Timestamp(REFERENCE_DAY), "invoice"]
    orders = orders[~orders["invoice"].isin(future)].reset_index(drop=True)
    lines = lines[~lines["InvoiceNo"].isin(future)]
    orders["date"] = orders["date"] + shift
    orders["is_refund"] = orders["invoice"].str.startswith("C")
    return lines, orders


def db_today(env):
    """Today's midnight, UTC, by the database's clock (the engines' "now")."""
    import pandas as pd
    env.cr.execute("SELECT date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC')")
    return pd.Timestamp(env.cr.fetchone()[0])


def as_python(values):
    return [None if v is None else (v.item() if hasattr(v, "item") else v) for v in values]


def datetimes(series):
    return [v.to_pydatetime() for v in series]


def insert_partners(env, customers, countries):
    """One company partner per customer id (``countries``: file country name per customer);
    returns {customer id: partner id}."""
    env.cr.execute("SELECT name->>'en_US', id FROM res_country")
    country_ids = dict(env.cr.fetchall())
    country = [country_ids.get(COUNTRY_ALIASES.get(c, c)) for c in countries]
    names = [f"Customer {c}" for c in customers]
    ids = bl.insert(env, "res_partner", chunk=CHUNK, columns={
        "name": ("varchar", names), "complete_name": ("varchar", names), "ref": ("varchar", [str(c) for c in customers]),
        "country_id": ("int4", country), "active": ("bool", "TRUE"), "type": ("varchar", "'contact'"),
        "is_company": ("bool", "TRUE"), "autopost_bills": ("varchar", "'ask'"),
        "create_date": ("timestamp", "now() AT TIME ZONE 'UTC'"), "write_date": ("timestamp", "now() AT TIME ZONE 'UTC'"),
        "create_uid": ("int4", str(env.uid)), "write_uid": ("int4", str(env.uid)),
    }, returning="ref, id")
    ids = dict(ids)
    env.cr.execute("UPDATE res_partner SET commercial_partner_id = id WHERE id = ANY(%s)", [list(ids.values())])
    return {c: ids[str(c)] for c in customers}, sum(c is not None for c in country)


def insert_products(env, lines):
    """One template + variant per StockCode; returns {stock code: product.product id}."""
    frame = lines.assign(Description=lines["Description"].fillna(lines["StockCode"]))
    names = frame.groupby("StockCode")["Description"].agg(lambda s: s.value_counts().index[0])
    prices = frame.groupby("StockCode")["UnitPrice"].median()
    codes = list(names.index)
    uom = env.ref("uom.product_uom_unit").id
    categ = env.ref("product.product_category_all").id
    now = "now() AT TIME ZONE 'UTC'"
    templates = bl.insert(env, "product_template", chunk=CHUNK, columns={
        "name": ("jsonb", [json.dumps({"en_US": n}) for n in names]), "default_code": ("varchar", codes),
        "list_price": ("numeric", as_python(prices.reindex(codes))), "categ_id": ("int4", str(categ)),
        "uom_id": ("int4", str(uom)), "uom_po_id": ("int4", str(uom)), "type": ("varchar", "'consu'"),
        "service_tracking": ("varchar", "'no'"), "sale_line_warn": ("varchar", "'no-message'"),
        "invoice_policy": ("varchar", "'order'"), "sale_ok": ("bool", "TRUE"), "purchase_ok": ("bool", "TRUE"),
        "active": ("bool", "TRUE"), "create_date": ("timestamp", now), "write_date": ("timestamp", now),
        "create_uid": ("int4", str(env.uid)), "write_uid": ("int4", str(env.uid)),
    }, returning="default_code, id")
    templates = dict(templates)
    products = bl.insert(env, "product_product", chunk=CHUNK, columns={
        "product_tmpl_id": ("int4", [templates[c] for c in codes]), "default_code": ("varchar", codes),
        "active": ("bool", "TRUE"), "combination_indices": ("varchar", "''"),
        "create_date": ("timestamp", now), "write_date": ("timestamp", now),
        "create_uid": ("int4", str(env.uid)), "write_uid": ("int4", str(env.uid)),
    }, returning="default_code, id")
    return dict(products), uom


def insert_orders(env, orders, partner_of):
    """One confirmed sale order per row of ``orders`` (names unique); returns {name: id}."""
    company = env.company
    partners = [partner_of[p] for p in orders["partner"]]
    amounts = [round(float(a), 2) for a in orders["amount"]]
    now = "now() AT TIME ZONE 'UTC'"
    return dict(bl.insert(env, "sale_order", chunk=CHUNK, columns={
        "name": ("varchar", list(orders["name"])), "partner_id": ("int4", partners),
        "partner_invoice_id": ("int4", partners), "partner_shipping_id": ("int4", partners),
        "date_order": ("timestamp", datetimes(orders["date"])), "amount_untaxed": ("numeric", amounts),
        "amount_total": ("numeric", amounts), "amount_tax": ("numeric", "0"), "company_id": ("int4", str(company.id)),
        "currency_id": ("int4", str(company.currency_id.id)), "currency_rate": ("numeric", "1"),
        "state": ("varchar", "'sale'"), "invoice_status": ("varchar", "'no'"), "locked": ("bool", "FALSE"),
        "require_signature": ("bool", "FALSE"), "require_payment": ("bool", "FALSE"),
        "prepayment_percent": ("float8", "1.0"), "create_date": ("timestamp", now), "write_date": ("timestamp", now),
        "create_uid": ("int4", str(env.uid)), "write_uid": ("int4", str(env.uid)),
    }, returning="name, id"))


def insert_lines(env, lines, order_of, partner_of, product_of, uom):
    company = env.company
    qty = as_python(lines["Quantity"])
    price = as_python(lines["UnitPrice"])
    subtotal = [round(q * p, 2) for q, p in zip(qty, price)]
    now = "now() AT TIME ZONE 'UTC'"
    bl.insert(env, "sale_order_line", chunk=CHUNK, columns={
        "order_id": ("int4", [order_of[i] for i in lines["InvoiceNo"]]),
        "product_id": ("int4", [product_of[c] for c in lines["StockCode"]]),
        "name": ("text", list(lines["Description"].fillna(lines["StockCode"]))),
        "product_uom_qty": ("numeric", qty), "price_unit": ("numeric", price), "technical_price_unit": ("float8", price),
        "price_subtotal": ("numeric", subtotal), "price_total": ("numeric", subtotal),
        "price_reduce_taxexcl": ("numeric", price), "price_reduce_taxinc": ("numeric", price),
        "price_tax": ("float8", "0"), "discount": ("numeric", "0"), "customer_lead": ("float8", "0"),
        "product_uom": ("int4", str(uom)), "company_id": ("int4", str(company.id)),
        "currency_id": ("int4", str(company.currency_id.id)),
        "order_partner_id": ("int4", [partner_of[p] for p in lines["partner"]]),
        "state": ("varchar", "'sale'"), "qty_delivered_method": ("varchar", "'manual'"),
        "invoice_status": ("varchar", "'no'"), "is_downpayment": ("bool", "FALSE"), "sequence": ("int4", "10"),
        "create_date": ("timestamp", now), "write_date": ("timestamp", now),
        "create_uid": ("int4", str(env.uid)), "write_uid": ("int4", str(env.uid)),
    })
    return len(lines)


# -- steps ------------------------------------------------------------------------------------
def step_load(env, data):
    import pandas as pd
    started = time.monotonic()
    env.cr.execute("SELECT count(*) FROM sale_order")
    if env.cr.fetchone()[0]:
        raise SystemExit("the database already has sale orders: load needs a fresh one (bench/run makes it)")
    today = db_today(env)
    shift = today - pd.Timestamp(REFERENCE_DAY)
    lines, orders = read_retail(shift)
    out = {"data": data, "shift_days": shift.days, "today": str(today.date()), "sample_customers": SAMPLE_CUSTOMERS}
    country_of = orders.groupby("partner")["country"].first()
    if data == "scale":
        # replicate the unshifted orders (as the engine-alone bench), then shift; drop what
        # the copies' date shifts pushed into the future
        base = orders.assign(date=orders["date"] - shift)
        big = replicate(base[["partner", "date", "amount", "is_refund", "invoice"]], REPLICA_CUSTOMERS)
        big["date"] = big["date"] + shift
        out["replica_future_dropped"] = int((big["date"] >= today).sum())
        orders = big[big["date"] < today].reset_index(drop=True)
        orders["name"] = [f"R{i + 1:07d}" for i in range(len(orders))]
        copies = orders["partner"].drop_duplicates()  # copy k of customer c is c + k * 1,000,000
        country_of = pd.Series(country_of.reindex(copies % 1_000_000).to_numpy(), index=copies.to_numpy())
    else:
        orders["name"] = orders["invoice"]
    env.flush_all()
    t = time.monotonic()
    customers = [int(c) for c in country_of.index]
    partner_of, with_country = insert_partners(env, customers, list(country_of))
    out["partners"], out["partners_with_country"] = len(partner_of), with_country
    out["seconds_partners"] = time.monotonic() - t
    t = time.monotonic()
    order_ids = insert_orders(env, orders, partner_of)
    out["orders"] = len(order_ids)
    out["returns"] = int((orders["amount"] < 0).sum())
    out["c_invoices"] = int(orders["is_refund"].sum())
    out["c_invoices_not_negative"] = int((orders["is_refund"] & (orders["amount"] >= 0)).sum())
    out["negative_not_c"] = int((~orders["is_refund"] & (orders["amount"] < 0)).sum())
    out["date_range"] = [str(orders["date"].min()), str(orders["date"].max())]
    out["seconds_orders"] = time.monotonic() - t
    if data == "retail":
        t = time.monotonic()
        product_of, uom = insert_products(env, lines)
        out["products"] = len(product_of)
        if ORDER_LINES:
            order_of = order_ids  # retail: order name = InvoiceNo
            out["order_lines"] = insert_lines(env, lines, order_of, partner_of, product_of, uom)
        out["seconds_products_lines"] = time.monotonic() - t
    bl.set_params(env, crm_ai__enabled="True", crm_ai__repeat_purchase__horizon_days=str(HORIZON_DAYS))
    env.cr.commit()
    env.cr.execute("ANALYZE res_partner; ANALYZE sale_order; ANALYZE sale_order_line; ANALYZE product_product")
    env.cr.commit()
    env.invalidate_all()
    out["seconds"] = time.monotonic() - started
    out["peak_rss_mb"] = bl.peak_rss_mb()
    return out


def registry_rows(env):
    """The newest registry row of each customer-value task, with what it says."""
    Driver = env["crm.ai.driver"].sudo()
    out = {}
    for task in TASKS:
        model = env["crm.ai.model"].sudo().search([("task", "=", task), ("company_id", "=", env.company.id)],
                                                  order="version desc", limit=1)
        if not model:
            out[task] = None
            continue
        row = {"version": model.version, "state": model.state, "score": model.score if model.score_defined else None,
               "baseline_score": model.baseline_score if model.baseline_score_defined else None,
               "metrics": model.metrics, "hyperparameters": model.hyperparameters, "importance": model.importance,
               "gate_reason": model.gate_reason, "n_train": model.n_train, "n_holdout": model.n_holdout,
               "holdout_date_from": str(model.holdout_date_from), "holdout_date_to": str(model.holdout_date_to),
               "training_seconds": model.training_seconds, "artifact_kb": len(model.artifact or b"") * 3 / 4 / 1024}
        if task == "customer_segment" and model.state == "active":
            engine = Driver._ai_engine(task, env.company)
            segmenter = Driver._ai_load(engine, model)
            row["k"] = int(segmenter.k_)
            row["silhouettes"] = {int(k): round(v, 3) for k, v in segmenter.silhouettes_.items()}
            row["clusters"] = [{"name": n, "r": round(float(s[0]), 2), "f": round(float(s[1]), 2),
                                "m": round(float(s[2]), 2)}
                               for n, s in zip(segmenter.cluster_names_, segmenter.cluster_scores_)]
        out[task] = row
    return out


def step_train(env, data):
    from odoo.addons.crm_ai.ml import customer_value as cv
    from odoo.addons.crm_ai.models import engine_customer_segment as seg
    from odoo.addons.crm_ai.models import engine_repeat_purchase as rep
    from odoo.addons.crm_ai.models.customer_orders import CustomerValueEngine
    phases = bl.Phases()
    Driver = type(env["crm.ai.driver"])
    phases.wrap(Driver, "_ai_train_unit", "total (_ai_train_unit)", lambda a: a[1])
    phases.wrap(CustomerValueEngine, "orders", "orders() SQL -> DataFrame", bl.engine_task)
    phases.wrap(CustomerValueEngine, "customer_count", "data_shortfall (customer_count SQL)", bl.engine_task)
    phases.wrap(seg, "customer_features", "customer_features")
    phases.wrap(rep, "customer_features", "customer_features (holdout)")
    phases.wrap(rep, "time_travel_frame", "time_travel_frame (snapshots)")
    phases.wrap(cv.RepeatPurchaseModel, "fit", "RepeatPurchaseModel.fit (trial + final)")
    phases.wrap(cv.RFMQuintileBaseline, "fit", "RFMQuintileBaseline.fit")
    phases.wrap(cv.RFMSegmenter, "fit", "RFMSegmenter.fit (k = 3..8)")
    phases.wrap(cv.RFMSegmenter, "silhouette", "RFMSegmenter.silhouette (model, grid, champion)")
    phases.wrap(type(env["crm.ai.model"]), "_ai_register", "_ai_register (pickle, sign, store)",
                lambda a: a[1].task)
    rss_before = bl.peak_rss_mb()
    t0 = time.monotonic()
    results = env["crm.ai.driver"]._cron_train(time_budget=3600)
    seconds = time.monotonic() - t0
    env.cr.commit()
    return {"data": data, "seconds": seconds, "rss_before_mb": rss_before, "peak_rss_mb": bl.peak_rss_mb(),
            "results": [{k: r[k] for k in ("task", "company", "status", "message")} for r in results],
            "phases": phases.result(), "models": registry_rows(env)}


def pending_plans(env):
    """The pending query of each task (nothing pending now), under EXPLAIN ANALYZE, with
    PostgreSQL's JIT as configured and with ``jit = off``: {task: {...ms}}."""
    from odoo.tools import SQL
    Driver = env["crm.ai.driver"].sudo()
    out = {}
    for task in TASKS:
        engine = Driver._ai_engine(task, env.company)
        model = env["crm.ai.model"].sudo()._ai_active(task, env.company)
        query = SQL("EXPLAIN (ANALYZE, FORMAT JSON) SELECT t.id FROM %s t WHERE %s ORDER BY t.id",
                    SQL.identifier(engine.table), Driver._ai_pending_sql(engine, model))
        row = {}
        for jit in ("on", "off"):
            env.cr.execute(f"SET LOCAL jit = {jit}")
            env.cr.execute(query)
            plan = env.cr.fetchone()[0][0]
            row[f"jit_{jit}_ms"] = plan["Execution Time"]
            if jit == "on":
                row["jit_compile_ms"] = (plan.get("JIT") or {}).get("Timing", {}).get("Total")
                row["plan_cost"] = plan["Plan"]["Total Cost"]
        env.cr.rollback()  # SET LOCAL ends with the transaction
        out[task] = row
    return out


def step_score(env, data):
    from odoo.addons.crm_ai.ml import customer_value as cv
    from odoo.addons.crm_ai.models import engine_customer_segment as seg
    from odoo.addons.crm_ai.models import engine_repeat_purchase as rep
    from odoo.addons.crm_ai.models.customer_orders import CustomerValueEngine
    from odoo.addons.crm_ai.models.engine_customer_segment import CustomerSegmentEngine
    phases = bl.Phases()
    Driver = type(env["crm.ai.driver"])
    phases.wrap(Driver, "_ai_score_pair", "total (_ai_score_pair)", lambda a: a[1])
    phases.wrap(Driver, "_ai_pending_ids", "pending query", bl.driver_engine_task)
    phases.wrap(Driver, "_ai_load", "load model", bl.driver_engine_task)
    phases.wrap(Driver, "_ai_write_scores", "UPDATE (incl. after_write)", bl.driver_engine_task)
    phases.wrap(CustomerValueEngine, "commercial_partners", "commercial_partners SQL", bl.engine_task)
    phases.wrap(CustomerValueEngine, "orders", "orders() SQL -> DataFrame", bl.engine_task)
    phases.wrap(CustomerSegmentEngine, "current_segments", "current_segments SQL", bl.engine_task)
    phases.wrap(CustomerSegmentEngine, "after_write", "after_write (history, leads)", bl.engine_task)
    phases.wrap(seg, "customer_features", "customer_features")
    phases.wrap(rep, "customer_features", "customer_features")
    phases.wrap(cv.RFMSegmenter, "predict", "RFMSegmenter.predict")
    phases.wrap(cv.RepeatPurchaseModel, "predict_proba", "predict_proba")
    phases.wrap(cv.RepeatPurchaseModel, "explain", "explain")
    rss_before = bl.peak_rss_mb()
    t0 = time.monotonic()
    done, remaining = env["crm.ai.driver"]._cron_score(time_budget=3600)
    seconds = time.monotonic() - t0
    env.cr.commit()
    first = phases.result()
    phases.seconds.clear()
    phases.calls.clear()
    t1 = time.monotonic()
    again = env["crm.ai.driver"]._cron_score(time_budget=3600)
    rerun_seconds = time.monotonic() - t1
    env.cr.commit()
    rerun = phases.result()
    Driver_ = env["crm.ai.driver"].sudo()
    pending_after = {task: Driver_._ai_pending_count(task, env.company) for task in TASKS}
    company = str(env.company.id)
    states = {}
    for task, column in (("customer_segment", "ai_segment_state"), ("repeat_purchase", "ai_propensity_state")):
        env.cr.execute(f"SELECT {column}->>%s, count(*) FROM res_partner WHERE active GROUP BY 1 ORDER BY 2 DESC",
                       [company])
        states[task] = {str(k): n for k, n in env.cr.fetchall()}
    env.cr.execute("""SELECT count(*), avg(v), percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY v),
                             count(*) FILTER (WHERE v >= 60)
                        FROM (SELECT (ai_propensity->>%s)::float AS v FROM res_partner WHERE active) s
                       WHERE v IS NOT NULL""", [company])
    n, mean, deciles, high = env.cr.fetchone()
    propensity = {"customers": n, "mean": mean, "p10_p50_p90": deciles, "high_60": high}
    segments = []
    for s in env["crm.ai.segment"].sudo().search([("company_id", "=", env.company.id)]):
        segments.append({"code": s.code, "name": s.name, "partner_count": s.partner_count, "revenue": s.revenue,
                         "avg_recency_days": s.avg_recency_days, "avg_frequency": s.avg_frequency,
                         "avg_monetary": s.avg_monetary})
    env.cr.execute("SELECT count(*) FROM crm_ai_segment_history")
    history = env.cr.fetchone()[0]
    env.cr.execute("SHOW jit")
    jit = env.cr.fetchone()[0]
    plans = pending_plans(env)
    return {"data": data, "seconds": seconds, "done": done, "remaining": remaining, "phases": first,
            "rerun_seconds": rerun_seconds, "rerun_done": again[0], "rerun_phases": rerun,
            "pending_after": pending_after, "states": states, "propensity": propensity, "segments": segments,
            "segment_history_rows": history, "batch": CustomerSegmentEngine.batch_size,
            "jit": jit, "pending_plans": plans,
            "rss_before_mb": rss_before, "peak_rss_mb": bl.peak_rss_mb()}


# -- report -----------------------------------------------------------------------------------
def report(folder):
    r = defaultdict(dict)
    for data in ("retail", "scale"):
        for step in ("load", "train", "score"):
            path = Path(folder) / f"crm_ai_bench_customer_odoo_{data}_{step}.json"
            if path.exists():
                r[data][step] = json.loads(path.read_text())
    ok = lambda value, target: "met" if value <= target else "**MISSED**"
    lines = []
    any_step = next((s for d in r.values() for s in d.values()), None)
    if any_step:
        lines.append(f"machine: {any_step.get('machine')}")
    alone_path = Path(folder) / "crm_ai_bench_customer_value.json"
    alone = json.loads(alone_path.read_text()) if alone_path.exists() else None
    for data in ("retail", "scale"):
        d = r.get(data)
        if not d or "load" not in d:
            continue
        ld = d["load"]
        lines += ["", f"### {data}: {ld['partners']:,} customers, {ld['orders']:,} confirmed orders "
                      f"({ld['returns']:,} returns)" + (f", {ld.get('products', 0):,} products, "
                                                        f"{ld.get('order_lines', 0):,} order lines" if data == "retail"
                                                        else "")
                  + f"; dates shifted {ld['shift_days']:,} days (2011-12-01 = {ld['today']}); "
                    f"loaded in {ld['seconds']:.0f} s"
                  + (f" (sample of {ld['sample_customers']} customers)" if ld.get("sample_customers") else "")]
        tr, sc = d.get("train"), d.get("score")
        if tr and sc:
            lines += ["", "| what | wall time | peak RSS (before) | target |", "|---|---|---|---|",
                      f"| train (`_cron_train`) | {tr['seconds']:.1f} s | {tr['peak_rss_mb']:.0f} MB "
                      f"({tr['rss_before_mb']:.0f}) | ≤ 120 s: {ok(tr['seconds'], TARGETS['train'])}, "
                      f"≤ 1.5 GB: {ok(tr['peak_rss_mb'], TARGETS['rss_mb'])} |",
                      f"| score (`_cron_score`, {sc['done']:,} partner values written) | {sc['seconds']:.1f} s | "
                      f"{sc['peak_rss_mb']:.0f} MB ({sc['rss_before_mb']:.0f}) | ≤ 60 s: "
                      f"{ok(sc['seconds'], TARGETS['score'])}, ≤ 1.5 GB: {ok(sc['peak_rss_mb'], TARGETS['rss_mb'])} |",
                      f"| score again, nothing changed | {sc['rerun_seconds']:.2f} s ({sc['rerun_done']} written) | | |"]
            if sc.get("pending_plans"):
                lines += ["", "pending query when nothing changed (EXPLAIN ANALYZE): " + "; ".join(
                    f"{task} {p['jit_on_ms']:.0f} ms (of which JIT compilation {p['jit_compile_ms'] or 0:.0f} ms, "
                    f"plan cost {p['plan_cost']:,.0f}), with jit = off {p['jit_off_ms']:.0f} ms"
                    for task, p in sc["pending_plans"].items()) + f" (server setting jit = {sc['jit']})"]
            lines += ["", "| train phase | wall time |", "|---|---|"]
            lines += [f"| {k} | {v['seconds']:.2f} s |" for k, v in tr["phases"].items()]
            lines += ["", f"| score phase (batches of {sc['batch']:,}) | wall time (calls) | score again |", "|---|---|---|"]
            for k, v in sc["phases"].items():
                again = sc["rerun_phases"].get(k, {}).get("seconds")
                lines.append(f"| {k} | {v['seconds']:.2f} s ({v['calls']}) | "
                             f"{'' if again is None else f'{again:.2f} s'} |")
            lines += [
                      "", "training results: " + " / ".join(f"{x['task']}: {x['status']} ({x['message']})"
                                                           for x in tr["results"])]
        if tr:
            segm, rep = tr["models"].get("customer_segment"), tr["models"].get("repeat_purchase")
            if segm:
                m = segm["metrics"] or {}
                sil = lambda part: "n/a" if (m.get(part) or {}).get("silhouette") is None else \
                    f"{m[part]['silhouette']:.3f}"
                lines += ["", f"segmenter v{segm['version']} ({segm['state']}): {segm['hyperparameters']}; silhouette "
                              f"{sil('model')} vs RFM grid {sil('baseline')}; clusters (mean R, F, M scores 1-5): "
                              + ", ".join(f"{c['name']} ({c['r']}, {c['f']}, {c['m']})"
                                          for c in segm.get("clusters", []))]
            if rep:
                m = rep["metrics"] or {}
                ours, theirs, counts = m.get("model") or {}, m.get("baseline") or {}, m.get("counts") or {}
                lines += ["", f"repeat purchase v{rep['version']} ({rep['state']}): holdout "
                              f"{rep['holdout_date_from']} -> {rep['holdout_date_to']}, {rep['n_holdout']:,} customers "
                              f"(repeat rate {counts.get('repeat_rate', float('nan')):.1%}), trained on "
                              f"{rep['n_train']:,} rows; {rep['hyperparameters']}", "",
                          "| model | AUC | Brier | log-loss | calibration error |", "|---|---|---|---|---|"]
                rows = [("crm_ai (Odoo)", ours), ("RFM quintile score (Odoo)", theirs)]
                if alone and data == "retail" and not ld.get("sample_customers"):
                    rows += [("crm_ai, engine alone (`bench/run customer`)", alone["repeat_purchase"]["crm_ai"]),
                             ("RFM quintile, engine alone", alone["repeat_purchase"]["rfm_quintile"])]
                for label, x in rows:
                    f = lambda k, x=x: "n/a" if x.get(k) is None else f"{x[k]:.4f}"
                    lines.append(f"| {label} | {f('auc')} | {f('brier')} | {f('log_loss')} | "
                                 f"{f('calibration_error')} |")
                lines += ["", "importance: " + "; ".join((rep["importance"] or "").splitlines())]
        if sc:
            lines += ["", "| segment | customers | avg days since last order | avg orders | avg revenue |",
                      "|---|---|---|---|---|"]
            for s in sc["segments"]:
                if s["partner_count"]:
                    lines.append(f"| {s['name']} | {s['partner_count']:,} | {s['avg_recency_days']:.0f} | "
                                 f"{s['avg_frequency']:.1f} | {s['avg_monetary']:,.0f} |")
            p = sc["propensity"]
            lines += ["", f"repeat-purchase propensity: {p['customers']:,} customers, mean {p['mean']:.1f} %, "
                          f"p10/p50/p90 {', '.join(f'{v:.1f}' for v in p['p10_p50_p90'])} %, "
                          f"{p['high_60']:,} at 60 % or more; states {sc['states']}; "
                          f"pending after: {sc['pending_after']}"]
    return "\n".join(lines)


if "env" in globals():  # inside odoo-bin shell (bench/run)
    step, data = os.environ.get("BENCH_STEP"), os.environ.get("BENCH_DATA", "retail")
    runner = {"load": step_load, "train": step_train, "score": step_score}.get(step)
    if not runner or data not in ("retail", "scale"):
        raise SystemExit(f"BENCH_STEP must be load, train or score ({step!r}), BENCH_DATA retail or scale ({data!r})")
    out = runner(env, data)  # noqa: F821 -- ``env`` comes from odoo-bin shell
    bl.emit(step, out, limit=2000)
elif __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--report":
    print(report(sys.argv[2]))
else:
    raise SystemExit("run through bench/run customer-odoo (or: python bench_customer_value_odoo.py --report DIR)")
