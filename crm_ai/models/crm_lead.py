"""AI fields of leads: written by the lead propensity engine
(``engine_lead_propensity``), displayed here."""

import json

from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import format_date, format_datetime

from ..ml import format_reason
from .crm_ai_driver import RECORD_STATES
from .crm_ai_engine import ALL_SALES
from .crm_ai_scored_mixin import reasons_html
from .crm_ai_sentiment_fields import SALES, sentiment_fields
from .engine_lead_propensity import GRADES, TREND_DAYS, TREND_SIGNIFICANT_POINTS, describe_reasons

#: History points shown on the lead form's chart (the newest).
CHART_POINTS = 60


class CrmLead(models.Model):
    _name = "crm.lead"
    _inherit = ["crm.lead", "crm.ai.scored.mixin", "crm.ai.sentiment.mixin"]

    # Every CRM AI field is for salespeople: a portal reseller may read the leads assigned to him
    # (website_crm_partner_assign), not what CRM AI made of them.
    # The same sentiment columns on leads and partners, declared once (a class body's namespace is a dict).
    locals().update(sentiment_fields(groups=SALES))

    ai_propensity = fields.Float(
        "AI Propensity", digits=(5, 2), readonly=True, copy=False, aggregator="avg", groups=SALES,
        help="Probability (%) that this lead will be won, from crm_ai's model (trained on log-loss, "
             "so meant to be read literally; its calibration is measured on the newest closed leads). "
             "Odoo's own Probability is left as it is.")
    ai_propensity_grade = fields.Selection(
        GRADES, "AI Grade", readonly=True, copy=False, index=True, groups=SALES,
        help="Propensity range (see each grade's label).")
    ai_propensity_reason_data = fields.Json(
        "AI Reasons (data)", readonly=True, copy=False, groups=ALL_SALES,  # the customer's figures: every lead's
        help='[{"field", "value", "points"}]: the strongest reasons up and down, as data.')
    ai_propensity_reasons = fields.Text(
        "AI Reasons", compute="_compute_ai_propensity_reasons", groups=SALES,
        help="The strongest reasons up and down for this lead, in percentage points: how much "
             "the propensity would change if that field were at its average.")
    ai_propensity_reasons_html = fields.Html("Why this score", compute="_compute_ai_propensity_reasons_html",
                                             sanitize=False, groups=SALES)
    ai_propensity_trend = fields.Float(
        "AI Trend", digits=(5, 2), readonly=True, copy=False, aggregator="avg", groups=SALES,
        help="Change of the AI propensity over the last %d days, in points, by the current model (since its "
             "first score of the lead when that is more recent; empty before it scored the lead twice)." % TREND_DAYS)
    ai_propensity_trend_arrow = fields.Char("AI Trend Arrow", compute="_compute_ai_propensity_trend_arrow", groups=SALES,
                                            help="▲ / ▼: the propensity moved by at least %g points in %d days."
                                                 % (TREND_SIGNIFICANT_POINTS, TREND_DAYS))
    ai_propensity_history_ids = fields.One2many("crm.ai.propensity.history", "lead_id", "AI Propensity History",
                                                readonly=True, groups=SALES)
    ai_propensity_chart = fields.Text("AI Propensity over Time", compute="_compute_ai_propensity_history_view",
                                      groups=SALES)
    ai_propensity_changes_html = fields.Html("What changed", compute="_compute_ai_propensity_history_view",
                                             sanitize=False, groups=SALES)
    ai_propensity_model_id = fields.Many2one("crm.ai.model", "AI Model", readonly=True, copy=False,
                                             ondelete="set null", index="btree_not_null", groups=SALES)
    ai_propensity_date = fields.Datetime("AI Scored On", readonly=True, copy=False, groups=SALES)
    ai_segment_id = fields.Many2one(
        "crm.ai.segment", "Customer Segment", compute="_compute_ai_segment_id", store=True, index="btree_not_null",
        readonly=True, copy=False, groups=SALES,
        help="The customer's segment in this lead's company (recency, frequency and value of its orders), "
             "kept up to date by the customer segment engine.")
    ai_propensity_state = fields.Selection(
        RECORD_STATES, "AI Status", readonly=True, copy=False, default="pending", groups=SALES,
        help="Not enough data: this company has too few won or lost leads for a trustworthy model; "
             "no score is shown (never a made-up 0 % or 100 %). Out of date: the model that gave this "
             "score was refused (e.g. a copied database); a retraining is under way.")

    ai_reorder_recommendation_ids = fields.One2many(
        "crm.ai.recommendation", compute="_compute_ai_recommendations", string="Order Again", groups=SALES,
        help="CRM AI: the customer's own products most likely to be ordered again.")
    ai_new_recommendation_ids = fields.One2many(
        "crm.ai.recommendation", compute="_compute_ai_recommendations", string="New for This Customer",
        groups=SALES,
        help="CRM AI: products the customer never bought that customers like them buy; for a lead without a "
             "customer, the most popular products with its tags, else in its country, else with its team.")
    ai_recommended_product_ids = fields.Many2many(
        "product.product", compute="_compute_ai_recommendations", search="_search_ai_recommended_product_ids",
        string="Recommended Products", groups=SALES)

    @api.depends("partner_id.commercial_partner_id", "company_id", "country_id", "team_id", "tag_ids")
    @api.depends_context("uid")  # the rows a user reads follow his access to the sales
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
            lead.ai_reorder_recommendation_ids, lead.ai_new_recommendation_ids = Recommendation._ai_lists(rows)
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
    @api.depends_context("lang", "uid")  # the customer's figures for users who read every lead
    def _compute_ai_propensity_reasons(self):
        # the data is for users who read every lead (sudo to read it); the words hide its figures from others
        described = describe_reasons(self.env, [lead.ai_propensity_reason_data or [] for lead in self.sudo()])
        for lead, reasons in zip(self, described):
            lead.ai_propensity_reasons = "\n".join(format_reason(reason) for reason in reasons) or False

    @api.depends("ai_propensity_reasons")
    @api.depends_context("lang", "uid")
    def _compute_ai_propensity_reasons_html(self):
        for lead in self:
            lead.ai_propensity_reasons_html = reasons_html(lead.ai_propensity_reasons)

    @api.depends("ai_propensity_trend", "active", "stage_id.is_won")
    def _compute_ai_propensity_trend_arrow(self):
        for lead in self:
            # a won or lost lead is no longer scored: its last trend is not a move any more
            trend = lead.ai_propensity_trend if lead.active and not lead.stage_id.is_won else 0.0
            if trend >= TREND_SIGNIFICANT_POINTS:
                lead.ai_propensity_trend_arrow = "▲ %+d" % round(trend)
            elif trend <= -TREND_SIGNIFICANT_POINTS:
                lead.ai_propensity_trend_arrow = "▼ %+d" % round(trend)
            else:
                lead.ai_propensity_trend_arrow = False

    @api.depends("ai_propensity", "ai_propensity_date", "ai_propensity_reason_data")
    @api.depends_context("lang", "uid")
    def _compute_ai_propensity_history_view(self):
        """The chart's data (JSON for the ``crm_ai_chart`` widget) and, in words, what
        changed between the latest score and the one before it (reasons new, gone, moved)."""
        History = self.env["crm.ai.propensity.history"].sudo()  # the lead is readable: so is its history
        rows_by_lead = {}
        for row in History.search_read([("lead_id", "in", self.ids)], ["lead_id", "date", "propensity", "reason_data"],
                                       order="date desc, id desc"):
            rows_by_lead.setdefault(row["lead_id"][0], []).append(row)
        pairs = {}  # lead -> (rows compared); their reasons are put in words in one call for all leads
        for lead in self:
            rows = rows_by_lead.get(lead.id, [])[:CHART_POINTS][::-1]  # oldest first
            if not rows or lead.ai_propensity_state not in ("scored", "stale"):
                lead.ai_propensity_chart = False
                lead.ai_propensity_changes_html = False
                continue
            points = [(row["date"], row["propensity"]) for row in rows]
            if lead.ai_propensity_date and lead.ai_propensity_date > points[-1][0]:
                points.append((lead.ai_propensity_date, lead.ai_propensity))  # today's score, a small move
            lead.ai_propensity_chart = json.dumps({
                "type": "line",
                "labels": self._ai_chart_labels([date for date, _value in points]),
                "datasets": [{"label": self.env._("Propensity (%)"), "data": [round(v, 1) for _d, v in points]}],
                "y": {"min": 0, "max": 100, "suffix": " %"},
            })
            if len(rows) < 2:
                lead.ai_propensity_changes_html = Markup("<p class='text-muted mb-0'>%s</p>") % self.env._(
                    "First score on %(date)s; changes will show here.", date=format_date(self.env, rows[0]["date"]))
                continue
            after = rows[-1]
            # the latest point that reads differently (a retraining that moved nothing adds a point too)
            before = next((row for row in reversed(rows[:-1]) if round(row["propensity"]) != round(after["propensity"])
                           or row["reason_data"] != after["reason_data"]), rows[-2])
            pairs[lead] = (before, after)
        described = describe_reasons(self.env, [row["reason_data"] or [] for pair in pairs.values() for row in pair])
        for k, (lead, (before, after)) in enumerate(pairs.items()):
            lead.ai_propensity_changes_html = self._ai_reason_changes_html(before, after, *described[2 * k:2 * k + 2])

    def _ai_chart_labels(self, moments):
        """Dates in the user's format; with the time when two points share a day (a
        retraining and a move the same day)."""
        days = [format_date(self.env, moment) for moment in moments]
        if len(set(days)) == len(days):
            return days
        return [format_datetime(self.env, moment, dt_format="short") for moment in moments]

    def _ai_reason_changes_html(self, before, after, old, new):
        """"Since <date>: 45 % -> 53 % (+8)" and the reasons that appeared, went or moved
        between two history points (``old`` / ``new``: their reasons in words)."""
        old_raw, new_raw = before["reason_data"] or [], after["reason_data"] or []
        # one line per field: a value that changed reads "Source: Newsletter (+9), was Website (+2)"
        old_by_label = {raw["field"]: r for raw, r in zip(old_raw, old)}
        new_by_label = {raw["field"]: r for raw, r in zip(new_raw, new)}
        items = []
        for label, reason in new_by_label.items():
            previous = old_by_label.get(label)
            if previous is None:
                items.append(("text-success" if reason["points"] > 0 else "text-danger",
                              self.env._("%(reason)s new", reason=format_reason(reason))))
            elif previous["value"] != reason["value"]:
                items.append(("text-success" if reason["points"] > previous["points"] else "text-danger",
                              self.env._("%(reason)s, was %(old)s", reason=format_reason(reason),
                                         old=format_reason(previous)[len(previous["label"]) + 2:])))
            elif round(previous["points"]) != round(reason["points"]):
                items.append(("text-success" if reason["points"] > previous["points"] else "text-danger",
                              self.env._("%(reason)s, was %(old)+d", reason=format_reason(reason),
                                         old=round(previous["points"]))))
        for label, reason in old_by_label.items():
            if label not in new_by_label:
                items.append(("text-muted", self.env._("%(reason)s gone", reason=format_reason(reason))))
        head = self.env._("Since %(date)s: %(old).0f %% → %(new).0f %% (%(delta)+.0f)",
                          date=format_date(self.env, before["date"]), old=before["propensity"],
                          new=after["propensity"], delta=after["propensity"] - before["propensity"])
        lines = Markup("").join(Markup("<li class='%s'>%s</li>") % item for item in items)
        return Markup("<p class='mb-1'>%s</p><ul class='list-unstyled mb-0'>%s</ul>") % (head, lines)

    def action_ai_view_model(self):
        self.ensure_one()
        return {"type": "ir.actions.act_window", "res_model": "crm.ai.model",
                "res_id": self.ai_propensity_model_id.id, "view_mode": "form", "target": "current"}
