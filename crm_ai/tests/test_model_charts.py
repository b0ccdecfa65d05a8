import json

from odoo.tests import tagged

from .common import TestCrmAiCommon


@tagged("crm_ai", "post_install", "-at_install")
class TestModelCharts(TestCrmAiCommon):
    """The model form's pictures: input importance, reliability diagram, versions."""

    def test_charts_of_a_lead_propensity_model(self):
        first = self.Registry.browse(self._crm_ai_train()["model_id"])
        importance = json.loads(first.importance_chart)
        self.assertEqual((importance["type"], importance["horizontal"]), ("bar", True))
        self.assertEqual(importance["labels"][0], first.importance.splitlines()[0].rpartition(": ")[0])
        self.assertEqual(importance["datasets"][0]["data"], sorted(importance["datasets"][0]["data"], reverse=True))

        reliability = json.loads(first.reliability_chart)
        labels = [d["label"] for d in reliability["datasets"]]
        self.assertEqual(labels, ["This model", "Odoo PLS", "Perfect calibration"])
        ours = first.metrics["model"]["reliability"]
        self.assertEqual(sum(n for _p, _o, n in ours), first.n_holdout, "every holdout lead is in a bin")
        drawn = [{"x": round(100 * p, 1), "y": round(100 * o, 1)} for p, o, n in ours if n >= 10]
        self.assertEqual(reliability["datasets"][0]["data"], drawn, "bins of fewer than 10 leads are not drawn")
        # the bins' weighted gap is the calibration error the registry reports
        gap = sum(n * abs(p - o) for p, o, n in ours) / first.n_holdout
        self.assertAlmostEqual(gap, first.metrics["model"]["calibration_error"], places=3)
        self.assertNotIn("reliability", first.metrics_html, "bins are drawn, not tabled")
        # a holdout too small for any bin of 10 leads: no diagram (not a bare dashed line)
        small = {key: dict(first.metrics[key], reliability=[[p, o, min(n, 9)] for p, o, n in first.metrics[key]["reliability"]])
                 for key in ("model", "baseline")}
        first.sudo().write({"metrics": dict(first.metrics, **small)})
        self.assertFalse(first.reliability_chart)

        self.assertFalse(first.versions_chart, "one version: nothing to compare")
        second = self.Registry.browse(self._crm_ai_train()["model_id"])
        versions = json.loads(second.versions_chart)
        self.assertEqual(versions["labels"], ["v1", "v2"])
        self.assertEqual(versions["datasets"][0]["data"], [round(first.score, 4), round(second.score, 4)])
        self.assertEqual(versions["datasets"][1]["label"], "Odoo PLS")
