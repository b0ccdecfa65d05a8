from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    """Odoo's Settings page (system administrators) shows CRM AI's switch and status and
    links to the CRM AI settings, which CRM AI managers use too (``crm.ai.settings``)."""

    _inherit = "res.config.settings"

    crm_ai_enabled = fields.Boolean("CRM AI", config_parameter="crm_ai.enabled")
    crm_ai_status = fields.Html("Model status", compute="_compute_crm_ai_status", sanitize=False)

    @api.depends("crm_ai_enabled")
    @api.depends_context("allowed_company_ids", "lang")
    def _compute_crm_ai_status(self):
        html = self.env["crm.ai.settings"]._ai_status_html()
        for setting in self:
            setting.crm_ai_status = html

    def action_crm_ai_open_settings(self):
        return self.env["crm.ai.settings"].action_open()
