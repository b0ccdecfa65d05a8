"""Lead propensity: probability that an open lead will be won, with reasons.

The model is an L2-regularised logistic regression over :class:`LeadFeatureEncoder`
indicators (categories, tags, binned numbers).  It is a generalised additive model:

    logit P(won | x) = b + sum_f  g_f(x_f)

where ``g_f`` is the sum of the weights of field ``f``'s indicators that are on for
the lead.  That additivity is what makes the reasons exact rather than approximated:

* the contribution of field ``f`` to lead ``i`` is ``c_if = g_f(x_if) - E[g_f]``,
  the log-odds it adds compared with the average training lead, so that
  ``logit(p_i) = logit_ref + sum_f c_if`` holds exactly;
* it is shown in percentage points as ``p_i - sigmoid(logit(p_i) - c_if)``: how much
  lower (or higher) this lead's probability would be if that field were average.

Logistic regression minimises log-loss, so its probabilities are calibrated in the
sense that matters for a pipeline forecast (the Brier score on a time-ordered
holdout measures it); Odoo's naive Bayes is not, because it multiplies
correlated likelihood ratios as if they were independent.

The regularisation strength is chosen on the most recent part of the training data
(time order is the caller's row order), never on the holdout.
"""

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.utils.validation import check_is_fitted

from .features import LeadFeatureEncoder

#: Regularisation strengths tried when ``C="auto"`` (inverse of the L2 penalty).
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
#: Recency half-lives (days) tried when ``half_life_days="auto"``; None = no decay.
#: Win rates drift (seasons, campaigns, a new product): weighting recent leads more
#: lets the model follow, and the newest training rows decide how much.
HALF_LIFE_GRID = (None, 365.0, 180.0, 90.0, 30.0)
#: Share of the (time-ordered) training rows used to choose C.
C_VALIDATION_FRACTION = 0.2
#: Below this many validation rows (or 20 of either class) tuning is noise: defaults are used.
MIN_VALIDATION_ROWS = 200


class LeadPropensityModel(ClassifierMixin, BaseEstimator):
    """Calibrated, explainable win probability for leads.

    Parameters
    ----------
    categorical, multilabel, numeric, boolean : sequence of str
        Input columns by kind (see :class:`LeadFeatureEncoder`).
    C : float or "auto", default="auto"
        Inverse L2 regularisation strength; "auto" picks from ``C_GRID`` by
        log-loss on the newest ``C_VALIDATION_FRACTION`` of the training rows.
    half_life_days : float, None or "auto", default="auto"
        Training leads weigh ``0.5 ** (age_days / half_life_days)`` (``age_days``
        given to :meth:`fit`); None weighs all alike; "auto" picks from
        ``HALF_LIFE_GRID`` with C, on the same validation rows.
    min_frequency, n_bins : int
        Passed to the encoder.
    max_iter : int, default=1000
        Solver iterations.

    Attributes
    ----------
    encoder_ : LeadFeatureEncoder
    classifier_ : LogisticRegression
    classes_ : ndarray, ``[0, 1]`` (1 = won)
    C_ : float, the regularisation strength used
    half_life_days_ : float or None, the recency half-life used
    reference_logit_ : float, log-odds of the "average" training lead
    group_mean_ : ndarray, ``E[g_f]`` per input field on the training rows
    field_importance_ : ndarray, mean ``|c_if|`` per input field on the training rows

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

    def __init__(self, *, categorical=(), multilabel=(), numeric=(), boolean=(),
                 C="auto", half_life_days="auto", min_frequency=5, n_bins=6, max_iter=1000):
        self.categorical = categorical
        self.multilabel = multilabel
        self.numeric = numeric
        self.boolean = boolean
        self.C = C
        self.half_life_days = half_life_days
        self.min_frequency = min_frequency
        self.n_bins = n_bins
        self.max_iter = max_iter

    # -- fitting ---------------------------------------------------------------
    def _new_encoder(self):
        return LeadFeatureEncoder(
            categorical=list(self.categorical), multilabel=list(self.multilabel),
            numeric=list(self.numeric), boolean=list(self.boolean),
            min_frequency=self.min_frequency, n_bins=self.n_bins)

    def _new_classifier(self, C):
        return LogisticRegression(C=C, max_iter=self.max_iter, solver="lbfgs")

    def _check_y(self, y):
        y = np.asarray(y).astype(int).ravel()
        if not set(np.unique(y)) <= {0, 1}:
            raise ValueError("y must hold 0 (lost) and 1 (won) only.")
        if len(np.unique(y)) < 2:
            raise ValueError("Training needs both won and lost leads.")
        return y

    @staticmethod
    def _weights(age_days, half_life):
        if half_life is None or age_days is None:
            return None
        return np.power(0.5, np.clip(age_days, 0, None) / half_life)

    def _grid(self, value, grid, name):
        if value == "auto":
            return grid
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            raise ValueError(f"{name} must be a positive number, None or 'auto', got {value!r}.")
        return (value,)

    #: rows of the validation part (None: the newest C_VALIDATION_FRACTION of them)
    _validation_rows = None

    def _choose_hyperparameters(self, X, y, age_days):
        """(C, half-life) by log-loss on the newest training rows."""
        c_grid = self._grid(self.C, C_GRID, "C")
        if self.C is None:
            raise ValueError("C must be a positive number or 'auto', got None.")
        hl_grid = self._grid(self.half_life_days, HALF_LIFE_GRID, "half_life_days") if age_days is not None else (None,)
        if len(c_grid) == 1 and len(hl_grid) == 1:
            return float(c_grid[0]), hl_grid[0]
        n_val = self._validation_rows or int(len(y) * C_VALIDATION_FRACTION)
        fit_part, val_part = slice(0, len(y) - n_val), slice(len(y) - n_val, None)
        if n_val < MIN_VALIDATION_ROWS or min(np.bincount(y[val_part], minlength=2)) < 20 \
                or len(np.unique(y[fit_part])) < 2:
            return (1.0 if self.C == "auto" else float(self.C)), (None if self.half_life_days == "auto" else self.half_life_days)
        encoder = self._new_encoder().fit(X.iloc[fit_part])
        Xf, Xv = encoder.transform(X.iloc[fit_part]), encoder.transform(X.iloc[val_part])
        # Ages relative to the newest row of the fitting part, as at deployment.
        fit_age = None if age_days is None else age_days[fit_part] - age_days[fit_part].min()
        scores = {}
        for half_life in hl_grid:
            weights = self._weights(fit_age, half_life)
            for C in c_grid:
                clf = self._new_classifier(C).fit(Xf, y[fit_part], sample_weight=weights)
                scores[(C, half_life)] = log_loss(y[val_part], clf.predict_proba(Xv)[:, 1], labels=[0, 1])
        C, half_life = min(scores, key=scores.get)
        return float(C), half_life

    def fit(self, X, y, age_days=None):
        """Fit on leads in time order (oldest first).  Returns self.

        ``age_days``: per row, days between the lead's outcome and the newest
        training lead (for recency weighting); without it all rows weigh alike.
        """
        y = self._check_y(y)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
        if age_days is not None:
            age_days = np.asarray(age_days, dtype=float)
            if age_days.shape != y.shape or not np.all(np.isfinite(age_days)):
                raise ValueError("age_days must be finite, one per row.")
        X = X.reset_index(drop=True)
        self.C_, self.half_life_days_ = self._choose_hyperparameters(X, y, age_days)
        self.encoder_ = self._new_encoder().fit(X)
        Xt = self.encoder_.transform(X)
        self.classifier_ = self._new_classifier(self.C_).fit(
            Xt, y, sample_weight=self._weights(age_days, self.half_life_days_))
        self.classes_ = self.classifier_.classes_
        self.n_features_in_ = len(self.encoder_.groups_)
        self.feature_names_in_ = np.asarray(self.encoder_.groups_, dtype=object)
        terms = self._group_terms(Xt)
        self.group_mean_ = terms.mean(axis=0)
        self.reference_logit_ = float(self.classifier_.intercept_[0] + self.group_mean_.sum())
        # Mean |contribution| per field on the training leads: how much it moves scores.
        self.field_importance_ = np.abs(terms - self.group_mean_).mean(axis=0)
        return self

    # -- prediction --------------------------------------------------------------
    def _group_terms(self, Xt):
        """``g_f(x_i)`` for every row and field: (n, n_fields) dense array."""
        n_groups = len(self.encoder_.groups_)
        G = np.zeros((Xt.shape[1], n_groups))
        G[np.arange(Xt.shape[1]), self.encoder_.feature_group_] = self.classifier_.coef_[0]
        return np.asarray(Xt @ G)

    def decision_function(self, X):
        check_is_fitted(self, "classifier_")
        return self.classifier_.decision_function(self.encoder_.transform(X))

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
        check_is_fitted(self, "classifier_")
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
        field_labels = field_labels or {}
        value_labels = value_labels or {}
        logit, contrib = self.contributions(X)
        proba = expit(logit)
        # points_if = p_i - sigmoid(logit_i - c_if): monotone in c_if for a given row.
        points = 100 * (proba[:, None] - expit(logit[:, None] - contrib))
        groups = self.encoder_.groups_
        words = {col: self.encoder_.row_value_labels(X, col, value_labels.get(col)) for col in groups}
        order = np.argsort(-contrib, axis=1, kind="stable")
        result = []
        for i in range(len(contrib)):
            row, pos, neg = order[i], [], []
            for j in row[:top]:
                if contrib[i, j] > 1e-9 and points[i, j] >= min_points:
                    pos.append(j)
            for j in row[::-1][:top]:
                if contrib[i, j] < -1e-9 and points[i, j] <= -min_points:
                    neg.append(j)
            result.append([{
                "field": groups[j],
                "label": field_labels.get(groups[j], groups[j]),
                "value": words[groups[j]][i],
                "logit": float(contrib[i, j]),
                "points": float(points[i, j]),
            } for j in pos + neg])
        return result

    def importance(self, field_labels=None):
        """``[(field label, mean |log-odds contribution|)]``, strongest first."""
        check_is_fitted(self, "classifier_")
        field_labels = field_labels or {}
        pairs = [(field_labels.get(c, c), float(v)) for c, v in zip(self.encoder_.groups_, self.field_importance_)]
        return sorted(pairs, key=lambda t: -t[1])


def format_reason(reason):
    """``{"label": "Source", "value": "Newsletter", "points": 9.2}`` -> 'Source: Newsletter (+9)'."""
    pts = reason["points"]
    shown = round(pts)
    if shown == 0:
        shown_txt = "+<1" if pts > 0 else "-<1"
    else:
        shown_txt = f"{shown:+d}"
    return f"{reason['label']}: {reason['value']} ({shown_txt})"


def to_frame(rows, columns):
    """Build the model input from a list of dicts (helper for callers and tests)."""
    return pd.DataFrame.from_records(rows, columns=columns)
