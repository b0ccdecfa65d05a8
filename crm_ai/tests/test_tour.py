from odoo.tests import HttpCase, tagged

from .common import CrmAiDataMixin


@tagged("crm_ai", "post_install", "-at_install")
class TestCrmAiTour(CrmAiDataMixin, HttpCase):
    """A salesperson opens a lead, reads its propensity and reasons, and filters the pipeline."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_setup_data(n_open=0)
        admin = cls.env.ref("base.user_admin")
        Lead = cls.env["crm.lead"].with_context(tracking_disable=True)
        common = {"type": "opportunity", "user_id": admin.id, "company_id": cls.company.id,
                  "stage_id": cls.first_stage.id, "expected_revenue": 5000}
        cls.hot = Lead.create({**common, "name": "AI Tour Hot Lead", "source_id": cls.sources["Referral"].id})
        cls.cold = Lead.create({**common, "name": "AI Tour Cold Lead", "source_id": cls.sources["Cold list"].id})
        cls._crm_ai_train()
        cls.env["crm.ai.model"]._cron_ai_score()

    def test_salesperson_tour(self):
        self.assertGreaterEqual(self.hot.ai_propensity, 50)
        self.assertLess(self.cold.ai_propensity, 50)
        self.start_tour("/odoo/crm", "crm_ai_tour", login="admin")
