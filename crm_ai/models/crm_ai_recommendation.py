"""Recommended products, one row per (customer, list, rank) and company, written by the
recommendation engine (``engine_recommend``) with SQL; read here, by salespeople.

Two lists: "Order again" (the customer's own products, with his rhythm) and "New for
this customer" (products he never bought).  Rows without a customer hold the most
popular new products per country, sales team and lead tag, for leads that have no customer yet.  Nobody
creates, edits or deletes a row through the ORM (access rights give read only; the
engine writes as superuser in SQL).  The quotation wizard turns chosen products into a
quotation.

What a salesperson reads follows what he may read of the sales (``Personal Orders``).
With *Own Documents Only*, a row saying the customer bought its product ("Ordered
regularly", "Bought before") is readable only if one of his readable confirmed order
lines holds that product for that customer in that company (record rule on
``purchase_readable``); "Customers who buy X also buy this" names X on the same
condition; ``rank``, ``score`` and ``reason_value`` (where a hidden row sits, how often
it sold) are for users who read every sale: the others see ``position``, and counts and
rhythms of the orders they may read.  Otherwise the lists would tell him what the
customer buys through a colleague's orders, which Odoo does not show him.  A short
history completed with other products shows those to everyone.
"""

import numpy as np

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..ml.recommend import MIN_ORDERS_FOR_RHYTHM
from .crm_ai_engine import ALL_SALES, reads_all_sales

#: The reasons of a row saying the customer bought its product ("about every N days", "bought before").
PURCHASE_REASONS = ("every", "bought")
#: What makes one list: its rows are ranked 1, 2, 3...
LIST_KEY = ("company_id", "partner_id", "country_id", "team_id", "tag_id", "list_type")

LIST_TYPES = [("reorder", "Order again"), ("new", "New for this customer")]
REASONS = [
    ("every", "Ordered regularly"),
    ("bought", "Bought before"),
    ("also_buy", "Bought with one of theirs"),
    ("similar_customers", "Customers like this one buy it"),
    ("popular_group", "Popular in their country"),
    ("popular_team", "Popular with a sales team's customers"),
    ("popular_tag", "Popular in deals with a tag"),
    ("popular", "Popular"),
    ("new_in_category", "New in a category they buy"),
]


class CrmAiRecommendation(models.Model):
    _name = "crm.ai.recommendation"
    _description = "CRM AI: recommended product"
    _order = "company_id, partner_id, list_type desc, rank"  # "reorder" first
    _rec_name = "product_id"

    partner_id = fields.Many2one("res.partner", "Customer", readonly=True, index=True, ondelete="cascade",
                                 help="The commercial partner (its contacts show the same products). Empty: the "
                                      "popular products of a country, for leads without a customer.")
    country_id = fields.Many2one("res.country", readonly=True, ondelete="cascade",
                                 help="For rows without a customer: the country they are popular in "
                                      "(empty: everywhere).")
    # indexed with the customer (init): the engine replaces a company's customers' rows together
    team_id = fields.Many2one("crm.team", "Sales Team", readonly=True, ondelete="cascade",
                              help="For rows without a customer: the team whose customers buy them most.")
    tag_id = fields.Many2one("crm.tag", "Tag", readonly=True, ondelete="cascade",
                             help="For rows without a customer: the lead tag whose won deals' orders hold them most.")
    company_id = fields.Many2one("res.company", required=True, readonly=True, ondelete="cascade")
    list_type = fields.Selection(LIST_TYPES, "List", required=True, readonly=True)
    # rank and score would say where (and how often bought) a hidden purchase is: users who
    # may not read every sale see ``position`` instead (the lists still sort by rank)
    rank = fields.Integer(required=True, readonly=True, aggregator=None, groups=ALL_SALES)
    position = fields.Integer("#", compute="_compute_position", aggregator=None,
                              help="Place in the list as you see it: 1, 2, 3... among the products still sold "
                                   "that you may see.")
    product_id = fields.Many2one("product.product", "Product", required=True, readonly=True, index=True,
                                 ondelete="cascade")
    score = fields.Float(readonly=True, digits=(16, 4), aggregator=None, groups=ALL_SALES,
                         help="What ranks the list: for products bought before, the number of orders holding "
                              "them; for new products, the model's score (standardised: above 0 is above this "
                              "customer's average product).")
    reason = fields.Selection(REASONS, readonly=True, required=True)
    # one of the customer's own products: read through reason_text, which names it only to
    # users who may see that purchase
    reason_product_id = fields.Many2one("product.product", "Bought with", readonly=True, ondelete="set null",
                                        groups=ALL_SALES)
    # counts every order of the customer: users who may not read every sale get their own counts in reason_text
    reason_value = fields.Char(readonly=True, groups=ALL_SALES,
                               help="Days between orders, number of orders, country or category id.")
    reason_text = fields.Char("Why", compute="_compute_reason_text")
    model_id = fields.Many2one("crm.ai.model", "Model", readonly=True, ondelete="set null")
    date = fields.Datetime("Recommended on", readonly=True)
    purchase_readable = fields.Boolean(
        compute="_compute_purchase_readable", search="_search_purchase_readable",
        help="False for a row saying the customer bought its product when the current user may read none of "
             "those purchases (bought only through other salespeople's orders): the record rule hides it.")

    _sql_constraints = [
        ("rank_positive", "CHECK(rank > 0)", "A rank starts at 1."),
    ]

    def init(self):
        # a customer's lists are read (and replaced) together
        self.env.cr.execute("""CREATE INDEX IF NOT EXISTS crm_ai_recommendation_company_partner_idx
                               ON crm_ai_recommendation (company_id, partner_id, list_type, rank)""")

    # -- what the user may read of a customer's purchases -----------------------------------
    @api.model
    def _ai_reads_all_sales(self):
        """Whether the real user (sudo or not) reads every sale order of his companies."""
        return reads_all_sales(self.env)

    @api.model
    def _ai_readable_lines(self):
        """SQL: the purchase lines the real user may read (his record rules): confirmed
        (the order's state, as the engine reads it: an order confirmed in SQL may leave
        its lines' copy behind), a product, no down payment, a positive quantity."""
        self.env["sale.order.line"].flush_model(["product_id", "order_partner_id", "company_id", "order_id"])
        self.env["sale.order"].flush_model(["date_order"])
        self.env["res.partner"].flush_model(["commercial_partner_id"])
        return self.env["sale.order.line"].with_user(self.env.uid)._search([
            ("order_id.state", "=", "sale"), ("display_type", "=", False), ("is_downpayment", "!=", True),
            ("product_uom_qty", ">", 0)]).subselect()

    @api.model
    def _ai_purchase_lines_sql(self, row, product):
        """SQL ``FROM ... WHERE ...`` (alias ``sol``): the lines on which the customer of
        ``row`` (alias of a recommendation row) bought ``product`` in the row's company,
        among those the real user may read."""
        return SQL("""FROM sale_order_line sol JOIN res_partner sop ON sop.id = sol.order_partner_id
                     WHERE sol.product_id = %(product)s AND sop.commercial_partner_id = %(row)s.partner_id
                       AND sol.company_id = %(row)s.company_id AND sol.id IN %(lines)s""",
                   row=SQL.identifier(row), product=product, lines=self._ai_readable_lines())

    @api.model
    def _ai_bought_sql(self, row, product):
        """SQL: the customer of ``row`` bought ``product`` on a line the real user may read."""
        return SQL("EXISTS (SELECT 1 %s)", self._ai_purchase_lines_sql(row, product))

    def _search_purchase_readable(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(_("Unsupported search on readable purchases: %s %s", operator, value))
        # called by the record rule, on a superuser model but for the real user (env.uid)
        readable = SQL("""(SELECT r.id FROM crm_ai_recommendation r
                            WHERE r.reason != ALL(%s) OR r.partner_id IS NULL OR %s)""",
                       list(PURCHASE_REASONS), self._ai_bought_sql("r", SQL("r.product_id")))
        return [("id", "in" if (operator == "=") == value else "not in", readable)]

    @api.depends_context("uid")
    def _compute_purchase_readable(self):
        # decided for the real user even under sudo: Odoo checks record rules on sudo records
        # (check_access, filtered_domain), which must not let every row through
        if self._ai_reads_all_sales():
            self.purchase_readable = True
            return
        # _origin: a form's onchange computes on new records standing for the saved rows
        readable = set(self.sudo()._search([("id", "in", self._origin.ids), ("purchase_readable", "=", True)]))
        for row in self:
            row.purchase_readable = row._origin.id in readable

    @api.depends("product_id")
    @api.depends_context("uid")
    def _compute_display_name(self):
        # shown in access errors (debug mode) for rows the user may not read: never the product
        for row in self:
            row.display_name = row.sudo().product_id.display_name if row.purchase_readable else _("Hidden product")

    @api.depends("rank")
    @api.depends_context("uid")
    def _compute_position(self):
        self.position = 0
        # the rows of the same lists this user reads, products still sold (as the forms show them)
        lists_of = [("partner_id", "in", self.partner_id.ids)]
        if any(not row.partner_id for row in self):
            lists_of = ["|", *lists_of, ("partner_id", "=", False)]
        shown = self.sudo(False).search([("company_id", "in", self.company_id.ids), *lists_of,
                                         ("product_id.active", "=", True), ("product_id.sale_ok", "=", True)])
        customers = {}
        for row in shown.filtered("partner_id"):
            customers.setdefault((row.company_id, row.partner_id), []).append(row.id)
        kept = shown.filtered(lambda r: not r.partner_id)
        for ids in customers.values():  # each product once, as on the forms
            reorder, new = self._ai_lists(shown.browse(ids))
            kept |= reorder | new
        shown = kept

        def key(row):
            return tuple(row[name] for name in LIST_KEY)

        lists = {}
        for row in shown.sudo().sorted("rank"):
            lists.setdefault(key(row), []).append(row.id)
        for row in self:
            ids = lists.get(key(row), [])
            if row._origin.id in ids:
                row.position = ids.index(row._origin.id) + 1

    def _order_field_to_sql(self, alias, field_name, direction, nulls, query):
        if field_name != "rank":
            return super()._order_field_to_sql(alias, field_name, direction, nulls, query)
        # the lists' order, for everyone; the value itself stays hidden: for a user who may
        # not read every sale, rank orders rows within their list only (never interleaved
        # with another list's, which would place his rows among the hidden ones)
        order = super(CrmAiRecommendation, self.sudo())._order_field_to_sql(alias, "rank", direction, nulls, query)
        if self._ai_reads_all_sales():
            return order
        lists = [SQL.identifier(alias, name) for name in LIST_KEY]
        return SQL(", ").join([*lists, order])

    def _ai_own_purchases(self):
        """What the real user may read of the purchases these rows speak of, or None when he
        reads every sale: ``(named, dates)``.  ``named``: ids of the "also buy" rows whose
        product in the reason he may see the customer bought; ``dates``: for the purchase
        rows, the dates of the customer's orders of that product (company) he may read."""
        if self._ai_reads_all_sales():
            return None
        rows = self._origin.sudo()
        also = rows.filtered(lambda r: r.reason == "also_buy" and r.reason_product_id and r.partner_id)
        named = {row_id for row_id, in self.env.execute_query(SQL(
            "SELECT r.id FROM crm_ai_recommendation r WHERE r.id = ANY(%s) AND %s",
            also.ids, self._ai_bought_sql("r", SQL("r.reason_product_id"))))} if also else set()
        bought = rows.filtered(lambda r: r.reason in PURCHASE_REASONS and r.partner_id)
        dates = dict(self.env.execute_query(SQL("""
            SELECT r.id, array_agg(so.date_order ORDER BY so.date_order)
              FROM crm_ai_recommendation r
              JOIN LATERAL (SELECT DISTINCT sol.order_id %s) o ON TRUE
              JOIN sale_order so ON so.id = o.order_id
             WHERE r.id = ANY(%s)
             GROUP BY r.id""", self._ai_purchase_lines_sql("r", SQL("r.product_id")), bought.ids))) if bought else {}
        return named, dates

    @api.depends("reason", "reason_value", "reason_product_id")
    @api.depends_context("lang", "uid")
    def _compute_reason_text(self):
        """The reason in words.  A user who may not read every sale gets the counts and the
        rhythm of the orders he may read (the engine's rule: a rhythm from 3 orders on),
        and "customers who buy X" only for an X he may see the customer bought."""
        own = self._ai_own_purchases()
        # the saved row's reason, never a form's values (an onchange call could send another
        # "reason" to have reason_value, hidden from him, put in words); sudo: reason_value
        # and reason_product_id are read for the text only
        self._origin.sudo().fetch(["reason", "reason_value", "reason_product_id"])
        raw = [(row._origin or row).sudo() for row in self]
        countries = self.env["res.country"].browse(
            {int(r.reason_value) for r in raw if r.reason == "popular_group" and (r.reason_value or "").isdigit()})
        categories = self.env["product.category"].sudo().browse(
            {int(r.reason_value) for r in raw if r.reason == "new_in_category" and (r.reason_value or "").isdigit()})
        teams = self.env["crm.team"].sudo().browse(
            {int(r.reason_value) for r in raw if r.reason == "popular_team" and (r.reason_value or "").isdigit()})
        tags = self.env["crm.tag"].sudo().browse(
            {int(r.reason_value) for r in raw if r.reason == "popular_tag" and (r.reason_value or "").isdigit()})
        names = {("popular_group", str(c.id)): c.name for c in countries.exists()}
        names |= {("popular_team", str(t.id)): t.name for t in teams.exists()}
        names |= {("popular_tag", str(t.id)): t.name for t in tags.exists()}
        names |= {("new_in_category", str(c.id)): c.display_name for c in categories.exists()}
        for row, row_raw in zip(self, raw):
            value = row_raw.reason_value or ""
            reason = row_raw.reason
            if reason in PURCHASE_REASONS and own is not None:
                dates = own[1].get(row._origin.id) or []
                days = [(b - a).total_seconds() / 86400.0 for a, b in zip(dates, dates[1:])]
                rhythm = round(float(np.median(days))) if len(dates) >= MIN_ORDERS_FOR_RHYTHM else 0
                reason, value = ("every", str(rhythm)) if rhythm >= 1 else ("bought", str(len(dates) or ""))
            if reason == "every":
                row.reason_text = _("You order this about every day") if value == "1" else _(
                    "You order this about every %s days", value)
            elif reason == "bought":
                row.reason_text = {"": _("Bought before"), "1": _("Bought before (once)")}.get(
                    value) or _("Bought before (%s orders)", value)
            elif reason == "also_buy" and row_raw.reason_product_id and (own is None or row._origin.id in own[0]):
                row.reason_text = _("Customers who buy %s also buy this", row_raw.reason_product_id.display_name)
            elif reason in ("also_buy", "similar_customers"):
                row.reason_text = _("Customers who buy like this one buy this")
            elif reason == "popular_group":
                row.reason_text = _("Popular in %s", names.get((reason, value), _("their country")))
            elif reason == "popular_team":
                row.reason_text = _("Popular with %s's customers", names.get((reason, value), _("the team")))
            elif reason == "popular_tag":
                row.reason_text = _("Often ordered in %s deals", names.get((reason, value), _("such")))
            elif reason == "new_in_category":
                row.reason_text = _("New in %s, a category they buy", names.get((reason, value), _("a category")))
            else:
                row.reason_text = _("Popular with your customers")

    @api.model
    def _ai_rows(self, customers, company, list_type=None):
        """The rows of ``customers`` (commercial partners) in ``company``, products still sold."""
        domain = [("partner_id", "in", customers.ids), ("company_id", "=", company.id),
                  ("product_id.active", "=", True), ("product_id.sale_ok", "=", True)]
        if list_type:
            domain.append(("list_type", "=", list_type))
        return self.search(domain)

    @api.model
    def _ai_lists(self, rows):
        """``(order again, new)`` as a form shows them, each product once.  The engine completes
        a short history's "order again" list with the best new products (measured as such),
        which are also at the top of the "new" list: shown there only, with the reason that
        fits that list.  A product bought long ago may be on both too (the setting that lets
        long-ago purchases back in the new list): shown with its purchases, under "order again"."""
        purchases = rows.filtered(lambda r: r.list_type == "reorder" and r.reason in PURCHASE_REASONS)
        bought = set(purchases.product_id.ids)
        new = rows.filtered(lambda r: r.list_type == "new" and r.product_id.id not in bought)
        offered = set(new.product_id.ids)
        completed = rows.filtered(lambda r: r.list_type == "reorder" and r.reason not in PURCHASE_REASONS
                                  and r.product_id.id not in offered)
        return purchases | completed, new

    @api.model
    def _ai_lead_rows(self, lead, company):
        """New-product rows for a lead without a customer, from what the lead says: its tags'
        (the first tag with a list), else its country's, else its team's (every lead has a team,
        often the default one: the weakest hint), else everyone's."""
        base = [("partner_id", "=", False), ("company_id", "=", company.id), ("list_type", "=", "new"),
                ("product_id.active", "=", True), ("product_id.sale_ok", "=", True)]
        rows = self.search([*base, ("tag_id", "in", lead.tag_ids.ids)]) if lead.tag_ids else self.browse()
        if rows:
            first = next(tag for tag in lead.tag_ids if tag in rows.tag_id)
            return rows.filtered(lambda r: r.tag_id == first)
        for field, value in (("country_id", lead.country_id), ("team_id", lead.team_id)):
            rows = self.search([*base, (field, "=", value.id)]) if value else self.browse()
            if rows:
                return rows
        return self.search([*base, ("country_id", "=", False), ("team_id", "=", False), ("tag_id", "=", False)])

    @api.model
    def _ai_search_customers(self, operator, value):
        """Domain on partners recommended a product matching ``(operator, value)`` (name or id)."""
        if operator not in ("=", "in", "ilike", "not ilike", "!=", "not in"):
            raise UserError(_("Unsupported search on recommended products: %s", operator))
        negative = operator in ("not ilike", "!=", "not in")
        positive = {"not ilike": "ilike", "!=": "=", "not in": "in"}.get(operator, operator)
        if isinstance(value, int) or (isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)):
            product_domain = [("id", positive, value)]
        else:
            product_domain = [("display_name", positive, value)]
        products = self.env["product.product"].with_context(active_test=False)._search(product_domain)
        customers = self.search([("product_id", "in", products), ("company_id", "=", self.env.company.id),
                                 ("partner_id", "!=", False)]).partner_id
        return [("commercial_partner_id", "not in" if negative else "in", customers.ids)]

    @api.model
    def _ai_action_quotation(self, partner, lead=None):
        """The quotation wizard for ``partner`` (and ``lead``), every recommended product ticked."""
        customer = partner.commercial_partner_id
        if not customer:
            raise UserError(_("Set a customer first: a quotation needs one."))
        company = (lead.company_id if lead else None) or self.env.company
        reorder, new = self._ai_lists(self._ai_rows(customer, company))  # each product once
        rows = reorder | new
        wizard = self.env["crm.ai.quotation.wizard"].create({
            "partner_id": partner.id, "lead_id": lead.id if lead else False,
            "recommendation_ids": [fields.Command.set(rows.ids)]})
        return {"type": "ir.actions.act_window", "name": _("Quotation with recommended products"),
                "res_model": "crm.ai.quotation.wizard", "res_id": wizard.id, "view_mode": "form", "target": "new"}


class CrmAiQuotationWizard(models.TransientModel):
    _name = "crm.ai.quotation.wizard"
    _description = "CRM AI: quotation from recommended products"

    partner_id = fields.Many2one("res.partner", "Customer", required=True)
    lead_id = fields.Many2one("crm.lead", "Opportunity")
    recommendation_ids = fields.Many2many("crm.ai.recommendation", string="Recommended products",
                                          help="Untick what the customer should not be offered.")

    def action_create_quotation(self):
        """A draft quotation for the customer (linked to the opportunity) with one line per chosen product."""
        self.ensure_one()
        products = self.recommendation_ids.product_id
        if not products:
            raise UserError(_("Choose at least one recommended product."))
        order = self.env["sale.order"].create({
            "partner_id": self.partner_id.id,
            "opportunity_id": self.lead_id.id or False,
            "team_id": self.lead_id.team_id.id or self.partner_id.team_id.id or False,
            "origin": self.lead_id.name or False,
            "order_line": [fields.Command.create({"product_id": product.id}) for product in products],
        })
        return {"type": "ir.actions.act_window", "res_model": "sale.order", "res_id": order.id,
                "view_mode": "form", "target": "current"}
