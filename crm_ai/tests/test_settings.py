from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import convert_file, mute_logger

from .common import TASK, TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestSettings(TestCrmAiCommon):

    def _settings(self, user=None):
        Settings = self.env["crm.ai.settings"]
        return (Settings.with_user(user) if user else Settings).create({})

    def test_defaults(self):
        settings = self._settings()
        self.assertTrue(settings.crm_ai_enabled)
        self.assertTrue(settings.lead_propensity_enabled)
        self.assertEqual(settings.lead_min_closed, 40)
        self.assertIn("source_id", settings.lead_field_ids.mapped("name"))
        self.assertEqual((settings.train_interval_number, settings.train_interval_type), (1, "weeks"))
        self.assertEqual((settings.score_interval_number, settings.score_interval_type), (1, "hours"))
        self.assertIn("No model yet", settings.status)
        self.assertIn("No model yet", self.env["res.config.settings"].create({}).crm_ai_status)

    def test_crm_ai_switched_off_stays_off_after_an_upgrade(self):
        settings = self._settings()
        settings.crm_ai_enabled = False
        settings.action_save()
        self.assertFalse(self.env["crm.ai.driver"]._ai_enabled())
        # what "odoo -u crm_ai" does with the data file
        convert_file(self.env, "crm_ai", "data/ir_config_parameter_data.xml", {}, mode="update")
        self.assertFalse(self.env["crm.ai.driver"]._ai_enabled(), "an upgrade must not switch it back on")
        self.assertFalse(self.env["crm.ai.driver"]._ai_tasks())

    def test_save_settings(self):
        settings = self._settings()
        settings.lead_field_ids = self.env["crm.ai.field"].search(
            [("model", "=", "crm.lead"), ("name", "in", ["source_id", "tag_ids"])])
        settings.lead_start_date = "2024-01-15"
        settings.lead_min_closed = 25
        settings.lead_recency_half_life = "90"
        settings.train_interval_number = 3
        settings.train_interval_type = "days"
        settings.action_save()
        param = self.env["ir.config_parameter"].get_param
        self.assertEqual(set(param("crm_ai.lead_propensity.fields").split(",")), {"source_id", "tag_ids"})
        self.assertEqual(param("crm_ai.lead_propensity.start_date"), "2024-01-15")
        engine = self._crm_ai_engine()
        self.assertEqual(engine.param("min_closed_per_class"), 25)
        self.assertEqual(engine.param("recency_half_life"), 90.0)
        self.assertIn("recency half-life 90 days", self.Registry.browse(self._crm_ai_train()["model_id"]).hyperparameters)
        cron = self.env.ref("crm_ai.ir_cron_train")
        self.assertEqual((cron.interval_number, cron.interval_type), (3, "days"))
        reopened = self._settings()
        self.assertEqual((reopened.lead_min_closed, reopened.lead_recency_half_life), (25, "90"))
        reopened.lead_propensity_enabled = False
        reopened.action_save()
        self.assertEqual(self.Driver._ai_tasks(), [])
        reopened.lead_propensity_enabled = True
        reopened.crm_ai_enabled = False
        reopened.action_save()
        self.assertFalse(self.Driver._ai_enabled())
        self.assertFalse(self.env["res.config.settings"].create({}).crm_ai_enabled, "Odoo's Settings agree")

    def test_corrupted_parameters_fall_back_to_safe_values(self):
        """One does not simply walk into system parameters: hand edits must not break training."""
        self._crm_ai_param("start_date", "not a date")
        self._crm_ai_param("min_closed_per_class", "forty")
        self._crm_ai_param("fields", "source_id,;DROP TABLE crm_lead;--,nope,stage_id")
        self._crm_ai_param("recency_half_life", "-3 weeks")
        self._crm_ai_param("enabled", "maybe")
        self._crm_ai_param("history_step", "nan")  # passes every range check: never a move to log
        engine = self._crm_ai_engine()
        with mute_logger("odoo.addons.crm_ai.models.engine_lead_propensity", "odoo.addons.crm_ai.models.crm_ai_engine"):
            self.assertIsNone(engine.param("start_date"))
            self.assertEqual(engine.param("min_closed_per_class"), 40)
            self.assertEqual(engine.input_fields(), ["source_id"])
            self.assertEqual(engine.param("recency_half_life"), "auto")
            self.assertEqual(engine.param("history_step"), 2.0)
            self.assertFalse(self._settings().lead_start_date)
            self.assertEqual(self._crm_ai_train()["status"], "active")

    def test_malformed_parameter_is_logged_once(self):
        self._crm_ai_param("min_closed_per_class", "-7")  # out of range
        engine = self._crm_ai_engine()
        with self.assertLogs("odoo.addons.crm_ai.models.crm_ai_engine", "WARNING") as logs:
            self.assertEqual(engine.param("min_closed_per_class"), 40)
            self.assertEqual(engine.param("min_closed_per_class"), 40)
            engine.env["ir.config_parameter"].get_param("crm_ai.enabled")  # something else is logged: nothing
            import logging
            logging.getLogger("odoo.addons.crm_ai.models.crm_ai_engine").warning("end")
        self.assertEqual(len(logs.output), 2, "the bad value once, then the end marker")

    def test_out_of_range_integers_are_clamped_not_failing_the_save(self):
        settings = self._settings()
        settings.write({"lead_min_closed": 10 ** 12, "train_interval_number": -5, "score_interval_number": 10 ** 10})
        settings.action_save()
        self.assertEqual(self._crm_ai_engine().param("min_closed_per_class"), 1_000_000)
        self.assertEqual(self.env.ref("crm_ai.ir_cron_train").interval_number, 1)
        self.assertEqual(self.env.ref("crm_ai.ir_cron_score").interval_number, 1000)
        settings = self.env["crm.ai.settings"].create({"lead_min_closed": -(10 ** 12)})
        self.assertEqual(settings.lead_min_closed, 2)

    def test_history_settings(self):
        settings = self._settings()
        self.assertEqual((settings.lead_history_step, settings.lead_history_days), (2.0, 365))
        settings.write({"lead_history_step": 5.5, "lead_history_days": 3})
        settings.action_save()
        engine = self._crm_ai_engine()
        self.assertEqual(engine.param("history_step"), 5.5)
        self.assertEqual(engine.param("history_days"), 8, "clamped: history must outlive the 7-day trend")
        settings.write({"lead_history_step": -1})
        settings.action_save()
        self.assertEqual(self._crm_ai_engine().param("history_step"), 0.0)

    def test_customer_value_settings(self):
        settings = self._settings()
        self.assertEqual((settings.segment_window_days, settings.segment_k_min, settings.segment_k_max,
                          settings.repeat_horizon_days), (730, 3, 8, 90))
        self.assertFalse(settings.customer_segment_enabled, "switched off by this test class")
        settings.write({"customer_segment_enabled": True, "segment_window_days": 365, "segment_k_min": 6,
                        "segment_k_max": 4, "repeat_horizon_days": 10 ** 9, "repeat_min_customers": 0})
        settings.action_save()
        param = self.env["ir.config_parameter"].get_param
        self.assertEqual(param("crm_ai.customer_segment.window_days"), "365")
        self.assertEqual((param("crm_ai.customer_segment.k_min"), param("crm_ai.customer_segment.k_max")), ("4", "6"),
                         "a reversed range is put right")
        self.assertEqual(param("crm_ai.repeat_purchase.horizon_days"), "730", "clamped to the parameter's maximum")
        self.assertEqual(param("crm_ai.repeat_purchase.min_customers"), "10")
        self.assertIn("customer_segment", self.Driver._ai_tasks())
        self.assertNotIn("repeat_purchase", self.Driver._ai_tasks())
        settings.write({"lead_sentiment_enabled": True})
        settings.action_save()
        self.assertIn("lead_sentiment", self.Driver._ai_tasks())
        self.assertNotIn("partner_sentiment", self.Driver._ai_tasks())

    def test_train_now_returns_at_once_and_the_cron_trains(self):
        action = self._settings().action_train_now()
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("requested", action["params"]["message"])
        self.assertFalse(self.Registry.search([]), "nothing is trained inside the request")
        status = self.env["crm.ai.training"]._ai_status(TASK, self.company)
        self.assertTrue(status.is_due)
        self.assertIn("Training requested", self._settings().status)
        results = self.Registry._cron_ai_train()
        self.assertEqual({r["company"] for r in results}, {*self.env.companies.ids, False},
                         "the cron trains what was requested: the user's companies and the leads without one")
        self.assertEqual(self.Registry.search_count([("state", "=", "active")]), 1)
        self.assertFalse(status.is_due)
        self.assertIn("activated", self._settings().status)

    def test_sales_administrator_uses_ai_settings_without_being_admin(self):
        manager = new_test_user(self.env, "crm_ai_sales_admin", groups="sales_team.group_sale_manager")
        self.assertFalse(manager.has_group("base.group_system"))
        settings = self._settings(manager)
        self.assertIn("Source", settings.lead_field_ids.mapped("display_name"))
        settings.lead_field_ids = settings.lead_field_ids.filtered(lambda f: f.name != "priority")
        settings.lead_min_closed = 30
        settings.action_save()
        self.assertEqual(self._crm_ai_engine().param("min_closed_per_class"), 30)
        settings.action_train_now()
        self.assertTrue(self.env["crm.ai.training"]._ai_status(TASK, self.company).is_due)
        salesman = new_test_user(self.env, "crm_ai_salesman_settings", groups="sales_team.group_sale_salesman")
        with self.assertRaises(AccessError):
            self._settings(salesman)

    def test_a_hand_set_half_life_survives_saving_the_form(self):
        self._crm_ai_param("recency_half_life", "45")
        settings = self._settings()
        self.assertEqual(settings.lead_recency_half_life, "45")
        settings.action_save()
        self.assertEqual(self._crm_ai_engine().param("recency_half_life"), 45.0)

    def test_schedules_have_a_floor_for_managers(self):
        settings = self._settings()
        settings.write({"train_interval_number": 5, "train_interval_type": "minutes"})
        with self.assertRaisesRegex(UserError, "more often than every day"):
            settings.action_save()
        settings.write({"train_interval_number": 1, "train_interval_type": "days",
                        "score_interval_number": 1, "score_interval_type": "minutes"})
        with self.assertRaisesRegex(UserError, "more often than every 15 minutes"):
            settings.action_save()
        settings.write({"score_interval_number": 30})
        settings.action_save()
        self.assertEqual((self.env.ref("crm_ai.ir_cron_score").interval_number,
                          self.env.ref("crm_ai.ir_cron_score").interval_type), (30, "minutes"))

    def test_a_manager_of_some_companies_cannot_change_every_companys_settings(self):
        other = self.env["res.company"].create({"name": "crm_ai other company"})
        manager = new_test_user(self.env, "crm_ai_company_b_admin", groups="sales_team.group_sale_manager",
                                company_id=other.id, company_ids=[(6, 0, other.ids)])
        settings = self._settings(manager)
        settings.crm_ai_enabled = False
        with self.assertRaisesRegex(AccessError, "apply to every company"):
            settings.action_save()
        self.assertTrue(self.Driver._ai_enabled())
        settings.action_train_now()  # training their own company is fine
        Training = self.env["crm.ai.training"]
        self.assertTrue(Training._ai_status(TASK, other).is_due)
        self.assertFalse(Training._ai_status(TASK, self.company).is_due)

    def test_field_picker_offers_exactly_the_usable_fields(self):
        offered = set(self.env["crm.ai.settings"]._lead_field_choices().mapped("name"))
        self.assertEqual(offered, set(self.env["crm.ai.field"].search([("model", "=", "crm.lead")]).mapped("name")),
                         "the picker lists exactly these")
        # "ai" inside a name (campaign, email) is not a reason to hide a field
        self.assertLessEqual({"campaign_id", "email_state", "medium_id", "source_id", "tag_ids", "expected_revenue"},
                             offered)
        self.assertFalse(offered & {"stage_id", "probability", "lost_reason_id", "date_closed", "ai_propensity",
                                    "ai_propensity_grade", "company_id", "description"})
        engine = self._crm_ai_engine()
        self.assertEqual(offered, {n for n in offered if engine.allowed_field(n)})
