"""What the customer-value engines share: which partners they score, and a company's
orders as the pure engine reads them (``ml.customer_value``).

One row per confirmed sale order (state ``sale``) of the company, for the order's
commercial partner (contacts buy for their company), dated at ``date_order``, worth its
untaxed amount converted to the company currency at the order's own rate
(``currency_rate``, fixed by Odoo at the order date); a net-negative order is a return.
Cancelled, draft and quotation orders never count.

Posted customer credit notes are refunds (negative, company currency), on the same basis
as the orders:

* a credit note of a counted order's invoice (its lines linked to the order's lines) is a
  return only for what it takes below the order's amount: an order of 1,000 invoiced,
  credited and invoiced again ("reverse and create invoice") returned nothing; one
  invoiced and fully credited returned 1,000 (dated at its latest credit note).  Credit
  notes of cancelled orders, of other companies' orders and of down payments don't count;
* a credit note of an invoice that no counted order holds reverses revenue the orders
  never counted: it doesn't count either;
* a credit note on its own (no order, no reversed invoice: a goodwill gesture, a return
  booked by hand) counts at its amount.

Values are per company: a partner shared by several companies gets one segment and
one propensity in each, from that company's orders only (company-dependent fields),
so a salesperson never sees, nor learns from, another company's sales.
"""

import pandas as pd

from odoo.tools import SQL

from .crm_ai_engine import Param

#: A customer is described by his orders of the last this many days (segments).
DEFAULT_WINDOW_DAYS = 730
#: Below this many customers (commercial partners with a sale) a company gets no model.
DEFAULT_MIN_CUSTOMERS = 40


class CustomerValueEngine:
    """Mixin of the customer-value engines (put before ``CrmAiEngine``)."""

    target_model = "res.partner"
    shared_records = False  # values are company-dependent: every order has a company
    params_common = {
        "min_customers": Param("int", DEFAULT_MIN_CUSTOMERS, minimum=10, maximum=10_000_000),
    }

    # -- records ------------------------------------------------------------------------------
    def scope_sql(self, alias):
        """Active partners of the company or shared, but not the company's own partners
        nor internal users' (they are not customers); contacts included (they show
        their commercial partner's values)."""
        t = SQL.identifier(alias)
        return SQL("""%(t)s.active AND (%(t)s.company_id IS NULL OR %(t)s.company_id = %(company)s)
            AND NOT EXISTS (SELECT 1 FROM res_users u WHERE u.partner_id = %(t)s.id AND NOT u.share)
            AND NOT EXISTS (SELECT 1 FROM res_company rc WHERE rc.partner_id IN (%(t)s.id, %(t)s.commercial_partner_id))""",
                   t=t, company=self.company.id)

    def changed_sql(self, alias):
        """An order or credit note of the customer changed since it was scored.

        Both go through the partner (``partner_id`` is indexed, ``account_move.commercial_partner_id``
        is not): matching on the credit note's commercial partner made PostgreSQL read every
        credit note of the database for each customer (the 50,000-customer database of
        bench/bench_customer_value_odoo.py plus 20,000 posted credit notes: 395 s for a pending
        query that finds nothing, 0.8 s this way)."""
        t = SQL.identifier(alias)
        date = self.column_sql(alias, self.date_field)
        return SQL("""EXISTS (SELECT 1 FROM sale_order so JOIN res_partner sp ON sp.id = so.partner_id
                              WHERE sp.commercial_partner_id = %(t)s.commercial_partner_id
                                AND so.company_id = %(company)s AND so.write_date > %(date)s)
                   OR EXISTS (SELECT 1 FROM account_move m JOIN res_partner mp ON mp.id = m.partner_id
                              WHERE mp.commercial_partner_id = %(t)s.commercial_partner_id
                                AND m.company_id = %(company)s AND m.move_type = 'out_refund'
                                AND m.write_date > %(date)s)""", t=t, company=self.company.id, date=date)

    def commercial_partners(self, ids):
        """``{partner id: commercial partner id}``."""
        self.env["res.partner"].flush_model(["commercial_partner_id"])
        self.env.cr.execute(SQL("SELECT id, COALESCE(commercial_partner_id, id) FROM res_partner WHERE id = ANY(%s)",
                                list(ids)))
        return dict(self.env.cr.fetchall())

    def now(self):
        """The database's clock in UTC (as write_date and the score dates)."""
        self.env.cr.execute("SELECT clock_timestamp() AT TIME ZONE 'UTC'")
        return self.env.cr.fetchone()[0]

    # -- orders -------------------------------------------------------------------------------
    def orders(self, commercial_ids=None, until=None):
        """The company's orders and refunds: DataFrame partner (commercial), date, amount
        (company currency, refunds negative), is_refund; only ``commercial_ids``' when given."""
        self.env["sale.order"].flush_model()
        self.env["account.move"].flush_model()

        def condition(partner_column, date_column):
            parts = [SQL("TRUE")]
            if commercial_ids is not None:
                parts.append(SQL("%s = ANY(%s)", SQL(partner_column), [int(i) for i in commercial_ids]))
            if until is not None:
                parts.append(SQL("%s < %s", SQL(date_column), until))
            return SQL(" AND ").join(parts)

        move_day = SQL("COALESCE(m.invoice_date, m.date)::timestamp")
        self.env.cr.execute(SQL("""
            WITH credited_orders AS (  -- orders with a posted credit note (most have none)
                SELECT DISTINCT sol.order_id
                  FROM account_move m
                  JOIN res_partner mp ON mp.id = m.partner_id  -- indexed, unlike account_move.commercial_partner_id
                  JOIN account_move_line aml ON aml.move_id = m.id
                  JOIN sale_order_line_invoice_rel rel ON rel.invoice_line_id = aml.id
                  JOIN sale_order_line sol ON sol.id = rel.order_line_id
                 WHERE m.move_type = 'out_refund' AND m.state = 'posted' AND m.company_id = %(company)s
                   AND %(move_condition)s
            ), linked AS (  -- their posted invoice and credit note lines (down payments aside)
                SELECT DISTINCT so.id AS order_id, aml.id AS line_id, m.move_type, %(move_day)s AS day,
                       CASE WHEN m.move_type = 'out_refund' THEN aml.balance ELSE -aml.balance END AS amount
                  FROM credited_orders c
                  JOIN sale_order so ON so.id = c.order_id
                  JOIN res_partner p ON p.id = so.partner_id
                  JOIN sale_order_line sol ON sol.order_id = so.id AND NOT COALESCE(sol.is_downpayment, FALSE)
                  JOIN sale_order_line_invoice_rel rel ON rel.order_line_id = sol.id
                  JOIN account_move_line aml ON aml.id = rel.invoice_line_id
                  JOIN account_move m ON m.id = aml.move_id
                 WHERE so.state = 'sale' AND so.company_id = %(company)s AND %(so_condition)s
                   AND m.move_type IN ('out_invoice', 'out_refund') AND m.state = 'posted'
                   AND m.company_id = %(company)s AND %(move_until)s
            ), per_order AS (
                SELECT order_id, MAX(day) FILTER (WHERE move_type = 'out_refund') AS day,
                       COALESCE(SUM(amount) FILTER (WHERE move_type = 'out_invoice'), 0) AS invoiced,
                       COALESCE(SUM(amount) FILTER (WHERE move_type = 'out_refund'), 0) AS credited
                  FROM linked GROUP BY order_id
            )
            SELECT p.commercial_partner_id, so.date_order,
                   so.amount_untaxed / COALESCE(NULLIF(so.currency_rate, 0), 1), so.amount_untaxed < 0
              FROM sale_order so
              JOIN res_partner p ON p.id = so.partner_id
             WHERE so.state = 'sale' AND so.company_id = %(company)s AND %(so_condition)s
             UNION ALL
            -- a counted order's return: what its credit notes take below the order's amount
            SELECT p.commercial_partner_id, o.day,
                   -GREATEST(0, o.credited - GREATEST(0, o.invoiced
                                                         - so.amount_untaxed / COALESCE(NULLIF(so.currency_rate, 0), 1))),
                   TRUE
              FROM per_order o
              JOIN sale_order so ON so.id = o.order_id
              JOIN res_partner p ON p.id = so.partner_id
             WHERE o.credited > 0
               AND o.credited > GREATEST(0, o.invoiced - so.amount_untaxed / COALESCE(NULLIF(so.currency_rate, 0), 1))
             UNION ALL
            -- a credit note on its own (no order line, no reversed invoice)
            SELECT mp.commercial_partner_id, %(move_day)s, m.amount_untaxed_signed, TRUE
              FROM account_move m
              JOIN res_partner mp ON mp.id = m.partner_id
             WHERE m.move_type = 'out_refund' AND m.state = 'posted' AND m.company_id = %(company)s
               AND m.reversed_entry_id IS NULL AND %(move_condition)s
               AND NOT EXISTS (SELECT 1 FROM account_move_line aml
                                 JOIN sale_order_line_invoice_rel rel ON rel.invoice_line_id = aml.id
                                WHERE aml.move_id = m.id)
        """, company=self.company.id, move_day=move_day,
            move_until=SQL("%s < %s", move_day, until) if until is not None else SQL("TRUE"),
            so_condition=condition("p.commercial_partner_id", "so.date_order"),
            move_condition=condition("mp.commercial_partner_id", "COALESCE(m.invoice_date, m.date)::timestamp")))
        frame = pd.DataFrame.from_records(self.env.cr.fetchall(), columns=["partner", "date", "amount", "is_refund"])
        frame["partner"] = frame["partner"].astype("int64")
        frame["date"] = pd.to_datetime(frame["date"])
        frame["amount"] = pd.to_numeric(frame["amount"]).astype(float)
        frame["is_refund"] = frame["is_refund"].astype(bool)
        return frame

    def customer_count(self, days_from=None, days_to=0):
        """Commercial partners with a confirmed sale order of the company dated from
        ``days_from`` days ago (None: ever) to ``days_to`` days ago."""
        self.env["sale.order"].flush_model()
        self.env.cr.execute(SQL("""
            SELECT COUNT(DISTINCT p.commercial_partner_id)
              FROM sale_order so JOIN res_partner p ON p.id = so.partner_id
             WHERE so.state = 'sale' AND so.company_id = %(company)s AND so.amount_untaxed >= 0
               AND (%(from)s::int IS NULL OR so.date_order >= %(now)s - make_interval(days => %(from)s::int))
               AND so.date_order < %(now)s - make_interval(days => %(to)s::int)""",
                                company=self.company.id, now=SQL("(clock_timestamp() AT TIME ZONE 'UTC')"),
                                **{"from": days_from, "to": days_to}))
        return self.env.cr.fetchone()[0]
