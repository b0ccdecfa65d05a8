from unittest.mock import patch

from psycopg2.errors import SerializationFailure

from odoo.tests import tagged

from odoo.addons.crm_ai.models import crm_ai_model as crm_ai_model_module

from .common import TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestPropensityTraining(TestCrmAiCommon):

    def test_train_registers_an_active_model_with_metrics(self):
        result = self._crm_ai_train()
        self.assertEqual(result["status"], "active", result["message"])
        model = self.Registry.browse(result["model_id"])
        self.assertEqual((model.task, model.company_id, model.version, model.state),
                         ("lead_propensity", self.company, 1, "active"))
        self.assertEqual((model.n_won, model.n_lost), (self.n_won, self.n_lost))
        self.assertEqual(model.n_holdout, round(0.2 * (self.n_won + self.n_lost)))
        self.assertGreater(model.auc, 0.75, "the source signal is strong: the model must find it")
        self.assertTrue(0 < model.brier < 0.25)
        self.assertTrue(model.pls_auc, "Odoo PLS is measured on the same holdout")
        self.assertTrue(model.artifact)
        self.assertIn("Source", model.importance.splitlines()[0], "source is the strongest field")
        self.assertLessEqual(model.holdout_date_to, model.date_trained)

    def test_not_enough_data_trains_nothing_and_says_so(self):
        self.env["ir.config_parameter"].set_param("crm_ai.min_closed_per_class", max(self.n_won, self.n_lost) + 1)
        probabilities = self.open_leads.mapped("probability")
        result = self._crm_ai_train()
        self.assertEqual(result["status"], "insufficient_data")
        self.assertIn("Not enough data", result["message"])
        self.assertFalse(self.Registry.search([]))
        self.env["crm.lead"].invalidate_model()
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"insufficient_data"})
        self.assertFalse(any(self.open_leads.mapped("ai_propensity")), "never a made-up 0 % or 100 %")
        self.assertEqual(self.open_leads.mapped("probability"), probabilities, "Odoo's probability is untouched")
        # scoring without a model does nothing
        self.assertEqual(self.Registry._cron_ai_score(), (0, 0))

    def test_leaky_fields_are_never_inputs(self):
        self.env["ir.config_parameter"].set_param(
            "crm_ai.lead_fields", "stage_id,probability,lost_reason_id,date_closed,active,prorated_revenue,source_id")
        with self.assertLogs("odoo.addons.crm_ai.models.crm_lead", "WARNING") as logs:
            self.assertEqual(self.env["crm.lead"]._ai_get_safe_fields(), ["source_id"])
            model = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertIn("ignoring fields that cannot be used as inputs", logs.output[0])
        estimator = model._ai_load()
        self.assertNotIn("stage_id", estimator.feature_names_in_)
        self.assertIn("source_id", estimator.feature_names_in_)

    def test_custom_field_is_a_usable_input(self):
        self.env["ir.model.fields"].create({
            "name": "x_budget_confirmed", "field_description": "Budget confirmed", "ttype": "boolean",
            "model_id": self.env.ref("crm.model_crm_lead").id})
        self.env["ir.config_parameter"].set_param("crm_ai.lead_fields", "source_id,x_budget_confirmed")
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertIn("x_budget_confirmed", model._ai_load().feature_names_in_)
        self.assertIn("Budget confirmed", model.feature_names)

    def test_start_date_limits_training_data(self):
        cutoff = sorted(self.closed_leads.mapped("create_date"))[len(self.closed_leads) // 2]
        self.env["ir.config_parameter"].set_param("crm_ai.start_date", cutoff.date().isoformat())
        closed = self.env["crm.lead"]._ai_closed_leads(self.company)
        self.assertLess(len(closed), len(self.closed_leads))
        self.assertGreater(len(closed), len(self.closed_leads) // 3)

    def test_closed_lead_snapshot_never_sees_the_closing(self):
        """Messages posted at closing time are not features of the closed lead."""
        lead = self.closed_leads[0].with_context(active_test=False)
        lead.message_post(body="Deal signed!", message_type="comment")  # dated now, after closing
        frame = self.env["crm.lead"]._ai_extract(lead.ids, ["source_id"], lead.create_date)
        self.assertEqual(frame.loc[0, "ai_message_count"], 0)
        self.assertLessEqual(frame.loc[0, "_snapshot"], lead.date_closed)
        self.assertGreaterEqual(frame.loc[0, "_snapshot"], lead.create_date)

    def test_train_cron_commits_per_company_and_redoes_a_conflict(self):
        """A company's model is committed before the next company trains; a training
        broken by a concurrent edit (REPEATABLE READ) is rolled back and redone once."""
        lead_class = type(self.env["crm.lead"])
        train = lead_class._ai_propensity_train
        companies_trained = []

        def conflicting(leads, company):
            companies_trained.append(company)
            if len(companies_trained) == 1:
                raise SerializationFailure("could not serialize access due to concurrent update")
            return train(leads, company)

        with patch.object(crm_ai_model_module, "auto_commit", return_value=True), \
                patch.object(self.env.cr, "commit") as commit, \
                patch.object(self.env.cr, "rollback") as rollback, \
                patch.object(lead_class, "_ai_propensity_train", conflicting):
            results = self.Registry._cron_ai_train()
        companies = self.Registry._ai_companies()
        self.assertEqual(len(results), len(companies))
        self.assertEqual(commit.call_count, len(companies))
        self.assertEqual(rollback.call_count, 1)
        self.assertEqual(companies_trained[0], companies_trained[1], "the same company is redone")
