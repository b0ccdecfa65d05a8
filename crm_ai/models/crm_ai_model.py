"""Registry of models: one row per training run (or untrained engine version), per
engine ("task") and company.

A trained estimator lives in ``artifact`` (base64 of joblib bytes, in the database,
not the filestore) signed with a key derived from the database secret, together
with its task, company and version.  It is only ever unpickled after all of those
check out: a blob uploaded by a user, copied from another database, another company's
row or another version, or altered in SQL is refused, never loaded.

Rows are written by the driver only (as superuser): no user, not even a CRM AI
manager, can create a row or edit one over RPC; managers read them, delete the
inactive ones, and change the active one through :meth:`action_activate`.
"""

import base64
import binascii
import json
import logging
import time

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools.misc import hmac as odoo_hmac

from ..ml import persistence
from .crm_ai_engine import ENGINES, ModelRefused, engine_selection

_logger = logging.getLogger(__name__)

SIGNING_SCOPE = "crm_ai.model-artifact"
#: A reliability bin with fewer leads is not drawn (one lost lead at 80 % is noise, not a curve).
RELIABILITY_MIN_LEADS = 10
#: Inputs drawn on the model form's importance chart (the strongest).
IMPORTANCE_CHART_BARS = 15
MANAGER = "crm_ai.group_crm_ai_manager"
#: Metric names for people (keys of the per-task ``metrics`` JSON).
METRIC_LABELS = {
    "auc": "AUC", "log_loss": "Log-loss", "brier": "Brier score", "calibration_error": "Calibration error",
    "silhouette": "Silhouette", "segments": "Segments",
    "accuracy": "Accuracy (mean of the test files)", "accuracy_yelp": "Accuracy, yelp", "accuracy_imdb": "Accuracy, imdb",
    "macro_f1_yelp": "Macro-F1, yelp", "macro_f1_imdb": "Macro-F1, imdb",
    "precision_at_10": "Precision@10, new products", "recall_at_10": "Recall@10, new products",
    "coverage": "Catalogue coverage, new products", "reorder_precision_at_10": "Precision@10, all products",
    "reorder_recall_at_10": "Recall@10, all products", "reorder_coverage": "Catalogue coverage, all products",
}


class CrmAiModel(models.Model):
    _name = "crm.ai.model"
    _description = "CRM AI: model"
    _order = "task, company_id, version desc"
    _rec_names_search = ["task", "version"]

    name = fields.Char(compute="_compute_name")
    task = fields.Selection(selection=lambda self: engine_selection(), required=True, readonly=True, index=True)
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    version = fields.Integer(required=True, readonly=True, aggregator=None)
    state = fields.Selection([
        ("active", "Active"),
        ("rejected", "Rejected"),
        ("archived", "Archived"),
        ("refused", "Refused"),
    ], required=True, default="rejected", readonly=True, index=True,
        help="Active: scores the records. Rejected: failed the quality gate. "
             "Archived: replaced by a newer or rolled-back model. Refused: its stored model cannot be "
             "used here (signature, library versions or inputs); a retraining replaces it.")
    refusal_reason = fields.Text("Why it was refused", readonly=True, groups=MANAGER)
    date_trained = fields.Datetime("Trained on", readonly=True)
    date_from = fields.Date("Training data from", readonly=True, groups=MANAGER,
                            help="Start date of the records learnt from (empty: all).")
    n_train = fields.Integer("Training rows", readonly=True, aggregator=None, groups=MANAGER)
    n_holdout = fields.Integer("Holdout rows", readonly=True, aggregator=None, groups=MANAGER,
                               help="The most recent rows, kept aside to measure the model.")
    holdout_date_from = fields.Datetime("Holdout from", readonly=True, groups=MANAGER)
    holdout_date_to = fields.Datetime("Holdout to", readonly=True, groups=MANAGER)
    train_date_to = fields.Datetime("Learnt from data up to", readonly=True, groups=MANAGER,
                                    help="The stored model learnt from every row up to this date.")
    primary_metric = fields.Char("Metric", readonly=True, groups=MANAGER,
                                 help="The holdout metric the quality gate compares.")
    higher_is_better = fields.Boolean(readonly=True, default=True, groups=MANAGER)
    score = fields.Float("Holdout score", digits=(3, 3), readonly=True, aggregator="avg", groups=MANAGER,
                         help="The primary metric on the holdout (empty: undefined on it, e.g. an AUC on "
                              "a holdout holding one outcome).")
    score_defined = fields.Boolean(readonly=True, groups=MANAGER)
    baseline = fields.Char("Baseline", readonly=True, groups=MANAGER)
    baseline_score = fields.Float("Baseline's score", digits=(3, 3), readonly=True, aggregator="avg",
                                  groups=MANAGER,
                                  help="The baseline, trained on the same rows, measured on the same holdout.")
    baseline_score_defined = fields.Boolean(readonly=True, groups=MANAGER)
    score_gain = fields.Float("Gain over the baseline", digits=(3, 3), compute="_compute_score_gain",
                              groups=MANAGER)
    previous_score = fields.Float("Active model's score on this holdout", digits=(3, 3), readonly=True,
                                  groups=MANAGER)
    metrics = fields.Json(readonly=True, groups=MANAGER,
                          help='{"model": {metric: value}, "baseline": {...}, "counts": {...}}')
    metrics_html = fields.Html("Quality on the holdout", compute="_compute_metrics_html", sanitize=False,
                               groups=MANAGER)
    selection_html = fields.Html("How this model was chosen", compute="_compute_selection_html", sanitize=False,
                                 groups=MANAGER)
    importance_chart = fields.Text("Input importance (chart)", compute="_compute_charts", groups=MANAGER)
    reliability_chart = fields.Text("Reliability diagram", compute="_compute_charts", groups=MANAGER)
    versions_chart = fields.Text("Versions", compute="_compute_charts", groups=MANAGER)
    gate_reason = fields.Text("Quality gate", readonly=True, groups=MANAGER)
    feature_names = fields.Text("Inputs", readonly=True, groups=MANAGER)
    importance = fields.Text("Input importance", readonly=True, groups=MANAGER,
                             help="How much each input moves the scores, on the training rows.")
    hyperparameters = fields.Char(readonly=True, groups=MANAGER)
    training_seconds = fields.Float("Training time (s)", digits=(6, 1), readonly=True, groups=MANAGER)
    library_versions = fields.Char(readonly=True, groups=MANAGER)
    # base64 text: read() works over XML-RPC / JSON-RPC (raw bytes would not serialise).
    artifact = fields.Binary(attachment=False, readonly=True, copy=False, groups=MANAGER)
    record_count = fields.Integer("Records scored", compute="_compute_record_count", groups=MANAGER)

    def init(self):
        # NULL company (records without one) included: SQL's unique() lets NULLs repeat.
        self.env.cr.execute("""
            CREATE UNIQUE INDEX IF NOT EXISTS crm_ai_model_version_uniq
                ON crm_ai_model (task, COALESCE(company_id, 0), version);
            CREATE UNIQUE INDEX IF NOT EXISTS crm_ai_model_one_active
                ON crm_ai_model (task, COALESCE(company_id, 0)) WHERE state = 'active';
        """)

    @api.depends("task", "version")
    @api.depends_context("lang")
    def _compute_name(self):
        labels = dict(engine_selection())
        for model in self:
            model.name = f"{labels.get(model.task, model.task)} v{model.version}"

    @api.depends("score", "baseline_score")
    def _compute_score_gain(self):
        for model in self:
            both = model.score_defined and model.baseline_score_defined
            gain = model.score - model.baseline_score
            model.score_gain = (gain if model.higher_is_better else -gain) if both else 0.0

    @api.depends("metrics", "baseline")
    @api.depends_context("lang")
    def _compute_metrics_html(self):
        for model in self:
            metrics = model.metrics or {}
            ours, theirs = metrics.get("model") or {}, metrics.get("baseline") or {}
            # further simple answers measured on the same holdout (e.g. popularity), one column each
            others = {label: values for label, values in (metrics.get("others") or {}).items()
                      if isinstance(values, dict)}
            # figures only (a reliability diagram's bins are drawn, not tabled)
            names = [name for name in dict.fromkeys([*ours, *theirs])
                     if not isinstance(ours.get(name, theirs.get(name)), (list, dict))]
            if not names:
                model.metrics_html = False
                continue

            def cell(value):
                return _("undefined") if value is None else "%.4f" % value

            columns = [ours, theirs, *others.values()]
            cell_html = Markup("<td class='text-end'>%s</td>")
            rows = Markup("").join(
                Markup("<tr><td>%s</td>%s</tr>") % (
                    METRIC_LABELS.get(name, name),
                    Markup("").join(cell_html % cell(column.get(name)) for column in columns))
                for name in names)
            head_html = Markup("<th class='text-end'>%s</th>")
            heads = Markup("").join(head_html % label for label in
                                    [_("This model"), model.baseline or _("Baseline"), *others])
            model.metrics_html = Markup(
                "<table class='table table-sm o_crm_ai_metrics'><thead><tr><th></th>%s</tr></thead>"
                "<tbody>%s</tbody></table>") % (heads, rows)

    @api.depends("importance", "metrics", "score", "baseline_score")
    @api.depends_context("lang")
    def _compute_charts(self):
        """JSON for the ``crm_ai_chart`` widget: the inputs' importance (bars), predicted vs
        observed win rate per bin for this model and its baseline (reliability diagram),
        and the primary metric of every version of this task and company."""
        versions = {}
        for task, company in {(m.task, m.company_id) for m in self}:
            versions[task, company] = self.sudo().search(
                [("task", "=", task), ("company_id", "=", company.id), ("score_defined", "=", True)],
                order="version")
        for model in self:
            pairs = []
            for line in (model.importance or "").splitlines():
                label, _sep, value = line.rpartition(": ")
                try:
                    pairs.append((label, float(value)))
                except ValueError:
                    continue
            pairs = pairs[:IMPORTANCE_CHART_BARS]
            model.importance_chart = json.dumps({
                "type": "bar", "horizontal": True, "labels": [label for label, _v in pairs],
                "datasets": [{"label": _("Mean effect on the log-odds"), "data": [round(v, 4) for _l, v in pairs]}],
                "x": {"title": _("mean |effect| on the log-odds of a lead")},
            }) if pairs else False
            metrics = model.metrics or {}
            curves = [(label, (metrics.get(key) or {}).get("reliability")) for label, key in (
                (_("This model"), "model"), (model.baseline or _("Baseline"), "baseline"))]
            curves = [(label, [{"x": round(100 * p, 1), "y": round(100 * o, 1)}
                               for p, o, n in bins if n >= RELIABILITY_MIN_LEADS])
                      for label, bins in curves if isinstance(bins, list)]
            curves = [(label, points) for label, points in curves if points]  # a small holdout: no tab, not a bare line
            model.reliability_chart = json.dumps({
                "type": "line",
                "datasets": [{"label": label, "data": points} for label, points in curves]
                + [{"label": _("Perfect calibration"), "data": [{"x": 0, "y": 0}, {"x": 100, "y": 100}],
                    "dashed": True, "color": "#adb5bd"}],
                "x": {"min": 0, "max": 100, "title": _("predicted chance to win (%)")},
                "y": {"min": 0, "max": 100, "title": _("won on the holdout (%)")},
            }) if curves else False
            history = versions[model.task, model.company_id]
            model.versions_chart = json.dumps({
                "type": "line", "labels": ["v%d" % m.version for m in history],
                "datasets": [{"label": _("Holdout %s", model.primary_metric or ""),
                              "data": [round(m.score, 4) for m in history]},
                             {"label": model.baseline or _("Baseline"),
                              "data": [round(m.baseline_score, 4) if m.baseline_score_defined else None
                                       for m in history], "dashed": True}],
                "y": {"title": model.primary_metric or ""},
            }) if len(history) > 1 else False

    def _compute_selection_html(self):
        """The candidates' validation scores (``metrics["selection"]``) as a table."""
        family_labels = {"logistic": _("Logistic regression"), "naive_bayes": _("Naive Bayes"), "blend": _("Blend")}
        for model in self:
            selection = (model.metrics or {}).get("selection") or {}
            candidates = [c for c in selection.get("candidates") or [] if isinstance(c, dict)]
            if not candidates:
                model.selection_html = False
                continue
            row = Markup("<tr class='%s'><td>%s%s</td><td>%s</td><td class='text-end'>%s</td>"
                         "<td class='text-end'>%s</td></tr>")
            badge, undefined = Markup(" <span class='badge text-bg-success'>%s</span>") % _("chosen"), _("undefined")
            rows = Markup("").join(row % (
                "fw-bold" if c.get("chosen") else "", family_labels.get(c.get("family"), c.get("family")),
                badge if c.get("chosen") else "",
                c.get("description", ""), "%.4f" % c["log_loss"] if c.get("log_loss") is not None else "",
                "%.3f" % c["auc"] if c.get("auc") is not None else undefined) for c in candidates)
            test = selection.get("calibration_test") or {}
            if test:
                calibration = _("Calibration (Platt, on the older windows) took the newest window's log-loss "
                                "from %(raw).4f to %(platt).4f: %(verdict)s.", raw=test["raw_log_loss"],
                                platt=test["platt_log_loss"],
                                verdict=_("kept") if selection.get("calibration") else _("not kept"))
            else:
                calibration = _("Calibration: not tested (too few validation windows).")
            model.selection_html = Markup(
                "<p>%s</p><table class='table table-sm o_crm_ai_selection'><thead><tr><th>%s</th><th>%s</th>"
                "<th class='text-end'>%s</th><th class='text-end'>%s</th></tr></thead><tbody>%s</tbody></table>"
                "<p class='text-muted'>%s</p><p class='text-muted'>%s</p>") % (
                _("Chosen for the lowest mean log-loss over %(windows)s rolling validation windows (each "
                  "predicted by candidates fitted on the older leads), among %(n)s candidates; %(rows)s validation "
                  "leads, never the holdout. The best of each family:", windows=selection.get("windows"),
                  n=selection.get("candidates_tried"), rows=selection.get("validation_rows")),
                _("Family"), _("Best candidate"), _("Validation log-loss"), _("Validation AUC"), rows, calibration,
                _("The holdout figures measure the same choice made on the older leads only (it chose: %s).",
                  selection.get("holdout_model") or _("unknown")))

    def _compute_record_count(self):
        for task, company in {(m.task, m.company_id) for m in self}:
            engine = ENGINES.get(task)
            models_ = self.filtered(lambda m: (m.task, m.company_id) == (task, company))  # noqa: B023
            counts = {}
            if engine:
                # in the model's company: a company-dependent model field holds one value per company
                Target = self.env[engine.target_model].sudo().with_company(company or self.env.company)
                counts = {model.id: count for model, count in Target.with_context(active_test=False)._read_group(
                    [(engine.model_field, "in", models_.ids)], [engine.model_field], ["__count"])}
            for model in models_:
                model.record_count = counts.get(model.id, 0)

    # -- protection ----------------------------------------------------------------------
    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(_("AI models are created by training (Settings ▸ Train now, or the scheduled action)."))
        return super().create(vals_list)

    def write(self, vals):
        # Only the driver writes (as superuser); a manager activates through action_activate.
        if not self.env.su:
            raise AccessError(_("AI models cannot be edited: they are written by training."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_active(self):
        if any(model.state == "active" for model in self):
            raise UserError(_("The active model scores the records: roll back to another version before deleting it."))

    # -- signed artifacts ------------------------------------------------------------------
    def _signing_key(self):
        """Key derived from the database secret (``database.secret``), never stored.

        Not bound to the database name: a dump restored under another name (a staging
        copy) keeps its models, while the Database Manager's "Duplicate" draws a new
        secret, so the copy refuses them and retrains.
        """
        return odoo_hmac(self.env(su=True), SIGNING_SCOPE, "model").encode()

    def _ai_signed_meta(self):
        """What the signature binds a blob to: this task, company and version."""
        self.ensure_one()
        return {"task": self.task, "company": self.company_id.id or 0, "version": self.version}

    def _ai_store_estimator(self, estimator, libraries):
        self.ensure_one()
        blob = persistence.dumps_signed(estimator, self._signing_key(), meta=self._ai_signed_meta(),
                                        libraries=libraries)
        self.sudo().write({"artifact": base64.b64encode(blob)})

    def _ai_load_estimator(self):
        """The estimator of this row, after its signature was verified for this database,
        task, company and version; :class:`ModelRefused` otherwise (nothing is unpickled)."""
        self.ensure_one()
        stored = self.sudo().with_context(bin_size=False).artifact
        if not stored:
            raise ModelRefused(_("%s has no stored model", self.display_name))
        try:
            blob = base64.b64decode(stored, validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        try:
            return persistence.loads_signed(blob, self._signing_key(), expect_meta=self._ai_signed_meta())
        except persistence.ArtifactError as error:
            _logger.warning("crm_ai: refusing to load model %s (id %s): %s", self.display_name, self.id, error)
            raise ModelRefused(str(error)) from error

    @api.model
    def _ai_format_score(self, value):
        return _("undefined") if value is None else "%.3f" % value

    # -- registry --------------------------------------------------------------------------------
    @api.model
    def _ai_active(self, task, company):
        return self.sudo().search([("task", "=", task), ("company_id", "=", company.id or False),
                                   ("state", "=", "active")], limit=1)

    @api.model
    def _ai_next_version(self, task, company):
        last = self.sudo().search([("task", "=", task), ("company_id", "=", company.id or False)],
                                  order="version desc", limit=1)
        return last.version + 1

    @api.model
    def _ai_activate(self, model):
        """``model`` becomes the one active row of its task and company."""
        self.sudo().search([("task", "=", model.task), ("company_id", "=", model.company_id.id),
                            ("state", "=", "active"), ("id", "!=", model.id)]).write({"state": "archived"})
        # archived first: the database allows one active row per task and company
        self.flush_model(["state"])
        model.sudo().write({"state": "active"})

    @api.model
    def _ai_register(self, engine, result, accepted, reason):
        """Store a trained model (``TrainResult``) and activate it when ``accepted``."""
        started = time.monotonic()
        primary = result.metrics.get(engine.primary_metric)
        baseline = result.baseline_metrics.get(engine.primary_metric)
        model = self.sudo().create({
            "task": engine.task, "company_id": engine.company.id or False,
            "version": self._ai_next_version(engine.task, engine.company),
            "state": "rejected", "date_trained": fields.Datetime.now(), "date_from": result.date_from,
            "n_train": result.n_train, "n_holdout": result.n_holdout,
            "holdout_date_from": result.holdout_date_from, "holdout_date_to": result.holdout_date_to,
            "train_date_to": result.train_date_to,
            "primary_metric": engine.primary_metric_label, "higher_is_better": engine.higher_is_better,
            "score": primary or 0.0, "score_defined": primary is not None,
            "baseline": engine.baseline_label, "baseline_score": baseline or 0.0,
            "baseline_score_defined": baseline is not None,
            "previous_score": result.champion_score or 0.0,
            "metrics": {"model": result.metrics, "baseline": result.baseline_metrics, "counts": result.counts,
                        "others": result.other_baselines, "selection": result.selection},
            "gate_reason": reason,
            "feature_names": ", ".join(result.feature_names),
            "importance": "\n".join(f"{label}: {value:.3f}" for label, value in result.importance),
            "hyperparameters": result.hyperparameters,
            "library_versions": ", ".join(f"{k} {v}" for k, v in sorted(
                persistence.library_versions(engine.libraries).items())),
        })
        model._ai_store_estimator(result.estimator, engine.libraries)
        model.write({"training_seconds": result.counts.get("seconds", 0.0) + time.monotonic() - started})
        if accepted:
            self._ai_activate(model)
        return model

    @api.model
    def _ai_ensure_untrained(self, engine):
        """The active row of an engine that does not train, one per ``untrained_version``."""
        active = self._ai_active(engine.task, engine.company)
        if active and active.hyperparameters == engine.untrained_version:
            return active
        model = self.sudo().create({
            "task": engine.task, "company_id": engine.company.id or False,
            "version": self._ai_next_version(engine.task, engine.company),
            "state": "rejected", "date_trained": fields.Datetime.now(),
            "hyperparameters": engine.untrained_version,
            "gate_reason": _("Needs no training (version %s).", engine.untrained_version),
            **self._ai_untrained_figures(engine),
            "library_versions": ", ".join(f"{k} {v}" for k, v in sorted(
                persistence.library_versions(engine.libraries).items())),
        })
        self._ai_activate(model)
        return model

    @api.model
    def _ai_untrained_figures(self, engine):
        """The benchmark figures an untrained engine declares (``untrained_metrics``:
        {"model": {...}, "baseline": {...}}, measured once, see BENCHMARKS.md)."""
        figures = engine.untrained_metrics or {}
        if not figures:
            return {}
        primary = figures.get("model", {}).get(engine.primary_metric)
        baseline = figures.get("baseline", {}).get(engine.primary_metric)
        return {"metrics": figures, "primary_metric": engine.primary_metric_label,
                "higher_is_better": engine.higher_is_better, "baseline": engine.baseline_label,
                "score": primary or 0.0, "score_defined": primary is not None,
                "baseline_score": baseline or 0.0, "baseline_score_defined": baseline is not None}

    def action_activate(self):
        """Roll back (or forward) to this version: it scores the records from now on."""
        self.ensure_one()
        if not self.env.user.has_group(MANAGER):
            raise AccessError(_("Only CRM AI managers can change the active model."))
        self.check_access("read")  # another company's model stays out of reach
        engine = ENGINES.get(self.task)
        if not engine:
            raise UserError(_("No engine handles %s.", self.task))
        driver = self.env["crm.ai.driver"]
        try:
            driver._ai_load(driver._ai_engine(self.task, self.company_id), self.sudo())
        except ModelRefused as error:  # refuse to activate a blob that does not verify
            raise UserError(_("%(model)s cannot be activated: %(reason)s", model=self.display_name,
                              reason=error)) from error
        self._ai_activate(self)
        self.env.ref("crm_ai.ir_cron_score").sudo()._trigger()
        return {
            "type": "ir.actions.client", "tag": "display_notification",
            "params": {"type": "success", "message": _("%s is now active; records will be rescored.", self.display_name),
                       "next": {"type": "ir.actions.act_window_close"}},
        }

    def action_view_records(self):
        self.ensure_one()
        engine = ENGINES[self.task]
        return {
            "type": "ir.actions.act_window", "name": _("Scored by %s", self.display_name),
            "res_model": engine.target_model, "view_mode": "list,form",
            "domain": [(engine.model_field, "=", self.id)],
            # the model's company first: a company-dependent model field is read in the current company
            "context": {"active_test": False, "allowed_company_ids": list(dict.fromkeys(
                [*(self.company_id.ids), *self.env.companies.ids]))},
        }

    # -- scheduled actions (the cron records call these; the driver does the work) ----------------------
    @api.model
    def _cron_ai_train(self, time_budget=None):
        return self.env["crm.ai.driver"]._cron_train(time_budget)

    @api.model
    def _cron_ai_score(self, time_budget=None):
        return self.env["crm.ai.driver"]._cron_score(time_budget)
