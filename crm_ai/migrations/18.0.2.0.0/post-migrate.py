"""18.0.1 -> 18.0.2: the registry holds any engine.

- Propensity columns (auc, log_loss, brier, calibration_error, pls_*, previous_auc,
  n_won, n_lost) become the generic primary score / baseline score and the per-task
  ``metrics`` JSON (the old columns are left in place, as Odoo does).
- Artifacts become base64 text (raw bytes broke ``read()`` over RPC) and are signed
  again with their task, company and version: the old signature is verified first and
  nothing is unpickled; a blob that does not verify is left as it is (refused on load).
- Parameters move to ``crm_ai.<task>.<name>``.
- Lead reasons become data (``ai_propensity_reason_data``): the old text column is
  dropped and the leads are rescored by the next run.
"""

import base64
import logging

from odoo import SUPERUSER_ID, api

from odoo.addons.crm_ai.ml import persistence

_logger = logging.getLogger(__name__)

RENAMED_PARAMS = {
    "crm_ai.lead_fields": "crm_ai.lead_propensity.fields",
    "crm_ai.min_closed_per_class": "crm_ai.lead_propensity.min_closed_per_class",
    "crm_ai.start_date": "crm_ai.lead_propensity.start_date",
    "crm_ai.recency_half_life": "crm_ai.lead_propensity.recency_half_life",
}


def _columns(cr, table):
    cr.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))
    return {row[0] for row in cr.fetchall()}


def migrate_metrics(cr):
    if "auc" not in _columns(cr, "crm_ai_model"):
        return
    cr.execute("""
        UPDATE crm_ai_model SET
               primary_metric = 'AUC', higher_is_better = TRUE,
               score = auc, score_defined = COALESCE(auc, 0) <> 0,
               baseline = 'Odoo PLS', baseline_score = pls_auc, baseline_score_defined = COALESCE(pls_auc, 0) <> 0,
               previous_score = previous_auc,
               metrics = jsonb_build_object(
                   'model', jsonb_build_object('auc', NULLIF(auc, 0), 'log_loss', log_loss, 'brier', brier,
                                               'calibration_error', calibration_error),
                   'baseline', jsonb_build_object('auc', NULLIF(pls_auc, 0), 'log_loss', pls_log_loss,
                                                  'brier', pls_brier, 'calibration_error', pls_calibration_error),
                   'counts', jsonb_build_object('won', n_won, 'lost', n_lost))
         WHERE primary_metric IS NULL
    """)


def migrate_artifacts(env):
    """Base64, and signed with task, company and version (verified, never unpickled)."""
    cr = env.cr
    key = env["crm.ai.model"]._signing_key()
    cr.execute("SELECT id, task, company_id, version, artifact FROM crm_ai_model WHERE artifact IS NOT NULL")
    for model_id, task, company_id, version, artifact in cr.fetchall():
        blob = bytes(artifact)
        if not blob.startswith(persistence.MAGIC):
            continue  # already base64 (or not ours: refused on load)
        try:
            blob = persistence.resign(blob, key, {"task": task, "company": company_id or 0, "version": version})
        except persistence.ArtifactError as error:
            _logger.warning("crm_ai: model %s does not verify (%s): left to be refused and retrained", model_id, error)
        cr.execute("UPDATE crm_ai_model SET artifact = %s WHERE id = %s", (base64.b64encode(blob), model_id))


def migrate_params(cr):
    # Their defaults now live in the engine; the data records are gone (rows kept, renamed).
    cr.execute("""DELETE FROM ir_model_data WHERE module = 'crm_ai'
                   AND name IN ('crm_ai_lead_fields_param', 'crm_ai_min_closed_param')""")
    for old, new in RENAMED_PARAMS.items():
        cr.execute("""UPDATE ir_config_parameter SET key = %s
                       WHERE key = %s AND NOT EXISTS (SELECT 1 FROM ir_config_parameter WHERE key = %s)""",
                   (new, old, new))
        cr.execute("DELETE FROM ir_config_parameter WHERE key = %s", (old,))


def migrate_reasons(cr):
    """Reasons are data now (put in words in the reader's language): rescore the leads."""
    if "ai_propensity_reasons" in _columns(cr, "crm_lead"):
        cr.execute("ALTER TABLE crm_lead DROP COLUMN ai_propensity_reasons")
        cr.execute("UPDATE crm_lead SET ai_propensity_date = NULL WHERE ai_propensity_state = 'scored'")


def migrate(cr, version):
    if not version:
        return
    migrate_metrics(cr)
    migrate_reasons(cr)
    migrate_artifacts(api.Environment(cr, SUPERUSER_ID, {}))
    migrate_params(cr)
