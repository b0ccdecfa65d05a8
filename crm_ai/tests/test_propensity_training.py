from datetime import timedelta
from unittest.mock import patch

from psycopg2.errors import SerializationFailure

from odoo import fields
from odoo.sql_db import TestCursor
from odoo.tests import tagged

from odoo.addons.crm_ai.ml import LeadPropensityModel
from odoo.addons.crm_ai.models import crm_ai_driver as driver_module

from .common import TASK, TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestPropensityTraining(TestCrmAiCommon):

    def test_train_registers_an_active_model_with_metrics(self):
        result = self._crm_ai_train()
        self.assertEqual(result["status"], "active", result["message"])
        model = self.Registry.browse(result["model_id"])
        self.assertEqual((model.task, model.company_id, model.version, model.state),
                         ("lead_propensity", self.company, 1, "active"))
        counts, ours, pls = model.metrics["counts"], model.metrics["model"], model.metrics["baseline"]
        self.assertEqual((counts["won"], counts["lost"]), (self.n_won, self.n_lost))
        self.assertEqual(model.n_holdout, round(0.2 * (self.n_won + self.n_lost)))
        self.assertEqual((model.primary_metric, model.baseline, model.higher_is_better), ("AUC", "Odoo PLS", True))
        self.assertGreater(model.score, 0.75, "the source signal is strong: the model must find it")
        self.assertAlmostEqual(model.score, ours["auc"], places=3)
        self.assertTrue(0 < ours["brier"] < 0.25)
        self.assertTrue(0 < ours["calibration_error"] < 0.2)
        self.assertTrue(pls["calibration_error"] and pls["log_loss"] and pls["brier"])
        self.assertAlmostEqual(model.baseline_score, pls["auc"], places=3, msg="Odoo PLS is measured on the same holdout")
        self.assertIn("Odoo PLS", model.metrics_html)
        self.assertIn("Brier", model.metrics_html)
        self.assertTrue(model.artifact)
        self.assertIn("Source", model.importance.splitlines()[0], "source is the strongest field")
        self.assertLessEqual(model.holdout_date_to, model.date_trained)

    def test_training_status_reaches_the_database_through_its_own_cursor(self):
        """Outside a test the status row is written through a cursor of its own, committed at
        once (a training's rollback must not undo "started"): the write must be flushed before
        that commit.  Here the other cursor works inside this test's transaction (test mode)."""
        Status = self.env["crm.ai.training"]
        Status._ai_request([TASK], [self.company])
        status = Status._ai_status(TASK, self.company)
        self.env.flush_all()
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)
        commit = TestCursor.commit
        unflushed = []

        def commit_as_in_production(cursor):
            # A commit flushes through the cursor's live environments only: outside tests one
            # nothing refers to any more is gone by then, and its writes with it (here a test
            # keeps it alive).  So nothing may be left to flush when the commit comes.
            if cursor.transaction is not None:
                unflushed.extend(cursor.transaction.cache.get_dirty_fields())
            return commit(cursor)

        with patch.object(type(self.env["crm.ai.driver"]), "_ai_may_open_cursor", return_value=True), \
                patch.object(TestCursor, "commit", commit_as_in_production):
            status._ai_start()
            status._ai_done({"status": "active", "message": "trained", "model_id": False})
        self.assertFalse(unflushed)
        self.env.cr.execute("SELECT attempts, date_started IS NOT NULL, result FROM crm_ai_training WHERE id = %s",
                            [status.id])
        self.assertEqual(self.env.cr.fetchone(), (1, True, "active"))

    def test_not_enough_data_trains_nothing_and_says_so(self):
        self._crm_ai_param("min_closed_per_class", max(self.n_won, self.n_lost) + 1)
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
        self._crm_ai_param("fields", "stage_id,probability,lost_reason_id,date_closed,date_open,active,prorated_revenue,"
                                     "source_id")
        with self.assertLogs("odoo.addons.crm_ai.models.engine_lead_propensity", "WARNING") as logs:
            self.assertEqual(self._crm_ai_engine().input_fields(), ["source_id"])
            model = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertIn("ignoring fields that cannot be used as inputs", logs.output[0])
        estimator = model._ai_load_estimator()
        self.assertNotIn("stage_id", estimator.feature_names_in_)
        self.assertIn("source_id", estimator.feature_names_in_)

    def test_custom_field_is_a_usable_input(self):
        self.env["ir.model.fields"].create({
            "name": "x_budget_confirmed", "field_description": "Budget confirmed", "ttype": "boolean",
            "model_id": self.env.ref("crm.model_crm_lead").id})
        self._crm_ai_param("fields", "source_id,x_budget_confirmed")
        model = self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertIn("x_budget_confirmed", model._ai_load_estimator().feature_names_in_)
        self.assertIn("Budget confirmed", model.feature_names)

    def test_start_date_limits_training_data(self):
        cutoff = sorted(self.closed_leads.mapped("create_date"))[len(self.closed_leads) // 2]
        self._crm_ai_param("start_date", cutoff.date().isoformat())
        closed = self._crm_ai_engine().closed_leads()
        self.assertLess(len(closed), len(self.closed_leads))
        self.assertGreater(len(closed), len(self.closed_leads) // 3)

    def test_closed_leads_weigh_their_lifetime_in_training_and_in_the_holdout(self):
        """One snapshot per closed lead under-counts long-lived leads among the open ones:
        each closed lead weighs its lifetime (LIFETIME_WEIGHT_DAYS), relative to the mean."""
        won = self.closed_leads.with_context(active_test=False).filtered(lambda lead: lead.probability == 100)
        lost = self.closed_leads.with_context(active_test=False) - won
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET date_closed = create_date + interval '60 days' WHERE id = ANY(%s)",
                            [won.ids])
        self.env.cr.execute("UPDATE crm_lead SET date_closed = create_date + interval '10 days' WHERE id = ANY(%s)",
                            [lost.ids])
        # forgotten open for years, closed within minutes, and imported (created after it closed)
        self.env.cr.execute("UPDATE crm_lead SET date_closed = create_date + interval '2000 days' WHERE id = %s",
                            [won[0].id])
        self.env.cr.execute("UPDATE crm_lead SET date_closed = create_date + interval '10 minutes' WHERE id = %s",
                            [lost[2].id])
        self.env.cr.execute("UPDATE crm_lead SET date_closed = create_date - interval '5 days' WHERE id = %s",
                            [lost[0].id])
        self.env.invalidate_all()
        engine = self._crm_ai_engine()
        ids = won.ids + lost.ids
        weights = dict(zip(ids, engine.lifetime_weights(ids)))
        self.assertAlmostEqual(sum(weights.values()) / len(ids), 1.0)
        self.assertAlmostEqual(weights[won[1].id] / weights[lost[1].id], 6.0)
        self.assertAlmostEqual(weights[won[0].id] / weights[lost[1].id], 36.5, msg="capped at a year")
        self.assertAlmostEqual(weights[lost[2].id] / weights[lost[1].id], 1 / 240, msg="at least an hour")
        known = [w for i, w in weights.items() if i != lost[0].id]
        self.assertAlmostEqual(weights[lost[0].id], sum(known) / len(known),
                               msg="an unknown lifetime (imported history) weighs the mean, not the least")
        # and training uses them, for the model and its measures
        seen = []
        original = LeadPropensityModel.fit

        def spy(model, X, y, age_days=None, sample_weight=None):
            seen.append(sample_weight)
            return original(model, X, y, age_days=age_days, sample_weight=sample_weight)

        with patch.object(LeadPropensityModel, "fit", spy):
            self._crm_ai_train()
        self.assertEqual(len(seen), 2, "the measured trial and the deployed model")
        self.assertEqual(len(seen[1]), len(ids))
        self.assertAlmostEqual(float(seen[1].max() / seen[1].min()), 365.0 * 24, msg="a year against an hour")

    def test_the_holdout_is_measured_weighted_for_both_models(self):
        """crm_ai's and Odoo PLS's holdout figures and reliability bins weigh the holdout's
        leads by lifetime, as the model learns them."""
        from odoo.addons.crm_ai.models import engine_lead_propensity as module
        calls = []
        for name in ("binary_metrics", "reliability_bins"):
            original = getattr(module, name)

            def spy(y_true, p_won, *args, _name=name, _original=original, **kwargs):
                calls.append((_name, kwargs.get("sample_weight")))
                return _original(y_true, p_won, *args, **kwargs)

            self.enterContext(patch.object(module, name, spy))
        self._crm_ai_train()
        self.assertEqual(sorted(name for name, _w in calls), ["binary_metrics"] * 2 + ["reliability_bins"] * 2)
        self.assertTrue(all(weights is not None and len(weights) for _name, weights in calls))

    def test_closed_lead_snapshot_never_sees_the_closing(self):
        """Messages posted at closing time are not features of the closed lead."""
        lead = self.closed_leads[0].with_context(active_test=False)
        lead.message_post(body="Deal signed!", message_type="comment")  # dated now, after closing
        frame = self._crm_ai_engine().extract(lead.ids, ["source_id"], lead.create_date)
        self.assertEqual(frame.loc[0, "ai_message_count"], 0)
        self.assertLessEqual(frame.loc[0, "_snapshot"], lead.date_closed)
        self.assertGreaterEqual(frame.loc[0, "_snapshot"], lead.create_date)

    def test_an_imported_lead_closed_before_its_creation_sees_nothing_after_its_closing(self):
        """History imported today: created now, closed long ago.  Its features must be those
        of its closing day, not of the import day (later messages, deals closed since)."""
        partner = self.env["res.partner"].create({"name": "crm_ai imported customer", "is_company": True})
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        imported, later = Lead.create([{"name": n, "partner_id": partner.id, "company_id": self.company.id,
                                        "expected_revenue": 500} for n in ("imported deal", "later deal")])
        self.env.flush_all()
        self.env.cr.execute("""UPDATE crm_lead SET stage_id = %s, probability = 100,
                                      date_closed = now() AT TIME ZONE 'UTC' - %s * interval '1 day'
                                WHERE id = %s""", (self.won_stage.id, 100, imported.id))
        self.env.cr.execute("""UPDATE crm_lead SET stage_id = %s, probability = 100,
                                      date_closed = now() AT TIME ZONE 'UTC' - %s * interval '1 day'
                                WHERE id = %s""", (self.won_stage.id, 50, later.id))
        imported.invalidate_recordset()
        message = imported.message_post(body="Great, renewed for next year!", message_type="comment")
        self.env.cr.execute("UPDATE mail_message SET date = now() AT TIME ZONE 'UTC' - interval '80 days'"
                            " WHERE id = %s", (message.id,))  # after its closing, before the import
        frame = self._crm_ai_engine().extract(imported.ids, ["source_id"], fields.Datetime.now())
        self.assertLessEqual(frame.loc[0, "_snapshot"], imported.date_closed)
        self.assertEqual(frame.loc[0, "ai_message_count"], 0, "a message after its closing")
        self.assertEqual(frame.loc[0, "ai_partner_won_count"], 0, "a deal closed after its closing")
        self.assertEqual(frame.loc[0, "ai_age_days"], 0)

    def test_train_cron_commits_per_company_and_redoes_a_conflict(self):
        """A company's model is committed before the next company trains; a training
        broken by a concurrent edit (REPEATABLE READ) is rolled back and redone once."""
        driver_class = type(self.Driver)
        train = driver_class._ai_train_unit
        companies_trained = []

        def conflicting(driver, task, company):
            companies_trained.append(company)
            if len(companies_trained) == 1:
                raise SerializationFailure("could not serialize access due to concurrent update")
            return train(driver, task, company)

        with patch.object(driver_module, "auto_commit", return_value=True), \
                patch.object(self.env.cr, "commit") as commit, \
                patch.object(self.env.cr, "rollback") as rollback, \
                patch.object(driver_class, "_ai_train_unit", conflicting):
            results = self.Registry._cron_ai_train()
        companies = self.Driver._ai_companies()
        self.assertEqual(len(results), len(companies))
        # the requests, then per company: its start (counted, in case it is killed), its model,
        # and its result (the status rows themselves are written in transactions of their own)
        self.assertEqual(commit.call_count, 1 + 3 * len(companies))
        self.assertEqual(rollback.call_count, 1)
        self.assertEqual(companies_trained[0], companies_trained[1], "the same company is redone")

    def test_train_cron_resumes_where_its_time_budget_stopped(self):
        """The budget is checked before every (engine, company) pair: a call trains one pair
        at least, reports the rest, and the next call goes on with them (not from the start)."""
        self.env["res.company"].create({"name": "crm_ai other company"})
        pairs = len(self.Driver._ai_companies())
        train_cron = self.env.ref("crm_ai.ir_cron_train")
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search_count([("cron_id", "=", train_cron.id)])
        with patch.object(type(self.env["ir.cron"]), "_notify_progress") as notify:
            first = self.Registry._cron_ai_train(time_budget=-1)
        self.assertEqual(len(first), 1)
        # ir.cron must not call again in the same time-limit window: it is triggered instead
        notify.assert_called_with(done=1, remaining=0)
        self.assertEqual(Trigger.search_count([("cron_id", "=", train_cron.id)]), triggers + 1)
        second = self.Registry._cron_ai_train(time_budget=10 ** 6)
        self.assertEqual(len(second), pairs - 1, "the pairs left, not the first one again")
        self.assertNotIn((first[0]["task"], first[0]["company"]), [(r["task"], r["company"]) for r in second])
        self.assertEqual(self.Registry._cron_ai_train(time_budget=10 ** 6), [],
                         "woken again with nothing due: it retrains nothing")
        Status = self.env["crm.ai.training"]
        Status.search([]).sudo().write({"date_requested": fields.Datetime.subtract(fields.Datetime.now(), days=8)})
        self.assertEqual(len(self.Registry._cron_ai_train(time_budget=10 ** 6)), pairs,
                         "a week later, the schedule trains every pair again")

    def test_train_now_during_a_training_is_not_lost(self):
        """A request made after a training started is still due once it ends (it may ask for
        settings that training did not read)."""
        Training = self.env["crm.ai.training"]
        driver_class = type(self.Driver)
        train = driver_class._ai_train_unit

        def clicked_meanwhile(driver, task, company):
            Training._ai_request([task], [company])  # a manager's "Train now"
            return train(driver, task, company)

        Training._ai_request([TASK], [self.company])
        with patch.object(driver_class, "_ai_train_unit", clicked_meanwhile):
            self.Registry._cron_ai_train()
        self.assertTrue(Training._ai_status(TASK, self.company).is_due)
        self.assertEqual([r["company"] for r in self.Registry._cron_ai_train() if r["task"] == TASK][:1],
                         [self.company.id])

    def test_a_training_killed_mid_run_waits_for_the_next_request_inline(self):
        """Retried first on every call, a training that always overruns would hold back every
        pair after it (and Odoo deactivates a cron killed again and again): it waits."""
        Training = self.env["crm.ai.training"]
        Training._ai_request([TASK], [self.company])
        status = Training._ai_status(TASK, self.company).sudo()
        status.write({"date_started": status.date_requested + timedelta(seconds=1), "attempts": 1})
        self.assertTrue(status._ai_unfinished())
        self.assertFalse(status.is_due)
        self.assertFalse([r for r in self.Registry._cron_ai_train() if r["company"] == self.company.id])

    def test_training_killed_three_times_waits_for_the_next_run(self):
        Training = self.env["crm.ai.training"]
        Training._ai_request([TASK], [self.company])
        Training._ai_status(TASK, self.company).sudo().write({"attempts": 3})  # started thrice, never finished
        results = {r["company"]: r for r in self.Registry._cron_ai_train()}
        self.assertEqual(results[self.company.id]["status"], "error")
        self.assertIn("without finishing", results[self.company.id]["message"])
        self.assertFalse(Training._ai_status(TASK, self.company).is_due)
        self.assertFalse(self.Registry.search([]))

    def _closed_by_age(self):
        """Closed leads oldest first, as training splits them."""
        return [row[0] for row in self._crm_ai_engine().closed_leads()]

    def _set_outcome(self, ids, won):
        self.env.flush_all()
        if won:
            self.env.cr.execute("UPDATE crm_lead SET active = TRUE, stage_id = %s, probability = 100 WHERE id = ANY(%s)",
                                (self.won_stage.id, ids))
        else:
            self.env.cr.execute("UPDATE crm_lead SET active = FALSE, stage_id = %s, probability = 0 WHERE id = ANY(%s)",
                                (self.first_stage.id, ids))
        self.env["crm.lead"].invalidate_model()

    def test_single_outcome_holdout_keeps_the_active_model(self):
        """A holdout of only lost leads has no AUC: it must not let any model in
        over an active one, nor be recorded as an AUC of 0."""
        closed = self._closed_by_age()
        self._set_outcome(closed[-round(0.2 * len(closed)):], won=False)
        first = self._crm_ai_train()
        self.assertEqual(first["status"], "active", "a company's first model is activated")
        self.assertIn("could not measure AUC", self.Registry.browse(first["model_id"]).gate_reason)
        self.assertIn("AUC undefined", first["message"])
        second = self._crm_ai_train()
        model = self.Registry.browse(second["model_id"])
        self.assertEqual(second["status"], "rejected")
        self.assertIn("only won or only lost", model.gate_reason)
        self.assertEqual(self.Registry.browse(first["model_id"]).state, "active")
        self.assertFalse(model.score_defined)
        self.assertIsNone(model.metrics["model"]["auc"])

    def test_training_part_with_one_outcome_trains_nothing(self):
        """Won deals imported first, lost ones after: the older 80 % hold one outcome."""
        closed = self._closed_by_age()
        n_holdout = round(0.2 * len(closed))
        self._set_outcome(closed[:-n_holdout], won=True)
        self._set_outcome(closed[-n_holdout:], won=False)
        result = self._crm_ai_train()
        self.assertEqual(result["status"], "insufficient_data")
        self.assertIn("are all won", result["message"])
        self.assertFalse(self.Registry.search([]))
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"insufficient_data"})

    def test_a_failing_company_does_not_stop_the_others(self):
        other = self.env["res.company"].create({"name": "crm_ai other company"})
        driver_class = type(self.Driver)
        train = driver_class._ai_train_unit

        def failing_for_main(driver, task, company):
            if company == self.company:
                driver.env["crm.lead"].create({"name": "written before failing", "company_id": company.id})
                raise ValueError("corrupt data")
            return train(driver, task, company)

        with patch.object(driver_class, "_ai_train_unit", failing_for_main), \
                self.assertLogs("odoo.addons.crm_ai.models.crm_ai_driver", "ERROR") as logs:
            results = self.Registry._cron_ai_train()
        by_company = {r["company"]: r for r in results}
        self.assertEqual(by_company[self.company.id]["status"], "error")
        self.assertIn("corrupt data", by_company[self.company.id]["message"])
        self.assertEqual(by_company[other.id]["status"], "insufficient_data", "the next company still trains")
        self.assertIn("training lead_propensity failed", logs.output[0])
        self.assertFalse(self.env["crm.lead"].search([("name", "=", "written before failing")]),
                         "the failed company's work is undone")

    def test_no_usable_field_falls_back_to_the_default_inputs(self):
        self._crm_ai_param("fields", "nope,stage_id")
        with self.assertLogs("odoo.addons.crm_ai.models.engine_lead_propensity", "WARNING") as logs:
            names = self._crm_ai_engine().input_fields()
            self.assertEqual(self._crm_ai_train()["status"], "active")
        self.assertIn("source_id", names)
        self.assertTrue(any("using the default set" in line for line in logs.output))
        # no lead field at all still extracts the history signals
        frame = self._crm_ai_engine().extract(self.open_leads.ids, [], fields.Datetime.now())
        self.assertEqual(len(frame), len(self.open_leads))
        self.assertIn("ai_age_days", frame.columns)

    def test_customer_history_counts_only_the_same_company(self):
        other = self.env["res.company"].create({"name": "crm_ai other company"})
        partner = self.env["res.partner"].create({"name": "crm_ai customer", "is_company": True})
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        past = [Lead.create({"name": f"past deal {c.name}", "partner_id": partner.id, "company_id": c.id,
                             "expected_revenue": 1000}) for c in (self.company, other)]
        lead = Lead.create({"name": "new deal", "partner_id": partner.id, "company_id": self.company.id})
        self.env.flush_all()
        self.env.cr.execute("""UPDATE crm_lead SET stage_id = %s, probability = 100,
                                      date_closed = %s - interval '30 days' WHERE id = ANY(%s)""",
                            (self.won_stage.id, lead.create_date, [p.id for p in past]))
        frame = self._crm_ai_engine().extract(lead.ids, ["source_id"], fields.Datetime.now())
        self.assertEqual(frame.loc[0, "ai_partner_won_count"], 1, "the other company's won deal is not counted")
        self.assertEqual(frame.loc[0, "ai_partner_won_revenue"], 1000)
