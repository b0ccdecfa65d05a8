import json
from unittest.mock import patch

from psycopg2.errors import SerializationFailure

from odoo import Command, fields
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.crm_ai.ml import format_reason
from odoo.addons.crm_ai.models import crm_ai_driver as driver_module
from odoo.addons.crm_ai.models import engine_lead_propensity as engine_module

from .common import TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestPropensityScoring(TestCrmAiCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = cls.Registry.browse(cls._crm_ai_train()["model_id"])

    def _score(self, **kwargs):
        return self.Registry._cron_ai_score(**kwargs)

    def test_scores_open_leads_within_bounds_with_reasons(self):
        done, remaining = self._score()
        self.assertEqual((done, remaining), (len(self.open_leads), 0))
        for lead in self.open_leads:
            self.assertEqual(lead.ai_propensity_state, "scored")
            self.assertTrue(0.01 <= lead.ai_propensity <= 99.99)
            self.assertEqual(lead.ai_propensity_model_id, self.model)
            self.assertTrue(lead.ai_propensity_date)
            lines = lead.ai_propensity_reasons.splitlines()
            self.assertTrue(0 < len(lines) <= 10)
            self.assertEqual(lead.ai_propensity_grade, engine_module.grade(lead.ai_propensity))
            self.assertIn("<li", lead.ai_propensity_reasons_html)
            for line in lines:
                self.assertIn("text-success" if "(+" in line else "text-danger", lead.ai_propensity_reasons_html)
        self.assertFalse(self.closed_leads.with_context(active_test=False).filtered("ai_propensity"),
                         "closed leads are not scored")

    def test_a_lead_the_engine_cannot_score_is_set_aside_and_the_others_are_scored(self):
        """One bad record must not fail its batch run after run (every lead after it never scored)."""
        bad = self.open_leads[len(self.open_leads) // 3]
        score = engine_module.LeadPropensityEngine.score

        def failing(engine, ids, *args):
            if bad.id in ids:
                raise ValueError("a value the engine cannot read")
            return score(engine, ids, *args)

        with patch.object(engine_module.LeadPropensityEngine, "score", failing), \
                patch.object(engine_module.LeadPropensityEngine, "batch_size", 5), \
                mute_logger("odoo.addons.crm_ai.models.crm_ai_driver"):
            self.assertEqual(self._score(), (len(self.open_leads) - 1, 0))
            self.env.invalidate_all()
            self.assertEqual(set((self.open_leads - bad).mapped("ai_propensity_state")), {"scored"})
            self.assertEqual((bad.ai_propensity_state, bad.ai_propensity_model_id), ("error", self.model))
            engine = self.env["crm.ai.driver"]._ai_engine(engine_module.LeadPropensityEngine.task, self.company)
            self.assertFalse(self.env["crm.ai.driver"]._ai_pending_among(engine, self.model, self.open_leads.ids),
                             "set aside: not retried on every run")
        bad.expected_revenue += 1  # once it changes (or at the daily rescore), it is tried again
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity_date = ai_propensity_date - interval '1 minute'"
                            " WHERE id = %s", [bad.id])  # (a test's writes share one now())
        self.env.invalidate_all()
        self.assertEqual(self._score(), (1, 0))
        self.assertEqual(bad.ai_propensity_state, "scored")

    def test_bad_leads_among_good_ones_are_all_set_aside_however_many(self):
        """More failing records than the budget, but some succeed: bad data, not a broken engine."""
        bad = self.open_leads[1:4]
        score = engine_module.LeadPropensityEngine.score

        def failing(engine, ids, *args):
            if set(ids) & set(bad.ids):
                raise ValueError("a value the engine cannot read")
            return score(engine, ids, *args)

        with patch.object(engine_module.LeadPropensityEngine, "score", failing), \
                patch.object(engine_module.LeadPropensityEngine, "batch_size", 5), \
                patch.object(driver_module, "MAX_SET_ASIDE", 2), \
                mute_logger("odoo.addons.crm_ai.models.crm_ai_driver"):
            self.assertEqual(self._score(), (len(self.open_leads) - len(bad), 0))
        self.env.invalidate_all()
        self.assertEqual(set(bad.mapped("ai_propensity_state")), {"error"})
        self.assertEqual(set((self.open_leads - bad).mapped("ai_propensity_state")), {"scored"})

    def test_an_engine_failing_on_every_lead_is_an_error_not_a_batch_written_off(self):
        """Many failures in one batch: the engine (or its model) fails as a whole. Raised for the
        next run's retry (a queue's too), never set aside lead by lead."""
        def broken(engine, ids, *args):
            raise ValueError("the model cannot score")

        with patch.object(engine_module.LeadPropensityEngine, "score", broken), \
                patch.object(driver_module, "MAX_SET_ASIDE", 3), \
                mute_logger("odoo.addons.crm_ai.models.crm_ai_driver"):
            self.assertEqual(self._score(), (0, 0))
        self.env.invalidate_all()
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"pending"})

    def test_pivot_and_graph_group_by_grade_and_average(self):
        """What the pivot / graph views ask: group by AI Grade, measure the average propensity."""
        self._score()
        domain = [("id", "in", self.open_leads.ids)]
        groups = self.env["crm.lead"].read_group(domain, ["ai_propensity:avg"], ["ai_propensity_grade"])
        self.assertEqual(sum(g["ai_propensity_grade_count"] for g in groups), len(self.open_leads))
        for group in groups:
            grade = group["ai_propensity_grade"]
            leads = self.open_leads.filtered(lambda l, grade=grade: l.ai_propensity_grade == grade)
            self.assertAlmostEqual(group["ai_propensity"], sum(leads.mapped("ai_propensity")) / len(leads), places=2)
        pivot = self.env["crm.lead"].get_views([(False, "pivot"), (False, "graph")])
        self.assertIn("ai_propensity", pivot["models"]["crm.lead"]["fields"])

    def test_referral_scores_above_cold_list_and_says_why(self):
        self._score()
        referral = self.open_leads.filtered(lambda l: l.source_id == self.sources["Referral"])
        cold = self.open_leads.filtered(lambda l: l.source_id == self.sources["Cold list"])
        self.assertTrue(referral and cold, "the seed gives both kinds of open leads")
        self.assertGreater(min(referral.mapped("ai_propensity")), max(cold.mapped("ai_propensity")))
        self.assertIn("Source: Referral (crm_ai test) (+", referral[0].ai_propensity_reasons.splitlines()[0])
        self.assertTrue(any(line.startswith("Source: Cold list (crm_ai test) (-")
                            for line in cold[0].ai_propensity_reasons.splitlines()))

    def test_reasons_are_those_of_the_stored_model(self):
        """Faithfulness end to end: stored reasons = the stored model's explanation."""
        self._score()
        engine = self._crm_ai_engine()
        estimator = self.model._ai_load_estimator()
        names = engine.estimator_fields(estimator)
        lead = self.open_leads[0]
        frame = engine.extract(lead.ids, names, lead.ai_propensity_date)
        labels, values = engine.labels(names, frame)
        expected = [format_reason(r) for r in estimator.explain(
            frame, top=engine_module.REASONS_PER_SIDE, min_points=engine_module.REASON_MIN_POINTS,
            field_labels=labels, value_labels=values)[0]]
        self.assertEqual(lead.ai_propensity_reasons.splitlines(), expected)
        self.assertAlmostEqual(lead.ai_propensity, round(100 * estimator.predict_proba(frame)[0, 1], 2), places=2)

    def test_scores_are_silent_computed_data(self):
        """No write_date bump, no chatter, no tracking, Odoo's probability untouched."""
        leads = self.open_leads
        before = {lead.id: (lead.write_date, lead.write_uid, lead.probability) for lead in leads}
        messages = self.env["mail.message"].search_count([("model", "=", "crm.lead"), ("res_id", "in", leads.ids)])
        self._score()
        self.env["crm.lead"].invalidate_model()
        for lead in leads:
            self.assertEqual((lead.write_date, lead.write_uid, lead.probability), before[lead.id])
        self.assertEqual(self.env["mail.message"].search_count(
            [("model", "=", "crm.lead"), ("res_id", "in", leads.ids)]), messages)

    def test_scores_never_fire_automated_actions(self):
        """An "on save" automated action on leads fires on a salesperson's save, not on scoring.

        base_automation is installed by the test command (scripts/test); without it the
        ORM-level half of the test still proves no write goes through the ORM."""
        Lead = type(self.env["crm.lead"])
        with patch.object(Lead, "write", side_effect=AssertionError("scores must not go through write()")), \
                patch.object(Lead, "create", side_effect=AssertionError("nor through create()")):
            self._score()
        if "base.automation" not in self.env:
            self.skipTest("base_automation is not installed: the automated action half is skipped")
        self.env["crm.lead"].invalidate_model()
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity_date = NULL WHERE id = ANY(%s)", [self.open_leads.ids])
        self.env["crm.lead"].invalidate_model()
        param = self.env["ir.config_parameter"].sudo()
        self.env["base.automation"].create({
            "name": "crm_ai test: on save", "model_id": self.env.ref("crm.model_crm_lead").id,
            "trigger": "on_create_or_write",
            "action_server_ids": [Command.create({
                "name": "flag", "model_id": self.env.ref("crm.model_crm_lead").id, "state": "code",
                "code": "env['ir.config_parameter'].sudo().set_param('crm_ai.test_automation', len(records))"})],
        })
        self.open_leads[0].write({"priority": "2"})
        self.assertEqual(param.get_param("crm_ai.test_automation"), "1", "the automation works on a save")
        param.set_param("crm_ai.test_automation", "0")
        self.assertEqual(self._score(), (len(self.open_leads), 0))
        self.assertEqual(param.get_param("crm_ai.test_automation"), "0", "scoring fired the automation")

    def test_only_changed_leads_are_rescored(self):
        self._score()
        self.assertEqual(self._score(), (0, 0), "nothing changed: nothing to do")
        lead = self.open_leads[0]
        # a user edit after the score (write_date is set by the ORM at flush time)
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity_date = %s WHERE id = %s",
                            (fields.Datetime.subtract(fields.Datetime.now(), minutes=5), lead.id))
        lead.invalidate_recordset()
        lead.write({"expected_revenue": 123456})
        self.assertEqual(self._score(), (1, 0))
        # a new model rescores every open lead
        self.Registry.browse(self._crm_ai_train()["model_id"])
        self.assertEqual(self._score(), (len(self.open_leads), 0))

    def test_new_message_rescores_the_lead_once(self):
        """A message posted since the last score makes the lead pending; one dated in the
        future (an import, a hand-edited date) does not keep it pending on every run."""
        self._score()
        lead = self.open_leads[0]
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity_date = %s WHERE id = %s",
                            (fields.Datetime.subtract(fields.Datetime.now(), minutes=5), lead.id))
        lead.invalidate_recordset()
        lead.message_post(body="Called them: they want a demo", message_type="comment")
        self.assertEqual(self._score(), (1, 0))
        self.assertEqual(self._score(), (0, 0))
        message = lead.message_post(body="Imported note", message_type="comment")
        self.env.flush_all()
        self.env.cr.execute("UPDATE mail_message SET date = %s WHERE id = %s",
                            (fields.Datetime.add(fields.Datetime.now(), days=1), message.id))
        self.assertEqual(self._score(), (0, 0))
        self.assertEqual(self._score(), (0, 0))

    def test_batches_resume_after_interruption(self):
        """A run cut short reports what remains; the next run finishes the job."""
        with patch.object(engine_module.LeadPropensityEngine, "batch_size", 5), \
                patch.object(type(self.env["ir.cron"]), "_notify_progress") as notify:
            done, remaining = self._score(time_budget=-1)  # deadline already passed: one batch
            self.assertEqual((done, remaining), (5, len(self.open_leads) - 5))
            notify.assert_called_with(done=5, remaining=len(self.open_leads) - 5)
            self.assertEqual(self._score(), (len(self.open_leads) - 5, 0))

    def _score_with_conflicts(self, conflicts):
        """Score as a real cron (commits allowed, mocked), the first ``conflicts`` batch
        writes failing as PostgreSQL fails them when a user saved a lead of the batch
        after the batch's snapshot (REPEATABLE READ).  Returns (result, rollbacks)."""
        driver_class = type(self.Driver)
        write_scores = driver_class._ai_write_scores
        failures = []

        def conflicting(driver, *args, **kwargs):
            if len(failures) < conflicts:
                failures.append(1)
                raise SerializationFailure("could not serialize access due to concurrent update")
            return write_scores(driver, *args, **kwargs)

        with patch.object(driver_module, "auto_commit", return_value=True), \
                patch.object(self.env.cr, "commit"), \
                patch.object(self.env.cr, "rollback") as rollback, \
                patch.object(driver_class, "_ai_write_scores", conflicting):
            return self._score(), rollback.call_count

    def test_batch_hit_by_a_concurrent_edit_is_redone(self):
        self.assertEqual(self._score_with_conflicts(1), ((len(self.open_leads), 0), 1))

    def test_batch_that_keeps_conflicting_is_left_for_the_next_run(self):
        """The cron does not fail: the batch stays pending and the next scheduled run scores it
        (not reported as remaining, or ir.cron would call again at once while the edits last)."""
        with patch.object(type(self.env["ir.cron"]), "_notify_progress") as notify:
            self.assertEqual(self._score_with_conflicts(99), ((0, 0), 2))
        # progress counts the leads reached, not written: "done=0, remaining>0" would tell
        # ir.cron the job does not use the progress API, and end a run with work left
        notify.assert_called_with(done=len(self.open_leads), remaining=0)
        self.assertFalse(self.open_leads.filtered("ai_propensity"))
        self.assertEqual(self._score(), (len(self.open_leads), 0))

    def test_no_commit_in_test_mode(self):
        """The crons' per-company isolation catches everything: a commit forced inside a
        test must show as a missing result, not only as a logged error."""
        with patch.object(self.env.cr, "commit", side_effect=AssertionError("commit in a test")), \
                patch.object(self.env.cr, "rollback", side_effect=AssertionError("rollback in a test")), \
                patch.object(type(self.env.registry), "cursor", side_effect=AssertionError("another cursor in a test")):
            self.assertEqual(self._score(), (len(self.open_leads), 0))
            results = {r["company"]: r for r in self.Registry._cron_ai_train()}
        self.assertEqual(results[self.company.id]["status"], "active", results[self.company.id]["message"])

    def test_scoring_queries_do_not_grow_with_the_batch(self):
        """A batch costs the same few queries whatever its size (no per-lead query)."""
        engine_cls = engine_module.LeadPropensityEngine
        counts = []
        # two disjoint batches: a record scored once is no longer pending
        for ids in (self.open_leads[:2].ids, self.open_leads[2:].ids):
            size = len(ids)
            self.env.invalidate_all()
            self.env.flush_all()
            before = self.env.cr.sql_log_count
            self.assertEqual(self.Driver._ai_score_unit(engine_cls.task, self.company, ids), size)
            counts.append(self.env.cr.sql_log_count - before)
        # a query per lead would add 8 between the two sizes
        self.assertLess(counts[1] - counts[0], 5, counts)
        self.assertLessEqual(counts[1], 25, "queries per batch")

    def test_scoring_unit_writes_only_its_scope(self):
        """A unit handed closed leads or another company's leads writes nothing to them."""
        other = self.env["res.company"].create({"name": "crm_ai other company"})
        self.env.ref("base.user_admin").company_ids |= other
        foreign = self.env["crm.lead"].with_company(other).create({"name": "theirs", "company_id": other.id,
                                                                   "user_id": False, "team_id": False})
        closed = self.closed_leads[:2]
        ids = [*closed.ids, foreign.id, self.open_leads[0].id]
        self.assertEqual(self.Driver._ai_score_unit(engine_module.LeadPropensityEngine.task, self.company, ids), 1)
        self.env["crm.lead"].invalidate_model()
        self.assertFalse((closed | foreign).with_context(active_test=False).filtered("ai_propensity"))
        self.assertTrue(self.open_leads[0].ai_propensity)

    def test_reasons_are_escaped_in_html(self):
        """Reasons quote record names (sources, tags, salespeople) that users type: the
        form shows them as text, never as HTML."""
        self._score()
        lead = self.open_leads[0]
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity_reason_data = %s WHERE id = %s",
                            [json.dumps([{"field": "source_id", "value": "<img src=x onerror=alert(1)> & Co",
                                          "points": 9.0}]), lead.id])
        lead.invalidate_recordset()
        self.assertEqual(lead.ai_propensity_reasons, "Source: <img src=x onerror=alert(1)> & Co (+9)")
        html = str(lead.ai_propensity_reasons_html)
        self.assertIn("&lt;img src=x onerror=alert(1)&gt; &amp; Co", html)
        self.assertNotIn("<img", html)

    def test_reasons_are_data_put_in_words_in_the_readers_language(self):
        self._score()
        referral = self.open_leads.filtered(lambda l: l.source_id == self.sources["Referral"])[0]
        data = referral.ai_propensity_reason_data
        self.assertEqual(data[0]["field"], "source_id")
        self.assertEqual(data[0]["value"], str(self.sources["Referral"].id), "the record id, not its name")
        self.assertTrue(referral.ai_propensity_reasons.splitlines()[0].startswith("Source: Referral (crm_ai test) (+"))
        self.env["res.lang"]._activate_lang("fr_FR")
        field = self.env["ir.model.fields"]._get("crm.lead", "source_id")
        field.with_context(lang="fr_FR").field_description = "Origine"
        self.env.registry.clear_cache()
        french = referral.with_context(lang="fr_FR").ai_propensity_reasons.splitlines()[0]
        self.assertTrue(french.startswith("Origine: "), french)


    def test_switched_off_clears_the_scores_and_switched_on_scores_again(self):
        self.assertEqual(self._score(), (len(self.open_leads), 0))
        for key, off, on in (("crm_ai.enabled", False, "True"), ("crm_ai.lead_propensity.enabled", "False", "True")):
            self.env["ir.config_parameter"].set_param(key, off)
            self.assertEqual(self._score(), (0, 0), key)
            self.env.invalidate_all()
            self.assertFalse(self.open_leads.filtered("ai_propensity"), "no stale score to read, sort or filter on")
            self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"disabled"}, key)
            if key == "crm_ai.enabled":
                self.assertEqual(self.Registry._cron_ai_train(), [])
            self.env["ir.config_parameter"].set_param(key, on)
            self.assertEqual(self._score(), (len(self.open_leads), 0), "switched on: every lead scored again")
        # switched on again before any model (a new engine): waiting for its first model, not "switched off"
        self.env["ir.config_parameter"].set_param("crm_ai.lead_propensity.enabled", "False")
        self._score()
        self.model.sudo().write({"state": "archived"})
        self.env["ir.config_parameter"].set_param("crm_ai.lead_propensity.enabled", "True")
        self._score()
        self.env.invalidate_all()
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"pending"})

    def test_cron_records(self):
        for xmlid, code in (("crm_ai.ir_cron_train", "model._cron_ai_train()"),
                            ("crm_ai.ir_cron_score", "model._cron_ai_score()")):
            cron = self.env.ref(xmlid)
            self.assertTrue(cron.active)
            self.assertEqual(cron.code, code)
        self.assertEqual((self.env.ref("crm_ai.ir_cron_train").interval_type,
                          self.env.ref("crm_ai.ir_cron_score").interval_type), ("weeks", "hours"))

    def test_run_manually(self):
        """'Run manually' on the scheduled actions trains and scores."""
        self.env.ref("crm_ai.ir_cron_train").method_direct_trigger()
        self.env.ref("crm_ai.ir_cron_score").method_direct_trigger()
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"scored"})
        self.assertEqual(self.Registry.search_count([]), 2)

    def test_progress_is_reported_with_every_batch(self):
        """Committed with each batch, so a run killed later counts as progress, not a failure."""
        with patch.object(engine_module.LeadPropensityEngine, "batch_size", 5), \
                patch.object(type(self.env["ir.cron"]), "_notify_progress") as notify:
            self._score()
        n = len(self.open_leads)
        batches = -(-n // 5)
        self.assertEqual(notify.call_count, batches + 1)
        self.assertEqual(notify.call_args_list[0].kwargs, {"done": 5, "remaining": n - 5})
        self.assertEqual(notify.call_args_list[-1].kwargs, {"done": n, "remaining": 0})

    def test_time_budget_stays_under_the_server_limits(self):
        Driver = self.Driver
        # ir.cron calls again up to 10 times in the same limit window: 10 calls share a third
        limits = {"limit_time_real": 120, "limit_time_real_cron": -1, "limit_time_cpu": 60, "workers": 0}
        with patch.dict(driver_module.config.options, limits):
            self.assertEqual(Driver._ai_time_budget(), 4.0)
            driver_module.config.options["workers"] = 4  # the CPU limit is enforced with workers
            self.assertEqual(Driver._ai_time_budget(), 2.0)
            driver_module.config.options.update(limit_time_real_cron=15, limit_time_cpu=0)
            self.assertEqual(Driver._ai_time_budget(), driver_module.MIN_TIME_BUDGET)
            driver_module.config.options.update(limit_time_real_cron=0, limit_time_real=0)
            self.assertEqual(Driver._ai_time_budget(), driver_module.MAX_TIME_BUDGET)

    def test_a_failing_company_does_not_stop_the_others_scoring(self):
        driver_class = type(self.Driver)
        score = driver_class._ai_score_pair
        visited = []

        def failing_for_main(driver, task, company, *args):
            visited.append(company)
            if company == self.company:
                raise ValueError("corrupt data")
            return score(driver, task, company, *args)

        with patch.object(driver_class, "_ai_score_pair", failing_for_main), \
                self.assertLogs("odoo.addons.crm_ai.models.crm_ai_driver", "ERROR") as logs:
            self.assertEqual(self._score(), (0, 0))
        self.assertEqual(len(visited), len(self.Driver._ai_companies()), "every company was visited")
        self.assertIn("scoring lead_propensity failed", logs.output[0])

    def test_refused_model_triggers_a_retraining(self):
        self.env["ir.config_parameter"].sudo().set_param("database.secret", "a-new-secret")
        train_cron = self.env.ref("crm_ai.ir_cron_train")
        Trigger = self.env["ir.cron.trigger"].sudo()
        before = Trigger.search_count([("cron_id", "=", train_cron.id)])
        with self.assertLogs("odoo.addons.crm_ai.models.crm_ai_driver", "ERROR"), \
                mute_logger("odoo.addons.crm_ai.models.crm_ai_model"):
            self.assertEqual(self._score(), (0, 0))
        self.assertEqual(Trigger.search_count([("cron_id", "=", train_cron.id)]), before + 1)
        self.assertEqual(self.model.state, "refused", "shown as such in the registry")
        self.assertIn("signature", self.model.refusal_reason)
        status_html = self.env["crm.ai.settings"].create({}).status
        self.assertIn("was refused", status_html, "and in the settings' status")
        status = self.env["crm.ai.training"]._ai_status("lead_propensity", self.company)
        self.assertTrue(status.is_due, "a retraining is requested for this company")
        # The retraining cannot replace it (too little data): the refused model is retired and the
        # score cron is not woken, so the two crons cannot wake each other forever.
        self._crm_ai_param("min_closed_per_class", 10 ** 6)
        score_cron = self.env.ref("crm_ai.ir_cron_score")
        before_score = Trigger.search_count([("cron_id", "=", score_cron.id)])
        with mute_logger("odoo.addons.crm_ai.models.crm_ai_driver", "odoo.addons.crm_ai.models.crm_ai_model"):
            results = {r["company"]: r for r in self.Registry._cron_ai_train()}
        self.assertEqual(results[self.company.id]["status"], "insufficient_data")
        self.assertEqual(self.model.state, "refused")
        self.assertEqual(Trigger.search_count([("cron_id", "=", score_cron.id)]), before_score)
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"insufficient_data"})


    def test_the_customers_figures_are_for_users_who_read_every_lead(self):
        """The customer's won deals and revenue count every salesperson's leads: a salesperson
        limited to his own documents reads those reasons without their figures."""
        reasons = [{"field": "ai_partner_won_revenue", "value": "89,700", "points": 4.2},
                   {"field": "ai_partner_won_count", "value": "2", "points": 2.0},
                   {"field": "ai_message_count", "value": "3", "points": -1.0}]
        own = new_test_user(self.env, "crm_ai_own_reader", groups="sales_team.group_sale_salesman")
        every = new_test_user(self.env, "crm_ai_every_reader", groups="sales_team.group_sale_salesman_all_leads")
        lead = self.open_leads[0]
        lead.user_id = own
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity_reason_data = %s::jsonb WHERE id = %s",
                            (json.dumps(reasons), lead.id))
        lead.invalidate_recordset()
        self.assertEqual(lead.with_user(own).ai_propensity_reasons.splitlines(), [
            "Customer's earlier won revenue (+4)", "Customer's earlier won deals (+2)", "Emails and notes: 3 (-1)"])
        self.assertEqual(lead.with_user(every).ai_propensity_reasons.splitlines(), [
            "Customer's earlier won revenue: 89,700 (+4)", "Customer's earlier won deals: 2 (+2)",
            "Emails and notes: 3 (-1)"])
        self.assertNotIn("89,700", lead.with_user(own).ai_propensity_reasons_html)


@tagged("crm_ai", "post_install", "-at_install")
class TestPropensityTwoCompanies(TestCrmAiCommon):
    """Two companies with enough data: one model each, each company's leads scored by its own."""

    def _score(self, **kwargs):
        return self.Registry._cron_ai_score(**kwargs)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.env["res.company"].create({"name": "crm_ai second company"})
        cls.other_closed, cls.other_open = cls._crm_ai_setup_data(n_closed=200, n_open=7, seed=11, company=cls.other)

    def test_each_company_trains_and_scores_its_own_model(self):
        results = {r["company"]: r for r in self.Registry._cron_ai_train()}
        self.assertEqual((results[self.company.id]["status"], results[self.other.id]["status"]), ("active", "active"))
        mine, theirs = (self.Registry._ai_active("lead_propensity", c) for c in (self.company, self.other))
        self.assertNotEqual(mine, theirs)
        self.assertEqual((mine.n_train + mine.n_holdout, theirs.n_train + theirs.n_holdout),
                         (len(self.closed_leads), len(self.other_closed)), "each learns from its own leads only")
        self.assertEqual(self.Registry._cron_ai_score(), (len(self.open_leads) + len(self.other_open), 0))
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_model_id")), {mine})
        self.assertEqual(set(self.other_open.mapped("ai_propensity_model_id")), {theirs})

    def test_time_budget_is_checked_before_each_company(self):
        """Out of time after the first batch: the next company is not started, but its
        pending leads are counted as remaining, so ir.cron calls again for them."""
        self.Registry._cron_ai_train()
        with patch.object(engine_module.LeadPropensityEngine, "batch_size", 5):
            done, remaining = self._score(time_budget=-1)
        self.assertEqual(done, 5)
        self.assertEqual(remaining, len(self.open_leads) + len(self.other_open) - 5)
        self.assertEqual(self._score(), (len(self.open_leads) + len(self.other_open) - 5, 0))


@tagged("crm_ai", "post_install", "-at_install")
class TestPropensityScoringWithoutModel(TestCrmAiCommon):

    def test_new_leads_of_a_company_short_of_data_say_so_at_once(self):
        self._crm_ai_param("min_closed_per_class", max(self.n_won, self.n_lost) + 1)
        self.assertEqual(self._crm_ai_train()["status"], "insufficient_data")
        lead = self.env["crm.lead"].create({"name": "new lead", "company_id": self.company.id})
        self.assertEqual(lead.ai_propensity_state, "pending")
        self.assertEqual(self.Registry._cron_ai_score(), (0, 0))
        lead.invalidate_recordset()
        self.assertEqual(lead.ai_propensity_state, "insufficient_data")
        self.assertFalse(lead.ai_propensity)

    def test_before_the_first_training_leads_are_not_scored_yet(self):
        """Enough data but no model yet (just installed): "not scored yet", not "not enough data"."""
        self.Registry._cron_ai_score()
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"pending"})
