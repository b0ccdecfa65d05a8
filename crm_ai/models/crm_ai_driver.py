"""The driver: runs every engine the same way (see ``crm_ai_engine`` for the contract).

Units of work, each runnable on its own (``crm_ai_queue`` runs them as queue_job jobs):

- ``_ai_train_unit(task, company)``: train, measure, gate and register one engine for
  one company;
- ``_ai_score_unit(task, company, ids)``: score those of a batch of records still pending.

The crons loop over (engine, company) pairs and call those units, each pair isolated
(one company's failure is logged and undone, the others go on), with a commit per
unit, ``ir.cron`` progress, and a time budget checked before every pair and batch.
``_ai_score_pending`` is where a pair's pending records are scored inline; a job
queue overrides it to hand the batches out instead.
"""

import json
import logging
import threading
import time
from datetime import datetime

import psycopg2
from dateutil.relativedelta import relativedelta
from psycopg2.errors import SerializationFailure

from odoo import _, api, models
from odoo.tools import SQL, config, split_every

from odoo.addons.base.models.ir_cron import MAX_BATCH_PER_CRON_JOB

from ..ml import quality_gate
from .crm_ai_engine import ENGINES, ModelRefused

_logger = logging.getLogger(__name__)

#: Tries of one unit of work (a company's training, a scoring batch) that a concurrent edit broke.
SERIALIZATION_ATTEMPTS = 2
#: Seconds of work per cron call, at most / at least (see ``_ai_time_budget``).
MAX_TIME_BUDGET = 60.0
MIN_TIME_BUDGET = 1.0
#: Starts of one training that never finished (killed at the time limit) before giving up.
MAX_TRAINING_ATTEMPTS = 3
#: A scoring batch in which this many records fail before any succeeds is failing as a whole,
#: not because of a few records (``_ai_score_isolated``).
MAX_SET_ASIDE = 20
#: "Now" for score dates and their checks: the database's wall clock in UTC, as write_date.
DB_CLOCK = SQL("(clock_timestamp() AT TIME ZONE 'UTC')")
#: Record states an engine's target model uses (its ``state_field`` selection).
RECORD_STATES = [
    ("pending", "Not scored yet"),
    ("scored", "Scored"),
    ("stale", "Out of date (model refused, retraining)"),
    ("insufficient_data", "Not enough data"),
    ("no_model", "No model good enough yet"),
    ("error", "Could not be scored (tried again daily)"),
    ("disabled", "Switched off"),
]


#: Context key of a caller that owns the transaction (a job queue's job): the driver then
#: never commits or rolls back, and leaves concurrency errors to the caller's retries.
CALLER_COMMITS = "crm_ai_caller_commits"


def in_test_transaction(env):
    """Whether this runs inside a test's single transaction."""
    return getattr(threading.current_thread(), "testing", False) or env.registry.in_test_mode()


def auto_commit(env):
    """Whether the crons may commit and roll back as they go: never inside a test's
    transaction, nor inside a caller's (``CALLER_COMMITS`` in the context)."""
    return not in_test_transaction(env) and not env.context.get(CALLER_COMMITS)


class CrmAiDriver(models.AbstractModel):
    _name = "crm.ai.driver"
    _description = "CRM AI: engine driver"

    # -- engines, companies, switches ---------------------------------------------------
    @api.model
    def _ai_engine(self, task, company):
        """The engine of ``task`` for ``company``, working as superuser in that company."""
        engine = ENGINES[task]
        if not hasattr(self.env[engine.target_model], "_ai_check_no_scores"):
            # its scores could be forged over RPC: refuse to drive it
            raise TypeError(f"{engine.target_model} must inherit crm.ai.scored.mixin to be scored by {task}")
        return engine(self.sudo().with_company(company).env, company)

    @api.model
    def _ai_enabled(self):
        return self.env["ir.config_parameter"].sudo().get_param("crm_ai.enabled") not in (
            None, False, "False", "false", "0", "")

    @api.model
    def _ai_tasks(self):
        """Enabled engines' task keys (none when CRM AI is disabled)."""
        if not self._ai_enabled():
            return []
        installed = self.env.registry._init_modules
        return [task for task, cls in ENGINES.items()
                if cls.module() in installed and cls.params["enabled"].read(self.env, cls.param_key("enabled"))]

    @api.model
    def _ai_companies(self):
        """Every company, then an empty recordset for records without a company (they share a model)."""
        return [*self.env["res.company"].sudo().search([]), self.env["res.company"]]

    @api.model
    def _ai_time_budget(self):
        """Seconds one cron call may work before handing back (ir.cron calls again).

        A third of the server's time limits for a cron (``limit_time_real_cron``, else
        ``limit_time_real``; ``limit_time_cpu`` in multi-worker mode, where it is enforced),
        shared by the up to ``MAX_BATCH_PER_CRON_JOB`` calls ir.cron makes in a row, so
        they end well before Odoo would kill them; between ``MIN_TIME_BUDGET`` (one
        batch at least) and ``MAX_TIME_BUDGET``.  Checked before every unit of work: a
        unit that has started (one training) runs to its end.
        """
        real = config.get("limit_time_real_cron")
        if real is None or real < 0:  # -1: "as limit_time_real"; 0: no limit
            real = config.get("limit_time_real")
        limits = [real, config.get("limit_time_cpu") if config.get("workers") else None]
        limits = [limit / 3.0 / MAX_BATCH_PER_CRON_JOB for limit in limits if limit and limit > 0]
        return max(MIN_TIME_BUDGET, min([MAX_TIME_BUDGET, *limits]))

    # -- transactions ----------------------------------------------------------------------
    @api.model
    def _ai_retry_on_conflict(self, work):
        """Return ``work()``, run again on a fresh snapshot if a concurrent edit broke it.

        Odoo's transactions are REPEATABLE READ: when a record this transaction updates
        was saved by a user after the transaction's first query, PostgreSQL refuses the
        update ("could not serialize access").  The work is rolled back and redone once
        (it sees the user's change then); a second conflict is raised to the caller.
        Pending ORM writes are flushed inside, so their conflicts are retried too.
        Inside a test's single transaction nothing is rolled back: the error is raised.
        """
        for attempt in range(1, SERIALIZATION_ATTEMPTS + 1):
            try:
                result = work()
                self.env.flush_all()
                return result
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
        except Exception as error:
            if commit:
                self.env.cr.rollback()
            _logger.exception("crm_ai: %s %s failed for %s", what, task, company.name or "records without a company")
            return None, error

    @api.model
    def _ai_auto_commit(self):
        return auto_commit(self.env)

    @api.model
    def _ai_may_open_cursor(self):
        """Whether bookkeeping may go through a transaction of its own (not in a test)."""
        return not in_test_transaction(self.env)

    @api.model
    def _ai_commit(self):
        if auto_commit(self.env):
            self.env.cr.commit()

    # -- models: load, refuse ---------------------------------------------------------------------
    @api.model
    def _ai_load(self, engine, model):
        """The estimator of registry row ``model`` for ``engine``, or :class:`ModelRefused`.

        A trained model is unpickled only after its signature checks out for this
        database, this task, this company and this version."""
        if not engine.trains:
            return engine.untrained_estimator()
        estimator = model._ai_load_estimator()
        engine.check_estimator(estimator)
        return estimator

    @api.model
    def _ai_refuse(self, engine, model, error, request_training=True):
        """One path for every unusable model: visible as "refused" in the registry,
        its records say "out of date", and a retraining is requested at once (not when
        the refusal is found by that very training)."""
        _logger.error("crm_ai: %s refused for %s: %s; retraining", model.display_name,
                      engine.company.name or "records without a company", error)
        model.sudo().write({"state": "refused", "refusal_reason": str(error)})
        self.env.flush_all()
        self._ai_sql_update(engine, [(engine.state_field, SQL("%s", "stale"))],
                            SQL("%s = %s AND %s = 'scored'", engine.column_sql("t", engine.model_field), model.id,
                                engine.column_sql("t", engine.state_field)))
        if engine.trains and request_training:
            self.env["crm.ai.training"].sudo()._ai_request([engine.task], [engine.company])
            self.env.ref("crm_ai.ir_cron_train").sudo()._trigger()
        self._ai_commit()  # a later company's rollback must not drop the refusal or the trigger

    @api.model
    def _ai_sql_update(self, engine, assignments, condition):
        """``UPDATE <target> SET assignments`` (``[(column, SQL value)]``, the engine's
        company's value of a company-dependent column) on the rows of ``engine``'s scope
        matching ``condition`` (alias ``t``) that no other transaction holds; returns
        the row count."""
        self.env[engine.target_model].flush_model()
        table = SQL.identifier(engine.table)
        assignments = SQL(", ").join(engine.assign_sql(engine.table, name, value) for name, value in assignments)
        self.env.cr.execute(SQL(
            "UPDATE %(table)s SET %(assignments)s WHERE id IN ("
            " SELECT t.id FROM %(table)s t WHERE %(scope)s AND %(condition)s FOR UPDATE SKIP LOCKED)",
            table=table, assignments=assignments, scope=engine.scope_sql("t"), condition=condition),
            log_exceptions=False)
        self.env[engine.target_model].invalidate_model()
        return self.env.cr.rowcount

    @api.model
    def _ai_mark_insufficient(self, engine, state="insufficient_data"):
        """No model for ``engine``'s company: its records say why (``state``: not enough
        data, or no model good enough yet), with no made-up score."""
        clear = [(name, SQL("NULL")) for name in (*engine.value_fields, engine.model_field)]
        self._ai_sql_update(engine, [(engine.state_field, SQL("%s", state)), *clear],
                            SQL("%s IS DISTINCT FROM %s", engine.column_sql("t", engine.state_field), state))
        engine.after_clear()

    # -- training ---------------------------------------------------------------------------------
    @api.model
    def _ai_train_unit(self, task, company):
        """Train, measure, gate and register ``task``'s model for ``company``.

        Returns ``{"task", "company", "status", "message", "model_id"}`` with status
        "active" (new model activated), "rejected" (kept, the gate refused it) or
        "insufficient_data".
        """
        engine = self._ai_engine(task, company)
        Registry = self.env["crm.ai.model"].sudo()
        if not engine.trains:
            model = Registry._ai_ensure_untrained(engine)
            return self._ai_result(engine, "active", _("%s needs no training.", model.display_name), model)
        active = Registry._ai_active(task, company)
        champion, refused_note = None, ""
        if active:
            try:
                champion = self._ai_load(engine, active)
            except ModelRefused as error:
                self._ai_refuse(engine, active, error, request_training=False)
                refused_note = _("the active model %(model)s was refused: %(error)s", model=active.display_name,
                                 error=error)
                active = Registry.browse()
        shortfall = engine.data_shortfall()
        result = None
        if not shortfall:
            result = engine.train(champion, active)
            if result.status != "trained":
                shortfall = result.message
        if shortfall:
            if not active:
                self._ai_mark_insufficient(engine)
            return self._ai_result(engine, "insufficient_data", shortfall)

        primary = result.metrics.get(engine.primary_metric)
        if champion is not None:
            accepted, reason = quality_gate(
                primary, result.champion_score, has_active=True, higher_is_better=engine.higher_is_better,
                metric=engine.primary_metric_label)
            baseline = result.baseline_metrics.get(engine.primary_metric)
            champion_score = result.champion_score
            beats_champion = primary is not None and champion_score is not None and (
                primary >= champion_score if engine.higher_is_better else primary <= champion_score)
            if accepted and baseline is not None and not beats_champion:
                # a model worse than the active one, within the tolerance, must not fall below the
                # baseline's floor either: retrainings, each within the tolerance of the one before,
                # would drift below the simple answer the engine has to beat (one that beats the
                # active model replaces it whatever the baseline: it is the better of the two)
                floor_ok, floor_reason = quality_gate(
                    primary, baseline, has_active=True, higher_is_better=engine.higher_is_better,
                    metric=engine.primary_metric_label, reference=engine.baseline_label or _("the baseline"))
                if not floor_ok:
                    accepted, reason = False, floor_reason
        else:
            # No usable champion: the new model still has to hold its own against the baseline.
            baseline = result.baseline_metrics.get(engine.primary_metric)
            accepted, reason = quality_gate(
                primary, baseline, has_active=baseline is not None, higher_is_better=engine.higher_is_better,
                metric=engine.primary_metric_label, reference=engine.baseline_label or _("the baseline"))
        notes = [note for note in (result.gate_note if champion is not None else "", refused_note) if note]
        if notes:
            reason = "%s (%s)" % (reason, "; ".join(notes))
        model = Registry._ai_register(engine, result, accepted, reason)
        verdict = _("activated") if accepted else _("rejected")
        message = _("%(model)s %(verdict)s: holdout %(metric)s %(score)s (%(baseline)s %(baseline_score)s). %(reason)s",
                    model=model.display_name, verdict=verdict, metric=engine.primary_metric_label,
                    score=model._ai_format_score(primary), baseline=engine.baseline_label or _("baseline"),
                    baseline_score=model._ai_format_score(result.baseline_metrics.get(engine.primary_metric)),
                    reason=reason)
        return self._ai_result(engine, "active" if accepted else "rejected", message, model)

    @api.model
    def _ai_result(self, engine, status, message, model=None):
        return {"task": engine.task, "company": engine.company.id, "status": status, "message": message,
                "model_id": model.id if model else False}

    @api.model
    def _cron_train(self, time_budget=None):
        """Train the (engine, company) pairs that are due; returns their results.

        The schedule requests the pairs not requested within the last interval (so a
        run woken by a trigger retrains nothing by itself); "Train now" and a refused
        model request theirs and trigger this cron.  Pairs are trained one by one, each
        with its status committed.  The time budget is checked before every pair; one
        training cannot be cut, so once a pair overran it the cron is triggered again and
        this call ends (ir.cron would otherwise call again at once, up to 10 times within
        one time-limit window): a long run goes on over several runs, and one killed
        resumes with the pairs still due.
        """
        due = self._ai_due_trainings()
        if due is None:
            return []
        deadline = time.monotonic() + (time_budget or self._ai_time_budget())
        cron = self.env["ir.cron"]
        results = []
        for status in due:
            if results and time.monotonic() > deadline:
                self.env.ref("crm_ai.ir_cron_train").sudo()._trigger()
                break
            results.append(self._ai_train_pair(status))
            # "remaining" stays 0: ir.cron must not call again in this window (see above)
            cron._notify_progress(done=len(results), remaining=0)
            self._ai_commit()
        # New models mean new scores: let the score cron run right away.  Only then: a
        # training that produced nothing must not wake the score cron, which may ask for
        # a training again (refused model), and so on.
        if any(result["status"] == "active" for result in results):
            self.env.ref("crm_ai.ir_cron_score").sudo()._trigger()
        return results

    @api.model
    def _ai_due_trainings(self):
        """The training status rows due now, once the schedule has requested the pairs not
        requested within its interval, in (task, company) order; ``None`` when disabled."""
        tasks = self._ai_tasks()
        if not tasks:
            _logger.info("crm_ai: disabled in settings, training skipped")
            return None
        Status = self.env["crm.ai.training"].sudo()
        companies = self._ai_companies()
        Status._ai_request(tasks, companies, older_than=self._ai_schedule_start())
        self._ai_commit()  # the status rows, before their bookkeeping transactions write them
        return Status._ai_due(tasks, companies)

    @api.model
    def _ai_schedule_start(self):
        """Pairs requested since then need no scheduled request: 90 % of the train
        action's interval ago (the schedule drifts a little from run to run)."""
        cron = self.env.ref("crm_ai.ir_cron_train", raise_if_not_found=False)
        if not cron:
            return None
        cron = cron.sudo()
        interval = relativedelta(**{cron.interval_type: cron.interval_number})
        now = datetime.now()
        return now - 0.9 * ((now + interval) - now)

    @api.model
    def _ai_train_pair(self, status):
        """Train one due pair, isolated, and record how it went on its status row."""
        task, company = status.task, status.company_id
        company_name = company.name or _("records without a company")
        if status.attempts >= MAX_TRAINING_ATTEMPTS:
            result = {"task": task, "company": company.id, "status": "error", "model_id": False,
                      "message": _("Training %(task)s for %(company)s was started %(n)s times without finishing "
                                   "(killed at the server's time limit?); it waits for the next scheduled run.",
                                   task=status.task_label, company=company_name, n=status.attempts)}
            status._ai_done(result, started=False)
            return result
        status._ai_start()
        self._ai_commit()  # a killed training is counted
        started = time.monotonic()
        result, error = self._ai_isolated(
            "training", task, company, lambda: self._ai_retry_on_conflict(lambda: self._ai_train_unit(task, company)))
        if error:
            result = {"task": task, "company": company.id, "status": "error", "model_id": False,
                      "message": _("Training failed for %(company)s: %(error)s", company=company_name, error=error)}
        _logger.info("crm_ai: trained %s for %s in %.1fs: %s", task, company_name,
                     time.monotonic() - started, result["message"])
        self._ai_commit()  # the new model first: the status refers to it
        status._ai_done(result)
        return result

    # -- scoring ------------------------------------------------------------------------------------
    @api.model
    def _ai_pending_sql(self, engine, model):
        """Records of ``engine``'s scope whose score is missing or stale."""
        state, date, model_col = (engine.column_sql("t", name) for name in
                                  (engine.state_field, engine.date_field, engine.model_field))
        conditions = [
            SQL("%s IS DISTINCT FROM %s", model_col, model.id),
            # a record set aside (its scoring failed) waits for a change, a new model or the daily rescore
            SQL("COALESCE(%s, '') NOT IN ('scored', 'error')", state),
            SQL("%s IS NULL", date),
            # only the engine writes scores, and never in the future: such a date was forged
            SQL("%s > %s", date, DB_CLOCK),
            SQL("t.write_date > %s", date),
            SQL("%s < %s - %s::interval", date, DB_CLOCK, f"{int(engine.rescore_after.total_seconds())} seconds"),
        ]
        changed = engine.changed_sql("t")
        if changed is not None:
            conditions.append(changed)
        return SQL("%s AND (%s)", engine.scope_sql("t"), SQL(" OR ").join(conditions))

    @api.model
    def _ai_pending_query(self, query):
        """Run a pending-records query without PostgreSQL's JIT: its estimated cost (a scan
        with correlated EXISTS) crosses the JIT thresholds, and compiling took 0.7 s of a
        query that runs in 40 ms (bench/bench_customer_value_odoo.py), on every run."""
        self.env.cr.execute("SET LOCAL jit = off")
        self.env.cr.execute(query)
        rows = self.env.cr.fetchall()
        # (on an error the transaction is rolled back, and SET LOCAL with it)
        self.env.cr.execute("SET LOCAL jit TO DEFAULT")
        return rows

    @api.model
    def _ai_pending_ids(self, engine, model):
        self.env.flush_all()  # the engine's changed_sql may read other tables (messages, orders)
        return [row[0] for row in self._ai_pending_query(SQL(
            "SELECT t.id FROM %s t WHERE %s ORDER BY t.id", SQL.identifier(engine.table),
            self._ai_pending_sql(engine, model)))]

    @api.model
    def _ai_pending_among(self, engine, model, ids):
        """Those of the records ``ids`` that are pending for ``model``, in id order."""
        self.env.flush_all()
        return [row[0] for row in self._ai_pending_query(SQL(
            "SELECT t.id FROM %s t WHERE t.id = ANY(%s) AND %s ORDER BY t.id", SQL.identifier(engine.table),
            [int(i) for i in ids], self._ai_pending_sql(engine, model)))]

    @api.model
    def _ai_pending_count(self, task, company):
        engine = self._ai_engine(task, company)
        model = self.env["crm.ai.model"].sudo()._ai_active(task, company)
        if not model:
            return 0
        return self._ai_pending_query(SQL("SELECT count(*) FROM %s t WHERE %s", SQL.identifier(engine.table),
                                          self._ai_pending_sql(engine, model)))[0][0]

    @api.model
    def _ai_clear_switched_off(self):
        """The values of the engines installed here but switched off (or of all of them, CRM AI
        switched off) are cleared, state "disabled": nobody reads, sorts or filters on scores
        that are no longer kept up to date.  Switched on again, every record is pending.
        After the first run, a query per engine and company that changes nothing."""
        enabled, installed = set(self._ai_tasks()), self.env.registry._init_modules
        for task, engine_class in ENGINES.items():
            if task in enabled or engine_class.module() not in installed:
                continue
            for company in self._ai_companies():
                if engine_class.drives(company):
                    self._ai_isolated("clearing", task, company, lambda: self._ai_mark_insufficient(
                        self._ai_engine(task, company), "disabled"))  # noqa: B023
                    self._ai_commit()

    @api.model
    def _cron_score(self, time_budget=None):
        """Score what changed, for every engine and company (hourly by default).

        Works in committed batches and reports progress to ``ir.cron``, which calls it
        again while work remains; a killed run resumes from what is still pending.
        The time budget is checked before every (engine, company) pair and every batch
        (a call always does one batch, so it always progresses).
        Returns ``(done, remaining)``.
        """
        self._ai_clear_switched_off()
        tasks = self._ai_tasks()
        if not tasks:
            return 0, 0
        deadline = time.monotonic() + (time_budget or self._ai_time_budget())
        cron = self.env["ir.cron"]
        totals = {"done": 0, "remaining": 0, "batches": 0, "reached": 0}

        def out_of_time():
            # every call scores one batch at least, so it always progresses
            return totals["batches"] > 0 and time.monotonic() > deadline

        def progress(_pair_reached, pair_remaining):
            # Committed with each batch: a run killed later still counts as progress
            # ("partially done"), not as a failure that would end up deactivating the cron.
            cron._notify_progress(done=totals["reached"], remaining=totals["remaining"] + pair_remaining)

        for task in tasks:
            for company in self._ai_companies():
                if task in ENGINES and not ENGINES[task].drives(company):
                    continue
                if out_of_time():
                    totals["remaining"] += self._ai_pending_count(task, company)
                    continue
                counts, _error = self._ai_isolated(
                    "scoring", task, company,
                    lambda: self._ai_score_pair(task, company, out_of_time, progress, totals))  # noqa: B023
                done, remaining = counts or (0, 0)
                totals["done"] += done
                totals["remaining"] += remaining
                self._ai_commit()  # a later company's rollback must not undo this one
        cron._notify_progress(done=totals["reached"], remaining=totals["remaining"])
        return totals["done"], totals["remaining"]

    @api.model
    def _ai_score_pair(self, task, company, out_of_time=None, progress=None, batches=None):
        """Score ``task``'s pending records of ``company``; returns ``(done, remaining)``:
        records written, and pending records the time budget left for the next call."""
        engine = self._ai_engine(task, company)
        model = self._ai_scoring_model(engine)
        if not model:
            # Records created since a training found too little data say so at once,
            # rather than "not scored yet" until the next (weekly) training.
            last = self.env["crm.ai.training"].sudo()._ai_status(task, company)
            if engine.data_shortfall() or (last and last.result == "insufficient_data"):
                self._ai_guarded(lambda: self._ai_mark_insufficient(engine))
            elif last and last.result == "rejected":
                # trained, but the model did not hold its own against the baseline
                self._ai_guarded(lambda: self._ai_mark_insufficient(engine, "no_model"))
            else:  # switched on again before its first model: waiting for it, no longer "switched off"
                state = engine.column_sql("t", engine.state_field)
                self._ai_guarded(lambda: self._ai_sql_update(
                    engine, [(engine.state_field, SQL("'pending'"))], SQL("%s = 'disabled'", state)))
            return 0, 0
        pending = self._ai_pending_ids(engine, model)
        if not pending:
            return 0, 0
        try:
            estimator = self._ai_load(engine, model)
        except ModelRefused as error:
            self._ai_refuse(engine, model, error)
            return 0, 0
        return self._ai_score_pending(engine, model, estimator, pending, out_of_time, progress, batches)

    @api.model
    def _ai_score_pending(self, engine, model, estimator, pending, out_of_time=None, progress=None, batches=None):
        """Score the records ``pending`` (ids, pending for ``model``) in committed batches,
        in this process; returns ``(done, remaining)`` as ``_ai_score_pair``."""
        done = reached = 0
        for batch in split_every(engine.batch_size, pending, list):
            if out_of_time and out_of_time():
                break
            reached += len(batch)
            if batches is not None:
                batches["batches"] += 1
                batches["reached"] += len(batch)
            done += self._ai_guarded(lambda: self._ai_score_isolated(engine, model, estimator, batch), 0)  # noqa: B023
            if progress:
                # records reached, not written: a batch whose rows were all held by users
                # is still progress (they wait for the next run), or ir.cron would stop
                progress(reached, len(pending) - reached)
            self._ai_commit()
        # "Remaining" is what the time budget cut off (ir.cron calls again at once for it).
        # Records skipped because a user held them are not: they wait for the next
        # scheduled run rather than making the cron spin while a lock lasts.
        return done, len(pending) - reached

    @api.model
    def _ai_scoring_model(self, engine):
        """The active model of ``engine`` for its company (for an engine that does not
        train, its current version's row, created and committed when new)."""
        Registry = self.env["crm.ai.model"].sudo()
        if engine.trains:
            return Registry._ai_active(engine.task, engine.company)
        model = Registry._ai_active(engine.task, engine.company)
        if not model or model.hyperparameters != engine.untrained_version:
            model = Registry._ai_ensure_untrained(engine)
            self._ai_commit()  # a batch's conflict rollback must not undo the row it refers to
        return model

    @api.model
    def _ai_guarded(self, work, default=None):
        """``work()`` retried once on a concurrent edit; a second conflict leaves it for
        the next run (rolled back, logged), except in tests where it is raised."""
        try:
            return self._ai_retry_on_conflict(work)
        except SerializationFailure:
            if not auto_commit(self.env):
                raise
            _logger.info("crm_ai: records edited while being scored, left for the next run")
            self.env.cr.rollback()
            return default

    @api.model
    def _ai_score_unit(self, task, company, ids):
        """Score those of the records ``ids`` of ``company`` still pending for ``task``'s
        active model (one batch: the unit a job queue runs; run twice, it scores nothing
        the second time).  Returns the rows written."""
        engine = self._ai_engine(task, company)
        model = self._ai_scoring_model(engine)
        if not model:
            return 0
        ids = self._ai_pending_among(engine, model, ids)
        if not ids:
            return 0
        try:
            estimator = self._ai_load(engine, model)
        except ModelRefused as error:
            self._ai_refuse(engine, model, error)
            return 0
        return self._ai_score_isolated(engine, model, estimator, ids)

    @api.model
    def _ai_score_isolated(self, engine, model, estimator, ids, set_aside=None):
        """``_ai_score_batch``, but a batch that fails because of some of its records (a value
        the engine cannot read) is split in halves, each in a savepoint, until the failing
        records are found: those are logged and set aside (state "error", tried again daily
        or when they change), the others scored.  Without this the same first batch failed
        on every run, and nothing after it was ever scored.  Not split: a concurrent edit, a
        deadlock or a lock timeout (the caller retries, as a job queue does), nor a batch in
        which ``MAX_SET_ASIDE`` records failed before any succeeded (the engine fails as a
        whole: raised, logged, retried by the next run, never written off record by record;
        bad data among good records is split however many there are)."""
        tally = {"failed": 0, "scored": 0} if set_aside is None else set_aside
        try:
            with self.env.cr.savepoint():
                written = self._ai_score_batch(engine, model, estimator, ids)
            tally["scored"] += len(ids)
            return written
        except (psycopg2.errors.TransactionRollbackError, psycopg2.errors.LockNotAvailable):
            raise  # SerializationFailure, DeadlockDetected, a lock timeout: transient, retried
        except Exception:
            if len(ids) > 1:
                half = len(ids) // 2
                return (self._ai_score_isolated(engine, model, estimator, ids[:half], tally)
                        + self._ai_score_isolated(engine, model, estimator, ids[half:], tally))
            tally["failed"] += 1
            if tally["failed"] >= MAX_SET_ASIDE and not tally["scored"]:
                raise
            _logger.exception("crm_ai: %s could not score %s %s in %s; set aside until it changes or the daily "
                              "rescore", engine.task, engine.target_model, ids[0],
                              engine.company.name or "records without a company")
            self.env.cr.execute(SQL("SELECT %s", DB_CLOCK))
            now = self.env.cr.fetchone()[0]
            self._ai_sql_update(engine, [(engine.state_field, SQL("'error'")),
                                         (engine.date_field, SQL("%s::timestamp", now)),
                                         (engine.model_field, SQL("%s", model.id))],
                                SQL("t.id = ANY(%s)", list(ids)))
            return 0

    @api.model
    def _ai_score_batch(self, engine, model, estimator, ids):
        # The database's clock, as for write_date (no skew with the application server),
        # but the wall clock, not the transaction's start: an edit saved while this
        # transaction ran has a later write_date only if it started after it began, and
        # one that started before conflicts with the UPDATE (repeatable read: redone).
        self.env.cr.execute(SQL("SELECT %s", DB_CLOCK))
        now = self.env.cr.fetchone()[0]
        values = engine.score(ids, estimator, model, now)
        return self._ai_write_scores(engine, model, ids, values, now)

    @api.model
    def _ai_write_scores(self, engine, model, ids, values, now):
        """Write a batch with one UPDATE that skips rows other transactions hold: no
        ORM write, so no chatter, no ``write_date`` change, no automated action, and
        no waiting on (or blocking) a user saving a record.  Returns rows written."""
        Target = self.env[engine.target_model]
        Target.flush_model()
        columns, arrays, sets = [SQL("id")], [SQL("%s::int[]", [int(i) for i in ids])], []
        for name, column_values in values.items():
            field = Target._fields[name]
            if field.type == "json":
                column_values = [None if v is None else json.dumps(v) for v in column_values]
            arrays.append(SQL("%s::%s[]", list(column_values), SQL(field._column_type[1])))
            columns.append(SQL.identifier(name))
            sets.append(engine.assign_sql("t", name, SQL.identifier("v", name)))
        sets += [engine.assign_sql("t", engine.model_field, SQL("%s", model.id)),
                 engine.assign_sql("t", engine.date_field, SQL("%s::timestamp", now)),
                 engine.assign_sql("t", engine.state_field, SQL("%s", "scored"))]
        table = SQL.identifier(engine.table)
        self.env.cr.execute(SQL(
            """UPDATE %(table)s AS t SET %(sets)s
                 FROM unnest(%(arrays)s) AS v(%(columns)s)
                WHERE t.id = v.id
                  AND t.id IN (SELECT s.id FROM %(table)s s WHERE s.id = ANY(%(ids)s) AND %(scope)s
                                  FOR UPDATE SKIP LOCKED)
            RETURNING t.id""",
            table=table, sets=SQL(", ").join(sets), arrays=SQL(", ").join(arrays),
            columns=SQL(", ").join(columns), ids=[int(i) for i in ids], scope=engine.scope_sql("s")),
            log_exceptions=False)  # a conflict is handled by the caller, not logged with 5,000 rows
        written = [row[0] for row in self.env.cr.fetchall()]
        Target.invalidate_model([*values, engine.model_field, engine.date_field, engine.state_field])
        engine.after_write(written)
        return len(written)
