"""Customer value: RFM features, named RFM segments, and repeat-purchase propensity.

Pure pandas / scikit-learn (no Odoo).  Input is one row per order::

    orders: DataFrame with columns partner, date (datetime), amount (float; refunds
            negative), is_refund (bool; optional, default amount < 0)

* :func:`customer_features` describes every customer as of a date (recency, frequency,
  monetary value and the purchase rhythm), from orders before that date only.
* :class:`RFMSegmenter` clusters log-scaled, standardised R, F, M with KMeans (k chosen
  by silhouette in a range) and names each cluster from the meaning of its centroid
  (Champions, Loyal, ... Lost), so names do not depend on k nor on cluster numbers;
  ``predict`` keeps a customer's previous segment unless another is clearly closer.
* Repeat purchase ("at least one order within ``horizon`` days") is learnt by time
  travel: :func:`time_travel_frame` stacks snapshots (features as of past cut-offs,
  labels from the horizon after each); :class:`RepeatPurchaseModel` is an additive
  logistic model over binned features with exact reasons, measured against
  :class:`RFMQuintileBaseline`, the classic R + F + M quintile score.
"""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_is_fitted

from .propensity import LeadPropensityModel

DAY = pd.Timedelta(days=1)

#: Features of a customer as of a date (name -> words for reasons).
FEATURES = {
    "recency_days": "Days since the last order",
    "frequency": "Orders",
    "monetary": "Revenue",
    "tenure_days": "Days since the first order",
    "orders_90d": "Orders in the last 90 days",
    "orders_365d": "Orders in the last 365 days",
    "average_order": "Average order",
    "purchase_interval_days": "Days between orders",
    "overdue_ratio": "Time since the last order, in usual intervals",
    "months_active_365d": "Months with an order, last year",
}
RFM = ["recency_days", "frequency", "monetary"]

#: The segments, best first: name -> what it means (for people).  ``segment_name`` maps a
#: centroid's R and F scores (1 = worst fifth of customers, 5 = best fifth) to one of them.
SEGMENTS = {
    "Champions": "Bought recently, buy often and spend the most.",
    "Loyal": "Buy often and recently enough; respond to loyalty offers.",
    "Potential loyalists": "Recent customers with a few orders: could become loyal.",
    "New": "First order very recently.",
    "Need attention": "Average recency and frequency: not ordering as they used to.",
    "At risk": "Used to buy often, but not for a while.",
    "Can't lose them": "Were among the biggest and most frequent buyers, but long gone.",
    "Hibernating": "Last order long ago, few orders.",
    "Lost": "Lowest recency and frequency: probably gone.",
}
NO_PURCHASE = "No purchase yet"


def _orders(orders):
    required = {"partner", "date", "amount"}
    missing = required - set(orders.columns)
    if missing:
        raise ValueError(f"orders misses columns {sorted(missing)}")
    orders = orders.copy()
    orders["date"] = pd.to_datetime(orders["date"])
    orders["amount"] = pd.to_numeric(orders["amount"], errors="coerce").fillna(0.0).astype(float)
    if "is_refund" not in orders:
        orders["is_refund"] = orders["amount"] < 0
    orders["is_refund"] = orders["is_refund"].fillna(False).astype(bool)
    return orders


def customer_features(orders, as_of, window_days=None):
    """One row per customer with at least one sale before ``as_of`` (index: partner).

    Frequency counts sales (refunds are not orders); monetary is sales minus refunds,
    so it can be negative.  ``window_days``: only orders in that many days before
    ``as_of`` count (customers silent over the window are left out).

    >>> orders = pd.DataFrame({"partner": [1, 1, 2], "amount": [10.0, 30.0, -5.0],
    ...                        "date": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-02-01"])})
    >>> f = customer_features(orders, pd.Timestamp("2024-03-11"))
    >>> f.loc[1, ["recency_days", "frequency", "monetary", "purchase_interval_days"]].tolist()
    [10.0, 2.0, 40.0, 60.0]
    >>> list(f.index)  # partner 2 only has a refund: no purchase yet
    [1]
    """
    as_of = pd.Timestamp(as_of)
    orders = _orders(orders)
    orders = orders[orders["date"] < as_of]
    if window_days:
        orders = orders[orders["date"] >= as_of - window_days * DAY]
    sales = orders[~orders["is_refund"]]
    if sales.empty:
        return pd.DataFrame(columns=list(FEATURES), dtype=float).rename_axis("partner")
    by = sales.groupby("partner")
    features = pd.DataFrame({
        "recency_days": (as_of - by["date"].max()) / DAY,
        "frequency": by.size().astype(float),
        "tenure_days": (as_of - by["date"].min()) / DAY,
    })
    features["monetary"] = orders.groupby("partner")["amount"].sum().reindex(features.index).fillna(0.0)
    for days in (90, 365):
        recent = sales[sales["date"] >= as_of - days * DAY]
        features[f"orders_{days}d"] = recent.groupby("partner").size().reindex(features.index).fillna(0).astype(float)
    features["average_order"] = features["monetary"] / features["frequency"]
    # the usual gap between orders, and how many such gaps the customer has now been silent
    spans = features["tenure_days"] - features["recency_days"]
    features["purchase_interval_days"] = spans / (features["frequency"] - 1).where(features["frequency"] > 1)
    features["overdue_ratio"] = features["recency_days"] / features["purchase_interval_days"].where(
        features["purchase_interval_days"] > 0)
    last_year = sales[sales["date"] >= as_of - 365 * DAY]
    months = last_year.assign(month=last_year["date"].dt.to_period("M")).groupby("partner")["month"].nunique()
    features["months_active_365d"] = months.reindex(features.index).fillna(0).astype(float)
    return features[list(FEATURES)].astype(float).rename_axis("partner")


def purchase_labels(orders, partners, as_of, horizon_days):
    """1 when ``partner`` has a sale in ``[as_of, as_of + horizon_days)``, else 0."""
    as_of = pd.Timestamp(as_of)
    orders = _orders(orders)
    window = orders[(orders["date"] >= as_of) & (orders["date"] < as_of + horizon_days * DAY) & ~orders["is_refund"]]
    return np.isin(np.asarray(partners), window["partner"].unique()).astype(int)


def time_travel_frame(orders, cutoffs, horizon_days, window_days=None):
    """Stacked snapshots for training: ``(X, y, age_days, cutoff)``, oldest cut-off first.

    Each cut-off contributes every customer known then, described as of the cut-off and
    labelled by the ``horizon_days`` after it; ``age_days`` is the cut-off's age relative
    to the newest one (for recency weighting).  Every horizon must have ended by the
    last order in ``orders``' data, or labels would be missing, not negative: the
    caller picks the cut-offs.
    """
    cutoffs = sorted(pd.Timestamp(c) for c in cutoffs)
    frames, labels, ages, cuts = [], [], [], []
    for cut in cutoffs:
        features = customer_features(orders, cut, window_days)
        frames.append(features)
        labels.append(purchase_labels(orders, features.index, cut, horizon_days))
        ages.append(np.full(len(features), (cutoffs[-1] - cut) / DAY))
        cuts.append(np.full(len(features), cut))
    X = pd.concat(frames) if frames else pd.DataFrame(columns=list(FEATURES))
    return (X, np.concatenate(labels) if labels else np.array([], dtype=int),
            np.concatenate(ages) if ages else np.array([]), np.concatenate(cuts) if cuts else np.array([]))


def training_cutoffs(last_order, horizon_days, n_cutoffs=6, step_days=30):
    """``n_cutoffs`` cut-offs, ``step_days`` apart, oldest first, the newest one
    ``horizon_days`` before ``last_order`` (so every label window has fully passed).

    >>> [str(c.date()) for c in training_cutoffs("2024-12-31", 90, n_cutoffs=2)]
    ['2024-09-02', '2024-10-02']
    """
    newest = pd.Timestamp(last_order).normalize() - horizon_days * DAY
    return [newest - i * step_days * DAY for i in reversed(range(n_cutoffs))]


# -- segments ------------------------------------------------------------------------------
def rfm_scores(reference, X):
    """R, F, M scores from 1 (worst fifth of ``reference``) to 5 (best fifth).

    Recency is better when lower.  A value's rank is its mid-rank among the reference's
    (ties share the average position), so when half the customers ordered once they
    score 2 on F, not 1 or 3 depending on which side of the tie they fall.

    >>> ref = pd.DataFrame({"recency_days": [1.0, 2, 3, 4, 5], "frequency": [1.0, 1, 1, 1, 9],
    ...                     "monetary": [10.0, 20, 30, 40, 50]})
    >>> rfm_scores(ref, ref).to_numpy().tolist()
    [[5, 3, 1], [4, 3, 2], [3, 3, 3], [2, 3, 4], [1, 5, 5]]
    """
    scores = {}
    for col, sign in (("recency_days", -1), ("frequency", 1), ("monetary", 1)):
        ref = np.sort(sign * reference[col].to_numpy(dtype=float))
        values = sign * X[col].to_numpy(dtype=float)
        mid_rank = (np.searchsorted(ref, values, side="left") + np.searchsorted(ref, values, side="right")) / 2
        scores[col] = np.clip(np.floor(5 * mid_rank / len(ref)).astype(int) + 1, 1, 5)
    return pd.DataFrame({"r": scores["recency_days"], "f": scores["frequency"], "m": scores["monetary"]},
                        index=X.index)


def segment_name(r, f, m, bought_once=False):
    """The segment of a centroid with mean R, F, M scores ``r``, ``f``, ``m`` (1 to 5).

    The classic RFM map on the R x F plane, M telling apart the big spenders gone away.
    ``bought_once``: the cluster's typical (median) customer has one order.  F scores are
    mid-ranks, so when 40 % of the customers or more ordered once those all score F = 2
    and no centroid reaches the "few orders" end of F: recent one-order customers are New
    by their orders, not by a score the ties flattened.

    >>> segment_name(4.6, 4.5, 4.7), segment_name(4.7, 1.1, 1.5), segment_name(1.2, 1.3, 1.2)
    ('Champions', 'New', 'Lost')
    >>> segment_name(4.7, 2.0, 1.5), segment_name(4.7, 2.0, 1.5, bought_once=True)
    ('Potential loyalists', 'New')
    """
    if r >= 4 and f >= 4:
        return "Champions"
    if r >= 3 and f >= 3.5:
        return "Loyal"
    if r >= 3.5 and (f < 1.8 or bought_once):
        return "New"
    if r >= 3.5:
        return "Potential loyalists"
    if r >= 2.5 and f >= 2:
        return "Need attention"
    if r < 2.5 and f >= 4 and m >= 4:
        return "Can't lose them"
    if r < 2.5 and f >= 2.5:
        return "At risk"
    if r < 1.8 and f < 2.5:
        return "Lost"
    return "Hibernating"


def rfm_grid_names(X):
    """The textbook RFM segments, without clustering: every customer named by its own
    R, F, M quintile scores with :func:`segment_name` (the segmenter's baseline).

    >>> X = pd.DataFrame({"recency_days": [1.0, 300], "frequency": [9.0, 1], "monetary": [900.0, 10]})
    >>> rfm_grid_names(X).tolist()
    ['Champions', 'Hibernating']
    """
    scores = rfm_scores(X, X).to_numpy(dtype=float)
    once = X["frequency"].to_numpy(dtype=float) == 1
    return np.array([segment_name(*row, bought_once=o) for row, o in zip(scores, once)], dtype=object)


class RFMSegmenter(BaseEstimator):
    """KMeans on log-scaled, standardised R, F, M; clusters named by their meaning.

    Parameters
    ----------
    k_min, k_max : the range of cluster counts tried.  Among the k whose smallest cluster
        holds at least ``min_cluster_share`` of the customers and ``min_cluster_size``
        customers (a handful of extreme customers never make a segment of their own,
        however few customers there are), the largest k whose
        silhouette (on a sample of ``sample_size`` customers) is within
        ``silhouette_tolerance`` of the best wins: RFM data has weak cluster structure
        (near-equal silhouettes for neighbouring k), and taking the strict maximum would
        make k, and so the segments, flip between runs on noise; for the same reason a
        refit keeps the ``previous`` segmenter's k while it is within the tolerance.  When no k qualifies,
        the one whose smallest cluster is largest is taken and its clusters under the
        minimum are dissolved into their nearest neighbours.
    clip_sd : features are standardised robustly (median, interquartile range) and
        clipped to +/- ``clip_sd`` before clustering, so extreme customers, however
        many, sit at the edge of a cluster instead of claiming one.
    name_tolerance : on a refit, a cluster whose mean R, F, M scores are within this
        distance (in score points) of a cluster of the ``previous`` segmenter keeps that
        cluster's name: names come from thresholds on the centroids, and a centroid
        moving by a hair across one must not rename a segment between runs.
    random_state : KMeans and the silhouette sample are deterministic.

    Attributes: ``k_``, ``silhouettes_`` ({k: score}), ``cluster_names_``,
    ``cluster_scores_`` (mean R, F, M scores per cluster), ``centers_`` (scaled).
    """

    def __init__(self, *, k_min=3, k_max=8, sample_size=4000, min_cluster_share=0.02, min_cluster_size=5,
                 silhouette_tolerance=0.01, clip_sd=3.0, name_tolerance=0.5, random_state=0, n_init=10):
        self.k_min = k_min
        self.k_max = k_max
        self.sample_size = sample_size
        self.min_cluster_share = min_cluster_share
        self.min_cluster_size = min_cluster_size
        self.name_tolerance = name_tolerance
        self.silhouette_tolerance = silhouette_tolerance
        self.clip_sd = clip_sd
        self.random_state = random_state
        self.n_init = n_init

    def _raw(self, X):
        missing = set(RFM) - set(X.columns)
        if missing:
            raise ValueError(f"X misses columns {sorted(missing)}")
        values = X[RFM].to_numpy(dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError("R, F and M must be finite numbers.")
        # log scale; monetary below 0 (refunds larger than sales) counts as 0
        return np.column_stack([np.log1p(np.clip(values[:, 0], 0, None)), np.log1p(np.clip(values[:, 1], 0, None)),
                                np.log1p(np.clip(values[:, 2], 0, None))])

    def _scale(self, raw):
        return np.clip((raw - self.center_) / self.scale_, -self.clip_sd, self.clip_sd)

    def fit(self, X, y=None, previous=None):
        """Cluster ``X``'s customers; ``previous``: the segmenter these segments replace
        (its names are kept for clusters that barely moved, see ``name_tolerance``)."""
        if not self.k_min >= 2 or self.k_max < self.k_min:
            raise ValueError(f"need 2 <= k_min <= k_max, got {self.k_min}, {self.k_max}.")
        raw = self._raw(X)
        if len(raw) < 2 * self.k_max:
            raise ValueError(f"{len(raw)} customers are too few for up to {self.k_max} segments.")
        self.center_ = np.median(raw, axis=0)
        # the interquartile range of a normal distribution is 1.349 standard deviations
        spread = (np.quantile(raw, 0.75, axis=0) - np.quantile(raw, 0.25, axis=0)) / 1.349
        fallback = raw.std(axis=0)
        self.scale_ = np.where(spread > 0, spread, np.where(fallback > 0, fallback, 1.0))
        Z = self._scale(raw)
        rng = np.random.default_rng(self.random_state)
        sample = rng.choice(len(Z), size=min(self.sample_size, len(Z)), replace=False)
        minimum = max(2, self.min_cluster_size, self.min_cluster_share * len(Z))
        fits, fallback, self.silhouettes_ = {}, None, {}
        for k in range(self.k_min, self.k_max + 1):
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(Z)
            smallest = np.bincount(km.labels_, minlength=k).min()
            if fallback is None or smallest > fallback[0]:
                fallback = (smallest, k)
            fits[k] = km
            if smallest < minimum:
                continue
            self.silhouettes_[k] = float(silhouette_score(Z[sample], km.labels_[sample]))
        if self.silhouettes_:
            top = max(self.silhouettes_.values())
            candidates = [k for k, score in self.silhouettes_.items() if score >= top - self.silhouette_tolerance]
            # a refit keeps the previous k while it is still among the best (no flip on a new order)
            previous_k = getattr(previous, "k_", None)
            self.k_ = previous_k if previous_k in candidates else max(candidates)
        else:  # every k leaves a tiny cluster: the one whose smallest cluster is largest
            self.k_ = fallback[1]
        self.centers_, labels = self._dissolve_small_clusters(Z, fits[self.k_], minimum)
        self.k_ = len(self.centers_)
        scores = rfm_scores(X, X)
        self.reference_ = X[RFM].astype(float).copy()
        self.cluster_scores_ = np.array([scores[labels == c].mean().to_numpy() for c in range(self.k_)])
        frequency = X["frequency"].to_numpy(dtype=float)
        self.cluster_names_ = [segment_name(*s, bought_once=np.median(frequency[labels == c]) == 1)
                               for c, s in enumerate(self.cluster_scores_)]
        # where each name was given by the rule: an inherited name stays anchored there
        self.name_anchors_ = self.cluster_scores_.copy()
        if previous is not None and getattr(previous, "cluster_scores_", None) is not None:
            self._inherit_names(previous)
        return self

    @staticmethod
    def _dissolve_small_clusters(Z, km, minimum):
        """Centres and labels of ``km`` once every cluster under ``minimum`` customers is
        dissolved into the nearest remaining ones (at least two clusters stay): with few
        customers no k may be free of a tiny cluster, and a lone outlier must not get a
        segment of its own."""
        centers, labels = km.cluster_centers_, km.labels_
        sizes = np.bincount(labels, minlength=len(centers))
        keep = sizes >= minimum
        if keep.all():
            return centers, labels
        if keep.sum() < 2:
            keep = np.isin(np.arange(len(centers)), np.argsort(-sizes, kind="stable")[:2])
        centers = centers[keep]
        labels = np.linalg.norm(Z[:, None, :] - centers[None, :, :], axis=2).argmin(axis=1)
        centers = np.array([Z[labels == c].mean(axis=0) if (labels == c).any() else centers[c]
                            for c in range(len(centers))])
        return centers, labels

    def _inherit_names(self, previous):
        """Nearest pairs first (new cluster, old cluster within ``name_tolerance`` score
        points), each old cluster naming one new cluster at most.  Distances are taken to
        where the rule gave the old cluster its name (its anchor), not to where it last
        was: a name cannot drift by a tolerance per retraining away from its meaning."""
        anchors = getattr(previous, "name_anchors_", None)
        if anchors is None or len(anchors) != len(previous.cluster_scores_):
            anchors = previous.cluster_scores_
        gaps = np.linalg.norm(self.cluster_scores_[:, None, :] - np.asarray(anchors)[None, :, :], axis=2)
        taken_new, taken_old = set(), set()
        for flat in np.argsort(gaps, axis=None, kind="stable"):
            new, old = np.unravel_index(flat, gaps.shape)
            if gaps[new, old] > self.name_tolerance:
                break
            if new in taken_new or old in taken_old:
                continue
            taken_new.add(new)
            taken_old.add(old)
            self.cluster_names_[new] = previous.cluster_names_[old]
            if getattr(self, "name_anchors_", None) is not None:
                self.name_anchors_[new] = anchors[old]

    def _distances(self, X):
        check_is_fitted(self, "centers_")
        Z = self._scale(self._raw(X))
        return np.linalg.norm(Z[:, None, :] - self.centers_[None, :, :], axis=2)

    def predict(self, X, previous=None, margin=0.15):
        """Segment names of ``X``'s customers.

        ``previous``: their current segment names (None / NaN: none).  A customer stays
        in it when its nearest centroid of that segment is within ``1 + margin`` times
        the distance to the nearest centroid overall: noise does not flip segments.
        """
        distances = self._distances(X)
        names = np.asarray(self.cluster_names_, dtype=object)
        nearest = names[distances.argmin(axis=1)]
        if previous is None:
            return nearest
        previous = np.asarray(previous, dtype=object)
        limit = (1 + margin) * distances.min(axis=1)
        result = nearest.copy()
        for old in set(names):  # one vectorised pass per segment, not per customer
            rows = (previous == old) & (nearest != old)
            keep = rows & (distances[:, names == old].min(axis=1) <= limit)
            result[keep] = old
        return result

    def silhouette(self, X, names):
        """Silhouette of the grouping ``names`` of ``X``'s customers in this segmenter's
        scaled space, on its usual sample: how well separated any segmentation (this
        one, an older one, the RFM grid) is on the same customers.  None with fewer
        than two groups."""
        check_is_fitted(self, "centers_")
        Z = self._scale(self._raw(X))
        names = np.asarray(names, dtype=object)
        rng = np.random.default_rng(self.random_state)
        sample = rng.choice(len(Z), size=min(self.sample_size, len(Z)), replace=False)
        if len(set(names[sample])) < 2 or len(set(names[sample])) >= len(sample):
            return None
        return float(silhouette_score(Z[sample], names[sample]))

    def segment_summary(self, X, names):
        """Per segment: customers, and the median recency, frequency and monetary value."""
        frame = X[RFM].astype(float).assign(segment=np.asarray(names))
        summary = frame.groupby("segment").agg(customers=("frequency", "size"), recency_days=("recency_days", "median"),
                                               frequency=("frequency", "median"), monetary=("monetary", "median"))
        order = {name: i for i, name in enumerate(SEGMENTS)}
        return summary.sort_index(key=lambda idx: idx.map(order))


# -- repeat purchase -----------------------------------------------------------------------
class RFMQuintileBaseline(ClassifierMixin, BaseEstimator):
    """The classic RFM score (R + F + M quintile scores, 3 to 15) as a probability: the
    repeat rate of each score on the training rows (add-one smoothed)."""

    def fit(self, X, y):
        y = np.asarray(y).astype(int)
        self.reference_ = X[RFM].astype(float).copy()
        total = rfm_scores(self.reference_, X).sum(axis=1).to_numpy()
        self.rates_ = {s: (y[total == s].sum() + 1) / ((total == s).sum() + 2) for s in range(3, 16)}
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "rates_")
        total = rfm_scores(self.reference_, X).sum(axis=1).to_numpy()
        p = np.array([self.rates_[s] for s in total], dtype=float)
        return np.column_stack([1 - p, p])


class RepeatPurchaseModel(LeadPropensityModel):
    """Probability of another order within the horizon: the additive binned logistic
    model of lead propensity (exact reasons, recency-weighted snapshots) over
    :data:`FEATURES`.

    C and the recency half-life are chosen by log-loss on the newest snapshot (rows of
    ``age_days`` 0).  With ``horizon_days`` the candidates are fitted only on the
    snapshots whose label windows ended before it starts (age >= horizon): a snapshot one
    month older shares two months of the same customers' three-month label window with
    it, and validating on that overlap would favour short memories.
    """

    def __init__(self, *, categorical=(), multilabel=(), numeric=tuple(FEATURES), boolean=(),
                 C="auto", half_life_days="auto", min_frequency=5, n_bins=6, max_iter=1000, horizon_days=None):
        # the logistic family alone, uncalibrated: the repeat-purchase benchmark's set-up
        super().__init__(categorical=categorical, multilabel=multilabel, numeric=numeric, boolean=boolean, C=C,
                         half_life_days=half_life_days, min_frequency=min_frequency, n_bins=n_bins,
                         max_iter=max_iter, family="logistic", calibration=None)
        self.horizon_days = horizon_days

    def _choose_hyperparameters(self, X, y, age_days, sample_weight=None):
        if self.horizon_days is None or age_days is None:
            return super()._choose_hyperparameters(X, y, age_days, sample_weight)
        newest, earlier = age_days == 0, age_days >= self.horizon_days
        if min(np.bincount(y[newest], minlength=2)) < 20 or len(np.unique(y[earlier])) < 2:
            return super()._choose_hyperparameters(X, y, age_days, sample_weight)
        # the parent picks on its last rows: hand it the earlier snapshots, then the newest one
        order = np.concatenate([np.flatnonzero(earlier), np.flatnonzero(newest)])
        saved = self._validation_rows
        self._validation_rows = int(newest.sum())
        try:
            return super()._choose_hyperparameters(X.iloc[order].reset_index(drop=True), y[order], age_days[order],
                                                   None if sample_weight is None else sample_weight[order])
        finally:
            self._validation_rows = saved
