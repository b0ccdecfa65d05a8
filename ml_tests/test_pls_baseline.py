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
