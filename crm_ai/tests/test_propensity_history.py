import json
from datetime import timedelta

from lxml import etree

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools.safe_eval import safe_eval

from .common import TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestPropensityHistory(TestCrmAiCommon):
    """A lead's propensity over time: one row per move, the 7-day trend, what changed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model = cls.Registry.browse(cls._crm_ai_train()["model_id"])
        cls.History = cls.env["crm.ai.propensity.history"]

    def _score(self):
        return self.Registry._cron_ai_score(time_budget=1e9)

    def _rescore(self, leads):
        """Score ``leads`` again (as the daily rescore does)."""
        self.env.cr.execute("UPDATE crm_lead SET ai_propensity_state = 'pending' WHERE id = ANY(%s)", [leads.ids])
        leads.invalidate_recordset()
        self._score()
        leads.invalidate_recordset()
        self.History.invalidate_model()

    def _age_history(self, lead, days, propensity=None, reason_data=None):
        """Pretend the lead's rows were written ``days`` earlier (and with that score / reasons)."""
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_ai_propensity_history SET date = date - %s * interval '1 day'"
                            " WHERE lead_id = %s", (days, lead.id))
        if propensity is not None:
            self.env.cr.execute("UPDATE crm_ai_propensity_history SET propensity = %s, reason_data = %s::jsonb"
                                " WHERE lead_id = %s", (propensity, json.dumps(reason_data or []), lead.id))
        self.History.invalidate_model()

    def test_first_score_is_logged_and_has_no_trend_yet(self):
        self._score()
        for lead in self.open_leads:
            rows = lead.ai_propensity_history_ids
            self.assertEqual(len(rows), 1)
            self.assertEqual((rows.propensity, rows.model_id, rows.date, rows.company_id),
                             (lead.ai_propensity, self.model, lead.ai_propensity_date, lead.company_id))
            self.assertEqual(rows.reason_data, lead.ai_propensity_reason_data)
            self.assertFalse(lead.ai_propensity_trend_arrow)
        self.env.cr.execute("SELECT COUNT(*) FROM crm_lead WHERE id = ANY(%s) AND ai_propensity_trend IS NULL",
                            [self.open_leads.ids])
        self.assertEqual(self.env.cr.fetchone()[0], len(self.open_leads), "no score a week ago: no trend, not 0")

    def test_a_rescore_that_changes_nothing_adds_nothing(self):
        self._score()
        self._rescore(self.open_leads)
        self.assertEqual(self.History.search_count([("lead_id", "in", self.open_leads.ids)]), len(self.open_leads))

    def test_a_move_of_the_step_or_more_is_logged_and_makes_the_trend(self):
        self._score()
        rising, steady, small = self.open_leads[0], self.open_leads[1], self.open_leads[2]
        now_rising = rising.ai_propensity
        self._age_history(rising, 8, propensity=now_rising - 12)
        self._age_history(steady, 8)
        self._age_history(small, 8, propensity=small.ai_propensity - 1.5)  # under the 2-point step
        self._rescore(rising | steady | small)
        self.assertEqual(len(rising.ai_propensity_history_ids), 2)
        self.assertAlmostEqual(rising.ai_propensity_trend, 12, places=1)
        self.assertEqual(rising.ai_propensity_trend_arrow, "▲ +12")
        self.assertEqual(len(steady.ai_propensity_history_ids), 1)
        self.assertEqual(steady.ai_propensity_trend, 0.0)
        self.assertFalse(steady.ai_propensity_trend_arrow)
        self.assertEqual(len(small.ai_propensity_history_ids), 1, "a 1.5-point move is under the step")
        self.assertAlmostEqual(small.ai_propensity_trend, 1.5, places=1, msg="the trend still says it")
        Lead = self.env["crm.lead"]
        self.assertIn(rising, Lead.search([("ai_propensity_trend", ">=", 5)]), "the 'Propensity rising' filter")
        falling = self.env.ref("crm_ai.crm_lead_action_crm_ai_falling")
        self.assertIn("crm_ai_propensity_falling", falling.context)

    def test_won_and_lost_leads_leave_the_trend_filters_and_the_falling_report(self):
        """A closed lead is no longer scored: its last trend must not keep it "falling"."""
        self._score()
        still_open, won, lost = self.open_leads[0], self.open_leads[1], self.open_leads[2]
        for lead in still_open | won | lost:
            self._age_history(lead, 8, propensity=lead.ai_propensity + 12)  # 12 points higher a week ago
        self._rescore(still_open | won | lost)
        won.action_set_won()
        lost.action_set_lost()
        Lead = self.env["crm.lead"].with_context(active_test=False)  # as the "Lost" filter shows them
        arch = etree.fromstring(Lead.get_views([(False, "search")])["views"]["search"]["arch"])
        falling = self.env.ref("crm_ai.crm_lead_action_crm_ai_falling")
        for name, base in (("crm_ai_propensity_falling", safe_eval(falling.domain)),
                           ("crm_ai_propensity_falling", []), ("crm_ai_propensity_rising", [])):
            domain = safe_eval(arch.xpath(f"//filter[@name='{name}']")[0].get("domain"))
            if name.endswith("rising"):
                self.assertFalse(Lead.search([*domain, ("id", "in", (won | lost).ids)]))
                continue
            found = Lead.search([*base, *domain, ("id", "in", (still_open | won | lost).ids)])
            self.assertEqual(found, still_open, f"{name} {base}")
        self.assertEqual(still_open.ai_propensity_trend_arrow, "▼ %+d" % round(still_open.ai_propensity_trend))
        self.assertFalse(won.ai_propensity_trend_arrow)
        self.assertFalse(lost.ai_propensity_trend_arrow)

    def test_the_trend_compares_with_the_score_a_week_ago_not_the_latest_move(self):
        self._score()
        lead = self.open_leads[0]
        now_value = lead.ai_propensity
        self._age_history(lead, 10, propensity=now_value - 20)  # 10 days ago: 20 lower
        self.env.cr.execute(
            "INSERT INTO crm_ai_propensity_history (lead_id, company_id, date, propensity, model_id, reason_data)"
            " VALUES (%s, %s, %s, %s, %s, '[]'::jsonb)",
            (lead.id, lead.company_id.id, fields.Datetime.now() - timedelta(days=3), now_value - 4, self.model.id))
        self._rescore(lead)
        self.assertAlmostEqual(lead.ai_propensity_trend, 20, places=1, msg="7 days: against the 10-day-old score")
        self.assertEqual(len(lead.ai_propensity_history_ids), 3, "4 points above the latest row: a new row")

    def test_a_new_model_logs_every_lead_once(self):
        self._score()
        moved = self.open_leads[0]
        self._age_history(moved, 8, propensity=moved.ai_propensity - 12)  # 12 points lower by the old model
        for lead in self.open_leads[1:]:
            self._age_history(lead, 8)  # same score: only the model change can log a point
        second = self.Registry.browse(self._crm_ai_train()["model_id"])
        self._score()
        self.open_leads.invalidate_recordset()
        for lead in self.open_leads:
            self.assertEqual(lead.ai_propensity_history_ids.model_id, second | self.model)
        self.assertFalse(self.env["crm.lead"].search([("id", "in", self.open_leads.ids),
                                                     ("ai_propensity_trend", "!=", False)]),
                         "a retraining is not a move: no trend until the new model scored a lead twice")

    def test_old_rows_are_thinned_but_the_latest_is_kept(self):
        self._score()
        lead = self.open_leads[0]
        self._age_history(lead, 800, propensity=lead.ai_propensity - 30)
        self.env.cr.execute(
            "INSERT INTO crm_ai_propensity_history (lead_id, company_id, date, propensity, model_id, reason_data)"
            " VALUES (%s, %s, %s, %s, %s, '[]'::jsonb)",
            (lead.id, lead.company_id.id, fields.Datetime.now() - timedelta(days=400), lead.ai_propensity - 10,
             self.model.id))
        lonely = self.open_leads[1]
        self._age_history(lonely, 800, propensity=lonely.ai_propensity)  # its only row: kept
        self._rescore(lead | lonely)
        self.assertEqual(sorted(lead.ai_propensity_history_ids.mapped("propensity")),
                         [lead.ai_propensity - 10, lead.ai_propensity],
                         "older than a year: only the newest of those stays (the trend's base)")
        self.assertAlmostEqual(lead.ai_propensity_trend, 10, places=1)
        self._rescore(lead)
        self.assertAlmostEqual(lead.ai_propensity_trend, 10, places=1, msg="still a day later")
        self.assertEqual(len(lonely.ai_propensity_history_ids), 1, "a lead's only old row is never thinned")

    def test_training_thins_the_history_of_leads_no_longer_scored(self):
        closed = self.closed_leads[0]
        for days, value in ((800, 10.0), (500, 20.0), (30, 30.0)):
            self.env.cr.execute(
                "INSERT INTO crm_ai_propensity_history (lead_id, company_id, date, propensity, model_id, reason_data)"
                " VALUES (%s, %s, %s, %s, %s, '[]'::jsonb)",
                (closed.id, closed.company_id.id, fields.Datetime.now() - timedelta(days=days), value, self.model.id))
        self.History.invalidate_model()
        self._crm_ai_train()
        self.assertEqual(sorted(self.History.search([("lead_id", "=", closed.id)]).mapped("propensity")), [20.0, 30.0])

    def test_history_is_silent(self):
        self._score()
        lead = self.open_leads[0]
        self._age_history(lead, 8, propensity=lead.ai_propensity - 20)
        before = (lead.write_date, len(lead.message_ids))
        self._rescore(lead)
        self.assertEqual(len(lead.ai_propensity_history_ids), 2)
        self.assertEqual((lead.write_date, len(lead.message_ids)), before)

    def test_chart_labels_show_the_time_when_points_share_a_day(self):
        self._score()
        lead = self.open_leads[0]
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_ai_propensity_history SET date = date - interval '3 hours' WHERE lead_id = %s",
                            [lead.id])
        second = self.Registry.browse(self._crm_ai_train()["model_id"])
        self._score()  # a new model: a second point the same day
        self.assertEqual(lead.ai_propensity_history_ids.model_id, second | self.model)
        labels = json.loads(lead.ai_propensity_chart)["labels"]
        self.assertEqual(len(labels), 2)
        self.assertNotEqual(labels[0], labels[1], "same day: the time tells the points apart")

    def test_chart_and_what_changed(self):
        self._score()
        lead = self.open_leads[0]
        reasons = lead.ai_propensity_reason_data
        first = reasons[0]
        self.assertGreater(len(reasons), 1)
        second = reasons[1]
        old_reasons = [dict(first, points=first["points"] - 7), dict(second, value="crm_ai old value"),
                       {"field": "x_crm_ai_gone", "value": "1234", "points": -3.0}]
        self._age_history(lead, 8, propensity=lead.ai_propensity - 15, reason_data=old_reasons)
        self._rescore(lead)
        chart = json.loads(lead.ai_propensity_chart)
        self.assertEqual(chart["type"], "line")
        self.assertEqual(chart["datasets"][0]["data"], [round(lead.ai_propensity - 15, 1), round(lead.ai_propensity, 1)])
        self.assertEqual(len(chart["labels"]), 2)
        html = str(lead.ai_propensity_changes_html)
        self.assertIn("Since", html)
        self.assertIn("(+15)", html)
        self.assertIn("was %+d" % round(first["points"] - 7), html)
        self.assertIn("x_crm_ai_gone: 1234 (-3) gone", html)
        self.assertIn(", was crm_ai old value (", html, "a field whose value changed is one line")
        self.assertNotIn("crm_ai old value (%+d) gone" % round(second["points"]), html)

    def test_what_changed_is_each_leads_own_when_read_together(self):
        self._score()
        first, second = self.open_leads[0], self.open_leads[1]
        for lead, marker in ((first, "crm_ai marker one"), (second, "crm_ai marker two")):
            self._age_history(lead, 8, propensity=lead.ai_propensity - 10,
                              reason_data=[{"field": "x_crm_ai_gone", "value": marker, "points": -3.0}])
        self._rescore(first | second)
        both = self.env["crm.lead"].browse([second.id, first.id])  # one compute for both, second first
        html = {lead.id: str(lead.ai_propensity_changes_html) for lead in both}
        self.assertIn("crm_ai marker one", html[first.id])
        self.assertNotIn("crm_ai marker two", html[first.id])
        self.assertIn("crm_ai marker two", html[second.id])
        self.assertNotIn("crm_ai marker one", html[second.id])

    def test_salespeople_see_the_history_of_the_leads_they_see(self):
        self._score()
        own_only = new_test_user(self.env, "crm_ai_own_docs", groups="sales_team.group_sale_salesman")
        mine, theirs = self.open_leads[0], self.open_leads[1]
        mine.user_id = own_only
        History = self.History.with_user(own_only)
        self.assertEqual(History.search([]).lead_id, mine)
        with self.assertRaises(AccessError):
            History.create({"lead_id": mine.id, "date": fields.Datetime.now(), "propensity": 99})
        with self.assertRaises(AccessError):
            History.search([("lead_id", "=", mine.id)]).write({"propensity": 99})
        all_leads = new_test_user(self.env, "crm_ai_all_docs", groups="sales_team.group_sale_salesman_all_leads")
        self.assertIn(theirs, self.History.with_user(all_leads).search([]).lead_id)
        portal = new_test_user(self.env, "crm_ai_portal_history", groups="base.group_portal")
        with self.assertRaises(AccessError):
            self.History.with_user(portal).search([])
        other = self.env["res.company"].create({"name": "crm_ai other company (history)"})
        stranger = new_test_user(self.env, "crm_ai_other_history", groups="sales_team.group_sale_salesman_all_leads",
                                 company_id=other.id, company_ids=[(6, 0, other.ids)])
        self.assertFalse(self.History.with_user(stranger).search([]))
        # a lead moved to the other company takes its history along
        theirs.write({"company_id": other.id, "user_id": False})
        self.assertEqual(self.History.search([("lead_id", "=", theirs.id)]).company_id, other)
        self.assertEqual(self.History.with_user(stranger).search([]).lead_id, theirs)
