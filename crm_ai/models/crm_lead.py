"""AI fields of leads: written by the lead propensity engine
(``engine_lead_propensity``), displayed here."""

from odoo import api, fields, models

from ..ml import format_reason
from .crm_ai_driver import RECORD_STATES
from .crm_ai_scored_mixin import reasons_html
from .crm_ai_sentiment_fields import sentiment_fields
from .engine_lead_propensity import GRADES, describe_reasons


class CrmLead(models.Model):
    _name = "crm.lead"
    _inherit = ["crm.lead", "crm.ai.scored.mixin", "crm.ai.sentiment.mixin"]

    # the same sentiment columns on leads and partners, declared once (a class body's namespace is a dict)
    locals().update(sentiment_fields())

    ai_propensity = fields.Float(
        "AI Propensity", digits=(5, 2), readonly=True, copy=False, aggregator="avg",
        help="Probability (%) that this lead will be won, from crm_ai's model (trained on log-loss, "
             "so meant to be read literally; its calibration is measured on the newest closed leads). "
             "Odoo's own Probability is left as it is.")
    ai_propensity_grade = fields.Selection(
        GRADES, "AI Grade", readonly=True, copy=False, index=True,
        help="Propensity range (see each grade's label).")
    ai_propensity_reason_data = fields.Json(
        "AI Reasons (data)", readonly=True, copy=False,
        help='[{"field", "value", "points"}]: the strongest reasons up and down, as data.')
    ai_propensity_reasons = fields.Text(
        "AI Reasons", compute="_compute_ai_propensity_reasons",
        help="The strongest reasons up and down for this lead, in percentage points: how much "
             "the propensity would change if that field were at its average.")
    ai_propensity_reasons_html = fields.Html("Why this score", compute="_compute_ai_propensity_reasons_html",
                                             sanitize=False)
    ai_propensity_model_id = fields.Many2one("crm.ai.model", "AI Model", readonly=True, copy=False,
                                             ondelete="set null", index="btree_not_null")
    ai_propensity_date = fields.Datetime("AI Scored On", readonly=True, copy=False)
    ai_segment_id = fields.Many2one(
        "crm.ai.segment", "Customer Segment", compute="_compute_ai_segment_id", store=True, index="btree_not_null",
        readonly=True, copy=False,
        help="The customer's segment in this lead's company (recency, frequency and value of its orders), "
             "kept up to date by the customer segment engine.")
    ai_propensity_state = fields.Selection(
        RECORD_STATES, "AI Status", readonly=True, copy=False, default="pending",
        help="Not enough data: this company has too few won or lost leads for a trustworthy model; "
             "no score is shown (never a made-up 0 % or 100 %). Out of date: the model that gave this "
             "score was refused (e.g. a copied database); a retraining is under way.")

    @api.depends("partner_id.commercial_partner_id", "company_id")
    def _compute_ai_segment_id(self):
        # the engine refreshes it (SQL) when the customer's segment changes
        for lead in self:
            customer = lead.partner_id.commercial_partner_id
            lead.ai_segment_id = customer.with_company(lead.company_id).sudo().ai_segment_id if (
                customer and lead.company_id) else False

    @api.depends("ai_propensity_reason_data")
    @api.depends_context("lang")
    def _compute_ai_propensity_reasons(self):
        described = describe_reasons(self.env, [lead.ai_propensity_reason_data or [] for lead in self])
        for lead, reasons in zip(self, described):
            lead.ai_propensity_reasons = "\n".join(format_reason(reason) for reason in reasons) or False

    @api.depends("ai_propensity_reasons")
    @api.depends_context("lang")
    def _compute_ai_propensity_reasons_html(self):
        for lead in self:
            lead.ai_propensity_reasons_html = reasons_html(lead.ai_propensity_reasons)

    def action_ai_view_model(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "crm.ai.model",
                "res_id": self.ai_propensity_model_id.id, "view_mode": "form", "target": "current"}
