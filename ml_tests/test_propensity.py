import numpy as np
import pandas as pd
import pytest
from ml import LeadPropensityModel, binary_metrics, format_reason
from ml.features import LeadFeatureEncoder
from ml.propensity import C_GRID, HALF_LIFE_GRID, VALIDATION_WINDOW_FRACTION, VALIDATION_WINDOWS
from scipy.special import expit
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from synthetic import COLUMNS, make_leads


@pytest.fixture(scope="module")
def fitted():
    X, y, p_true = make_leads(3000, seed=1)
    model = LeadPropensityModel(**COLUMNS).fit(X.iloc[:2400], y[:2400])
    return model, X.iloc[2400:].reset_index(drop=True), y[2400:], p_true[2400:]


def test_learns_the_signal_and_is_calibrated(fitted):
    model, X, y, p_true = fitted
    p = model.predict_proba(X)[:, 1]
    m = binary_metrics(y, p)
    oracle = binary_metrics(y, p_true)
    assert m["auc"] > oracle["auc"] - 0.03
    # calibrated: Brier close to the true model's, far better than the base rate's
    assert m["brier"] < oracle["brier"] + 0.01
    assert m["brier"] < binary_metrics(y, np.full(len(y), y.mean()))["brier"] - 0.02
    assert abs(p.mean() - y.mean()) < 0.04


def test_probabilities_in_classes_order(fitted):
    model, X, _y, _p = fitted
    proba = model.predict_proba(X)
    assert list(model.classes_) == [0, 1]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba > 0) & (proba < 1)).all()
    assert set(model.predict(X)) <= {0, 1}


def test_contributions_add_up_exactly(fitted):
    model, X, _y, _p = fitted
    log_odds, contrib = model.contributions(X)
    np.testing.assert_allclose(log_odds, model.decision_function(X), atol=1e-9)
    np.testing.assert_allclose(model.reference_logit_ + contrib.sum(axis=1), log_odds, atol=1e-9)


def test_reasons_are_faithful_to_the_model(fitted):
    """Every reason is the field's exact contribution; order and sign follow it."""
    model, X, _y, _p = fitted
    log_odds, contrib = model.contributions(X)
    proba = expit(log_odds)
    explanations = model.explain(X, top=5)
    groups = model.encoder_.groups_
    for i, reasons in enumerate(explanations):
        pos = [r for r in reasons if r["logit"] > 0]
        neg = [r for r in reasons if r["logit"] < 0]
        assert reasons == pos + neg and len(pos) <= 5 and len(neg) <= 5
        assert [r["logit"] for r in pos] == sorted((r["logit"] for r in pos), reverse=True)
        assert [r["logit"] for r in neg] == sorted(r["logit"] for r in neg)
        for r in reasons:
            j = groups.index(r["field"])
            assert r["logit"] == pytest.approx(contrib[i, j])
            # points: how much lower the probability would be with this field at its average
            assert r["points"] == pytest.approx(100 * (proba[i] - expit(log_odds[i] - contrib[i, j])))
            assert np.sign(r["points"]) == np.sign(r["logit"])
        # the strongest positive reason is the largest contribution of the row
        if pos:
            assert pos[0]["logit"] == pytest.approx(contrib[i].max())


def test_reasons_name_the_known_drivers(fitted):
    model, X, _y, _p = fitted
    referral = X.index[X.source == "referral"][0]
    reasons = model.explain(X.iloc[[referral]], field_labels={"source": "Source"},
                            value_labels={"source": {"referral": "Referral"}})[0]
    top = reasons[0]
    assert (top["label"], top["value"]) == ("Source", "Referral")
    assert format_reason(top).startswith("Source: Referral (+")
    # the pure-noise column is never the strongest reason
    assert model.importance()[-1][0] == "noise" or model.importance()[0][0] != "noise"


def test_format_reason():
    assert format_reason({"label": "Source", "value": "Newsletter", "points": 9.4}) == "Source: Newsletter (+9)"
    assert format_reason({"label": "Country", "value": "Brazil", "points": -4.6}) == "Country: Brazil (-5)"
    assert format_reason({"label": "Tags", "value": "none", "points": 0.2}) == "Tags: none (+<1)"
    # a value the reader may not see: the reason and its direction only ("" and 0 are values)
    assert format_reason({"label": "Revenue", "value": None, "points": 4.2}) == "Revenue (+4)"
    assert format_reason({"label": "Orders", "value": 0, "points": -1.2}) == "Orders: 0 (-1)"


def test_unseen_and_missing_values_at_predict_time(fitted):
    model, X, _y, _p = fitted
    odd = X.iloc[:3].copy()
    odd["source"] = ["brand-new-source", None, np.nan]
    odd["tags"] = [("never-seen",), None, ()]
    odd["revenue"] = [np.nan, 1e12, -5]
    p = model.predict_proba(odd)[:, 1]
    assert np.isfinite(p).all()
    assert len(model.explain(odd)) == 3


def test_auto_hyperparameters_come_from_the_grids():
    X, y, _p = make_leads(1500, seed=3)
    age = np.linspace(300, 0, len(y))
    model = LeadPropensityModel(**COLUMNS).fit(X, y, age_days=age)
    assert model.C_ in C_GRID and model.half_life_days_ in HALF_LIFE_GRID
    fixed = LeadPropensityModel(**COLUMNS, C=0.5, half_life_days=None).fit(X, y, age_days=age)
    assert (fixed.C_, fixed.half_life_days_) == (0.5, None)


def test_recency_weighting_follows_drift():
    """Win rate doubles in the recent period: a recency-weighted model follows it."""
    X, y, _p = make_leads(4000, seed=4)
    rng = np.random.RandomState(0)
    y = y.copy()
    recent = np.arange(len(y)) >= 3000
    y[recent & (rng.rand(len(y)) < 0.35)] = 1
    age = np.linspace(720, 0, len(y))
    flat = LeadPropensityModel(**COLUMNS, half_life_days=None, calibration=None).fit(X, y, age_days=age)
    recency = LeadPropensityModel(**COLUMNS, half_life_days=90, calibration=None).fit(X, y, age_days=age)
    recent_rate = y[recent].mean()
    assert abs(recency.predict_proba(X[recent])[:, 1].mean() - recent_rate) < \
        abs(flat.predict_proba(X[recent])[:, 1].mean() - recent_rate)


def test_bad_input_gets_a_clear_message():
    X, y, _p = make_leads(200)
    with pytest.raises(ValueError, match="both won and lost"):
        LeadPropensityModel(**COLUMNS).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="0 .lost. and 1"):
        LeadPropensityModel(**COLUMNS).fit(X, np.full(len(y), 2))
    with pytest.raises(ValueError, match="rows"):
        LeadPropensityModel(**COLUMNS).fit(X, y[:-1])
    with pytest.raises(ValueError, match="C must be"):
        LeadPropensityModel(**COLUMNS, C=-1).fit(X, y)
    with pytest.raises(ValueError, match="age_days"):
        LeadPropensityModel(**COLUMNS).fit(X, y, age_days=np.full(len(y), np.nan))


def test_estimator_conventions():
    """scikit-learn rules: __init__ stores parameters only; clone works; fit returns self."""
    model = LeadPropensityModel(**COLUMNS, C=0.3)
    assert not [k for k in vars(model) if k.endswith("_")]
    assert clone(model).get_params() == model.get_params()
    X, y, _p = make_leads(300)
    assert model.fit(X, y) is model
    assert list(model.feature_names_in_) == ["source", "noise", "tags", "revenue", "email_ok"]


def test_deterministic():
    X, y, _p = make_leads(800, seed=5)
    a = LeadPropensityModel(**COLUMNS).fit(X, y).predict_proba(X)
    b = LeadPropensityModel(**COLUMNS).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_min_points_drops_negligible_reasons(fitted):
    model, X, _y, _p = fitted
    for reasons in model.explain(X, min_points=2.0):
        assert all(abs(r["points"]) >= 2.0 for r in reasons)


# -- hyperparameter search: the grid point that minimises validation log-loss ----------
DEFAULTS = (1.0, None)  # (C, half-life) used when the search is skipped


def validation_log_losses(X, y, age_days, columns, c_grid, half_life_grid):
    """``{(C, half_life): mean log-loss}`` of logistic regressions, computed here, apart
    from the model: rolling origins, each window (a tenth of the rows, the newest
    three) scored by a model fitted on every row before it (recency weights relative
    to their newest row)."""
    size = int(len(y) * VALIDATION_WINDOW_FRACTION)
    losses = {}
    for k in range(VALIDATION_WINDOWS, 0, -1):
        cut, end = len(y) - k * size, len(y) - (k - 1) * size
        encoder = LeadFeatureEncoder(**columns).fit(X.iloc[:cut])
        X_fit, X_val = encoder.transform(X.iloc[:cut]), encoder.transform(X.iloc[cut:end])
        for half_life in half_life_grid:
            weights = None
            if half_life is not None:
                age = age_days[:cut] - age_days[:cut].min()
                weights = 0.5 ** (age / half_life)
            for C in c_grid:
                clf = LogisticRegression(C=C, max_iter=1000).fit(X_fit, y[:cut], sample_weight=weights)
                losses.setdefault((C, half_life), []).append(
                    log_loss(y[cut:end], clf.predict_proba(X_val)[:, 1], labels=[0, 1]))
    return {key: float(np.mean(values)) for key, values in losses.items()}


def assert_search_picks_the_best(losses, chosen):
    best, worst = min(losses, key=losses.get), max(losses, key=losses.get)
    # the data clearly prefer one grid point, and it is neither the default nor the worst
    assert best != DEFAULTS and best != worst
    assert losses[best] < losses.get(DEFAULTS, losses[worst]) - 0.003
    assert chosen == best, f"chose {chosen}, validation log-losses {losses}"


def noisy_leads(n=1000, seed=0):
    """A weak signal among eight noisy 15-level fields: strong regularisation wins."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({f"noise{k}": rng.choice([f"v{i}" for i in range(15)], n) for k in range(8)})
    X["signal"] = rng.choice(["good", "bad"], n)
    y = (rng.rand(n) < np.where(X.signal == "good", 0.6, 0.4)).astype(int)
    return X, y, dict(categorical=list(X.columns))


def strong_leads(n=1500, seed=0):
    """Ten sources from -5 to +5 in log-odds: weak regularisation wins."""
    rng = np.random.RandomState(seed)
    levels = [f"s{i}" for i in range(10)]
    X = pd.DataFrame({"source": rng.choice(levels, n)})
    effect = X.source.map(dict(zip(levels, np.linspace(-5, 5, 10)))).to_numpy()
    y = (rng.rand(n) < expit(effect)).astype(int)
    return X, y, dict(categorical=["source"])


def drifting_leads(n=2000, seed=1):
    """Source "a" goes from losing (log-odds -2) to winning (+2) over two years:
    only the recent leads tell the truth, so the shortest half-life wins."""
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({"source": rng.choice(["a", "b"], n)})
    beta = np.linspace(-2, 2, n)
    y = (rng.rand(n) < expit(beta * np.where(X.source == "a", 1, -1))).astype(int)
    return X, y, np.linspace(720, 0, n), dict(categorical=["source"])


@pytest.mark.parametrize("leads, expected_C", [(noisy_leads, 0.03), (strong_leads, 3.0)])
def test_auto_C_minimises_validation_log_loss(leads, expected_C):
    X, y, columns = leads()
    losses = validation_log_losses(X, y, None, columns, C_GRID, (None,))
    assert min(losses, key=losses.get) == (expected_C, None)  # what the data were built to prefer
    model = LeadPropensityModel(**columns, family="logistic", half_life_days=None).fit(X, y)
    assert_search_picks_the_best(losses, (model.C_, model.half_life_days_))


def test_auto_half_life_minimises_validation_log_loss():
    X, y, age, columns = drifting_leads()
    losses = validation_log_losses(X, y, age, columns, (1.0,), HALF_LIFE_GRID)
    assert min(losses, key=losses.get) == (1.0, 30.0)
    model = LeadPropensityModel(**columns, family="logistic", C=1.0).fit(X, y, age_days=age)
    assert_search_picks_the_best(losses, (model.C_, model.half_life_days_))


def test_auto_C_and_half_life_are_chosen_together():
    X, y, age, columns = drifting_leads()
    losses = validation_log_losses(X, y, age, columns, C_GRID, HALF_LIFE_GRID)
    model = LeadPropensityModel(**columns, family="logistic").fit(X, y, age_days=age)
    assert_search_picks_the_best(losses, (model.C_, model.half_life_days_))
    assert model.half_life_days_ == 30.0


def length_biased_leads(n=3000, p_won=0.3, seed=0):
    """Closed leads whose won deals live ~60 days and lost ones ~10, each seen once at a
    uniform moment of its life (its snapshot age), as the engine trains; the open leads of
    a given age are all the leads still alive then, so among open leads younger than 5 days
    the win rate is ``p_won`` (everybody is still alive), not the snapshot's rate."""
    rng = np.random.default_rng(seed)
    won = (rng.random(n) < p_won).astype(int)
    lifetime = np.where(won == 1, rng.uniform(50, 70, n), rng.uniform(5, 15, n))
    X = pd.DataFrame({"age": rng.random(n) * lifetime, "source": rng.choice(["web", "fair"], n)})
    return X, won, lifetime


def test_lifetime_weights_correct_the_length_bias_of_one_snapshot_per_lead():
    """Long-lived leads are open longer, so there are more of them among the open leads than
    among one-snapshot-per-lead training rows: weighting each row by its lead's lifetime makes
    the training population the open one (here the snapshots alone put a young lead's chance at
    about 7 % where the open leads' rate is 30 %)."""
    X, y, lifetime = length_biased_leads()
    young_open = pd.DataFrame({"age": np.linspace(0, 4.5, 200), "source": ["web", "fair"] * 100})
    columns = {"numeric": ["age"], "categorical": ["source"], "family": "logistic", "calibration": None}
    plain = LeadPropensityModel(**columns).fit(X, y)
    weighted = LeadPropensityModel(**columns).fit(X, y, sample_weight=lifetime / lifetime.mean())
    assert plain.predict_proba(young_open)[:, 1].mean() < 0.15
    assert weighted.predict_proba(young_open)[:, 1].mean() == pytest.approx(0.3, abs=0.06)


def test_sample_weights_count_rows_that_many_times():
    X, y, _p = make_leads(600, seed=3)
    y_twice = np.concatenate([y, y[:300]])
    weights = np.r_[np.full(300, 2.0), np.ones(300)]
    params = dict(COLUMNS, family="logistic", C=1.0, half_life_days=None, calibration=None)
    p = LeadPropensityModel(**params).fit(X, y, sample_weight=weights).predict_proba(X)[:, 1]
    mw, md = binary_metrics(y, p, sample_weight=weights), binary_metrics(y_twice, np.r_[p, p[:300]])
    for name in ("auc", "log_loss", "brier", "calibration_error"):
        assert mw[name] == pytest.approx(md[name], abs=1e-9), name
    with pytest.raises(ValueError, match="sample_weight"):
        LeadPropensityModel(**params).fit(X, y, sample_weight=np.zeros(600))


def test_sample_weights_are_relative_and_reach_every_part_of_the_fit(monkeypatch):
    """Weights say how rows weigh against each other: ten times the weights is the same
    model (their scale would otherwise loosen the regularisation).  They weigh the
    validation losses that choose the candidate, and the reasons' average lead."""
    from ml import propensity
    X, y, _p = make_leads(900, seed=5)
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.2, 5.0, len(y))
    fixed = dict(COLUMNS, family="logistic", C=1.0, half_life_days=None, calibration=None)
    a = LeadPropensityModel(**fixed).fit(X, y, sample_weight=weights)
    b = LeadPropensityModel(**fixed).fit(X, y, sample_weight=10 * weights)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
    relative = weights / weights.mean()
    terms = a._group_terms(a.encoder_.transform(X))
    np.testing.assert_allclose(a.group_mean_, np.average(terms, axis=0, weights=relative), atol=1e-12)
    seen = []
    original = propensity.logit_log_loss

    def spy(y_window, z, sample_weight=None):
        seen.append(sample_weight)
        return original(y_window, z, sample_weight)

    monkeypatch.setattr(propensity, "logit_log_loss", spy)
    model = LeadPropensityModel(**dict(COLUMNS, family="logistic", half_life_days=None, calibration=None))
    model.fit(X, y, sample_weight=weights)
    windows = model._windows(len(y))
    assert seen and all(w is not None for w in seen)
    np.testing.assert_allclose(seen[0], relative[windows[0][0]:windows[0][1]])
