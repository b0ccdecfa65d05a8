"""CRM AI settings, for CRM AI managers (Sales administrators) who are not system
administrators: Odoo's Settings page (``res.config.settings``) is for the latter only.

The values are ``ir.config_parameter`` rows ``crm_ai.<task>.<name>`` read by the engines
through their typed parameters; a value out of range is clamped here before it can
reach the database, so saving never fails on it.
"""

from datetime import datetime

from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError

from .crm_ai_engine import ENGINES
from .engine_customer_segment import CustomerSegmentEngine
from .engine_lead_propensity import DEFAULT_LEAD_FIELDS, LeadPropensityEngine
from .engine_recommend import RecommendEngine, lightfm_status
from .engine_repeat_purchase import RepeatPurchaseEngine
from .engine_sentiment import LeadSentimentEngine, PartnerSentimentEngine

MANAGER = "crm_ai.group_crm_ai_manager"
INTERVAL_TYPES = [("minutes", "Minutes"), ("hours", "Hours"), ("days", "Days"), ("weeks", "Weeks"),
                  ("months", "Months")]
HALF_LIVES = [("auto", "Automatic"), ("none", "All leads alike"), ("365", "1 year"), ("180", "6 months"),
              ("90", "3 months"), ("30", "1 month")]
#: Interval numbers kept in a sane range (an int4 column, and a cron every 0 minutes makes no sense).
MAX_INTERVAL_NUMBER = 1000
#: The shortest schedules a CRM AI manager may set: retraining more than daily only burns CPU,
#: and the hourly rescore only catches what changed.  Shorter ones need a system administrator
#: (Settings ▸ Technical ▸ Scheduled Actions).
MIN_TRAIN_INTERVAL = relativedelta(days=1)
MIN_SCORE_INTERVAL = relativedelta(minutes=15)


#: Settings fields stored as one engine parameter each (clamped to the parameter's range on save).
ENGINE_PARAM_FIELDS = {
    "lead_history_step": (LeadPropensityEngine, "history_step"),
    "lead_history_days": (LeadPropensityEngine, "history_days"),
    "customer_segment_enabled": (CustomerSegmentEngine, "enabled"),
    "segment_window_days": (CustomerSegmentEngine, "window_days"),
    "segment_k_min": (CustomerSegmentEngine, "k_min"),
    "segment_k_max": (CustomerSegmentEngine, "k_max"),
    "segment_min_customers": (CustomerSegmentEngine, "min_customers"),
    "repeat_purchase_enabled": (RepeatPurchaseEngine, "enabled"),
    "repeat_horizon_days": (RepeatPurchaseEngine, "horizon_days"),
    "repeat_min_customers": (RepeatPurchaseEngine, "min_customers"),
    "lead_sentiment_enabled": (LeadSentimentEngine, "enabled"),
    "partner_sentiment_enabled": (PartnerSentimentEngine, "enabled"),
    "recommend_enabled": (RecommendEngine, "enabled"),
    "recommend_list_size": (RecommendEngine, "list_size"),
    "recommend_new_excludes_days": (RecommendEngine, "new_excludes_days"),
    "recommend_min_customers": (RecommendEngine, "min_customers"),
}


def _clamp(value, minimum, maximum):
    try:
        return min(max(int(value), minimum), maximum)
    except (TypeError, ValueError):
        return minimum


class CrmAiSettings(models.TransientModel):
    _name = "crm.ai.settings"
    _description = "CRM AI: settings"

    crm_ai_enabled = fields.Boolean("CRM AI enabled")
    lead_propensity_enabled = fields.Boolean("Lead propensity")
    lead_field_ids = fields.Many2many(
        "crm.ai.field", string="Lead fields used by the model", domain=[("model", "=", "crm.lead")],
        help="Stored lead fields the model learns from (custom x_ fields included). Fields that are "
             "set when a lead is closed (stage, probability, lost reason, close date) are never offered.")
    lead_start_date = fields.Date("Learn from leads created since", help="Empty: every closed lead.")
    lead_min_closed = fields.Integer(
        "Minimum won / lost leads",
        help="No model is trained for a company until it has at least this many won AND this many lost leads.")
    lead_recency_half_life = fields.Selection(
        selection="_half_life_selection", string="Recency weighting",
        help="How fast old leads lose weight (half-life). Automatic picks it on the newest closed leads; "
             "choose a short one if your win rates move fast (new offer, new market).")
    lead_history_step = fields.Float(
        "History: log moves of at least (points)", digits=(4, 1),
        help="A lead's propensity history gets a new point when its score moved by at least this many "
             "points since the last point, or the model changed.")
    lead_history_days = fields.Integer(
        "History: keep (days)", help="Older history points are deleted when the lead is scored again "
                                     "(each lead keeps its latest one).")
    customer_segment_enabled = fields.Boolean("Customer segments")
    segment_window_days = fields.Integer(
        "Segment on the last (days)", help="A customer is described by its confirmed orders of this many days; "
                                           "customers silent for longer are Lost.")
    segment_k_min = fields.Integer("Segments, at least", help="The engine picks the number of segments in this "
                                                                "range by how well separated they are (silhouette).")
    segment_k_max = fields.Integer("Segments, at most")
    segment_min_customers = fields.Integer(
        "Minimum customers (segments)", help="No segments for a company with fewer customers who bought in the window.")
    repeat_purchase_enabled = fields.Boolean("Repeat-purchase propensity")
    repeat_horizon_days = fields.Integer(
        "Buys again within (days)", help="The propensity is the chance of another confirmed order within this horizon.")
    repeat_min_customers = fields.Integer(
        "Minimum customers (propensity)", help="No model for a company with fewer customers who bought before two "
                                               "horizons ago.")
    lead_sentiment_enabled = fields.Boolean("Lead sentiment")
    partner_sentiment_enabled = fields.Boolean("Customer sentiment")
    recommend_enabled = fields.Boolean("Recommended products")
    recommend_list_size = fields.Integer("Products per list", help="How many products each list shows.")
    recommend_new_excludes_days = fields.Integer(
        "New list skips products bought within (days)",
        help="0: the new-product list only holds products the customer never bought. N: products last bought "
             "more than N days ago may be offered again there.")
    recommend_min_customers = fields.Integer(
        "Minimum customers (recommendations)",
        help="No model for a company with fewer customers who bought before the holdout (the last 90 days).")
    recommend_lightfm_status = fields.Char("LightFM", compute="_compute_recommend_lightfm_status")
    train_interval_number = fields.Integer("Train every")
    train_interval_type = fields.Selection(INTERVAL_TYPES)
    score_interval_number = fields.Integer("Score every")
    score_interval_type = fields.Selection(INTERVAL_TYPES)
    status = fields.Html("Model status", compute="_compute_status", sanitize=False)

    def _compute_display_name(self):
        for settings in self:
            settings.display_name = _("CRM AI Settings")

    # -- access -------------------------------------------------------------------------------
    def _check_manager(self):
        if not self.env.user.has_group(MANAGER):
            raise AccessError(_("Only CRM AI managers can change the CRM AI settings."))

    def _check_all_companies(self):
        """The settings apply to every company: a manager of some companies only may
        train theirs, not change how every other company is scored."""
        all_companies = self.env["res.company"].sudo().search([])
        if all_companies - self.env.user.company_ids:
            raise AccessError(_("CRM AI settings apply to every company: only a manager with access to all "
                                "companies can change them. You can still train your companies' models."))

    @api.model
    def _half_life_selection(self):
        """The usual half-lives, plus the current one when a parameter holds another number
        (saving the form must not silently replace it by "Automatic")."""
        current = self.env["ir.config_parameter"].sudo().get_param(LeadPropensityEngine.param_key("recency_half_life"))
        choices = list(HALF_LIVES)
        try:
            if current and current not in dict(choices) and float(current) > 0:
                choices.append((current, _("%s days", current)))
        except ValueError:
            pass  # malformed: the engine reads "auto", and so does the form
        return choices

    @api.model
    def _lead_field_choices(self):
        """Exactly the lead fields the model accepts (custom x_ fields included)."""
        engine = LeadPropensityEngine(self.env, self.env.company)
        return self.env["crm.ai.field"]._ai_sync(
            "crm.lead", [n for n in self.env["crm.lead"]._fields if engine.allowed_field(n)])

    # -- load / save -------------------------------------------------------------------------
    def _crons(self):
        return (self.env.ref("crm_ai.ir_cron_train").sudo(), self.env.ref("crm_ai.ir_cron_score").sudo())

    @api.model
    def default_get(self, fields_list):
        self._check_manager()
        values = super().default_get(fields_list)
        engine = LeadPropensityEngine(self.env, self.env.company)
        half_life = engine.param("recency_half_life")
        train, score = self._crons()
        values.update({name: engine(self.env, self.env.company).param(param)
                       for name, (engine, param) in ENGINE_PARAM_FIELDS.items()})
        values.update({
            "crm_ai_enabled": self.env["crm.ai.driver"]._ai_enabled(),
            "lead_propensity_enabled": engine.param("enabled"),
            "lead_field_ids": [(6, 0, self._lead_field_choices().filtered(
                lambda f: f.name in engine.param("fields")).ids)],
            "lead_start_date": engine.param("start_date"),
            "lead_min_closed": engine.param("min_closed_per_class"),
            "lead_recency_half_life": self._half_life_value(half_life),
            "train_interval_number": train.interval_number, "train_interval_type": train.interval_type,
            "score_interval_number": score.interval_number, "score_interval_type": score.interval_type,
        })
        return {name: value for name, value in values.items() if name in fields_list}

    @api.model
    def _half_life_value(self, half_life):
        """The selection key of the engine's half-life ("auto", "none" or days)."""
        if half_life in ("auto", None):
            return "auto" if half_life == "auto" else "none"
        keys = dict(self._half_life_selection())
        for key in keys:
            try:
                if float(key) == half_life:
                    return key
            except ValueError:
                continue
        return "auto"

    def _sanitize(self, vals):
        param = LeadPropensityEngine.params["min_closed_per_class"]
        if "lead_min_closed" in vals:
            vals["lead_min_closed"] = _clamp(vals["lead_min_closed"], param.minimum, param.maximum)
        for name in ("train_interval_number", "score_interval_number"):
            if name in vals:
                vals[name] = _clamp(vals[name], 1, MAX_INTERVAL_NUMBER)
        for name, (engine, param_name) in ENGINE_PARAM_FIELDS.items():
            param = engine.params[param_name]
            if name in vals and param.kind == "int":
                vals[name] = _clamp(vals[name], param.minimum, param.maximum)
            elif name in vals and param.kind == "float":
                vals[name] = min(max(float(vals[name] or 0.0), param.minimum), param.maximum)
        if vals.get("segment_k_min") and vals.get("segment_k_max") and vals["segment_k_min"] > vals["segment_k_max"]:
            vals["segment_k_min"], vals["segment_k_max"] = vals["segment_k_max"], vals["segment_k_min"]
        return vals

    @api.model_create_multi
    def create(self, vals_list):
        self._check_manager()
        return super().create([self._sanitize(dict(vals)) for vals in vals_list])

    def write(self, vals):
        return super().write(self._sanitize(dict(vals)))

    def action_save(self):
        """Store the values (as parameters and on the two scheduled actions)."""
        self.ensure_one()
        self._check_manager()
        self._check_all_companies()
        params = self.env["ir.config_parameter"].sudo()
        key = LeadPropensityEngine.param_key
        # As Odoo's Settings checkbox stores it: "True", or no row.
        params.set_param("crm_ai.enabled", self.crm_ai_enabled)
        params.set_param(key("enabled"), "True" if self.lead_propensity_enabled else "False")
        params.set_param(key("fields"), ",".join(self.lead_field_ids.mapped("name")) or ",".join(DEFAULT_LEAD_FIELDS))
        params.set_param(key("start_date"), fields.Date.to_string(self.lead_start_date) or False)
        params.set_param(key("min_closed_per_class"), str(self.lead_min_closed))
        params.set_param(key("recency_half_life"), self.lead_recency_half_life or "auto")
        for name, (engine, param_name) in ENGINE_PARAM_FIELDS.items():
            params.set_param(engine.param_key(param_name), str(self[name]))
        train, score = self._crons()
        now = datetime.now()
        for cron, number, kind, floor in ((train, self.train_interval_number, self.train_interval_type, MIN_TRAIN_INTERVAL),
                                          (score, self.score_interval_number, self.score_interval_type, MIN_SCORE_INTERVAL)):
            if not (number > 0 and kind) or (cron.interval_number, cron.interval_type) == (number, kind):
                continue
            if now + relativedelta(**{kind: number}) < now + floor:
                raise UserError(_("%(action)s cannot run more often than every %(floor)s.", action=cron.name,
                                  floor=_("day") if floor == MIN_TRAIN_INTERVAL else _("15 minutes")))
            cron.write({"interval_number": number, "interval_type": kind})
        return {"type": "ir.actions.client", "tag": "display_notification",
                "params": {"type": "success", "message": _("CRM AI settings saved."),
                           "next": {"type": "ir.actions.act_window_close"}}}

    def action_train_now(self):
        """Save, then ask the train cron to train every engine of the user's companies now.

        Returns at once: training runs in the scheduled action (within Odoo's cron time
        limits, resumable), not in this HTTP request; the verdict shows in the status."""
        self.ensure_one()
        if not self.env.user.has_group("base.group_system") and (
                self.env["res.company"].sudo().search([]) - self.env.user.company_ids):
            self._check_manager()  # a manager of some companies trains theirs, settings unchanged
        else:
            self.action_save()
        driver = self.env["crm.ai.driver"]
        tasks = driver._ai_tasks()
        if tasks:
            # the user's companies, and the records without a company (they share a model)
            self.env["crm.ai.training"].sudo()._ai_request(tasks, [*self.env.companies, self.env["res.company"]])
            self.env.ref("crm_ai.ir_cron_train").sudo()._trigger()
        message = (_("Training requested: it runs in the background; the status below shows the verdict.")
                   if tasks else _("CRM AI is disabled."))
        return {"type": "ir.actions.client", "tag": "display_notification",
                "params": {"title": _("CRM AI training"), "message": message,
                           "type": "success" if tasks else "warning",
                           "next": {"type": "ir.actions.client", "tag": "soft_reload"}}}

    # -- status --------------------------------------------------------------------------------
    @api.model
    def _ai_status_html(self):
        """Per engine and company: the active model and its score against the baseline, the last
        training's verdict (or that one is requested), or what data is missing."""
        driver = self.env["crm.ai.driver"]
        Model = self.env["crm.ai.model"].sudo()
        Training = self.env["crm.ai.training"].sudo()
        rows = []
        installed = self.env.registry._init_modules
        # ENGINES is shared by every database of the process: only this database's engines
        for task, engine_class in [(t, e) for t, e in ENGINES.items() if e.module() in installed]:
            for company in self.env.companies:
                engine = driver._ai_engine(task, company)
                active = Model._ai_active(task, company)
                refused = Model.search([("task", "=", task), ("company_id", "=", company.id),
                                        ("state", "=", "refused")], order="id desc", limit=1)
                last = Training._ai_status(task, company)
                parts = []
                if active and engine.trains:
                    parts.append(_("%(model)s: holdout %(metric)s %(score)s (%(baseline)s %(baseline_score)s), "
                                   "trained %(date)s",
                                   model=active.display_name, metric=active.primary_metric,
                                   score=Model._ai_format_score(active.score if active.score_defined else None),
                                   baseline=active.baseline or _("baseline"),
                                   baseline_score=Model._ai_format_score(
                                       active.baseline_score if active.baseline_score_defined else None),
                                   date=fields.Datetime.to_string(active.date_trained)))
                elif active:
                    parts.append(active.display_name)
                elif refused:
                    parts.append(_("%(model)s was refused (%(reason)s); scores are out of date until a retraining "
                                   "replaces it.", model=refused.display_name, reason=refused.refusal_reason))
                else:
                    parts.append(engine.data_shortfall() or _("No model yet: train now."))
                if last and last.is_due:
                    parts.append(_("Training requested on %s.", fields.Datetime.to_string(last.date_requested)))
                elif last and last.message:
                    parts.append(_("Last training (%(date)s): %(message)s",
                                   date=fields.Datetime.to_string(last.date_done), message=last.message))
                rows.append((engine_class.label, company.name, Markup("<br/>").join(parts)))
        return Markup("<ul class='mb-0'>%s</ul>") % Markup("").join(
            Markup("<li><b>%s · %s</b>: %s</li>") % row for row in rows)

    @api.depends_context("lang")
    def _compute_recommend_lightfm_status(self):
        status = lightfm_status(self.env)
        for settings in self:
            settings.recommend_lightfm_status = status

    @api.depends("crm_ai_enabled")
    @api.depends_context("allowed_company_ids", "lang")
    def _compute_status(self):
        html = self._ai_status_html()
        for settings in self:
            settings.status = html

    @api.model
    def action_open(self):
        """The settings form (menu CRM ▸ Configuration ▸ AI Settings)."""
        self._check_manager()
        return {"type": "ir.actions.act_window", "name": _("CRM AI Settings"), "res_model": "crm.ai.settings",
                "view_mode": "form", "target": "current",
                "views": [(self.env.ref("crm_ai.crm_ai_settings_view_form").id, "form")]}
