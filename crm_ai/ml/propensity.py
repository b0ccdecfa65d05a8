"""Lead propensity: probability that an open lead will be won, with reasons.

Every candidate model is *additive* over the :class:`LeadFeatureEncoder` indicators
(categories, tags, binned numbers):

    logit P(won | x) = b + sum_f  g_f(x_f)

where ``g_f`` is the sum of the weights of field ``f``'s indicators that are on for
the lead.  Three families produce such weights:

* **logistic**: L2-regularised logistic regression (strength ``C``), which learns the
  weights jointly, so correlated fields share the credit;
* **naive Bayes**: the weight of an indicator is its smoothed log likelihood ratio,
  ``log P(v | won) / P(v | lost)`` with ``P(v | c) = (n_c(v) + m q(v)) / (N_c + m)``
  (``q(v)``: the value's share over all leads; ``m``: the smoothing, so rare values
  stay near 0), plus ``log N_won / N_lost``; tags and booleans are Bernoulli (an absent
  tag counts too, folded into the intercept).  This is what Odoo's PLS computes, on
  every crm_ai input and with proper smoothing.  Naive Bayes counts correlated fields
  twice, so its log-odds are then *tempered*: ``s * z + t`` refitted by a one-input
  logistic regression on the training rows;
* **blend**: ``w * logistic + (1 - w) * naive Bayes`` in log-odds, still additive.

Which family, ``C``, ``m``, ``w`` and recency half-life: the candidate with the lowest
mean log-loss over ``VALIDATION_WINDOWS`` *rolling origins*: each window is a block of
the newest training rows, predicted by candidates fitted on every row before it (time
order is the caller's row order).  Win rates drift (the UCI bank leads go from 7 % to
32 % won); one tail would pick whatever suited the last few weeks, several periods
pick what holds up.  The holdout is never looked at.

Calibration: Platt scaling ``logit' = a * logit + b`` fitted on the chosen candidate's
out-of-time predictions of every window, i.e. fitted on how the model does on leads
newer than the ones it learnt from.  ``b`` is the prior adaptation (win rates moving
between periods), ``a`` corrects over- or under-confidence.  It is kept only when it
measurably helps: fitted on the older windows, it must lower the log-loss of the
newest one.  Platt is linear in log-odds, so the model stays additive.

Additivity is what makes the reasons exact rather than approximated:

* the contribution of field ``f`` to lead ``i`` is ``c_if = g_f(x_if) - E[g_f]``,
  the log-odds it adds compared with the average training lead, so that
  ``logit(p_i) = logit_ref + sum_f c_if`` holds exactly;
* it is shown in percentage points as ``p_i - sigmoid(logit(p_i) - c_if)``: how much
  lower (or higher) this lead's probability would be if that field were average.
"""

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted

from .features import LeadFeatureEncoder

#: Regularisation strengths tried for the logistic family (inverse of the L2 penalty).
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
#: Recency half-lives (days) tried when ``half_life_days="auto"``; None = no decay.
#: Win rates drift (seasons, campaigns, a new product): weighting recent leads more
#: lets the model follow, and the validation windows decide how much.
HALF_LIFE_GRID = (None, 365.0, 180.0, 90.0, 30.0)
#: Naive Bayes smoothing ``m`` (pseudo-leads pulling a value's ratio towards 1).
SMOOTHING_GRID = (1.0, 10.0, 100.0)
#: Share of the logistic side in a blend.
BLEND_WEIGHTS = (0.25, 0.5, 0.75)
FAMILIES = ("logistic", "naive_bayes", "blend")
#: Rolling-origin validation: this many windows, each this share of the training rows.
#: Chosen on the bank leads' early periods (cuts at 30-50 %, none of them reported):
#: 3 windows beat 2, 4 and 6 on the worst period.
VALIDATION_WINDOWS = 3
VALIDATION_WINDOW_FRACTION = 0.1
#: Former single-tail share, kept for callers that import it.
C_VALIDATION_FRACTION = VALIDATION_WINDOWS * VALIDATION_WINDOW_FRACTION
#: Below this many validation rows (or 20 of either class) tuning is noise: defaults are used.
MIN_VALIDATION_ROWS = 200
#: Used when there is too little data to choose: today's logistic model.
DEFAULT_SPEC = {"family": "logistic", "C": 1.0, "half_life_days": None, "smoothing": None, "blend_weight": None}
#: Almost no penalty: the one- or two-parameter fits (tempering, Platt) need none.
_UNPENALISED_C = 1e6


def naive_bayes_weights(Xt, y, sample_weight, bernoulli, smoothing):
    """Naive Bayes as a linear model over indicator columns: ``(coef, intercept)``.

    ``Xt``: (n, k) 0/1 indicators; ``bernoulli``: mask of the columns that are
    present/absent flags (tags, booleans) rather than one-of-k values; ``smoothing``:
    the ``m`` of the m-estimate ``P(v | c) = (n_c(v) + m q(v)) / (N_c + m)``.  A value no
    training lead had (a new team, an "(other)" left empty) weighs nothing: the m-estimate
    would give it the ratio ``(N_lost + m) / (N_won + m)`` (never seen among few won leads
    reads as "rare among the lost"), and a new team would score as if it won ten times out
    of eleven when 7 % of leads are won.  Its absence from the past says nothing of its
    outcome.

    For a one-of-k field exactly one indicator is on, so its weight is the log
    likelihood ratio of its value.  For a flag, the ratio of "absent" is added to the
    intercept and the weight of "present" is the difference, so ``Xt @ coef +
    intercept`` is the naive Bayes log-odds exactly.
    """
    w = np.ones(Xt.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    n_won = np.asarray(Xt.T @ (w * y)).ravel()
    n_lost = np.asarray(Xt.T @ (w * (1 - y))).ravel()
    total_won, total_lost = float((w * y).sum()), float((w * (1 - y)).sum())
    # a value's overall share, itself lightly smoothed so that an unseen value (the
    # "(other)" column may be empty) has a share above 0
    share = (n_won + n_lost + 1.0) / (total_won + total_lost + 2.0)
    p_won = (n_won + smoothing * share) / (total_won + smoothing)
    p_lost = (n_lost + smoothing * share) / (total_lost + smoothing)
    unseen = (n_won + n_lost) <= 0
    p_won[unseen] = p_lost[unseen]  # a ratio of 1, present or absent
    coef = np.log(p_won) - np.log(p_lost)
    intercept = np.log(total_won / total_lost)
    absent = np.log1p(-np.minimum(p_won[bernoulli], 1 - 1e-12)) - np.log1p(-np.minimum(p_lost[bernoulli], 1 - 1e-12))
    coef[bernoulli] -= absent
    intercept += absent.sum()
    return coef, float(intercept)


def logit_log_loss(y, z, sample_weight=None):
    """Mean log-loss of probabilities ``sigmoid(z)`` against 0/1 ``y``, computed from the
    log-odds (stable, and without scikit-learn's per-call validation: the search scores
    hundreds of candidates); weighted by ``sample_weight`` when given."""
    z = np.asarray(z, dtype=float)
    y = np.asarray(y, dtype=float)
    return float(np.average(np.logaddexp(0.0, z) - y * z, weights=sample_weight))


def platt(z, y, sample_weight=None, max_iter=100):
    """``(a, b)`` such that ``sigmoid(a * z + b)`` best fits ``y`` (weighted log-loss).

    Newton's method on the two parameters with step halving, and the same tiny penalty
    on ``a`` as an almost unpenalised logistic regression (``1 / _UNPENALISED_C``), so a
    perfectly separated input still has a finite answer.  A one-input logistic
    regression, solved exactly instead of by a general solver (tempering and calibration
    run it dozens of times per training).
    """
    z = np.asarray(z, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones_like(z) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    penalty = 1.0 / _UNPENALISED_C
    prior = min(max(np.average(y, weights=w), 1e-9), 1 - 1e-9)
    a, b = 0.0, float(np.log(prior / (1 - prior)))

    def objective(a, b):
        t = a * z + b
        return float(np.sum(w * (np.logaddexp(0.0, t) - y * t)) + 0.5 * penalty * a * a)

    current = objective(a, b)
    for _ in range(max_iter):
        p = expit(a * z + b)
        r, h = w * (p - y), w * p * (1 - p)
        grad = np.array([np.dot(r, z) + penalty * a, r.sum()])
        hess = np.array([[np.dot(h, z * z) + penalty, np.dot(h, z)], [np.dot(h, z), h.sum() + 1e-12]])
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = grad / max(np.abs(np.diag(hess)).max(), 1e-12)
        scale = 1.0
        while scale > 1e-8:
            trial = objective(a - scale * step[0], b - scale * step[1])
            if trial <= current:
                break
            scale /= 2
        a, b, previous, current = a - scale * step[0], b - scale * step[1], current, trial
        if abs(previous - current) <= 1e-12 * max(1.0, abs(current)):
            break
    return float(a), float(b)


class LeadPropensityModel(ClassifierMixin, BaseEstimator):
    """Calibrated, explainable win probability for leads.

    Parameters
    ----------
    categorical, multilabel, numeric, boolean : sequence of str
        Input columns by kind (see :class:`LeadFeatureEncoder`).
    family : "auto", "logistic", "naive_bayes" or "blend", default="auto"
        "auto" tries the three (see the module docstring).
    C : float or "auto", default="auto"
        Inverse L2 regularisation strength of the logistic side; "auto" tries ``C_GRID``.
    half_life_days : float, None or "auto", default="auto"
        Training leads weigh ``0.5 ** (age_days / half_life_days)`` (``age_days``
        given to :meth:`fit`); None weighs all alike; "auto" tries ``HALF_LIFE_GRID``.
    smoothing : float or "auto", default="auto"
        Naive Bayes ``m``; "auto" tries ``SMOOTHING_GRID``.
    blend_weight : float in (0, 1) or "auto", default="auto"
        Share of the logistic side in a blend; "auto" tries ``BLEND_WEIGHTS``.
    calibration : "auto", "platt" or None, default="auto"
        Platt scaling on the validation windows' out-of-time predictions; "auto"
        keeps it only when it helps the newest window (see the module docstring).
    min_frequency, n_bins : int
        Passed to the encoder.
    max_iter : int, default=1000
        Solver iterations.

    Attributes
    ----------
    encoder_ : LeadFeatureEncoder
    coef_ : ndarray, the weight of every encoder column (calibration included)
    intercept_ : float
    classes_ : ndarray, ``[0, 1]`` (1 = won)
    family_, C_, half_life_days_, smoothing_, blend_weight_ : the chosen candidate
        (``C_`` None for naive Bayes, ``smoothing_`` None for logistic)
    calibration_ : ``(a, b)`` or None
    candidates_ : list of dicts, every candidate tried with its mean validation
        ``log_loss`` over the windows, best first (empty when nothing was chosen); ``auc``
        (mean validation AUC) for the best candidate of each family, None for the others
    selection_ : dict, how the choice was made (windows, rows, reason)
    reference_logit_ : float, log-odds of the "average" training lead
    group_mean_ : ndarray, ``E[g_f]`` per input field on the training rows (weighted by
        ``sample_weight`` when :meth:`fit` had one)
    field_importance_ : ndarray, mean ``|c_if|`` per input field on the training rows (idem)

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"source": rng.choice(["web", "fair", "call"], 400),
    ...                   "revenue": rng.gamma(2, 1000, 400)})
    >>> y = ((X.source == "fair") | (rng.rand(400) < 0.2)).astype(int).to_numpy()
    >>> model = LeadPropensityModel(categorical=["source"], numeric=["revenue"]).fit(X, y)
    >>> p = model.predict_proba(X)[:, 1]
    >>> bool(p[X.source.to_numpy() == "fair"].mean() > p[X.source.to_numpy() == "web"].mean())
    True
    >>> reasons = model.explain(X.iloc[:1], field_labels={"source": "Source"})
    >>> reasons[0][0]["field"]
    'source'
    """

    def __init__(self, *, categorical=(), multilabel=(), numeric=(), boolean=(), family="auto",
                 C="auto", half_life_days="auto", smoothing="auto", blend_weight="auto", calibration="auto",
                 min_frequency=5, n_bins=6, max_iter=1000):
        self.categorical = categorical
        self.multilabel = multilabel
        self.numeric = numeric
        self.boolean = boolean
        self.family = family
        self.C = C
        self.half_life_days = half_life_days
        self.smoothing = smoothing
        self.blend_weight = blend_weight
        self.calibration = calibration
        self.min_frequency = min_frequency
        self.n_bins = n_bins
        self.max_iter = max_iter

    def __setstate__(self, state):
        # Models stored before the families existed hold a fitted LogisticRegression.
        if "classifier_" in state and "coef_" not in state:
            clf = state.pop("classifier_")
            state.update(coef_=clf.coef_[0].copy(), intercept_=float(clf.intercept_[0]), family_="logistic",
                         smoothing_=None, blend_weight_=None, calibration_=None, candidates_=[],
                         selection_={}, family="logistic", smoothing="auto", blend_weight="auto",
                         calibration=None)
        super().__setstate__(state)

    # -- fitting ---------------------------------------------------------------
    def _new_encoder(self):
        return LeadFeatureEncoder(
            categorical=list(self.categorical), multilabel=list(self.multilabel),
            numeric=list(self.numeric), boolean=list(self.boolean),
            min_frequency=self.min_frequency, n_bins=self.n_bins)

    def _check_y(self, y):
        y = np.asarray(y).astype(int).ravel()
        if not set(np.unique(y)) <= {0, 1}:
            raise ValueError("y must hold 0 (lost) and 1 (won) only.")
        if len(np.unique(y)) < 2:
            raise ValueError("Training needs both won and lost leads.")
        return y

    @staticmethod
    def _weights(age_days, half_life, sample_weight=None):
        """Recency weights (None: none) times ``sample_weight`` (None: ones)."""
        recency = None if half_life is None or age_days is None else np.power(
            0.5, np.clip(age_days, 0, None) / half_life)
        if sample_weight is None:
            return recency
        return sample_weight if recency is None else recency * sample_weight

    @staticmethod
    def _grid(value, grid, name, check=lambda v: v > 0, allow_none=False):
        if value == "auto":
            return tuple(grid)
        if value is None and allow_none:
            return (None,)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not check(value):
            raise ValueError(f"{name} must be a positive number{', None' if allow_none else ''} or 'auto', "
                             f"got {value!r}.")
        return (value,)

    def _search_space(self, age_days):
        """``(families, C grid, half-life grid, smoothing grid, blend weights)``, validated."""
        if self.family != "auto" and self.family not in FAMILIES:
            raise ValueError(f"family must be 'auto' or one of {FAMILIES}, got {self.family!r}.")
        if self.calibration not in ("auto", "platt", None):
            raise ValueError(f"calibration must be 'auto', 'platt' or None, got {self.calibration!r}.")
        families = FAMILIES if self.family == "auto" else (self.family,)
        c_grid = self._grid(self.C, C_GRID, "C")
        hl_grid = self._grid(self.half_life_days, HALF_LIFE_GRID, "half_life_days", allow_none=True)
        if age_days is None:
            hl_grid = (None,)
        m_grid = self._grid(self.smoothing, SMOOTHING_GRID, "smoothing")
        w_grid = self._grid(self.blend_weight, BLEND_WEIGHTS, "blend_weight", check=lambda v: 0 < v < 1)
        return families, c_grid, hl_grid, m_grid, w_grid

    def _bernoulli_mask(self, encoder):
        flags = [gi for gi, col in enumerate(encoder.groups_) if col in encoder.multilabel or col in encoder.boolean]
        return np.isin(encoder.feature_group_, flags)

    def _fit_logistic(self, Xt, y, weights, C):
        fit = LogisticRegression(C=C, max_iter=self.max_iter, solver="lbfgs").fit(Xt, y, sample_weight=weights)
        return fit.coef_[0].copy(), float(fit.intercept_[0])

    def _fit_naive_bayes(self, Xt, y, weights, smoothing, bernoulli):
        coef, intercept = naive_bayes_weights(Xt, y, weights, bernoulli, smoothing)
        # temper: naive Bayes counts correlated fields twice, a scale and shift fix its log-odds
        scale, shift = platt(Xt @ coef + intercept, y, weights)
        return scale * coef, scale * intercept + shift

    def _fit_spec(self, encoder, Xt, y, age_days, spec, sample_weight=None):
        """``(coef, intercept)`` of one candidate (no calibration)."""
        weights = self._weights(age_days, spec["half_life_days"], sample_weight)
        parts = []
        if spec["family"] in ("logistic", "blend"):
            parts.append((self._fit_logistic(Xt, y, weights, spec["C"]),
                          1.0 if spec["family"] == "logistic" else spec["blend_weight"]))
        if spec["family"] in ("naive_bayes", "blend"):
            parts.append((self._fit_naive_bayes(Xt, y, weights, spec["smoothing"], self._bernoulli_mask(encoder)),
                          1.0 if spec["family"] == "naive_bayes" else 1 - spec["blend_weight"]))
        coef = sum(share * c for (c, _i), share in parts)
        intercept = sum(share * i for (_c, i), share in parts)
        return coef, float(intercept)

    #: rows of one validation window (None: VALIDATION_WINDOWS windows of VALIDATION_WINDOW_FRACTION)
    _validation_rows = None

    def _windows(self, n):
        """``[(origin, end)]``: fit on rows ``[0, origin)``, validate on ``[origin, end)``."""
        if self._validation_rows:
            return [(n - self._validation_rows, n)]
        size = int(n * VALIDATION_WINDOW_FRACTION)
        return [(n - k * size, n - (k - 1) * size) for k in range(VALIDATION_WINDOWS, 0, -1)]

    def _window_logits(self, X, y, age_days, windows, space, only=None, sample_weight=None):
        """Out-of-time log-odds of every candidate (or of ``only``) in every window.

        Returns ``{spec key: [validation logits per window]}`` and the spec per key.
        Candidates of a half-life share one logistic fit per C and one naive Bayes fit
        per m; a blend only combines their logits.
        """
        families, c_grid, hl_grid, m_grid, w_grid = space
        logits, specs = {}, {}
        for origin, end in windows:
            # weights relative to the fitted rows' mean: the regularisation stays as at deployment
            fit_weight = None if sample_weight is None else sample_weight[:origin] / sample_weight[:origin].mean()
            encoder = self._new_encoder().fit(X.iloc[:origin], sample_weight=fit_weight)
            Xf, Xv = encoder.transform(X.iloc[:origin]), encoder.transform(X.iloc[origin:end])
            # ages relative to the newest fitted row, as at deployment
            fit_age = None if age_days is None else age_days[:origin] - age_days[:origin].min()
            bernoulli = self._bernoulli_mask(encoder)
            for half_life in hl_grid:
                weights = self._weights(fit_age, half_life, fit_weight)
                z_lr, z_nb = {}, {}
                if {"logistic", "blend"} & set(families):
                    for C in c_grid:
                        coef, icpt = self._fit_logistic(Xf, y[:origin], weights, C)
                        z_lr[C] = Xv @ coef + icpt
                if {"naive_bayes", "blend"} & set(families):
                    for m in m_grid:
                        coef, icpt = self._fit_naive_bayes(Xf, y[:origin], weights, m, bernoulli)
                        z_nb[m] = Xv @ coef + icpt
                found = []
                if "logistic" in families:
                    found += [(dict(DEFAULT_SPEC, C=C, half_life_days=half_life), z) for C, z in z_lr.items()]
                if "naive_bayes" in families:
                    found += [(dict(DEFAULT_SPEC, family="naive_bayes", C=None, half_life_days=half_life,
                                    smoothing=m), z) for m, z in z_nb.items()]
                if "blend" in families:
                    found += [(dict(family="blend", C=C, half_life_days=half_life, smoothing=m, blend_weight=w),
                               w * zl + (1 - w) * zn)
                              for C, zl in z_lr.items() for m, zn in z_nb.items() for w in w_grid]
                for spec, z in found:
                    key = tuple(spec.values())
                    if only is None or key == only:
                        specs[key] = spec
                        logits.setdefault(key, []).append(z)
        return logits, specs

    def _default_spec(self, space):
        """What is fitted when nothing can be chosen: a fixed parameter stays as set,
        the others take ``DEFAULT_SPEC`` (naive Bayes: m=10; blend: half and half)."""
        families, c_grid, hl_grid, m_grid, w_grid = space
        family = families[0] if len(families) == 1 else DEFAULT_SPEC["family"]
        pick = lambda grid, default: grid[0] if len(grid) == 1 else default
        return {
            "family": family,
            "C": pick(c_grid, DEFAULT_SPEC["C"]) if family != "naive_bayes" else None,
            "half_life_days": pick(hl_grid, DEFAULT_SPEC["half_life_days"]),
            "smoothing": pick(m_grid, 10.0) if family != "logistic" else None,
            "blend_weight": pick(w_grid, 0.5) if family == "blend" else None,
        }

    def _choose_hyperparameters(self, X, y, age_days, sample_weight=None):
        """The candidate spec, the calibration decision and the candidates' scores."""
        space = self._search_space(age_days)
        families, c_grid, hl_grid, m_grid, w_grid = space
        n_candidates = (len(c_grid) * ("logistic" in families) + len(m_grid) * ("naive_bayes" in families)
                        + len(c_grid) * len(m_grid) * len(w_grid) * ("blend" in families)) * len(hl_grid)
        windows = self._windows(len(y))
        validation = np.concatenate([np.arange(a, b) for a, b in windows])
        selection = {"windows": len(windows), "validation_rows": int(len(validation))}
        if (len(validation) < MIN_VALIDATION_ROWS or min(np.bincount(y[validation], minlength=2)) < 20
                or len(np.unique(y[:windows[0][0]])) < 2):
            selection["reason"] = "too little validation data to choose: defaults"
            return self._default_spec(space), ("platt" if self.calibration == "platt" else None), [], selection
        y_windows = [y[a:b] for a, b in windows]
        w_windows = [None if sample_weight is None else sample_weight[a:b] for a, b in windows]
        if n_candidates == 1:
            logits, specs = (self._window_logits(X, y, age_days, windows, space, sample_weight=sample_weight)
                             if self.calibration else ({}, {}))
            key = next(iter(logits), None)
            candidates = []
            spec = specs[key] if key else self._default_spec(space)
            selection["reason"] = "fixed parameters"
        else:
            logits, specs = self._window_logits(X, y, age_days, windows, space, sample_weight=sample_weight)
            candidates = []
            for key, zs in logits.items():
                losses = [logit_log_loss(yw, z, ww) for z, yw, ww in zip(zs, y_windows, w_windows)]
                candidates.append({**specs[key], "log_loss": float(np.mean(losses)), "auc": None, "_key": key})
            # ties (a blend equal to a family) go to the simpler model: fewer parts first
            rank = {"logistic": 0, "naive_bayes": 1, "blend": 2}
            candidates.sort(key=lambda c: (round(c["log_loss"], 12), rank[c["family"]]))
            # the validation AUC, for the registry, of the best candidate of each family only
            shown = set()
            for c in candidates:
                if c["family"] not in shown:
                    shown.add(c["family"])
                    aucs = [roc_auc_score(yw, z, sample_weight=ww)
                            for z, yw, ww in zip(logits[c["_key"]], y_windows, w_windows) if len(np.unique(yw)) == 2]
                    c["auc"] = float(np.mean(aucs)) if aucs else None
            key = candidates[0].pop("_key")
            for c in candidates[1:]:
                c.pop("_key")
            spec = specs[key]
            selection["reason"] = "lowest mean log-loss over %d rolling validation windows" % len(windows)
        calibration = self.calibration
        if calibration and key is not None and key in logits:
            zs = logits[key]
            if calibration == "auto":
                calibration = None
                if len(zs) > 1:
                    older_z, older_y = np.concatenate(zs[:-1]), np.concatenate(y_windows[:-1])
                    older_w = None if sample_weight is None else np.concatenate(w_windows[:-1])
                    if len(np.unique(older_y)) == 2:
                        a, b = platt(older_z, older_y, older_w)
                        raw = logit_log_loss(y_windows[-1], zs[-1], w_windows[-1])
                        scaled = logit_log_loss(y_windows[-1], a * zs[-1] + b, w_windows[-1])
                        selection["calibration_test"] = {"raw_log_loss": float(raw), "platt_log_loss": float(scaled)}
                        # a slope <= 0 would turn the ranking over: never a calibration
                        calibration = "platt" if scaled < raw and a > 0 else None
            if calibration == "platt":
                all_y = np.concatenate(y_windows)
                all_w = None if sample_weight is None else np.concatenate(w_windows)
                calibration = platt(np.concatenate(zs), all_y, all_w) if len(np.unique(all_y)) == 2 else None
                if calibration and calibration[0] <= 0:
                    selection["calibration_refused"] = "slope %.3f <= 0 would reverse the ranking" % calibration[0]
                    calibration = None
        elif calibration == "platt":
            calibration = None
        return spec, calibration, candidates, selection

    def fit(self, X, y, age_days=None, sample_weight=None):
        """Fit on leads in time order (oldest first).  Returns self.

        ``age_days``: per row, days between the lead's outcome and the newest
        training lead (for recency weighting); without it all rows weigh alike.
        ``sample_weight``: per row, a weight (> 0) on top of recency, relative to the rows'
        mean, in the numeric bins, in fitting, in the validation that chooses the candidate,
        in calibration and in the reasons' average lead (None: ones).
        """
        y = self._check_y(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
        if age_days is not None:
            age_days = np.asarray(age_days, dtype=float)
            if age_days.shape != y.shape or not np.all(np.isfinite(age_days)):
                raise ValueError("age_days must be finite, one per row.")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=float)
            if sample_weight.shape != y.shape or not np.all(np.isfinite(sample_weight)) or np.any(sample_weight <= 0):
                raise ValueError("sample_weight must be finite and > 0, one per row.")
            # how rows weigh against each other; their scale would change the regularisation
            sample_weight = sample_weight / sample_weight.mean()
        X = X.reset_index(drop=True)
        spec, calibration, self.candidates_, self.selection_ = self._choose_hyperparameters(
            X, y, age_days, sample_weight)
        self.family_ = spec["family"]
        self.C_, self.half_life_days_ = spec["C"], spec["half_life_days"]
        self.smoothing_, self.blend_weight_ = spec["smoothing"], spec["blend_weight"]
        self.encoder_ = self._new_encoder().fit(X, sample_weight=sample_weight)
        Xt = self.encoder_.transform(X)
        coef, intercept = self._fit_spec(self.encoder_, Xt, y, age_days, spec, sample_weight)
        self.calibration_ = calibration if isinstance(calibration, tuple) else None
        if self.calibration_:
            a, b = self.calibration_
            coef, intercept = a * coef, a * intercept + b
        self.coef_, self.intercept_ = coef, float(intercept)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(self.encoder_.groups_)
        self.feature_names_in_ = np.asarray(self.encoder_.groups_, dtype=object)
        terms = self._group_terms(Xt)
        self.group_mean_ = np.average(terms, axis=0, weights=sample_weight)
        self.reference_logit_ = float(self.intercept_ + self.group_mean_.sum())
        # Mean |contribution| per field on the training leads: how much it moves scores.
        self.field_importance_ = np.average(np.abs(terms - self.group_mean_), axis=0, weights=sample_weight)
        return self

    def recipe(self):
        """The parameters that refit the chosen model without searching again
        (``LeadPropensityModel(**model.recipe())``).  Calibration is decided again."""
        check_is_fitted(self, "coef_")
        params = self.get_params()
        params.update(family=self.family_, C=self.C_ if self.C_ is not None else 1.0,
                      half_life_days=self.half_life_days_,
                      smoothing=self.smoothing_ if self.smoothing_ is not None else 1.0,
                      blend_weight=self.blend_weight_ if self.blend_weight_ is not None else 0.5,
                      calibration="platt" if self.calibration_ else None)
        return params

    def describe(self):
        """The chosen candidate in words ("blend 75 % logistic (C=0.3) + naive Bayes (m=100), ...")."""
        check_is_fitted(self, "coef_")
        return describe_spec({"family": self.family_, "C": self.C_, "half_life_days": self.half_life_days_,
                              "smoothing": self.smoothing_, "blend_weight": self.blend_weight_},
                             self.calibration_)

    # -- prediction --------------------------------------------------------------
    def _group_terms(self, Xt):
        """``g_f(x_i)`` for every row and field: (n, n_fields) dense array."""
        n_groups = len(self.encoder_.groups_)
        G = np.zeros((Xt.shape[1], n_groups))
        G[np.arange(Xt.shape[1]), self.encoder_.feature_group_] = self.coef_
        return np.asarray(Xt @ G)

    def decision_function(self, X):
        check_is_fitted(self, "coef_")
        return np.asarray(self.encoder_.transform(X) @ self.coef_).ravel() + self.intercept_

    def predict_proba(self, X):
        """Probabilities in ``classes_`` order: column 1 is P(won)."""
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def contributions(self, X):
        """Log-odds contribution of every field for every row.

        Returns ``(logit, C)`` with ``logit = reference_logit_ + C.sum(axis=1)`` exactly.
        """
        check_is_fitted(self, "coef_")
        terms = self._group_terms(self.encoder_.transform(X))
        contrib = terms - self.group_mean_
        logit = self.reference_logit_ + contrib.sum(axis=1)
        return logit, contrib

    def explain(self, X, *, top=5, min_points=0.0, field_labels=None, value_labels=None):
        """The ``top`` strongest positive and negative reasons for each row.

        Parameters
        ----------
        X : DataFrame
        top : int
        min_points : float, reasons moving the probability by fewer percentage
            points than this are left out
        field_labels : dict, column -> words ("Source")
        value_labels : dict, column -> {raw key -> words} (record ids to names)

        Returns
        -------
        list (one per row) of lists of dicts ``{"field", "label", "value",
        "logit", "points"}``, positives first (strongest first), then negatives
        (strongest first).  ``points`` is the change in percentage points.
        """
        return self.predict_explain(X, top=top, min_points=min_points, field_labels=field_labels,
                                    value_labels=value_labels)[1]

    def predict_explain(self, X, *, top=5, min_points=0.0, field_labels=None, value_labels=None):
        """``(P(won) per row, reasons per row)`` from one encoding of ``X`` (see :meth:`explain`).

        Vectorised: the reasons are picked with array operations, and the words of a
        value are only computed for the (row, field) pairs that are reasons.
        """
        field_labels = field_labels or {}
        value_labels = value_labels or {}
        logit, contrib = self.contributions(X)
        proba = expit(logit)
        n, k = contrib.shape
        top = max(0, min(int(top), k))
        # points_if = p_i - sigmoid(logit_i - c_if): monotone in c_if for a given row, so the
        # strongest contributions are the strongest in points too.
        order = np.argsort(-contrib, axis=1, kind="stable")
        picks = []
        for idx, sign in ((order[:, :top], 1), (order[:, ::-1][:, :top], -1)):
            c = np.take_along_axis(contrib, idx, axis=1)
            pts = 100 * (proba[:, None] - expit(logit[:, None] - c))
            ok = (sign * c > 1e-9) & (sign * pts >= min_points)
            rows, ranks = np.nonzero(ok)  # row-major: each row's picks in rank order
            picks.append((rows, idx[rows, ranks], c[rows, ranks], pts[rows, ranks]))
        groups = self.encoder_.groups_
        words = {}
        for j in np.unique(np.concatenate([p[1] for p in picks])) if n else ():
            rows = np.unique(np.concatenate([p[0][p[1] == j] for p in picks]))
            col = groups[j]
            labels = self.encoder_.row_value_labels(X.iloc[rows], col, value_labels.get(col))
            words[j] = dict(zip(rows.tolist(), labels))
        result = [[] for _ in range(n)]
        for rows, fields, c, pts in picks:  # positives of every row first, then negatives
            for i, j, logit_ij, points_ij in zip(rows.tolist(), fields.tolist(), c.tolist(), pts.tolist()):
                result[i].append({"field": groups[j], "label": field_labels.get(groups[j], groups[j]),
                                  "value": words[j][i], "logit": logit_ij, "points": points_ij})
        return proba, result

    def importance(self, field_labels=None):
        """``[(field label, mean |log-odds contribution|)]``, strongest first."""
        check_is_fitted(self, "coef_")
        field_labels = field_labels or {}
        pairs = [(field_labels.get(c, c), float(v)) for c, v in zip(self.encoder_.groups_, self.field_importance_)]
        return sorted(pairs, key=lambda t: -t[1])


FAMILY_LABELS = {"logistic": "logistic regression", "naive_bayes": "naive Bayes", "blend": "blend"}


def describe_spec(spec, calibration=None):
    """A candidate in words, for the registry."""
    parts = []
    if spec["family"] == "logistic":
        parts.append("logistic regression (C=%g)" % spec["C"])
    elif spec["family"] == "naive_bayes":
        parts.append("naive Bayes (smoothing m=%g)" % spec["smoothing"])
    else:
        parts.append("blend %d %% logistic (C=%g) + %d %% naive Bayes (m=%g)" % (
            round(100 * spec["blend_weight"]), spec["C"], round(100 * (1 - spec["blend_weight"])), spec["smoothing"]))
    half_life = spec["half_life_days"]
    parts.append("recency half-life %s" % (f"{half_life:g} days" if half_life else "none"))
    if calibration:
        parts.append("Platt calibration (a=%.2f, b=%+.2f)" % tuple(calibration))
    return ", ".join(parts)


def format_reason(reason):
    """``{"label": "Source", "value": "Newsletter", "points": 9.2}`` -> 'Source: Newsletter (+9)';
    a value of None is not shown: 'Source (+9)'."""
    pts = reason["points"]
    shown = round(pts)
    if shown == 0:
        shown_txt = "+<1" if pts > 0 else "-<1"
    else:
        shown_txt = f"{shown:+d}"
    if reason["value"] is None:
        return f"{reason['label']} ({shown_txt})"
    return f"{reason['label']}: {reason['value']} ({shown_txt})"


def to_frame(rows, columns):
    """Build the model input from a list of dicts (helper for callers and tests)."""
    return pd.DataFrame.from_records(rows, columns=columns)
