"""AI fields of partners are written by their engines only (see crm.ai.scored.mixin)."""

from odoo import models


class ResPartner(models.Model):
    _name = "res.partner"
    _inherit = ["res.partner", "crm.ai.scored.mixin"]
