from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import AccessError

from .crm_ai_model import auto_commit
from .crm_lead import DEFAULT_LEAD_FIELDS

INTERVAL_TYPES = [("minutes", "Minutes"), ("hours", "Hours"), ("days", "Days"), ("weeks", "Weeks"),
                  ("months", "Months")]


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    crm_ai_enabled = fields.Boolean("CRM AI", config_parameter="crm_ai.enabled")
    # Many2many and Date values live in Char parameters (as Odoo's PLS settings do).
    crm_ai_lead_fields_str = fields.Char(config_parameter="crm_ai.lead_fields")
    crm_ai_lead_field_ids = fields.Many2many(
        "ir.model.fields", string="Lead fields used by the model",
        compute="_compute_crm_ai_lead_field_ids", inverse="_inverse_crm_ai_lead_field_ids",
        domain=lambda self: self._crm_ai_lead_field_domain(),
        help="Stored lead fields the model learns from (custom x_ fields included). Fields that are "
             "set when a lead is closed (stage, probability, lost reason, close date) are never offered.")
    crm_ai_min_closed = fields.Integer(
        "Minimum won / lost leads", config_parameter="crm_ai.min_closed_per_class", default=40,
        help="No model is trained for a company until it has at least this many won AND this many lost leads.")
    crm_ai_recency_half_life = fields.Selection([
        ("auto", "Automatic"), ("none", "All leads alike"), ("365", "1 year"), ("180", "6 months"),
        ("90", "3 months"), ("30", "1 month")], string="Recency weighting",
        config_parameter="crm_ai.recency_half_life", default="auto",
        help="How fast old leads lose weight (half-life). Automatic picks it on the newest closed leads; "
             "choose a short one if your win rates move fast (new offer, new market).")
    crm_ai_start_date_str = fields.Char(config_parameter="crm_ai.start_date")
    crm_ai_start_date = fields.Date(
        "Learn from leads created since", compute="_compute_crm_ai_start_date",
        inverse="_inverse_crm_ai_start_date", help="Empty: every closed lead.")
    crm_ai_train_interval_number = fields.Integer("Train every", compute="_compute_crm_ai_intervals",
                                                  inverse="_inverse_crm_ai_intervals")
    crm_ai_train_interval_type = fields.Selection(INTERVAL_TYPES, compute="_compute_crm_ai_intervals",
                                                  inverse="_inverse_crm_ai_intervals")
    crm_ai_score_interval_number = fields.Integer("Score every", compute="_compute_crm_ai_intervals",
                                                  inverse="_inverse_crm_ai_intervals")
    crm_ai_score_interval_type = fields.Selection(INTERVAL_TYPES, compute="_compute_crm_ai_intervals",
                                                  inverse="_inverse_crm_ai_intervals")
    crm_ai_status = fields.Html("Model status", compute="_compute_crm_ai_status", sanitize=False)

    @api.model
    def _crm_ai_lead_field_domain(self):
        """Exactly the lead fields the model accepts (custom x_ fields included)."""
        Lead = self.env["crm.lead"]
        return [("model", "=", "crm.lead"), ("name", "in", [n for n in Lead._fields if Lead._ai_allowed_field(n)])]

    @api.model
    def get_values(self):
        values = super().get_values()
        # A hand-edited parameter must not make the whole Settings page fail to open.
        valid = dict(self._fields["crm_ai_recency_half_life"].selection)
        if values.get("crm_ai_recency_half_life") not in valid:
            values["crm_ai_recency_half_life"] = "auto"
        return values

    @api.depends("crm_ai_lead_fields_str")
    def _compute_crm_ai_lead_field_ids(self):
        for setting in self:
            names = setting.crm_ai_lead_fields_str.split(",") if setting.crm_ai_lead_fields_str else DEFAULT_LEAD_FIELDS
            names = [n.strip() for n in names]
            setting.crm_ai_lead_field_ids = self.env["ir.model.fields"].search(
                [("model", "=", "crm.lead"), ("name", "in", names)])

    def _inverse_crm_ai_lead_field_ids(self):
        for setting in self:
            setting.crm_ai_lead_fields_str = ",".join(setting.crm_ai_lead_field_ids.mapped("name"))

    @api.depends("crm_ai_start_date_str")
    def _compute_crm_ai_start_date(self):
        for setting in self:
            try:
                setting.crm_ai_start_date = fields.Date.to_date(setting.crm_ai_start_date_str or False)
            except ValueError:  # a hand-edited, malformed parameter reads as "no start date"
                setting.crm_ai_start_date = False

    def _inverse_crm_ai_start_date(self):
        for setting in self:
            setting.crm_ai_start_date_str = fields.Date.to_string(setting.crm_ai_start_date) or ""

    def _crm_ai_crons(self):
        return (self.env.ref("crm_ai.ir_cron_train", raise_if_not_found=False),
                self.env.ref("crm_ai.ir_cron_score", raise_if_not_found=False))

    @api.depends("crm_ai_enabled")  # any dependency: a settings form is a new record, computed from its defaults
    def _compute_crm_ai_intervals(self):
        train, score = self._crm_ai_crons()
        for setting in self:
            setting.crm_ai_train_interval_number = train.sudo().interval_number if train else 1
            setting.crm_ai_train_interval_type = train.sudo().interval_type if train else "weeks"
            setting.crm_ai_score_interval_number = score.sudo().interval_number if score else 1
            setting.crm_ai_score_interval_type = score.sudo().interval_type if score else "hours"

    def _inverse_crm_ai_intervals(self):
        train, score = self._crm_ai_crons()
        for setting in self:
            for cron, number, kind in ((train, setting.crm_ai_train_interval_number, setting.crm_ai_train_interval_type),
                                       (score, setting.crm_ai_score_interval_number, setting.crm_ai_score_interval_type)):
                if cron and number > 0 and kind and (cron.interval_number, cron.interval_type) != (number, kind):
                    cron.sudo().write({"interval_number": number, "interval_type": kind})

    @api.depends("crm_ai_enabled")
    def _compute_crm_ai_status(self):
        Model = self.env["crm.ai.model"].sudo()
        minimum = self.env["crm.lead"]._ai_get_safe_min_closed()
        rows = []
        for company in self.env.companies:
            won, lost = self.env["crm.lead"].sudo()._ai_closed_counts(company)
            active = Model._ai_active("lead_propensity", company)
            if active and active.auc:
                text = _("%(model)s: AUC %(auc).3f (Odoo PLS %(pls).3f), Brier %(brier).4f, trained %(date)s",
                         model=active.display_name, auc=active.auc, pls=active.pls_auc, brier=active.brier,
                         date=fields.Datetime.to_string(active.date_trained))
            elif active:  # its holdout held a single outcome
                text = _("%(model)s: AUC undefined on its holdout, Brier %(brier).4f, trained %(date)s",
                         model=active.display_name, brier=active.brier,
                         date=fields.Datetime.to_string(active.date_trained))
            elif won >= minimum and lost >= minimum:
                text = _("Enough data (%(won)s won, %(lost)s lost): train now.", won=won, lost=lost)
            else:
                text = _("Not enough data yet: %(won)s won and %(lost)s lost leads, %(min)s of each needed.",
                         won=won, lost=lost, min=minimum)
            rows.append((company.name, text))
        html = Markup("<ul class='mb-0'>%s</ul>") % Markup("").join(
            Markup("<li><b>%s</b>: %s</li>") % row for row in rows)
        for setting in self:
            setting.crm_ai_status = html

    def action_crm_ai_train_now(self):
        """Train now (as the scheduled action would), then show the verdict."""
        if not self.env.user.has_group("crm_ai.group_crm_ai_manager"):
            raise AccessError(_("Only CRM AI managers can train models."))
        self.execute()  # save pending settings first: training reads them
        if auto_commit(self.env):
            # Training commits company by company and rolls back on a conflict: keep the settings.
            self.env.cr.commit()
        results = self.env["crm.ai.model"].sudo()._cron_ai_train()
        messages = [r["message"] for r in results] or [_("CRM AI is disabled.")]
        return {
            "type": "ir.actions.client", "tag": "display_notification",
            "params": {"title": _("CRM AI training"), "message": "\n".join(messages), "sticky": True,
                       "type": "success" if any(r["status"] == "active" for r in results) else "warning",
                       "next": {"type": "ir.actions.client", "tag": "reload"}},
        }
