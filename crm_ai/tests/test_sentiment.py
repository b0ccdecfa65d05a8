"""Sentiment on leads and partners: what is read, incrementally, per company."""

import importlib.util
from pathlib import Path

from odoo import SUPERUSER_ID
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, new_test_user, tagged

from odoo.addons.crm_ai.models.engine_sentiment import CHAIN_VERSION

NEGATIVE_TEXT = "This is the third time I ask for a quote. Very disappointed."
POSITIVE_TEXT = "Thank you, the demo was excellent and the team is great!"


@tagged("crm_ai", "post_install", "-at_install")
class TestSentiment(TransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.Driver = cls.env["crm.ai.driver"]
        cls.customer = cls.env["res.partner"].create({"name": "crm_ai sentiment customer", "is_company": True})
        cls.contact = cls.env["res.partner"].create({"name": "crm_ai sentiment contact", "parent_id": cls.customer.id})
        cls.employee = new_test_user(cls.env, "crm_ai_sentiment_employee", groups="sales_team.group_sale_salesman")
        cls.lead = cls.env["crm.lead"].create({"name": "crm_ai sentiment lead", "partner_id": cls.customer.id})

    def post(self, record, body, author=None, message_type="email", subtype="mail.mt_comment"):
        # queued, not sent: the test database has no outgoing mail server nor sender address
        return record.with_context(mail_notify_force_send=False).message_post(
            body=body, author_id=(author or self.contact).id, message_type=message_type, subtype_xmlid=subtype)

    def scored_an_hour_ago(self):
        """As if the last run were an hour ago and nothing had changed since (inside one
        test transaction every write has the same now())."""
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET ai_sentiment_scored_date = now() AT TIME ZONE 'UTC' - interval '1 hour',"
                            " write_date = now() AT TIME ZONE 'UTC' - interval '2 hours' WHERE id = %s", (self.lead.id,))
        self.env.cr.execute("UPDATE mail_message SET create_date = now() AT TIME ZONE 'UTC' - interval '2 hours', "
                            "write_date = now() AT TIME ZONE 'UTC' - interval '2 hours' "
                            "WHERE model = 'crm.lead' AND res_id = %s", (self.lead.id,))
        self.env.invalidate_all()

    def score(self, company=None):
        for task in ("lead_sentiment", "partner_sentiment"):
            self.Driver._ai_score_pair(task, company or self.company)
        self.env.invalidate_all()

    def test_only_what_the_customer_wrote_counts(self):
        self.post(self.lead, NEGATIVE_TEXT)
        self.post(self.lead, "Great news, they will surely sign, excellent!", message_type="comment",
                  subtype="mail.mt_note")  # an internal note
        self.post(self.lead, "Wonderful, fantastic, we love this customer!", author=self.employee.partner_id)
        self.post(self.lead, "Amazing offer, the best!", message_type="email_outgoing")
        # a template sent "from the company": authored by the company's own partner, no user
        self.post(self.lead, "We are excited to work with you, wonderful!", author=self.company.partner_id)
        self.lead.message_post(body="Superb!", message_type="notification")
        self.score()
        self.assertEqual(self.lead.ai_sentiment_label, "negative")
        self.assertEqual(self.lead.ai_sentiment_count, 1)
        self.assertIn("disappointed", self.lead.ai_sentiment_excerpt)
        self.assertEqual(self.lead.ai_sentiment_evidence, "third time I ask, very disappointed")
        analysed = self.env["mail.message"].search([("model", "=", "crm.lead"), ("res_id", "=", self.lead.id),
                                                    ("ai_sentiment_label", "!=", False)])
        self.assertEqual(analysed.mapped("body"), ["<p>" + NEGATIVE_TEXT + "</p>"])

    def test_each_message_is_analysed_once_and_new_ones_move_the_score(self):
        first = self.post(self.lead, NEGATIVE_TEXT)
        self.score()
        self.assertEqual(self.lead.ai_sentiment_label, "negative")
        # a stored result is never recomputed: overwrite it and see it kept
        self.env.cr.execute("UPDATE mail_message SET ai_sentiment_score = -0.5 WHERE id = %s", (first.id,))
        before = self.lead.ai_sentiment
        self.scored_an_hour_ago()
        engine = self.Driver._ai_engine("lead_sentiment", self.company)
        model = self.env["crm.ai.model"]._ai_active("lead_sentiment", self.company)
        self.assertNotIn(self.lead.id, self.Driver._ai_pending_ids(engine, model), "nothing new: nothing to do")
        self.post(self.lead, POSITIVE_TEXT)
        self.assertIn(self.lead.id, self.Driver._ai_pending_ids(engine, model), "a new customer message")
        self.score()
        first.invalidate_recordset()
        self.assertAlmostEqual(first.ai_sentiment_score, -0.5, msg="analysed once")
        self.assertEqual(self.lead.ai_sentiment_count, 2)
        self.assertGreater(self.lead.ai_sentiment, before)
        self.assertGreater(self.lead.ai_sentiment_trend, 0)
        self.assertFalse(self.lead.ai_sentiment_worsened)
        self.scored_an_hour_ago()
        self.post(self.lead, "Terrible support, I am furious and will cancel.")
        self.score()
        self.assertTrue(self.lead.ai_sentiment_worsened)
        self.assertIn(self.lead, self.env["crm.lead"].search([("ai_sentiment_worsened", "=", True)]))
        self.assertEqual(self.lead.ai_sentiment_trend_label, "worsened")

    def test_a_new_reading_chain_reads_every_message_again(self):
        """An upgrade that changes the chain (phrases, weights) re-reads what the earlier one
        read: a customer's messages are all read the same way, and once."""
        message = self.post(self.lead, "Still waiting for the corrected invoice. This is the third time I ask.")
        self.score()
        self.assertEqual((message.ai_sentiment_label, message.ai_sentiment_version), ("negative", CHAIN_VERSION))
        # as the previous version left it: its reading (no sentiment word: neutral) and its registry row
        self.env.cr.execute("UPDATE mail_message SET ai_sentiment_label = 'neutral', ai_sentiment_score = NULL,"
                            " ai_sentiment_evidence = NULL, ai_sentiment_version = NULL WHERE id = %s", [message.id])
        self.env.cr.execute("UPDATE crm_ai_model SET hyperparameters = 'textblob+vader v2' WHERE id = %s",
                            [self.lead.ai_sentiment_model_id.id])
        # the earlier chain had read the lead as happy; the customer writes again
        self.env.cr.execute("UPDATE crm_lead SET ai_sentiment = 0.9, ai_sentiment_label = 'positive' WHERE id = %s",
                            [self.lead.id])
        self.scored_an_hour_ago()
        self.post(self.lead, "The invoice is still wrong.")
        self.score()
        self.assertEqual((message.ai_sentiment_label, message.ai_sentiment_version), ("negative", CHAIN_VERSION))
        self.assertFalse(self.lead.ai_sentiment_worsened, "a new reading is not a change of mood: no trend across versions")
        self.assertFalse(self.lead.ai_sentiment_trend)
        self.assertIn("Still waiting", message.ai_sentiment_evidence)
        self.assertEqual((self.lead.ai_sentiment_label, self.customer.ai_sentiment_label), ("negative", "negative"))
        self.assertIn(f"v{CHAIN_VERSION}", self.lead.ai_sentiment_model_id.hyperparameters)

    def test_other_languages_and_no_text_are_said_so(self):
        portuguese = self.env["crm.lead"].create({"name": "crm_ai lead pt", "partner_id": self.customer.id})
        self.post(portuguese, "Não gostei do produto, chegou quebrado e ninguém responde")
        silent = self.env["crm.lead"].create({"name": "crm_ai silent lead"})
        self.score()
        self.assertEqual(portuguese.ai_sentiment_label, "unsupported_language")
        self.assertFalse(portuguese.ai_sentiment_excerpt)
        self.assertEqual(silent.ai_sentiment_label, "no_text")
        message = portuguese.message_ids.filtered("ai_sentiment_label")
        self.assertEqual((message.ai_sentiment_label, message.ai_sentiment_language), ("unsupported_language", "pt"))

    def test_closed_leads_are_left_alone_but_count_for_their_customer(self):
        won_stage = self.env["crm.stage"].search([("is_won", "=", True)], limit=1)
        won = self.env["crm.lead"].create({"name": "crm_ai won lead", "partner_id": self.customer.id,
                                           "stage_id": won_stage.id})
        self.post(won, NEGATIVE_TEXT)
        self.score()
        self.assertFalse(won.ai_sentiment_label, "a won lead is not rescored every day")
        self.assertEqual(self.customer.ai_sentiment_label, "negative", "its messages still count for the customer")

    def test_the_description_counts_as_the_customers_first_text(self):
        complaint = "<p>Your last delivery was awful and late. We are very unhappy.</p>"
        # Odoo's website form creates the lead as the superuser; a portal or public user's is the customer's too
        website = self.env["crm.lead"].with_user(SUPERUSER_ID).create({"name": "crm_ai form", "description": complaint})
        public = self.env["crm.lead"].with_user(self.env.ref("base.public_user")).sudo().create(
            {"name": "crm_ai public", "description": complaint})
        # the mail gateway creates it as the superuser too, with the email as a message and no description:
        # a description there is what a salesperson wrote afterwards
        gateway = self.env["crm.lead"].with_user(SUPERUSER_ID).create({"name": "crm_ai by email"})
        self.post(gateway, "Hello, could you send me a quote?")
        gateway.description = "<p>Internal: he is a nightmare, rude and awful.</p>"
        self.score()
        for lead in (website, public):
            self.assertEqual((lead.ai_sentiment_label, lead.ai_sentiment_count), ("negative", 1), lead.name)
        self.assertNotIn("nightmare", gateway.ai_sentiment_excerpt or "")
        self.assertEqual(gateway.ai_sentiment_count, 1, "the email only")

    def test_a_partner_aggregates_its_leads_per_company(self):
        other = self.env["res.company"].create({"name": "crm_ai sentiment company B"})
        self.env.user.company_ids |= other
        lead_b = self.env["crm.lead"].with_company(other).create(
            {"name": "crm_ai lead in B", "partner_id": self.customer.id, "company_id": other.id})
        self.post(self.lead, NEGATIVE_TEXT)
        self.post(lead_b, POSITIVE_TEXT)
        self.score()
        self.score(other)
        in_a, in_b = self.customer.with_company(self.company), self.customer.with_company(other)
        self.assertEqual(in_a.ai_sentiment_label, "negative")
        self.assertEqual(in_b.ai_sentiment_label, "positive")
        self.assertEqual((in_a.ai_sentiment_count, in_b.ai_sentiment_count), (1, 1), "each company's leads only")
        self.assertEqual(self.contact.with_company(self.company).ai_sentiment_label, "negative",
                         "a contact shows its company's")
        self.assertEqual(lead_b.ai_sentiment_label, "positive")
        # a message on a contact's own chatter makes its company's customer pending
        self.env.flush_all()
        self.env.cr.execute("""UPDATE res_partner SET ai_sentiment_scored_date = jsonb_set(ai_sentiment_scored_date,
                                   ARRAY[%s], to_jsonb(to_char(now() AT TIME ZONE 'UTC' - interval '1 hour',
                                   'YYYY-MM-DD HH24:MI:SS'))), write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'
                                WHERE id = %s""", (str(self.company.id), self.customer.id))
        self.env.cr.execute("UPDATE mail_message SET write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'")
        self.env.cr.execute("UPDATE crm_lead SET write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'")
        self.env.invalidate_all()
        engine = self.Driver._ai_engine("partner_sentiment", self.company)
        model = self.env["crm.ai.model"]._ai_active("partner_sentiment", self.company)
        self.assertNotIn(self.customer.id, self.Driver._ai_pending_ids(engine, model))
        self.post(self.contact, "Awful service, I am very angry.")
        self.assertIn(self.customer.id, self.Driver._ai_pending_ids(engine, model))

    def test_a_lead_given_to_another_customer_moves_its_words_at_the_next_run(self):
        other = self.env["res.partner"].create({"name": "crm_ai other customer", "is_company": True})
        self.post(self.lead, NEGATIVE_TEXT)
        self.score()
        self.assertEqual((self.customer.ai_sentiment_label, other.ai_sentiment_label), ("negative", "no_text"))
        self.env.flush_all()  # an hour later, nothing changed since
        self.env.cr.execute("""UPDATE res_partner SET ai_sentiment_scored_date = jsonb_set(ai_sentiment_scored_date,
                                   ARRAY[%s], to_jsonb(to_char(now() AT TIME ZONE 'UTC' - interval '1 hour',
                                   'YYYY-MM-DD HH24:MI:SS'))), write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'
                                WHERE id IN %s""", (str(self.company.id), (self.customer.id, other.id)))
        self.env.cr.execute("UPDATE mail_message SET write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'")
        self.env.cr.execute("UPDATE crm_lead SET write_date = now() AT TIME ZONE 'UTC' - interval '2 hours'")
        self.env.invalidate_all()
        engine = self.Driver._ai_engine("partner_sentiment", self.company)
        model = self.env["crm.ai.model"]._ai_active("partner_sentiment", self.company)
        self.assertFalse({self.customer.id, other.id} & set(self.Driver._ai_pending_ids(engine, model)))
        self.lead.partner_id = other
        pending = set(self.Driver._ai_pending_ids(engine, model))
        self.assertIn(other.id, pending, "the lead and its messages came to him")
        self.assertIn(self.customer.id, pending, "his excerpt quotes a lead that is no longer his")
        self.score()
        self.assertEqual((self.customer.ai_sentiment_label, other.ai_sentiment_label), ("no_text", "negative"))

    def test_nobody_forges_a_sentiment(self):
        salesman = new_test_user(self.env, "crm_ai_sentiment_salesman", groups="sales_team.group_sale_salesman_all_leads")
        message = self.post(self.lead, NEGATIVE_TEXT)
        for record, vals in ((self.lead, {"ai_sentiment_label": "positive"}), (self.lead, {"ai_sentiment": 1.0}),
                             (self.customer, {"ai_sentiment_excerpt": "All good"}),
                             (message, {"ai_sentiment_label": "positive"})):
            with self.assertRaises(AccessError):
                record.with_user(salesman).write(vals)
        manager = new_test_user(self.env, "crm_ai_sentiment_manager", groups="sales_team.group_sale_manager")
        for vals in ({"ai_sentiment_excerpt": "All good"}, {"ai_sentiment_message": message.id}):
            with self.assertRaisesRegex(AccessError, "cannot be set by hand", msg=vals):  # not only the field's group
                self.customer.with_user(manager).write(vals)
        with self.assertRaises(AccessError):
            self.lead.with_user(salesman).with_context(mail_notify_force_send=False).message_post(
                body="forged", subtype_xmlid="mail.mt_comment").write({"ai_sentiment_score": 1.0})

    def test_upgrade_rescores_customer_excerpts_scored_without_their_message(self):
        """18.0.3.1 migration: an excerpt stored before the message id was gets scored again."""
        script = Path(__file__).parents[1] / "migrations" / "18.0.3.1.0" / "post-migrate.py"
        spec = importlib.util.spec_from_file_location("crm_ai_migration_18_0_3_1", script)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        message = self.post(self.lead, NEGATIVE_TEXT)
        other = self.env["res.partner"].create({"name": "crm_ai sentiment other customer", "is_company": True})
        self.post(self.env["crm.lead"].create({"name": "crm_ai other deal", "partner_id": other.id}), NEGATIVE_TEXT)
        self.score()
        self.assertEqual(self.customer.sudo().ai_sentiment_message, message.id)
        self.env.flush_all()
        company = str(self.company.id)
        self.env.cr.execute("UPDATE res_partner SET ai_sentiment_message = ai_sentiment_message - %s WHERE id = %s",
                            (company, self.customer.id))  # as scored by 18.0.3.0
        self.assertGreaterEqual(migration.mark_excerpts_without_message(self.env.cr), 1)
        self.env.cr.execute("SELECT id, ai_sentiment_state ? %s FROM res_partner WHERE id IN %s",
                            (company, (self.customer.id, other.id)))
        self.assertEqual(dict(self.env.cr.fetchall()), {self.customer.id: False, other.id: True},
                         "only the partner without its message id is marked")
        self.env.invalidate_all()
        pending = self.Driver._ai_pending_ids(self.Driver._ai_engine("partner_sentiment", self.company),
                                              self.env["crm.ai.model"].sudo()._ai_active("partner_sentiment",
                                                                                         self.company))
        self.assertIn(self.customer.id, pending)
        self.assertNotIn(other.id, pending)
        self.score()
        self.assertEqual(self.customer.sudo().ai_sentiment_message, message.id, "filled by the next run")
        self.assertEqual(migration.mark_excerpts_without_message(self.env.cr), 0)

    def test_scoring_is_silent(self):
        self.post(self.lead, NEGATIVE_TEXT)
        self.env.flush_all()
        self.env.cr.execute("UPDATE crm_lead SET write_date = '2020-01-01' WHERE id = %s", (self.lead.id,))
        messages = len(self.lead.message_ids)
        self.score()
        self.assertEqual(str(self.lead.write_date), "2020-01-01 00:00:00")
        self.assertEqual(len(self.lead.message_ids), messages)

    def test_the_registry_records_the_version_figures_and_libraries(self):
        self.post(self.lead, NEGATIVE_TEXT)
        self.score()
        model = self.lead.ai_sentiment_model_id
        self.assertEqual(model.state, "active")
        self.assertIn("textblob+vader", model.hyperparameters)
        self.assertGreater(model.score, model.baseline_score, "better than plain TextBlob on the files not tuned on")
        self.assertIn("accuracy_imdb", model.metrics["model"])
        self.assertIn("vaderSentiment", model.library_versions)
        self.assertIn("py3langid", model.library_versions)

    def test_a_lead_without_company_counts_for_its_customer_and_future_dates_are_arrival_dates(self):
        shared = self.env["crm.lead"].create({"name": "crm_ai no company", "partner_id": self.customer.id})
        shared.company_id = False
        message = self.post(shared, NEGATIVE_TEXT)
        self.post(self.lead, POSITIVE_TEXT)
        future = self.post(self.lead, "Great, excellent work, love it!")
        self.env.flush_all()
        # a sender's clock ten years ahead: the Date header is stored as it came
        self.env.cr.execute("UPDATE mail_message SET date = now() AT TIME ZONE 'UTC' + interval '3650 days'"
                            " WHERE id = %s", (future.id,))
        self.env.invalidate_all()
        self.score()
        self.assertEqual(self.customer.ai_sentiment_count, 3, "the company-less lead's message counts")
        self.assertEqual(self.customer.ai_sentiment_message, message.id)
        self.assertLessEqual(self.lead.ai_sentiment_date, future.create_date, "never dated in the future")

    def test_internal_notes_in_the_description_are_not_the_customers_words(self):
        salesman = new_test_user(self.env, "crm_ai_sentiment_notes", groups="sales_team.group_sale_salesman_all_leads")
        lead = self.env["crm.lead"].with_user(salesman).create({
            "name": "crm_ai notes", "description": "<p>Customer is furious, terrible relationship, awful.</p>"})
        self.score()
        self.assertEqual(lead.ai_sentiment_label, "no_text", "the Internal Notes of an employee's lead are not read")

    def test_an_edited_or_deleted_message_is_read_again(self):
        message = self.post(self.lead, NEGATIVE_TEXT, message_type="comment")  # a portal comment: editable
        self.score()
        self.assertEqual(self.lead.ai_sentiment_label, "negative")
        self.scored_an_hour_ago()
        message.write({"body": "<p>Sorry, all sorted now: excellent service, thank you!</p>"})
        self.env.flush_all()
        self.assertFalse(message.ai_sentiment_label, "the old reading is gone with the old text")
        self.score()
        self.assertEqual(self.lead.ai_sentiment_label, "positive")
        self.assertNotIn("disappointed", self.lead.ai_sentiment_excerpt or "")
        self.scored_an_hour_ago()
        self.lead._message_update_content(message.sudo(), "")  # "delete" in the chatter
        self.score()
        self.assertEqual(self.lead.ai_sentiment_label, "no_text")
        self.assertFalse(self.lead.ai_sentiment_excerpt)

    def test_a_customers_excerpt_is_shown_only_to_who_may_read_its_conversation(self):
        """A customer's sentiment reads the chatter of all its leads: a salesperson limited to
        their own leads must not read another salesperson's conversation through the customer."""
        own_docs = "sales_team.group_sale_salesman"  # "User: Own Documents Only"
        ann = new_test_user(self.env, "crm_ai_excerpt_ann", groups=own_docs)
        bob = new_test_user(self.env, "crm_ai_excerpt_bob", groups=own_docs)
        manager = new_test_user(self.env, "crm_ai_excerpt_manager", groups="sales_team.group_sale_manager")
        bobs_lead = self.env["crm.lead"].create({"name": "crm_ai Bob's deal", "partner_id": self.customer.id,
                                                 "user_id": bob.id})
        self.lead.user_id = ann
        message = self.post(bobs_lead, NEGATIVE_TEXT)
        anns_message = self.post(self.lead, POSITIVE_TEXT)
        self.score()
        stored = self.customer.sudo()
        self.assertIn("disappointed", stored.ai_sentiment_excerpt)
        self.assertEqual(stored.ai_sentiment_message, message.id)
        self.assertFalse(bobs_lead.with_user(ann).has_access("read"), "the premise: Ann cannot open Bob's lead")
        for user, shown in ((ann, False), (bob, True), (manager, True)):
            for partner in (self.customer, self.contact):  # a contact shows its company's
                partner = partner.with_user(user)
                self.assertEqual(bool(partner.ai_sentiment_why), shown, user.login)
                self.assertEqual(partner.ai_sentiment_why_words or False,
                                 shown and "third time I ask, very disappointed", user.login)
                self.assertEqual(partner.ai_sentiment_why_hidden, not shown, "and says so when hidden")
                self.assertEqual(partner.ai_sentiment_label, stored.ai_sentiment_label, "the label is for everyone")
        for user in (ann, bob):
            with self.assertRaises(AccessError, msg="the stored excerpt is for sales managers"):
                self.customer.with_user(user).read(["ai_sentiment_excerpt"])
        self.assertIn("disappointed", self.customer.with_user(manager).read(["ai_sentiment_excerpt"])[0]
                      ["ai_sentiment_excerpt"])
        # a form's values never stand in for the stored message: an onchange call naming a
        # message Ann may read (the customer's, on her lead) must not show her Bob's excerpt
        self.assertTrue(anns_message.sudo().ai_sentiment_label)
        spec = {name: {} for name in ("ai_sentiment_why", "ai_sentiment_why_words", "ai_sentiment_why_hidden")}
        for partner in (self.customer, self.contact):
            result = partner.with_user(ann).onchange({"ai_sentiment_message": anns_message.id},
                                                     ["ai_sentiment_message"], spec)
            self.assertNotIn("disappointed", str(result))
        # edited since it was read: its old words are no longer quoted, to anyone
        message.sudo().write({"body": "<p>Sorted now, thanks.</p>"})
        self.env.invalidate_all()
        for read_again in (False, True):  # nor once the new text is read (before the customer is scored again)
            if read_again:  # Bob's lead scored before the edit (one transaction: one now())
                self.env.flush_all()
                self.env.cr.execute("UPDATE crm_lead SET ai_sentiment_scored_date = ai_sentiment_scored_date "
                                    "- interval '1 hour' WHERE id = %s", (bobs_lead.id,))
                self.Driver._ai_score_pair("lead_sentiment", self.company)
                self.env.invalidate_all()
                self.assertTrue(message.sudo().ai_sentiment_label)
                self.assertIn("disappointed", self.customer.sudo().ai_sentiment_excerpt, "the premise")
            for user in (bob, manager, ann):
                self.assertFalse(self.customer.with_user(user).ai_sentiment_why, user.login)
                self.assertFalse(self.customer.with_user(user).ai_sentiment_why_hidden, "not hidden: gone")
        # the message gone, so is the excerpt (the id is no many2one: nothing to clean up)
        message.sudo().unlink()
        self.env.invalidate_all()
        self.assertFalse(self.customer.with_user(bob).ai_sentiment_why)
        self.assertFalse(self.customer.with_user(ann).ai_sentiment_why_hidden)
