"""Customer value: segments and repeat-purchase propensity on res.partner, from sale orders."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, new_test_user, tagged

from ..models.crm_ai_segment import SEGMENT_CODES
from ..models.engine_customer_segment import STAY_MARGIN
from .common import CrmAiCustomerMixin


@tagged("crm_ai", "post_install", "-at_install")
class TestCustomerValue(CrmAiCustomerMixin, TransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls._crm_ai_customer_params()
        cls.customers = cls._crm_ai_customers(n=60)
        cls.prospect = cls.env["res.partner"].create({"name": "crm_ai prospect", "is_company": True})
        cls.Driver = cls.env["crm.ai.driver"]
        cls.Driver._ai_train_unit(cls.SEGMENT, cls.company)
        cls.Driver._ai_train_unit(cls.REPEAT, cls.company)

    def score(self, partners=None):
        for task in (self.SEGMENT, self.REPEAT):
            self.Driver._ai_score_pair(task, self.company)

    def test_segments_rfm_and_propensity_on_partners(self):
        self.score()
        loyal, lapsed = self.customers[0], self.customers[1]
        for partner in (loyal, lapsed):
            self.assertEqual(partner.ai_segment_state, "scored")
            self.assertTrue(partner.ai_segment_id)
            self.assertEqual(partner.ai_propensity_state, "scored")
        # R, F, M are the customer's own orders
        self.env.cr.execute("""SELECT count(*), sum(amount_untaxed), min(now() AT TIME ZONE 'UTC' - date_order)
                                 FROM sale_order WHERE partner_id = %s AND state = 'sale'""", (loyal.id,))
        count, total, recency = self.env.cr.fetchone()
        self.assertEqual(loyal.ai_rfm_frequency, count)
        self.assertAlmostEqual(loyal.ai_rfm_monetary, float(total), places=2)
        self.assertAlmostEqual(loyal.ai_rfm_recency_days, recency.total_seconds() / 86400, delta=1)
        # the recent, frequent, big customers are better placed than those who stopped buying
        loyal_codes = set(self.customers[0::4].mapped("ai_segment_id.code"))
        lapsed_codes = set(self.customers[1::4].mapped("ai_segment_id.code"))
        self.assertTrue(loyal_codes & {"champions", "loyal", "potential_loyalists"}, loyal_codes)
        self.assertTrue(lapsed_codes <= {"at_risk", "cant_lose", "hibernating", "lost", "need_attention"}, lapsed_codes)
        self.assertGreater(sum(self.customers[0::4].mapped("ai_propensity")) / 15,
                           sum(self.customers[1::4].mapped("ai_propensity")) / 15 + 20)
        self.assertGreaterEqual(len(set(self.customers.mapped("ai_segment_id"))), 3)
        self.assertIn("\n", loyal.ai_propensity_reasons)  # reasons, in words
        self.assertIn("<li", loyal.ai_propensity_reasons_html)
        # a prospect: "No purchase yet", and no repeat-purchase propensity
        self.assertEqual(self.prospect.ai_segment_id.code, "no_purchase")
        self.assertFalse(self.prospect.ai_rfm_frequency)
        self.assertEqual(self.prospect.ai_propensity_state, "scored")
        self.assertFalse(self.prospect.ai_propensity_reason_data)
        self.env.flush_all()
        self.env.cr.execute("SELECT ai_propensity->%s FROM res_partner WHERE id = %s",
                            (str(self.company.id), self.prospect.id))
        self.assertIsNone(self.env.cr.fetchone()[0], "no made-up 0 % for a prospect")

    def test_registry_metrics_and_baselines(self):
        Registry = self.env["crm.ai.model"]
        repeat = Registry._ai_active(self.REPEAT, self.company)
        segment = Registry._ai_active(self.SEGMENT, self.company)
        self.assertTrue(repeat and segment)
        for key in ("auc", "brier", "calibration_error"):
            self.assertIn(key, repeat.metrics["model"])
            self.assertIn(key, repeat.metrics["baseline"])
        self.assertEqual(repeat.baseline, "RFM quintile score")
        self.assertGreater(segment.score, segment.baseline_score, "clusters are better separated than the RFM grid")
        self.assertIn("k=", segment.hyperparameters)
        self.score()
        scored = self.env["res.partner"].search_count([("ai_segment_model_id", "=", segment.id)])
        self.assertGreaterEqual(scored, len(self.customers))
        self.assertEqual(segment.with_company(self.company).record_count, scored,
                         "company-dependent model fields are counted in the model's company")
        action = segment.action_view_records()
        self.assertEqual(action["context"]["allowed_company_ids"][0], self.company.id)

    def test_scoring_is_data_not_an_edit(self):
        """Scores written without bumping write_date (no automation, no chatter)."""
        partner = self.customers[2]
        self.env.cr.execute("UPDATE res_partner SET write_date = '2020-01-01' WHERE id = %s", (partner.id,))
        partner.invalidate_recordset()
        messages = len(partner.message_ids)
        self.score()
        partner.invalidate_recordset()
        self.assertEqual(partner.write_date, fields.Datetime.to_datetime("2020-01-01 00:00:00"))
        self.assertEqual(len(partner.message_ids), messages)
        self.assertTrue(partner.ai_segment_id)

    def test_contacts_carry_their_company_values(self):
        contact = self.env["res.partner"].create({"name": "crm_ai buyer", "parent_id": self.customers[0].id})
        self._crm_ai_orders([(contact, 1, 700.0, "sale")])
        self.score()
        company = self.customers[0]
        self.assertEqual(contact.ai_segment_id, company.ai_segment_id)
        self.assertEqual(contact.ai_rfm_frequency, company.ai_rfm_frequency)
        self.assertEqual(contact.ai_propensity, company.ai_propensity)
        self.assertLessEqual(company.ai_rfm_recency_days, 1, "the contact's order is the company's")
        # the Segments counts count customers, not their contacts too
        segment = company.ai_segment_id
        self.assertEqual(segment.partner_count, self.env["res.partner"].search_count(
            [("ai_segment_id", "=", segment.id), ("parent_id", "=", False)]))

    def test_cancelled_quotation_and_refund_inputs(self):
        Partner = self.env["res.partner"]
        cancelled, quoted, refunded, returned = Partner.create([{"name": f"crm_ai {n}", "is_company": True}
                                                                for n in ("cancelled", "quoted", "refunded", "returned")])
        self._crm_ai_orders([(cancelled, 10, 900.0, "cancel"), (quoted, 5, 900.0, "draft"),
                             (refunded, 20, 100.0, "sale"), (returned, 30, 400.0, "sale"),
                             (returned, 10, -600.0, "sale")])
        credit_note = self.env["account.move"].create({
            "move_type": "out_refund", "partner_id": refunded.id, "invoice_date": fields.Date.today(),
            "invoice_line_ids": [(0, 0, {"name": "refund", "quantity": 1, "price_unit": 300.0, "tax_ids": [(6, 0, [])]})],
        })
        credit_note.action_post()
        self.score()
        self.assertEqual(cancelled.ai_segment_id.code, "no_purchase", "a cancelled order is no purchase")
        self.assertEqual(quoted.ai_segment_id.code, "no_purchase", "a quotation is no purchase")
        self.assertEqual(refunded.ai_rfm_frequency, 1, "a credit note is not an order")
        self.assertAlmostEqual(refunded.ai_rfm_monetary, -200.0, places=2, msg="refunds larger than sales")
        self.assertNotEqual(refunded.ai_segment_id.code, "no_purchase")
        self.assertEqual(returned.ai_rfm_frequency, 1, "a net-negative order is a return")
        self.assertAlmostEqual(returned.ai_rfm_monetary, -200.0, places=2)

    def test_credit_notes_count_what_they_take_from_counted_orders(self):
        """Orders are the revenue: a credit note is a return only for what it takes below a
        counted order's amount (real flows: confirm, invoice, credit note wizard)."""
        Partner = self.env["res.partner"]
        returned, corrected, cancelled, direct = Partner.create(
            [{"name": f"crm_ai {n}", "is_company": True} for n in ("returned", "corrected", "cancelled", "direct")])
        product = self.env["product.product"].create({"name": "crm_ai invoiced", "type": "service",
                                                      "invoice_policy": "order", "taxes_id": [(6, 0, [])]})

        # documents dated in the past: "today" in the user's time zone may be tomorrow in UTC, and a
        # document dated after the scoring's moment is not counted yet
        yesterday, before = fields.Date.today() - timedelta(days=1), fields.Date.today() - timedelta(days=2)

        def invoiced_order(partner, amount):
            order = self.env["sale.order"].create({"partner_id": partner.id, "order_line": [(0, 0, {
                "product_id": product.id, "product_uom_qty": 1, "price_unit": amount, "tax_id": [(6, 0, [])]})]})
            order.action_confirm()
            invoice = order._create_invoices()
            invoice.invoice_date = before
            invoice.action_post()
            return order, invoice

        def credit(invoice, modify=False):
            wizard = self.env["account.move.reversal"].with_context(
                active_model="account.move", active_ids=invoice.ids).create(
                {"journal_id": invoice.journal_id.id, "date": yesterday})
            new = self.env["account.move"].browse((wizard.modify_moves() if modify else wizard.refund_moves())["res_id"])
            new.invoice_date = yesterday
            new.action_post()  # the credit note, or the corrected invoice ("reverse and create invoice")

        for partner in (returned, corrected, cancelled, direct):
            invoiced_order(partner, 500.0)  # kept
        credit(invoiced_order(returned, 1000.0)[1])  # invoiced, credited: returned
        returned_partly, invoice = invoiced_order(returned, 400.0)
        credit_note = invoice._reverse_moves()
        credit_note.invoice_line_ids.price_unit = 100.0  # a quarter of it back
        credit_note.invoice_date = yesterday
        credit_note.action_post()
        credit(invoiced_order(corrected, 1000.0)[1], modify=True)  # credited and invoiced again: nothing returned
        order, invoice = invoiced_order(cancelled, 1000.0)
        credit(invoice)
        self.env.flush_all()
        self.env.cr.execute("UPDATE sale_order SET state = 'cancel' WHERE id = %s", (order.id,))  # cancelled: no sale
        deposit = self.env["sale.order"].create({"partner_id": direct.id, "order_line": [(0, 0, {
            "product_id": product.id, "product_uom_qty": 1, "price_unit": 1000.0, "tax_id": [(6, 0, [])]})]})
        deposit.action_confirm()
        self.env["sale.advance.payment.inv"].with_context(active_model="sale.order", active_ids=deposit.ids).create(
            {"advance_payment_method": "percentage", "amount": 30}).create_invoices()
        deposit.invoice_ids.invoice_date = before
        deposit.invoice_ids.action_post()
        credit(deposit.invoice_ids)  # a down payment paid back: the order of 1,000 stands, nothing returned
        manual = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": direct.id, "invoice_date": before,
            "invoice_line_ids": [(0, 0, {"name": "hours", "quantity": 1, "price_unit": 300.0, "tax_ids": [(6, 0, [])]})]})
        manual.action_post()
        credit(manual)  # an invoice no order holds (never counted): its credit note takes nothing
        self.env.invalidate_all()
        self.score()
        for partner, frequency, monetary in ((returned, 3, 500.0 + 300.0), (corrected, 2, 1500.0),
                                             (cancelled, 1, 500.0), (direct, 2, 1500.0)):
            self.assertEqual(partner.ai_rfm_frequency, frequency, partner.name)
            self.assertAlmostEqual(partner.ai_rfm_monetary, monetary, places=2, msg=partner.name)
        self.assertTrue(returned_partly.invoice_ids.filtered(lambda m: m.move_type == "out_refund"))
        self.assertTrue(deposit.invoice_ids.filtered(lambda m: m.move_type == "out_refund"))

    def test_own_documents_salespeople_read_the_reasons_without_the_figures(self):
        """Every figure of a customer's reasons is made of all his orders, whoever sold them."""
        self.score()
        customer = self.customers[0]
        own = new_test_user(self.env, "crm_ai_cv_own", groups="sales_team.group_sale_salesman")
        every = new_test_user(self.env, "crm_ai_cv_every", groups="sales_team.group_sale_salesman_all_leads")
        with_figures = customer.with_user(every).ai_propensity_reasons.splitlines()
        without = customer.with_user(own).ai_propensity_reasons.splitlines()
        self.assertTrue(all(":" in line for line in with_figures), with_figures)
        self.assertEqual(without, [line.split(":")[0] + " " + line.rsplit(" ", 1)[1] for line in with_figures])
        self.assertTrue(customer.with_user(own).ai_propensity_reasons_html)

    def test_customers_silent_for_longer_than_the_window_are_lost(self):
        gone = self.env["res.partner"].create({"name": "crm_ai long gone", "is_company": True})
        self._crm_ai_orders([(gone, 800, 900.0, "sale"), (gone, 900, 900.0, "sale")])  # window: 730 days
        self.score()
        self.assertEqual(gone.ai_segment_id.code, "lost")
        self.assertFalse(gone.ai_rfm_frequency, "no order in the window")

    def test_scoring_hands_the_current_segments_to_the_segmenter(self):
        """A customer keeps its segment unless another is clearly closer: the engine gives
        the segmenter each customer's current segment and the margin."""
        self.score()
        engine = self.Driver._ai_engine(self.SEGMENT, self.company)
        calls = []

        class Recorder:
            def predict(self, X, previous=None, margin=None):
                calls.append((list(X.index), list(previous), margin))
                return ["Lost"] * len(X)

        engine.score(self.customers[:4].ids, Recorder(), None, fields.Datetime.now())
        (ids, previous, margin), = calls
        name_of = {code: name for code, (name, _colour) in SEGMENT_CODES.items()}
        self.assertEqual(previous, [name_of[p.ai_segment_id.code] for p in self.env["res.partner"].browse(ids)])
        self.assertEqual(margin, STAY_MARGIN)
        self.assertGreater(margin, 0)

    def test_a_new_credit_note_makes_the_customer_pending(self):
        self.score()
        customer = self.customers[2]
        contact = self.env["res.partner"].create({"name": "crm_ai refund contact", "parent_id": customer.id})
        self.env.flush_all()
        # scored an hour ago and not edited since: only the credit note (on a contact) can make it pending
        self.env.cr.execute("""UPDATE res_partner SET ai_segment_date = jsonb_set(ai_segment_date, ARRAY[%s],
                                   to_jsonb(to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', 'YYYY-MM-DD HH24:MI:SS'))),
                                   write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'
                                WHERE id = %s""", (str(self.company.id), customer.id))
        self.env.cr.execute("UPDATE sale_order SET write_date = now() AT TIME ZONE 'UTC' - interval '3 hours' "
                            "WHERE partner_id = %s", (customer.id,))
        self.env["res.partner"].invalidate_model()
        engine = self.Driver._ai_engine(self.SEGMENT, self.company)
        model = self.env["crm.ai.model"]._ai_active(self.SEGMENT, self.company)
        self.assertNotIn(customer.id, self.Driver._ai_pending_ids(engine, model))
        credit_note = self.env["account.move"].create({
            "move_type": "out_refund", "partner_id": contact.id, "invoice_date": fields.Date.today(),
            "invoice_line_ids": [(0, 0, {"name": "refund", "quantity": 1, "price_unit": 50.0, "tax_ids": [(6, 0, [])]})],
        })
        credit_note.action_post()
        self.env.flush_all()
        self.assertIn(customer.id, self.Driver._ai_pending_ids(engine, model))

    def test_foreign_currency_converted_at_the_order_date(self):
        usd = self.env.ref("base.USD")
        other = usd if self.company.currency_id != usd else self.env.ref("base.EUR")
        other.active = True
        rates = self.env["res.currency.rate"]
        rates.search([("currency_id", "=", other.id), ("company_id", "in", [self.company.id, False])]).unlink()
        today = fields.Date.today()
        rates.create([{"currency_id": other.id, "name": today - timedelta(days=60), "rate": 2.0,
                       "company_id": self.company.id},
                      {"currency_id": other.id, "name": today - timedelta(days=5), "rate": 4.0,
                       "company_id": self.company.id}])
        partner = self.env["res.partner"].create({"name": "crm_ai abroad", "is_company": True})
        self._crm_ai_orders([(partner, 30, 1000.0, "sale")], currency=other)  # 1000 at the rate of 2
        self.score()
        self.assertAlmostEqual(partner.ai_rfm_monetary, 500.0, places=2)

    def test_archived_partners_are_not_scored(self):
        archived = self.customers[3]
        archived.active = False
        self.env.cr.execute("UPDATE res_partner SET ai_segment_id = NULL, ai_segment_state = NULL WHERE id = %s",
                            (archived.id,))
        archived.invalidate_recordset()
        self.score()
        self.assertFalse(archived.ai_segment_id)
        self.assertFalse(archived.ai_segment_state)

    def test_internal_users_and_companies_are_not_customers(self):
        own_contact = self.env["res.partner"].create({"name": "crm_ai colleague", "parent_id": self.company.partner_id.id})
        self.score()
        self.assertFalse(own_contact.ai_segment_state, "the company's own contacts are not customers")
        admin = self.env.ref("base.user_admin").partner_id
        self.assertTrue(admin.active)
        self.assertFalse(admin.ai_segment_state)
        self.assertFalse(self.company.partner_id.ai_segment_state)

    def test_an_outlier_does_not_get_a_segment_of_its_own(self):
        whale = self.env["res.partner"].create({"name": "crm_ai whale", "is_company": True})
        self._crm_ai_orders([(whale, 15, 50_000_000.0, "sale"), (whale, 45, 80_000_000.0, "sale")])
        self.Driver._ai_train_unit(self.SEGMENT, self.company)
        self.score()
        self.assertGreater(whale.ai_segment_id.partner_count, 1)

    def test_segments_do_not_flip_on_noise_and_moves_are_logged(self):
        self.score()
        History = self.env["crm.ai.segment.history"]
        first = {p.id: p.ai_segment_id for p in self.customers}
        logged = History.search_count([("partner_id", "in", self.customers.ids)])
        self.assertEqual(logged, len(self.customers), "the first placement is logged")
        # retrained on nearly the same data (one small order more), then rescored: nobody moves
        self._crm_ai_orders([(self.customers[5], 2, 10.0, "sale")])
        self.Driver._ai_train_unit(self.SEGMENT, self.company)
        self.env.cr.execute("UPDATE res_partner SET ai_segment_date = NULL WHERE id = ANY(%s)", (self.customers.ids,))
        self.env["res.partner"].invalidate_model()
        self.score()
        moved = [p for p in self.customers if p.id != self.customers[5].id and p.ai_segment_id != first[p.id]]
        self.assertFalse(moved, "segments flipped on noise")
        # a lapsed customer who comes back buying a lot moves, and the move is in its history and on its leads
        lapsed = self.customers[1]
        lead = self.env["crm.lead"].create({"name": "crm_ai lead of a lapsed customer", "partner_id": lapsed.id})
        self.assertEqual(lead.ai_segment_id, lapsed.ai_segment_id)
        before = lapsed.ai_segment_id
        # scored an hour ago, not edited since, but orders saved since: pending (and only this customer is)
        self.env.flush_all()
        self.env.cr.execute("""UPDATE res_partner SET ai_segment_date = jsonb_set(ai_segment_date, ARRAY[%s],
                                   to_jsonb(to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', 'YYYY-MM-DD HH24:MI:SS'))),
                                   write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'
                                WHERE id = %s""", (str(self.company.id), lapsed.id))
        self.env["res.partner"].invalidate_model()
        self._crm_ai_orders([(lapsed, d, 5000.0, "sale") for d in (1, 3, 6, 9, 12, 15, 18, 21, 24, 27)])
        engine = self.Driver._ai_engine(self.SEGMENT, self.company)
        pending = self.Driver._ai_pending_ids(engine, self.env["crm.ai.model"]._ai_active(self.SEGMENT, self.company))
        self.assertIn(lapsed.id, pending)
        self.assertNotIn(self.customers[2].id, pending)
        self.score()
        self.assertNotEqual(lapsed.ai_segment_id, before)
        move = History.search([("partner_id", "=", lapsed.id)], limit=1)
        self.assertEqual((move.segment_from_id, move.segment_to_id), (before, lapsed.ai_segment_id))
        self.assertEqual(lapsed.ai_segment_history_ids[0], move)
        lead.invalidate_recordset()
        self.assertEqual(lead.ai_segment_id, lapsed.ai_segment_id, "the lead follows its customer's segment")

    def test_contacts_views_without_sales_rights_show_no_ai_value(self):
        """An internal user without any Sales right opens Contacts: the views load, and
        nothing of CRM AI is in them (the fields are for salespeople)."""
        user = new_test_user(self.env, "crm_ai_cv_stock", groups="base.group_user")
        views = self.env["res.partner"].with_user(user).get_views(
            [(False, "form"), (False, "list"), (False, "kanban"), (False, "search")])
        for view_type, view in views["views"].items():
            self.assertNotIn("ai_segment_id", view["arch"], view_type)
            self.assertNotIn("ai_propensity", view["arch"], view_type)
        self.assertNotIn("ai_segment_id", views["models"]["res.partner"]["fields"])
        salesman = new_test_user(self.env, "crm_ai_cv_views", groups="sales_team.group_sale_salesman")
        views = self.env["res.partner"].with_user(salesman).get_views([(False, "form"), (False, "kanban")])
        self.assertIn("ai_segment_id", views["views"]["form"]["arch"])

    def test_merging_scored_contacts_works_and_copies_no_score(self):
        self.score()
        keep, merged = self.customers[8], self.customers[9]
        self.assertTrue(keep.ai_segment_id and merged.ai_segment_id)
        # as an administrator (not the superuser): the copied values go through write()
        admin = self.env.ref("base.user_admin")
        wizard = self.env["base.partner.merge.automatic.wizard"].with_user(admin).create({})
        wizard._merge((keep + merged).ids, keep.with_user(admin))
        self.assertFalse(merged.exists())
        self.assertTrue(keep.exists())

    def test_filters_and_group_by_segment(self):
        self.score()
        Partner = self.env["res.partner"]
        champions = Partner.search([("ai_segment_id.code", "=", self.customers[0].ai_segment_id.code)])
        self.assertIn(self.customers[0], champions)
        groups = dict(Partner._read_group([("id", "in", self.customers.ids)], ["ai_segment_id"], ["__count"]))
        self.assertEqual(sum(groups.values()), len(self.customers))
        high = Partner.search([("ai_propensity_high", "=", True), ("id", "in", self.customers.ids)])
        self.assertTrue(high)
        self.assertTrue(all(p.ai_propensity >= 60 for p in high))
        leads = self.env["crm.lead"].create([{"name": "crm_ai seg lead", "partner_id": p.id}
                                             for p in self.customers[:6]])
        lead_groups = dict(self.env["crm.lead"]._read_group([("id", "in", leads.ids)], ["ai_segment_id"], ["__count"]))
        self.assertEqual(sum(lead_groups.values()), 6)
        self.assertTrue(all(lead_groups))

    def test_salespeople_read_segments_but_cannot_forge_them(self):
        self.score()
        salesman = new_test_user(self.env, "crm_ai_cv_salesman", groups="sales_team.group_sale_salesman")
        partner = self.customers[0].with_user(salesman)
        self.assertTrue(partner.ai_segment_id.name)
        other = self.env["crm.ai.segment"]._ai_segments(self.company)["lost"]
        for vals in ({"ai_segment_id": other}, {"ai_propensity": 99.0}, {"ai_rfm_monetary": 1e9},
                     {"ai_segment_state": "scored"}):
            with self.assertRaises(AccessError):
                partner.write(vals)
        with self.assertRaises(AccessError):
            self.env["crm.ai.segment"].with_user(salesman).create({"name": "VIP", "code": "champions"})
        with self.assertRaises(AccessError):
            partner.ai_segment_id.write({"name": "Renamed"})
        manager = new_test_user(self.env, "crm_ai_cv_manager", groups="sales_team.group_sale_manager")
        segment = self.customers[0].ai_segment_id.with_user(manager)
        segment.write({"name": "Our best", "description": "Call them first."})
        self.assertEqual(self.customers[0].ai_segment_id.name, "Our best")
        for vals in ({"code": "lost"}, {"company_id": self.env["res.company"].create({"name": "crm_ai X"}).id}):
            with self.assertRaises(AccessError, msg=vals):
                segment.write(vals)


@tagged("crm_ai", "post_install", "-at_install")
class TestCustomerValueCompanies(CrmAiCustomerMixin, TransactionCase):
    """A partner shared by two companies has one segment per company, from that
    company's orders only; a company with too few customers has none, and says so."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_customer_params()
        cls.company_a = cls.env.company
        cls.company_b = cls.env["res.company"].create({"name": "crm_ai company B"})
        cls.env.user.company_ids |= cls.company_b
        cls.customers = cls._crm_ai_customers(n=30)
        cls.shared = cls.customers[0]  # loyal in A
        cls.small = cls._crm_ai_customers(n=4, company=cls.company_b, prefix="crm_ai B customer")
        cls._crm_ai_orders([(cls.shared, 300, 100.0, "sale")], company=cls.company_b)  # one old order in B
        cls.Driver = cls.env["crm.ai.driver"]

    def test_one_segment_per_company_and_too_few_customers(self):
        results = {}
        for company in (self.company_a, self.company_b):
            for task in (self.SEGMENT, self.REPEAT):
                results[task, company] = self.Driver._ai_train_unit(task, company)
                self.Driver._ai_score_pair(task, company)
        in_a, in_b = self.shared.with_company(self.company_a), self.shared.with_company(self.company_b)
        self.assertEqual(in_a.ai_segment_state, "scored")
        self.env.cr.execute("SELECT count(*) FROM sale_order WHERE partner_id = %s AND company_id = %s AND state = 'sale'",
                            (self.shared.id, self.company_a.id))
        self.assertEqual(in_a.ai_rfm_frequency, self.env.cr.fetchone()[0], "A's orders only, not B's")
        self.assertEqual(in_a.ai_segment_id.company_id, self.company_a)
        # company B: 5 customers, fewer than the minimum: no model, a clear state, no made-up segment
        self.assertEqual(in_b.ai_segment_state, "insufficient_data")
        self.assertFalse(in_b.ai_segment_id)
        self.assertFalse(in_b.ai_rfm_frequency, "B's values never come from A's orders")
        self.assertEqual(in_b.ai_propensity_state, "insufficient_data")
        self.assertFalse(self.env["crm.ai.model"]._ai_active(self.SEGMENT, self.company_b))
        result = results[self.SEGMENT, self.company_b]
        self.assertEqual(result["status"], "insufficient_data")
        self.assertIn("5 customers with a confirmed sale order", result["message"])
        self.assertEqual(results[self.SEGMENT, self.company_a]["status"], "active")
        # a company that falls below the minimum: its customers' leads lose their segment too
        lead = self.env["crm.lead"].create({"name": "crm_ai lead A", "partner_id": self.shared.id,
                                            "company_id": self.company_a.id})
        self.assertTrue(lead.ai_segment_id)
        self.env["ir.config_parameter"].sudo().set_param("crm_ai.customer_segment.min_customers", "1000")
        self.Driver._ai_train_unit(self.SEGMENT, self.company_a)  # still has its model: kept
        self.env["crm.ai.model"]._ai_active(self.SEGMENT, self.company_a).state = "archived"
        self.Driver._ai_score_pair(self.SEGMENT, self.company_a)
        lead.invalidate_recordset()
        self.assertEqual(in_a.ai_segment_state, "insufficient_data")
        self.assertFalse(lead.ai_segment_id)
        # no training pair for "records without a company": every order has one
        self.assertFalse(self.env["crm.ai.training"]._ai_status(self.SEGMENT, self.env["res.company"]))

    def test_company_b_user_cannot_see_company_a_segments(self):
        self.Driver._ai_train_unit(self.SEGMENT, self.company_a)
        self.Driver._ai_score_pair(self.SEGMENT, self.company_a)
        user_b = new_test_user(self.env, "crm_ai_cv_user_b", groups="sales_team.group_sale_salesman",
                               company_id=self.company_b.id, company_ids=[(6, 0, self.company_b.ids)])
        Segment = self.env["crm.ai.segment"].with_user(user_b)
        self.assertFalse(Segment.search([("company_id", "=", self.company_a.id)]))
        self.assertFalse(self.shared.with_user(user_b).ai_segment_id, "B's user sees B's (empty) segment")
        self.assertFalse(self.env["crm.ai.segment.history"].with_user(user_b).search(
            [("partner_id", "=", self.shared.id)]))


@tagged("crm_ai", "post_install", "-at_install")
class TestCustomerMap(CrmAiCustomerMixin, TransactionCase):

    def test_rfm_grid_counts_customers_by_recency_and_frequency(self):
        self._crm_ai_customer_params()
        customers = self._crm_ai_customers(n=40)
        Driver = self.env["crm.ai.driver"]
        Driver._ai_train_unit(self.SEGMENT, self.env.company)
        Driver._ai_score_pair(self.SEGMENT, self.env.company)
        before = len(self.env["crm.ai.segment.map"]._ai_customers(self.env.company))
        self.assertGreaterEqual(before, 40)  # and the database's demo customers, if any
        contact = self.env["res.partner"].create({"name": "crm_ai contact", "parent_id": customers[0].id})
        Driver._ai_score_unit(self.SEGMENT, self.env.company, contact.ids)
        self.assertTrue(contact.ai_segment_id)
        frame = self.env["crm.ai.segment.map"]._ai_customers(self.env.company)
        self.assertEqual(len(frame), before, "customers, not their contacts")
        grid = self.env["crm.ai.segment.map"].create({}).grid
        self.assertIn("R5", grid)
        self.assertIn("F5", grid)
        self.assertIn(f"{before} customers", grid)
        self.assertIn(customers[0].ai_segment_id.name, grid)
        other = self.env["res.company"].create({"name": "crm_ai map elsewhere"})
        manager = new_test_user(self.env, "crm_ai_map_manager", groups="sales_team.group_sale_manager")
        with self.assertRaises(AccessError):
            self.env["crm.ai.segment.map"].with_user(manager).create({"company_id": other.id})._compute_grid()
