"""Repeat-purchase propensity: the chance that a customer confirms another sale order
within the horizon (90 days by default), with its reasons.

The engine around ``ml.customer_value.RepeatPurchaseModel`` (the additive binned
logistic model of lead propensity, over a customer's purchase history), learnt per
company by time travel: the customers as they were at past cut-offs, labelled by
whether they bought in the horizon after each.  Measured on the newest cut-off whose
horizon has fully passed (``today - horizon``: a later period than every training
label), against the RFM quintile score on the same customers.  Customers who never
bought get no propensity (this is *repeat* purchase): their segment says "No purchase
yet".
"""

import json
import time

import numpy as np
import pandas as pd
from sklearn.base import clone

from odoo import _
from odoo.tools.translate import LazyTranslate

from ..ml import binary_metrics
from ..ml.customer_value import (
    DAY,
    FEATURES,
    RepeatPurchaseModel,
    RFMQuintileBaseline,
    customer_features,
    purchase_labels,
    time_travel_frame,
    training_cutoffs,
)
from .crm_ai_engine import CrmAiEngine, Param, TrainResult, reads_all_sales, register_engine
from .customer_orders import CustomerValueEngine

_lt = LazyTranslate(__name__)

DEFAULT_HORIZON_DAYS = 90
#: Training snapshots, this many days apart (the newest ends where the holdout starts).
DEFAULT_SNAPSHOTS, SNAPSHOT_STEP_DAYS = 5, 30
#: A snapshot needs customers with some history: cut-offs closer than this to the first order are dropped.
MIN_HISTORY_DAYS = 30
REASONS_PER_SIDE = 5
REASON_MIN_POINTS = 0.5
#: "High repeat-purchase propensity" (search filter, kanban colour), in %.
HIGH_REPEAT_PROPENSITY = 60.0
FEATURE_LABELS = {
    "recency_days": _lt("Days since the last order"),
    "frequency": _lt("Orders"),
    "monetary": _lt("Revenue"),
    "tenure_days": _lt("Days since the first order"),
    "orders_90d": _lt("Orders in the last 90 days"),
    "orders_365d": _lt("Orders in the last 365 days"),
    "average_order": _lt("Average order"),
    "purchase_interval_days": _lt("Days between orders"),
    "overdue_ratio": _lt("Time since the last order, in usual intervals"),
    "months_active_365d": _lt("Months with an order, last year"),
}
assert set(FEATURE_LABELS) == set(FEATURES)


@register_engine
class RepeatPurchaseEngine(CustomerValueEngine, CrmAiEngine):
    task = "repeat_purchase"
    label = "Repeat-purchase propensity"
    state_field = "ai_propensity_state"
    date_field = "ai_propensity_date"
    model_field = "ai_propensity_model_id"
    value_fields = ("ai_propensity", "ai_propensity_reason_data")
    primary_metric = "auc"
    primary_metric_label = "AUC"
    higher_is_better = True
    baseline_label = "RFM quintile score"
    libraries = ("scikit-learn", "numpy")
    params = {
        **CrmAiEngine.params,
        **CustomerValueEngine.params_common,
        "horizon_days": Param("int", DEFAULT_HORIZON_DAYS, minimum=7, maximum=730),
        "snapshots": Param("int", DEFAULT_SNAPSHOTS, minimum=1, maximum=36),
    }

    def history_days(self):
        """How far back the oldest customers' orders must go: the holdout's horizon, one
        training horizon before it, and some history at the newest training cut-off."""
        return 2 * self.param("horizon_days") + MIN_HISTORY_DAYS

    # -- training -------------------------------------------------------------------------------
    def data_shortfall(self):
        days = self.history_days()
        count = self.customer_count(days_to=days)
        minimum = self.param("min_customers")
        if count < minimum:
            return _("Not enough data: %(count)s customers with a confirmed sale order older than %(days)s days "
                     "(two %(horizon)s-day horizons and a month of history), %(min)s needed.",
                     count=count, days=days, horizon=self.param("horizon_days"), min=minimum)
        return None

    def train(self, champion, champion_record):
        started = time.monotonic()
        now = self.now()
        horizon = self.param("horizon_days")
        orders = self.orders(until=now)
        holdout_cut = pd.Timestamp(now).normalize() - horizon * DAY
        first_order = orders["date"].min()
        cutoffs = [cut for cut in training_cutoffs(holdout_cut, horizon, self.param("snapshots"), SNAPSHOT_STEP_DAYS)
                   if cut >= first_order + MIN_HISTORY_DAYS * DAY]
        if not cutoffs:
            return TrainResult("insufficient_data", _("Not enough data: the first order (%(date)s) is too recent "
                                                      "for a %(days)s-day horizon.", date=first_order, days=horizon))
        X, y, age, cut = time_travel_frame(orders, cutoffs, horizon)
        if len(np.unique(y)) < 2:
            return TrainResult("insufficient_data", _(
                "Not enough data: in the training snapshots %(outcome)s customer bought again within %(days)s days.",
                outcome=_("every") if y.mean() > 0.5 else _("no"), days=horizon))
        X_holdout = customer_features(orders, holdout_cut)
        y_holdout = purchase_labels(orders, X_holdout.index, holdout_cut, horizon)
        trial = RepeatPurchaseModel(horizon_days=horizon).fit(X, y, age_days=age)
        metrics = binary_metrics(y_holdout, trial.predict_proba(X_holdout)[:, 1])
        newest = cut == max(cut)
        baseline = RFMQuintileBaseline().fit(X[newest], y[newest])
        baseline_metrics = binary_metrics(y_holdout, baseline.predict_proba(X_holdout)[:, 1])
        champion_score, note = self.champion_auc(champion_record, champion, X, y, age, X_holdout, y_holdout,
                                                 holdout_cut)
        # The deployed model also learns from the holdout period, with the hyper-parameters chosen above.
        X_all, y_all, age_all, _cut = time_travel_frame(orders, [*cutoffs, holdout_cut], horizon)
        final = RepeatPurchaseModel(C=trial.C_, half_life_days=trial.half_life_days_).fit(X_all, y_all,
                                                                                          age_days=age_all)
        labels = {name: self.env._(label) for name, label in FEATURE_LABELS.items()}
        return TrainResult(
            "trained", estimator=final, metrics=metrics, baseline_metrics=baseline_metrics,
            champion_score=champion_score, gate_note=note,
            counts={"customers": int(len(X_holdout)), "repeat_rate": float(np.mean(y_holdout)) if len(y_holdout) else None,
                    "snapshots": len(cutoffs), "seconds": time.monotonic() - started},
            n_train=len(y), n_holdout=len(y_holdout), holdout_date_from=holdout_cut.to_pydatetime(),
            holdout_date_to=pd.Timestamp(now).to_pydatetime(), train_date_to=pd.Timestamp(now).to_pydatetime(),
            hyperparameters="C=%g, recency half-life=%s, horizon %s days, %s snapshots" % (
                final.C_, f"{final.half_life_days_:g} days" if final.half_life_days_ else "none", horizon,
                len(cutoffs)),
            importance=final.importance(labels),
            feature_names=list(labels.values()),
        )

    def champion_auc(self, record, estimator, X, y, age, X_holdout, y_holdout, holdout_cut):
        """AUC of the active model on the new holdout; refitted on the new training
        snapshots (its recipe) when it learnt from labels inside the holdout period."""
        if estimator is None:
            return None, ""
        try:
            if record.train_date_to and pd.Timestamp(record.train_date_to) <= holdout_cut:
                note = _("active model scored on a holdout it never saw")
            else:
                estimator = clone(estimator).fit(X, y, age_days=age)
                note = _("active model's recipe refitted on the same snapshots, as it had seen the holdout")
            return binary_metrics(y_holdout, estimator.predict_proba(X_holdout)[:, 1])["auc"], note
        except Exception as error:  # an old model that cannot read today's data
            return None, _("the active model could not be measured: %s", error)

    # -- scoring --------------------------------------------------------------------------------
    def score(self, ids, estimator, model, now):
        commercial = self.commercial_partners(ids)
        orders = self.orders(sorted(set(commercial.values())), until=now)
        X = customer_features(orders, now)
        by_customer = {}
        if len(X):
            proba = np.round(100 * estimator.predict_proba(X)[:, 1], 2)
            explanations = estimator.explain(X, top=REASONS_PER_SIDE, min_points=REASON_MIN_POINTS)
            for customer, p, reasons in zip(X.index, proba, explanations):
                by_customer[customer] = (float(p), json.dumps(
                    [{"field": r["field"], "value": r["value"], "points": round(r["points"], 2)} for r in reasons]))
        none = (None, None)  # never bought: no repeat-purchase propensity
        return {
            "ai_propensity": [by_customer.get(commercial[i], none)[0] for i in ids],
            "ai_propensity_reason_data": [by_customer.get(commercial[i], none)[1] for i in ids],
        }


def describe_customer_reasons(env, reason_data):
    """Stored reasons (JSON text) in words, in ``env``'s language: ``[{"label", "value", "points"}]``.

    Every figure is made of the customer's orders, whoever sold them: shown to users who read
    every sale order, else ``value`` None (the reason and its direction, not the figure)."""
    every_sale = reads_all_sales(env)
    try:
        reasons = json.loads(reason_data) if reason_data else []
    except ValueError:
        return []
    return [{"label": env._(FEATURE_LABELS[r["field"]]) if r.get("field") in FEATURE_LABELS else r.get("field"),
             "value": r.get("value") if every_sale else None, "points": r.get("points", 0.0)}
            for r in reasons if isinstance(r, dict)]
