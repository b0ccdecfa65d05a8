"""A new engine is its own file plus a registration: two dummy engines prove it.

They are declared here, in the test, with custom (x_) fields created as an admin
would (Settings ▸ Technical ▸ Fields): nothing in crm_ai's driver, registry, crons or
security knows about them, yet they are trained, gated, signed, registered, scored in
committed batches, refused and marked like lead propensity.
"""

import numpy as np

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL, mute_logger

from odoo.addons.crm_ai.models.crm_ai_engine import CrmAiEngine, Param, TrainResult, register_engine, unregister_engine

from .common import TestCrmAiCommon

STATES = "[('pending', 'Pending'), ('scored', 'Scored'), ('stale', 'Stale'), ('insufficient_data', 'No data')]"


class NameLengthEngine(CrmAiEngine):
    """Predicts a partner's name length by the mean of the others' (trained, signed)."""

    task = "test_name_length"
    label = "Name length (test)"
    target_model = "res.partner"
    state_field, date_field, model_field = "x_ai_test_state", "x_ai_test_date", "x_ai_test_model_id"
    value_fields = ("x_ai_test_score",)
    primary_metric, primary_metric_label, higher_is_better = "mae", "MAE", False
    baseline_label = "Zero"
    libraries = ("numpy",)
    params = {**CrmAiEngine.params, "min_partners": Param("int", 3, minimum=1)}
    partner_ids = ()

    def scope_sql(self, alias):
        return SQL("%s.id = ANY(%s) AND %s", SQL.identifier(alias), list(self.partner_ids),
                   self.company_sql(SQL("%s.company_id", SQL.identifier(alias))))

    def _lengths(self):
        partners = self.records.browse(self.partner_ids).filtered(lambda p: p.company_id == self.company)
        return np.array([len(p.name) for p in partners], dtype=float)

    def data_shortfall(self):
        if len(self._lengths()) < self.param("min_partners"):
            return "Not enough partners"
        return None

    def train(self, champion, champion_record):
        lengths = self._lengths()
        mean = float(lengths.mean())
        return TrainResult(
            "trained", estimator={"mean": mean},
            metrics={"mae": float(np.abs(lengths - mean).mean())},
            baseline_metrics={"mae": float(np.abs(lengths).mean())},
            champion_score=float(np.abs(lengths - champion["mean"]).mean()) if champion else None,
            n_train=len(lengths), n_holdout=len(lengths), hyperparameters=f"mean={mean:g}")

    def score(self, ids, estimator, model, now):
        return {"x_ai_test_score": [estimator["mean"]] * len(ids)}


class ConstantEngine(NameLengthEngine):
    """An engine that does not train (think: a lexicon)."""

    task = "test_constant"
    label = "Constant (test)"
    state_field, date_field, model_field = "x_ai_const_state", "x_ai_const_date", "x_ai_const_model_id"
    value_fields = ("x_ai_const_score",)
    trains = False
    untrained_version = "lexicon-1"

    def untrained_estimator(self):
        return {"mean": 42.0}

    def score(self, ids, estimator, model, now):
        return {"x_ai_const_score": [estimator["mean"]] * len(ids)}


@tagged("crm_ai", "post_install", "-at_install")
class TestEngineFramework(TestCrmAiCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        partner_model = cls.env.ref("base.model_res_partner")
        for prefix in ("x_ai_test", "x_ai_const"):
            for name, ttype, extra in ((f"{prefix}_score", "float", {}),
                                       (f"{prefix}_state", "selection", {"selection": STATES}),
                                       (f"{prefix}_date", "datetime", {}),
                                       (f"{prefix}_model_id", "many2one", {"relation": "crm.ai.model"})):
                cls.env["ir.model.fields"].create({"name": name, "field_description": name, "ttype": ttype,
                                                   "model_id": partner_model.id, **extra})
        cls.partners = cls.env["res.partner"].create([
            {"name": name, "company_id": cls.company.id} for name in ("Ann", "Bobby", "Christopher", "Dee")])
        NameLengthEngine.partner_ids = ConstantEngine.partner_ids = tuple(cls.partners.ids)
        for engine in (NameLengthEngine, ConstantEngine):
            register_engine(engine)
            cls.addClassCleanup(unregister_engine, engine.task)
        cls._crm_ai_only(NameLengthEngine.task, ConstantEngine.task)  # this test is about the new engines

    def test_new_engine_is_driven_like_the_others(self):
        self.assertEqual(self.Driver._ai_tasks(), ["test_name_length", "test_constant"])
        results = {r["task"]: r for r in self.Registry._cron_ai_train() if r["company"] == self.company.id}
        self.assertEqual(results["test_name_length"]["status"], "active", results["test_name_length"]["message"])
        model = self.Registry.browse(results["test_name_length"]["model_id"])
        self.assertEqual((model.primary_metric, model.higher_is_better, model.baseline), ("MAE", False, "Zero"))
        self.assertLess(model.score, model.baseline_score)
        self.assertGreater(model.score_gain, 0, "lower is better: a smaller MAE is a gain")
        self.assertEqual(model.library_versions.split(" ")[0], "numpy")
        self.assertEqual(model._ai_load_estimator(), {"mean": 5.5})
        before = {p.id: p.write_date for p in self.partners}
        self.assertEqual(self.Registry._cron_ai_score(), (2 * len(self.partners), 0))
        self.env["res.partner"].invalidate_model()
        self.assertEqual(set(self.partners.mapped("x_ai_test_score")), {5.5})
        self.assertEqual(set(self.partners.mapped("x_ai_const_score")), {42.0})
        self.assertEqual(set(self.partners.mapped("x_ai_test_state")), {"scored"})
        self.assertEqual({p.id: p.write_date for p in self.partners}, before, "scores are silent")
        self.assertEqual(model.record_count, len(self.partners), "the smart button counts any target model")
        self.assertEqual(self.Registry._cron_ai_score(), (0, 0), "nothing changed")
        # a user's edit after the score (write_date is the transaction's start in a test)
        self.env.cr.execute("UPDATE res_partner SET x_ai_test_date = x_ai_test_date - interval '5 minutes',"
                            " x_ai_const_date = x_ai_const_date - interval '5 minutes' WHERE id = %s",
                            [self.partners[0].id])
        self.env["res.partner"].invalidate_model()
        self.partners[0].name = "Annabelle"
        self.assertEqual(self.Registry._cron_ai_score(), (2, 0), "an edit makes it pending for both engines")
        # the gate runs in the engine's direction: an equal model replaces the active one
        self.assertEqual(self.Driver._ai_train_unit("test_name_length", self.company)["status"], "active")
        self.assertEqual(model.state, "archived")

    def test_an_engines_fields_are_protected_whatever_their_name(self):
        """x_ai_test_* are not ai_* fields, yet being declared by an engine is enough."""
        user = new_test_user(self.env, "crm_ai_partner_editor", groups="base.group_partner_manager,base.group_user")
        partner = self.partners[0].with_user(user)
        for name in ("x_ai_test_score", "x_ai_test_state", "x_ai_test_date", "x_ai_const_score"):
            with self.assertRaisesRegex(AccessError, "cannot be set by hand", msg=name):
                partner.write({name: "scored" if name.endswith("state") else 1})
        partner.write({"name": "Ann B."})  # the partner's own fields still save

    def test_an_engine_of_an_addon_not_installed_here_is_not_driven(self):
        """Engines are registered per server process: another database's addon's engine
        must not run here, where its fields do not exist."""
        class Elsewhere(NameLengthEngine):
            task = "test_elsewhere"

        self.patch(Elsewhere, "module", classmethod(lambda cls: "crm_ai_not_installed_here"))
        register_engine(Elsewhere)
        self.addCleanup(unregister_engine, Elsewhere.task)
        self.assertNotIn("test_elsewhere", self.Driver._ai_tasks())
        self.assertIn("test_name_length", self.Driver._ai_tasks())
        # nor does the Settings status, which reads every engine's state (its columns are not here)
        self.patch(Elsewhere, "data_shortfall", lambda engine: 1 / 0)
        status = self.env["res.config.settings"].create({}).crm_ai_status
        self.assertIn(NameLengthEngine.label, status)

    def test_an_engine_on_an_unprotected_model_is_refused(self):
        class Unprotected(NameLengthEngine):
            task = "test_unprotected"
            target_model = "res.partner.category"

        register_engine(Unprotected)
        self.addCleanup(unregister_engine, Unprotected.task)
        with self.assertRaisesRegex(TypeError, "must inherit crm.ai.scored.mixin"):
            self.Driver._ai_engine(Unprotected.task, self.company)

    def test_untrained_engine_gets_a_registry_row_per_version(self):
        self.Registry._cron_ai_score()
        first = self.Registry._ai_active("test_constant", self.company)
        self.assertEqual((first.hyperparameters, first.version), ("lexicon-1", 1))
        self.assertEqual(first.record_count, len(self.partners))
        self.patch(ConstantEngine, "untrained_version", "lexicon-2")
        self.Registry._cron_ai_score()
        second = self.Registry._ai_active("test_constant", self.company)
        self.assertEqual((second.hyperparameters, second.version, first.state), ("lexicon-2", 2, "archived"))
        self.assertEqual(second.record_count, len(self.partners), "a new version rescores")

    def test_not_enough_data_and_refusal_are_generic(self):
        self.env["ir.config_parameter"].set_param("crm_ai.test_name_length.min_partners", "10")
        result = self.Driver._ai_train_unit("test_name_length", self.company)
        self.assertEqual(result["status"], "insufficient_data")
        self.env["res.partner"].invalidate_model()
        self.assertEqual(set(self.partners.mapped("x_ai_test_state")), {"insufficient_data"})
        self.env["ir.config_parameter"].set_param("crm_ai.test_name_length.min_partners", "2")
        model = self.Registry.browse(self.Driver._ai_train_unit("test_name_length", self.company)["model_id"])
        self.Registry._cron_ai_score()
        self.env["ir.config_parameter"].sudo().set_param("database.secret", "a-new-secret")
        self.env.cr.execute("UPDATE res_partner SET x_ai_test_date = x_ai_test_date - interval '2 days'"
                            " WHERE id = ANY(%s)", [self.partners.ids])
        self.env["res.partner"].invalidate_model()
        with mute_logger("odoo.addons.crm_ai.models.crm_ai_driver", "odoo.addons.crm_ai.models.crm_ai_model"):
            self.Registry._cron_ai_score()
        self.assertEqual(model.state, "refused")
        self.env["res.partner"].invalidate_model()
        self.assertEqual(set(self.partners.mapped("x_ai_test_state")), {"stale"})
        self.assertTrue(self.env["crm.ai.training"]._ai_status("test_name_length", self.company).is_due)
