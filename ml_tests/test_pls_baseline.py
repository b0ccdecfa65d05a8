import numpy as np
import pandas as pd
import pytest
from ml import OdooPLSBaseline


def test_matches_odoo_formula_by_hand():
    X = pd.DataFrame({"source": ["a", "a", "a", "b", "b", None], "email_state": [None] * 6})
    y = [1, 1, 0, 0, 0, 1]
    pls = OdooPLSBaseline(fields=["source", "email_state"]).fit(X, y)
    # team totals: 3 won / 3 lost.  source: a = (2 + .1, 1 + .1), b = (0 + .1, 2 + .1);
    # email_state is always counted ("False"): (3.1, 3.1).
    s_won = 0.5 * (2.1 / 2.2) * (3.1 / 3.1)
    s_lost = 0.5 * (1.1 / 3.2) * (3.1 / 3.1)
    p = pls.predict_proba(X.iloc[[0]])[0, 1]
    assert p == pytest.approx(round(100 * s_won / (s_won + s_lost), 2) / 100)


def test_clamped_like_odoo():
    X = pd.DataFrame({"s": ["a"] * 50 + ["b"] * 50})
    y = [1] * 50 + [0] * 50
    p = OdooPLSBaseline(fields=["s"]).fit(X, y).predict_proba(X)[:, 1]
    assert p.max() <= 0.9999 and p.min() >= 0.0001


def test_rare_tags_are_ignored_frequent_tags_count():
    rng = np.random.RandomState(0)
    n = 400
    tags = [("hot",) if i % 2 else ("rare",) if i < 20 else ("cold",) for i in range(n)]
    y = np.array([1 if t == ("hot",) and rng.rand() < 0.8 else int(rng.rand() < 0.2) for t in tags])
    X = pd.DataFrame({"tags": tags})
    pls = OdooPLSBaseline(tag_field="tags").fit(X, y)
    p = pls.predict_proba(pd.DataFrame({"tags": [("hot",), ("cold",), ("rare",), ()]}))[:, 1]
    assert p[0] > 0.6 > p[1]
    # "rare" (< 50 leads) has no effect: as if the lead had no tag.
    # (Odoo normalises a tag by the tag totals, not the team's: one lone tag says nothing.)
    assert p[2] == pytest.approx(p[3])


def test_team_without_history_falls_back_to_all_teams():
    X = pd.DataFrame({"s": ["a", "b"] * 20, "team": [1] * 40})
    y = [1, 0] * 20
    pls = OdooPLSBaseline(fields=["s"], team_field="team").fit(X, y)
    same = pls.predict_proba(pd.DataFrame({"s": ["a"], "team": [1]}))[0, 1]
    other = pls.predict_proba(pd.DataFrame({"s": ["a"], "team": [99]}))[0, 1]
    assert same == pytest.approx(other)


@pytest.mark.parametrize("falsy", [0, 0.0, np.int64(0), np.float64(0.0), False, np.bool_(False), "", None, np.nan])
def test_falsy_values_are_skipped_like_odoo(falsy):
    """Odoo counts a pair only ``if value``: a lead whose value is 0 / False is
    scored as if the field were empty, never as a category "0" / "False"."""
    X = pd.DataFrame({"n": pd.Series([5] * 30 + [0] * 30, dtype=object), "email_state": [None] * 60})
    y = [1] * 25 + [0] * 5 + [0] * 25 + [1] * 5
    pls = OdooPLSBaseline(fields=["n", "email_state"]).fit(X, y)
    assert ("n", "0") not in pls.counts_[-1]
    assert pls.counts_[-1][("email_state", "False")] == [30, 30]  # always counted
    probe = pd.DataFrame({"n": pd.Series([falsy, None], dtype=object), "email_state": [None, None]})
    p = pls.predict_proba(probe)[:, 1]
    assert p[0] == pytest.approx(p[1]) == pytest.approx(0.5)


def test_leads_without_team_use_the_all_teams_table():
    """Odoo keeps no per-team table for "no team": those leads read result[-1]."""
    X = pd.DataFrame({"s": ["a", "b"] * 30 + ["a", "b"] * 30, "team": [1] * 60 + [None] * 60})
    y = [1, 0] * 30 + [0, 1] * 30  # "a" wins in team 1, loses without a team
    pls = OdooPLSBaseline(fields=["s"], team_field="team").fit(X, y)
    p = pls.predict_proba(pd.DataFrame({"s": ["a", "a"], "team": [None, 99]}))[:, 1]
    assert p[0] == pytest.approx(p[1]) == pytest.approx(0.5)  # both: the mixed, all-teams table


def test_tag_support_is_checked_per_team_row():
    """Tags with 30 leads in each of two teams: 60 in all, but no Odoo row reaches 50."""
    tags = [("t",)] * 60 + [("u",)] * 60
    X = pd.DataFrame({"tags": tags, "team": ([1] * 30 + [2] * 30) * 2})
    y = [1] * 50 + [0] * 10 + [0] * 50 + [1] * 10
    pls = OdooPLSBaseline(tag_field="tags", team_field="team").fit(X, y)
    probe = pd.DataFrame({"tags": [("t",), ("u",)], "team": [None, None]})
    p = pls.predict_proba(probe)[:, 1]
    assert p[0] == pytest.approx(p[1])
    pls_low = OdooPLSBaseline(tag_field="tags", team_field="team", min_tag_support=20).fit(X, y)
    p = pls_low.predict_proba(probe)[:, 1]
    assert p[0] > p[1]


def test_team_with_one_outcome_is_scored_like_odoo():
    """Odoo's team totals carry the 0.1 smoothing, so a team with only won leads still
    gets a probability (Odoo: 99.02 % here), never "undefined"."""
    X = pd.DataFrame({"s": ["a"] * 10 + ["a", "b"] * 10, "team": [2] * 10 + [1] * 20})
    y = [1] * 10 + [1, 0] * 10
    p = OdooPLSBaseline(fields=["s"], team_field="team").fit(X, y).predict_proba(X.iloc[[0]])[0, 1]
    assert not np.isnan(p) and p > 0.98


def test_overwhelming_evidence_is_clamped_to_99_99_and_0_01():
    """Five fields that each split won from lost: Odoo's product rounds to 100.00 %
    (and 0.00 %); PLS clamps it to 99.99 % (0.01 %), and so must the port."""
    fields = [f"f{k}" for k in range(5)]
    X = pd.DataFrame({f: ["w"] * 50 + ["l"] * 50 for f in fields})
    y = [1] * 50 + [0] * 50
    pls = OdooPLSBaseline(fields=fields).fit(X, y)
    # by hand: each field gives a likelihood ratio 50.1 / 0.1, total 501 ** 5
    assert round(100 / (1 + (0.1 / 50.1) ** 5), 2) == 100.0
    p = pls.predict_proba(X.iloc[[0, 99]])[:, 1]
    assert p[0] == pytest.approx(0.9999, abs=1e-12)
    assert p[1] == pytest.approx(0.0001, abs=1e-12)


def _odoo_probability(team_won, team_lost, rows, field_totals):
    """Odoo's ``_pls_get_naive_bayes_probabilities`` for one lead, from its table."""
    s_won = team_won / (team_won + team_lost)
    s_lost = team_lost / (team_won + team_lost)
    for won, lost in rows:
        s_won *= won / field_totals[0]
        s_lost *= lost / field_totals[1]
    return min(max(round(100 * s_won / (s_won + s_lost), 2), 0.01), 99.99) / 100


def test_each_team_reads_its_own_table():
    """Value "a" wins in team 1 and loses in team 2: a lead is scored with its team's
    frequencies; no team / an unknown team reads the all-teams table."""
    rows = ([("a", 1, 1)] * 6 + [("a", 1, 0)] * 2 + [("b", 1, 1)] * 1 + [("b", 1, 0)] * 3      # team 1
            + [("a", 2, 1)] * 2 + [("a", 2, 0)] * 6 + [("b", 2, 1)] * 3 + [("b", 2, 0)] * 1    # team 2
            + [("a", None, 1)])                                                                  # no team
    X = pd.DataFrame({"source": [r[0] for r in rows], "team": [r[1] for r in rows]})
    y = [r[2] for r in rows]
    pls = OdooPLSBaseline(fields=["source"], team_field="team").fit(X, y)
    probe = pd.DataFrame({"source": ["a", "a", "b", "b", "a", "a"], "team": [1, 2, 1, 2, None, 99]})
    p = pls.predict_proba(probe)[:, 1]
    a = 0.1  # Odoo's smoothing on every frequency row
    # team 1: 7 won / 5 lost; a = (6, 2), b = (1, 3)
    team1 = dict(team_won=7 + a, team_lost=5 + a, field_totals=(6 + a + 1 + a, 2 + a + 3 + a))
    # team 2: 5 won / 7 lost; a = (2, 6), b = (3, 1)
    team2 = dict(team_won=5 + a, team_lost=7 + a, field_totals=(2 + a + 3 + a, 6 + a + 1 + a))
    # all teams: the sum of every team's rows, the no-team rows (1 won "a") included
    a_all, b_all = (6 + a + 2 + a + 1 + a, 2 + a + 6 + a + 0 + a), (1 + a + 3 + a, 3 + a + 1 + a)
    every = dict(team_won=(7 + a) + (5 + a) + (1 + a), team_lost=(5 + a) + (7 + a) + (0 + a),
                 field_totals=(a_all[0] + b_all[0], a_all[1] + b_all[1]))
    expected = [
        _odoo_probability(rows=[(6 + a, 2 + a)], **team1),
        _odoo_probability(rows=[(2 + a, 6 + a)], **team2),
        _odoo_probability(rows=[(1 + a, 3 + a)], **team1),
        _odoo_probability(rows=[(3 + a, 1 + a)], **team2),
        _odoo_probability(rows=[a_all], **every),
        _odoo_probability(rows=[a_all], **every),
    ]
    assert p == pytest.approx(expected, abs=1e-12)
    assert p[0] > 0.7 > 0.3 > p[1]  # the same value, opposite teams, opposite scores
    assert len(set(np.round(expected, 4))) == 5  # every table differs from the others
