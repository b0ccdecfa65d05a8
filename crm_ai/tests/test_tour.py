from odoo.tests import HttpCase, new_test_user, tagged

from .common import CrmAiCustomerMixin, CrmAiDataMixin, CrmAiRecommendMixin


@tagged("crm_ai", "post_install", "-at_install")
class TestCrmAiTour(CrmAiDataMixin, HttpCase):
    """A salesperson (not an administrator) opens a lead, reads its propensity and
    reasons, and filters the pipeline."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_setup_data(n_open=0)
        cls.salesperson = new_test_user(cls.env, "crm_ai_tour_salesperson", groups="sales_team.group_sale_salesman",
                                        name="Tour Salesperson")
        Lead = cls.env["crm.lead"].with_context(tracking_disable=True)
        common = {"type": "opportunity", "user_id": cls.salesperson.id, "company_id": cls.company.id,
                  "stage_id": cls.first_stage.id, "expected_revenue": 5000}
        cls.hot = Lead.create({**common, "name": "AI Tour Hot Lead", "source_id": cls.sources["Referral"].id})
        cls.cold = Lead.create({**common, "name": "AI Tour Cold Lead", "source_id": cls.sources["Cold list"].id})
        cls.env["crm.ai.driver"]._ai_train_unit("lead_propensity", cls.company)
        cls.env["crm.ai.model"]._cron_ai_score()
        # a week and a day ago the hot lead scored 15 points lower: it has a history and a trend
        cls.env.flush_all()
        cls.env.cr.execute("UPDATE crm_ai_propensity_history SET date = date - interval '8 days', "
                           "propensity = propensity - 15 WHERE lead_id = %s", [cls.hot.id])
        cls.env.cr.execute("UPDATE crm_lead SET ai_propensity_state = 'pending' WHERE id = %s", [cls.hot.id])
        cls.env.invalidate_all()
        cls.env["crm.ai.model"]._cron_ai_score()
        # won without ever being scored: no bar in the list, and its form says why
        cls.won = Lead.create({**common, "name": "AI Tour Won Lead"})
        cls.won.action_set_won()

    def test_salesperson_tour(self):
        self.assertFalse(self.salesperson.has_group("crm_ai.group_crm_ai_manager"))
        self.assertGreaterEqual(self.hot.ai_propensity, 50)
        self.assertLess(self.cold.ai_propensity, 50)
        self.assertAlmostEqual(self.hot.ai_propensity_trend, 15, places=1)
        self.assertEqual((self.won.probability, self.won.ai_propensity_state), (100, "pending"))
        self.start_tour("/odoo/crm", "crm_ai_tour", login=self.salesperson.login)


@tagged("crm_ai", "post_install", "-at_install")
class TestCrmAiCustomerTour(CrmAiCustomerMixin, HttpCase):
    """A salesperson reads a customer's segment, propensity and reasons, and groups
    the contacts by segment."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_customer_params()
        cls.customers = cls._crm_ai_customers(n=60)
        cls.env["res.partner"].create({"name": "crm_ai tour prospect", "is_company": True})
        driver = cls.env["crm.ai.driver"]
        for task in (cls.SEGMENT, cls.REPEAT):
            driver._ai_train_unit(task, cls.env.company)
            driver._ai_score_pair(task, cls.env.company)
        cls.salesperson = new_test_user(cls.env, "crm_ai_customer_tour", groups="sales_team.group_sale_salesman",
                                        name="Customer Tour Salesperson")

    def test_salesperson_customer_tour(self):
        self.assertTrue(self.customers[0].ai_segment_id)
        self.assertTrue(self.customers[0].ai_propensity_reasons, self.customers[0].ai_propensity_state)
        self.start_tour("/odoo/contacts", "crm_ai_customer_tour", login=self.salesperson.login)


@tagged("crm_ai", "post_install", "-at_install")
class TestCrmAiSentimentTour(HttpCase):
    """A salesperson sees a complaint marked in the chatter and explained on the lead."""

    def test_salesperson_sentiment_tour(self):
        salesperson = new_test_user(self.env, "crm_ai_sentiment_tour", groups="sales_team.group_sale_salesman",
                                    name="Sentiment Tour Salesperson")
        customer = self.env["res.partner"].create({"name": "crm_ai tour unhappy customer", "is_company": True})
        lead = self.env["crm.lead"].create({"name": "AI Tour Unhappy Lead", "partner_id": customer.id,
                                            "user_id": salesperson.id, "type": "opportunity"})
        lead.with_context(mail_notify_force_send=False).message_post(
            body="This is the third time I ask for a quote. Very disappointed.", author_id=customer.id,
            message_type="email", subtype_xmlid="mail.mt_comment")
        self.env["crm.ai.driver"]._ai_score_pair("lead_sentiment", self.env.company)
        self.assertEqual(lead.ai_sentiment_label, "negative")
        self.start_tour(f"/odoo/crm/{lead.id}", "crm_ai_sentiment_tour", login=salesperson.login)


@tagged("crm_ai", "post_install", "-at_install")
class TestCrmAiRecommendTour(CrmAiRecommendMixin, HttpCase):
    """A salesperson reads an opportunity's recommended products and quotes them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("crm_ai.recommend.min_customers", "10")
        cls._crm_ai_catalogue()
        cls.customers = cls._crm_ai_tribes(40, cls.env.company)
        driver = cls.env["crm.ai.driver"]
        driver._ai_train_unit("recommend", cls.env.company)
        driver._ai_score_pair("recommend", cls.env.company)
        cls.salesperson = new_test_user(cls.env, "crm_ai_recommend_tour", groups="sales_team.group_sale_salesman",
                                        name="Recommend Tour Salesperson")

    def test_salesperson_recommend_tour(self):
        # an A buyer with A things left to try (the new list then says who buys them)
        customer = min(self.customers[0::2], key=lambda c: len(c.ai_reorder_recommendation_ids.filtered(
            lambda r: r.reason in ("every", "bought"))))
        lead = self.env["crm.lead"].create({"name": "AI Tour Upsell", "partner_id": customer.id,
                                            "user_id": self.salesperson.id, "type": "opportunity"})
        # his customer: its orders are his (own documents: he sees only what he may read of its sales)
        self.env["sale.order"].search([("partner_id", "=", customer.id)]).user_id = self.salesperson
        reorder = customer.ai_reorder_recommendation_ids
        offered = reorder.product_id | customer.ai_new_recommendation_ids.product_id  # each product once
        self.assertTrue(customer.ai_new_recommendation_ids.filtered(lambda r: r.reason == "also_buy"))
        self.start_tour(f"/odoo/crm/{lead.id}", "crm_ai_recommend_tour", login=self.salesperson.login)
        order = self.env["sale.order"].search([("opportunity_id", "=", lead.id)])
        self.assertEqual(len(order), 1)
        self.assertEqual(order.state, "draft")
        self.assertEqual(order.create_uid, self.salesperson)
        self.assertEqual(order.order_line.product_id, offered - reorder[0].product_id,
                         "every recommended product but the one dropped (the first to order again)")
