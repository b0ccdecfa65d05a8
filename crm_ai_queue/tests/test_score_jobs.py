from unittest.mock import patch

from psycopg2.errors import SerializationFailure

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.crm_ai.models.crm_ai_engine import ENGINES
from odoo.addons.queue_job.exception import FailedJobError, RetryableJobError
from odoo.addons.queue_job.job import Job
from odoo.addons.queue_job.tests.common import trap_jobs

from ..models.crm_ai_driver import HELD_RECORDS_DELAY, HELD_RECORDS_FOLLOW_UPS, SCORE_JOB_MAX_RETRIES
from .common import TASK, CrmAiQueueCase

BATCH = 5


@tagged("crm_ai_queue", "post_install", "-at_install")
class TestScoreJobs(CrmAiQueueCase):

    def setUp(self):
        super().setUp()
        batch_size = patch.object(ENGINES[TASK], "batch_size", BATCH)
        batch_size.start()
        self.addCleanup(batch_size.stop)

    def test_score_cron_queues_one_job_per_batch_on_the_crm_ai_channel(self):
        with trap_jobs() as trap:
            self.Registry._cron_ai_score()
        ids = self.open_leads.sorted("id").ids
        batches = [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]
        trap.assert_jobs_count(len(batches), only=self.Driver._ai_score_job)
        for batch in batches:
            trap.assert_enqueued_job(self.Driver._ai_score_job, args=(TASK, self.company.id, batch),
                                     properties={"max_retries": SCORE_JOB_MAX_RETRIES})
        jobs = trap.enqueued_jobs
        self.assertEqual({job.channel for job in jobs}, {"root.crm_ai"})
        keys = [job.identity_key for job in jobs]
        self.assertEqual(len(set(keys)), len(batches), "each batch has its own identity key")
        self.assertTrue(all(key.startswith(f"crm_ai.score:{TASK}:{self.company.id}:") for key in keys))
        self.assertEqual(self._states(), {"pending"}, "queued, not scored inline")

        trap.perform_enqueued_jobs()
        self.assertEqual(self._states(), {"scored"})
        self.assertEqual(self.open_leads.mapped("ai_propensity_model_id"), self.model)
        with trap_jobs() as again:
            self.Registry._cron_ai_score()
        again.assert_jobs_count(0)

    def test_performing_a_batch_again_scores_nothing_twice(self):
        batch = self.open_leads[:BATCH]
        result = self.Driver._ai_score_job(TASK, self.company.id, batch.ids)
        self.assertIn(f"{BATCH} of {BATCH}", result)
        points = self.env["crm.ai.propensity.history"].search_count([("lead_id", "in", batch.ids)])
        dates = batch.mapped("ai_propensity_date")
        self.assertIn(f"0 of {BATCH}", self.Driver._ai_score_job(TASK, self.company.id, batch.ids))
        batch.invalidate_recordset()
        self.assertEqual(batch.mapped("ai_propensity_date"), dates)
        self.assertEqual(self.env["crm.ai.propensity.history"].search_count([("lead_id", "in", batch.ids)]), points)
        # the rest is still pending: only those records are queued by the next run
        with trap_jobs() as trap:
            self.Registry._cron_ai_score()
        rest = (self.open_leads - batch).sorted("id").ids
        self.assertEqual(sorted(i for job in trap.enqueued_jobs for i in job.args[2]), rest)

    def test_records_another_transaction_held_are_queued_again_a_few_times(self):
        """The writer skips rows held elsewhere (another engine's job on the same records, a
        user saving one): they get a follow-up job, a few seconds later, a few times."""
        batch = self.open_leads.sorted("id")[:BATCH]
        original = type(self.Driver)._ai_score_batch

        def holding_the_last_two(driver, engine, model, estimator, ids):
            return original(driver, engine, model, estimator, ids[:-2])

        with patch.object(type(self.Driver), "_ai_score_batch", holding_the_last_two):
            with trap_jobs() as trap:
                result = self.Driver._ai_score_job(TASK, self.company.id, batch.ids)
            self.assertIn("3 of 5 records scored. 2 held by another transaction", result)
            trap.assert_jobs_count(1)
            trap.assert_enqueued_job(self.Driver._ai_score_job, args=(TASK, self.company.id, batch.ids[-2:]),
                                     kwargs={"follow_up": 1}, properties={"eta": HELD_RECORDS_DELAY})
            self.assertEqual(trap.enqueued_jobs[0].identity_key.split(":")[:3], ["crm_ai.score", TASK,
                                                                                 str(self.company.id)])
            with trap_jobs() as last:
                self.Driver._ai_score_job(TASK, self.company.id, batch.ids[-2:], follow_up=HELD_RECORDS_FOLLOW_UPS)
            last.assert_jobs_count(0)  # then they wait for the next run of the cron
        trap.perform_enqueued_jobs()
        self.assertEqual(self._states(batch), {"scored"})

    def test_a_waiting_batch_is_never_queued_twice(self):
        self.Registry._cron_ai_score()
        jobs = self._score_jobs()
        self.assertEqual(len(jobs), 3)
        self.assertEqual(set(jobs.mapped("state")), {"pending"})
        self.Registry._cron_ai_score()
        self.assertEqual(self._score_jobs(), jobs, "the same pending leads: nothing queued again")
        # a new lead while the jobs wait: only it is queued
        lead = self.env["crm.lead"].create({"name": "new while queued", "type": "opportunity",
                                            "company_id": self.company.id})
        self.Registry._cron_ai_score()
        new = self._score_jobs() - jobs
        self.assertEqual(new.mapped("args"), [[TASK, self.company.id, lead.ids]])
        # a started job still holds its records; a done or failed one does not
        jobs[0].state = "started"
        new.state = "done"
        self.Registry._cron_ai_score()
        self.assertEqual((self._score_jobs() - jobs - new).mapped("args"), [[TASK, self.company.id, lead.ids]])

    def test_inline_context_scores_in_this_process(self):
        with trap_jobs() as trap:
            self.Registry.with_context(crm_ai_inline=True)._cron_ai_score()
        trap.assert_jobs_count(0)
        self.assertEqual(self._states(), {"scored"})

    def test_a_job_for_a_company_its_user_cannot_see_does_nothing(self):
        other = self.env["res.company"].create({"name": "crm_ai_queue other company"})
        _closed, other_leads = self._crm_ai_setup_data(n_closed=0, n_open=3, company=other)
        user = new_test_user(self.env, "crm_ai_queue_manager", groups="sales_team.group_sale_manager",
                             company_id=self.company.id, company_ids=[(6, 0, self.company.ids)])
        with self.assertRaisesRegex(AccessError, "may not work for crm_ai_queue other company"):
            self.Driver.with_user(user)._ai_score_job(TASK, other.id, other_leads.ids)
        self.assertEqual(self._states(other_leads), {"pending"})
        # its own company is fine; a company deleted since the job was queued fails plainly
        self.assertIn("3 of 3", self.Driver.with_user(user)._ai_score_job(TASK, self.company.id,
                                                                           self.open_leads[:3].ids))
        with self.assertRaisesRegex(FailedJobError, "no longer exists"):
            self.Driver._ai_score_job(TASK, 999999, other_leads.ids)

    def test_nothing_is_queued_for_a_company_the_crons_user_may_not_see(self):
        other = self.env["res.company"].create({"name": "crm_ai_queue hidden company"})
        user = new_test_user(self.env, "crm_ai_queue_cron_user", groups="base.group_system,sales_team.group_sale_manager",
                             company_id=self.company.id, company_ids=[(6, 0, self.company.ids)])
        driver = self.Driver.with_user(user)
        with trap_jobs() as trap, mute_logger("odoo.addons.crm_ai_queue.models.crm_ai_driver"):
            driver._ai_score_pending(self.Driver._ai_engine(TASK, other), self.model, None, [1, 2])
            trap.assert_jobs_count(0)
            driver._ai_score_pending(self.Driver._ai_engine(TASK, self.company), self.model, None, self.open_leads.ids)
            trap.assert_jobs_count(3)

    def test_a_job_whose_model_was_refused_meanwhile_writes_nothing(self):
        with trap_jobs() as trap:
            self.Registry._cron_ai_score()
        self.model.sudo().write({"state": "refused", "refusal_reason": "test"})
        trap.perform_enqueued_jobs()
        self.assertEqual(self._states(), {"pending"})
        self.assertFalse(self.open_leads.mapped("ai_propensity_model_id"))
        self.assertFalse(self.env["crm.ai.propensity.history"].search_count([("lead_id", "in", self.open_leads.ids)]))

    def test_a_job_that_finds_a_forged_model_refuses_it_and_writes_nothing(self):
        with trap_jobs() as trap:
            self.Registry._cron_ai_score()
        self.env["ir.config_parameter"].sudo().set_param("database.secret", "another secret")
        with mute_logger("odoo.addons.crm_ai.models.crm_ai_driver", "odoo.addons.crm_ai.models.crm_ai_model"):
            trap.perform_enqueued_jobs()
        self.assertEqual(self.model.state, "refused")
        self.assertEqual(self._states(), {"pending"})
        self.assertTrue(self.env["crm.ai.training"]._ai_status(TASK, self.company).is_due)

    def test_a_failing_batch_is_retried_then_fails_with_a_readable_message(self):
        self.Registry._cron_ai_score()
        record = self._score_jobs()[0]

        def broken(*_args, **_kwargs):
            raise ValueError("the engine broke")

        job = Job.load(self.env, record.uuid)
        with patch.object(type(self.Driver), "_ai_score_unit", broken), \
                mute_logger("odoo.addons.crm_ai_queue.models.crm_ai_driver"):
            with self.assertRaisesRegex(RetryableJobError, r"Scoring \d+ records \(lead_propensity, .*\) failed: "
                                                           "the engine broke"):
                job.perform()
            job.retry = SCORE_JOB_MAX_RETRIES - 1
            with self.assertRaisesRegex(FailedJobError, "Max. retries .* the engine broke"):
                job.perform()
        self.assertEqual(self._states(), {"pending"})

    def test_a_concurrent_edit_is_left_to_queue_jobs_own_retry(self):
        """A serialization failure reaches queue_job as it is: its controller retries such
        errors 5 s later on a fresh snapshot (a RetryableJobError would be counted as a
        failure and wait for the job function's pattern)."""
        record = self.Driver.with_delay()._ai_score_job(TASK, self.company.id, self.open_leads.ids)

        def conflicting(*_args, **_kwargs):
            raise SerializationFailure("could not serialize access due to concurrent update")

        with patch.object(type(self.Driver), "_ai_score_unit", conflicting), \
                self.assertRaises(SerializationFailure):
            self.Driver._ai_score_job(*record.args)

    def test_a_disabled_engine_job_does_nothing(self):
        with trap_jobs() as trap:
            self.Registry._cron_ai_score()
        self._crm_ai_only()
        trap.perform_enqueued_jobs()
        self.assertEqual(self._states(), {"pending"})
