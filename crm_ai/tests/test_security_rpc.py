"""What a logged-in user can do over XML-RPC / JSON-RPC, tried as an attacker would."""

import base64
from xmlrpc.client import Fault

from odoo.tests import HttpCase, new_test_user, tagged

from .common import TASK, CrmAiDataMixin


@tagged("crm_ai", "post_install", "-at_install")
class TestSecurityOverRpc(CrmAiDataMixin, HttpCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_setup_data(n_closed=200, n_open=4)
        cls.model = cls.env["crm.ai.model"].browse(cls.env["crm.ai.driver"]._ai_train_unit(TASK, cls.company)["model_id"])
        cls.env["crm.ai.model"]._cron_ai_score()
        cls.salesman = new_test_user(cls.env, "crm_ai_rpc_salesman", groups="sales_team.group_sale_salesman_all_leads")
        cls.manager = new_test_user(cls.env, "crm_ai_rpc_manager", groups="sales_team.group_sale_manager")
        cls.portal = new_test_user(cls.env, "crm_ai_rpc_portal", groups="base.group_portal")

    def _rpc(self, user, model, method, *args, **kwargs):
        return self.xmlrpc_object.execute_kw(self.env.cr.dbname, user.id, user.login, model, method, list(args), kwargs)

    def test_salesperson_cannot_forge_a_score(self):
        lead = self.open_leads[0]
        for vals in ({"ai_propensity": 99.99},
                     {"ai_propensity_reason_data": [{"field": "name", "value": "Trust me", "points": 99}]},
                     {"ai_propensity_date": "2999-01-01 00:00:00", "ai_propensity_state": "scored"},
                     {"ai_propensity_model_id": self.model.id}):
            with self.assertRaisesRegex(Fault, "cannot be set by hand"):
                self._rpc(self.salesman, "crm.lead", "write", [lead.id], vals)
        with self.assertRaisesRegex(Fault, "cannot be set by hand"):
            self._rpc(self.salesman, "crm.lead", "create", [{"name": "forged", "ai_propensity": 99.0}])
        # nor through context defaults, which create fills in after the check (on copy too): dropped
        forged = {"default_ai_propensity": 99.5, "default_ai_propensity_state": "scored",
                  "default_ai_propensity_trend": 40.0, "default_ai_propensity_model_id": self.model.id,
                  "default_ai_propensity_date": "2999-01-01 00:00:00", "default_ai_propensity_grade": "a"}
        created = self._rpc(self.salesman, "crm.lead", "create", {"name": "forged", "type": "opportunity"},
                            context=forged)
        copied = self._rpc(self.salesman, "crm.lead", "copy", [lead.id], context=forged)[0]
        for lead_id in (created, copied):
            read = self._rpc(self.salesman, "crm.lead", "read", [lead_id],
                             fields=["ai_propensity", "ai_propensity_state", "ai_propensity_trend",
                                     "ai_propensity_model_id", "ai_propensity_date", "ai_propensity_grade"])[0]
            self.assertEqual((read["ai_propensity"], read["ai_propensity_state"], read["ai_propensity_trend"],
                              read["ai_propensity_model_id"], read["ai_propensity_date"], read["ai_propensity_grade"]),
                             (0.0, "pending", 0.0, False, False, False), lead_id)
        self.assertTrue(self._rpc(self.salesman, "crm.lead", "write", [lead.id], {"expected_revenue": 4242}))
        read = self._rpc(self.salesman, "crm.lead", "read", [lead.id], fields=["ai_propensity", "ai_propensity_model_id"])
        self.assertEqual(read[0]["ai_propensity_model_id"][0], self.model.id)
        with self.assertRaises(Fault):
            self._rpc(self.salesman, "crm.ai.model", "read", [self.model.id], fields=["metrics"])

    def test_manager_cannot_forge_models(self):
        for vals in ({"state": "active"}, {"score": 0.99}, {"gate_reason": "fine"},
                     {"artifact": base64.b64encode(b"CRMAI-MODEL-1\n").decode()}):
            with self.assertRaises(Fault):
                self._rpc(self.manager, "crm.ai.model", "write", [self.model.id], vals,
                          context={"crm_ai_trainer": True})
        with self.assertRaises(Fault):
            self._rpc(self.manager, "crm.ai.model", "create", [{"task": TASK, "version": 50, "state": "active"}],
                      context={"crm_ai_trainer": True})
        self.assertEqual(self.model.state, "active")

    def test_manager_reads_the_registry_over_rpc(self):
        """The stored model is base64 text: read() serialises over XML-RPC and JSON-RPC."""
        read = self._rpc(self.manager, "crm.ai.model", "read", [self.model.id],
                         fields=["name", "state", "score", "metrics", "artifact"])[0]
        self.assertTrue(base64.b64decode(read["artifact"]).startswith(b"CRMAI-MODEL-1"))
        self.assertIn("auc", read["metrics"]["model"])
        self.assertIn("candidates", read["metrics"]["selection"], "the model choice travels too (no None in it)")
        self.authenticate(self.manager.login, self.manager.login)
        result = self.make_jsonrpc_request("/web/dataset/call_kw/crm.ai.model/read", {
            "model": "crm.ai.model", "method": "read", "args": [[self.model.id], ["artifact", "metrics"]], "kwargs": {}})
        self.assertEqual(result[0]["artifact"], read["artifact"])

    def test_portal_user_gets_nothing(self):
        for model, method, args in (("crm.ai.model", "search_read", [[]]), ("crm.ai.training", "search_read", [[]]),
                                    ("crm.lead", "read", [[self.open_leads[0].id], ["ai_propensity"]])):
            with self.assertRaises(Fault, msg=model):
                self._rpc(self.portal, model, method, *args)

    def test_customer_values_cannot_be_forged_over_rpc(self):
        partner = self.env["res.partner"].create({"name": "crm_ai rpc customer", "is_company": True})
        segment = self.env["crm.ai.segment"]._ai_segments(self.company)["champions"]
        for vals in ({"ai_segment_id": segment}, {"ai_propensity": 99.0}, {"ai_rfm_monetary": 1e9},
                     {"ai_propensity_reason_data": '[{"field": "frequency", "value": "999", "points": 99}]'},
                     {"ai_segment_state": "scored", "ai_segment_date": "2999-01-01 00:00:00"}):
            with self.assertRaisesRegex(Fault, "cannot be set by hand", msg=vals):
                self._rpc(self.salesman, "res.partner", "write", [partner.id], vals)
        with self.assertRaisesRegex(Fault, "cannot be set by hand"):
            self._rpc(self.salesman, "res.partner", "create", [{"name": "forged", "ai_segment_id": segment}])
        # a quick create in a kanban column of a grouped-by-segment view: created, segment left to the engine
        quick = self._rpc(self.salesman, "res.partner", "name_create", "crm_ai quick",
                          context={"default_ai_segment_id": segment, "default_ai_rfm_monetary": 1e9})[0]
        self.assertEqual(self._rpc(self.salesman, "res.partner", "read", [quick],
                                   fields=["ai_segment_id", "ai_rfm_monetary"])[0]["ai_segment_id"], False)
        for user in (self.salesman, self.manager):
            with self.assertRaises(Fault):
                self._rpc(user, "crm.ai.segment.history", "create",
                          [{"partner_id": partner.id, "company_id": self.company.id, "segment_to_id": segment,
                            "date": "2024-01-01 00:00:00"}])
            with self.assertRaises(Fault):
                self._rpc(user, "crm.ai.segment", "unlink", [segment])
        for model in ("crm.ai.segment", "crm.ai.segment.history", "crm.ai.segment.map"):
            with self.assertRaises(Fault, msg=model):
                self._rpc(self.portal, model, "search_read", [])
        self.assertTrue(self._rpc(self.salesman, "crm.ai.segment", "search_read", [], fields=["name"]))

    def test_own_documents_salespeople_read_values_not_figures_made_of_colleagues_sales(self):
        """Revenue, order counts and the customer's won deals are made of every order and lead,
        whoever sold them: a salesperson limited to his own documents (Odoo hides the others
        from him) reads the segment, the propensities and the reasons' direction, not those."""
        own = new_test_user(self.env, "crm_ai_rpc_own", groups="sales_team.group_sale_salesman")
        partner = self.env["res.partner"].create({"name": "crm_ai rpc figures", "is_company": True})
        lead = self.open_leads[0]
        segment = self.env["crm.ai.segment"]._ai_segments(self.company)["champions"]
        figures = (("res.partner", partner.id, ["ai_rfm_monetary"]), ("res.partner", partner.id, ["ai_rfm_frequency"]),
                   ("res.partner", partner.id, ["ai_rfm_recency_days"]),
                   ("res.partner", partner.id, ["ai_propensity_reason_data"]),
                   ("crm.lead", lead.id, ["ai_propensity_reason_data"]),
                   ("crm.ai.propensity.history", lead.ai_propensity_history_ids[:1].id, ["reason_data"]),
                   ("crm.ai.segment", segment, ["revenue"]), ("crm.ai.segment", segment, ["avg_monetary"]))
        lead.user_id = own
        for model, record_id, field in figures:
            self.assertTrue(record_id, model)
            with self.assertRaises(Fault, msg=(model, field)):
                self._rpc(own, model, "read", [record_id], fields=field)
            self._rpc(self.salesman, model, "read", [record_id], fields=field)  # all documents: his to read
        with self.assertRaises(Fault):
            self._rpc(own, "res.partner", "read_group", [("id", "=", partner.id)], ["ai_rfm_monetary:sum"], [])
        read = self._rpc(own, "res.partner", "read", [partner.id], fields=["ai_segment_id", "ai_propensity"])
        self.assertEqual(len(read), 1)
        self.assertTrue(self._rpc(own, "crm.lead", "read", [lead.id], fields=["ai_propensity_reasons"]))

    def test_a_portal_user_does_not_read_what_crm_ai_made_of_its_own_partner(self):
        own = self.portal.partner_id.id
        self.assertTrue(self._rpc(self.portal, "res.partner", "read", [own], fields=["name"]))
        for field in ("ai_segment_id", "ai_propensity", "ai_rfm_monetary", "ai_sentiment_excerpt",
                      "ai_sentiment_why", "ai_sentiment_message", "ai_sentiment_label", "ai_propensity_reasons"):
            with self.assertRaises(Fault, msg=field):
                self._rpc(self.portal, "res.partner", "read", [own], fields=[field])

    def test_a_portal_reseller_reads_its_leads_but_not_what_crm_ai_made_of_them(self):
        """website_crm_partner_assign gives portal users read and write on the leads assigned to
        their company (this ACL and rule, on the lead's customer here: the assignment field is that
        module's); crm_ai's fields stay for salespeople."""
        lead = self.open_leads[0]
        lead.partner_id = self.portal.partner_id
        self.env["ir.model.access"].create({
            "name": "crm_ai test: portal reseller leads", "model_id": self.env.ref("crm.model_crm_lead").id,
            "group_id": self.env.ref("base.group_portal").id, "perm_read": True, "perm_write": True})
        self.env["ir.rule"].create({
            "name": "crm_ai test: leads of the reseller", "model_id": self.env.ref("crm.model_crm_lead").id,
            "groups": [(4, self.env.ref("base.group_portal").id)],
            "domain_force": "[('partner_id', 'child_of', user.commercial_partner_id.id)]"})
        self.assertEqual(self._rpc(self.portal, "crm.lead", "read", [lead.id], fields=["name"])[0]["name"], lead.name)
        whole = self._rpc(self.portal, "crm.lead", "read", [lead.id])[0]
        self.assertFalse([name for name in whole if name.startswith("ai_")], "no CRM AI field in a plain read")
        ai_fields = [name for name in self.env["crm.lead"]._fields if name.startswith("ai_")]
        self.assertGreater(len(ai_fields), 20)
        for field in ai_fields:
            with self.assertRaises(Fault, msg=field):
                self._rpc(self.portal, "crm.lead", "read", [lead.id], fields=[field])
        with self.assertRaises(Fault):
            self._rpc(self.portal, "crm.lead", "search", [("ai_propensity_grade", "=", "a")])

    def test_every_crm_ai_field_of_leads_and_customers_is_for_salespeople(self):
        """A new ai_* field without groups would be readable by every user with access to the
        record: portal customers (their partner) and resellers (their leads)."""
        allowed = {"sales_team.group_sale_salesman", "sales_team.group_sale_salesman_all_leads",
                   "sales_team.group_sale_manager"}
        for model in ("crm.lead", "res.partner"):
            for name, field in self.env[model]._fields.items():
                if name.startswith("ai_"):
                    self.assertTrue(field.groups and set(field.groups.split(",")) <= allowed, f"{model}.{name}")

    def test_an_own_documents_salesperson_does_not_read_a_colleagues_sales_in_recommendations(self):
        alice = new_test_user(self.env, "crm_ai_rpc_alice", groups="sales_team.group_sale_salesman")
        bob = new_test_user(self.env, "crm_ai_rpc_bob", groups="sales_team.group_sale_salesman")
        customer = self.env["res.partner"].create({"name": "crm_ai rpc buyer", "is_company": True})
        mine, theirs, new = self.env["product.product"].create([{"name": f"crm_ai rpc {n}"} for n in "abc"])
        for product, seller in ((mine, alice), (theirs, bob)):
            order = self.env["sale.order"].create({"partner_id": customer.id, "user_id": seller.id, "order_line": [
                (0, 0, {"product_id": product.id, "product_uom_qty": 1})]})
            self.env.flush_all()
            self.env.cr.execute("UPDATE sale_order SET state = 'sale' WHERE id = %s", (order.id,))
            self.env.cr.execute("UPDATE sale_order_line SET state = 'sale' WHERE order_id = %s", (order.id,))
        row = {"partner_id": customer.id, "company_id": self.company.id, "list_type": "reorder", "reason": "bought"}
        rows = self.env["crm.ai.recommendation"].create([
            {**row, "rank": 1, "product_id": mine.id}, {**row, "rank": 2, "product_id": theirs.id},
            {**row, "rank": 1, "list_type": "new", "product_id": new.id, "reason": "also_buy",
             "reason_product_id": theirs.id}])
        read = self._rpc(alice, "crm.ai.recommendation", "search_read", [("partner_id", "=", customer.id)])
        self.assertEqual({r["product_id"][0] for r in read}, {mine.id, new.id}, "Bob's sale is not listed to Alice")
        for field in ("reason_product_id", "rank", "score"):  # who bought it with, where it sits, how often
            self.assertNotIn(field, read[0])
        self.assertEqual(sorted(r["position"] for r in read), [1, 1])
        self.assertEqual({r["reason_text"] for r in read if r["list_type"] == "new"},
                         {"Customers who buy like this one buy this"})
        for row, field in ((rows[1], "product_id"), (rows[2], "reason_product_id")):
            with self.assertRaises(Fault, msg=field):
                self._rpc(alice, "crm.ai.recommendation", "read", [row.id], fields=[field])
        read = self._rpc(bob, "crm.ai.recommendation", "search_read", [("partner_id", "=", customer.id)],
                         fields=["product_id", "reason_text"])
        self.assertEqual({r["product_id"][0] for r in read}, {theirs.id, new.id})
        self.assertIn(theirs.name, {r["reason_text"] for r in read if r["product_id"][0] == new.id}.pop())
        read = self._rpc(alice, "res.partner", "read", [customer.id], fields=["ai_reorder_recommendation_ids"])
        self.assertEqual(read[0]["ai_reorder_recommendation_ids"], rows[0].ids)

    def test_an_own_documents_salesperson_does_not_read_a_colleagues_customer_messages(self):
        """A customer's sentiment excerpt quotes a message on Bob's lead: Ann (own documents)
        gets it by no RPC route, nor uses the stored excerpt as a search oracle."""
        ann = new_test_user(self.env, "crm_ai_rpc_ann", groups="sales_team.group_sale_salesman,base.group_allow_export")
        bob = new_test_user(self.env, "crm_ai_rpc_bob2", groups="sales_team.group_sale_salesman")
        customer = self.env["res.partner"].create({"name": "crm_ai rpc writer", "is_company": True})
        bobs_lead = self.env["crm.lead"].create({"name": "crm_ai rpc Bob's", "partner_id": customer.id, "user_id": bob.id})
        anns_lead = self.env["crm.lead"].create({"name": "crm_ai rpc Ann's", "partner_id": customer.id, "user_id": ann.id})
        for lead, body in ((bobs_lead, "Third time I ask for a quote. Very disappointed."),
                           (anns_lead, "Thanks, the demo was excellent!")):
            lead.with_context(mail_notify_force_send=False).message_post(
                body=body, author_id=customer.id, message_type="email", subtype_xmlid="mail.mt_comment")
        for task in ("lead_sentiment", "partner_sentiment"):
            self.env["crm.ai.driver"]._ai_score_pair(task, self.company)
        self.env.invalidate_all()
        self.assertIn("disappointed", customer.sudo().ai_sentiment_excerpt, "the premise")
        read = self._rpc(ann, "res.partner", "read", [customer.id],
                         fields=["ai_sentiment_label", "ai_sentiment_why", "ai_sentiment_why_words",
                                 "ai_sentiment_why_hidden"])[0]
        self.assertFalse(read["ai_sentiment_why"] or read["ai_sentiment_why_words"])
        self.assertTrue(read["ai_sentiment_why_hidden"])
        oracle = [("ai_sentiment_excerpt", "ilike", "disappointed")]
        for method, args, kwargs in (
                ("search_read", [oracle], {"fields": ["name"]}),
                ("search_read", [[("id", "=", customer.id)]], {"fields": ["name"], "order": "ai_sentiment_excerpt"}),
                ("read_group", [[("id", "=", customer.id)], ["ai_sentiment_excerpt"], ["ai_sentiment_excerpt"]], {}),
                ("export_data", [[customer.id], ["ai_sentiment_excerpt"]], {}),
                ("read", [[customer.id], ["ai_sentiment_evidence"]], {})):
            with self.assertRaises(Fault, msg=(method, kwargs)):
                self._rpc(ann, "res.partner", method, *args, **kwargs)
        with self.assertRaises(Fault):  # through the lead too
            self._rpc(ann, "crm.lead", "search_read", [("partner_id.ai_sentiment_excerpt", "ilike", "disappointed")],
                      fields=["name"])
        anns_message = anns_lead.message_ids.filtered(lambda m: m.author_id == customer)
        result = self._rpc(ann, "res.partner", "onchange", [customer.id], {"ai_sentiment_message": anns_message.id},
                           ["ai_sentiment_message"], {"ai_sentiment_why": {}, "ai_sentiment_why_words": {}})
        self.assertNotIn("disappointed", str(result))
        self.assertIn("disappointed", self._rpc(bob, "res.partner", "read", [customer.id],
                                                fields=["ai_sentiment_why"])[0]["ai_sentiment_why"])
