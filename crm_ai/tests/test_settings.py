from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestSettings(TestCrmAiCommon):

    def _settings(self):
        return self.env["res.config.settings"].create({})

    def test_defaults(self):
        settings = self._settings()
        self.assertTrue(settings.crm_ai_enabled)
        self.assertEqual(settings.crm_ai_min_closed, 40)
        self.assertIn("source_id", settings.crm_ai_lead_field_ids.mapped("name"))
        self.assertEqual((settings.crm_ai_train_interval_number, settings.crm_ai_train_interval_type), (1, "weeks"))
        self.assertEqual((settings.crm_ai_score_interval_number, settings.crm_ai_score_interval_type), (1, "hours"))
        self.assertIn("Enough data", settings.crm_ai_status)

    def test_save_settings(self):
        settings = self._settings()
        settings.crm_ai_lead_field_ids = self.env["ir.model.fields"].search(
            [("model", "=", "crm.lead"), ("name", "in", ["source_id", "tag_ids"])])
        settings.crm_ai_start_date = "2024-01-15"
        settings.crm_ai_min_closed = 25
        settings.crm_ai_recency_half_life = "90"
        settings.crm_ai_train_interval_number = 3
        settings.crm_ai_train_interval_type = "days"
        settings.execute()
        param = self.env["ir.config_parameter"].get_param
        self.assertEqual(set(param("crm_ai.lead_fields").split(",")), {"source_id", "tag_ids"})
        self.assertEqual(param("crm_ai.start_date"), "2024-01-15")
        self.assertEqual(self.env["crm.lead"]._ai_get_safe_min_closed(), 25)
        self.assertEqual(self.env["crm.lead"]._ai_get_safe_half_life(), 90.0)
        self.assertIn("recency half-life=90", self.env["crm.ai.model"].browse(self._crm_ai_train()["model_id"]).hyperparameters)
        cron = self.env.ref("crm_ai.ir_cron_train")
        self.assertEqual((cron.interval_number, cron.interval_type), (3, "days"))
        settings = self._settings()
        settings.crm_ai_enabled = False
        settings.execute()
        self.assertFalse(self.env["crm.ai.model"]._ai_enabled())

    def test_corrupted_parameters_fall_back_to_safe_values(self):
        """One does not simply walk into system parameters: hand edits must not break training."""
        param = self.env["ir.config_parameter"].set_param
        param("crm_ai.start_date", "not a date")
        param("crm_ai.min_closed_per_class", "forty")
        param("crm_ai.lead_fields", "source_id,;DROP TABLE crm_lead;--,nope,stage_id")
        param("crm_ai.recency_half_life", "-3 weeks")
        Lead = self.env["crm.lead"]
        # Odoo's settings form and crm_ai both log what they ignore (admins see it in the log).
        with mute_logger("odoo.addons.crm_ai.models.crm_lead", "odoo.addons.base.models.res_config"):
            self.assertIsNone(Lead._ai_get_safe_start_date())
            self.assertEqual(Lead._ai_get_safe_min_closed(), 40)
            self.assertEqual(Lead._ai_get_safe_fields(), ["source_id"])
            self.assertEqual(Lead._ai_get_safe_half_life(), "auto")
            self.assertFalse(self._settings().crm_ai_start_date)
            self.assertEqual(self._crm_ai_train()["status"], "active")

    def test_train_now_button(self):
        action = self._settings().action_crm_ai_train_now()
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("activated", action["params"]["message"])
        self.assertEqual(self.env["crm.ai.model"].search_count([("state", "=", "active")]), 1)

    def test_field_picker_offers_exactly_the_usable_fields(self):
        domain = self.env["res.config.settings"]._crm_ai_lead_field_domain()
        offered = set(self.env["ir.model.fields"].search(domain).mapped("name"))
        # "ai" inside a name (campaign, email) is not a reason to hide a field
        self.assertLessEqual({"campaign_id", "email_state", "medium_id", "source_id", "tag_ids", "expected_revenue"},
                             offered)
        self.assertFalse(offered & {"stage_id", "probability", "lost_reason_id", "date_closed", "ai_propensity",
                                    "ai_propensity_grade", "company_id", "description"})
        self.assertEqual(offered, {n for n in offered if self.env["crm.lead"]._ai_allowed_field(n)})
