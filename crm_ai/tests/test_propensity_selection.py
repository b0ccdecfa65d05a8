from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.crm_ai.ml import propensity

from .common import TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestPropensitySelection(TestCrmAiCommon):
    """Lead propensity v2: the registry says which family won, against which candidates,
    on which validation leads, and whether calibration was kept."""

    def test_registry_shows_every_family_and_why_the_winner_won(self):
        # 300 closed leads give 3 windows of 24 validation leads: let them choose
        with patch.object(propensity, "MIN_VALIDATION_ROWS", 20):
            result = self._crm_ai_train()
        model = self.Registry.browse(result["model_id"])
        selection = model.metrics["selection"]
        self.assertEqual(selection["windows"], 3)
        self.assertEqual(selection["validation_rows"], 3 * int((self.n_won + self.n_lost) * 0.1),
                         "the deployed model chooses on every closed lead")
        self.assertTrue(selection["holdout_model"])
        self.assertEqual({c["family"] for c in selection["candidates"]}, {"logistic", "naive_bayes", "blend"})
        chosen = [c for c in selection["candidates"] if c["chosen"]]
        self.assertEqual(len(chosen), 1)
        self.assertEqual(chosen[0]["log_loss"], min(c["log_loss"] for c in selection["candidates"]),
                         "the winner has the lowest mean validation log-loss")
        self.assertEqual(chosen[0]["family"], selection["family"])
        self.assertEqual(model.hyperparameters, selection["chosen"])
        self.assertGreater(selection["candidates_tried"], 100)
        self.assertTrue(selection["calibration_test"], "calibration is tried on the newest window")
        self.assertEqual(bool(selection["calibration"]),
                         selection["calibration_test"]["platt_log_loss"] < selection["calibration_test"]["raw_log_loss"])
        html = model.selection_html
        for words in ("Logistic regression", "Naive Bayes", "Blend", "chosen", "3 rolling validation windows",
                      "never the holdout"):
            self.assertIn(words, html)
        # the scores it writes come from the chosen model
        self.env["crm.ai.model"]._cron_ai_score(time_budget=1e9)
        estimator = model._ai_load_estimator()
        self.assertEqual(estimator.family_, selection["family"])
        lead = self.open_leads[0]
        engine = self._crm_ai_engine()
        frame = engine.extract(lead.ids, engine.estimator_fields(estimator), lead.ai_propensity_date)
        self.assertAlmostEqual(lead.ai_propensity, 100 * estimator.predict_proba(frame)[0, 1], delta=0.01)

    def test_the_active_models_recipe_is_refitted_without_a_new_search(self):
        """Retraining with an active model: the challenger searches twice (training part,
        then every closed lead); the active model's recipe is refitted as it is."""
        with patch.object(propensity, "MIN_VALIDATION_ROWS", 20):
            self._crm_ai_train()
            searches = []
            original = propensity.LeadPropensityModel._choose_hyperparameters

            def spy(model, X, y, age_days, sample_weight=None):
                searches.append(model.family)
                return original(model, X, y, age_days, sample_weight)
            with patch.object(propensity.LeadPropensityModel, "_choose_hyperparameters", spy):
                second = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertTrue(second.previous_score, "the active model was measured on the new holdout")
        self.assertEqual(searches.count("auto"), 2, searches)

    def test_too_few_leads_to_choose_says_so_and_shows_no_table(self):
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertEqual(model.metrics["selection"]["candidates"], [])
        self.assertFalse(model.selection_html)
        self.assertIn("logistic regression (C=1)", model.hyperparameters)
