"""Registry of trained models (one row per training run, per task and company).

The trained estimator lives in ``artifact`` (joblib bytes, in the database, not the
filestore) signed with a key derived from the database secret.  It is only ever
unpickled after the signature checks out: a blob uploaded by a user, copied from
another database or altered in SQL is refused, never loaded.
"""

import logging
import threading
import time

from psycopg2.errors import SerializationFailure

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.addons.base.models.ir_cron import MAX_BATCH_PER_CRON_JOB
from odoo.tools import config
from odoo.tools.misc import hmac as odoo_hmac

from ..ml import persistence

_logger = logging.getLogger(__name__)

#: Fields only the trainer writes (context key below); users can't forge metrics or blobs.
PROTECTED_FIELDS = {
    "task", "company_id", "version", "artifact", "date_trained", "date_from",
    "n_won", "n_lost", "n_train", "n_holdout", "holdout_date_from", "holdout_date_to", "train_date_to",
    "auc", "log_loss", "brier", "calibration_error", "pls_auc", "pls_log_loss", "pls_brier",
    "pls_calibration_error",
    "previous_auc", "gate_reason", "feature_names", "importance", "hyperparameters",
    "training_seconds", "library_versions",
}
TRAINER_CONTEXT_KEY = "crm_ai_trainer"
SIGNING_SCOPE = "crm_ai.model-artifact"
#: Tries of one unit of work (a company's training, a scoring batch) that a concurrent edit broke.
SERIALIZATION_ATTEMPTS = 2
#: Seconds of scoring per cron call, at most / at least (see ``_ai_score_time_budget``).
MAX_SCORE_TIME_BUDGET = 60.0
MIN_SCORE_TIME_BUDGET = 1.0


def auto_commit(env):
    """Whether the crons may commit as they go (never inside a test's transaction)."""
    return not getattr(threading.current_thread(), "testing", False) and not env.registry.in_test_mode()


class CrmAiModel(models.Model):
    _name = "crm.ai.model"
    _description = "CRM AI: trained model"
    _order = "task, company_id, version desc"
    _rec_names_search = ["task", "version"]

    name = fields.Char(compute="_compute_name")
    task = fields.Selection([("lead_propensity", "Lead propensity")], required=True, readonly=True, index=True)
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    version = fields.Integer(required=True, readonly=True, aggregator=None)
    state = fields.Selection([
        ("active", "Active"),
        ("rejected", "Rejected"),
        ("archived", "Archived"),
    ], required=True, default="rejected", readonly=True, index=True,
        help="Active: scores the leads. Rejected: failed the quality gate. "
             "Archived: replaced by a newer or rolled-back model.")
    date_trained = fields.Datetime("Trained on", readonly=True)
    date_from = fields.Date("Training data from", readonly=True,
                            help="Start date of the closed leads used (empty: all).")
    n_won = fields.Integer("Won leads", readonly=True, aggregator=None)
    n_lost = fields.Integer("Lost leads", readonly=True, aggregator=None)
    n_train = fields.Integer("Training leads", readonly=True, aggregator=None)
    n_holdout = fields.Integer("Holdout leads", readonly=True,
                               help="The most recent closed leads, kept aside to measure the model.")
    holdout_date_from = fields.Datetime("Holdout from", readonly=True)
    holdout_date_to = fields.Datetime("Holdout to", readonly=True)
    train_date_to = fields.Datetime("Learnt from leads closed up to", readonly=True,
                                    help="The stored model learnt from every closed lead up to this date.")
    auc = fields.Float("AUC", digits=(3, 3), readonly=True, aggregator="avg",
                       help="Area under the ROC curve on the holdout: the chance that a won lead "
                            "is ranked above a lost one (0.5 = coin toss, 1 = perfect).")
    log_loss = fields.Float("Log-loss", digits=(3, 4), readonly=True, aggregator="avg", help="Lower is better.")
    brier = fields.Float("Brier score", digits=(3, 4), readonly=True, aggregator="avg",
                         help="Mean squared error of the probabilities on the holdout: "
                              "lower means better calibrated.")
    calibration_error = fields.Float(
        "Calibration error", digits=(3, 3), readonly=True, aggregator="avg",
        help="Expected calibration error on the holdout: mean distance between the predicted "
             "probability and the observed win rate, per 10-point probability range, weighted by leads "
             "(0.05 = scores off by 5 points on average). Lower is better.")
    pls_auc = fields.Float("Odoo PLS AUC", digits=(3, 3), readonly=True, aggregator="avg",
                           help="Odoo's Predictive Lead Scoring (naive Bayes) trained on the same "
                                "leads and measured on the same holdout.")
    pls_log_loss = fields.Float("Odoo PLS log-loss", digits=(3, 4), readonly=True)
    pls_brier = fields.Float("Odoo PLS Brier", digits=(3, 4), readonly=True, aggregator="avg")
    pls_calibration_error = fields.Float("Odoo PLS calibration error", digits=(3, 3), readonly=True, aggregator="avg")
    auc_gain = fields.Float("AUC vs PLS", digits=(3, 3), compute="_compute_auc_gain")
    previous_auc = fields.Float("Active model's AUC on this holdout", digits=(3, 3), readonly=True)
    gate_reason = fields.Text("Quality gate", readonly=True)
    feature_names = fields.Text("Fields used", readonly=True)
    importance = fields.Text("Field importance", readonly=True,
                             help="Mean absolute change in log-odds each field brings, on the training leads.")
    hyperparameters = fields.Char(readonly=True)
    training_seconds = fields.Float("Training time (s)", digits=(6, 1), readonly=True)
    library_versions = fields.Char(readonly=True)
    artifact = fields.Binary(attachment=False, readonly=True, copy=False,
                             groups="crm_ai.group_crm_ai_manager")
    lead_count = fields.Integer("Leads scored", compute="_compute_lead_count")

    _sql_constraints = [
        ("task_company_version_uniq", "unique(task, company_id, version)",
         "A model version exists once per task and company."),
    ]

    @api.depends("task", "version", "company_id")
    def _compute_name(self):
        labels = dict(self._fields["task"]._description_selection(self.env))
        for model in self:
            model.name = f"{labels.get(model.task, model.task)} v{model.version}"

    @api.depends("auc", "pls_auc")
    def _compute_auc_gain(self):
        for model in self:
            model.auc_gain = model.auc - model.pls_auc if model.auc and model.pls_auc else 0.0

    def _compute_lead_count(self):
        counts = dict(self.env["crm.lead"].with_context(active_test=False)._read_group(
            [("ai_propensity_model_id", "in", self.ids)], ["ai_propensity_model_id"], ["__count"]))
        for model in self:
            model.lead_count = counts.get(model, 0)

    # -- protection ----------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get(TRAINER_CONTEXT_KEY):
            raise AccessError(_("AI models are created by training (Settings ▸ Train now, or the scheduled action)."))
        return super().create(vals_list)

    def write(self, vals):
        if PROTECTED_FIELDS & set(vals) and not self.env.context.get(TRAINER_CONTEXT_KEY):
            raise AccessError(_("The metrics and the stored model of an AI model cannot be edited."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_active(self):
        if any(model.state == "active" for model in self):
            raise UserError(_("The active model scores the leads: roll back to another version before deleting it."))

    # -- signed artifacts ------------------------------------------------------------
    def _signing_key(self):
        """Key derived from the database secret (``database.secret``), never stored.

        Not bound to the database name: a dump restored under another name (a staging
        copy) keeps its models, while the Database Manager's "Duplicate" draws a new
        secret, so the copy refuses them and retrains.
        """
        return odoo_hmac(self.env(su=True), SIGNING_SCOPE, "model").encode()

    def _ai_dump(self, estimator):
        return persistence.dumps_signed(estimator, self._signing_key(), meta={"task": self.task or ""})

    def _ai_load(self):
        """The estimator of this record, after its signature was verified."""
        self.ensure_one()
        blob = self.sudo().with_context(bin_size=False).artifact
        if not blob:
            raise UserError(_("Model %s has no stored estimator.", self.display_name))
        try:
            return persistence.loads_signed(blob, self._signing_key())
        except persistence.ArtifactError as error:
            _logger.warning("crm_ai: refusing to load model %s (id %s): %s", self.display_name, self.id, error)
            raise UserError(_("Model %(model)s was refused: %(reason)s.", model=self.display_name, reason=error)) from error

    # -- registry ------------------------------------------------------------------------
    @api.model
    def _ai_active(self, task, company):
        return self.sudo().search([("task", "=", task), ("company_id", "=", company.id or False),
                                   ("state", "=", "active")], limit=1)

    @api.model
    def _ai_next_version(self, task, company):
        last = self.sudo().search([("task", "=", task), ("company_id", "=", company.id or False)],
                                  order="version desc", limit=1)
        return last.version + 1

    def action_activate(self):
        """Roll back (or forward) to this version: it scores the leads from now on."""
        self.ensure_one()
        if not self.env.user.has_group("crm_ai.group_crm_ai_manager"):
            raise AccessError(_("Only CRM AI managers can change the active model."))
        self._ai_load()  # refuse to activate a blob that does not verify
        trainer = self.sudo().with_context(**{TRAINER_CONTEXT_KEY: True})
        trainer.search([("task", "=", self.task), ("company_id", "=", self.company_id.id),
                        ("state", "=", "active"), ("id", "!=", self.id)]).write({"state": "archived"})
        trainer.write({"state": "active"})
        self.env.ref("crm_ai.ir_cron_score").sudo()._trigger()
        return {
            "type": "ir.actions.client", "tag": "display_notification",
            "params": {"type": "success", "message": _("%s is now active; leads will be rescored.", self.display_name),
                       "next": {"type": "ir.actions.act_window_close"}},
        }

    def action_view_leads(self):
        self.ensure_one()
        action = self.env["ir.actions.actions"]._for_xml_id("crm.crm_lead_all_leads")
        action.update({"domain": [("ai_propensity_model_id", "=", self.id)], "context": {"active_test": False}})
        return action

    # -- scheduled actions ---------------------------------------------------------------
    @api.model
    def _ai_task_handlers(self):
        """``{task: (model name, train method, score method)}``; engines add theirs here."""
        return {"lead_propensity": ("crm.lead", "_ai_propensity_train", "_ai_propensity_score")}

    @api.model
    def _ai_enabled(self):
        # The settings checkbox deletes the parameter when unticked (Odoo stores False as "no row").
        return self.env["ir.config_parameter"].sudo().get_param("crm_ai.enabled") not in (None, False, "False", "0", "")

    @api.model
    def _ai_companies(self):
        """Every company, then an empty recordset for leads without a company (they share a model)."""
        return [*self.env["res.company"].sudo().search([]), self.env["res.company"]]

    @api.model
    def _ai_retry_on_conflict(self, work):
        """Return ``work()``, run again on a fresh snapshot if a concurrent edit broke it.

        Odoo's transactions are REPEATABLE READ: when a lead this transaction updates
        was saved by a user after the transaction's first query, PostgreSQL refuses the
        update ("could not serialize access").  The work is rolled back and redone once
        (it sees the user's change then); a second conflict is raised to the caller.
        Inside a test's single transaction nothing is rolled back: the error is raised.
        """
        for attempt in range(1, SERIALIZATION_ATTEMPTS + 1):
            try:
                return work()
            except SerializationFailure:
                if attempt == SERIALIZATION_ATTEMPTS or not auto_commit(self.env):
                    raise
                _logger.info("crm_ai: a record changed under a running job, retrying on fresh data")
                self.env.cr.rollback()

    @api.model
    def _ai_isolated(self, what, task, company, work):
        """``(work(), None)``, or ``(None, error)`` when it failed: the failure is logged
        and undone (rolled back, or to a savepoint inside a test's transaction), so one
        company's data never stops the crons for the other companies."""
        commit = auto_commit(self.env)
        try:
            if commit:
                return work(), None
            with self.env.cr.savepoint():
                return work(), None
        except Exception as error:  # noqa: BLE001 -- one company's data must not block the others
            if commit:
                self.env.cr.rollback()
            _logger.exception("crm_ai: %s %s failed for %s", what, task, company.name or "leads without a company")
            return None, error

    @api.model
    def _ai_flushed(self, work, *args):
        """``work(*args)`` with its pending ORM writes flushed, so a conflict they raise
        happens inside ``_ai_retry_on_conflict`` rather than at the commit."""
        result = work(*args)
        self.env.flush_all()
        return result

    @api.model
    def _cron_ai_train(self):
        """Train every engine for every company (weekly by default).

        One transaction per company: a company's new model is kept even if a later
        company's training fails, and a failure (logged, reported with status
        "error") does not stop the other companies.
        """
        if not self._ai_enabled():
            _logger.info("crm_ai: disabled in settings, training skipped")
            return []
        results = []
        commit = auto_commit(self.env)
        for task, (model_name, train, _score) in self._ai_task_handlers().items():
            for company in self._ai_companies():
                started = time.monotonic()
                trainer = getattr(self.env[model_name].sudo().with_company(company), train)
                company_name = company.name or _("leads without a company")
                result, error = self._ai_isolated(
                    "training", task, company,
                    lambda: self._ai_retry_on_conflict(lambda: self._ai_flushed(trainer, company)))  # noqa: B023
                if error:
                    result = {"task": task, "company": company.id, "status": "error",
                              "message": _("Training failed for %(company)s: %(error)s",
                                           company=company_name, error=error)}
                _logger.info("crm_ai: trained %s for %s in %.1fs: %s", task, company_name,
                             time.monotonic() - started, result.get("message"))
                results.append(result)
                if commit:
                    self.env.cr.commit()
        # New models mean new scores: let the score cron run right away.  Only then: a
        # training that produced nothing must not wake the score cron, which may ask for a
        # training again (refused model), and so on.
        if any(result["status"] == "active" for result in results):
            self.env.ref("crm_ai.ir_cron_score").sudo()._trigger()
        return results

    @api.model
    def _cron_ai_score(self, time_budget=None):
        """Score what changed, for every engine and company (hourly by default).

        Works in committed batches and reports progress to ``ir.cron``, which calls it
        again while work remains; a killed run resumes from what is still pending.
        """
        if not self._ai_enabled():
            return
        done = remaining = 0
        deadline = time.monotonic() + (time_budget or self._ai_score_time_budget())
        cron = self.env["ir.cron"]

        def progress(company_done, company_remaining):
            # Committed with each batch: a run killed later still counts as progress
            # ("partially done"), not as a failure that would end up deactivating the cron.
            cron._notify_progress(done=done + company_done, remaining=remaining + company_remaining)

        for task, (model_name, _train, score) in self._ai_task_handlers().items():
            for company in self._ai_companies():
                scorer = getattr(self.env[model_name].sudo().with_company(company), score)
                # Batches are committed as they go: a failure loses only the current one.
                counts, _error = self._ai_isolated("scoring", task, company,
                                                   lambda: scorer(company, deadline, progress))  # noqa: B023
                d, r = counts or (0, 0)
                done += d
                remaining += r
        cron._notify_progress(done=done, remaining=remaining)
        return done, remaining

    @api.model
    def _ai_score_time_budget(self):
        """Seconds one cron call may score before handing back (ir.cron calls again).

        A third of the server's time limits for a cron (``limit_time_real_cron``, else
        ``limit_time_real``; ``limit_time_cpu`` in multi-worker mode, where it is enforced),
        shared by the up to ``MAX_BATCH_PER_CRON_JOB`` calls ir.cron makes in a row, so
        they end well before Odoo would kill them; between ``MIN_SCORE_TIME_BUDGET`` (one
        batch at least) and ``MAX_SCORE_TIME_BUDGET``.
        """
        real = config.get("limit_time_real_cron")
        if not real or real <= 0:
            real = config.get("limit_time_real")
        limits = [real, config.get("limit_time_cpu") if config.get("workers") else None]
        # ir.cron calls a job that reports remaining work up to MAX_BATCH_PER_CRON_JOB times
        # in a row, all inside the same limit window: the third is shared between them.
        limits = [limit / 3.0 / MAX_BATCH_PER_CRON_JOB for limit in limits if limit and limit > 0]
        return max(MIN_SCORE_TIME_BUDGET, min([MAX_SCORE_TIME_BUDGET, *limits]))
