import numpy as np
import pytest
from ml import GATE_AUC_RATIO, GATE_RATIO, binary_metrics, calibration_error, quality_gate, time_ordered_split


def test_holdout_is_the_newest_fifth():
    dates = np.array(["2024-03-01", "2024-01-01", "2024-05-01", "2024-02-01", "2024-04-01"], dtype="datetime64[D]")
    train, holdout = time_ordered_split(dates)
    assert dates[holdout].min() > dates[train].max()
    assert len(holdout) == 1 and dates[holdout][0] == np.datetime64("2024-05-01")


def test_split_refuses_degenerate_sizes():
    with pytest.raises(ValueError):
        time_ordered_split([1, 2], 0.1)


def test_metrics_and_single_class_holdout():
    m = binary_metrics([0, 1, 1, 0], [0.2, 0.9, 0.7, 0.4])
    assert m["auc"] == 1.0 and 0 < m["brier"] < 0.25
    assert binary_metrics([1, 1], [0.5, 0.9])["auc"] is None


def test_quality_gate():
    assert quality_gate(0.7, None)[0]
    assert quality_gate(GATE_AUC_RATIO * 0.8, 0.8)[0]
    accepted, reason = quality_gate(GATE_AUC_RATIO * 0.8 - 0.001, 0.8)
    assert not accepted and "below" in reason
    assert not quality_gate(None, 0.8)[0]


def test_quality_gate_single_outcome_holdout_keeps_the_active_model():
    accepted, reason = quality_gate(None, None, has_active=True)
    assert not accepted and "only won or only lost" in reason
    accepted, reason = quality_gate(None, None, has_active=False)
    assert accepted and "no active model" in reason


def test_quality_gate_unmeasurable_active_model_is_replaced():
    accepted, reason = quality_gate(0.6, None, has_active=True)
    assert accepted and "could not be measured" in reason



def test_gate_ratio_keeps_its_former_name():
    assert GATE_RATIO == GATE_AUC_RATIO == 0.95


def test_quality_gate_lower_is_better():
    """A loss (log-loss, Brier) may grow by at most 1 / ratio; a lower loss always passes."""
    gate = dict(higher_is_better=False, metric="log-loss")
    assert quality_gate(0.60 / GATE_RATIO, 0.60, **gate)[0]          # exactly at the ceiling
    assert quality_gate(0.30, 0.60, **gate)[0]                       # much better: a higher-is-better gate refuses it
    accepted, reason = quality_gate(0.60 / GATE_RATIO + 0.001, 0.60, **gate)
    assert not accepted and "log-loss" in reason and "above" in reason
    assert not quality_gate(0.90, 0.60, **gate)[0]                   # much worse: a higher-is-better gate accepts it
    # None keeps today's rules whatever the direction
    assert quality_gate(0.5, None, **gate) == (True, "no active model")
    accepted, reason = quality_gate(None, 0.6, **gate)
    assert not accepted and "could not measure log-loss" in reason
    assert quality_gate(None, None, has_active=False, **gate)[0]
    assert quality_gate(0.9, None, has_active=True, **gate)[0]


@pytest.mark.parametrize("higher_is_better, active, new", [(True, 0.80, 0.78), (False, 0.60, 0.62)])
def test_quality_gate_uses_the_ratio(higher_is_better, active, new):
    """The same scores pass at the default 95 % and fail at 99 %: the ratio is not ignored."""
    assert quality_gate(new, active, higher_is_better=higher_is_better)[0]
    accepted, reason = quality_gate(new, active, higher_is_better=higher_is_better, ratio=0.99)
    assert not accepted and "99%" in reason
    # and a looser ratio lets in what the default refuses (AUC 0.70 >= 0.5 * 0.80; loss 0.70 <= 0.60 / 0.5)
    assert not quality_gate(0.70, active, higher_is_better=higher_is_better)[0]
    assert quality_gate(0.70, active, higher_is_better=higher_is_better, ratio=0.5)[0]


def test_quality_gate_reasons_name_the_metric():
    accepted, reason = quality_gate(0.700, 0.800)
    assert reason == ("holdout AUC 0.700 is below 95% of the active model's 0.800 on the same holdout (0.760)")
    accepted, reason = quality_gate(0.2, 0.1, higher_is_better=False, metric="Brier")
    assert not accepted and reason.startswith("holdout Brier 0.200 is above the active model's 0.100")
    accepted, reason = quality_gate(None, 0.1, higher_is_better=False, metric="Brier")
    assert reason == ("the holdout could not measure Brier (e.g. it holds only won or only lost leads): "
                      "the active model is kept")


def test_quality_gate_nan_is_not_measured_and_ratio_is_checked():
    assert not quality_gate(float("nan"), 0.8)[0]
    assert quality_gate(0.7, float("nan"), has_active=True) == (
        True, "the active model could not be measured on this holdout")
    for ratio in (0, 1.5, -0.9, "0.95"):
        with pytest.raises(ValueError, match="ratio"):
            quality_gate(0.8, 0.8, ratio=ratio)

def test_calibration_error():
    rng = np.random.RandomState(0)
    p = rng.uniform(size=20000)
    y = rng.uniform(size=20000) < p  # outcomes drawn at the predicted rates: calibrated
    assert calibration_error(y, p) < 0.02
    assert calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15  # over-confident by 20 points
    assert calibration_error([1, 0], [1.0, 0.0]) == 0.0
