"""AI fields of partners: the customer's segment, its R/F/M and its repeat-purchase
propensity, written by the customer-value engines (``engine_customer_segment``,
``engine_repeat_purchase``), displayed here.

Every value is company-dependent (one per company, from that company's orders only):
a partner shared by several companies has a segment in each, and a user sees, filters
and groups by the one of the company they work in.  Contacts carry their commercial
partner's values.
"""

from odoo import _, api, fields, models

from ..ml import format_reason
from .crm_ai_driver import RECORD_STATES
from .crm_ai_engine import ALL_SALES
from .crm_ai_scored_mixin import reasons_html
from .crm_ai_sentiment_fields import sentiment_fields
from .engine_repeat_purchase import HIGH_REPEAT_PROPENSITY, describe_customer_reasons

#: Who reads a partner's AI values (portal users may read their own partner: not these).
SALES = "sales_team.group_sale_salesman"
#: Who reads a customer's sentiment excerpt as stored: it may quote a lead a salesperson
#: limited to their own documents cannot open (sales managers read every lead).
SALES_MANAGERS = "sales_team.group_sale_manager"
#: A plain engine-written value of a partner: one per company, for salespeople, not indexed.
VALUE = {"company_dependent": True, "groups": SALES, "index": False, "readonly": True, "copy": False}
#: The same, for a figure made of the customer's orders, whoever sold them (revenue, orders,
#: the reasons' data): for users who read every sale order (crm_ai_engine.ALL_SALES).
ORDER_FIGURE = {**VALUE, "groups": ALL_SALES}


class ResPartner(models.Model):
    _name = "res.partner"
    _inherit = ["res.partner", "crm.ai.scored.mixin", "crm.ai.sentiment.mixin"]

    # the same sentiment columns on leads and partners, declared once (a class body's namespace is a dict)
    locals().update(sentiment_fields(company_dependent=True, groups=SALES, excerpt_groups=SALES_MANAGERS))
    # The excerpt's message: an id, not a many2one (a company-dependent many2one would make every
    # message deletion search the partners' jsonb); a deleted message simply hides the excerpt.
    ai_sentiment_message = fields.Integer("Sentiment Excerpt Message", company_dependent=True, groups=SALES_MANAGERS,
                                          index=False, readonly=True, copy=False)
    ai_sentiment_why = fields.Text(
        "Why (sentiment)", compute="_compute_ai_sentiment_why", groups=SALES,
        help="The customer's words that weigh most negatively in the sentiment, when you may open the "
             "conversation they come from (a lead of another salesperson's stays hidden).")
    ai_sentiment_why_words = fields.Char("Words Behind It", compute="_compute_ai_sentiment_why", groups=SALES)
    ai_sentiment_why_hidden = fields.Boolean("Sentiment Excerpt Hidden", compute="_compute_ai_sentiment_why",
                                             groups=SALES)

    # -- segment (customer_segment engine) ----------------------------------------------------------
    # Company-dependent values: stored as jsonb {company: value}.  Plain values get no index
    # (Odoo would add a "value IS NOT NULL" one to each, updated on every daily rescore).
    ai_segment_id = fields.Many2one(
        "crm.ai.segment", "Customer Segment", company_dependent=True, groups=SALES, readonly=True, copy=False,
        index="btree_not_null",
        help="Where this customer stands by the recency, frequency and value of its confirmed orders "
             "in your company (see the segment's description).")
    ai_segment_color = fields.Integer(related="ai_segment_id.color", string="Segment Colour", groups=SALES)
    ai_segment_description = fields.Text(related="ai_segment_id.description", string="Segment Meaning",
                                         groups=SALES)
    ai_rfm_recency_days = fields.Integer(
        "Days Since Last Order", **ORDER_FIGURE, aggregator="avg",
        help="Days since the customer's last confirmed sale order in your company.")
    ai_rfm_frequency = fields.Integer(
        "Orders", **ORDER_FIGURE, aggregator="avg",
        help="Confirmed sale orders over the segmentation window (returns are not orders).")
    ai_rfm_monetary = fields.Float(
        "Revenue", **ORDER_FIGURE, digits=(16, 2), aggregator="sum",
        help="Untaxed revenue over the segmentation window in the company currency (other currencies "
             "converted at the order date), credit notes subtracted.")
    ai_segment_state = fields.Selection(RECORD_STATES, "Segment Status", **VALUE)
    ai_segment_date = fields.Datetime("Segmented On", **VALUE)
    ai_segment_model_id = fields.Many2one("crm.ai.model", "Segment Model", company_dependent=True, groups=SALES,
                                          readonly=True, copy=False)
    ai_segment_history_ids = fields.One2many(
        "crm.ai.segment.history", compute="_compute_ai_segment_history_ids", string="Segment History", groups=SALES)

    # -- repeat purchase (repeat_purchase engine) ---------------------------------------------------
    ai_propensity = fields.Float(
        "Repeat-Purchase Propensity", **VALUE, digits=(5, 2), aggregator="avg",
        help="Probability (%) that this customer confirms another sale order with your company within the "
             "horizon (90 days by default), learnt from your customers' past purchases. Meant literally: "
             "its calibration is measured on the latest completed horizon. Empty for customers who never bought.")
    ai_propensity_reason_data = fields.Text("Repeat-Purchase Reasons (data)", **ORDER_FIGURE)
    ai_propensity_reasons = fields.Text("Repeat-Purchase Reasons", compute="_compute_ai_propensity_reasons",
                                        groups=SALES)
    ai_propensity_reasons_html = fields.Html("Why this propensity", compute="_compute_ai_propensity_reasons",
                                             sanitize=False, groups=SALES)
    ai_propensity_state = fields.Selection(RECORD_STATES, "Propensity Status", **VALUE)
    ai_propensity_date = fields.Datetime("Propensity Scored On", **VALUE)
    ai_propensity_model_id = fields.Many2one("crm.ai.model", "Propensity Model", company_dependent=True, groups=SALES,
                                             readonly=True, copy=False)
    ai_propensity_high = fields.Boolean(compute="_compute_ai_propensity_high", search="_search_ai_propensity_high",
                                        groups=SALES)

    # -- recommended products (recommend engine: rows in crm.ai.recommendation) ---------------------
    ai_recommend_state = fields.Selection(RECORD_STATES, "Recommendations Status", **VALUE)
    ai_recommend_date = fields.Datetime("Recommended On", **VALUE)
    ai_recommend_model_id = fields.Many2one("crm.ai.model", "Recommendation Model", company_dependent=True,
                                            groups=SALES, readonly=True, copy=False)
    ai_reorder_recommendation_ids = fields.One2many(
        "crm.ai.recommendation", compute="_compute_ai_recommendations", string="Order Again", groups=SALES,
        help="CRM AI: the customer's own products most likely to be ordered again (most often ordered first).")
    ai_new_recommendation_ids = fields.One2many(
        "crm.ai.recommendation", compute="_compute_ai_recommendations", string="New for This Customer",
        groups=SALES, help="CRM AI: products this customer never bought that customers like them buy.")
    ai_recommended_product_ids = fields.Many2many(
        "product.product", compute="_compute_ai_recommendations", search="_search_ai_recommended_product_ids",
        string="Recommended Products", groups=SALES)

    @api.depends("commercial_partner_id")
    @api.depends_context("company", "uid")  # the rows a user reads follow his access to the sales
    def _compute_ai_recommendations(self):
        Recommendation = self.env["crm.ai.recommendation"]
        rows = Recommendation._ai_rows(self.commercial_partner_id, self.env.company)
        for partner in self:
            mine = rows.filtered(lambda r: r.partner_id == partner.commercial_partner_id)  # noqa: B023
            partner.ai_reorder_recommendation_ids, partner.ai_new_recommendation_ids = Recommendation._ai_lists(mine)
            partner.ai_recommended_product_ids = mine.product_id

    def _search_ai_recommended_product_ids(self, operator, value):
        return self.env["crm.ai.recommendation"]._ai_search_customers(operator, value)

    def action_ai_quotation(self):
        """Quotation with the recommended products the salesperson keeps."""
        self.ensure_one()
        return self.env["crm.ai.recommendation"]._ai_action_quotation(self)

    @api.depends("ai_sentiment_excerpt", "ai_sentiment_evidence", "ai_sentiment_message")
    @api.depends_context("company", "uid", "allowed_company_ids")
    def _compute_ai_sentiment_why(self):
        """The stored excerpt, shown only to a reader who may read the message it quotes:
        a customer's sentiment reads the chatter of all its leads, and a salesperson limited
        to their own documents must not read another's conversation through the customer.

        Read from the saved partner, never from a form's values: an onchange call may put
        any message id (one the caller may read) in the record it computes on."""
        origins = self._origin.sudo()
        stored = {partner.id: (partner.ai_sentiment_excerpt, partner.ai_sentiment_evidence,
                               partner.ai_sentiment_message) for partner in origins}
        # the message still says it: not deleted, not edited since (an edit clears its reading,
        # and a new reading of the new text has another excerpt)
        quoted = self.env["mail.message"].sudo().browse({m for _e, _w, m in stored.values() if m}).exists()
        says = {m.id: m.ai_sentiment_excerpt for m in quoted if m.ai_sentiment_label}
        current = quoted.filtered(lambda m: m.id in says)
        readable = set(current.with_env(self.env)._filtered_access("read").ids)
        for partner in self:
            text, words, message = stored.get(partner._origin.id, (False, False, 0))
            if message in says and says[message] != text:
                message = 0  # re-read since: the stored quote is no longer its words
            shown = bool(text) and message in readable
            partner.ai_sentiment_why = text if shown else False
            partner.ai_sentiment_why_words = words if shown else False
            # "you cannot open it" only when that is why (a message gone waits for the next run)
            partner.ai_sentiment_why_hidden = bool(text) and message in current.ids and not shown

    @api.depends_context("company")
    def _compute_ai_segment_history_ids(self):
        History = self.env["crm.ai.segment.history"]
        customers = self.commercial_partner_id
        rows = History.search([("partner_id", "in", customers.ids), ("company_id", "=", self.env.company.id)])
        for partner in self:
            partner.ai_segment_history_ids = rows.filtered(
                lambda r: r.partner_id == partner.commercial_partner_id)  # noqa: B023

    @api.depends("ai_propensity_reason_data")
    @api.depends_context("lang", "company", "uid")  # figures for users who read every sale
    def _compute_ai_propensity_reasons(self):
        for partner in self:
            # the data is for users who read every sale (sudo to read it); the words hide its figures from others
            data = partner.sudo().ai_propensity_reason_data
            lines = [format_reason(r) for r in describe_customer_reasons(self.env, data)]
            partner.ai_propensity_reasons = "\n".join(lines) or False
            partner.ai_propensity_reasons_html = reasons_html(partner.ai_propensity_reasons)

    @api.depends("ai_propensity")
    @api.depends_context("company")
    def _compute_ai_propensity_high(self):
        for partner in self:
            partner.ai_propensity_high = partner.ai_propensity >= HIGH_REPEAT_PROPENSITY

    def _search_ai_propensity_high(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(_("Unsupported search on high repeat-purchase propensity."))
        if (operator == "=") == value:
            return [("ai_propensity", ">=", HIGH_REPEAT_PROPENSITY)]
        return ["|", ("ai_propensity", "<", HIGH_REPEAT_PROPENSITY), ("ai_propensity", "=", False)]


class PartnerMergeWizard(models.TransientModel):
    _inherit = "base.partner.merge.automatic.wizard"

    def _update_values(self, src_partners, dst_partner):
        # the merge copies every stored field; AI values are the engines' (recomputed after the merge)
        return super()._update_values(src_partners, dst_partner.with_context(crm_ai_drop_scores=True))
