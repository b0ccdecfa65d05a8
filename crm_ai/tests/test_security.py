from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import TestCrmAiCommon


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
        self.assertFalse(self.salesman.has_group("crm_ai.group_crm_ai_manager"))

    def test_salesman_reads_scores_only(self):
        lead = self.open_leads[0].with_user(self.salesman)
        self.assertTrue(lead.ai_propensity)
        self.assertTrue(lead.ai_propensity_reasons)
        self.assertEqual(lead.ai_propensity_model_id.with_user(self.salesman).display_name, self.model.display_name)
        model = self.model.with_user(self.salesman)
        with self.assertRaises(AccessError):
            model.artifact  # noqa: B018 -- the stored model is for managers
        with self.assertRaises(AccessError):
            model.action_activate()
        with self.assertRaises(AccessError):
            model.unlink()
        with self.assertRaises(AccessError):
            self.env["res.config.settings"].with_user(self.salesman).create({}).action_crm_ai_train_now()

    def test_manager_sees_and_rolls_back(self):
        second = self.env["crm.ai.model"].browse(self._crm_ai_train()["model_id"])
        first = self.model.with_user(self.sales_manager)
        first.action_activate()
        self.assertEqual((first.state, second.state), ("active", "archived"))
        self.assertTrue(first.artifact)

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
