"""Input fields CRM AI managers may pick in the CRM AI settings.

A small mirror of the usable ``ir.model.fields`` (which only administrators may read),
refreshed each time the settings open, so a Sales administrator can choose a model's
inputs (custom x_ fields included) without access to the technical field registry.
"""

import psycopg2

from odoo import api, fields, models


class CrmAiField(models.Model):
    _name = "crm.ai.field"
    _description = "CRM AI: input field"
    _order = "field_description, name"
    _rec_name = "field_description"

    model = fields.Char(required=True, readonly=True, index=True)
    name = fields.Char("Technical name", required=True, readonly=True)
    field_description = fields.Char("Field", required=True, readonly=True)

    _sql_constraints = [("model_name_uniq", "unique(model, name)", "A field is listed once per model.")]

    @api.depends("field_description", "name")
    def _compute_display_name(self):
        for field in self:
            field.display_name = f"{field.field_description} ({field.name})" if field.name.startswith("x_") \
                else field.field_description

    @api.model
    def _ai_sync(self, model, names):
        """The rows of ``model``'s fields ``names``, created or relabelled as needed; rows of
        other fields of ``model`` are removed.  Returns them in ``names`` order."""
        Fields = self.sudo()
        records = self.env[model]._fields
        existing = {row.name: row for row in Fields.search([("model", "=", model)])}
        (Fields.browse([row.id for name, row in existing.items() if name not in names])).unlink()
        result = Fields.browse()
        for name in names:
            label = records[name].get_description(self.env)["string"]
            row = existing.get(name)
            if not row:
                try:
                    with self.env.cr.savepoint():
                        row = Fields.create({"model": model, "name": name, "field_description": label})
                except psycopg2.IntegrityError:  # created meanwhile by another manager opening the settings
                    row = Fields.search([("model", "=", model), ("name", "=", name)])
            elif row.field_description != label:
                row.field_description = label
            result |= row
        return result.with_env(self.env)
