"""A compact history of every open lead's propensity: one row per *move*.

The lead propensity engine adds a row in the same transaction as the score it
writes (``LeadPropensityEngine.after_write``, one ``INSERT ... SELECT``), and only when
the score moved by at least ``crm_ai.lead_propensity.history_step`` points (default 2)
since the lead's latest row, or the model changed, or the lead has no row yet: a
daily rescoring that changes nothing adds nothing.  No ORM write: no chatter, no
``write_date`` change on the lead.  Rows older than ``history_days`` are deleted when
the lead is scored again (and, for leads no longer scored, at the weekly training),
except the newest of them: the base a trend may still need.  The trend only compares
scores of the current model, so a retraining is never read as a move.

Each row keeps the reasons of that score, so the lead form can say what changed
between two scores ("Source: Newsletter (+9) new").
"""

from odoo import fields, models
from odoo.tools import SQL

from .crm_ai_engine import ALL_SALES


class CrmAiPropensityHistory(models.Model):
    _name = "crm.ai.propensity.history"
    _description = "CRM AI: lead propensity over time"
    _order = "date desc, id desc"
    _rec_name = "date"
    _log_access = False  # written by the engine only: the date says when

    lead_id = fields.Many2one("crm.lead", "Lead", required=True, readonly=True, ondelete="cascade")
    # follows the lead: a lead moved to another company takes its history along (record rules)
    company_id = fields.Many2one(related="lead_id.company_id", store=True, index=True)
    user_id = fields.Many2one(related="lead_id.user_id", string="Salesperson")
    date = fields.Datetime(required=True, readonly=True)
    propensity = fields.Float("Propensity (%)", digits=(5, 2), readonly=True, aggregator="avg")
    model_id = fields.Many2one("crm.ai.model", "Model", readonly=True, ondelete="set null")
    reason_data = fields.Json("Reasons (data)", readonly=True, groups=ALL_SALES)  # the customer's figures

    def init(self):
        # the engine's "latest row of these leads" and "row a week ago" lookups
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS crm_ai_propensity_history_lead_date_idx "
            "ON crm_ai_propensity_history (lead_id, date DESC, id DESC)"))
