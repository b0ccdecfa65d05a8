import numpy as np
import pytest

from ml import GATE_AUC_RATIO, binary_metrics, calibration_error, quality_gate, time_ordered_split


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


def test_calibration_error():
    rng = np.random.RandomState(0)
    p = rng.uniform(size=20000)
    y = rng.uniform(size=20000) < p  # outcomes drawn at the predicted rates: calibrated
    assert calibration_error(y, p) < 0.02
    assert calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15  # over-confident by 20 points
    assert calibration_error([1, 0], [1.0, 0.0]) == 0.0
