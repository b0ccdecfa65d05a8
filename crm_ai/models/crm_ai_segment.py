"""Customer segments (one set per company) and the history of a customer's moves.

The customer segment engine (``engine_customer_segment``) names each cluster by the
meaning of its centroid; a segment record holds that meaning (``code``) for one
company, with the name, description and colour people may change.  Partners point to
their company's segment through the company-dependent ``res.partner.ai_segment_id``.
"""

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from ..ml.customer_value import NO_PURCHASE, SEGMENTS
from .crm_ai_engine import ALL_SALES

#: code -> (name in the engine, colour index of Odoo's palette), best customers first.
SEGMENT_CODES = {
    "champions": ("Champions", 10),
    "loyal": ("Loyal", 4),
    "potential_loyalists": ("Potential loyalists", 7),
    "new": ("New", 8),
    "need_attention": ("Need attention", 3),
    "at_risk": ("At risk", 2),
    "cant_lose": ("Can't lose them", 9),
    "hibernating": ("Hibernating", 6),
    "lost": ("Lost", 1),
    "no_purchase": (NO_PURCHASE, 0),
}
#: the engine's segment names -> codes
CODE_OF_NAME = {name: code for code, (name, _colour) in SEGMENT_CODES.items()}
DESCRIPTIONS = {**SEGMENTS, NO_PURCHASE: "No confirmed sale order yet: a prospect."}


class CrmAiSegment(models.Model):
    _name = "crm.ai.segment"
    _description = "CRM AI: customer segment"
    _order = "company_id, sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    code = fields.Selection([(code, name) for code, (name, _c) in SEGMENT_CODES.items()], required=True,
                            readonly=True, help="What the engine means by this segment; the name is yours to change.")
    description = fields.Text(translate=True)
    color = fields.Integer("Colour")
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True,
                                 default=lambda self: self.env.company)
    partner_count = fields.Integer("Customers", compute="_compute_stats")
    revenue = fields.Float("Revenue", compute="_compute_stats", groups=ALL_SALES,
                           help="Sum of the customers' revenue over the segmentation window (company currency).")
    avg_recency_days = fields.Float("Average days since the last order", compute="_compute_stats", groups=ALL_SALES,
                                    digits=(16, 0))
    avg_frequency = fields.Float("Average orders", compute="_compute_stats", groups=ALL_SALES, digits=(16, 1))
    avg_monetary = fields.Float("Average revenue", compute="_compute_stats", groups=ALL_SALES, digits=(16, 2))

    _sql_constraints = [("code_company_uniq", "unique(code, company_id)", "One segment per meaning and company.")]

    @api.model
    def _ai_customer_domain(self):
        """Customers, not their contacts (contacts carry their company's segment too)."""
        return ["|", ("is_company", "=", True), ("parent_id", "=", False)]

    def _compute_stats(self):
        empty = {"partner_count": 0, "revenue": 0.0, "avg_recency_days": 0.0, "avg_frequency": 0.0, "avg_monetary": 0.0}
        for company in self.company_id:
            segments = self.filtered(lambda s: s.company_id == company)  # noqa: B023
            # counts only (no partner is shown): sudo, in the segment's company (company-dependent values)
            groups = self.env["res.partner"].sudo().with_company(company).with_context(active_test=True)._read_group(
                [("ai_segment_id", "in", segments.ids), *self._ai_customer_domain()], ["ai_segment_id"],
                ["__count", "ai_rfm_monetary:sum", "ai_rfm_recency_days:avg", "ai_rfm_frequency:avg",
                 "ai_rfm_monetary:avg"])
            stats = {segment.id: values for segment, *values in groups}
            for segment in segments:
                count, revenue, recency, frequency, monetary = stats.get(segment.id, (0, 0.0, 0.0, 0.0, 0.0))
                segment.update({"partner_count": count, "revenue": revenue or 0.0,
                                "avg_recency_days": recency or 0.0, "avg_frequency": frequency or 0.0,
                                "avg_monetary": monetary or 0.0})
        for segment in self.filtered(lambda s: not s.company_id):
            segment.update(empty)

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(_("Segments are created by CRM AI's segment engine."))
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.su and {"code", "company_id"} & set(vals):
            raise AccessError(_("A segment's meaning and company are set by CRM AI; rename it instead."))
        return super().write(vals)

    @api.model
    def _ai_segments(self, company):
        """``{code: segment id}`` for ``company``, every segment created when missing
        (as superuser: the engine's records)."""
        existing = {s.code: s.id for s in self.sudo().with_context(active_test=False).search(
            [("company_id", "=", company.id)])}
        missing = [code for code in SEGMENT_CODES if code not in existing]
        if missing:
            created = self.sudo().create([{
                "code": code, "name": SEGMENT_CODES[code][0], "description": DESCRIPTIONS[SEGMENT_CODES[code][0]],
                "color": SEGMENT_CODES[code][1], "sequence": list(SEGMENT_CODES).index(code) + 1,
                "company_id": company.id} for code in missing])
            existing.update({s.code: s.id for s in created})
        return existing

    def action_view_partners(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window", "name": self.name, "res_model": "res.partner",
            "view_mode": "list,kanban,form", "domain": [("ai_segment_id", "=", self.id), *self._ai_customer_domain()],
            "context": {"allowed_company_ids": [self.company_id.id, *self.env.companies.ids]},
        }


class CrmAiSegmentHistory(models.Model):
    _name = "crm.ai.segment.history"
    _description = "CRM AI: customer segment change"
    _order = "date desc, id desc"
    _rec_name = "segment_to_id"

    partner_id = fields.Many2one("res.partner", "Customer", required=True, readonly=True, index=True,
                                 ondelete="cascade")
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True, ondelete="cascade")
    segment_from_id = fields.Many2one("crm.ai.segment", "From", readonly=True, ondelete="set null")
    segment_to_id = fields.Many2one("crm.ai.segment", "To", readonly=True, ondelete="set null")
    date = fields.Datetime(required=True, readonly=True)
