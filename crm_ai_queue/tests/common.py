from odoo.tests import TransactionCase, tagged

from odoo.addons.crm_ai.tests.common import TASK, CrmAiDataMixin


@tagged("crm_ai_queue", "post_install", "-at_install")
class CrmAiQueueCase(CrmAiDataMixin, TransactionCase):
    """crm_ai's synthetic history (lead propensity only), with a trained model."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_setup_data(n_closed=300, n_open=12)
        cls.Driver = cls.env["crm.ai.driver"]
        cls.Registry = cls.env["crm.ai.model"]
        cls.model = cls.Registry.browse(cls._crm_ai_train()["model_id"])
        cls.Job = cls.env["queue.job"]

    def _states(self, leads=None):
        leads = leads if leads is not None else self.open_leads
        leads.invalidate_recordset()
        return set(leads.mapped("ai_propensity_state"))

    def _score_jobs(self):
        return self.Job.search([("method_name", "=", "_ai_score_job")])


__all__ = ["TASK", "CrmAiQueueCase"]
