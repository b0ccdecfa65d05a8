"""Customer value engine: RFM features, named segments, repeat-purchase propensity."""

import numpy as np
import pandas as pd
import pytest
from ml import binary_metrics
from ml.customer_value import (
    FEATURES,
    SEGMENTS,
    RepeatPurchaseModel,
    RFMQuintileBaseline,
    RFMSegmenter,
    customer_features,
    purchase_labels,
    rfm_grid_names,
    rfm_scores,
    segment_name,
    time_travel_frame,
    training_cutoffs,
)

AS_OF = pd.Timestamp("2024-07-01")


def _orders(rows):
    return pd.DataFrame(rows, columns=["partner", "date", "amount", "is_refund"]).assign(
        date=lambda f: pd.to_datetime(f["date"]))


def synthetic_customers(n_per_group=150, seed=0):
    """Four kinds of customers, as R (days since last order), F (orders), M (revenue)."""
    rng = np.random.default_rng(seed)
    groups = {  # recency, frequency, monetary (medians)
        "best": (5, 30, 20000), "recent_once": (10, 1, 150),
        "slipping": (120, 12, 6000), "gone": (330, 1, 80),
    }
    rows = []
    for kind, (r, f, m) in groups.items():
        for _ in range(n_per_group):
            rows.append({"kind": kind, "recency_days": max(0.0, rng.normal(r, r * 0.15 + 1)),
                         "frequency": max(1.0, round(rng.normal(f, f * 0.15))),
                         "monetary": max(1.0, rng.lognormal(np.log(m), 0.25))})
    return pd.DataFrame(rows)


# -- features --------------------------------------------------------------------------------
def test_features_subtract_refunds_and_skip_customers_without_a_sale():
    orders = _orders([
        (1, "2024-01-01", 100.0, False), (1, "2024-05-01", 300.0, False), (1, "2024-05-10", -50.0, True),
        (2, "2024-03-01", -20.0, True),                      # only a refund: no purchase yet
        (3, "2024-06-01", 10.0, False), (3, "2024-06-05", -400.0, True),  # refunds larger than sales
        (4, "2024-08-01", 999.0, False),                     # after the cut-off: unseen
    ])
    features = customer_features(orders, AS_OF)
    assert list(features.index) == [1, 3]
    first = features.loc[1]
    assert (first["frequency"], first["monetary"], first["recency_days"]) == (2, 350.0, 61.0)
    assert first["purchase_interval_days"] == 121.0 and first["overdue_ratio"] == pytest.approx(61 / 121)
    assert features.loc[3, "monetary"] == -390.0, "a negative value is kept, not hidden"
    assert np.isnan(features.loc[3, "purchase_interval_days"]), "one order: no interval"
    assert list(features.columns) == list(FEATURES)


def test_window_limits_the_history():
    orders = _orders([(1, "2023-01-01", 100.0, False), (1, "2024-06-01", 10.0, False), (2, "2023-02-01", 5.0, False)])
    features = customer_features(orders, AS_OF, window_days=365)
    assert list(features.index) == [1]
    assert features.loc[1, "frequency"] == 1 and features.loc[1, "monetary"] == 10.0


def test_refund_flag_defaults_to_negative_amounts_and_missing_columns_are_refused():
    orders = pd.DataFrame({"partner": [1, 1], "date": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                           "amount": [50.0, -20.0]})
    assert customer_features(orders, AS_OF).loc[1, "frequency"] == 1
    with pytest.raises(ValueError, match="misses columns"):
        customer_features(orders.drop(columns="amount"), AS_OF)


def test_labels_look_only_at_the_horizon_and_ignore_refunds():
    orders = _orders([(1, "2024-07-15", 10.0, False), (2, "2024-07-15", -10.0, True), (3, "2024-12-01", 5.0, False)])
    assert purchase_labels(orders, [1, 2, 3, 4], AS_OF, 90).tolist() == [1, 0, 0, 0]


def test_time_travel_stacks_snapshots_oldest_first():
    orders = _orders([(1, "2024-01-05", 10.0, False), (1, "2024-03-10", 10.0, False),
                      (2, "2024-02-20", 10.0, False), (2, "2024-06-20", 10.0, False)])
    cutoffs = training_cutoffs("2024-07-01", 60, n_cutoffs=3, step_days=30)
    assert cutoffs == sorted(cutoffs) and cutoffs[-1] == pd.Timestamp("2024-05-02")
    X, y, age, cut = time_travel_frame(orders, cutoffs, 60)
    assert list(pd.to_datetime(cut)) == sorted(pd.to_datetime(cut))
    assert age.max() == 60 and age.min() == 0
    # as of 2024-03-03: customer 1 (next order 03-10) and 2 (no order until 06-20) -> 1, 0
    first = cut == cutoffs[0]
    assert dict(zip(X.index[first], y[first])) == {1: 1, 2: 0}
    assert len(X) == len(y) == len(age)


# -- segments ----------------------------------------------------------------------------------
def test_segment_names_follow_the_rfm_map():
    assert segment_name(4.8, 4.9, 4.9) == "Champions"
    assert segment_name(3.4, 4.0, 3.0) == "Loyal"
    assert segment_name(4.2, 2.5, 2.0) == "Potential loyalists"
    assert segment_name(4.9, 1.0, 1.2) == "New"
    assert segment_name(2.9, 3.0, 3.0) == "Need attention"
    assert segment_name(1.5, 4.6, 4.8) == "Can't lose them"
    assert segment_name(1.9, 3.5, 2.0) == "At risk"
    assert segment_name(2.2, 1.5, 1.5) == "Hibernating"
    assert segment_name(1.2, 1.1, 1.0) == "Lost"
    assert set(SEGMENTS) >= {segment_name(r, f, m) for r in (1, 2.5, 4.5) for f in (1, 3, 5) for m in (1, 5)}


def test_recent_one_order_customers_are_new_even_when_ties_flatten_f():
    """With 40 % or more one-order customers, mid-ranks give them all F = 2: the "New"
    segment must still exist, from their orders (200 regulars, 200 one-order customers
    long ago, 100 whose only order is from the last 10 days)."""
    rng = np.random.default_rng(0)
    now = pd.Timestamp("2026-11-30")
    rows = [(p, now - pd.Timedelta(days=int(d)), float(rng.uniform(100, 2000)))
            for p in range(200) for d in rng.integers(1, 700, rng.integers(3, 15))]
    rows += [(p, now - pd.Timedelta(days=int(rng.integers(200, 700))), float(rng.uniform(50, 500))) for p in range(200, 400)]
    rows += [(p, now - pd.Timedelta(days=int(rng.integers(0, 10))), float(rng.uniform(50, 500))) for p in range(400, 500)]
    X = customer_features(pd.DataFrame(rows, columns=["partner", "date", "amount"]), now, 730)
    assert set(rfm_scores(X, X)["f"].iloc[200:]) == {2}, "the case: F is flattened to 2"
    names = pd.Series(RFMSegmenter().fit(X).predict(X), index=X.index)
    assert names.loc[400:].value_counts().index[0] == "New"
    assert "New" not in set(names.loc[:199]), "regulars are never New"
    assert (rfm_grid_names(X)[400:] == "New").all(), "the baseline grid reads them the same way"


def test_scores_rank_recency_low_as_good():
    X = pd.DataFrame({"recency_days": [1.0, 100.0, 300.0, 50.0, 10.0], "frequency": [9.0, 2, 1, 5, 7],
                      "monetary": [900.0, 200, 100, 500, 700]})
    scores = rfm_scores(X, X)
    assert scores["r"].iloc[0] == 5 and scores["r"].iloc[2] == 1
    assert scores["f"].iloc[0] == 5 and scores["m"].iloc[2] == 1


def test_segmenter_names_clusters_by_their_meaning():
    customers = synthetic_customers()
    segmenter = RFMSegmenter(k_min=3, k_max=6).fit(customers)
    names = pd.Series(segmenter.predict(customers), index=customers.index)
    by_kind = customers.assign(segment=names).groupby("kind")["segment"].agg(lambda s: s.mode()[0])
    assert by_kind["best"] == "Champions"
    assert by_kind["recent_once"] in ("New", "Potential loyalists")
    assert by_kind["slipping"] in ("At risk", "Need attention", "Can't lose them")
    assert by_kind["gone"] in ("Lost", "Hibernating")
    top = max(segmenter.silhouettes_.values())
    assert segmenter.silhouettes_[segmenter.k_] >= top - segmenter.silhouette_tolerance
    assert all(k <= segmenter.k_ for k, v in segmenter.silhouettes_.items() if v >= top - segmenter.silhouette_tolerance), \
        "the largest k within the tolerance of the best silhouette"


def test_segmenter_is_deterministic_and_stable_under_noise():
    customers = synthetic_customers(seed=1)
    first = RFMSegmenter().fit(customers)
    again = RFMSegmenter().fit(customers)
    assert (first.predict(customers) == again.predict(customers)).all()
    rng = np.random.default_rng(7)
    noisy = customers.assign(monetary=customers["monetary"] * rng.normal(1, 0.02, len(customers)),
                             recency_days=customers["recency_days"] + rng.integers(0, 2, len(customers)))
    refit = RFMSegmenter().fit(noisy)
    assert sorted(set(refit.cluster_names_)) == sorted(set(first.cluster_names_)), "names stay stable"
    previous = first.predict(customers)
    kept = (refit.predict(noisy, previous=previous) == previous).mean()
    assert kept >= 0.99, f"only {kept:.1%} kept their segment on 2 % noise"
    assert kept >= (refit.predict(noisy) == previous).mean(), "the margin keeps customers, never moves more"


def test_hysteresis_keeps_a_borderline_customer_but_not_a_clear_move():
    customers = synthetic_customers(seed=2)
    segmenter = RFMSegmenter(k_min=4, k_max=4).fit(customers)
    med = customers.groupby("kind")[["recency_days", "frequency", "monetary"]].median()
    # walk in log space from a "slipping" customer to a "best" one: somewhere the nearest
    # segment changes, and just past it the old one is still almost as near
    path = pd.DataFrame([np.expm1((1 - t) * np.log1p(med.loc["slipping"]) + t * np.log1p(med.loc["best"]))
                         for t in np.linspace(0, 1, 201)])
    names = segmenter.predict(path)
    distances = segmenter._distances(path)
    switch = next(i for i in range(1, len(path)) if names[i] != names[i - 1])
    borderline, old = path.iloc[[switch]], names[switch - 1]
    assert distances[switch, np.asarray(segmenter.cluster_names_) == old].min() <= 1.15 * distances[switch].min()
    assert segmenter.predict(borderline, previous=[old])[0] == old, "noise-level change: kept"
    assert segmenter.predict(borderline)[0] != old
    far = path.iloc[[-1]]
    assert segmenter.predict(far, previous=[names[0]])[0] == names[-1], "a clear move is followed"


def test_an_outlier_does_not_get_a_segment_of_its_own():
    customers = synthetic_customers(seed=3)
    for n_whales in (1, 3, 12):
        whales = pd.DataFrame([{"kind": "whale", "recency_days": 0.0, "frequency": 5000.0, "monetary": 1e12}] * n_whales)
        data = pd.concat([customers, whales], ignore_index=True)
        segmenter = RFMSegmenter().fit(data)
        labels = segmenter._distances(data).argmin(axis=1)
        assert (labels == labels[-1]).sum() > 10 * n_whales, f"{n_whales} whales share their cluster with others"
        assert segmenter.predict(data.iloc[[-1]])[0] == "Champions"


def test_segmenter_refuses_bad_input():
    customers = synthetic_customers(n_per_group=2)
    with pytest.raises(ValueError, match="too few"):
        RFMSegmenter(k_max=8).fit(customers)
    with pytest.raises(ValueError, match="k_min"):
        RFMSegmenter(k_min=1).fit(synthetic_customers())
    broken = synthetic_customers().assign(monetary=np.nan)
    with pytest.raises(ValueError, match="finite"):
        RFMSegmenter().fit(broken)


def test_segment_summary_lists_segments_best_first():
    customers = synthetic_customers()
    segmenter = RFMSegmenter().fit(customers)
    summary = segmenter.segment_summary(customers, segmenter.predict(customers))
    order = [list(SEGMENTS).index(name) for name in summary.index]
    assert order == sorted(order)
    assert summary["customers"].sum() == len(customers)


# -- repeat purchase ----------------------------------------------------------------------------
def _shop(seed=0, n_customers=600, days=720):
    """Customers with a personal order rate; some stop buying for good at a random day."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2022-01-01")
    rows = []
    for partner in range(n_customers):
        rate = rng.lognormal(np.log(1 / 45), 0.8)  # orders per day
        first = rng.integers(0, days // 2)
        churn = rng.integers(first, days) if rng.random() < 0.5 else days
        day = first
        while day < min(churn, days):
            rows.append((partner, start + pd.Timedelta(days=int(day)), float(rng.lognormal(4, 0.5)), False))
            day += max(1, int(rng.exponential(1 / rate)))
    return _orders(rows), start + pd.Timedelta(days=days)


def test_repeat_purchase_beats_the_rfm_quintile_baseline_on_a_later_cutoff():
    orders, end = _shop()
    horizon = 90
    test_cut = end - pd.Timedelta(days=horizon)
    cutoffs = training_cutoffs(test_cut, horizon, n_cutoffs=4)
    X, y, age, _cut = time_travel_frame(orders, cutoffs, horizon)
    newest = _cut == max(_cut)
    X_test = customer_features(orders, test_cut)
    y_test = purchase_labels(orders, X_test.index, test_cut, horizon)
    model = RepeatPurchaseModel().fit(X, y, age_days=age)
    baseline = RFMQuintileBaseline().fit(X[newest], y[newest])
    ours = binary_metrics(y_test, model.predict_proba(X_test)[:, 1])
    theirs = binary_metrics(y_test, baseline.predict_proba(X_test)[:, 1])
    assert ours["auc"] >= theirs["auc"] - 0.005 and ours["auc"] > 0.75
    assert ours["brier"] <= theirs["brier"] + 0.002
    reasons = model.explain(X_test.iloc[:3], top=3, field_labels=FEATURES)
    assert all(r["label"] in FEATURES.values() for row in reasons for r in row)


def test_quintile_baseline_is_monotone_in_the_rfm_score():
    orders, end = _shop(seed=4)
    cut = end - pd.Timedelta(days=90)
    X = customer_features(orders, cut)
    y = purchase_labels(orders, X.index, cut, 90)
    baseline = RFMQuintileBaseline().fit(X, y)
    rates = [baseline.rates_[s] for s in range(3, 16) if s in set(rfm_scores(X, X).sum(axis=1))]
    assert rates[-1] > rates[0], "the best RFM scores repeat more than the worst"
    p = baseline.predict_proba(X)[:, 1]
    assert ((p > 0) & (p < 1)).all(), "add-one smoothing: never 0 or 1"


def test_k_is_the_largest_within_the_silhouette_tolerance(monkeypatch):
    """Near-tied silhouettes (RFM's weak structure) must not make k flip: the largest k
    within the tolerance of the best wins, not the strict maximum."""
    import ml.customer_value as customer_value
    scores = {3: 0.330, 4: 0.325, 5: 0.300, 6: 0.290}
    monkeypatch.setattr(customer_value, "silhouette_score", lambda Z, labels: scores[len(set(labels))])
    customers = synthetic_customers()
    assert RFMSegmenter(k_min=3, k_max=6, min_cluster_share=0).fit(customers).k_ == 4
    assert RFMSegmenter(k_min=3, k_max=6, min_cluster_share=0, silhouette_tolerance=0).fit(customers).k_ == 3
    # a refit keeps the previous k while it is within the tolerance, not once it fell out of it
    previous = RFMSegmenter(k_min=3, k_max=3, min_cluster_share=0).fit(customers)
    assert RFMSegmenter(k_min=3, k_max=6, min_cluster_share=0).fit(customers, previous=previous).k_ == 3
    previous.k_ = 5
    assert RFMSegmenter(k_min=3, k_max=6, min_cluster_share=0).fit(customers, previous=previous).k_ == 4


def test_grid_names_and_silhouette_compare_segmentations_on_the_same_customers():
    from ml.customer_value import rfm_grid_names
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame({"recency_days": rng.exponential(90, n), "frequency": rng.poisson(3, n) + 1.0,
                      "monetary": rng.lognormal(6, 1, n)})
    segmenter = RFMSegmenter(k_min=3, k_max=5).fit(X)
    ours = segmenter.silhouette(X, segmenter.predict(X))
    grid = segmenter.silhouette(X, rfm_grid_names(X))
    assert ours == pytest.approx(segmenter.silhouettes_[segmenter.k_], abs=0.05)
    assert ours > grid  # clusters are better separated than the textbook grid
    assert segmenter.silhouette(X, ["Lost"] * n) is None


def test_a_refit_keeps_the_names_of_clusters_that_barely_moved():
    customers = synthetic_customers(seed=4)
    first = RFMSegmenter(k_min=4, k_max=4).fit(customers)
    # a centroid a hair away from a naming threshold: the rule alone would rename it
    nudged = RFMSegmenter(k_min=4, k_max=4).fit(customers)
    nudged.cluster_scores_ = nudged.cluster_scores_ + 0.25
    nudged.cluster_names_ = ["renamed by the rule"] * 4
    nudged._inherit_names(first)
    assert nudged.cluster_names_ == first.cluster_names_
    # a cluster that really moved takes the name its centroid means
    moved = RFMSegmenter(k_min=4, k_max=4).fit(customers)
    moved.cluster_scores_ = moved.cluster_scores_ + np.array([[2.0, 2.0, 2.0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    moved.cluster_names_ = ["far"] + list(first.cluster_names_[1:])
    moved._inherit_names(first)
    assert moved.cluster_names_[0] == "far"
    # through fit: the same data with a previous segmenter keeps every name
    refit = RFMSegmenter(k_min=4, k_max=4).fit(customers, previous=first)
    assert refit.cluster_names_ == first.cluster_names_


def test_a_handful_of_extreme_customers_never_make_a_segment_among_few_customers():
    customers = synthetic_customers(seed=5).iloc[:45]
    whale = pd.DataFrame([{"kind": "whale", "recency_days": 10.0, "frequency": 2.0, "monetary": 1.3e8}])
    data = pd.concat([customers, whale], ignore_index=True)
    segmenter = RFMSegmenter(k_min=3, k_max=4).fit(data)
    labels = segmenter._distances(data).argmin(axis=1)
    assert (labels == labels[-1]).sum() >= 5


def test_a_lone_outlier_is_dissolved_when_every_k_would_isolate_it():
    rng = np.random.default_rng(6)
    groups = [pd.DataFrame({"recency_days": rng.normal(r, 2, 30).clip(0), "frequency": rng.normal(f, 0.5, 30).clip(1),
                            "monetary": rng.normal(m, 20, 30).clip(1)}) for r, f, m in ((10, 8, 900), (200, 2, 150))]
    whale = pd.DataFrame([{"recency_days": 100.0, "frequency": 4.0, "monetary": 1e9}])
    data = pd.concat([*groups, whale], ignore_index=True)
    segmenter = RFMSegmenter(k_min=3, k_max=3).fit(data)  # k = 3 can only split off the whale
    labels = segmenter._distances(data).argmin(axis=1)
    assert (labels == labels[-1]).sum() >= 5
    assert segmenter.k_ == 2


def test_repeat_purchase_chooses_its_settings_without_overlapping_labels(monkeypatch):
    """With a horizon, C and the half-life are picked on the newest snapshot with models
    fitted only on snapshots whose label windows ended before it (no shared label days)."""
    from ml.propensity import LeadPropensityModel
    seen = {}
    original = LeadPropensityModel._choose_hyperparameters

    def spy(self, X, y, age_days, sample_weight=None):
        seen["ages"], seen["validation_rows"] = np.asarray(age_days).copy(), self._validation_rows
        return original(self, X, y, age_days, sample_weight)

    monkeypatch.setattr(LeadPropensityModel, "_choose_hyperparameters", spy)
    rng = np.random.default_rng(0)
    ages = np.repeat([120.0, 90.0, 60.0, 30.0, 0.0], 200)
    X = pd.DataFrame({name: rng.exponential(30, len(ages)) for name in FEATURES})
    y = (rng.random(len(ages)) < 1 / (1 + np.exp(X["recency_days"].to_numpy() / 30 - 1))).astype(int)
    RepeatPurchaseModel(horizon_days=91).fit(X, y, age_days=ages)
    assert seen["validation_rows"] == 200
    assert sorted(set(seen["ages"][:-200])) == [120.0], "fitted on the snapshot whose labels ended before"
    assert set(seen["ages"][-200:]) == {0.0}, "validated on the newest snapshot"


def test_an_inherited_name_cannot_drift_away_from_where_the_rule_gave_it():
    customers = synthetic_customers(seed=4)
    first = RFMSegmenter(k_min=4, k_max=4).fit(customers)
    model, names = first, list(first.cluster_names_)
    for _step in range(4):  # four retrainings, each moving every centroid by 0.4 points (< the 0.5 tolerance)
        moved = RFMSegmenter(k_min=4, k_max=4).fit(customers)
        moved.cluster_scores_ = model.cluster_scores_ + 0.4 / np.sqrt(3)
        moved.cluster_names_ = ["renamed by the rule"] * 4
        moved.name_anchors_ = moved.cluster_scores_.copy()
        moved._inherit_names(model)
        model = moved
    assert model.cluster_names_ == ["renamed by the rule"] * 4, "1.6 points away from its anchor: renamed"
    one_step = RFMSegmenter(k_min=4, k_max=4).fit(customers)
    one_step.cluster_scores_ = first.cluster_scores_ + 0.4 / np.sqrt(3)
    one_step.cluster_names_ = ["renamed by the rule"] * 4
    one_step.name_anchors_ = one_step.cluster_scores_.copy()
    one_step._inherit_names(first)
    assert one_step.cluster_names_ == names
    assert np.allclose(one_step.name_anchors_, first.name_anchors_), "the anchor is carried over"
