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

    ai_reorder_recommendation_ids = fields.One2many(
        "crm.ai.recommendation", compute="_compute_ai_recommendations", string="Order Again",
        help="CRM AI: the customer's own products most likely to be ordered again.")
    ai_new_recommendation_ids = fields.One2many(
        "crm.ai.recommendation", compute="_compute_ai_recommendations", string="New for This Customer",
        help="CRM AI: products the customer never bought that customers like them buy; for a lead without a "
             "customer, the most popular products with its tags, else in its country, else with its team.")
    ai_recommended_product_ids = fields.Many2many(
        "product.product", compute="_compute_ai_recommendations", search="_search_ai_recommended_product_ids",
        string="Recommended Products")

    @api.depends("partner_id.commercial_partner_id", "company_id", "country_id", "team_id", "tag_ids")
    def _compute_ai_recommendations(self):
        Recommendation = self.env["crm.ai.recommendation"]
        by_company = {}  # one query per company for every lead with a customer
        for lead in self.filtered("partner_id"):
            by_company.setdefault(lead.company_id or self.env.company, self.env["res.partner"])
            by_company[lead.company_id or self.env.company] |= lead.partner_id.commercial_partner_id
        customer_rows = {company: Recommendation._ai_rows(customers, company)
                         for company, customers in by_company.items()}
        for lead in self:
            company = lead.company_id or self.env.company
            customer = lead.partner_id.commercial_partner_id
            if customer:
                rows = customer_rows[company].filtered(lambda r: r.partner_id == customer)  # noqa: B023
            else:  # no customer yet: what sells with its tags, in its country or with its team
                rows = Recommendation._ai_lead_rows(lead, company)
            lead.ai_reorder_recommendation_ids = rows.filtered(lambda r: r.list_type == "reorder")
            lead.ai_new_recommendation_ids = rows.filtered(lambda r: r.list_type == "new")
            lead.ai_recommended_product_ids = rows.product_id

    def _search_ai_recommended_product_ids(self, operator, value):
        domain = self.env["crm.ai.recommendation"]._ai_search_customers(operator, value)
        return [("partner_id." + domain[0][0], domain[0][1], domain[0][2])]

    def action_ai_quotation(self):
        """Quotation for the customer, linked to this opportunity, with the recommended products kept."""
        self.ensure_one()
        return self.env["crm.ai.recommendation"]._ai_action_quotation(self.partner_id, self)

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
