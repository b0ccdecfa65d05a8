"""Odoo's Predictive Lead Scoring (PLS) naive Bayes, ported to fit / predict.

The baseline crm_ai must beat.  It reproduces ``crm.lead._pls_get_naive_bayes_probabilities``
(Odoo 18) on a given training set, so both models can be measured on the same
time-ordered holdout:

* per team, count won and lost leads for every (field, value) pair; falsy values
  (empty, 0, False) are skipped, as Odoo's ``if value``, except for ``email_state``
  / ``phone_state`` (``"False"``).  Leads without a team, or whose team has no
  history, use the table of all teams together (Odoo's ``result[-1]``);
* every count gets ``+ alpha`` (Odoo: 0.1) against zero frequencies;
* a tag's row (per team) seen on fewer than ``min_tag_support`` (Odoo: 50) closed
  leads is ignored, in that team's table and in the all-teams sum alike;
* ``S(won) = P(won) * prod P(value | won)``, same for lost, and
  ``P = S(won) / (S(won) + S(lost))``, clamped to [0.01 %, 99.99 %].

One difference, on purpose: PLS also uses ``stage_id``, which on a *closed* lead is
the stage it was won or lost in and would leak the outcome into a holdout.  The
port leaves stage out; Odoo itself is measured on open leads in ``bench/``.
"""

from collections import defaultdict

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .features import _as_category, _as_label_set

ALWAYS_COUNTED = ("email_state", "phone_state")


def _pls_key(value):
    """Cell -> the value PLS counts, or None.

    Odoo keeps a (field, value) pair only ``if value``: besides empty cells, a
    numeric 0 / 0.0 and a boolean False are skipped too (``_as_category`` would
    keep them as "0" / "False").
    """
    if isinstance(value, (bool, int, float, np.bool_, np.number)) and not value:
        return None
    return _as_category(value)


class OdooPLSBaseline(ClassifierMixin, BaseEstimator):
    """Odoo 18 PLS naive Bayes.

    Parameters
    ----------
    fields : sequence of str
        Single-valued columns (PLS's ``crm.pls_fields``), compared as strings.
    tag_field : str or None
        Column holding a list of tags, or None.
    team_field : str or None
        Column with the team (frequencies are per team, as in Odoo).
    alpha : float, default=0.1
    min_tag_support : int, default=50

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"source": ["a"] * 6 + ["b"] * 6, "team": [1] * 12})
    >>> y = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    >>> pls = OdooPLSBaseline(fields=["source"], team_field="team").fit(X, y)
    >>> [float(round(p, 3)) for p in pls.predict_proba(X.iloc[[0, 6]])[:, 1]]
    [0.823, 0.177]
    """

    def __init__(self, *, fields=(), tag_field=None, team_field=None, alpha=0.1, min_tag_support=50):
        self.fields = fields
        self.tag_field = tag_field
        self.team_field = team_field
        self.alpha = alpha
        self.min_tag_support = min_tag_support

    def _pairs(self, X):
        """Per row: the (field, value) pairs PLS counts."""
        columns = {f: X[f].tolist() for f in self.fields}
        tags = X[self.tag_field].tolist() if self.tag_field else None
        rows = []
        for i in range(len(X)):
            pairs = []
            for f in self.fields:
                key = _pls_key(columns[f][i])
                if key is not None:
                    pairs.append((f, key))
                elif f in ALWAYS_COUNTED:
                    pairs.append((f, "False"))
            if tags is not None:
                pairs += [("tag_id", t) for t in _as_label_set(tags[i])]
            rows.append(pairs)
        return rows

    def _teams(self, X):
        if not self.team_field:
            return [0] * len(X)
        return [_as_category(v) or 0 for v in X[self.team_field]]

    def fit(self, X, y):
        y = np.asarray(y).astype(int)
        # team (0: no team) -> (field, value) -> [won, lost]; -1: all teams together.
        counts = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        totals = defaultdict(lambda: [0, 0])  # team -> [won, lost]
        for team, pairs, won in zip(self._teams(X), self._pairs(X), y):
            for t in (team, -1):
                totals[t][0 if won else 1] += 1
                for pair in pairs:
                    counts[t][pair][0 if won else 1] += 1
        self.counts_ = {t: dict(c) for t, c in counts.items()}
        self.totals_ = dict(totals)
        self.classes_ = np.array([0, 1])
        return self

    def _rows(self, team):
        """The frequency rows Odoo reads for ``team``'s table, rare tags dropped.

        Odoo stores one row per (team, field, value) with ``alpha`` added to both
        counts, and drops a tag row under ``min_tag_support`` before summing; the
        all-teams table (-1) is the sum of the kept rows of every team, the no-team
        rows included (so a value seen in k teams carries k * alpha there).
        """
        teams = [t for t in self.counts_ if t != -1] if team == -1 else [team]
        for t in teams:
            for pair, (won, lost) in self.counts_[t].items():
                won, lost = won + self.alpha, lost + self.alpha
                if pair[0] == "tag_id" and won + lost < self.min_tag_support:
                    continue
                yield pair, won, lost

    def _table(self, team):
        """Odoo's per-team result: smoothed counts and per-field totals."""
        table, field_totals = defaultdict(lambda: [0.0, 0.0]), defaultdict(lambda: [0.0, 0.0])
        for pair, won, lost in self._rows(team):
            for totals in (table[pair], field_totals[pair[0]]):
                totals[0] += won
                totals[1] += lost
        return dict(table), field_totals

    def _team_totals(self, team):
        """Won and lost leads of ``team`` as Odoo reads them: from its first stage's
        frequency row(s), which carry ``alpha`` like every row (per team for -1)."""
        teams = [t for t in self.totals_ if t != -1] if team == -1 else [team]
        return (sum(self.totals_[t][0] + self.alpha for t in teams),
                sum(self.totals_[t][1] + self.alpha for t in teams))

    def predict_proba(self, X):
        check_is_fitted(self, "counts_")
        tables = {}
        out = np.empty(len(X))
        for i, (team, pairs) in enumerate(zip(self._teams(X), self._pairs(X))):
            # No team (0), or a team without history: the all-teams table, as Odoo.
            team = team if team != 0 and team in self.counts_ else -1
            if team not in tables:
                tables[team] = self._table(team)
            table, field_totals = tables[team]
            team_won, team_lost = self._team_totals(team)
            if not team_won or not team_lost:  # only without smoothing (alpha = 0), as in Odoo
                out[i] = np.nan
                continue
            total = team_won + team_lost
            s_won, s_lost = team_won / total, team_lost / total
            for pair in pairs:
                if pair in table:
                    won_total, lost_total = field_totals[pair[0]]
                    s_won *= table[pair][0] / won_total
                    s_lost *= table[pair][1] / lost_total
            out[i] = min(max(round(100 * s_won / (s_won + s_lost), 2), 0.01), 99.99) / 100
        return np.column_stack([1 - out, out])
