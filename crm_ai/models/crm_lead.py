"""Lead propensity: Odoo glue around ``ml.propensity.LeadPropensityModel``.

Extraction is SQL in batches; writing is one UPDATE per batch that skips rows other
transactions hold, so scoring never waits on (nor blocks) a salesperson saving a lead,
and never touches ``write_date``, the chatter or automated actions.

Leakage: a closed lead is described as it was at a *snapshot* moment drawn
deterministically between its creation and its closing (messages, activities and
age are counted up to then), exactly as an open lead is described now.  Fields
written at closing (stage, probability, lost reason, close date, prorated revenue)
can never be features.
"""

import logging
import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.base import clone
from markupsafe import Markup, escape

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, split_every

from ..ml import persistence
from ..ml import (LeadPropensityModel, OdooPLSBaseline, binary_metrics, format_reason,
                  quality_gate, time_ordered_split)
from psycopg2.errors import SerializationFailure

from .crm_ai_model import TRAINER_CONTEXT_KEY, auto_commit

_logger = logging.getLogger(__name__)

TASK = "lead_propensity"
#: Leads extracted, predicted and written per batch (one commit each).  bench/bench_propensity_speed.py:
#: 5,000 keeps a batch under ~2 s on 2 cores, so a lock is never held long and progress is fine-grained.
AI_COMPUTE_BATCH_STEP = 5000
#: Closed leads extracted per query when training (memory, not locks, is the limit).
AI_TRAIN_BATCH_STEP = 50000
#: Default minimum of won AND of lost closed leads before a model is trained.
DEFAULT_MIN_CLOSED_PER_CLASS = 40
#: Reasons kept per lead on each side (positive / negative).
REASONS_PER_SIDE = 5
#: Reasons moving the propensity by less than this many points are noise to a salesperson.
REASON_MIN_POINTS = 0.5
#: Scores older than this are refreshed even if nothing changed (lead age, customer history).
RESCORE_AFTER = timedelta(days=1)

DEFAULT_LEAD_FIELDS = [
    "team_id", "user_id", "source_id", "medium_id", "campaign_id", "country_id", "state_id",
    "lang_id", "tag_ids", "expected_revenue", "email_state", "phone_state", "priority",
]
ALLOWED_TTYPES = {"char", "selection", "many2one", "many2many", "boolean", "integer", "float", "monetary",
                  "date", "datetime"}
#: Fields that are the outcome, are written when a lead is closed, or derive from one of those.
LEAKY_FIELDS = {
    "id", "active", "stage_id", "probability", "automated_probability", "lost_reason_id", "date_closed",
    "day_close", "day_open", "date_last_stage_update", "won_status", "is_won", "prorated_revenue",
    "recurring_revenue_prorated", "recurring_revenue_monthly_prorated", "date_conversion", "company_id",
    "create_date", "write_date", "create_uid", "write_uid", "color", "kanban_state", "date_automation_last",
    "duplicate_lead_count", "message_bounce",
}
#: Signals Odoo's PLS ignores, computed in SQL (name -> label).
HISTORY_SIGNALS = {
    "ai_partner_won_count": "Customer's earlier won deals",
    "ai_partner_lost_count": "Customer's earlier lost deals",
    "ai_partner_won_revenue": "Customer's earlier won revenue",
    "ai_message_count": "Emails and notes",
    "ai_activity_done_count": "Activities done",
    "ai_age_days": "Age (days)",
}
GRADES = [("a", "A · very likely (≥ 75 %)"), ("b", "B · likely (50-75 %)"),
          ("c", "C · possible (25-50 %)"), ("d", "D · unlikely (< 25 %)")]
GRADE_FLOORS = ((75.0, "a"), (50.0, "b"), (25.0, "c"), (-1.0, "d"))
# Knuth's multiplicative hash: a fixed, well-spread fraction in [0, 1) per lead id,
# placing a closed lead's snapshot between creation and closing.
SNAPSHOT_HASH = 2654435761


def _format_auc(env, auc):
    """An AUC for a message; None when the holdout held a single outcome."""
    return "%.3f" % auc if auc is not None else env._("undefined")


def _grade(percent):
    for floor, grade in GRADE_FLOORS:
        if percent >= floor:
            return grade
    return "d"


class CrmLead(models.Model):
    _inherit = "crm.lead"

    ai_propensity = fields.Float(
        "AI Propensity", digits=(5, 2), readonly=True, copy=False, aggregator="avg",
        help="Calibrated probability (%) that this lead will be won, from crm_ai's model. "
             "Odoo's own Probability is left as it is.")
    ai_propensity_grade = fields.Selection(
        GRADES, "AI Grade", readonly=True, copy=False, index=True,
        help="Propensity range: A ≥ 75 %, B 50-75 %, C 25-50 %, D < 25 %.")
    ai_propensity_reasons = fields.Text(
        "AI Reasons", readonly=True, copy=False,
        help="The strongest reasons up and down for this lead, in percentage points: how much "
             "the propensity would change if that field were at its average.")
    ai_propensity_reasons_html = fields.Html("Why this score", compute="_compute_ai_propensity_reasons_html",
                                             sanitize=False)
    ai_propensity_model_id = fields.Many2one("crm.ai.model", "AI Model", readonly=True, copy=False,
                                             ondelete="set null", index="btree_not_null")
    ai_propensity_date = fields.Datetime("AI Scored On", readonly=True, copy=False)
    ai_propensity_state = fields.Selection([
        ("pending", "Not scored yet"),
        ("scored", "Scored"),
        ("insufficient_data", "Not enough data"),
    ], "AI Status", readonly=True, copy=False, default="pending",
        help="Not enough data: this company has too few won or lost leads for a trustworthy model; "
             "no score is shown (never a made-up 0 % or 100 %).")

    @api.depends("ai_propensity_reasons")
    def _compute_ai_propensity_reasons_html(self):
        for lead in self:
            items = []
            for line in (lead.ai_propensity_reasons or "").splitlines():
                up = line.rsplit("(", 1)[-1].startswith("+")
                items.append(Markup('<li class="%s">%s %s</li>') % (
                    "text-success" if up else "text-danger", "▲" if up else "▼", line))
            lead.ai_propensity_reasons_html = Markup('<ul class="list-unstyled mb-0">%s</ul>') % Markup("").join(items) if items else False

    # ------------------------------------------------------------------------------------
    # Configuration (read through safe helpers: parameters are user input)
    # ------------------------------------------------------------------------------------
    @api.model
    def _ai_allowed_field(self, name):
        field = self._fields.get(name)
        return bool(field and field.store and field.type in ALLOWED_TTYPES and name not in LEAKY_FIELDS
                    and not name.startswith("ai_") and not getattr(field, "translate", False)
                    and not (field.type == "many2many" and not field.relation))

    @api.model
    def _ai_get_safe_fields(self):
        param = self.env["ir.config_parameter"].sudo().get_param("crm_ai.lead_fields")
        names = [n.strip() for n in param.split(",")] if param else DEFAULT_LEAD_FIELDS
        safe = [n for n in dict.fromkeys(names) if self._ai_allowed_field(n)]
        ignored = set(names) - set(safe) - {""}
        if ignored:
            _logger.warning("crm_ai: ignoring fields that cannot be used as inputs: %s", sorted(ignored))
        if not safe:
            # A model needs inputs: a parameter naming only removed fields must not stop training.
            _logger.warning("crm_ai: no usable lead field in crm_ai.lead_fields, using the default set")
            safe = [n for n in DEFAULT_LEAD_FIELDS if self._ai_allowed_field(n)]
        return safe

    @api.model
    def _ai_get_safe_min_closed(self):
        param = self.env["ir.config_parameter"].sudo().get_param("crm_ai.min_closed_per_class")
        try:
            return max(int(param), 2) if param else DEFAULT_MIN_CLOSED_PER_CLASS
        except ValueError:
            return DEFAULT_MIN_CLOSED_PER_CLASS

    @api.model
    def _ai_get_safe_half_life(self):
        """Recency half-life for training: "auto" (chosen on recent leads), None or days."""
        param = self.env["ir.config_parameter"].sudo().get_param("crm_ai.recency_half_life", "auto")
        if param in ("auto", "", False, None):
            return "auto"
        if param == "none":
            return None
        try:
            return float(param) if float(param) > 0 else "auto"
        except ValueError:
            return "auto"

    @api.model
    def _ai_get_safe_start_date(self):
        param = self.env["ir.config_parameter"].sudo().get_param("crm_ai.start_date")
        try:
            return fields.Date.to_date(param) if param else None
        except ValueError:
            return None

    # ------------------------------------------------------------------------------------
    # Extraction
    # ------------------------------------------------------------------------------------
    @api.model
    def _ai_field_kinds(self, names):
        kinds = {"categorical": [], "multilabel": [], "numeric": [], "boolean": [], "date": []}
        for name in names:
            ttype = self._fields[name].type
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

    @api.model
    def _ai_model_params(self, names):
        kinds = self._ai_field_kinds(names)
        return {
            "categorical": kinds["categorical"],
            "multilabel": kinds["multilabel"],
            "numeric": kinds["numeric"] + kinds["date"] + list(HISTORY_SIGNALS),
            "boolean": kinds["boolean"],
        }

    @api.model
    def _ai_extract(self, lead_ids, names, now):
        """Features of ``lead_ids`` as a DataFrame (one row per id, in ``lead_ids`` order).

        Columns: the chosen lead fields, ``HISTORY_SIGNALS``, and ``_snapshot``.
        One query per batch: history, messages and activities are aggregated joins.
        """
        if not lead_ids:
            return pd.DataFrame(columns=["id", *names, *HISTORY_SIGNALS])
        kinds = self._ai_field_kinds(names)
        plain = [n for n in names if n not in kinds["multilabel"]]
        selects = [SQL("l.%s AS %s", SQL.identifier(n), SQL.identifier(n)) for n in plain]
        for name in kinds["multilabel"]:
            field = self._fields[name]
            selects.append(SQL(
                "(SELECT array_agg(r.%s ORDER BY r.%s) FROM %s r WHERE r.%s = l.id) AS %s",
                SQL.identifier(field.column2), SQL.identifier(field.column2), SQL.identifier(field.relation),
                SQL.identifier(field.column1), SQL.identifier(name)))
        query = SQL("""
            WITH base AS (
                SELECT l.id, l.create_date, l.company_id, p.commercial_partner_id,
                       CASE WHEN l.active AND NOT COALESCE(s.is_won, FALSE) THEN %(now)s::timestamp
                            ELSE l.create_date + GREATEST(COALESCE(l.date_closed, l.write_date) - l.create_date, interval '0')
                                 * mod(l.id::bigint * %(hash)s, 1000) / 1000.0
                       END AS snapshot
                  FROM crm_lead l
             LEFT JOIN crm_stage s ON s.id = l.stage_id
             LEFT JOIN res_partner p ON p.id = l.partner_id
                 WHERE l.id = ANY(%(ids)s)
            ), history AS (
                SELECT b.id,
                       COUNT(*) FILTER (WHERE h.active AND h.probability = 100) AS won,
                       COUNT(*) FILTER (WHERE NOT h.active AND h.probability = 0) AS lost,
                       SUM(h.expected_revenue) FILTER (WHERE h.active AND h.probability = 100) AS won_revenue
                  FROM base b
                  JOIN res_partner hp ON hp.commercial_partner_id = b.commercial_partner_id
                  JOIN crm_lead h ON h.partner_id = hp.id AND h.id != b.id AND h.date_closed < b.create_date
                                 -- another company's deals are not this company's to learn from
                                 AND h.company_id IS NOT DISTINCT FROM b.company_id
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
        """, now=now, hash=SNAPSHOT_HASH, ids=list(lead_ids), selects=SQL("").join(SQL(", %s", select) for select in selects))
        self.env.cr.execute(query)
        columns = [d.name for d in self.env.cr.description]
        frame = pd.DataFrame.from_records(self.env.cr.fetchall(), columns=columns)
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

    @api.model
    def _ai_labels(self, names, frame):
        """Words for reasons: field labels, and display names of the ids in ``frame``."""
        field_labels = {n: self._fields[n].get_description(self.env)["string"] for n in names}
        field_labels.update(HISTORY_SIGNALS)
        value_labels = {}
        for name in names:
            field = self._fields[name]
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

    # ------------------------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------------------------
    @api.model
    def _ai_closed_domain_sql(self, company):
        """SQL condition for the closed leads of ``company`` a model learns from."""
        return SQL("""
                l.company_id IS NOT DISTINCT FROM %(company)s
            AND ((l.active AND s.is_won AND l.probability = 100) OR (NOT l.active AND l.probability = 0))
            AND (%(start)s::date IS NULL OR l.create_date >= %(start)s::date)
        """, company=company.id or None, start=self._ai_get_safe_start_date())

    @api.model
    def _ai_closed_leads(self, company):
        """Closed leads of ``company`` for training: [(id, won, closed_at)] oldest first."""
        self.flush_model()
        self.env.cr.execute(SQL("""
            SELECT l.id, (l.active AND l.probability = 100) AS won, COALESCE(l.date_closed, l.write_date) AS closed
              FROM crm_lead l
              LEFT JOIN crm_stage s ON s.id = l.stage_id
             WHERE %s
             ORDER BY closed, l.id
        """, self._ai_closed_domain_sql(company)))
        return self.env.cr.fetchall()

    @api.model
    def _ai_closed_counts(self, company):
        """``(won, lost)`` closed leads of ``company`` in the training window."""
        self.flush_model()
        self.env.cr.execute(SQL("""
            SELECT COUNT(*) FILTER (WHERE l.active), COUNT(*) FILTER (WHERE NOT l.active)
              FROM crm_lead l
              LEFT JOIN crm_stage s ON s.id = l.stage_id
             WHERE %s
        """, self._ai_closed_domain_sql(company)))
        return self.env.cr.fetchone()

    @api.model
    def _ai_pls_fields(self):
        """The fields Odoo's PLS is configured with (``crm.pls_fields``), as PLS reads them."""
        fields_ = [f for f in self._pls_get_safe_fields() if f != "tag_ids"]
        return fields_, "tag_ids" in self._pls_get_safe_fields()

    @api.model
    def _ai_propensity_train(self, company):
        """Train, measure, gate and register a lead propensity model for ``company``."""
        started = time.monotonic()
        Registry = self.env["crm.ai.model"].sudo().with_context(**{TRAINER_CONTEXT_KEY: True})
        closed = self._ai_closed_leads(company)
        n_won = sum(1 for _i, won, _d in closed if won)
        n_lost = len(closed) - n_won
        minimum = self._ai_get_safe_min_closed()
        if n_won < minimum or n_lost < minimum:
            active = Registry._ai_active(TASK, company)
            message = _("Not enough data: %(won)s won and %(lost)s lost closed leads, %(min)s of each needed.",
                        won=n_won, lost=n_lost, min=minimum)
            return self._ai_no_new_model(company, active, message)

        names = self._ai_get_safe_fields()
        pls_fields, pls_tags = self._ai_pls_fields()
        active = Registry._ai_active(TASK, company)
        active_estimator, active_names, refused_note = None, [], ""
        if active:
            try:
                active_estimator = active._ai_load()
                active_names = [n for n in active_estimator.feature_names_in_ if n in self._fields]
            except Exception as error:  # noqa: BLE001 -- a refused model must not block retraining
                _logger.warning("crm_ai: active model %s unusable, gating without it: %s", active.id, error)
                refused_note = _("the active model %(model)s cannot be used: %(error)s",
                                 model=active.display_name, error=error)
        extract_names = list(dict.fromkeys(names + active_names + pls_fields + ["team_id"]
                                           + (["tag_ids"] if pls_tags else [])))
        extract_names = [n for n in extract_names if n in self._fields]
        ids = [row[0] for row in closed]
        now = fields.Datetime.now()
        frame = pd.concat([self._ai_extract(batch, extract_names, now)
                           for batch in split_every(AI_TRAIN_BATCH_STEP, ids, list)], ignore_index=True)
        y = np.array([1 if won else 0 for _i, won, _d in closed])
        closed_at = pd.to_datetime(pd.Series([d for _i, _w, d in closed]))
        train_idx, holdout_idx = time_ordered_split(closed_at.to_numpy())
        if len(np.unique(y[train_idx])) < 2:
            # e.g. won deals imported first, lost ones later: the older 80 % hold one outcome.
            message = _("Not enough data: the %(n)s oldest closed leads (the training part) are all %(outcome)s; "
                        "a model needs won and lost leads to learn from.",
                        n=len(train_idx), outcome=_("won") if y[train_idx][0] else _("lost"))
            return self._ai_no_new_model(company, active, message)
        params = self._ai_model_params(names)

        def age_days(idx):
            at = closed_at.iloc[idx]
            return ((at.max() - at).dt.total_seconds() / 86400.0).to_numpy()

        trial = LeadPropensityModel(**params, half_life_days=self._ai_get_safe_half_life()).fit(frame.iloc[train_idx], y[train_idx], age_days=age_days(train_idx))
        y_holdout = y[holdout_idx]
        metrics = binary_metrics(y_holdout, trial.predict_proba(frame.iloc[holdout_idx])[:, 1])
        pls = OdooPLSBaseline(fields=pls_fields, tag_field="tag_ids" if pls_tags else None, team_field="team_id")
        pls_p = pls.fit(frame.iloc[train_idx], y[train_idx]).predict_proba(frame.iloc[holdout_idx])[:, 1]
        pls_metrics = binary_metrics(y_holdout, np.nan_to_num(pls_p, nan=y[train_idx].mean()))
        previous_auc, champion_note = self._ai_champion_auc(
            active, active_estimator, frame, y, train_idx, holdout_idx, closed_at, age_days(train_idx))
        accepted, reason = quality_gate(metrics["auc"], previous_auc, has_active=active_estimator is not None)
        if champion_note or refused_note:
            reason = f"{reason} ({champion_note or refused_note})"

        # The deployed model learns from every closed lead, with the hyper-parameters chosen above.
        final = LeadPropensityModel(**params, C=trial.C_, half_life_days=trial.half_life_days_).fit(
            frame, y, age_days=age_days(np.arange(len(y))))
        field_labels, _values = self._ai_labels(names, frame.iloc[:0])
        version = Registry._ai_next_version(TASK, company)
        record = Registry.create({
            "task": TASK, "company_id": company.id or False, "version": version,
            "state": "rejected", "date_trained": now, "date_from": self._ai_get_safe_start_date(),
            "n_won": n_won, "n_lost": n_lost, "n_train": len(train_idx), "n_holdout": len(holdout_idx),
            "holdout_date_from": closed_at.iloc[holdout_idx].min().to_pydatetime(),
            "holdout_date_to": closed_at.iloc[holdout_idx].max().to_pydatetime(),
            "train_date_to": closed_at.max().to_pydatetime(),
            "auc": metrics["auc"] or 0.0, "log_loss": metrics["log_loss"], "brier": metrics["brier"],
            "pls_auc": pls_metrics["auc"] or 0.0, "pls_log_loss": pls_metrics["log_loss"],
            "pls_brier": pls_metrics["brier"], "previous_auc": previous_auc or 0.0,
            "calibration_error": metrics["calibration_error"],
            "pls_calibration_error": pls_metrics["calibration_error"],
            "gate_reason": reason,
            "feature_names": ", ".join(field_labels.get(n, n) for n in names + list(HISTORY_SIGNALS)),
            "importance": "\n".join(f"{label}: {value:.3f}" for label, value in final.importance(field_labels)),
            "hyperparameters": "C=%g, recency half-life=%s" % (
                final.C_, f"{final.half_life_days_:g} days" if final.half_life_days_ else "none"),
            "library_versions": ", ".join(f"{k} {v}" for k, v in sorted(persistence.library_versions().items())),
        })
        record.write({"artifact": record._ai_dump(final), "training_seconds": time.monotonic() - started})
        if accepted:
            Registry.search([("task", "=", TASK), ("company_id", "=", company.id or False),
                             ("state", "=", "active"), ("id", "!=", record.id)]).write({"state": "archived"})
            record.state = "active"
        message = _("%(model)s %(verdict)s: holdout AUC %(auc)s (Odoo PLS %(pls)s), Brier %(brier).4f "
                    "(PLS %(pls_brier).4f). %(reason)s",
                    model=record.display_name, verdict=_("activated") if accepted else _("rejected"),
                    auc=_format_auc(self.env, metrics["auc"]), pls=_format_auc(self.env, pls_metrics["auc"]), brier=metrics["brier"],
                    pls_brier=pls_metrics["brier"], reason=reason)
        return {"task": TASK, "company": company.id, "status": "active" if accepted else "rejected",
                "model_id": record.id, "message": message}

    @api.model
    def _ai_no_new_model(self, company, active, message):
        """Too little data for a new model: a usable active model keeps scoring.

        An active model that is refused (e.g. a duplicated database's new secret) can
        neither score nor be replaced: it is archived and the leads say "Not enough
        data", so scoring stops asking for a retraining that cannot happen.
        """
        if active:
            try:
                active._ai_load()
            except UserError:
                active.write({"state": "archived"})
                active = active.browse()
        if not active:
            self._ai_mark_insufficient(company)
        return {"task": TASK, "company": company.id, "status": "insufficient_data", "message": message}

    @api.model
    def _ai_champion_auc(self, active, estimator, frame, y, train_idx, holdout_idx, closed_at, train_age):
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
            if active.train_date_to and closed_at.iloc[holdout_idx].min() > pd.Timestamp(active.train_date_to):
                p = estimator.predict_proba(holdout)[:, 1]
                note = _("active model scored on a holdout it never saw")
            else:
                recipe = clone(estimator).fit(frame.iloc[train_idx], y[train_idx], age_days=train_age)
                p = recipe.predict_proba(holdout)[:, 1]
                note = _("active model's recipe refitted on the same training leads, as it had seen the holdout")
            return binary_metrics(y[holdout_idx], p)["auc"], note
        except Exception as error:  # noqa: BLE001 -- e.g. a field it used was removed
            _logger.warning("crm_ai: cannot measure the active model on the new holdout: %s", error)
            return None, _("the active model could not be measured: %s", error)

    @api.model
    def _ai_mark_insufficient(self, company):
        self.flush_model(["ai_propensity_state"])
        self.env.cr.execute(SQL("""
            UPDATE crm_lead SET ai_propensity_state = 'insufficient_data', ai_propensity = NULL,
                   ai_propensity_grade = NULL, ai_propensity_reasons = NULL, ai_propensity_model_id = NULL
             WHERE id IN (SELECT id FROM crm_lead WHERE active AND company_id IS NOT DISTINCT FROM %s
                            AND ai_propensity_state IS DISTINCT FROM 'insufficient_data'
                            FOR UPDATE SKIP LOCKED)
        """, company.id or None), log_exceptions=False)
        self.invalidate_model(["ai_propensity_state", "ai_propensity", "ai_propensity_grade",
                               "ai_propensity_reasons", "ai_propensity_model_id"])

    # ------------------------------------------------------------------------------------
    # Scoring
    # ------------------------------------------------------------------------------------
    @api.model
    def _ai_pending_ids(self, company, model):
        """Open leads of ``company`` whose score is missing or stale, oldest id first."""
        self.flush_model()
        self.env.cr.execute(SQL("""
            SELECT l.id
              FROM crm_lead l
              LEFT JOIN crm_stage s ON s.id = l.stage_id
             WHERE l.active AND NOT COALESCE(s.is_won, FALSE)
               AND l.company_id IS NOT DISTINCT FROM %(company)s
               AND (l.ai_propensity_model_id IS DISTINCT FROM %(model)s
                    OR l.ai_propensity_date IS NULL
                    OR l.write_date > l.ai_propensity_date
                    OR l.ai_propensity_date < %(stale)s
                    -- create_date, not date: a message dated in the future must not keep the lead
                    -- pending on every run (it is counted once its date has passed, by the daily rescore)
                    OR EXISTS (SELECT 1 FROM mail_message m
                                WHERE m.model = 'crm.lead' AND m.res_id = l.id
                                  AND m.create_date > l.ai_propensity_date))
             ORDER BY l.id
        """, company=company.id or None, model=model.id, stale=fields.Datetime.now() - RESCORE_AFTER))
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _ai_propensity_score(self, company, deadline=None, progress=None):
        """Score pending open leads of ``company`` until done or ``deadline`` (monotonic).

        ``progress(done, remaining)`` is called before each batch's commit, so the
        cron's progress is committed with the scores it counts.  Returns ``(done,
        remaining)``: leads written, and pending leads the deadline left for the next call.
        """
        model = self.env["crm.ai.model"].sudo()._ai_active(TASK, company)
        if not model:
            # Leads created since a training found too little data say so at once,
            # rather than "not scored yet" until the next (weekly) training.
            won, lost = self._ai_closed_counts(company)
            minimum = self._ai_get_safe_min_closed()
            if won < minimum or lost < minimum:
                try:
                    self.env["crm.ai.model"]._ai_retry_on_conflict(lambda: self._ai_mark_insufficient(company))
                except SerializationFailure:
                    if not auto_commit(self.env):
                        raise
                    self.env.cr.rollback()  # leads being edited: marked on the next run
                if auto_commit(self.env):
                    self.env.cr.commit()
            return 0, 0
        pending = self._ai_pending_ids(company, model)
        if not pending:
            return 0, 0
        try:
            estimator = model._ai_load()
        except UserError as error:
            # A refused model (e.g. a duplicated database: new secret) must not stop the
            # other companies' scoring.  Training replaces it: run it now.
            _logger.error("crm_ai: %s: %s leads left unscored; retraining", error, len(pending))
            self.env.ref("crm_ai.ir_cron_train").sudo()._trigger()
            if auto_commit(self.env):
                self.env.cr.commit()  # a later company's rollback must not drop the trigger
            return 0, 0
        names = [n for n in estimator.feature_names_in_ if n in self._fields]
        missing = [n for n in estimator.feature_names_in_ if n not in self._fields and n not in HISTORY_SIGNALS]
        if missing:
            _logger.warning("crm_ai: model %s uses fields that no longer exist (%s); retrain it", model.id, missing)
            return 0, len(pending)
        commit = auto_commit(self.env)
        registry = self.env["crm.ai.model"]
        done = reached = 0
        for batch in split_every(AI_COMPUTE_BATCH_STEP, pending, list):
            reached += len(batch)
            try:
                done += registry._ai_retry_on_conflict(lambda: self._ai_score_batch(batch, estimator, names, model))  # noqa: B023
            except SerializationFailure:
                if not commit:
                    raise
                # Leads of this batch keep being edited: they stay pending for the next run.
                _logger.info("crm_ai: %s leads edited while being scored, left for the next run", len(batch))
                self.env.cr.rollback()
            if progress:
                progress(done, len(pending) - reached)
            if commit:
                self.env.cr.commit()
            if deadline and time.monotonic() > deadline:
                break
        # "Remaining" is what the deadline cut off (ir.cron calls again at once for it).  Leads
        # skipped because a user held them are not: they wait for the next scheduled run
        # rather than making the cron spin while a lock lasts.
        return done, len(pending) - reached

    @api.model
    def _ai_score_batch(self, ids, estimator, names, model):
        """Extract, predict, explain and write one batch of leads; returns rows written."""
        # Not fields.Datetime.now(): write_date / create_date keep microseconds, and a
        # score date cut to the second would look older than an edit made just before it.
        now = datetime.now()
        frame = self._ai_extract(ids, names, now)
        return self._ai_write_scores(frame, estimator, names, model, now)

    @api.model
    def _ai_write_scores(self, frame, estimator, names, model, now):
        """Predict + explain a batch and write it with one UPDATE; returns rows written."""
        proba = 100 * estimator.predict_proba(frame)[:, 1]
        # Odoo reserves 0 and 100 % for lost and won leads (as PLS does).
        proba = np.clip(np.round(proba, 2), 0.01, 99.99)
        field_labels, value_labels = self._ai_labels(names, frame)
        explanations = estimator.explain(frame, top=REASONS_PER_SIDE, min_points=REASON_MIN_POINTS,
                                         field_labels=field_labels, value_labels=value_labels)
        reasons = ["\n".join(format_reason(r) for r in lead_reasons) for lead_reasons in explanations]
        grades = [_grade(p) for p in proba]
        self.flush_model()
        self.env.cr.execute(SQL("""
            UPDATE crm_lead AS l
               SET ai_propensity = v.p, ai_propensity_grade = v.g, ai_propensity_reasons = v.r,
                   ai_propensity_model_id = %(model)s, ai_propensity_date = %(now)s,
                   ai_propensity_state = 'scored'
              FROM unnest(%(ids)s::int[], %(p)s::float8[], %(g)s::varchar[], %(r)s::text[]) AS v(id, p, g, r)
             WHERE l.id = v.id
               AND l.id IN (SELECT id FROM crm_lead WHERE id = ANY(%(ids)s) FOR UPDATE SKIP LOCKED)
        """, model=model.id, now=now, ids=[int(i) for i in frame["id"]], p=[float(p) for p in proba],
            g=grades, r=reasons), log_exceptions=False)  # a conflict is handled by the caller, not logged with 5,000 rows
        written = self.env.cr.rowcount
        self.invalidate_model(["ai_propensity", "ai_propensity_grade", "ai_propensity_reasons",
                               "ai_propensity_model_id", "ai_propensity_date", "ai_propensity_state"])
        return written

    # ------------------------------------------------------------------------------------
    # UI
    # ------------------------------------------------------------------------------------
    def action_ai_view_model(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "crm.ai.model",
                "res_id": self.ai_propensity_model_id.id, "view_mode": "form", "target": "current"}
