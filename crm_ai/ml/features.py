"""Encode lead rows (a DataFrame) into a sparse design matrix whose columns are
grouped back to the input fields, so a linear model's weights can be read per field.

Kinds of input column:

* ``categorical``: one indicator per value seen at least ``min_frequency`` times
  in training; rarer values share an "(other)" indicator, empty ones a "(not set)"
  indicator.  Values unseen at fit time go to "(other)": never an error.
* ``multilabel``: each cell is a list / tuple / set of values (tags); one
  indicator per frequent value, several may be on at once.
* ``numeric``: cut in up to ``n_bins`` quantile bins (edges from training data),
  one indicator per bin plus "(not set)" for NaN.  Binning lets a linear model
  learn a non-monotone effect (a mid-size deal can beat a huge one) while every
  bin still reads as words ("Expected revenue: 5,000 - 20,000").
* ``boolean``: one indicator for True (False / empty is the reference).
"""

import math

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

OTHER = "(other)"
NOT_SET = "(not set)"


def _is_empty(value):
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return value is False or value == ""


def _as_category(value):
    """Cell -> category key (str); ``None`` for an empty cell."""
    if _is_empty(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _as_label_set(value):
    """Cell -> tuple of label keys (str); empty tuple for an empty cell."""
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return tuple(str(v) for v in value if not _is_empty(v))
    if _is_empty(value):
        return ()
    return (str(value),)


def _factorize(column):
    """``(codes, distinct values)`` of a column; code -1 for None / NaN.

    A hash table merges values Python calls equal (``0 == False``, ``1 == True == 1.0``),
    which ``_as_category`` keeps apart (False is empty, 0 is "0"): a column mixing
    booleans with numbers, or holding unhashable cells, is factorized on its keys instead.
    """
    values = pd.Series(column, dtype=object).to_numpy()
    kinds = {type(v) for v in values}
    if not ({bool, np.bool_} & kinds and kinds & {int, float, np.integer, np.floating, np.int64, np.float64}):
        try:
            return pd.factorize(values, use_na_sentinel=True)
        except TypeError:  # unhashable cells
            pass
    keys = np.array([_as_category(v) for v in values], dtype=object)
    return pd.factorize(keys, use_na_sentinel=True)


def format_number(value):
    """Short human form of a bin edge: 1234567 -> '1.2M', 5000 -> '5,000'."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 10 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


class LeadFeatureEncoder(TransformerMixin, BaseEstimator):
    """One-hot / binned encoding of lead fields into a CSR matrix.

    Parameters
    ----------
    categorical, multilabel, numeric, boolean : sequence of str
        Column names of each kind.  A column may appear in one kind only.
    min_frequency : int, default=5
        Categories (and tags) seen fewer times than this in training share the
        "(other)" indicator, which keeps the model away from one-off values.
    n_bins : int, default=6
        Maximum number of quantile bins per numeric column.

    Attributes
    ----------
    groups_ : list of str
        The input columns, in the order of the groups.
    feature_group_ : ndarray of shape (n_features_out,)
        Index in ``groups_`` of the input column each output column comes from.
    feature_value_ : list of str
        Human label of each output column's value ("Newsletter", "5,000 - 20,000").
    categories_ : dict
        Per categorical / multilabel column, the kept category keys.
    bin_edges_ : dict
        Per numeric column, the inner bin edges (bins are ``(-inf, e0], (e0, e1], ...``).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"source": ["a", "a", "b", None], "revenue": [1.0, 5.0, 9.0, None]})
    >>> enc = LeadFeatureEncoder(categorical=["source"], numeric=["revenue"],
    ...                          min_frequency=1, n_bins=2).fit(X)
    >>> enc.transform(X).shape
    (4, 7)
    >>> enc.feature_value_[:3]
    ['(not set)', '(other)', 'a']
    """

    def __init__(self, *, categorical=(), multilabel=(), numeric=(), boolean=(),
                 min_frequency=5, n_bins=6):
        self.categorical = categorical
        self.multilabel = multilabel
        self.numeric = numeric
        self.boolean = boolean
        self.min_frequency = min_frequency
        self.n_bins = n_bins

    def _check_columns(self, X):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"LeadFeatureEncoder expects a pandas DataFrame, got {type(X).__name__}.")
        columns = [*self.categorical, *self.multilabel, *self.numeric, *self.boolean]
        if len(set(columns)) != len(columns):
            raise ValueError("A column is declared under two kinds: %s" % sorted(
                c for c in set(columns) if columns.count(c) > 1))
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"Columns missing from the input: {missing}")
        if int(self.min_frequency) < 1 or int(self.n_bins) < 1:
            raise ValueError("min_frequency and n_bins must be >= 1.")
        return columns

    def fit(self, X, y=None, sample_weight=None):
        """Learn the categories (at least ``min_frequency`` rows each) and the numeric bins
        (quantiles; weighted by ``sample_weight`` when given, so that the bins cut the
        population the rows stand for)."""
        self.groups_ = self._check_columns(X)
        self.categories_ = {}
        self.bin_edges_ = {}
        values, groups = [], []
        for gi, col in enumerate(self.groups_):
            if col in self.categorical or col in self.multilabel:
                if col in self.categorical:
                    keys = pd.Series([_as_category(v) for v in X[col]], dtype=object).dropna()
                else:
                    keys = pd.Series([k for v in X[col] for k in _as_label_set(v)], dtype=object)
                counts = keys.value_counts()
                kept = sorted(counts[counts >= self.min_frequency].index)
                self.categories_[col] = kept
                labels = ([NOT_SET] if col in self.categorical else []) + [OTHER] + kept
            elif col in self.numeric:
                num = pd.to_numeric(X[col], errors="coerce").astype(float).to_numpy()
                finite = np.isfinite(num)
                quantiles = np.linspace(0, 1, self.n_bins + 1)[1:-1]
                weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)[finite]
                if not finite.any():
                    edges = np.array([])
                elif weights is None or np.ptp(weights) == 0:  # equal weights: the plain quantiles
                    edges = np.unique(np.quantile(num[finite], quantiles))
                else:
                    edges = np.unique(np.quantile(num[finite], quantiles, method="inverted_cdf", weights=weights))
                self.bin_edges_[col] = edges
                labels = [NOT_SET] + self._bin_labels(edges)
            else:
                labels = ["yes"]
            values += labels
            groups += [gi] * len(labels)
        self.feature_value_ = values
        self.feature_group_ = np.asarray(groups, dtype=np.int64)
        self._offsets_ = np.concatenate([[0], np.cumsum(np.bincount(self.feature_group_, minlength=len(self.groups_)))])
        self.n_features_out_ = len(values)
        return self

    @staticmethod
    def _bin_labels(edges):
        if not len(edges):
            return ["any"]
        labels = [f"up to {format_number(edges[0])}"]
        labels += [f"{format_number(lo)} - {format_number(hi)}" for lo, hi in zip(edges[:-1], edges[1:])]
        labels.append(f"over {format_number(edges[-1])}")
        return labels

    def transform(self, X):
        check_is_fitted(self, "groups_")
        self._check_columns(X)
        n = len(X)
        rows, cols = [], []
        for gi, col in enumerate(self.groups_):
            base = self._offsets_[gi]
            if col in self.categorical:
                index = {k: i + 2 for i, k in enumerate(self.categories_[col])}
                # each distinct cell is put in words once (100,000 leads hold a few dozen values)
                codes, uniques = _factorize(X[col])
                unique_local = np.fromiter((0 if (k := _as_category(v)) is None else index.get(k, 1) for v in uniques),
                                           dtype=np.int64, count=len(uniques))
                local = np.where(codes < 0, 0, unique_local[np.maximum(codes, 0)]) if len(uniques) else np.zeros(n, np.int64)
                rows.append(np.arange(n))
                cols.append(base + local)
            elif col in self.multilabel:
                index = {k: i + 1 for i, k in enumerate(self.categories_[col])}
                r, c = [], []
                for i, v in enumerate(X[col]):
                    seen = set()
                    for k in _as_label_set(v):
                        j = index.get(k, 0)
                        if j not in seen:
                            seen.add(j)
                            r.append(i)
                            c.append(j)
                rows.append(np.asarray(r, dtype=np.int64))
                cols.append(base + np.asarray(c, dtype=np.int64))
            elif col in self.numeric:
                num = pd.to_numeric(X[col], errors="coerce").astype(float).to_numpy()
                edges = self.bin_edges_[col]
                local = np.where(np.isfinite(num), 1 + np.searchsorted(edges, num, side="left"), 0)
                rows.append(np.arange(n))
                cols.append(base + local)
            else:
                on = X[col].fillna(False).astype(bool).to_numpy()
                rows.append(np.flatnonzero(on))
                cols.append(np.full(on.sum(), base))
        r = np.concatenate(rows) if rows else np.array([], dtype=np.int64)
        c = np.concatenate(cols) if cols else np.array([], dtype=np.int64)
        return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, self.n_features_out_))

    def row_value_labels(self, X, col, value_labels=None):
        """The words for each row's value of ``col`` (for reasons).

        ``value_labels`` maps raw keys (record ids as str) to display names.
        """
        value_labels = value_labels or {}
        name = lambda k: value_labels.get(k, k)
        if col in self.categorical:
            codes, uniques = _factorize(X[col])
            words = [NOT_SET if (k := _as_category(v)) is None else name(k) for v in uniques] + [NOT_SET]
            return [words[c] for c in codes.tolist()]  # code -1 (empty) is the last word
        if col in self.multilabel:
            return [", ".join(sorted(name(k) for k in ks)) if (ks := _as_label_set(v)) else "none" for v in X[col]]
        if col in self.numeric:
            num = pd.to_numeric(X[col], errors="coerce").astype(float).to_numpy()
            return [NOT_SET if not np.isfinite(v) else format_number(v) for v in num]
        return ["yes" if bool(v) and not _is_empty(v) else "no" for v in X[col]]
