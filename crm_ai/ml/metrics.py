"""Model quality on a time-ordered holdout, and the gate a new model must pass.

A random split would let a model see the future of the leads it is judged on
(seasons, campaigns, price changes); the holdout is therefore the most recent
``holdout_fraction`` of closed leads, as a forecast would be used.
"""

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

#: Share of the most recent closed leads kept aside to measure a model.
HOLDOUT_FRACTION = 0.2
#: A new model replaces the active one only if its holdout score is within this
#: ratio of the active model's score on the same holdout (see :func:`quality_gate`).
GATE_RATIO = 0.95
#: Former name of :data:`GATE_RATIO`, from when the gate compared AUCs only.
GATE_AUC_RATIO = GATE_RATIO


def time_ordered_split(order_key, holdout_fraction=HOLDOUT_FRACTION):
    """Indices ``(train, holdout)``: the holdout is the newest ``holdout_fraction``.

    ``order_key`` is sortable (dates or numbers); ties keep input order.

    >>> time_ordered_split([5, 1, 4, 2, 3], 0.4)
    (array([1, 3, 4]), array([2, 0]))
    """
    order = np.argsort(np.asarray(order_key), kind="stable")
    n_holdout = int(round(len(order) * holdout_fraction))
    if not 0 < n_holdout < len(order):
        raise ValueError(f"Cannot keep {holdout_fraction:.0%} of {len(order)} rows as holdout.")
    return order[:-n_holdout], order[-n_holdout:]


def binary_metrics(y_true, p_won, sample_weight=None):
    """``{"auc", "log_loss", "brier", "calibration_error"}`` of won-probabilities against 0/1 outcomes.

    AUC is None when the holdout holds a single class (it is then undefined).
    ``sample_weight``: each row counts that many times (None: once).

    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(m["auc"], 2), round(m["brier"], 4)
    (0.75, 0.1581)
    """
    y_true = np.asarray(y_true).astype(int)
    p_won = np.clip(np.asarray(p_won, dtype=float), 1e-6, 1 - 1e-6)
    w = {"sample_weight": sample_weight}
    auc = float(roc_auc_score(y_true, p_won, **w)) if len(np.unique(y_true)) == 2 else None
    return {
        "auc": auc,
        "log_loss": float(log_loss(y_true, p_won, labels=[0, 1], **w)),
        "brier": float(brier_score_loss(y_true, p_won, **w)),
        "calibration_error": calibration_error(y_true, p_won, **w),
    }


def calibration_error(y_true, p_won, n_bins=10, sample_weight=None):
    """Expected calibration error: how far predicted probabilities are from observed rates.

    Leads are put in ``n_bins`` equal-width probability bins; the error is the mean,
    weighted by bin size, of ``|mean predicted - observed win rate|`` per bin (0 =
    perfectly calibrated; 0.05 = scores off by 5 points on average).

    >>> round(calibration_error([0, 0, 1, 1], [0.1, 0.1, 0.9, 0.9]), 3)
    0.1
    """
    y_true = np.asarray(y_true, dtype=float)
    p_won = np.clip(np.asarray(p_won, dtype=float), 0.0, 1.0)
    if not len(y_true):
        raise ValueError("No rows to measure calibration on.")
    w = np.ones_like(p_won) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    bins = np.minimum((p_won * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, weights=w, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=w * p_won, minlength=n_bins)
                 - np.bincount(bins, weights=w * y_true, minlength=n_bins))
    return float(gap.sum() / counts.sum())


def reliability_bins(y_true, p_won, n_bins=10, sample_weight=None):
    """The reliability diagram's points: per equal-width probability bin holding leads,
    ``[mean predicted, observed win rate, leads]`` (the bins of :func:`calibration_error`;
    with ``sample_weight``, weighted means, and the leads counted once each).

    >>> reliability_bins([0, 0, 1, 1], [0.1, 0.1, 0.9, 0.7], n_bins=2)
    [[0.1, 0.0, 2], [0.8, 1.0, 2]]
    """
    y_true = np.asarray(y_true, dtype=float)
    p_won = np.clip(np.asarray(p_won, dtype=float), 0.0, 1.0)
    w = np.ones_like(p_won) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    bins = np.minimum((p_won * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    total = np.bincount(bins, weights=w, minlength=n_bins)
    predicted = np.bincount(bins, weights=w * p_won, minlength=n_bins)
    observed = np.bincount(bins, weights=w * y_true, minlength=n_bins)
    return [[round(float(predicted[b] / total[b]), 4), round(float(observed[b] / total[b]), 4), int(counts[b])]
            for b in range(n_bins) if counts[b]]


def quality_gate(new_score, active_score, *, has_active=None, higher_is_better=True, ratio=GATE_RATIO,
                 metric="AUC", reference="the active model"):
    """``(accepted, reason)``: may a new model replace the active one?

    ``reference`` names what ``active_score`` belongs to in the reasons (the active
    model, or a baseline when there is no usable active model).

    Both scores must be the same ``metric`` measured on the same holdout; None (or
    NaN) means "could not be measured".  ``has_active`` says whether a usable
    active model exists (default: whether ``active_score`` was measured).

    * ``higher_is_better`` (AUC): accepted when ``new >= ratio * active``;
    * otherwise (a loss: log-loss, Brier): accepted when ``new <= active / ratio``,
      i.e. the new loss may be at most ``1 / ratio`` times the active one.

    The active model is only kept when the new one is measurably worse, or cannot
    be measured while the active one can still score: a holdout holding only won
    (or only lost) leads says nothing about ranking, and must neither replace a
    model nor let a worse one in.  With no active model, or an active model that
    cannot be measured on this holdout, the new model is accepted.

    >>> quality_gate(0.80, None)
    (True, 'no active model')
    >>> quality_gate(0.70, 0.80)
    (False, "holdout AUC 0.700 is below 95% of the active model's 0.800 on the same holdout (0.760)")
    >>> quality_gate(None, None, has_active=True)[0]
    False
    >>> quality_gate(0.62, 0.60, higher_is_better=False, metric="log-loss")[0]  # 0.62 <= 0.60 / 0.95
    True
    >>> quality_gate(0.64, 0.60, higher_is_better=False, metric="log-loss")[1]
    "holdout log-loss 0.640 is above the active model's 0.600 / 95% on the same holdout (0.632; lower is better)"
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio!r}.")
    new_score, active_score = _measured(new_score), _measured(active_score)
    if has_active is None:
        has_active = active_score is not None
    absent = "no active model" if reference == "the active model" else f"{reference} was not measured"
    if new_score is None:
        if has_active:
            return False, (f"the holdout could not measure {metric} (e.g. it holds only won or only lost "
                           f"leads): {reference} is kept")
        return True, f"{absent} (the holdout could not measure {metric}, e.g. a single outcome)"
    if not has_active:
        return True, absent
    if active_score is None:
        return True, f"{reference} could not be measured on this holdout"
    if higher_is_better:
        floor = ratio * active_score
        if new_score >= floor:
            return True, (f"holdout {metric} {new_score:.3f} >= {ratio:.0%} of {reference}'s "
                          f"{active_score:.3f}")
        return False, (f"holdout {metric} {new_score:.3f} is below {ratio:.0%} of {reference}'s "
                       f"{active_score:.3f} on the same holdout ({floor:.3f})")
    ceiling = active_score / ratio
    if new_score <= ceiling:
        return True, (f"holdout {metric} {new_score:.3f} <= {reference}'s {active_score:.3f} / "
                      f"{ratio:.0%} ({ceiling:.3f}; lower is better)")
    return False, (f"holdout {metric} {new_score:.3f} is above {reference}'s {active_score:.3f} / "
                   f"{ratio:.0%} on the same holdout ({ceiling:.3f}; lower is better)")


def _measured(score):
    """``score`` as a float, or None when it could not be measured (None, NaN)."""
    if score is None:
        return None
    score = float(score)
    return None if np.isnan(score) else score
