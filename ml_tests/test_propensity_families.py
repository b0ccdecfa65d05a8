"""Lead propensity v2: the naive Bayes and blend families, their choice on rolling
validation windows, Platt calibration, and models stored before the families."""
import pickle

import numpy as np
import pandas as pd
import pytest
from ml import LeadPropensityModel
from ml.features import LeadFeatureEncoder
from ml.propensity import VALIDATION_WINDOW_FRACTION, naive_bayes_weights
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from synthetic import COLUMNS, make_leads
from test_propensity import validation_log_losses


def test_naive_bayes_weights_are_the_naive_bayes_log_odds():
    """``Xt @ coef + intercept`` = log P(won)/P(lost) + sum of smoothed log likelihood
    ratios, one per single-valued field, present and absent tags both counted."""
    X, y, _p = make_leads(600, seed=2)
    X = X[["source", "tags"]]
    enc = LeadFeatureEncoder(categorical=["source"], multilabel=["tags"], min_frequency=1).fit(X)
    Xt = enc.transform(X)
    bernoulli = enc.feature_group_ == 1
    m = 10.0
    coef, intercept = naive_bayes_weights(Xt, y, None, bernoulli, m)
    dense = Xt.toarray()
    n_won, n_lost = y.sum(), (1 - y).sum()
    share = (dense.sum(axis=0) + 1) / (len(y) + 2)
    p_won = (dense[y == 1].sum(axis=0) + m * share) / (n_won + m)
    p_lost = (dense[y == 0].sum(axis=0) + m * share) / (n_lost + m)
    unseen = dense.sum(axis=0) == 0  # (an empty "(other)"): a ratio of 1
    p_won[unseen] = p_lost[unseen]
    expected = np.full(len(y), np.log(n_won / n_lost))
    for i in range(len(y)):
        for j in range(dense.shape[1]):
            if not bernoulli[j]:
                expected[i] += np.log(p_won[j] / p_lost[j]) if dense[i, j] else 0.0
            elif dense[i, j]:
                expected[i] += np.log(p_won[j] / p_lost[j])
            else:
                expected[i] += np.log((1 - p_won[j]) / (1 - p_lost[j]))
    np.testing.assert_allclose(Xt @ coef + intercept, expected, atol=1e-9)


@pytest.mark.parametrize("m", [1.0, 10.0, 100.0])
def test_a_value_no_lead_had_is_neutral_not_a_win(m):
    """A new team (or an empty "(other)") must weigh nothing, whatever the classes' sizes:
    with 7 % won it used to read as a 93 % chance."""
    rng = np.random.default_rng(0)
    won = (rng.random(20_000) < 0.07).astype(int)
    X = pd.DataFrame({"team": rng.choice(["a", "b", "c"], 20_000), "tags": [()] * 20_000})
    model = LeadPropensityModel(categorical=["team"], multilabel=["tags"], family="naive_bayes",
                                half_life_days=None, smoothing=m, calibration=None).fit(X, won)
    new = model.predict_proba(pd.DataFrame({"team": ["brand-new team"], "tags": [("never seen",)]}))[0, 1]
    assert abs(new - won.mean()) < 0.01, new
    Xt = model.encoder_.transform(X) if hasattr(model, "encoder_") else None
    if Xt is not None:
        empty = np.asarray(Xt.sum(axis=0)).ravel() == 0
        coef, _intercept = naive_bayes_weights(Xt, won, None, np.zeros(Xt.shape[1], bool), m)
        np.testing.assert_allclose(coef[empty], 0.0, atol=1e-12)


def test_naive_bayes_is_tempered_when_fields_repeat_each_other():
    """A field copied twice is counted twice by naive Bayes; tempering halves it back."""
    X, y, _p = make_leads(3000, seed=6)
    once = LeadPropensityModel(categorical=["source"], family="naive_bayes", half_life_days=None,
                               smoothing=1.0, calibration=None).fit(X[["source"]], y)
    X2 = X[["source"]].assign(source_copy=X["source"])
    twice = LeadPropensityModel(categorical=["source", "source_copy"], family="naive_bayes", half_life_days=None,
                                smoothing=1.0, calibration=None).fit(X2, y)
    np.testing.assert_allclose(twice.predict_proba(X2)[:, 1], once.predict_proba(X[["source"]])[:, 1], atol=0.01)


def test_every_candidate_is_scored_on_the_rolling_windows_and_the_best_wins():
    X, y, _p = make_leads(2000, seed=7)
    age = np.linspace(400, 0, len(y))
    model = LeadPropensityModel(**COLUMNS, calibration=None).fit(X, y, age_days=age)
    families = {c["family"] for c in model.candidates_}
    assert families == {"logistic", "naive_bayes", "blend"}
    losses = [c["log_loss"] for c in model.candidates_]
    assert losses == sorted(losses) and model.candidates_[0]["family"] == model.family_
    # the logistic candidates' scores are the rolling-window log-losses computed apart
    expected = validation_log_losses(X, y, age, COLUMNS, (0.03, 0.1, 0.3, 1.0, 3.0),
                                     (None, 365.0, 180.0, 90.0, 30.0))
    for c in model.candidates_:
        if c["family"] == "logistic":
            assert c["log_loss"] == pytest.approx(expected[(c["C"], c["half_life_days"])], abs=1e-9)
    # the validation AUC is computed for the best of each family (what the registry shows), only
    firsts = {}
    for c in model.candidates_:
        firsts.setdefault(c["family"], c)
    assert all(0.5 < c["auc"] < 1 for c in firsts.values())
    assert all(c["auc"] is None for c in model.candidates_ if c is not firsts[c["family"]])
    assert model.selection_["windows"] == 3
    assert model.selection_["validation_rows"] == 3 * int(len(y) * VALIDATION_WINDOW_FRACTION)


def test_naive_bayes_wins_where_its_assumption_holds_and_data_are_few():
    """Many weak, independent fields and few leads: naive Bayes' counts beat a logistic
    regression that must learn every weight jointly (the choice follows the data)."""
    rng = np.random.RandomState(3)
    n = 900
    X = pd.DataFrame({f"f{k}": rng.choice(list("abcdefgh"), n) for k in range(20)})
    effects = {f"f{k}": dict(zip("abcdefgh", rng.normal(0, 0.25, 8))) for k in range(20)}
    logit = -0.5 + sum(X[c].map(e).to_numpy() for c, e in effects.items())
    y = (rng.rand(n) < expit(logit)).astype(int)
    model = LeadPropensityModel(categorical=list(X.columns), C=3.0, calibration=None).fit(X, y)
    best = {f: min(c["log_loss"] for c in model.candidates_ if c["family"] == f)
            for f in ("logistic", "naive_bayes")}
    assert best["naive_bayes"] < best["logistic"]
    assert model.family_ == "naive_bayes"


def test_blend_and_calibration_stay_additive_and_exact():
    X, y, _p = make_leads(2500, seed=8)
    age = np.linspace(300, 0, len(y))
    common = dict(COLUMNS, half_life_days=90.0, C=0.3, smoothing=10.0)
    lr = LeadPropensityModel(**common, family="logistic", calibration=None).fit(X, y, age_days=age)
    nb = LeadPropensityModel(**common, family="naive_bayes", calibration=None).fit(X, y, age_days=age)
    blend = LeadPropensityModel(**common, family="blend", blend_weight=0.25, calibration="platt").fit(X, y, age_days=age)
    a, b = blend.calibration_
    np.testing.assert_allclose(blend.coef_, a * (0.25 * lr.coef_ + 0.75 * nb.coef_), atol=1e-9)
    assert blend.intercept_ == pytest.approx(a * (0.25 * lr.intercept_ + 0.75 * nb.intercept_) + b)
    log_odds, contrib = blend.contributions(X)
    np.testing.assert_allclose(blend.reference_logit_ + contrib.sum(axis=1), log_odds, atol=1e-9)
    np.testing.assert_allclose(expit(log_odds), blend.predict_proba(X)[:, 1], atol=1e-12)
    assert "blend 25 % logistic" in blend.describe() and "Platt" in blend.describe()


def stepped_leads(bump_rows, n=3000, seed=9):
    """Leads whose win rate is raised by 1.5 in log-odds on ``bump_rows`` only."""
    X, _y, p = make_leads(n, seed=seed)
    logit = np.log(p / (1 - p))
    logit[bump_rows] += 1.5
    y = (np.random.RandomState(seed + 1).rand(n) < expit(logit)).astype(int)
    return X, y


def test_calibration_is_kept_only_where_it_helps_the_newest_window():
    n = 3000
    # a rise that lasts: leads newer than the model win more, Platt learns it on the older windows
    lasting = stepped_leads(np.arange(n) >= 2100)
    # a bump over the two older windows only: what Platt learns there hurts the newest one
    passing = stepped_leads((np.arange(n) >= 2100) & (np.arange(n) < 2700))
    chosen = {}
    for name, (X, y) in {"lasting": lasting, "passing": passing}.items():
        model = LeadPropensityModel(**COLUMNS, family="logistic", C=1.0).fit(X, y)
        test = model.selection_["calibration_test"]
        assert (model.calibration_ is not None) == (test["platt_log_loss"] < test["raw_log_loss"])
        chosen[name] = model.calibration_
    assert chosen["lasting"] is not None and chosen["lasting"][1] > 0, "the rise is learnt as a prior shift"
    assert chosen["passing"] is None


def test_models_stored_before_the_families_still_load_and_score_the_same():
    X, y, _p = make_leads(800, seed=10)
    model = LeadPropensityModel(**COLUMNS, family="logistic", C=1.0, half_life_days=None, calibration=None).fit(X, y)
    state = dict(model.__dict__)
    clf = LogisticRegression()
    clf.coef_, clf.intercept_, clf.classes_ = state.pop("coef_")[None, :], np.array([state.pop("intercept_")]), [0, 1]
    for name in ("family", "smoothing", "blend_weight", "calibration", "family_", "smoothing_", "blend_weight_",
                 "calibration_", "candidates_", "selection_"):
        state.pop(name)
    state["classifier_"] = clf
    old = LeadPropensityModel.__new__(LeadPropensityModel)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    np.testing.assert_allclose(old.predict_proba(X), model.predict_proba(X), atol=1e-12)
    assert old.family_ == "logistic" and old.describe().startswith("logistic regression (C=1)")


def test_recipe_refits_the_chosen_model_without_searching():
    X, y, _p = make_leads(1500, seed=11)
    age = np.linspace(200, 0, len(y))
    model = LeadPropensityModel(**COLUMNS).fit(X, y, age_days=age)
    again = LeadPropensityModel(**model.recipe()).fit(X, y, age_days=age)
    assert again.candidates_ == [] and again.family_ == model.family_
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("params, message", [
    ({"family": "forest"}, "family must be"),
    ({"calibration": "isotonic"}, "calibration must be"),
    ({"blend_weight": 1.5}, "blend_weight must be"),
    ({"smoothing": 0}, "smoothing must be"),
])
def test_bad_parameters_get_a_clear_message(params, message):
    X, y, _p = make_leads(300)
    with pytest.raises(ValueError, match=message):
        LeadPropensityModel(**COLUMNS, **params).fit(X, y)


def test_a_calibration_that_would_reverse_the_ranking_is_never_used(monkeypatch):
    from ml import propensity
    X, y = stepped_leads(np.arange(3000) >= 2100)
    reversing = lambda z, y, sample_weight=None: (-0.5, 0.0)
    real = propensity.platt

    def fake(z, y, sample_weight=None):
        # tempering keeps its real fit; only calibration (no weights) gets the reversing slope
        return real(z, y, sample_weight) if sample_weight is not None else reversing(z, y)
    monkeypatch.setattr(propensity, "platt", fake)
    for calibration in ("auto", "platt"):
        model = LeadPropensityModel(**COLUMNS, family="logistic", C=1.0, calibration=calibration).fit(X, y)
        assert model.calibration_ is None, calibration
    p = model.predict_proba(X)[:, 1]
    assert np.corrcoef(p, _p_true(X))[0, 1] > 0


def _p_true(X):
    from synthetic import SOURCES
    return X["source"].map(SOURCES).to_numpy()
