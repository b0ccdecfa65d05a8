from datetime import timedelta
from unittest.mock import MagicMock, patch

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.exception import FailedJobError, RetryableJobError
from odoo.addons.queue_job.job import Job
from odoo.addons.queue_job.tests.common import trap_jobs

from ..models.crm_ai_driver import TRAIN_JOB_MAX_RETRIES
from .common import TASK, CrmAiQueueCase


@tagged("crm_ai_queue", "post_install", "-at_install")
class TestTrainJobs(CrmAiQueueCase):

    def setUp(self):
        super().setUp()
        self.secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        # A training job runs in a cursor of its own (its job function allows commits): in
        # test mode that cursor works inside this test's transaction, as an HttpCase's do.
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)

    def _request(self):
        """Our company's training requested; every other pair done (the crons request a pair
        for records without a company too)."""
        Status = self.env["crm.ai.training"]
        Status._ai_request([TASK], self.Driver._ai_companies())
        ours = Status._ai_status(TASK, self.company)
        (Status.search([]) - ours).write({"date_started": "2099-01-01", "date_done": "2099-01-01"})
        return ours

    def test_train_cron_queues_one_job_per_due_pair(self):
        status = self._request()
        with trap_jobs() as trap:
            self.assertEqual(self.Registry._cron_ai_train(), [])
        trap.assert_jobs_count(1)
        trap.assert_enqueued_job(self.Driver._ai_train_job, args=(TASK, self.company.id),
                                 properties={"max_retries": TRAIN_JOB_MAX_RETRIES,
                                             "identity_key": f"crm_ai.train:{TASK}:{self.company.id}:"})
        self.assertEqual(trap.enqueued_jobs[0].channel, "root.crm_ai")
        self.assertTrue(status.is_due, "queued, not trained inline")
        models = self.Registry.search_count([("task", "=", TASK)])
        score_cron = self.env.ref("crm_ai.ir_cron_score")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", score_cron.id)])
        # a training job runs in a cursor of its own (as after the cron's commit in production)
        self.env.flush_all()
        trap.perform_enqueued_jobs()
        self.env.invalidate_all()
        status.invalidate_recordset()
        self.assertFalse(status.is_due)
        self.assertEqual(status.result, "active")
        self.assertEqual(self.Registry.search_count([("task", "=", TASK)]), models + 1)
        self.assertGreater(self.env["ir.cron.trigger"].search_count([("cron_id", "=", score_cron.id)]), triggers,
                           "a new model: the score cron runs next")
        # done: performing the job again trains nothing
        self.assertIn("Not due", self.Driver._ai_train_job(TASK, self.company.id))

    def test_a_job_killed_mid_training_trains_again_and_train_now_during_a_job_is_not_lost(self):
        status = self._request()
        Training = self.env["crm.ai.training"]
        # queue_job requeued a job whose worker was killed: its start was committed, its end never came
        status.write({"date_started": status.date_requested + timedelta(seconds=1), "attempts": 1})
        self.assertIn("activated", self.Driver._ai_train_job(TASK, self.company.id))
        # "Train now" pressed while a job trains: the train cron runs again once the job is done
        train_cron = self.env.ref("crm_ai.ir_cron_train")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", train_cron.id)])
        pair = type(self.Driver)._ai_train_pair

        def requested_meanwhile(driver, pair_status):
            result = pair(driver, pair_status)
            Training._ai_request([TASK], [self.company])
            return result

        Training._ai_request([TASK], [self.company])
        with patch.object(type(self.Driver), "_ai_train_pair", requested_meanwhile):
            self.Driver._ai_train_job(TASK, self.company.id)
        self.assertTrue(Training._ai_status(TASK, self.company).is_due)
        self.assertGreater(self.env["ir.cron.trigger"].search_count([("cron_id", "=", train_cron.id)]), triggers)

    def test_a_waiting_training_is_not_queued_twice(self):
        self._request()
        self.Registry._cron_ai_train()
        self.Registry._cron_ai_train()
        jobs = self.Job.search([("method_name", "=", "_ai_train_job")])
        self.assertEqual(len(jobs), 1)
        self.assertEqual(jobs.args, [TASK, self.company.id])

    def test_a_failing_training_is_retried_then_fails_with_a_readable_message(self):
        status = self._request()
        self.Registry._cron_ai_train()
        record = self.Job.search([("method_name", "=", "_ai_train_job")])
        self.assertEqual(len(record), 1)
        models = self.Registry.search_count([("task", "=", TASK)])

        def broken(*_args, **_kwargs):
            raise ValueError("the data broke")

        # The job's method, called as queue_job's tries would (the status row is written in a
        # transaction of its own in production; here in the test's, which a job's rollback undoes)
        with patch.object(type(self.Driver), "_ai_train_unit", broken), \
                mute_logger("odoo.addons.crm_ai.models.crm_ai_driver"):
            for attempt in range(1, TRAIN_JOB_MAX_RETRIES):
                with self.assertRaisesRegex(RetryableJobError, "Training Lead propensity: Training failed for .*: "
                                                               "the data broke"):
                    self.Driver._ai_train_job(*record.args)
                self.env.invalidate_all()
                self.assertEqual((status.attempts, status.result, status.is_due), (attempt, "error", True),
                                 "counted, and due again for the retry")
            with self.assertRaisesRegex(FailedJobError, "Training Lead propensity: .*the data broke"):
                self.Driver._ai_train_job(*record.args)
            self.env.invalidate_all()
            self.assertEqual((status.attempts, status.is_due), (TRAIN_JOB_MAX_RETRIES, False), "given up")
            # the same through queue_job: its last try fails the job with that message
            job = Job.load(self.env, record.uuid)
            job.retry = TRAIN_JOB_MAX_RETRIES - 1
            self._request()
            self.env.flush_all()
            with self.assertRaisesRegex(FailedJobError, r"Max. retries \(3\) reached: Training Lead propensity: "):
                job.perform()
        self.assertEqual(self.Registry.search_count([("task", "=", TASK)]), models, "no model registered")

    def test_a_scoring_job_never_commits_or_rolls_back_its_transaction(self):
        """queue_job forbids commits in a job (its lock would be released): the driver's own
        commits, rollbacks and conflict retries stay off in a scoring job, as outside a test."""
        self.Registry._cron_ai_score()
        self.env["ir.config_parameter"].sudo().set_param("database.secret", "another secret")
        driver_module = "odoo.addons.crm_ai.models.crm_ai_driver"
        with patch(f"{driver_module}.in_test_transaction", return_value=False), \
                patch.object(type(self.Driver), "_ai_may_open_cursor", return_value=False), \
                patch.object(self.env.cr, "commit", side_effect=AssertionError("commit in a job")), \
                patch.object(self.env.cr, "rollback", side_effect=AssertionError("rollback in a job")), \
                mute_logger(driver_module, "odoo.addons.crm_ai.models.crm_ai_model"):
            # a forged model: refused, records marked, training requested (the driver commits that inline)
            job = self.Job.search([("method_name", "=", "_ai_score_job")], limit=1)
            self.assertIn("0 of", self.Driver._ai_score_job(*job.args))
        self.assertEqual(self.model.state, "refused")

    def test_a_training_job_commits_in_a_cursor_of_its_own(self):
        """A training commits as inline (its start; the new model before the status that
        names it, written in another transaction): its job function allows commits, so
        queue_job runs it in a cursor of its own and the job's lock stays in the job's."""
        self.assertTrue(self.env.ref("crm_ai_queue.job_function_train").allow_commit)
        self.assertFalse(self.env.ref("crm_ai_queue.job_function_score").allow_commit)
        status = self._request()
        self.Registry._cron_ai_train()
        job = Job.load(self.env, self.Job.search([("method_name", "=", "_ai_train_job")]).uuid)
        self.env.flush_all()  # as the cron's commit would
        with patch("odoo.addons.crm_ai.models.crm_ai_driver.in_test_transaction", return_value=False), \
                patch.object(type(self.Driver), "_ai_may_open_cursor", return_value=False), \
                patch.object(self.env.cr, "commit", side_effect=AssertionError("commit on the job's cursor")), \
                patch.object(self.env.cr, "rollback", side_effect=AssertionError("rollback on the job's cursor")):
            job.perform()
        self.assertIn("activated", job.result)
        self.env.invalidate_all()
        self.assertEqual(status.result, "active")

    def test_a_pair_whose_training_job_waits_or_runs_is_not_queued_again(self):
        self._request()
        self.Registry._cron_ai_train()
        first = self.Job.search([("method_name", "=", "_ai_train_job")])
        first.state = "started"
        self._request()  # "Train now" while it runs: due again
        self.Registry._cron_ai_train()
        self.assertEqual(self.Job.search([("method_name", "=", "_ai_train_job")]), first)
        first.state = "done"
        self.Registry._cron_ai_train()
        self.assertEqual(len(self.Job.search([("method_name", "=", "_ai_train_job")])), 2)

    def test_training_bookkeeping_outlives_a_failed_job(self):
        """Inside a job the training status is still written in a transaction of its own:
        queue_job rolls a failed job's back, and what failed must stay visible."""
        status = self._request()
        cursor = MagicMock()
        cursor.__enter__.return_value = self.env.cr
        with patch("odoo.addons.crm_ai.models.crm_ai_driver.in_test_transaction", return_value=False), \
                patch.object(type(self.env.registry), "cursor", return_value=cursor) as opened:
            status.with_context(crm_ai_caller_commits=True)._ai_bookkeep({"message": "written apart"})
        opened.assert_called_once()
        self.assertEqual(status.message, "written apart")
