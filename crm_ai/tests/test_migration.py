"""18.0.1 -> 18.0.2: the registry's propensity columns, raw artifacts and parameters."""

import base64
import importlib.util
from pathlib import Path

from odoo.tests import tagged

from odoo.addons.crm_ai.ml import persistence
from odoo.addons.crm_ai.models.crm_ai_engine import ModelRefused

from .common import TASK, TestCrmAiCommon

SCRIPT = Path(__file__).parents[1] / "migrations" / "18.0.2.0.0" / "post-migrate.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("crm_ai_migration_18_0_2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@tagged("crm_ai", "post_install", "-at_install")
class TestMigration(TestCrmAiCommon):

    def test_version_1_rows_and_parameters_migrate(self):
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        estimator = model._ai_load_estimator()
        cr = self.env.cr
        self.env.flush_all()
        # A version 1 row: propensity columns, a raw (not base64) blob signed without meta.
        cr.execute("""ALTER TABLE crm_ai_model ADD COLUMN auc float8, ADD COLUMN log_loss float8,
                      ADD COLUMN brier float8, ADD COLUMN calibration_error float8, ADD COLUMN pls_auc float8,
                      ADD COLUMN pls_log_loss float8, ADD COLUMN pls_brier float8,
                      ADD COLUMN pls_calibration_error float8, ADD COLUMN previous_auc float8,
                      ADD COLUMN n_won int4, ADD COLUMN n_lost int4""")
        old_blob = persistence.dumps_signed(estimator, model._signing_key(), meta={"task": TASK})
        cr.execute("""UPDATE crm_ai_model SET auc = 0.81, log_loss = 0.5, brier = 0.17, calibration_error = 0.04,
                             pls_auc = 0.7, pls_log_loss = 0.6, pls_brier = 0.2, pls_calibration_error = 0.1,
                             previous_auc = 0, n_won = 120, n_lost = 180, primary_metric = NULL, metrics = NULL,
                             score = 0, baseline_score = 0, artifact = %s WHERE id = %s""", (old_blob, model.id))
        forged = self.Registry.sudo().create({"task": TASK, "company_id": self.company.id, "version": 2})
        cr.execute("UPDATE crm_ai_model SET artifact = %s WHERE id = %s",
                   (persistence.dumps_signed(estimator, b"another database", meta={"task": TASK}), forged.id))
        cr.execute("ALTER TABLE crm_lead ADD COLUMN IF NOT EXISTS ai_propensity_reasons text")
        cr.execute("UPDATE crm_lead SET ai_propensity_state = 'scored', ai_propensity_date = now()"
                   " WHERE id = %s", [self.open_leads[0].id])
        params = self.env["ir.config_parameter"].sudo()
        params.search([("key", "like", "crm_ai.lead_propensity.")]).unlink()
        params.set_param("crm_ai.lead_fields", "source_id,tag_ids")
        params.set_param("crm_ai.min_closed_per_class", "25")
        self.env.invalidate_all()

        _load_script().migrate(cr, "18.0.1.0.0")
        self.env.invalidate_all()

        self.assertEqual((model.primary_metric, model.score, model.baseline, model.baseline_score),
                         ("AUC", 0.81, "Odoo PLS", 0.7))
        self.assertTrue(model.score_defined and model.baseline_score_defined)
        self.assertEqual(model.metrics["model"]["brier"], 0.17)
        self.assertEqual(model.metrics["baseline"]["calibration_error"], 0.1)
        self.assertEqual(model.metrics["counts"], {"won": 120, "lost": 180})
        # the raw blob is now base64, bound to its task, company and version, and loads
        self.assertTrue(base64.b64decode(model.with_context(bin_size=False).artifact).startswith(persistence.MAGIC))
        self.assertEqual(list(model._ai_load_estimator().feature_names_in_), list(estimator.feature_names_in_))
        # a blob that did not verify is not re-signed: still refused
        with self.assertLogs("odoo.addons.crm_ai.models.crm_ai_model", "WARNING"):
            with self.assertRaises(ModelRefused):
                forged._ai_load_estimator()
        self.assertEqual(params.get_param("crm_ai.lead_propensity.fields"), "source_id,tag_ids")
        self.assertEqual(self._crm_ai_engine().param("min_closed_per_class"), 25)
        self.assertFalse(params.get_param("crm_ai.lead_fields"))
        self.assertFalse(self.open_leads[0].ai_propensity_date, "rescored by the next run, with reasons as data")
        # running it twice changes nothing
        _load_script().migrate(cr, "18.0.1.0.0")
        self.env.invalidate_all()
        self.assertEqual(model.score, 0.81)
        self.assertTrue(model._ai_load_estimator())
