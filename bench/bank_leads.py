"""The UCI Bank Marketing rows as ``crm.lead`` records, for the crm_ai benchmarks.

Imported by the benchmark scripts run in an Odoo shell (``bench/run``) and by the
engine-only benchmark.  The data set is read from ``../shared/data`` (relative to the
repository root, or ``$BANK_CSV``); it is never copied into the repository.

Mapping (one bank call = one lead):

* contact date -> ``create_date`` (and ``date_closed`` of a closed lead).  The file has
  day and month only; rows are in time order from May 2008, so the year starts at 2008
  and goes up by one whenever the month goes backwards (-> May 2008 ... Nov 2010).
  The month is therefore *not* a feature: it is the date.
* ``contact`` -> ``medium_id`` (utm.medium "cellular", "telephone", "unknown");
* every other client / campaign column -> a custom ``x_`` field (below);
* ``duration`` is LEFT OUT: it is the length of the call that decided the outcome,
  known only afterwards (the data set's own documentation says so);
* ``y == "yes"`` -> won.

Leads are written with one bulk ``INSERT ... SELECT FROM unnest(...)``: no ORM, no
tracking, no chatter, which is what makes 100,000 leads a matter of seconds.
"""

import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}

#: custom field -> (ttype, label, bank column, converter)
X_FIELDS = {
    "x_age": ("integer", "Age", "age", int),
    "x_job": ("char", "Job", "job", str),
    "x_marital": ("char", "Marital status", "marital", str),
    "x_education": ("char", "Education", "education", str),
    "x_default": ("boolean", "Has credit in default", "default", lambda v: v == "yes"),
    "x_balance": ("float", "Average yearly balance (EUR)", "balance", float),
    "x_housing": ("boolean", "Has a housing loan", "housing", lambda v: v == "yes"),
    "x_loan": ("boolean", "Has a personal loan", "loan", lambda v: v == "yes"),
    "x_campaign_contacts": ("integer", "Contacts in this campaign", "campaign", int),
    "x_pdays": ("integer", "Days since previous campaign contact (-1: never)", "pdays", int),
    "x_previous_contacts": ("integer", "Contacts before this campaign", "previous", int),
    "x_poutcome": ("char", "Previous campaign outcome", "poutcome", str),
}
#: The call's calendar, as a user who keeps every column would have it: the second
#: configuration of the quality benchmark (``x_month`` is a category for PLS and crm_ai).
CALENDAR_FIELDS = {
    "x_month": ("char", "Contact month", "month", str),
    "x_day": ("integer", "Contact day of month", "day", int),
}
ALL_X_FIELDS = {**X_FIELDS, **CALENDAR_FIELDS}
CATEGORICAL_X = ["x_job", "x_marital", "x_education", "x_poutcome"]
BOOLEAN_X = ["x_default", "x_housing", "x_loan"]
INTEGER_X = ["x_age", "x_campaign_contacts", "x_pdays", "x_previous_contacts"]
FLOAT_X = ["x_balance"]
#: crm_ai inputs: every x_ field plus the medium.
AI_FIELDS = ["medium_id", *X_FIELDS]
SQL_TYPES = {"integer": "int4", "char": "varchar", "boolean": "bool", "float": "float8"}


def repo_root():
    return Path(os.environ.get("BENCH_REPO") or Path(__file__).resolve().parents[1])


def csv_path():
    return Path(os.environ.get("BANK_CSV") or repo_root().parent / "shared/data/bank_marketing/bank-full.csv")


def load_bank(path=None):
    """The 45,211 rows in file (= time) order, with ``contact_date`` and ``won`` added."""
    data = pd.read_csv(path or csv_path(), sep=";")
    month = data["month"].map(MONTHS)
    if month.isna().any():
        raise ValueError("unknown month name in the bank file")
    year = 2008 + (month.diff() < 0).cumsum()
    data["contact_date"] = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": data["day"]}))
    if not data["contact_date"].is_monotonic_increasing:
        raise ValueError("the bank rows are not in time order: the year reconstruction is wrong")
    data["won"] = data["y"].eq("yes")
    return data


def feature_frame(data, x_fields=None):
    """The x_ values of ``data`` (Python types, as the ORM would store them)."""
    return pd.DataFrame({name: data[col].map(conv) for name, (_t, _l, col, conv) in (x_fields or X_FIELDS).items()})


# ----------------------------------------------------------------------------------
# Odoo side (``env`` is an Odoo environment)
# ----------------------------------------------------------------------------------
def ensure_custom_fields(env, x_fields=None):
    """Create the x_ fields on crm.lead (manual fields, as a user would in Studio / Settings)."""
    x_fields = x_fields or X_FIELDS
    model = env["ir.model"]._get("crm.lead")
    existing = set(env["ir.model.fields"].search([("model", "=", "crm.lead"), ("name", "in", list(x_fields))])
                   .mapped("name"))
    vals = [{"model_id": model.id, "name": name, "ttype": ttype, "field_description": label, "state": "manual"}
            for name, (ttype, label, _c, _f) in x_fields.items() if name not in existing]
    if vals:
        env["ir.model.fields"].create(vals)
    missing = [n for n in x_fields if n not in env["crm.lead"]._fields]
    if missing:
        raise RuntimeError(f"custom fields not in the registry after creation: {missing}")


def ensure_mediums(env):
    """``{contact value: utm.medium id}``."""
    Medium = env["utm.medium"].with_context(active_test=False)
    out = {}
    for name in ("cellular", "telephone", "unknown"):
        medium = Medium.search([("name", "=", name)], limit=1) or Medium.create({"name": name})
        out[name] = medium.id
    return out


def reset_crm(env):
    """Remove the demo leads, PLS frequencies and crm_ai models: the benchmark leads stand alone."""
    env.cr.execute("TRUNCATE crm_lead_scoring_frequency")
    env["crm.lead"].with_context(active_test=False).search([]).unlink()
    env.cr.execute("DELETE FROM crm_ai_model")
    env.invalidate_all()


def stages(env):
    """(first stage as PLS defines it, a won stage)."""
    first = env["crm.stage"].search([("team_id", "=", False)], order="sequence, id", limit=1)
    won = env["crm.stage"].search([("is_won", "=", True)], order="sequence, id", limit=1)
    return first.id, won.id


def insert_leads(env, data, *, create_dates, closed, won, close_dates=None, team_id, company_id,
                 mediums, partner_ids=None, name_prefix="Bank lead", open_probability=10.0, x_fields=None):
    """Bulk-insert one lead per row of ``data``; returns their ids in row order.

    ``closed``/``won``: boolean arrays.  A won lead is active, in the won stage, probability
    100; a lost lead is archived with probability 0 (in the first stage: PLS then counts it
    exactly like a won one for the stage variable, so the stage carries no information);
    an open lead is active, in the first stage, probability ``open_probability``.
    """
    n = len(data)
    first_stage, won_stage = stages(env)
    closed = np.asarray(closed, dtype=bool)
    won = np.asarray(won, dtype=bool) & closed
    create_dates = pd.to_datetime(pd.Series(create_dates)).reset_index(drop=True)
    close_dates = create_dates if close_dates is None else pd.to_datetime(pd.Series(close_dates)).reset_index(drop=True)
    to_py = lambda s: [None if pd.isna(v) else v.to_pydatetime() for v in s]
    x_fields = x_fields or X_FIELDS
    feats = feature_frame(data, x_fields)
    columns = {
        "name": ("varchar", [f"{name_prefix} {i + 1}" for i in range(n)]),
        "type": ("varchar", ["opportunity"] * n),
        "active": ("bool", [bool(not c or w) for c, w in zip(closed, won)]),
        "stage_id": ("int4", [won_stage if w else first_stage for w in won]),
        "probability": ("float8", [100.0 if w else 0.0 if c else open_probability for c, w in zip(closed, won)]),
        "automated_probability": ("float8", [100.0 if w else 0.0 if c else open_probability
                                             for c, w in zip(closed, won)]),
        "create_date": ("timestamp", to_py(create_dates)),
        "write_date": ("timestamp", to_py(close_dates.where(closed, create_dates))),
        "date_open": ("timestamp", to_py(create_dates)),
        "date_closed": ("timestamp", to_py(close_dates.where(closed))),
        "date_last_stage_update": ("timestamp", to_py(close_dates.where(closed, create_dates))),
        "medium_id": ("int4", [mediums[c] for c in data["contact"]]),
        "team_id": ("int4", [team_id] * n),
        "company_id": ("int4", [company_id] * n),
        "user_id": ("int4", [None] * n),
        "partner_id": ("int4", list(partner_ids) if partner_ids is not None else [None] * n),
        "priority": ("varchar", ["0"] * n),
        "ai_propensity_state": ("varchar", ["pending"] * n),
        "create_uid": ("int4", [env.uid] * n),
        "write_uid": ("int4", [env.uid] * n),
    }
    for name, (ttype, _l, _c, _f) in x_fields.items():
        values = feats[name].tolist()
        columns[name] = (SQL_TYPES[ttype], [None if v is None else (v.item() if hasattr(v, "item") else v)
                                            for v in values])
    names = list(columns)
    unnest = ", ".join(f"%s::{columns[c][0]}[]" for c in names)
    env["crm.lead"].flush_model()
    env.cr.execute(
        f"""INSERT INTO crm_lead ({", ".join(names)})
            SELECT {", ".join(names)} FROM unnest({unnest}) WITH ORDINALITY AS v({", ".join(names)}, ord)
            ORDER BY ord
            RETURNING id, name""",
        [columns[c][1] for c in names])
    by_name = {name: lead_id for lead_id, name in env.cr.fetchall()}
    env.invalidate_all()
    return [by_name[f"{name_prefix} {i + 1}"] for i in range(n)]


def insert_partners(env, count, prefix="Bench customer"):
    """``count`` company partners (their own commercial partner); returns their ids."""
    env["res.partner"].flush_model()
    env.cr.execute("""
        INSERT INTO res_partner (name, complete_name, active, type, is_company, autopost_bills,
                                 create_date, write_date, create_uid, write_uid)
        SELECT %(p)s || ' ' || g, %(p)s || ' ' || g, TRUE, 'contact', TRUE, 'ask', now(), now(), %(uid)s, %(uid)s
          FROM generate_series(1, %(n)s) g
        RETURNING id
    """, {"p": prefix, "n": count, "uid": env.uid})
    ids = [r[0] for r in env.cr.fetchall()]
    env.cr.execute("UPDATE res_partner SET commercial_partner_id = id WHERE id = ANY(%s)", [ids])
    env.invalidate_all()
    return sorted(ids)


def insert_messages(env, lead_ids, per_lead):
    """``per_lead`` notes on each lead, dated between its creation and its closing (or now)."""
    if not per_lead or not lead_ids:
        return 0
    subtype = env.ref("mail.mt_note").id
    env.cr.execute("""
        INSERT INTO mail_message (model, res_id, message_type, body, subtype_id, author_id,
                                  date, create_date, write_date, create_uid, write_uid)
        SELECT 'crm.lead', l.id, 'comment', '<p>Called the customer.</p>', %(subtype)s, %(author)s,
               l.create_date + (LEAST(COALESCE(l.date_closed, l.create_date + interval '10 days'),
                                      now() AT TIME ZONE 'UTC') - l.create_date) * k / (%(per)s + 1),
               now(), now(), %(uid)s, %(uid)s
          FROM crm_lead l, generate_series(1, %(per)s) k
         WHERE l.id = ANY(%(ids)s)
    """, {"subtype": subtype, "author": env.user.partner_id.id, "per": per_lead, "ids": list(lead_ids),
          "uid": env.uid})
    count = env.cr.rowcount
    env.invalidate_all()
    return count


def set_params(env, **params):
    """Set ``ir.config_parameter``s; keys use ``__`` for dots (crm_ai__lead_propensity__fields)."""
    icp = env["ir.config_parameter"].sudo()
    for key, value in params.items():
        icp.set_param(key.replace("__", "."), value)


def only_engines(env, *tasks):
    """Switch every other crm_ai engine off (the crons then drive only what the bench measures)."""
    from odoo.addons.crm_ai.models.crm_ai_engine import ENGINES
    for task in ENGINES:
        env["ir.config_parameter"].sudo().set_param(f"crm_ai.{task}.enabled", str(task in tasks))
    return sorted(set(ENGINES) - set(tasks))


def machine():
    """A one-line description of this machine (for the results)."""
    import platform
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {cpu}, {mem_gb:.0f} GB RAM, Python {platform.python_version()}"


def peak_rss_mb():
    """Peak resident memory of this process so far (MB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def insert(env, table, columns, returning=None, chunk=50_000):
    """``INSERT INTO table (columns) SELECT FROM unnest(arrays)`` in chunks of ``chunk``
    rows; ``columns``: {name: (sql type, values, or an SQL expression as a string)}; a name
    starting with "_" is an input the expressions use (``v._age``), not a column."""
    arrays = {c: v for c, v in columns.items() if not isinstance(v[1], str)}
    n = len(next(iter(arrays.values()))[1])
    names = [c for c in columns if not c.startswith("_")]
    select = ", ".join(columns[c][1] if c not in arrays else f"v.{c}" for c in names)
    unnest = ", ".join(f"%s::{arrays[c][0]}[]" for c in arrays)
    out = []
    for start in range(0, n, chunk):
        env.cr.execute(
            f"""INSERT INTO {table} ({", ".join(names)})
                SELECT {select} FROM unnest({unnest}) AS v({", ".join(arrays)})
                {f"RETURNING {returning}" if returning else ""}""",
            [arrays[c][1][start:start + chunk] for c in arrays])
        if returning:
            out += env.cr.fetchall()
    return out


# -- what the Odoo-level benches share: phase timings and the step's output -----------------------
class Phases:
    """Wall time (and items) per (task, phase) of wrapped methods / functions."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.items = defaultdict(int)

    def clear(self):
        self.seconds.clear()
        self.calls.clear()
        self.items.clear()

    def add(self, key, seconds, items=None):
        self.seconds[key] += seconds
        self.calls[key] += 1
        if items is not None:
            self.items[key] += items

    def wrap(self, owner, name, phase, task_of=None, items_of=None):
        """Replace ``owner.name`` by a timed wrapper (``task_of(args)`` prefixes the phase)."""
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t0 = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                task = task_of(args) if task_of else None
                self.add(f"{task}: {phase}" if task else phase, time.monotonic() - t0,
                         items_of(args) if items_of else None)
        setattr(owner, name, wrapper)

    def result(self):
        return {key: {"seconds": round(s, 3), "calls": self.calls[key],
                      **({"items": self.items[key]} if key in self.items else {})}
                for key, s in sorted(self.seconds.items())}


def engine_task(args):
    """``task_of`` for an engine's method (``self`` is the engine)."""
    return args[0].task


def driver_engine_task(args):
    """``task_of`` for a driver method taking the engine first."""
    return args[1].task


def emit(step, out, limit=None):
    """A step's result: printed (``limit`` characters at most) and, with ``$BENCH_JSON``, written."""
    out["machine"] = machine()
    text = json.dumps(out, default=str)
    print(step, text[:limit] if limit else text, flush=True)
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as handle:
            json.dump(out, handle, indent=2, default=str)
