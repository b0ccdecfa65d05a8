"""Scores are the engines' data: nobody writes them through the ORM.

Engines write with SQL (see the driver); over RPC, in imports or from server actions
run by users, ``create`` and ``write`` refuse any stored ``ai_*`` field and any field
an engine declares on the model (status, date, model, values), so a salesperson cannot
forge a propensity, its reasons, its date or its model.  The driver refuses to drive an
engine whose target model lacks this mixin.
"""

from markupsafe import Markup

from odoo import _, api, models
from odoo.exceptions import AccessError

from .crm_ai_engine import ENGINES


def reasons_html(text):
    """A reasons text (one "Label: value (+n)" per line) as a green / red list."""
    items = []
    for line in (text or "").splitlines():
        up = line.rsplit("(", 1)[-1].startswith("+")
        # Markup's % escapes the line: a tag or field value can't inject HTML.
        items.append(Markup('<li class="%s">%s %s</li>') % (
            "text-success" if up else "text-danger", "▲" if up else "▼", line))
    return Markup('<ul class="list-unstyled mb-0">%s</ul>') % Markup("").join(items) if items else False


class CrmAiScoredMixin(models.AbstractModel):
    _name = "crm.ai.scored.mixin"
    _description = "CRM AI: records with engine-written ai_* fields"

    def _ai_score_fields(self, names):
        """Those of ``names`` that are engine-written columns of this model."""
        declared = {name for engine in ENGINES.values() if engine.target_model == self._name
                    for name in (engine.state_field, engine.date_field, engine.model_field, *engine.value_fields)}
        return sorted({name for name in names if (name.startswith("ai_") or name in declared)
                       and name in self._fields and self._fields[name].store})

    def _ai_check_no_scores(self, vals_list):
        if self.env.su:
            return
        forged = self._ai_score_fields({name for vals in vals_list for name in vals})
        if forged:
            raise AccessError(_("AI scores are computed by CRM AI and cannot be set by hand (%s).", ", ".join(forged)))

    @api.model_create_multi
    def create(self, vals_list):
        self._ai_check_no_scores(vals_list)
        # Odoo fills missing values from ``default_*`` context keys inside create: a score
        # given that way is dropped, not refused (a kanban grouped by segment puts
        # ``default_ai_segment_id`` in its quick create's context)
        defaults = self._ai_score_fields({key[8:] for key in self.env.context if key.startswith("default_")})
        if defaults:
            dropped = {f"default_{name}" for name in defaults}
            clean = self.with_context({k: v for k, v in self.env.context.items() if k not in dropped})
            return super(CrmAiScoredMixin, clean).create(vals_list)
        return super().create(vals_list)

    def write(self, vals):
        if self.env.context.get("crm_ai_drop_scores"):
            # a generic copy of every stored field (Odoo's contact merge): scores are not
            # copied, the engines recompute them (this context only ever removes values)
            vals = {key: value for key, value in vals.items() if key not in self._ai_score_fields(vals)}
        self._ai_check_no_scores([vals])
        return super().write(vals)
