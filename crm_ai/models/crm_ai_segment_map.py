"""The R x F grid: customers of a company by recency and frequency quintile, as a heat map.

Rows: recency score (5 = the fifth of customers who bought most recently), columns:
frequency score (5 = the fifth who buy most often), as in ``ml.customer_value.rfm_scores``.
Each cell shows how many customers fall there, shaded by that count, and the segment
most of them are in; the corners read as the classic RFM map (top right: Champions,
bottom left: Lost).
"""

import pandas as pd
from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from ..ml.customer_value import rfm_scores
from .engine_customer_segment import CustomerSegmentEngine

SCORES = (5, 4, 3, 2, 1)


class CrmAiSegmentMap(models.TransientModel):
    _name = "crm.ai.segment.map"
    _description = "CRM AI: customers by recency and frequency"

    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    grid = fields.Html("Customers by recency and frequency", compute="_compute_grid", sanitize=False)

    def _compute_display_name(self):
        for record in self:
            record.display_name = _("Customer map")

    @api.model
    def _ai_customers(self, company):
        """DataFrame recency_days, frequency, monetary, segment (name) of ``company``'s
        segmented customers (commercial partners, not their contacts)."""
        if company not in self.env.user.company_ids:
            raise AccessError(_("You have no access to %s's customers.", company.name))
        engine = CustomerSegmentEngine(self.sudo().with_company(company).env, company)
        self.env["res.partner"].flush_model()
        self.env.cr.execute(SQL("""
            SELECT %(r)s, %(f)s, %(m)s, s.name->>%(lang)s, s.name->>'en_US'
              FROM res_partner p JOIN crm_ai_segment s ON s.id = %(segment)s
             WHERE %(scope)s AND p.id = p.commercial_partner_id AND %(f)s > 0""",
            r=engine.column_sql("p", "ai_rfm_recency_days"), f=engine.column_sql("p", "ai_rfm_frequency"),
            m=engine.column_sql("p", "ai_rfm_monetary"), segment=engine.column_sql("p", "ai_segment_id"),
            scope=engine.scope_sql("p"), lang=self.env.lang or "en_US"))
        rows = [(r, f, m, name or english) for r, f, m, name, english in self.env.cr.fetchall()]
        return pd.DataFrame(rows, columns=["recency_days", "frequency", "monetary", "segment"])

    @api.depends("company_id")
    @api.depends_context("lang")
    def _compute_grid(self):
        for record in self:
            record.grid = self._ai_grid_html(self._ai_customers(record.company_id))

    @api.model
    def _ai_grid_html(self, customers):
        if customers.empty:
            return Markup("<p class='text-muted'>%s</p>") % _(
                "No customer analysed yet: the grid fills once the customer segment engine has scored them.")
        scores = rfm_scores(customers, customers)
        frame = customers.assign(r=scores["r"].to_numpy(), f=scores["f"].to_numpy())
        counts = frame.groupby(["r", "f"]).size()
        peak = counts.max()

        def band(column, score):
            values = frame.loc[frame[column[0]] == score, column[1]]
            if values.empty:
                return "–"
            low, high = values.min(), values.max()
            return f"{low:g}" if low == high else f"{low:g}–{high:g}"

        header = Markup("").join(
            Markup("<th class='text-center'>F%s<br/><small class='text-muted'>%s %s</small></th>") % (
                f, band(("f", "frequency"), f), _("orders")) for f in reversed(SCORES))
        body = []
        for r in SCORES:
            cells = []
            for f in reversed(SCORES):
                count = int(counts.get((r, f), 0))
                cell = frame[(frame["r"] == r) & (frame["f"] == f)]
                dominant = cell["segment"].mode().iloc[0] if count else ""
                alpha = 0.08 + 0.72 * count / peak if count else 0.0
                cells.append(Markup(
                    "<td class='text-center' style='background-color: rgba(1, 126, 132, %s); min-width: 7em' "
                    "title='%s'><b>%s</b><br/><small>%s</small></td>") % (
                    f"{alpha:.2f}", dominant, count or "", dominant))
            body.append(Markup("<tr><th>R%s<br/><small class='text-muted'>%s %s</small></th>%s</tr>") % (
                r, band(("r", "recency_days"), r), _("days ago"), Markup("").join(cells)))
        legend = _("Rows: how recently customers last ordered (R5 = the most recent fifth). Columns: how often "
                   "they order (F5 = the most frequent fifth). Each cell: customers, and the segment most of them "
                   "are in. %(n)s customers.", n=len(frame))
        return Markup("<p class='text-muted'>%s</p><table class='table table-sm table-bordered o_crm_ai_rfm_grid'>"
                      "<thead><tr><th></th>%s</tr></thead><tbody>%s</tbody></table>") % (
            legend, header, Markup("").join(body))

    @api.model
    def action_open(self):
        record = self.create({"company_id": self.env.company.id})
        return {"type": "ir.actions.act_window", "name": _("Customer map"), "res_model": self._name,
                "res_id": record.id, "view_mode": "form", "target": "current",
                "views": [(self.env.ref("crm_ai.crm_ai_segment_map_view_form").id, "form")]}
