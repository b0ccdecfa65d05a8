"""Recommended products: both lists with reasons on partners and leads, exclusions,
multi-company, the quotation button, access, and LightFM missing."""

from datetime import timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, new_test_user, tagged

from ..ml import recommend as ml_recommend
from .common import CrmAiRecommendMixin

TASK = "recommend"


@tagged("crm_ai", "post_install", "-at_install")
class TestRecommend(CrmAiRecommendMixin, TransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.min_customers", "10")
        cls._crm_ai_catalogue()
        cls.customers = cls._crm_ai_tribes(40, cls.company)
        cls.Driver = cls.env["crm.ai.driver"]
        cls.result = cls.Driver._ai_train_unit(TASK, cls.company)

    def score(self, company=None):
        return self.Driver._ai_score_pair(TASK, company or self.company)

    def bought(self, partner):
        lines = self.env["sale.order.line"].search([("order_id.partner_id", "=", partner.id),
                                                    ("order_id.state", "=", "sale")])
        return lines.product_id

    # -- the lists ----------------------------------------------------------------------------
    def test_both_lists_with_reasons_on_partner_contact_and_lead(self):
        self.assertEqual(self.result["status"], "active", self.result["message"])
        self.score()
        customer = min(self.customers[0::2], key=lambda c: len(self.bought(c)))  # an A buyer with things to try
        self.assertEqual(customer.ai_recommend_state, "scored")
        reorder, new = customer.ai_reorder_recommendation_ids, customer.ai_new_recommendation_ids
        bought = self.bought(customer)
        # its own products, most ordered first (then, for short histories, the best new ones: ml tests)
        self.assertEqual(reorder.mapped("rank"), list(range(1, len(reorder) + 1)))
        own = reorder.filtered(lambda r: r.reason in ("every", "bought"))
        self.assertEqual(own.product_id, bought if len(bought) <= 5 else own.product_id)
        self.assertLessEqual(own.product_id, bought)
        self.assertEqual(reorder[0].reason, "every")
        self.assertRegex(reorder[0].reason_text, r"about every \d+ days")
        orders = [self.env["sale.order"].search_count([("partner_id", "=", customer.id), ("state", "=", "sale"),
                                                       ("order_line.product_id", "=", p.id)]) for p in own.product_id]
        self.assertEqual(orders, sorted(orders, reverse=True))
        self.assertTrue(new, "new products offered")
        self.assertFalse(new.product_id & bought, "the new list holds products never bought")
        # a short history is completed with the best new products: the form shows those once, as new
        completed = self.env["crm.ai.recommendation"]._ai_rows(customer, self.company, "reorder") - own
        self.assertTrue(completed.product_id & new.product_id, "the test needs a history shorter than the list")
        self.assertFalse(reorder.product_id & new.product_id, "a product is on one list of the form")
        # what A-buyers buy comes first: the A things it never bought, then B things
        untried = self.products_a - bought
        self.assertTrue(untried, "the test needs a customer who did not buy every A thing")
        self.assertEqual(new[:len(untried)].product_id, untried)
        also = new.filtered(lambda r: r.reason == "also_buy")
        self.assertTrue(also)
        self.assertLessEqual(also.reason_product_id, bought)
        self.assertIn(also[0].reason_product_id.display_name, also[0].reason_text)
        # a contact shows its company's lists; so does a lead of either
        contact = self.env["res.partner"].create({"name": "crm_ai buyer", "parent_id": customer.id})
        self.assertEqual(contact.ai_new_recommendation_ids, new)
        lead = self.env["crm.lead"].create({"name": "crm_ai upsell", "partner_id": contact.id, "type": "opportunity"})
        self.assertEqual(lead.ai_reorder_recommendation_ids, reorder)
        self.assertEqual(lead.ai_new_recommendation_ids, new)

    def test_long_ago_purchases_let_back_in_the_new_list_are_shown_once(self):
        """With the setting that lets long-ago purchases back in the new list, a product can be
        on both lists: the form shows it once (with its purchases), numbered without gaps."""
        self.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.new_excludes_days", "1")
        self.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.list_size", "20")
        self.score()
        Recommendation = self.env["crm.ai.recommendation"]
        both = [c for c in self.customers if Recommendation._ai_rows(c, self.company, "reorder").filtered(
            lambda r: r.reason in ("every", "bought")).product_id & Recommendation._ai_rows(c, self.company, "new").product_id]
        self.assertTrue(both, "the test needs a product on both stored lists")
        for customer in both:
            reorder, new = customer.ai_reorder_recommendation_ids, customer.ai_new_recommendation_ids
            self.assertFalse(reorder.product_id & new.product_id)
            for shown in (reorder, new):
                self.assertEqual(shown.mapped("position"), list(range(1, len(shown) + 1)))

    def test_registry_compares_with_popularity_history_and_item_item(self):
        model = self.env["crm.ai.model"]._ai_active(TASK, self.company)
        self.assertEqual(model.primary_metric, "Precision@10, new products")
        for key in ("precision_at_10", "recall_at_10", "coverage", "reorder_precision_at_10"):
            self.assertIn(key, model.metrics["model"])
            self.assertIn(key, model.metrics["baseline"])
        self.assertEqual(set(model.metrics["others"]), {"Popularity", "Own history", "Item-item"})
        self.assertEqual(model.metrics["baseline"]["precision_at_10"],
                         model.metrics["others"]["Item-item"]["precision_at_10"])
        self.assertEqual(model.metrics["baseline"]["reorder_precision_at_10"],
                         model.metrics["others"]["Own history"]["reorder_precision_at_10"])
        self.assertGreaterEqual(model.metrics["model"]["reorder_precision_at_10"],
                                model.metrics["others"]["Popularity"]["reorder_precision_at_10"])
        self.assertIn("Popularity", model.metrics_html)
        self.assertIn("item-item", model.hyperparameters)
        self.assertIn("0.5 + features", model.hyperparameters, "LightFM with customer and product features is tried")

    def test_lead_without_customer_gets_its_countrys_popular_products(self):
        self.score()
        lead = self.env["crm.lead"].create({"name": "crm_ai walk-in", "country_id": self.france.id})
        rows = lead.ai_new_recommendation_ids
        self.assertTrue(rows)
        self.assertLessEqual(rows.product_id, self.products_b)
        self.assertEqual(set(rows.mapped("reason")), {"popular_group"})
        self.assertIn(self.france.name, rows[0].reason_text)
        seller = new_test_user(self.env, "crm_ai_walk_in_seller", groups="sales_team.group_sale_salesman")
        for user in (self.env.user, seller):  # numbered 1, 2, 3... like a customer's lists
            shown = lead.with_user(user).ai_new_recommendation_ids
            self.assertEqual(shown.mapped("position"), list(range(1, len(shown) + 1)), user.login)
        self.assertFalse(lead.ai_reorder_recommendation_ids)
        nowhere = self.env["crm.lead"].create({"name": "crm_ai no country"})
        self.assertTrue(nowhere.ai_new_recommendation_ids, "everyone's favourites")

    def test_lead_without_customer_follows_its_tags_then_its_country_then_its_team(self):
        tag = self.env["crm.tag"].create({"name": "crm_ai B deals"})
        team = self.env["crm.team"].create({"name": "crm_ai A team"})
        b_buyer, a_buyer = self.customers[1], self.customers[0]
        deal = self.env["crm.lead"].create({"name": "crm_ai won B deal", "partner_id": b_buyer.id, "tag_ids": [tag.id]})
        self.env.cr.execute("UPDATE sale_order SET opportunity_id = %s WHERE partner_id = %s", (deal.id, b_buyer.id))
        self.env.cr.execute("UPDATE sale_order SET team_id = %s WHERE partner_id = %s", (team.id, a_buyer.id))
        self.env.invalidate_all()
        self.score()
        tagged_lead = self.env["crm.lead"].create({"name": "crm_ai walk-in", "tag_ids": [tag.id], "team_id": team.id,
                                                   "country_id": self.belgium.id})
        rows = tagged_lead.ai_new_recommendation_ids
        self.assertEqual(set(rows.mapped("reason")), {"popular_tag"}, "its tag first")
        self.assertLessEqual(rows.product_id, self.bought(b_buyer))
        self.assertIn(tag.name, rows[0].reason_text)
        french_lead = self.env["crm.lead"].create({"name": "crm_ai walk-in 2", "team_id": team.id,
                                                   "country_id": self.france.id})
        self.assertEqual(set(french_lead.ai_new_recommendation_ids.mapped("reason")), {"popular_group"},
                         "then its country")
        team_lead = self.env["crm.lead"].create({"name": "crm_ai walk-in 3", "team_id": team.id})
        rows = team_lead.ai_new_recommendation_ids
        self.assertEqual(set(rows.mapped("reason")), {"popular_team"}, "then its team")
        self.assertLessEqual(rows.product_id, self.bought(a_buyer))
        self.assertIn(team.name, rows[0].reason_text)

    def test_archived_unsaleable_and_other_company_products_are_never_recommended(self):
        archived, unsaleable = self.products_a[0], self.products_a[1]
        other_company = self.env["res.company"].create({"name": "crm_ai other co"})
        # never sold, of a category A buyers buy: only the company's own would be offered
        theirs, ours = self.env["product.product"].create([
            {"name": "crm_ai theirs", "categ_id": self.categ_a.id, "company_id": other_company.id},
            {"name": "crm_ai ours", "categ_id": self.categ_a.id, "company_id": self.company.id}])
        archived.active = False
        unsaleable.sale_ok = False
        self.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.list_size", "10")
        self.env.flush_all()
        self.score()
        self.assertTrue(self.env["crm.ai.recommendation"].search([("product_id", "=", ours.id)]))
        rows = self.env["crm.ai.recommendation"].search([("company_id", "=", self.company.id)])
        self.assertTrue(rows)
        self.assertFalse(rows.product_id & (archived | unsaleable | theirs))

    def test_product_never_sold_is_offered_to_buyers_of_its_category(self):
        kiosk = self.env["product.product"].create({"name": "crm_ai a-new", "categ_id": self.categ_a.id})
        self.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.list_size", "6")
        self.score()
        a_buyers, b_buyers = self.customers[0::2], self.customers[1::2]
        offered = self.env["crm.ai.recommendation"].search([("product_id", "=", kiosk.id)])
        self.assertTrue(offered)
        self.assertLessEqual(offered.partner_id, a_buyers)
        self.assertFalse(offered.partner_id & b_buyers)
        self.assertEqual(set(offered.mapped("reason")), {"new_in_category"})
        self.assertIn(self.categ_a.name, offered[0].reason_text)

    def test_rescoring_replaces_rows_and_is_data_not_an_edit(self):
        customer = self.customers[2]
        self.env.cr.execute("UPDATE res_partner SET write_date = '2020-01-01' WHERE id = %s", (customer.id,))
        customer.invalidate_recordset()
        messages = len(customer.message_ids)
        self.score()
        count = self.env["crm.ai.recommendation"].search_count([("partner_id", "=", customer.id)])
        self.assertTrue(count)
        customer.invalidate_recordset()
        self.assertEqual(customer.write_date, fields.Datetime.to_datetime("2020-01-01 00:00:00"))
        self.assertEqual(len(customer.message_ids), messages)
        # a new order: the customer is pending again, and rescoring replaces its rows
        self.assertEqual(self.score(), (0, 0), "nothing changed: nothing pending")
        order = self._crm_ai_orders([(customer, 0, 50.0, "sale")])
        # (in a test everything shares one transaction: date the order after the scores)
        self.env.cr.execute("UPDATE sale_order SET write_date = clock_timestamp() AT TIME ZONE 'UTC' WHERE id = %s",
                            (order.id,))
        done, _remaining = self.score()
        self.assertGreaterEqual(done, 1)
        self.assertEqual(self.env["crm.ai.recommendation"].search_count([("partner_id", "=", customer.id)]), count,
                         "replaced, not duplicated")
        reorder = customer.ai_reorder_recommendation_ids
        self.assertEqual(reorder.filtered(lambda r: r.product_id == self.product).reason_text,
                         "Bought before (once)", "a product bought since the training is on the list at once")

    def test_a_product_quoted_on_an_opportunity_is_a_signal_not_a_purchase(self):
        customer = self.customers[0]
        quoted = self.env["product.product"].create({"name": "crm_ai quoted", "categ_id": self.categ_a.id})
        deal = self.env["crm.lead"].create({"name": "crm_ai open deal", "partner_id": customer.id, "type": "opportunity"})
        self.env["sale.order"].create({"partner_id": customer.id, "opportunity_id": deal.id,
                                       "order_line": [(0, 0, {"product_id": quoted.id, "product_uom_qty": 3})]})
        self.env.flush_all()
        engine = self.Driver._ai_engine(TASK, self.company)
        lines = engine.order_lines([customer.id])
        self.assertEqual(lines.loc[lines["item"] == quoted.id, "weight"].tolist(), [0.25])
        # Odoo's global discount: a line of the company's discount product at a negative price
        discount = self.env["product.product"].create({"name": "crm_ai Discount", "type": "service"})
        self.company.sale_discount_product_id = discount.product_tmpl_id.product_variant_id
        order = self.env["sale.order"].create({"partner_id": customer.id, "order_line": [(0, 0, {
            "product_id": discount.id, "product_uom_qty": 1, "price_unit": -40.0, "tax_id": [(6, 0, [])]})]})
        self.env.flush_all()
        self.env.cr.execute("UPDATE sale_order SET state = 'sale' WHERE id = %s", [order.id])
        engine = self.Driver._ai_engine(TASK, self.company)
        self.assertNotIn(discount.id, engine.order_lines([customer.id])["item"].tolist(), "no product bought")
        self.assertNotIn(discount.id, engine.catalogue()[0], "no product to offer")
        self.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.list_size", "20")
        self.score()
        own = customer.ai_reorder_recommendation_ids.filtered(lambda r: r.reason in ("every", "bought")).product_id
        self.assertNotIn(quoted, own, "only quoted: never 'bought before'")

    def test_lists_read_before_a_scoring_are_read_again_after_it(self):
        customer = self.customers[3]
        self.assertFalse(customer.ai_new_recommendation_ids, "not scored yet")
        self.score()
        self.assertTrue(customer.ai_new_recommendation_ids, "the scoring's rows, not the list cached before it")

    def test_a_product_returned_in_full_is_not_bought(self):
        customer = self.customers[0]
        kept, returned = self.env["product.product"].create([{"name": "crm_ai kept", "categ_id": self.categ_a.id},
                                                             {"name": "crm_ai returned", "categ_id": self.categ_a.id}])
        orders = self.env["sale.order"].with_context(tracking_disable=True).create([
            {"partner_id": customer.id, "order_line": [(0, 0, {"product_id": kept.id, "product_uom_qty": 1}),
                                                       (0, 0, {"product_id": returned.id, "product_uom_qty": 2})]},
            {"partner_id": customer.id, "order_line": [(0, 0, {"product_id": returned.id, "product_uom_qty": -2})]},
        ])
        self.env.flush_all()
        self.env.cr.execute("UPDATE sale_order SET state = 'sale' WHERE id = ANY(%s)", (orders.ids,))
        self.env["sale.order"].invalidate_model(["state"])
        self.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.list_size", "20")
        self.score()
        own = customer.ai_reorder_recommendation_ids.filtered(lambda r: r.reason in ("every", "bought")).product_id
        self.assertIn(kept, own)
        self.assertNotIn(returned, own, "returned in full: not a purchase to repeat")

    def test_search_partners_and_leads_by_recommended_product(self):
        self.score()
        product = self.customers[0].ai_new_recommendation_ids[0].product_id
        partners = self.env["res.partner"].search([("ai_recommended_product_ids", "=", product.id)])
        self.assertIn(self.customers[0], partners)
        rows = self.env["crm.ai.recommendation"].search([("product_id", "=", product.id)])
        self.assertEqual(partners.commercial_partner_id, rows.partner_id)
        by_name = self.env["res.partner"].search([("ai_recommended_product_ids", "ilike", product.name)])
        self.assertEqual(by_name, partners)
        lead = self.env["crm.lead"].create({"name": "crm_ai lead", "partner_id": self.customers[0].id})
        self.assertIn(lead, self.env["crm.lead"].search([("ai_recommended_product_ids", "=", product.id)]))

    # -- multi-company -------------------------------------------------------------------------
    def test_each_company_learns_and_recommends_from_its_own_orders(self):
        other = self.env["res.company"].create({"name": "crm_ai shop 2"})
        self.env.user.company_ids |= other
        theirs = self._crm_ai_tribes(24, other, seed=9, prefix="crm_ai shop-2 customer")
        # a customer of both companies: in company 2 it buys B things only
        shared = self.customers[0]
        self.env["sale.order"].with_company(other).create({
            "partner_id": shared.id, "company_id": other.id,
            "order_line": [(0, 0, {"product_id": self.products_b[0].id, "product_uom_qty": 1})]}).action_confirm()
        self.assertEqual(self.Driver._ai_train_unit(TASK, other)["status"], "active")
        self.score()
        self.score(other)
        Recommendation = self.env["crm.ai.recommendation"]
        rows = Recommendation.search([("company_id", "=", other.id), ("partner_id", "!=", False)])
        learnt = rows.filtered(lambda r: r.reason not in ("popular", "popular_group"))
        self.assertEqual(learnt.partner_id, theirs | shared, "only company 2's buyers get lists learnt from orders")
        self.assertEqual(set((rows - learnt).mapped("list_type")) | {"new"}, {"new", "reorder"})
        def own(partner, company):
            rows = partner.with_company(company).ai_reorder_recommendation_ids
            return rows.filtered(lambda r: r.reason in ("every", "bought")).product_id

        self.assertEqual(own(shared, other), self.products_b[0])
        self.assertTrue(own(shared, self.company))
        self.assertLessEqual(own(shared, self.company), self.bought(shared) - self.products_b[0])
        # a salesperson of the first company only never reads the other's rows
        seller = new_test_user(self.env, "crm_ai_reco_seller", groups="sales_team.group_sale_salesman",
                               company_id=self.company.id, company_ids=[self.company.id])
        rows = Recommendation.with_user(seller).search([])
        self.assertTrue(rows)
        self.assertFalse(rows.filtered(lambda r: r.company_id == other))
        with self.assertRaises(AccessError):
            Recommendation.search([("company_id", "=", other.id)], limit=1).with_user(seller).read(["product_id"])

    def confirmed_order(self, customer, product, salesperson, company=None, state="sale", days_ago=0, qty=1,
                        lines=1):
        company = company or self.company
        order = self.env["sale.order"].with_company(company).create({
            "partner_id": customer.id, "user_id": salesperson.id, "company_id": company.id,
            "date_order": fields.Datetime.now() - timedelta(days=days_ago, hours=1),
            "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": qty})] * lines})
        self.env.flush_all()
        self.env.cr.execute("UPDATE sale_order SET state = %s WHERE id = %s", (state, order.id))
        self.env.cr.execute("UPDATE sale_order_line SET state = %s WHERE order_id = %s", (state, order.id))
        order.invalidate_recordset(["state"])
        order.order_line.invalidate_recordset(["state"])
        return order

    # -- quotation, access -----------------------------------------------------------------------
    def test_quotation_button_creates_a_quotation_with_the_products_kept(self):
        # a customer of one product: its reorder list is completed with new products, also on its new list
        customer = self.env["res.partner"].create({"name": "crm_ai one-product shopper", "is_company": True})
        seller = new_test_user(self.env, "crm_ai_quoter", groups="sales_team.group_sale_salesman")
        self.confirmed_order(customer, self.products_a[0], seller)  # his own sale: he may read it
        self.score()
        lead = self.env["crm.lead"].create({"name": "crm_ai deal", "partner_id": customer.id, "type": "opportunity",
                                            "user_id": seller.id})
        action = lead.with_user(seller).action_ai_quotation()
        wizard = self.env["crm.ai.quotation.wizard"].with_user(seller).browse(action["res_id"])
        rows = self.env["crm.ai.recommendation"]._ai_rows(customer, self.company)
        self.assertTrue(rows.filtered(lambda r: r.list_type == "reorder").product_id
                        & rows.filtered(lambda r: r.list_type == "new").product_id,
                        "the test needs a product on both lists")
        offered = customer.ai_reorder_recommendation_ids | customer.ai_new_recommendation_ids
        self.assertEqual(wizard.recommendation_ids, offered, "both lists as the form shows them, each product once")
        self.assertEqual(len(wizard.recommendation_ids.product_id), len(wizard.recommendation_ids))
        kept = wizard.recommendation_ids[:2]
        wizard.recommendation_ids = kept
        result = wizard.action_create_quotation()
        order = self.env["sale.order"].browse(result["res_id"])
        self.assertEqual(order.partner_id, customer)
        self.assertEqual(order.opportunity_id, lead)
        self.assertEqual(order.state, "draft")
        self.assertEqual(order.order_line.product_id, kept.product_id)
        self.assertEqual(len(order.order_line), len(kept))
        self.assertIn(order, lead.order_ids)
        wizard.recommendation_ids = False
        with self.assertRaises(UserError):
            wizard.action_create_quotation()
        with self.assertRaises(UserError):  # no customer yet
            self.env["crm.lead"].with_user(seller).create({"name": "crm_ai nobody"}).action_ai_quotation()

    def test_own_documents_salespeople_see_only_the_purchases_they_may_read(self):
        """"Order again" and "customers who buy X" must not tell a salesperson with Own Documents
        Only what the customer buys through a colleague's orders (sale's Personal Orders)."""
        mine, theirs, nobodys, often = self.products_a[0], self.products_a[1], self.products_a[2], self.products_a[3]
        other = self.env["res.company"].create({"name": "crm_ai reco shop 2"})
        alice = new_test_user(self.env, "crm_ai_reco_alice", groups="sales_team.group_sale_salesman",
                              company_ids=[self.company.id, other.id])
        bob = new_test_user(self.env, "crm_ai_reco_bob", groups="sales_team.group_sale_salesman")
        boss = new_test_user(self.env, "crm_ai_reco_boss", groups="sales_team.group_sale_salesman_all_leads")
        customer = self.env["res.partner"].create({"name": "crm_ai shared customer", "is_company": True})
        contact = self.env["res.partner"].create({"name": "crm_ai buyer", "parent_id": customer.id})
        self.confirmed_order(customer, mine, alice)
        self.confirmed_order(contact, theirs, bob)  # bought by its contact: still the customer's purchase
        self.confirmed_order(customer, nobodys, self.env["res.users"])  # no salesperson: everyone's (sale's rule)
        # neither Alice's quotation nor her sale in another company shows her this company's purchase
        self.confirmed_order(customer, theirs, alice, state="draft")
        self.confirmed_order(customer, theirs, alice, company=other)
        # nor lines the engine does not count as purchases: a zero quantity, a down payment
        self.confirmed_order(customer, theirs, alice, qty=0)
        down_payment = self.confirmed_order(customer, theirs, alice)
        self.env.cr.execute("UPDATE sale_order_line SET is_downpayment = TRUE WHERE order_id = %s", (down_payment.id,))
        down_payment.order_line.invalidate_recordset(["is_downpayment"])
        # bought once through Alice, three times through Bob: each reads the counts of his own sales
        self.confirmed_order(customer, often, alice, days_ago=90, lines=2)  # one order, two lines
        for days_ago in (60, 120, 30):  # entered out of date order
            self.confirmed_order(contact, often, bob, days_ago=days_ago)
        burst = self.products_a[4]  # three orders within hours: no rhythm
        for days_ago in (10.1, 10.2, 10.3):
            self.confirmed_order(contact, burst, bob, days_ago=days_ago)
        self.score()
        Recommendation = self.env["crm.ai.recommendation"]
        reorder = Recommendation.search([("partner_id", "=", customer.id), ("list_type", "=", "reorder")])
        self.assertLessEqual(mine | theirs, reorder.product_id, "the engine lists both purchases")

        def order_again(user, partner=customer):
            return partner.with_user(user).ai_reorder_recommendation_ids.product_id

        self.assertIn(mine, order_again(alice))
        self.assertIn(nobodys, order_again(alice))

        def why(user, product):
            rows = customer.with_user(user).ai_reorder_recommendation_ids
            return rows.filtered(lambda r: r.product_id == product).reason_text

        self.assertEqual(why(alice, often), "Bought before (once)")
        self.assertEqual(why(bob, often), "You order this about every 45 days", "his orders: 60 and 30 days apart")
        self.assertEqual(why(boss, often), "You order this about every 30 days", "every order, as the engine counts")
        self.assertEqual(why(bob, burst), "Bought before (3 orders)")
        self.assertEqual(why(boss, burst), "Bought before (3 orders)")
        self.assertNotIn(theirs, order_again(alice), "bought only through Bob's order")
        both_companies = customer.with_context(allowed_company_ids=[self.company.id, other.id])
        self.assertNotIn(theirs, both_companies.with_user(alice).ai_reorder_recommendation_ids.product_id)
        self.assertNotIn(theirs, order_again(alice, contact))
        self.assertNotIn(theirs, customer.with_user(alice).ai_recommended_product_ids)
        self.assertIn(theirs, order_again(bob))
        self.assertNotIn(mine, order_again(bob))
        self.assertLessEqual(mine | theirs, order_again(boss))
        gaps = 0
        for user in (alice, bob, boss):  # numbered 1, 2, 3...: a hidden row leaves no gap
            rows = customer.with_user(user).ai_reorder_recommendation_ids
            self.assertEqual(rows.mapped("position"), list(range(1, len(rows) + 1)), user.login)
            gaps += rows.sudo().mapped("rank") != rows.mapped("position")
        self.assertTrue(gaps, "the test needs a row hidden before one shown")
        lead = self.env["crm.lead"].create({"name": "crm_ai alice's deal", "partner_id": contact.id, "user_id": alice.id})
        self.assertNotIn(theirs, lead.with_user(alice).ai_reorder_recommendation_ids.product_id)
        self.assertIn(theirs, lead.with_user(boss).ai_reorder_recommendation_ids.product_id, "per user, not cached")
        # over RPC too: searching, reading, and finding customers by recommended product
        hidden = reorder.filtered(lambda r: r.product_id == theirs)
        as_alice = Recommendation.with_user(alice)
        self.assertFalse(as_alice.search([("id", "in", hidden.ids)]))
        with self.assertRaises(AccessError):
            hidden.with_user(alice).read(["product_id"])
        self.assertFalse(hidden.with_user(alice).has_access("read"), "Odoo's own check (sudo, filtered_domain)")
        with self.assertRaises(AccessError):
            hidden.with_user(alice).read(["purchase_readable"])
        # where it sits and how often it sold: rank and score are for who reads every sale
        shown = as_alice.search([("partner_id", "=", customer.id)])
        for field in ("rank", "score"):
            with self.assertRaises(AccessError):
                shown.read([field])
            self.assertIn(field, shown.with_user(boss).read([field])[0])
        self.assertNotIn(theirs.display_name, hidden.with_user(alice).sudo().display_name,
                         "an access error in debug mode names the records it refuses")
        with patch.object(type(self.env["res.users"]), "has_group",
                          lambda user, group: group in ("base.group_no_one", "base.group_user",
                                                        "sales_team.group_sale_salesman")), \
                self.assertRaises(AccessError) as refused:
            hidden.with_user(alice).read(["product_id"])
        self.assertIn(str(hidden.id), str(refused.exception), "the debug-mode message lists the row")
        self.assertNotIn(theirs.display_name, str(refused.exception))
        self.assertIn("Hidden product", str(refused.exception))
        for field in ("reason_value", "reason_product_id"):
            with self.assertRaises(AccessError):
                shown.read([field])
        by_product = [("ai_recommended_product_ids", "=", theirs.id)]
        self.assertNotIn(customer, self.env["res.partner"].with_user(alice).search(by_product))
        self.assertIn(customer, self.env["res.partner"].with_user(bob).search(by_product))
        self.assertTrue(as_alice.search([("partner_id", "=", customer.id), ("list_type", "=", "new")]),
                        "new products are no one's purchase: every salesperson reads them")
        # "Customers who buy <Bob's product> also buy this" names it only to who may see that purchase
        also = Recommendation.create({
            "partner_id": customer.id, "company_id": self.company.id, "list_type": "new", "rank": 99,
            "product_id": self.products_b[0].id, "reason": "also_buy", "reason_product_id": theirs.id})
        self.assertIn(theirs.display_name, also.with_user(bob).reason_text)
        self.assertIn(theirs.display_name, also.with_user(boss).reason_text)
        self.assertNotIn(theirs.display_name, also.with_user(alice).reason_text)
        self.assertEqual(also.with_user(alice).reason_text, "Customers who buy like this one buy this")
        with self.assertRaises(AccessError):
            also.with_user(alice).read(["reason_product_id"])
        # a lead form picking the customer (onchange: the rows are new records standing for the saved ones)
        spec = {"ai_reorder_recommendation_ids": {"fields": {"position": {}, "reason_text": {}, "product_id": {}}},
                "ai_new_recommendation_ids": {"fields": {"position": {}, "reason_text": {}, "product_id": {}}}}
        deal = self.env["crm.lead"].create({"name": "crm_ai open deal", "user_id": False})
        for user, record in ((alice, deal), (bob, deal), (boss, deal), (alice, self.env["crm.lead"])):
            result = record.with_user(user).onchange(
                {"name": "crm_ai deal", "partner_id": customer.id}, ["partner_id"], spec)["value"]
            rows = {name: [command[2] for command in result[name] if command[0] == Command.LINK] for name in spec}
            for name, lines in rows.items():
                self.assertEqual([line["position"] for line in lines], list(range(1, len(lines) + 1)), name)
                saved = customer.with_user(user)[name]
                self.assertEqual({line["id"]: line["reason_text"] for line in lines},
                                 {row.id: row.reason_text for row in saved}, f"{user.login}: as on the saved customer")
            also_text = next(line["reason_text"] for line in rows["ai_new_recommendation_ids"]
                             if line["id"] == also.id)
            self.assertEqual(theirs.display_name in also_text, user != alice, also_text)
        # a form computes on new records standing for the saved rows: same number, same words
        for user in (alice, bob):
            shown = customer.with_user(user)
            for saved in shown.ai_reorder_recommendation_ids | shown.ai_new_recommendation_ids:
                virtual = saved.new(origin=saved)
                self.assertEqual((virtual.position, virtual.reason_text, virtual.purchase_readable),
                                 (saved.position, saved.reason_text, True), user.login)
        # an onchange sending another reason gets no word out of the hidden reason_value
        alices_row = customer.with_user(alice).ai_reorder_recommendation_ids.filtered(lambda r: r.product_id == often)
        for reason in ("popular_group", "popular_team", "popular_tag", "new_in_category", "every"):
            result = alices_row.onchange({"reason": reason}, ["reason"], {"reason_text": {}})["value"]
            self.assertIn(result.get("reason_text", "Bought before (once)"), ("Bought before (once)",), reason)
        # sorting by rank never interleaves her lists (which would place her rows among the hidden ones)
        for order in ("rank, list_type", "rank desc", "rank, id"):
            rows = as_alice.search([("partner_id", "=", customer.id)], order=order)
            kinds = rows.mapped("list_type")
            self.assertEqual(sum(a != b for a, b in zip(kinds, kinds[1:])), 1, order)
        # a product archived since the scoring leaves the lists, and no gap in the numbers
        mine.active = False
        self.env.invalidate_all()
        for user in (alice, boss):
            rows = customer.with_user(user).ai_reorder_recommendation_ids
            self.assertNotIn(mine, rows.product_id)
            self.assertEqual(rows.mapped("position"), list(range(1, len(rows) + 1)), user.login)

    def test_salespeople_read_only_the_engine_writes(self):
        self.score()
        seller = new_test_user(self.env, "crm_ai_reco_reader", groups="sales_team.group_sale_salesman")
        row = self.env["crm.ai.recommendation"].with_user(seller).search([], limit=1)
        self.assertTrue(row.reason_text)
        with self.assertRaises(AccessError):
            row.write({"rank": 1})
        with self.assertRaises(AccessError):
            row.unlink()
        with self.assertRaises(AccessError):
            self.env["crm.ai.recommendation"].with_user(seller).create({
                "partner_id": self.customers[1].id, "product_id": self.products_a[0].id, "list_type": "new",
                "rank": 1, "reason": "popular", "company_id": self.company.id})
        with self.assertRaises(AccessError):  # nor may anyone mark a partner scored by hand
            self.customers[1].with_user(seller).write({"ai_recommend_state": "scored"})
        portal = new_test_user(self.env, "crm_ai_reco_portal", groups="base.group_portal")
        with self.assertRaises(AccessError):
            self.env["crm.ai.recommendation"].with_user(portal).search([])

    # -- degraded -----------------------------------------------------------------------------------
    def test_without_lightfm_item_item_is_served_and_said(self):
        missing = "ImportError: No module named 'lightfm'"
        with patch.object(ml_recommend, "lightfm_import_error", lambda: missing), \
                patch("odoo.addons.crm_ai.models.engine_recommend.lightfm_import_error", lambda: missing), \
                self.assertLogs("odoo.addons.crm_ai.models.engine_recommend", "WARNING") as logs:
            result = self.Driver._ai_train_unit(TASK, self.company)
            settings = self.env["crm.ai.settings"].create({})
            self.assertIn("LightFM cannot be imported", settings.recommend_lightfm_status)
        self.assertEqual(result["status"], "active", result["message"])
        model = self.env["crm.ai.model"]._ai_active(TASK, self.company)
        self.assertIn("LightFM cannot be imported", model.hyperparameters)
        self.assertIn("LightFM cannot be imported", logs.output[0])
        self.score()
        self.assertTrue(self.customers[0].ai_new_recommendation_ids)
        self.assertFalse(self.env["crm.ai.settings"].create({}).recommend_lightfm_status)

    def test_too_few_customers_no_list_and_a_clear_state(self):
        small = self.env["res.company"].create({"name": "crm_ai tiny shop"})
        self.env.user.company_ids |= small
        few = self._crm_ai_tribes(4, small, prefix="crm_ai tiny customer")
        result = self.Driver._ai_train_unit(TASK, small)
        self.assertEqual(result["status"], "insufficient_data")
        self.assertIn("Not enough data", result["message"])
        self.score(small)
        self.assertEqual(few[0].with_company(small).ai_recommend_state, "insufficient_data")
        self.assertFalse(self.env["crm.ai.recommendation"].search([("company_id", "=", small.id)]))
