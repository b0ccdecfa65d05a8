"""What a logged-in user can do to crm_ai's jobs over XML-RPC, tried as an attacker would."""

from xmlrpc.client import Fault

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.crm_ai.tests.common import TASK, CrmAiDataMixin


@tagged("crm_ai_queue", "post_install", "-at_install")
class TestJobsOverRpc(CrmAiDataMixin, HttpCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_setup_data(n_closed=200, n_open=4)
        cls.env["crm.ai.driver"]._ai_train_unit(TASK, cls.company)
        cls.salesman = new_test_user(cls.env, "crm_ai_queue_rpc_salesman", groups="sales_team.group_sale_salesman_all_leads")
        cls.admin_user = cls.env.ref("base.user_admin")
        cls.portal = new_test_user(cls.env, "crm_ai_queue_rpc_portal", groups="base.group_portal")

    def _rpc(self, user, model, method, *args, **kwargs):
        login = user.login
        password = "admin" if user == self.admin_user else login
        return self.xmlrpc_object.execute_kw(self.env.cr.dbname, user.id, password, model, method, list(args), kwargs)

    def test_nobody_runs_or_queues_a_job_by_hand(self):
        ids = self.open_leads.ids
        for user in (self.salesman, self.portal, self.admin_user):
            for method, args in (("_ai_score_job", [TASK, self.company.id, ids]), ("_ai_train_job", [TASK, self.company.id])):
                with self.assertRaisesRegex(Fault, "rivate method"):
                    self._rpc(user, "crm.ai.driver", method, *args)
            # public, but what it returns (a delayable) never leaves the server: nothing is queued
            with self.assertRaises(Fault), mute_logger("odoo.http"):
                self._rpc(user, "crm.ai.driver", "with_delay", [])
            with self.assertRaises(Fault):
                self._rpc(user, "queue.job", "create", [{"uuid": "forged", "model_name": "crm.ai.driver",
                                                         "method_name": "_ai_score_job", "name": "forged"}])
        self.open_leads.invalidate_recordset()
        self.assertEqual(set(self.open_leads.mapped("ai_propensity_state")), {"pending"})
        self.assertFalse(self.env["queue.job"].search_count([]))

    def test_salesperson_and_portal_see_no_job(self):
        self.env["crm.ai.model"]._cron_ai_score()
        self.assertTrue(self.env["queue.job"].search_count([("method_name", "=", "_ai_score_job")]))
        for user in (self.salesman, self.portal):
            with self.assertRaises(Fault):
                self._rpc(user, "queue.job", "search_read", [], fields=["args"])
