"""Customer segments: RFM clusters named by their meaning, per company.

The engine around ``ml.customer_value.RFMSegmenter`` (KMeans on log-scaled, robustly
standardised recency, frequency and monetary value; k chosen by silhouette in the
configured range; clusters named from their centroids).  "Training" fits the clusters
on the company's customers (weekly, by the train cron), measured by the silhouette of
the segments against the textbook RFM grid (every customer named by its own quintile
scores) on the same customers.  Scoring puts each partner in the nearest segment,
keeping its current one unless another is clearly closer, so a customer does not flip
segment on noise; a change is logged in ``crm.ai.segment.history`` and copied to the
customer's leads of that company.

Customers without a sale: "No purchase yet"; customers whose sales are all older than
the window: "Lost" (no order for that long).
"""

import logging
import time

import numpy as np
from psycopg2.errors import SerializationFailure
from threadpoolctl import threadpool_limits

from odoo import _
from odoo.tools import SQL

from ..ml.customer_value import NO_PURCHASE, RFM, RFMSegmenter, customer_features, rfm_grid_names
from .crm_ai_engine import CrmAiEngine, Param, TrainResult, register_engine
from .crm_ai_segment import CODE_OF_NAME, SEGMENT_CODES
from .customer_orders import DEFAULT_WINDOW_DAYS, CustomerValueEngine

_logger = logging.getLogger(__name__)

#: Range of the number of segments tried (k), as the engine's defaults.
DEFAULT_K_MIN, DEFAULT_K_MAX = 3, 8
K_LIMITS = (2, 12)
#: A customer keeps its segment unless another centroid is this much closer (relative).
STAY_MARGIN = 0.15


@register_engine
class CustomerSegmentEngine(CustomerValueEngine, CrmAiEngine):
    task = "customer_segment"
    label = "Customer segments"
    state_field = "ai_segment_state"
    date_field = "ai_segment_date"
    model_field = "ai_segment_model_id"
    value_fields = ("ai_segment_id", "ai_rfm_recency_days", "ai_rfm_frequency", "ai_rfm_monetary")
    primary_metric = "silhouette"
    primary_metric_label = "Silhouette"
    higher_is_better = True
    baseline_label = "RFM grid"
    libraries = ("scikit-learn", "numpy")
    params = {
        **CrmAiEngine.params,
        **CustomerValueEngine.params_common,
        "window_days": Param("int", DEFAULT_WINDOW_DAYS, minimum=30, maximum=3650),
        "k_min": Param("int", DEFAULT_K_MIN, minimum=K_LIMITS[0], maximum=K_LIMITS[1]),
        "k_max": Param("int", DEFAULT_K_MAX, minimum=K_LIMITS[0], maximum=K_LIMITS[1]),
    }

    def k_range(self):
        k_min, k_max = self.param("k_min"), self.param("k_max")
        return min(k_min, k_max), max(k_min, k_max)

    # -- training ---------------------------------------------------------------------------
    def min_customers(self):
        return max(self.param("min_customers"), 2 * self.k_range()[1])

    def data_shortfall(self):
        window = self.param("window_days")
        count = self.customer_count(days_from=window)
        minimum = self.min_customers()
        if count < minimum:
            return _("Not enough data: %(count)s customers with a confirmed sale order in the last %(days)s days, "
                     "%(min)s needed for segments.", count=count, days=window, min=minimum)
        return None

    def train(self, champion, champion_record):
        started = time.monotonic()
        now = self.now()
        X = customer_features(self.orders(until=now), now, self.param("window_days"))
        k_min, k_max = self.k_range()
        if len(X) < 2 * k_max:
            return TrainResult("insufficient_data", _("Not enough data: %(n)s customers for up to %(k)s segments.",
                                                      n=len(X), k=k_max))
        # the active segments' names carry over to clusters that barely moved.  KMeans on one
        # OpenMP thread: on 3 features its threads only wait on each other (2 cores: 1.5 s on
        # one thread, 2.5-33 s on two for 50,000 customers; bench/bench_customer_value_odoo.py)
        with threadpool_limits(limits=1, user_api="openmp"):
            segmenter = RFMSegmenter(k_min=k_min, k_max=k_max).fit(X, previous=champion)
        segmenter.window_days_ = self.param("window_days")
        names = segmenter.predict(X)
        grid = rfm_grid_names(X)
        metrics = {"silhouette": segmenter.silhouette(X, names), "segments": float(len(set(names)))}
        baseline = {"silhouette": segmenter.silhouette(X, grid), "segments": float(len(set(grid)))}
        champion_score = note = None
        if champion is not None:
            try:
                champion_score = segmenter.silhouette(X, champion.predict(X))
                note = _("active segments measured on the same customers")
            except Exception as error:  # an old model that cannot read today's data
                note = _("the active segments could not be measured: %s", error)
        shares = {name: float(np.mean(names == name)) for name in dict.fromkeys(segmenter.cluster_names_)}
        return TrainResult(
            "trained", estimator=segmenter, metrics=metrics, baseline_metrics=baseline,
            champion_score=champion_score, gate_note=note or "",
            counts={"customers": len(X), "seconds": time.monotonic() - started},
            n_train=len(X), n_holdout=len(X), train_date_to=now,
            hyperparameters="k=%s (silhouette by k: %s), window %s days" % (
                segmenter.k_, ", ".join(f"{k}: {v:.3f}" for k, v in segmenter.silhouettes_.items()),
                self.param("window_days")),
            # share of customers per segment, shown where other engines show feature importance
            importance=sorted(shares.items(), key=lambda item: -item[1]),
            feature_names=[_("Days since the last order"), _("Orders"), _("Revenue")],
        )

    # -- scoring -------------------------------------------------------------------------------
    def score(self, ids, estimator, model, now):
        commercial = self.commercial_partners(ids)
        customers = sorted(set(commercial.values()))
        orders = self.orders(customers, until=now)
        # the window the segments were fitted with (a changed setting applies from the next training)
        window = getattr(estimator, "window_days_", None) or self.param("window_days")
        X = customer_features(orders, now, window)
        bought = set(orders.loc[~orders["is_refund"], "partner"].unique())
        segments = self.env["crm.ai.segment"]._ai_segments(self.company)
        code_of_id = {seg_id: code for code, seg_id in segments.items()}
        previous = self.current_segments(customers)
        names = {}
        if len(X):
            old = [SEGMENT_CODES[code_of_id[previous[c]]][0] if previous.get(c) in code_of_id else None
                   for c in X.index]
            names = dict(zip(X.index, estimator.predict(X, previous=old, margin=STAY_MARGIN)))
        rfm = X[RFM].to_dict("index")
        # logged by after_write for the rows actually written
        self._segment_changes, values = {}, {name: [] for name in self.value_fields}
        new_segment = {}
        for customer in customers:
            if customer in names:
                name = names[customer]
            else:  # no sale in the window: never bought, or not for that long
                name = "Lost" if customer in bought else NO_PURCHASE
            new_segment[customer] = segments[CODE_OF_NAME[name]]
            if new_segment[customer] != previous.get(customer):
                self._segment_changes[customer] = (previous.get(customer), new_segment[customer])
        self._new_segments = new_segment
        for partner_id in ids:
            customer = commercial[partner_id]
            row = rfm.get(customer)
            values["ai_segment_id"].append(new_segment[customer])
            values["ai_rfm_recency_days"].append(int(round(row["recency_days"])) if row else None)
            values["ai_rfm_frequency"].append(int(row["frequency"]) if row else None)
            values["ai_rfm_monetary"].append(round(float(row["monetary"]), 2) if row else None)
        self._scored_at = now
        return values

    def current_segments(self, customers):
        """``{commercial partner id: its segment id in this company}``."""
        self.env.cr.execute(SQL("SELECT p.id, %s FROM res_partner p WHERE p.id = ANY(%s)",
                                self.column_sql("p", "ai_segment_id"), list(customers)))
        return {pid: seg for pid, seg in self.env.cr.fetchall() if seg}

    def after_write(self, written_ids):
        """Log the written customers' segment changes, and copy their segment to their
        leads of this company (rows users hold are skipped; the daily rescore retries)."""
        written = set(written_ids)
        changes = [(customer, old, new) for customer, (old, new) in self._segment_changes.items()
                   if customer in written]
        if changes:
            self.env.cr.execute(SQL(
                """INSERT INTO crm_ai_segment_history (partner_id, company_id, segment_from_id, segment_to_id, date,
                                                       create_uid, create_date, write_uid, write_date)
                   SELECT c, %(company)s, NULLIF(f, 0), t, %(now)s, %(uid)s, %(now)s, %(uid)s, %(now)s
                     FROM unnest(%(customers)s::int[], %(froms)s::int[], %(tos)s::int[]) AS v(c, f, t)""",
                company=self.company.id, now=self._scored_at, uid=self.env.uid,
                customers=[c for c, _o, _n in changes], froms=[o or 0 for _c, o, _n in changes],
                tos=[n for _c, _o, n in changes]))
        customers = [c for c in self._new_segments if c in written]
        if customers:
            self.copy_segments_to_leads(customers)

    def after_clear(self):
        """The company's customers have no segment any more: neither do their leads."""
        self.env["crm.lead"].flush_model(["ai_segment_id"])
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(SQL(
                    """UPDATE crm_lead SET ai_segment_id = NULL
                        WHERE id IN (SELECT id FROM crm_lead WHERE company_id = %s AND ai_segment_id IS NOT NULL
                                        FOR UPDATE SKIP LOCKED)""", self.company.id), log_exceptions=False)
        except SerializationFailure:
            _logger.info("crm_ai: leads edited while their segments were cleared: left for the next run")
        self.env["crm.lead"].invalidate_model(["ai_segment_id"])

    def copy_segments_to_leads(self, customers):
        """Set the customers' leads of this company to their new segment: only leads whose
        segment differs are locked (SKIP LOCKED), in a savepoint, so a lead a user saved
        meanwhile (repeatable read: a conflict) leaves the partners written and catches up
        at the next scoring."""
        self.env["crm.lead"].flush_model(["ai_segment_id", "partner_id", "company_id"])
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(SQL(
                    """UPDATE crm_lead l SET ai_segment_id = c.segment
                         FROM (SELECT l2.id, v.segment
                                 FROM unnest(%(customers)s::int[], %(segments)s::int[]) AS v(customer, segment)
                                 JOIN res_partner p2 ON p2.commercial_partner_id = v.customer
                                 JOIN crm_lead l2 ON l2.partner_id = p2.id
                                WHERE l2.company_id = %(company)s AND l2.ai_segment_id IS DISTINCT FROM v.segment
                                  FOR UPDATE OF l2 SKIP LOCKED) AS c
                        WHERE l.id = c.id""",
                    customers=customers, segments=[self._new_segments[c] for c in customers], company=self.company.id),
                    log_exceptions=False)
        except SerializationFailure:
            _logger.info("crm_ai: leads edited while their customers' segments changed: left for the next run")
        self.env["crm.lead"].invalidate_model(["ai_segment_id"])
