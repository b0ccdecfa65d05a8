import numpy as np
import pandas as pd
import pytest
from ml.features import NOT_SET, OTHER, LeadFeatureEncoder


def frame(**cols):
    return pd.DataFrame(cols)


def test_categories_other_and_not_set():
    X = frame(src=["a", "a", "b", None, "c", "a"])
    enc = LeadFeatureEncoder(categorical=["src"], min_frequency=2).fit(X)
    assert enc.categories_["src"] == ["a"]  # b and c are rare: they share "(other)"
    M = enc.transform(frame(src=["a", "b", None, "never-seen"])).toarray()
    labels = enc.feature_value_
    assert [labels[j] for j in M.argmax(axis=1)] == ["a", OTHER, NOT_SET, OTHER]
    assert (M.sum(axis=1) == 1).all()


def test_integer_ids_and_float_ids_are_the_same_category():
    enc = LeadFeatureEncoder(categorical=["team"], min_frequency=1).fit(frame(team=[1, 2, 2]))
    # pandas turns an id column with a missing value into floats: 2.0 must still be team 2
    M = enc.transform(frame(team=[2.0, np.nan])).toarray()
    assert enc.feature_value_[M[0].argmax()] == "2"
    assert enc.feature_value_[M[1].argmax()] == NOT_SET


def test_multilabel():
    X = frame(tags=[("x", "y"), (), ["x"], None, ("z",)])
    enc = LeadFeatureEncoder(multilabel=["tags"], min_frequency=2).fit(X)
    M = enc.transform(X).toarray()
    assert enc.categories_["tags"] == ["x"]
    assert M.tolist() == [[1, 1], [0, 0], [0, 1], [0, 0], [1, 0]]  # columns: (other), x


def test_numeric_bins_and_missing():
    X = frame(rev=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, None])
    enc = LeadFeatureEncoder(numeric=["rev"], n_bins=3).fit(X)
    M = enc.transform(frame(rev=[0.5, 3.5, 100.0, None])).toarray()
    assert M.sum(axis=1).tolist() == [1, 1, 1, 1]
    assert M[:, 0].tolist() == [0, 0, 0, 1]  # (not set)
    assert M[0].argmax() < M[1].argmax() < M[2].argmax()
    assert enc.feature_value_[M[2].argmax()].startswith("over ")


def test_constant_numeric_column():
    enc = LeadFeatureEncoder(numeric=["x"]).fit(frame(x=[3.0] * 10))
    assert enc.transform(frame(x=[3.0, 9.0])).shape == (2, enc.n_features_out_)


def test_boolean():
    enc = LeadFeatureEncoder(boolean=["ok"]).fit(frame(ok=[True, False]))
    assert enc.transform(frame(ok=[True, False, None])).toarray().ravel().tolist() == [1, 0, 0]


def test_groups_map_back_to_columns():
    X = frame(a=["x", "y"], b=[1.0, 2.0], c=[True, False])
    enc = LeadFeatureEncoder(categorical=["a"], numeric=["b"], boolean=["c"], min_frequency=1).fit(X)
    assert enc.groups_ == ["a", "b", "c"]
    assert len(enc.feature_group_) == enc.n_features_out_
    assert set(enc.feature_group_) == {0, 1, 2}


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="missing"):
        LeadFeatureEncoder(categorical=["nope"]).fit(frame(a=[1]))
    with pytest.raises(ValueError, match="two kinds"):
        LeadFeatureEncoder(categorical=["a"], numeric=["a"]).fit(frame(a=[1]))
    with pytest.raises(TypeError, match="DataFrame"):
        LeadFeatureEncoder(categorical=["a"]).fit([[1]])


def test_row_value_labels_use_display_names():
    X = frame(src=[7, None], tags=[(1, 2), ()], rev=[1234.0, None], ok=[True, False])
    enc = LeadFeatureEncoder(categorical=["src"], multilabel=["tags"], numeric=["rev"], boolean=["ok"],
                             min_frequency=1).fit(X)
    assert enc.row_value_labels(X, "src", {"7": "Newsletter"}) == ["Newsletter", NOT_SET]
    assert enc.row_value_labels(X, "tags", {"1": "VIP", "2": "B2B"}) == ["B2B, VIP", "none"]
    assert enc.row_value_labels(X, "rev") == ["1,234", NOT_SET]
    assert enc.row_value_labels(X, "ok") == ["yes", "no"]


def test_categories_keep_false_apart_from_zero_and_read_unhashable_cells():
    """``False`` is an empty cell and ``0`` a value, even in one column; a list in a
    categorical column is read as its text, never an error."""
    X = pd.DataFrame({"c": [0, False, 0, 1, True, None, 0, 1]})
    enc = LeadFeatureEncoder(categorical=["c"], min_frequency=1).fit(X)
    dense = enc.transform(X).toarray()
    labels = [enc.feature_value_[j] for j in dense.argmax(axis=1)]
    assert labels == ["0", "(not set)", "0", "1", "True", "(not set)", "0", "1"]
    assert enc.row_value_labels(X, "c") == labels
    odd = pd.DataFrame({"c": [["a"], ["a"], "b"]})
    enc = LeadFeatureEncoder(categorical=["c"], min_frequency=1).fit(odd)
    assert enc.transform(odd).shape == (3, 4)


def test_numeric_bins_cut_the_weighted_population():
    """With sample weights the bins are quantiles of the population the rows stand for (a
    row weighing 9 counts as 9 rows); without, as before."""
    X = pd.DataFrame({"age": np.arange(1.0, 101.0)})
    weights = np.where(X["age"] > 50, 9.0, 1.0)
    plain = LeadFeatureEncoder(numeric=["age"], n_bins=2).fit(X)
    weighted = LeadFeatureEncoder(numeric=["age"], n_bins=2).fit(X, sample_weight=weights)
    assert plain.bin_edges_["age"].tolist() == [50.5]
    assert weighted.bin_edges_["age"].tolist() == [73.0]  # 50 + 9 x 23 rows: half of the weight
    equal = LeadFeatureEncoder(numeric=["age"], n_bins=2).fit(X, sample_weight=np.ones(100))
    assert equal.bin_edges_["age"].tolist() == [50.5], "leads that weigh alike are binned as without weights"
