"""Training status per engine and company: what was requested, what ran, how it went.

The train cron works through the rows that are due (requested after their last start),
one at a time, so it resumes after its time budget or a kill; the settings show the
last result of each row ("Train now" returns at once and the verdict lands here).

The cron's bookkeeping (start, end, result) is written on its own short transaction, not
in the training's: a manager clicking "Train now" while a training runs updates the same
row, and must neither break that training (a serialization failure at its commit) nor
be lost (a request made after a training started stays due).
"""

import logging
import time
from datetime import datetime

from psycopg2 import errors

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from .crm_ai_engine import ENGINES, engine_selection

_logger = logging.getLogger(__name__)

RESULTS = [("active", "New model activated"), ("rejected", "New model rejected by the quality gate"),
           ("insufficient_data", "Not enough data"), ("error", "Failed")]
#: Tries of a bookkeeping write that a concurrent "Train now" on the same row broke.
BOOKKEEPING_ATTEMPTS = 3


class CrmAiTraining(models.Model):
    _name = "crm.ai.training"
    _description = "CRM AI: training status"
    _order = "task, company_id"

    task = fields.Selection(selection=lambda self: engine_selection(), required=True, readonly=True)
    task_label = fields.Char(compute="_compute_task_label")
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    date_requested = fields.Datetime("Requested on", readonly=True)
    date_started = fields.Datetime("Started on", readonly=True)
    date_done = fields.Datetime("Done on", readonly=True)
    attempts = fields.Integer(readonly=True, help="Starts since the last request (a killed run counts).")
    result = fields.Selection(RESULTS, readonly=True)
    message = fields.Text(readonly=True)
    model_id = fields.Many2one("crm.ai.model", readonly=True, ondelete="set null")
    is_due = fields.Boolean(compute="_compute_is_due")

    def init(self):
        # one row per task and company, records without a company included (NULL is distinct in SQL)
        self.env.cr.execute("""CREATE UNIQUE INDEX IF NOT EXISTS crm_ai_training_task_company_uniq
                                   ON crm_ai_training (task, COALESCE(company_id, 0))""")

    @api.depends_context("lang")
    def _compute_task_label(self):
        labels = dict(engine_selection())
        for status in self:
            status.task_label = labels.get(status.task, status.task)

    @api.depends("date_requested", "date_started")
    def _compute_is_due(self):
        for status in self:
            # requested after the last start: a request made while a training runs stays due
            status.is_due = bool(status.date_requested) and (
                not status.date_started or status.date_started < status.date_requested)

    def _ai_unfinished(self):
        """Started and never finished: killed (at a time limit, with its worker).  Inline, the
        pair waits for the next request: retried first on every call, a training that always
        overruns would hold back the pairs after it and get the cron deactivated by Odoo's
        timeout rule.  A queued job requeued by queue_job trains it again (its own retries)."""
        self.ensure_one()
        return bool(self.date_started) and (not self.date_done or self.date_done < self.date_started)

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(_("Training statuses are written by CRM AI only."))
        return super().create(vals_list)

    def write(self, vals):
        if not self.env.su:
            raise AccessError(_("Training statuses are written by CRM AI only."))
        return super().write(vals)

    @api.model
    def _ai_status(self, task, company):
        return self.sudo().search([("task", "=", task), ("company_id", "=", company.id or False)], limit=1)

    @api.model
    def _ai_request(self, tasks, companies, older_than=None):
        """Ask for a training of every (task, company) pair; with ``older_than`` (a
        datetime), only of the pairs not requested since then."""
        # Microseconds kept: a request made in the same second as a training started is still due.
        now = datetime.now()
        for task in tasks:
            for company in companies:
                if task in ENGINES and not ENGINES[task].drives(company):
                    continue
                status = self._ai_status(task, company)
                if status and older_than and status.date_requested and status.date_requested >= older_than:
                    continue
                values = {"date_requested": now, "attempts": 0}
                if status:
                    status.sudo().write(values)
                else:
                    self.sudo().create({"task": task, "company_id": company.id or False, **values})

    @api.model
    def _ai_due(self, tasks, companies):
        """Rows requested after their last start, in (task, company) order."""
        order = {(task, company.id or False): i for i, (task, company) in
                 enumerate((t, c) for t in tasks for c in companies)}
        rows = self.sudo().search([("task", "in", tasks), ("date_requested", "!=", False)])
        due = rows.filtered(lambda s: s.is_due and (s.task, s.company_id.id or False) in order)
        return due.sorted(lambda s: order[(s.task, s.company_id.id or False)])

    def _ai_bookkeep(self, values):
        """Write ``values`` on this row in a transaction of its own, committed at once
        (inside a test, the test's transaction).  Retried when a concurrent "Train now"
        updated the row; the training's own transaction never touches it."""
        self.ensure_one()
        if not self.env["crm.ai.driver"]._ai_may_open_cursor():
            self.sudo().write(values)  # a test's single transaction: never another cursor
            return
        for attempt in range(1, BOOKKEEPING_ATTEMPTS + 1):
            try:
                with self.env.registry.cursor() as cr:
                    env = self.env(cr=cr, su=True)
                    self.with_env(env).write(values)
                    # flushed here: the cursor's commit flushes through its live environments
                    # only, and an environment nothing refers to any more is gone by then
                    env.flush_all()
                break
            except errors.SerializationFailure:
                if attempt == BOOKKEEPING_ATTEMPTS:
                    raise
                time.sleep(0.1 * attempt)
        self.invalidate_recordset()

    def _ai_start(self):
        self._ai_bookkeep({"date_started": datetime.now(), "attempts": self.attempts + 1})

    def _ai_done(self, result, started=True):
        """Record ``result``; ``started=False`` for a pair given up without starting (it
        counts as handled, so it is no longer due)."""
        now = datetime.now()
        self._ai_bookkeep({"date_done": now, "result": result["status"], "message": result["message"],
                           "model_id": result.get("model_id") or False,
                           **({} if started else {"date_started": now})})
