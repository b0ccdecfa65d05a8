from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestModelRegistry(TestCrmAiCommon):

    def test_quality_gate_rejects_a_worse_model(self):
        good = self.Registry.browse(self._crm_ai_train()["model_id"])
        # the next model only sees a field without signal: its AUC collapses on the same holdout
        self.env["ir.config_parameter"].set_param("crm_ai.lead_fields", "priority")
        result = self._crm_ai_train()
        worse = self.Registry.browse(result["model_id"])
        self.assertEqual(result["status"], "rejected")
        self.assertEqual((good.state, worse.state), ("active", "rejected"))
        self.assertIn("below 95%", worse.gate_reason)
        self.assertAlmostEqual(worse.previous_auc, good.auc, delta=0.02,
                               msg="the champion is measured as it was: refitted on the same training leads")
        self.assertIn("refitted", worse.gate_reason)
        self.assertEqual(worse.version, 2)

    def test_an_equal_model_replaces_and_archives(self):
        first = self.Registry.browse(self._crm_ai_train()["model_id"])
        second = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertEqual((first.state, second.state), ("archived", "active"))

    def test_rollback(self):
        first = self.Registry.browse(self._crm_ai_train()["model_id"])
        second = self.Registry.browse(self._crm_ai_train()["model_id"])
        first.action_activate()
        self.assertEqual((first.state, second.state), ("active", "archived"))
        self.Registry._cron_ai_score()
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_model_id").ids), {first.id})
        with self.assertRaises(UserError):
            first.unlink()  # the active model can't be deleted
        second.unlink()

    def test_tampered_artifact_is_refused_never_loaded(self):
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_ai_model SET artifact = overlay(artifact placing decode('0001', 'hex') "
                            "from length(artifact) - 4) WHERE id = %s", (model.id,))
        model.invalidate_recordset()
        with self.assertLogs("odoo.addons.crm_ai.models.crm_ai_model", "WARNING"), \
                self.assertRaisesRegex(UserError, "signature"):
            model._ai_load()
        # scoring refuses it too (and leaves the leads unscored), training gates without it
        with mute_logger("odoo.addons.crm_ai.models.crm_lead", "odoo.addons.crm_ai.models.crm_ai_model"):
            self.assertEqual(self.Registry._cron_ai_score(), (0, 0))
            self.assertFalse(self.open_leads.filtered("ai_propensity"))
            self.assertEqual(self._crm_ai_train()["status"], "active")

    def test_model_signed_under_another_secret_is_refused(self):
        """A duplicated database gets a new ``database.secret``: its copied models are
        refused (never unpickled) and the next training replaces them."""
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.env["ir.config_parameter"].sudo().set_param("database.secret", "a-new-secret")
        with self.assertLogs("odoo.addons.crm_ai.models.crm_ai_model", "WARNING") as logs, \
                self.assertRaisesRegex(UserError, "signature"):
            model._ai_load()
        self.assertIn("refusing to load", logs.output[0])
        with mute_logger("odoo.addons.crm_ai.models.crm_lead", "odoo.addons.crm_ai.models.crm_ai_model"):
            self.assertEqual(self._crm_ai_train()["status"], "active")

    def test_foreign_pickle_is_refused(self):
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        import pickle
        evil = pickle.dumps({"not": "ours"})
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_ai_model SET artifact = %s WHERE id = %s", (evil, model.id))
        model.invalidate_recordset()
        with self.assertLogs("odoo.addons.crm_ai.models.crm_ai_model", "WARNING"), \
                self.assertRaisesRegex(UserError, "not a crm_ai model"):
            model._ai_load()

    def test_models_cannot_be_forged_through_the_orm(self):
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        with self.assertRaises(AccessError):
            model.write({"artifact": b"AAAA"})
        with self.assertRaises(AccessError):
            model.write({"auc": 0.99})
        with self.assertRaises(AccessError):
            self.Registry.create({"task": "lead_propensity", "version": 99})

    def test_versions_are_per_company(self):
        other = self.env["res.company"].create({"name": "crm_ai other company"})
        self._crm_ai_train()
        self.assertEqual(self.Registry._ai_next_version("lead_propensity", self.company), 2)
        self.assertEqual(self.Registry._ai_next_version("lead_propensity", other), 1)
        self.assertFalse(self.Registry._ai_active("lead_propensity", other))
