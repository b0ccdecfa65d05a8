"""Lead propensity: the chance that an open lead is won, with its reasons.

The engine around ``ml.propensity.LeadPropensityModel`` (regularised logistic
regression over binned fields), measured against a faithful port of Odoo's
Predictive Lead Scoring (``ml.pls_baseline``) on the same time-ordered holdout.

Leakage: a closed lead's messages, activities, age and customer history are counted
at a *snapshot* moment drawn deterministically between its creation and its closing,
exactly as an open lead's are now.  Each closed lead then weighs its lifetime
(``LIFETIME_WEIGHT_DAYS``): the open leads are a sample of lead-days, not of leads.  Its
other fields are read as they are (as last edited before closing, as Odoo's PLS reads
them): fields written at closing or after assignment (stage, probability, lost reason,
close date, assignment date, prorated revenue) can never be features; a field a
salesperson fills *because* a deal was won or lost is the admin's to keep out of the
inputs (README).
"""

import json
import logging
import time
from datetime import timedelta

import numpy as np
import pandas as pd
from sklearn.base import clone

from odoo import _
from odoo.tools import SQL, split_every
from odoo.tools.translate import LazyTranslate

from ..ml import LeadPropensityModel, OdooPLSBaseline, binary_metrics, reliability_bins, time_ordered_split
from ..ml.features import NOT_SET
from ..ml.propensity import describe_spec
from .crm_ai_engine import CrmAiEngine, ModelRefused, Param, TrainResult, reads_all_sales, register_engine

_logger = logging.getLogger(__name__)
_lt = LazyTranslate(__name__)

#: Closed leads extracted per query when training (memory, not locks, is the limit).
TRAIN_BATCH_STEP = 50000
#: A closed lead weighs its lifetime in days (creation to closing) in training and in the
#: holdout's measures, within these bounds.  Why: a lead is seen once, at a moment of its
#: life, but the open leads the model scores are length-biased (a lead open 60 days is among
#: the open leads 6 times as long as one closed after 10): weighting each closed lead by its
#: lifetime makes the training population the open one.  Unweighted, won deals that take
#: longer than lost leads would be under-counted among young leads (ml_tests/test_propensity.py
#: ``test_lifetime_weights_correct_the_length_bias_of_one_snapshot_per_lead``: 7 % for 30 %).
#: The cap keeps a lead forgotten open for years from weighing like hundreds of others.
#: A lead whose lifetime is unknown (no closing date, or closed before or when it was created:
#: imported history) weighs the mean known lifetime, i.e. 1: "unknown" is not "very short".
LIFETIME_WEIGHT_DAYS = (1.0 / 24, 365.0)
#: Default minimum of won AND of lost closed leads before a model is trained.
DEFAULT_MIN_CLOSED_PER_CLASS = 40
#: Reasons kept per lead on each side (positive / negative).
REASONS_PER_SIDE = 5
#: Reasons moving the propensity by less than this many points are noise to a salesperson.
REASON_MIN_POINTS = 0.5
#: Odoo reserves 0 and 100 % for lost and won leads (as PLS does): scores stay inside.
MIN_PROPENSITY, MAX_PROPENSITY = 0.01, 99.99
#: Grade floors in %, best first (A ≥ 75 %, B ≥ 50 %, C ≥ 25 %, D below).
#: The views' "High propensity" filter and kanban colours go by grade (A, B high; D low).
GRADE_FLOORS = ((75.0, "a"), (50.0, "b"), (25.0, "c"))
GRADES = [
    ("a", "A · very likely (≥ %g %%)" % GRADE_FLOORS[0][0]),
    ("b", "B · likely (%g-%g %%)" % (GRADE_FLOORS[1][0], GRADE_FLOORS[0][0])),
    ("c", "C · possible (%g-%g %%)" % (GRADE_FLOORS[2][0], GRADE_FLOORS[1][0])),
    ("d", "D · unlikely (< %g %%)" % GRADE_FLOORS[2][0]),
]

DEFAULT_LEAD_FIELDS = [
    "team_id", "user_id", "source_id", "medium_id", "campaign_id", "country_id", "state_id",
    "lang_id", "tag_ids", "expected_revenue", "email_state", "phone_state", "priority",
]
ALLOWED_TTYPES = {"char", "selection", "many2one", "many2many", "boolean", "integer", "float", "monetary",
                  "date", "datetime"}
#: Fields that are the outcome, are written when a lead is closed, or derive from one of those.
LEAKY_FIELDS = {
    "id", "active", "stage_id", "probability", "automated_probability", "lost_reason_id", "date_closed",
    "day_close", "day_open", "date_open", "date_last_stage_update", "won_status", "is_won", "prorated_revenue",
    "recurring_revenue_prorated", "recurring_revenue_monthly_prorated", "date_conversion", "company_id",
    "create_date", "write_date", "create_uid", "write_uid", "color", "kanban_state", "date_automation_last",
    "duplicate_lead_count", "message_bounce",
}
#: Signals Odoo's PLS ignores, computed in SQL (name -> label).
HISTORY_SIGNALS = {
    "ai_partner_won_count": _lt("Customer's earlier won deals"),
    "ai_partner_lost_count": _lt("Customer's earlier lost deals"),
    "ai_partner_won_revenue": _lt("Customer's earlier won revenue"),
    "ai_message_count": _lt("Emails and notes"),
    "ai_activity_done_count": _lt("Activities done"),
    "ai_age_days": _lt("Age (days)"),
}
#: The signals made of the customer's other leads, whoever owns them: their figures are for
#: users who read every lead (``describe_reasons``).
CUSTOMER_HISTORY = frozenset({"ai_partner_won_count", "ai_partner_lost_count", "ai_partner_won_revenue"})
#: Words the engine writes as values, translated when shown.
VALUE_WORDS = {NOT_SET: _lt("(not set)"), "none": _lt("none"), "yes": _lt("yes"), "no": _lt("no")}
#: The trend is the change of the propensity over this many days (the "rising" and
#: "falling" filters, the kanban and list arrows, the manager's report).
TREND_DAYS = 7
#: A move of at least this many points in TREND_DAYS shows as rising / falling.
TREND_SIGNIFICANT_POINTS = 5.0
#: Default of ``history_step``: a new history row when the score moved this much.
DEFAULT_HISTORY_STEP = 2.0
#: Default of ``history_days``: rows older than this are thinned (each lead keeps the newest of them).
DEFAULT_HISTORY_DAYS = 365
# Knuth's multiplicative hash: a fixed, well-spread fraction in [0, 1) per lead id,
# placing a closed lead's snapshot between creation and closing.
SNAPSHOT_HASH = 2654435761


def grade(percent):
    """The grade of a propensity in %."""
    for floor, letter in GRADE_FLOORS:
        if percent >= floor:
            return letter
    return "d"


# The one definition of won, lost and open leads (as Odoo's PLS reads them): won = in a
# won stage, lost = archived at probability 0, open = neither.  ``stage`` names a joined
# crm_stage row (fast on large joins); without it the stage is looked up per row.
def _is_won_stage(lead, stage):
    if stage:
        return SQL("COALESCE(%s.is_won, FALSE)", SQL.identifier(stage))
    return SQL("EXISTS (SELECT 1 FROM crm_stage ws WHERE ws.id = %s.stage_id AND ws.is_won)", SQL.identifier(lead))


def won_sql(lead, stage=None):
    return SQL("(%s.active AND %s)", SQL.identifier(lead), _is_won_stage(lead, stage))


def lost_sql(lead):
    return SQL("(NOT %s.active AND %s.probability = 0)", SQL.identifier(lead), SQL.identifier(lead))


def open_sql(lead, stage=None):
    return SQL("(%s.active AND NOT %s)", SQL.identifier(lead), _is_won_stage(lead, stage))


def _parse_half_life(raw):
    """"auto" (chosen on recent leads), "none" (no weighting) or days > 0."""
    raw = raw.strip()
    if raw in ("", "auto"):
        return "auto"
    if raw == "none":
        return None
    days = float(raw)
    if not days > 0:
        raise ValueError("a half-life is a positive number of days")
    return days


@register_engine
class LeadPropensityEngine(CrmAiEngine):
    task = "lead_propensity"
    label = "Lead propensity"
    target_model = "crm.lead"
    state_field = "ai_propensity_state"
    date_field = "ai_propensity_date"
    model_field = "ai_propensity_model_id"
    value_fields = ("ai_propensity", "ai_propensity_grade", "ai_propensity_reason_data", "ai_propensity_trend")
    primary_metric = "auc"
    primary_metric_label = "AUC"
    higher_is_better = True
    baseline_label = "Odoo PLS"
    libraries = ("scikit-learn", "numpy")
    params = {
        **CrmAiEngine.params,
        "fields": Param("names", DEFAULT_LEAD_FIELDS),
        "min_closed_per_class": Param("int", DEFAULT_MIN_CLOSED_PER_CLASS, minimum=2, maximum=1_000_000),
        "start_date": Param("date", None),
        "recency_half_life": Param(_parse_half_life, "auto"),
        "history_step": Param("float", DEFAULT_HISTORY_STEP, minimum=0.0, maximum=100.0),
        "history_days": Param("int", DEFAULT_HISTORY_DAYS, minimum=TREND_DAYS + 1, maximum=36500),
    }
    batch_size = 5000  # bench/bench_propensity_speed.py: a batch stays under ~2 s on 2 cores

    # -- configuration ---------------------------------------------------------------------
    def allowed_field(self, name):
        field = self.records._fields.get(name)
        return bool(field and field.store and field.type in ALLOWED_TTYPES and name not in LEAKY_FIELDS
                    and not name.startswith("ai_") and not getattr(field, "translate", False)
                    and not (field.type == "many2many" and not field.relation))

    def input_fields(self):
        """The configured lead fields that can be inputs; the defaults if none can."""
        names = self.param("fields")
        safe = [n for n in dict.fromkeys(names) if self.allowed_field(n)]
        ignored = set(names) - set(safe)
        if ignored:
            _logger.warning("crm_ai: ignoring fields that cannot be used as inputs: %s", sorted(ignored))
        if not safe:
            # A model needs inputs: a parameter naming only removed fields must not stop training.
            _logger.warning("crm_ai: no usable lead field in %s, using the default set", self.param_key("fields"))
            safe = [n for n in DEFAULT_LEAD_FIELDS if self.allowed_field(n)]
        return safe

    # -- records and changes ------------------------------------------------------------------
    def scope_sql(self, alias):
        return SQL("%s AND %s", open_sql(alias), self.company_sql(SQL("%s.company_id", SQL.identifier(alias))))

    def changed_sql(self, alias):
        # create_date, not date: a message dated in the future must not keep the lead pending
        # on every run (it is counted once its date has passed, by the daily rescore).
        lead = SQL.identifier(alias)
        return SQL("EXISTS (SELECT 1 FROM mail_message m WHERE m.model = 'crm.lead' AND m.res_id = %s.id"
                   " AND m.create_date > %s.ai_propensity_date)", lead, lead)

    # -- extraction ---------------------------------------------------------------------------
    def field_kinds(self, names):
        kinds = {"categorical": [], "multilabel": [], "numeric": [], "boolean": [], "date": []}
        for name in names:
            ttype = self.records._fields[name].type
            if ttype in ("char", "selection", "many2one"):
                kinds["categorical"].append(name)
            elif ttype == "many2many":
                kinds["multilabel"].append(name)
            elif ttype == "boolean":
                kinds["boolean"].append(name)
            elif ttype in ("date", "datetime"):
                kinds["date"].append(name)
            else:
                kinds["numeric"].append(name)
        return kinds

    def model_params(self, names):
        kinds = self.field_kinds(names)
        return {
            "categorical": kinds["categorical"],
            "multilabel": kinds["multilabel"],
            "numeric": kinds["numeric"] + kinds["date"] + list(HISTORY_SIGNALS),
            "boolean": kinds["boolean"],
        }

    def extract(self, lead_ids, names, now):
        """Features of ``lead_ids`` as a DataFrame (one row per id, in ``lead_ids`` order).

        Columns: the chosen lead fields, ``HISTORY_SIGNALS``, and ``_snapshot``.
        One query per batch: history, messages and activities are aggregated joins.
        """
        if not lead_ids:
            return pd.DataFrame(columns=["id", *names, *HISTORY_SIGNALS])
        kinds = self.field_kinds(names)
        plain = [n for n in names if n not in kinds["multilabel"]]
        selects = [SQL("l.%s AS %s", SQL.identifier(n), SQL.identifier(n)) for n in plain]
        for name in kinds["multilabel"]:
            field = self.records._fields[name]
            selects.append(SQL(
                "(SELECT array_agg(r.%s ORDER BY r.%s) FROM %s r WHERE r.%s = l.id) AS %s",
                SQL.identifier(field.column2), SQL.identifier(field.column2), SQL.identifier(field.relation),
                SQL.identifier(field.column1), SQL.identifier(name)))
        query = SQL("""
            WITH base AS (
                SELECT l.id, l.create_date, l.company_id, p.commercial_partner_id,
                       -- a closed lead is seen between its creation and its closing, never after it; an
                       -- imported one may be created after it closed: it is seen at its closing then
                       CASE WHEN %(open)s THEN %(now)s::timestamp
                            ELSE LEAST(l.create_date, COALESCE(l.date_closed, l.write_date))
                                 + GREATEST(COALESCE(l.date_closed, l.write_date) - l.create_date, interval '0')
                                 * mod(l.id::bigint * %(hash)s, 1000) / 1000.0
                       END AS snapshot,
                       -- the customer's earlier deals: those closed before this one was created (or closed)
                       CASE WHEN %(open)s THEN l.create_date
                            ELSE LEAST(l.create_date, COALESCE(l.date_closed, l.write_date)) END AS anchor
                  FROM crm_lead l
             LEFT JOIN crm_stage s ON s.id = l.stage_id
             LEFT JOIN res_partner p ON p.id = l.partner_id
                 WHERE l.id = ANY(%(ids)s)
            ), history AS (
                SELECT b.id,
                       COUNT(*) FILTER (WHERE %(won)s) AS won,
                       COUNT(*) FILTER (WHERE %(lost)s) AS lost,
                       SUM(h.expected_revenue) FILTER (WHERE %(won)s) AS won_revenue
                  FROM base b
                  JOIN res_partner hp ON hp.commercial_partner_id = b.commercial_partner_id
                  JOIN crm_lead h ON h.partner_id = hp.id AND h.id != b.id AND h.date_closed < b.anchor
                                 -- another company's deals are not this company's to learn from
                                 AND h.company_id IS NOT DISTINCT FROM b.company_id
             LEFT JOIN crm_stage hs ON hs.id = h.stage_id
                 GROUP BY b.id
            ), messages AS (
                SELECT b.id,
                       COUNT(*) FILTER (WHERE m.mail_activity_type_id IS NULL
                                          AND m.message_type IN ('email', 'comment', 'email_outgoing')) AS messages,
                       COUNT(*) FILTER (WHERE m.mail_activity_type_id IS NOT NULL) AS activities
                  FROM base b
                  JOIN mail_message m ON m.model = 'crm.lead' AND m.res_id = b.id AND m.date < b.snapshot
                 GROUP BY b.id
            )
            SELECT l.id, b.snapshot AS _snapshot%(selects)s,
                   COALESCE(h.won, 0) AS ai_partner_won_count,
                   COALESCE(h.lost, 0) AS ai_partner_lost_count,
                   COALESCE(h.won_revenue, 0) AS ai_partner_won_revenue,
                   COALESCE(m.messages, 0) AS ai_message_count,
                   COALESCE(m.activities, 0) AS ai_activity_done_count,
                   GREATEST(EXTRACT(EPOCH FROM b.snapshot - l.create_date) / 86400.0, 0) AS ai_age_days
              FROM base b
              JOIN crm_lead l ON l.id = b.id
         LEFT JOIN history h ON h.id = b.id
         LEFT JOIN messages m ON m.id = b.id
        """, now=now, hash=SNAPSHOT_HASH, ids=list(lead_ids), open=open_sql("l", "s"), won=won_sql("h", "hs"),
            lost=lost_sql("h"), selects=SQL("").join(SQL(", %s", select) for select in selects))
        cr = self.env.cr
        cr.execute(query)
        columns = [d.name for d in cr.description]
        frame = pd.DataFrame.from_records(cr.fetchall(), columns=columns)
        frame = frame.set_index("id").reindex(list(lead_ids)).reset_index()
        snapshot = pd.to_datetime(frame["_snapshot"])
        for name in kinds["date"]:
            # A date becomes "days from the snapshot" (negative: in the past).
            frame[name] = (pd.to_datetime(frame[name]) - snapshot).dt.total_seconds() / 86400.0
        for name in kinds["numeric"] + list(HISTORY_SIGNALS):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
        for name in kinds["boolean"]:
            frame[name] = frame[name].fillna(False).astype(bool)
        for name in kinds["categorical"]:
            frame[name] = frame[name].astype(object)
        return frame

    def labels(self, names, frame):
        """Words for reasons: field labels, and display names of the ids in ``frame``."""
        fields_ = self.records._fields
        field_labels = {n: fields_[n].get_description(self.env)["string"] for n in names}
        field_labels.update({name: self.env._(label) for name, label in HISTORY_SIGNALS.items()})
        value_labels = {}
        for name in names:
            field = fields_[name]
            if field.type == "selection":
                value_labels[name] = {str(k): v for k, v in field._description_selection(self.env)}
            elif field.type in ("many2one", "many2many"):
                ids = set()
                for value in frame[name]:
                    if isinstance(value, (list, tuple, np.ndarray)):
                        ids.update(int(v) for v in value)
                    elif value is not None and not pd.isna(value):
                        ids.add(int(value))
                records = self.env[field.comodel_name].sudo().with_context(active_test=False).browse(ids)
                value_labels[name] = {str(r["id"]): r["display_name"] for r in records.read(["display_name"])} if ids else {}
        return field_labels, value_labels

    # -- scoring -------------------------------------------------------------------------------
    def estimator_fields(self, estimator):
        return [n for n in estimator.feature_names_in_ if n not in HISTORY_SIGNALS]

    def check_estimator(self, estimator):
        # removed, made non-stored, or changed into a type the model cannot read
        missing = [n for n in self.estimator_fields(estimator) if not self.allowed_field(n)]
        if missing:
            raise ModelRefused(_("it uses lead fields that no longer exist or can no longer be inputs (%s)",
                                 ", ".join(missing)))

    def score(self, ids, estimator, model, now):
        names = self.estimator_fields(estimator)
        frame = self.extract(ids, names, now)
        # Reasons are stored as data (field, raw value, points) and put in words when read,
        # in the reader's language (see ``describe_reasons``).
        proba, explanations = estimator.predict_explain(frame, top=REASONS_PER_SIDE, min_points=REASON_MIN_POINTS)
        proba = np.clip(np.round(100 * proba, 2), MIN_PROPENSITY, MAX_PROPENSITY).tolist()
        reasons = [[{"field": r["field"], "value": r["value"], "points": round(r["points"], 2)} for r in lead_reasons]
                   for lead_reasons in explanations]
        state = self.history_state(ids, now, model.id)
        # kept for after_write, which logs the moves of the rows actually written
        self._scored = {"ids": list(ids), "proba": proba, "reasons": reasons, "model": model.id, "now": now,
                        "history": state}
        return {
            "ai_propensity": proba,
            "ai_propensity_grade": [grade(p) for p in proba],
            "ai_propensity_reason_data": reasons,
            "ai_propensity_trend": [None if state.get(i, {}).get("before") is None else round(p - state[i]["before"], 2)
                                    for i, p in zip(ids, proba)],
        }

    # -- history -------------------------------------------------------------------------------
    def history_state(self, ids, now, model_id):
        """What the history says of ``ids``, in one query: ``{lead id: {"before", "last",
        "last_model", "has_old"}}`` (leads never scored are left out).

        ``before``: the base of the trend, the propensity TREND_DAYS ago *by the model
        ``model_id``*: the latest row at or before then if that model wrote it, else the
        first row that model wrote (a lead first scored within the week, or a model
        activated within it); None when the model never scored the lead. A retraining
        thus never shows as every lead rising or falling. ``last`` / ``last_model``: the
        latest row; ``has_old``: more than one row older than the retention (thinning
        keeps the newest of them, the trend's base)."""
        self.env["crm.ai.propensity.history"].flush_model()
        self.env.cr.execute(SQL("""
            SELECT lead_id,
                   (array_agg(propensity ORDER BY date DESC, id DESC) FILTER (WHERE date <= %(week)s))[1],
                   (array_agg(model_id ORDER BY date DESC, id DESC) FILTER (WHERE date <= %(week)s))[1],
                   (array_agg(propensity ORDER BY date, id) FILTER (WHERE date > %(week)s AND model_id = %(model)s))[1],
                   (array_agg(propensity ORDER BY date DESC, id DESC))[1],
                   (array_agg(model_id ORDER BY date DESC, id DESC))[1],
                   COUNT(*) FILTER (WHERE date < %(retention)s) > 1
              FROM crm_ai_propensity_history
             WHERE lead_id = ANY(%(ids)s)
             GROUP BY lead_id
        """, ids=[int(i) for i in ids], week=now - timedelta(days=TREND_DAYS), model=model_id,
            retention=now - timedelta(days=self.param("history_days"))))
        return {lead: {"before": week_value if week_model == model_id else first_of_model, "last": last,
                       "last_model": last_model, "has_old": has_old}
                for lead, week_value, week_model, first_of_model, last, last_model, has_old in self.env.cr.fetchall()}

    def after_write(self, written_ids):
        """Log the written leads' moves (see ``crm_ai_propensity_history``) and thin their
        old rows, in the transaction that wrote the scores."""
        scored, self._scored = getattr(self, "_scored", None), None
        if not scored or not written_ids:
            return
        written, state, model = set(written_ids), scored["history"], scored["model"]
        step = max(self.param("history_step"), 1e-9)  # 0: every change, never an unchanged score
        logged = [k for k, i in enumerate(scored["ids"]) if i in written and (
            i not in state or state[i]["last_model"] != model or abs(scored["proba"][k] - state[i]["last"]) >= step)]
        History = self.env["crm.ai.propensity.history"]
        History.flush_model()
        if logged:
            self.env.cr.execute(SQL("""
                INSERT INTO crm_ai_propensity_history (lead_id, company_id, date, propensity, model_id, reason_data)
                SELECT v.id, l.company_id, %(now)s, v.propensity, %(model)s, v.reasons::jsonb
                  FROM unnest(%(ids)s::int[], %(proba)s::float8[], %(reasons)s::text[]) AS v(id, propensity, reasons)
                  JOIN crm_lead l ON l.id = v.id
            """, now=scored["now"], model=model, ids=[scored["ids"][k] for k in logged],
                proba=[scored["proba"][k] for k in logged], reasons=[json.dumps(scored["reasons"][k]) for k in logged]))
        thinned = sorted(i for i in written if state.get(i, {}).get("has_old"))
        if thinned:
            self.thin_history(SQL("h.lead_id = ANY(%s)", thinned), scored["now"])
        History.invalidate_model()

    def thin_history(self, where, now):
        """Delete the history rows older than the retention where ``where`` (SQL on alias
        ``h``), except each lead's newest such row: the base a trend may still need."""
        self.env["crm.ai.propensity.history"].flush_model()
        self.env.cr.execute(SQL("""
            DELETE FROM crm_ai_propensity_history h
             WHERE %(where)s AND h.date < %(cutoff)s
               AND h.id != (SELECT n.id FROM crm_ai_propensity_history n
                             WHERE n.lead_id = h.lead_id AND n.date < %(cutoff)s
                             ORDER BY n.date DESC, n.id DESC LIMIT 1)
        """, where=where, cutoff=now - timedelta(days=self.param("history_days"))))
        self.env["crm.ai.propensity.history"].invalidate_model()
        return self.env.cr.rowcount

    # -- training --------------------------------------------------------------------------------
    def closed_condition(self, alias, stage):
        """SQL condition for the closed leads of the company a model learns from
        (``stage``: the joined crm_stage of lead ``alias``)."""
        lead = SQL.identifier(alias)
        return SQL("%s AND (%s OR %s) AND (%s::date IS NULL OR %s.create_date >= %s::date)",
                   self.company_sql(SQL("%s.company_id", lead)), won_sql(alias, stage), lost_sql(alias),
                   self.param("start_date"), lead, self.param("start_date"))

    def closed_leads(self):
        """Closed leads for training: [(id, won, closed_at)] oldest first."""
        self.records.flush_model()
        self.env.cr.execute(SQL("""
            SELECT l.id, %s AS won, COALESCE(l.date_closed, l.write_date) AS closed
              FROM crm_lead l
         LEFT JOIN crm_stage s ON s.id = l.stage_id
             WHERE %s
             ORDER BY closed, l.id
        """, won_sql("l", "s"), self.closed_condition("l", "s")))
        return self.env.cr.fetchall()

    def lifetime_weights(self, lead_ids):
        """Per lead of ``lead_ids`` (in that order), its lifetime in days from creation to
        closing, within :data:`LIFETIME_WEIGHT_DAYS` (see there), divided by the mean; an
        unknown lifetime weighs the mean.  The model divides again by the mean of the rows
        it fits: weights say how leads weigh against each other, not how much data there is."""
        if not lead_ids:
            return np.array([])
        self.env.cr.execute(SQL("""
            SELECT l.id, EXTRACT(EPOCH FROM l.date_closed - l.create_date) / 86400.0
              FROM crm_lead l WHERE l.id = ANY(%s)""", list(lead_ids)))
        lifetime = dict(self.env.cr.fetchall())
        days = np.array([float(lifetime[i]) if lifetime[i] is not None and lifetime[i] > 0 else np.nan
                         for i in lead_ids])
        known = np.isfinite(days)
        weights = np.clip(days, *LIFETIME_WEIGHT_DAYS)
        weights[~known] = weights[known].mean() if known.any() else 1.0
        return weights / weights.mean()

    def closed_counts(self):
        """``(won, lost)`` closed leads in the training window."""
        self.records.flush_model()
        self.env.cr.execute(SQL("SELECT COUNT(*) FILTER (WHERE %s), COUNT(*) FILTER (WHERE NOT %s)"
                                "  FROM crm_lead l LEFT JOIN crm_stage s ON s.id = l.stage_id WHERE %s",
                                won_sql("l", "s"), won_sql("l", "s"), self.closed_condition("l", "s")))
        return self.env.cr.fetchone()

    def data_shortfall(self):
        won, lost = self.closed_counts()
        minimum = self.param("min_closed_per_class")
        if won < minimum or lost < minimum:
            return _("Not enough data: %(won)s won and %(lost)s lost closed leads, %(min)s of each needed.",
                     won=won, lost=lost, min=minimum)
        return None

    def pls_fields(self):
        """The fields Odoo's PLS is configured with (``crm.pls_fields``), as PLS reads them."""
        configured = self.records._pls_get_safe_fields()
        return [f for f in configured if f != "tag_ids"], "tag_ids" in configured

    def train(self, champion, champion_record):
        started = time.monotonic()
        # weekly upkeep: the history of leads no longer scored (won, lost) is thinned here
        self.env.cr.execute(SQL("SELECT %s", SQL("(now() AT TIME ZONE 'UTC')::timestamp")))
        self.thin_history(SQL("h.company_id IS NOT DISTINCT FROM %s", self.company.id or None),
                          self.env.cr.fetchone()[0])
        closed = self.closed_leads()
        names = self.input_fields()
        pls_fields, pls_tags = self.pls_fields()
        champion_names = self.estimator_fields(champion) if champion is not None else []
        extract_names = list(dict.fromkeys(names + champion_names + pls_fields + ["team_id"]
                                           + (["tag_ids"] if pls_tags else [])))
        extract_names = [n for n in extract_names if n in self.records._fields]
        ids = [row[0] for row in closed]
        weights = self.lifetime_weights(ids)
        now = pd.Timestamp.now().to_pydatetime()
        frame = pd.concat([self.extract(batch, extract_names, now)
                           for batch in split_every(TRAIN_BATCH_STEP, ids, list)], ignore_index=True)
        y = np.array([1 if won else 0 for _i, won, _d in closed])
        closed_at = pd.to_datetime(pd.Series([d for _i, _w, d in closed]))
        train_idx, holdout_idx = time_ordered_split(closed_at.to_numpy())
        if len(np.unique(y[train_idx])) < 2:
            # e.g. won deals imported first, lost ones later: the older 80 % hold one outcome.
            return TrainResult("insufficient_data", _(
                "Not enough data: the %(n)s oldest closed leads (the training part) are all %(outcome)s; "
                "a model needs won and lost leads to learn from.",
                n=len(train_idx), outcome=_("won") if y[train_idx][0] else _("lost")))
        params = self.model_params(names)

        def age_days(idx):
            at = closed_at.iloc[idx]
            return ((at.max() - at).dt.total_seconds() / 86400.0).to_numpy()

        # Candidates (families, C, smoothing, blend weight, half-life) are chosen on rolling
        # windows inside the training part; the holdout below only measures the winner.
        trial = LeadPropensityModel(**params, half_life_days=self.param("recency_half_life")).fit(
            frame.iloc[train_idx], y[train_idx], age_days=age_days(train_idx), sample_weight=weights[train_idx])
        # measured on the holdout weighted as the open leads are (LIFETIME_WEIGHT_DAYS), both models
        y_holdout, w_holdout = y[holdout_idx], weights[holdout_idx]
        p_holdout = trial.predict_proba(frame.iloc[holdout_idx])[:, 1]
        metrics = binary_metrics(y_holdout, p_holdout, sample_weight=w_holdout)
        # Odoo's PLS counts each closed lead once, as Odoo does
        pls = OdooPLSBaseline(fields=pls_fields, tag_field="tag_ids" if pls_tags else None, team_field="team_id")
        pls_p = pls.fit(frame.iloc[train_idx], y[train_idx]).predict_proba(frame.iloc[holdout_idx])[:, 1]
        pls_p = np.nan_to_num(pls_p, nan=y[train_idx].mean())
        pls_metrics = binary_metrics(y_holdout, pls_p, sample_weight=w_holdout)
        # the model form's reliability diagram: predicted vs observed per 10-point bin, both models
        metrics["reliability"] = reliability_bins(y_holdout, p_holdout, sample_weight=w_holdout)
        pls_metrics["reliability"] = reliability_bins(y_holdout, pls_p, sample_weight=w_holdout)
        champion_score, champion_note = self.champion_auc(
            champion_record, champion, frame, y, train_idx, holdout_idx, closed_at, age_days(train_idx), weights)

        # The deployed model goes through the same choice on every closed lead: its windows
        # are then the newest leads, the holdout included (the holdout measured the procedure).
        final = LeadPropensityModel(**params, half_life_days=self.param("recency_half_life")).fit(
            frame, y, age_days=age_days(np.arange(len(y))), sample_weight=weights)
        field_labels, _values = self.labels(names, frame.iloc[:0])
        n_won = int(y.sum())
        return TrainResult(
            "trained", estimator=final, metrics=metrics, baseline_metrics=pls_metrics,
            champion_score=champion_score, gate_note=champion_note,
            counts={"won": n_won, "lost": len(y) - n_won, "seconds": time.monotonic() - started},
            n_train=len(train_idx), n_holdout=len(holdout_idx), date_from=self.param("start_date"),
            holdout_date_from=closed_at.iloc[holdout_idx].min().to_pydatetime(),
            holdout_date_to=closed_at.iloc[holdout_idx].max().to_pydatetime(),
            train_date_to=closed_at.max().to_pydatetime(),
            hyperparameters=final.describe(),
            selection=selection_summary(final, trial),
            importance=final.importance(field_labels),
            feature_names=[str(field_labels.get(n, n)) for n in names + list(HISTORY_SIGNALS)],
        )

    def champion_auc(self, record, estimator, frame, y, train_idx, holdout_idx, closed_at, train_age, weights=None):
        """AUC of the active model on the new holdout, without letting it cheat.

        The stored active model learnt from every lead closed before it was trained; if
        the new holdout starts after that, it is scored as it is.  Otherwise it has seen
        part of the holdout and would look better than it is, so its recipe (fields and
        hyper-parameters) is refitted on the new training split, as the challenger was.
        Returns ``(auc or None, note)``.
        """
        if estimator is None:
            return None, ""
        holdout = frame.iloc[holdout_idx]
        try:
            if record.train_date_to and closed_at.iloc[holdout_idx].min() > pd.Timestamp(record.train_date_to):
                p = estimator.predict_proba(holdout)[:, 1]
                note = _("active model scored on a holdout it never saw")
            else:
                # its recipe: the family and settings it chose, not a new search
                recipe = (LeadPropensityModel(**estimator.recipe()) if hasattr(estimator, "recipe") else clone(estimator))
                recipe.fit(frame.iloc[train_idx], y[train_idx], age_days=train_age,
                           **({} if weights is None else {"sample_weight": weights[train_idx]}))
                p = recipe.predict_proba(holdout)[:, 1]
                note = _("active model's recipe refitted on the same training leads, as it had seen the holdout")
            return binary_metrics(y[holdout_idx], p,
                                  sample_weight=None if weights is None else weights[holdout_idx])["auc"], note
        except Exception as error:
            _logger.warning("crm_ai: cannot measure the active model on the new holdout: %s", error)
            return None, _("the active model could not be measured: %s", error)


#: Candidates shown per family in the registry (the best of each, by validation log-loss).
SELECTION_SHOWN_PER_FAMILY = 1


def selection_summary(model, trial):
    """What the registry shows of the model choice (JSON-ready): the best candidate of
    every family of the deployed ``model`` with its mean validation log-loss and AUC
    over the rolling windows, which won, whether calibration helped, and what the same
    procedure chose on the training part alone (``trial``, the model measured on the
    holdout)."""
    best = {}
    for candidate in model.candidates_:
        family = best.setdefault(candidate["family"], [])
        if len(family) < SELECTION_SHOWN_PER_FAMILY:
            family.append(candidate)
    winner = (model.candidates_ or [None])[0]
    # no None anywhere: XML-RPC cannot carry it (managers read the registry over RPC)
    rows = [{"family": c["family"], "description": describe_spec(c), "log_loss": c["log_loss"],
             **({"auc": c["auc"]} if c["auc"] is not None else {}), "chosen": c is winner}
            for family in ("logistic", "naive_bayes", "blend") for c in best.get(family, [])]
    return {
        "chosen": model.describe(), "family": model.family_, "reason": model.selection_.get("reason", ""),
        "windows": model.selection_.get("windows") or 0, "validation_rows": model.selection_.get("validation_rows") or 0,
        "candidates_tried": len(model.candidates_), "candidates": rows,
        "calibration_test": model.selection_.get("calibration_test") or {},
        "calibration": list(model.calibration_) if model.calibration_ else [],
        "holdout_model": trial.describe(),
    }


def describe_reasons(env, reason_lists):
    """Words for stored reasons (``[{"field", "value", "points"}]`` per lead), in
    ``env``'s language: ``[[{"label", "value", "points"}]]``, ready for ``format_reason``.

    Record values (stored as ids) are named in one read per model; selection keys get
    their label; the engine's own words (not set, yes, no) are translated.  The customer's
    history (:data:`CUSTOMER_HISTORY`: counts and revenue of all his leads) is shown without
    its figure to users who may not read every lead (``value`` None).
    """
    hidden = set() if reads_all_sales(env) else CUSTOMER_HISTORY
    lead_fields = env["crm.lead"]._fields
    wanted = {}
    for reasons in reason_lists:
        for reason in reasons:
            field = lead_fields.get(reason["field"])
            if field is not None and field.type in ("many2one", "many2many"):
                wanted.setdefault(field.comodel_name, set()).update(
                    int(key) for key in str(reason["value"]).split(", ") if key.isdigit())
    names = {}
    for model, ids in wanted.items():
        records = env[model].sudo().with_context(active_test=False).browse(sorted(ids)).exists()
        names[model] = {str(record.id): record.display_name for record in records}
    selections, described = {}, []
    for reasons in reason_lists:
        lines = []
        for reason in reasons:
            name, value = reason["field"], str(reason["value"])
            field = lead_fields.get(name)
            if name in HISTORY_SIGNALS:
                label = env._(HISTORY_SIGNALS[name])
            elif field is not None:
                label = field.get_description(env)["string"]
            else:
                label = name
            if name in hidden:
                value = None
            elif value in VALUE_WORDS:
                value = env._(VALUE_WORDS[value])
            elif field is not None and field.type in ("many2one", "many2many"):
                value = ", ".join(names[field.comodel_name].get(key, key) for key in value.split(", "))
            elif field is not None and field.type == "selection":
                if name not in selections:
                    selections[name] = {str(k): v for k, v in field._description_selection(env)}
                value = selections[name].get(value, value)
            lines.append({"label": label, "value": value, "points": reason["points"]})
        described.append(lines)
    return described
