"""Model quality on a time-ordered holdout, and the gate a new model must pass.

A random split would let a model see the future of the leads it is judged on
(seasons, campaigns, price changes); the holdout is therefore the most recent
``holdout_fraction`` of closed leads, as a forecast would be used.
"""

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

#: Share of the most recent closed leads kept aside to measure a model.
HOLDOUT_FRACTION = 0.2
#: A new model replaces the active one only if its holdout AUC is at least this
#: share of the active model's AUC on the same holdout.
GATE_AUC_RATIO = 0.95


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


def binary_metrics(y_true, p_won):
    """``{"auc", "log_loss", "brier", "calibration_error"}`` of won-probabilities against 0/1 outcomes.

    AUC is None when the holdout holds a single class (it is then undefined).

    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(m["auc"], 2), round(m["brier"], 4)
    (0.75, 0.1581)
    """
    y_true = np.asarray(y_true).astype(int)
    p_won = np.clip(np.asarray(p_won, dtype=float), 1e-6, 1 - 1e-6)
    auc = float(roc_auc_score(y_true, p_won)) if len(np.unique(y_true)) == 2 else None
    return {
        "auc": auc,
        "log_loss": float(log_loss(y_true, p_won, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, p_won)),
        "calibration_error": calibration_error(y_true, p_won),
    }


def calibration_error(y_true, p_won, n_bins=10):
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
    bins = np.minimum((p_won * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=p_won, minlength=n_bins) - np.bincount(bins, weights=y_true, minlength=n_bins))
    return float(gap.sum() / counts.sum())


def quality_gate(new_auc, active_auc, *, has_active=None, ratio=GATE_AUC_RATIO):
    """``(accepted, reason)``: may a new model replace the active one?

    Both AUCs must be measured on the same holdout; None means "could not be
    measured".  ``has_active`` says whether a usable active model exists (default:
    whether ``active_auc`` was measured).  The active model is only kept when the
    new one is measurably worse, or cannot be measured while the active one can
    still score: a holdout holding only won (or only lost) leads says nothing about
    ranking, and must neither replace a model nor let a worse one in.

    >>> quality_gate(0.80, None)
    (True, 'no active model')
    >>> quality_gate(0.70, 0.80)[0]
    False
    >>> quality_gate(None, None, has_active=True)[0]
    False
    """
    if has_active is None:
        has_active = active_auc is not None
    if new_auc is None:
        if has_active:
            return False, ("the holdout holds only won or only lost leads, so its AUC is undefined: "
                           "the active model is kept")
        return True, "no active model (the holdout holds a single outcome: AUC undefined)"
    if not has_active:
        return True, "no active model"
    if active_auc is None:
        return True, "the active model could not be measured on this holdout"
    floor = ratio * active_auc
    if new_auc >= floor:
        return True, f"holdout AUC {new_auc:.3f} >= {ratio:.0%} of the active model's {active_auc:.3f}"
    return False, (f"holdout AUC {new_auc:.3f} is below {ratio:.0%} of the active model's "
                   f"{active_auc:.3f} on the same holdout ({floor:.3f})")
