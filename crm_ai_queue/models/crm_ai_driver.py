"""crm_ai's units of work as queue_job jobs.

The crons stop working inline: the score cron enqueues one job per (engine, company,
batch of pending records), the train cron one job per due (engine, company).  A job
runs the driver's own unit (``_ai_score_unit`` / ``_ai_train_pair``): same SQL
writer, same row locks skipped, same "refused model" path.

Transactions: a scoring job is one transaction of queue_job's, committed at its end,
rolled back and retried when it fails (``CALLER_COMMITS``: the driver neither commits
nor rolls back then).  A training job commits as the inline cron does (its start, the
new model before the status that refers to it, written in a transaction of its own):
its job function allows commits, so queue_job runs it in a cursor of its own and keeps
the job's lock in another (``data/queue_job_data.xml``).
"""

import hashlib
import logging
from datetime import datetime

from psycopg2 import OperationalError

from odoo import SUPERUSER_ID, _, api, models
from odoo.exceptions import AccessError
from odoo.tools import split_every

from odoo.addons.crm_ai.models.crm_ai_driver import CALLER_COMMITS, MAX_TRAINING_ATTEMPTS
from odoo.addons.crm_ai.models.crm_ai_engine import ENGINES
from odoo.addons.queue_job.exception import FailedJobError, RetryableJobError
from odoo.addons.queue_job.job import ENQUEUED, PENDING, STARTED, WAIT_DEPENDENCIES

_logger = logging.getLogger(__name__)

#: Context key that makes the crons work inline, as without this module (scripts, benchmarks).
INLINE = "crm_ai_inline"
#: Tries of a scoring job before it shows as failed (concurrency errors count too).
SCORE_JOB_MAX_RETRIES = 5
#: Tries of a training job: as many as the driver's starts of one training.
TRAIN_JOB_MAX_RETRIES = MAX_TRAINING_ATTEMPTS
#: Follow-up jobs for the records of a batch that another transaction held, and the seconds before each.
HELD_RECORDS_FOLLOW_UPS = 3
HELD_RECORDS_DELAY = 10
#: Job states in which a queued batch still waits to be (or is being) performed.
WAITING_STATES = (WAIT_DEPENDENCIES, PENDING, ENQUEUED, STARTED)


class CrmAiDriver(models.AbstractModel):
    _inherit = "crm.ai.driver"

    # -- enqueueing --------------------------------------------------------------------------
    @api.model
    def _ai_queued(self):
        return not self.env.context.get(INLINE)

    @api.model
    def _ai_identity_prefix(self, what, task, company):
        return f"crm_ai.{what}:{task}:{company.id or 0}:"

    @api.model
    def _ai_may_work_for(self, company):
        """Whether this user's jobs may work for ``company`` (records without a company:
        yes).  A job runs as the user who queued it; the crons' user sees every company."""
        return not company or self.env.su or self.env.uid == SUPERUSER_ID or company in self.env.user.company_ids

    @api.model
    def _ai_score_pending(self, engine, model, estimator, pending, out_of_time=None, progress=None, batches=None):
        """Enqueue ``pending`` in batches instead of scoring it here.

        Records already in a waiting job of this engine and company are left out (an
        hourly cron must not queue a slow backlog again), and each batch's identity key
        is its content, so the same batch is never queued twice.  Returns ``(0, 0)``:
        nothing scored by this call, nothing left for ir.cron to call again for.
        """
        if not self._ai_queued():
            return super()._ai_score_pending(engine, model, estimator, pending, out_of_time, progress, batches)
        if not self._ai_may_work_for(engine.company):
            _logger.warning("crm_ai: %s may not work for %s: its %s records are not queued (set the scheduled "
                            "action's user to one who may)", self.env.user.name, engine.company.name, engine.task)
            return 0, 0
        queued = self._ai_ids_in_waiting_jobs(self._ai_identity_prefix("score", engine.task, engine.company))
        pending = [record_id for record_id in pending if record_id not in queued]
        for batch in split_every(engine.batch_size, pending, list):
            self._ai_enqueue_batch(engine, batch)
        if pending:
            _logger.info("crm_ai: %s records of %s for %s queued in jobs of %s", len(pending), engine.task,
                         engine.company.name or "records without a company", engine.batch_size)
        return 0, 0

    @api.model
    def _ai_enqueue_batch(self, engine, batch, follow_up=0):
        """One scoring job for the records ``batch``; a follow-up (records another
        transaction held) waits ``HELD_RECORDS_DELAY`` seconds."""
        digest = hashlib.sha1(",".join(map(str, batch)).encode()).hexdigest()
        # the job belongs to the engine's company (queue_job stamps env.company: its rules show it there)
        self.with_company(engine.company).with_delay(
            max_retries=SCORE_JOB_MAX_RETRIES,
            eta=HELD_RECORDS_DELAY if follow_up else None,
            identity_key=f"{self._ai_identity_prefix('score', engine.task, engine.company)}{digest}",
            description=_("CRM AI: score %(count)s %(records)s (%(task)s, %(company)s)", count=len(batch),
                          records=self.env[engine.target_model]._description, task=engine.label or engine.task,
                          company=engine.company.name or _("records without a company")),
        )._ai_score_job(engine.task, engine.company.id or False, batch, **({"follow_up": follow_up} if follow_up else {}))

    @api.model
    def _ai_waiting_jobs(self, prefix):
        """The jobs whose identity key starts with ``prefix`` that wait to be performed or run now."""
        return self.env["queue.job"].sudo().search(
            [("identity_key", "=like", prefix.replace("%", r"\%").replace("_", r"\_") + "%"),
             ("state", "in", WAITING_STATES)])

    @api.model
    def _ai_ids_in_waiting_jobs(self, prefix):
        """Record ids of the scoring jobs whose identity key starts with ``prefix`` that
        wait to be performed or run now."""
        return {record_id for job in self._ai_waiting_jobs(prefix) for record_id in job.args[2]}

    @api.model
    def _cron_train(self, time_budget=None):
        """Enqueue one training job per due (engine, company) pair; returns ``[]``.

        The pairs are requested as the inline cron does; a pair with a job still waiting
        is not queued again (its identity key is the pair)."""
        if not self._ai_queued():
            return super()._cron_train(time_budget)
        for status in self._ai_due_trainings() or []:
            company = status.company_id
            if not self._ai_may_work_for(company):
                _logger.warning("crm_ai: %s may not work for %s: its %s training is not queued", self.env.user.name,
                                company.name, status.task)
                continue
            prefix = self._ai_identity_prefix("train", status.task, company)
            if self._ai_waiting_jobs(prefix):
                continue  # one training of a pair at a time (queue_job's identity key ignores started jobs)
            self.with_company(company).with_delay(
                max_retries=TRAIN_JOB_MAX_RETRIES,
                identity_key=prefix,
                description=_("CRM AI: train %(task)s (%(company)s)", task=status.task_label,
                              company=company.name or _("records without a company")),
            )._ai_train_job(status.task, company.id or False)
        return []

    # -- the jobs --------------------------------------------------------------------------------
    @api.model
    def _ai_job_company(self, company_id):
        """The company a job works for; refused when the job's user may not see it (a job
        is performed as the user who queued it: the crons' user sees every company)."""
        company = self.env["res.company"].sudo().browse(company_id or [])
        if company_id and not company.exists():
            raise FailedJobError(_("The company (id %s) no longer exists.", company_id))
        if not self._ai_may_work_for(company):
            raise AccessError(_("%(user)s may not work for %(company)s: nothing was done.",
                                user=self.env.user.name, company=company.name))
        return company

    @api.model
    def _ai_job_task(self, task):
        """``task`` if its engine is still installed and enabled, else None."""
        return task if task in ENGINES and task in self._ai_tasks() else None

    @api.model
    def _ai_run_job(self, what, work):
        """``work()`` in the job's transaction; a failure is retried with the job function's
        retry pattern, then shows as failed in the Job Queue with ``what`` in its message.
        Concurrency errors are queue_job's own to retry (5 s later, without limit)."""
        try:
            return work()
        except (RetryableJobError, FailedJobError, OperationalError):
            raise
        except Exception as error:
            _logger.warning("crm_ai: %s failed: %s", what, error, exc_info=True)
            raise RetryableJobError(_("%(what)s failed: %(error)s", what=what, error=error)) from error

    def _ai_score_job(self, task, company_id, ids, follow_up=0):
        """Job: score those of the records ``ids`` still pending for ``task``'s active model
        of company ``company_id`` (a company removed, an engine disabled, a model refused or
        replaced meanwhile: nothing, or the new model's scores).  Returns a summary.

        The writer skips records another transaction holds (a user saving one, or another
        engine's job on the same records: the jobs of the engines of res.partner run side
        by side).  Those are queued again, a few seconds later, up to
        ``HELD_RECORDS_FOLLOW_UPS`` times; after that they wait for the next cron run."""
        company = self._ai_job_company(company_id)
        if not self._ai_job_task(task):
            return _("%s is disabled: nothing scored.", task)
        driver = self.with_context(**{CALLER_COMMITS: True})
        what = _("Scoring %(count)s records (%(task)s, %(company)s)", count=len(ids), task=task,
                 company=company.name or _("records without a company"))
        written = driver._ai_run_job(what, lambda: driver._ai_score_unit(task, company, ids))
        summary = _("%(written)s of %(count)s records scored.", written=written, count=len(ids))
        if written == len(ids) or follow_up >= HELD_RECORDS_FOLLOW_UPS:
            return summary  # (all written: none held, no query)
        engine = driver._ai_engine(task, company)
        model = driver._ai_scoring_model(engine)
        held = driver._ai_pending_among(engine, model, ids) if model else []
        if not held:
            return summary
        driver._ai_enqueue_batch(engine, held, follow_up + 1)
        return _("%(summary)s %(held)s held by another transaction: queued again.", summary=summary, held=len(held))

    def _ai_train_job(self, task, company_id):
        """Job: train ``task`` for company ``company_id`` if that is still due, as the inline
        cron does (``_ai_train_pair``: the status row Settings show, its commits; the job
        function allows them, see the module's docstring).  A failed training is due again
        for queue_job's retry, until the driver's limit of starts."""
        company = self._ai_job_company(company_id)
        if not self._ai_job_task(task):
            return _("%s is disabled: nothing trained.", task)
        status = self.env["crm.ai.training"].sudo()._ai_status(task, company)
        # due, or this very job killed with its worker mid-training and requeued by queue_job
        if not status or not (status.is_due or status._ai_unfinished()):
            return _("Not due any more (trained since this job was queued).")
        starts = status.attempts + 1  # counted here: the row is written in another transaction
        result = self._ai_train_pair(status)
        if result["status"] == "error":
            message = _("Training %(task)s: %(message)s", task=status.task_label, message=result["message"])
            if starts >= MAX_TRAINING_ATTEMPTS:
                raise FailedJobError(message)
            # due again for the retry; the driver gives up after MAX_TRAINING_ATTEMPTS starts
            status._ai_bookkeep({"date_requested": datetime.now()})
            raise RetryableJobError(message)
        if result["status"] == "active":
            self.env.ref("crm_ai.ir_cron_score").sudo()._trigger()
        if status.is_due:  # "Train now" pressed while this job ran: its cron call skipped the pair
            self.env.ref("crm_ai.ir_cron_train").sudo()._trigger()
        return result["message"]
