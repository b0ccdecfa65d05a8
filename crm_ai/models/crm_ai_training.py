"""Training status per engine and company: what was requested, what ran, how it went.

The train cron works through the rows that are due (requested and not done since), one
committed row at a time, so it resumes after its time budget or a kill; Settings shows
the last result of each row (Train now returns at once and the verdict lands here).
"""

from datetime import datetime

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from .crm_ai_engine import engine_selection

RESULTS = [("active", "New model activated"), ("rejected", "New model rejected by the quality gate"),
           ("insufficient_data", "Not enough data"), ("error", "Failed")]


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

    _sql_constraints = [("task_company_uniq", "unique(task, company_id)", "One status per task and company.")]

    def _compute_task_label(self):
        labels = dict(engine_selection())
        for status in self:
            status.task_label = labels.get(status.task, status.task)

    @api.depends("date_requested", "date_done")
    def _compute_is_due(self):
        for status in self:
            status.is_due = bool(status.date_requested) and (
                not status.date_done or status.date_done < status.date_requested)

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
    def _ai_request(self, tasks, companies):
        """Ask for a training of every (task, company) pair."""
        # Microseconds kept: a request made in the same second as a training ended is still due.
        now = datetime.now()
        for task in tasks:
            for company in companies:
                status = self._ai_status(task, company)
                values = {"date_requested": now, "attempts": 0}
                if status:
                    status.sudo().write(values)
                else:
                    self.sudo().create({"task": task, "company_id": company.id or False, **values})

    @api.model
    def _ai_due(self, tasks, companies):
        """Rows requested and not done since, in (task, company) order."""
        order = {(task, company.id or False): i for i, (task, company) in
                 enumerate((t, c) for t in tasks for c in companies)}
        rows = self.sudo().search([("task", "in", tasks), ("date_requested", "!=", False)])
        due = rows.filtered(lambda s: s.is_due and (s.task, s.company_id.id or False) in order)
        return due.sorted(lambda s: order[(s.task, s.company_id.id or False)])

    def _ai_start(self):
        self.sudo().write({"date_started": datetime.now(), "attempts": self.attempts + 1})

    def _ai_done(self, result):
        self.sudo().write({"date_done": datetime.now(), "result": result["status"],
                           "message": result["message"], "model_id": result.get("model_id") or False})
