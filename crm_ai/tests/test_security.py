from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import TASK, TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestSecurity(TestCrmAiCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = cls.env["crm.ai.model"].browse(cls._crm_ai_train()["model_id"])
        cls.env["crm.ai.model"]._cron_ai_score()
        cls.salesman = new_test_user(cls.env, "crm_ai_salesman", groups="sales_team.group_sale_salesman_all_leads")
        cls.sales_manager = new_test_user(cls.env, "crm_ai_sales_manager", groups="sales_team.group_sale_manager")
        cls.portal = new_test_user(cls.env, "crm_ai_portal", groups="base.group_portal")

    def test_groups(self):
        self.assertTrue(self.sales_manager.has_group("crm_ai.group_crm_ai_manager"),
                        "sales administrators manage CRM AI")
        self.assertFalse(self.sales_manager.has_group("base.group_system"))
        self.assertFalse(self.salesman.has_group("crm_ai.group_crm_ai_manager"))

    def test_salesman_reads_scores_not_the_registry_internals(self):
        lead = self.open_leads[0].with_user(self.salesman)
        self.assertTrue(lead.ai_propensity)
        self.assertTrue(lead.ai_propensity_reasons)
        self.assertEqual(lead.ai_propensity_model_id.display_name, self.model.display_name)
        model = self.model.with_user(self.salesman)
        for field in ("artifact", "metrics", "importance", "feature_names", "score", "gate_reason", "hyperparameters"):
            with self.assertRaises(AccessError, msg=field):
                model.read([field])
        with self.assertRaises(AccessError):
            model.action_activate()
        with self.assertRaises(AccessError):
            model.unlink()
        with self.assertRaises(AccessError):
            self.env["crm.ai.settings"].with_user(self.salesman).create({})
        with self.assertRaises(AccessError):
            self.env["crm.ai.training"].with_user(self.salesman).search([])

    def test_salesman_cannot_forge_scores(self):
        lead = self.open_leads[0].with_user(self.salesman)
        forged = {"ai_propensity": 99.0, "ai_propensity_grade": "a",
                  "ai_propensity_reason_data": [{"field": "name", "value": "Trust me", "points": 99}],
                  "ai_propensity_state": "scored", "ai_propensity_date": "2999-01-01 00:00:00",
                  "ai_propensity_model_id": self.model.id}
        for name, value in forged.items():
            with self.assertRaises(AccessError, msg=name):
                lead.write({name: value})
        with self.assertRaises(AccessError):
            self.env["crm.lead"].with_user(self.salesman).create({"name": "forged", "ai_propensity": 99.0})
        # a user's own fields still save
        lead.write({"expected_revenue": 777})
        self.assertEqual(lead.expected_revenue, 777)

    def test_score_dated_in_the_future_is_rescored(self):
        """A date in the future can only be forged (e.g. in SQL or an import): it must not
        freeze the value; the next run rescored it."""
        lead = self.open_leads[0]
        real = lead.ai_propensity
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity = 99.99, ai_propensity_date = '2999-01-01' WHERE id = %s",
                            [lead.id])
        lead.invalidate_recordset()
        self.assertEqual(self.env["crm.ai.model"]._cron_ai_score(), (1, 0))
        self.assertAlmostEqual(lead.ai_propensity, real, places=2)

    def test_manager_reads_and_rolls_back_only_through_the_action(self):
        second = self.env["crm.ai.model"].browse(self._crm_ai_train()["model_id"])
        first = self.model.with_user(self.sales_manager)
        with self.assertRaises(AccessError):
            first.write({"state": "active"})
        first.action_activate()
        self.assertEqual((first.state, second.state), ("active", "archived"))
        self.assertTrue(first.artifact)
        self.assertTrue(first.read(["artifact", "metrics", "score"])[0]["metrics"])

    def test_portal_sees_nothing(self):
        with self.assertRaises(AccessError):
            self.env["crm.ai.model"].with_user(self.portal).search([])
        with self.assertRaises(AccessError):
            self.open_leads[0].with_user(self.portal).read(["ai_propensity"])

    def test_multi_company_rule(self):
        other = self.env["res.company"].create({"name": "crm_ai other company"})
        user = new_test_user(self.env, "crm_ai_other_manager", groups="sales_team.group_sale_manager",
                             company_id=other.id, company_ids=[(6, 0, other.ids)])
        self.assertFalse(self.env["crm.ai.model"].with_user(user).search([]))
        self.assertEqual(self.env["crm.ai.model"].with_user(self.sales_manager).search([]), self.model)
        with self.assertRaises(AccessError):
            self.model.with_user(user).action_activate()
        self.env["crm.ai.training"]._ai_request([TASK], [self.company])
        self.assertFalse(self.env["crm.ai.training"].with_user(user).search([]))
