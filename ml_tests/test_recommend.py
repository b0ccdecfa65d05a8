"""Recommended products (ml/recommend.py): both lists, cold start, exclusions, reasons,
determinism, and the baselines they are measured against."""
import numpy as np
import pandas as pd
import pytest
from ml import recommend
from ml.recommend import NEW, REORDER, ProductRecommender, evaluate, holdout_relevance, ranking_metrics

START = pd.Timestamp("2024-01-01")


def make_lines(customers=60, seed=0, days=360):
    """Two tribes with their own products: "a" customers buy a1..a8, "b" customers b1..b8;
    every customer orders a few of his tribe's products about monthly, plus now and then
    the shared product "x"."""
    rng = np.random.RandomState(seed)
    rows, order = [], 0
    for c in range(customers):
        tribe = "a" if c % 2 == 0 else "b"
        favourites = rng.choice(8, 4, replace=False) + 1
        for day in range(int(rng.randint(0, 20)), days, 30):
            order += 1
            bought = {f"{tribe}{i}" for i in favourites if rng.rand() < 0.7}
            if rng.rand() < 0.2:
                bought.add("x")
            for item in bought or {f"{tribe}{favourites[0]}"}:
                rows.append((c, item, order, START + pd.Timedelta(days=day + float(rng.rand()))))
    return pd.DataFrame(rows, columns=["customer", "item", "order", "date"])


def items_of(lists, customer):
    return [r["item"] for r in lists[customer]]


@pytest.fixture(scope="module")
def lines():
    return make_lines()


@pytest.fixture(scope="module")
def fitted(lines):
    return ProductRecommender(epochs=10, n_components=8).fit(lines)


def test_reorder_lists_own_products_most_ordered_first_with_their_rhythm(lines, fitted):
    lists = fitted.recommend(lines, [0], REORDER, n=3)
    own = lines[lines.customer == 0].groupby("item")["order"].nunique().sort_values(ascending=False)
    assert items_of(lists, 0)[0] == own.index[0]
    assert [r["score"] for r in lists[0]] == sorted((r["score"] for r in lists[0]), reverse=True)
    top = lists[0][0]
    assert top["reason"] == "every" and 20 <= top["about"] <= 60  # ordered about monthly


def test_orders_on_the_same_day_make_no_rhythm(lines, fitted):
    # three orders of "a1" within hours: bought three times, not "every 0 days"
    burst = pd.DataFrame([(999, "a1", 10_000 + k, START + pd.Timedelta(days=300, hours=k)) for k in range(3)],
                         columns=["customer", "item", "order", "date"])
    top = fitted.recommend(pd.concat([lines, burst], ignore_index=True), [999], REORDER, n=1)[999][0]
    assert (top["item"], top["reason"], top["about"]) == ("a1", "bought", 3)


def test_reorder_fills_with_new_products_when_history_is_short(lines, fitted):
    lists = fitted.recommend(lines, [0], REORDER, n=12)
    own = set(lines[lines.customer == 0]["item"])
    assert len(lists[0]) == 12
    assert set(items_of(lists, 0)[:len(own)]) == own
    assert {r["reason"] for r in lists[0][len(own):]} <= {"also_buy", "similar_customers"}


def test_new_list_offers_the_tribes_products_the_customer_never_bought(lines, fitted):
    lists = fitted.recommend(lines, [0, 1], NEW, n=3)
    for customer, tribe in ((0, "a"), (1, "b")):
        own = set(lines[lines.customer == customer]["item"])
        got = items_of(lists, customer)
        assert not own & set(got)
        assert all(item.startswith(tribe) for item in got), got
        assert all(r["reason"] in ("also_buy", "similar_customers") for r in lists[customer])
        also = [r for r in lists[customer] if r["reason"] == "also_buy"]
        assert also and all(r["about"] in own for r in also)  # "customers who buy <one of yours>"


def test_exclude_days_lets_long_ago_purchases_back_in_the_new_list(lines, fitted):
    now = lines.date.max() + pd.Timedelta(days=1)
    # customer 0 bought a1 once, 300 days ago, and a2 last week
    history = pd.DataFrame({"customer": [0, 0], "item": ["a1", "a2"], "order": [-1, -2],
                            "date": [now - pd.Timedelta(days=300), now - pd.Timedelta(days=7)]})
    ever = items_of(fitted.recommend(history, [0], NEW, n=20, now=now), 0)
    within = items_of(fitted.recommend(history, [0], NEW, n=20, now=now, exclude_days=90), 0)
    assert "a1" not in ever and "a2" not in ever, "by default: never bought only"
    assert "a1" in within, "bought more than 90 days ago: may be offered again"
    assert "a2" not in within


def test_new_customer_gets_his_groups_favourites_then_the_most_popular(lines, fitted):
    groups = pd.Series({c: "tribe a" if c % 2 == 0 else "tribe b" for c in range(60)} | {"newcomer": "tribe b"})
    model = ProductRecommender(epochs=5, n_components=4).fit(lines, groups=groups)
    lists = model.recommend(lines, ["newcomer", "stranger"], NEW, n=3, groups=groups)
    assert not any(item.startswith("a") for item in items_of(lists, "newcomer"))
    assert {r["reason"] for r in lists["newcomer"]} == {"popular_group"}
    assert lists["newcomer"][0]["about"] == "tribe b"
    popularity = lines.groupby("item")["customer"].nunique().sort_values(ascending=False)
    assert items_of(lists, "stranger") == list(popularity.index[:3])
    assert {r["reason"] for r in lists["stranger"]} == {"popular"}
    # and the reorder list of someone who never bought is the same popular products
    assert items_of(model.recommend(lines, ["stranger"], REORDER, n=3), "stranger") == list(popularity.index[:3])


def test_new_product_is_offered_to_customers_of_its_category(lines, fitted):
    categories = {f"a{i}": "A things" for i in range(1, 9)} | {f"b{i}": "B things" for i in range(1, 9)}
    categories |= {"x": "shared", "a-new": "A things"}
    catalogue = [*fitted.items_, "a-new"]
    lists = fitted.recommend(lines, [0, 1], NEW, n=5, items=catalogue, categories=categories)
    a_new = [r for r in lists[0] if r["item"] == "a-new"]
    assert a_new and a_new[0]["reason"] == "new_in_category" and a_new[0]["about"] == "A things"
    # a "b" customer never bought A things: not even at the end of a long list
    assert "a-new" not in items_of(fitted.recommend(lines, [1], NEW, n=20, items=catalogue, categories=categories), 1)
    # without a category a never-sold product is never guessed at
    assert "a-new" not in items_of(fitted.recommend(lines, [0], NEW, n=20, items=catalogue), 0)


def test_only_the_given_catalogue_is_recommended(lines, fitted):
    catalogue = ["a1", "a2", "b1", "x"]  # e.g. the others archived or not saleable
    for kind in (REORDER, NEW):
        lists = fitted.recommend(lines, [0, 1, 2], kind, n=5, items=catalogue)
        assert all(set(items_of(lists, c)) <= set(catalogue) for c in (0, 1, 2))


def test_customer_who_bought_everything_gets_his_reorders_and_no_new_product(lines):
    everything = sorted(lines["item"].unique())
    extra = pd.DataFrame({"customer": "collector", "item": everything, "order": -1, "date": START})
    lines = pd.concat([lines, extra], ignore_index=True)
    model = ProductRecommender(epochs=5, n_components=4).fit(lines)
    assert model.recommend(lines, ["collector"], NEW, n=5) == {"collector": []}
    assert len(model.recommend(lines, ["collector"], REORDER, n=5)["collector"]) == 5


def test_catalogue_of_one_product():
    lines = pd.DataFrame({"customer": [1, 2, 2, 3], "item": ["only"] * 4, "order": [1, 2, 3, 4],
                          "date": pd.date_range(START, periods=4, freq="7D")})
    model = ProductRecommender(epochs=2, n_components=2).fit(lines)
    assert items_of(model.recommend(lines, [2], REORDER, n=5), 2) == ["only"]
    assert model.recommend(lines, [2], NEW, n=5) == {2: []}
    assert items_of(model.recommend(lines, [99], NEW, n=5), 99) == ["only"]


def test_deterministic_with_a_seed(lines):
    first = ProductRecommender(epochs=5, n_components=8, random_state=3).fit(lines)
    second = ProductRecommender(epochs=5, n_components=8, random_state=3).fit(lines)
    assert first.alpha_ == second.alpha_
    assert first.validation_["precision"] == second.validation_["precision"]
    assert first.recommend(lines, range(10), NEW, n=5) == second.recommend(lines, range(10), NEW, n=5)
    # LightFM itself (one thread, seeded): the same factors to the bit
    third, fourth = (ProductRecommender(epochs=5, n_components=8, alpha=0.0, random_state=3).fit(lines)
                     for _ in range(2))
    assert np.array_equal(third.user_factors_, fourth.user_factors_)


def test_alpha_is_chosen_on_the_newest_tail_among_the_grid_and_popularity(lines):
    model = ProductRecommender(epochs=5, n_components=4, validation_days=60).fit(lines)
    chosen = model.validation_["precision"]
    assert set(chosen) == {0.0, 0.25, 0.5, 0.75, 1.0, "popularity"}
    assert model.validation_["cut"] == lines.date.max() - pd.Timedelta(days=60)
    assert chosen[model.alpha_] == max(chosen.values())
    fixed = ProductRecommender(epochs=5, n_components=4, alpha=0.5).fit(lines)
    assert fixed.alpha_ == 0.5 and fixed.validation_ == {}


def test_without_lightfm_it_serves_item_item(lines, monkeypatch):
    monkeypatch.setattr(recommend, "lightfm_import_error", lambda: "ImportError: No module named 'lightfm'")
    model = ProductRecommender().fit(lines)
    assert model.alpha_ == 1.0 and model.user_factors_ is None
    assert "lightfm" in model.lightfm_error_
    assert len(model.recommend(lines, [0], NEW, n=3)[0]) == 3
    # no factorisation ran: nothing is said to come from "customers who buy like this one"
    reasons = {r["reason"] for rows in model.recommend(lines, range(20), NEW, n=12).values() for r in rows}
    assert "similar_customers" not in reasons and "also_buy" in reasons
    with pytest.raises(ImportError, match="LightFM cannot be imported"):
        ProductRecommender(strategy="lightfm").fit(lines)


def test_customer_and_product_features_are_tried_and_kept_only_if_they_win(lines):
    customer_features = pd.DataFrame({"tribe": ["a" if c % 2 == 0 else "b" for c in range(60)],
                                      "size": [["big"] if c < 10 else [] for c in range(60)]}, index=range(60))
    item_features = pd.DataFrame({"shelf": [item[0] for item in sorted(lines["item"].unique())]},
                                 index=sorted(lines["item"].unique()))
    model = ProductRecommender(epochs=5, n_components=8, validation_days=60).fit(
        lines, customer_features=customer_features, item_features=item_features)
    measured = model.validation_["precision"]
    assert {"0 + features", "0.25 + features", "0.5 + features", "0.75 + features"} <= set(measured)
    best = max(v for v in measured.values() if v is not None)
    key = f"{model.alpha_:g} + features" if model.features_used_ else model.alpha_
    assert measured[key] == best
    # fixed either way: with features LightFM learns other representations
    plain = ProductRecommender(epochs=5, n_components=8, alpha=0.0, use_features=False).fit(
        lines, customer_features=customer_features, item_features=item_features)
    featured = ProductRecommender(epochs=5, n_components=8, alpha=0.0, use_features=True).fit(
        lines, customer_features=customer_features, item_features=item_features)
    assert not plain.features_used_ and featured.features_used_
    assert plain.user_factors_.shape == featured.user_factors_.shape
    assert not np.allclose(plain.user_factors_, featured.user_factors_)
    assert len(featured.recommend(lines, [0], NEW, n=3)[0]) == 3


def test_quoted_products_are_a_weaker_signal_not_purchases(lines, fitted):
    quoted = pd.DataFrame({"customer": [0], "item": ["b1"], "order": [-5], "date": [lines.date.max()],
                           "weight": [0.25]})
    with_quote = pd.concat([lines.assign(weight=1.0), quoted], ignore_index=True)
    assert "b1" not in items_of(fitted.recommend(with_quote, [0], REORDER, n=4), 0)
    assert fitted.history(with_quote, [0])[0]["b1"] == (0.25, 0, None, None)
    # on an open quotation already: not offered as new, and never the "X" of "who buy X also buy this"
    new = fitted.recommend(with_quote, [0], NEW, n=20)[0]
    assert "b1" not in [r["item"] for r in new]
    assert "b1" not in [r["about"] for r in new if r["reason"] == "also_buy"]


def test_a_quotation_in_the_holdout_is_no_hit():
    """The quotation wizard quotes the served list: were quotations hits, the list would
    count as its own success."""
    before = pd.DataFrame({"customer": [1, 1], "item": ["a", "b"], "order": [1, 1], "date": [START] * 2})
    after = pd.DataFrame({"customer": [1, 1], "item": ["c", "d"], "order": [5, 6], "weight": [1.0, 0.25],
                          "date": [START + pd.Timedelta(days=100)] * 2})
    assert holdout_relevance(before, after, NEW) == {1: {"c"}}
    assert holdout_relevance(before, after, REORDER) == {1: {"c"}}


def test_baselines_measured_the_issue_way(lines):
    cut = lines.date.max() - pd.Timedelta(days=90)
    before, after = lines[lines.date < cut], lines[lines.date >= cut]
    popularity = ProductRecommender(strategy="popularity").fit(before)
    history = ProductRecommender(strategy="history").fit(before)
    item_item = ProductRecommender(strategy="item_item").fit(before)
    # history baseline: own products first; popularity ranks everything by popularity alone
    assert evaluate(history, before, after, REORDER)["precision"] > evaluate(popularity, before, after,
                                                                             REORDER)["precision"]
    assert evaluate(item_item, before, after, NEW)["precision"] >= evaluate(popularity, before, after,
                                                                           NEW)["precision"]


def test_holdout_relevance_and_metrics():
    before = pd.DataFrame({"customer": [1, 1, 2], "item": ["a", "b", "a"], "order": [1, 1, 2],
                           "date": [START] * 3})
    after = pd.DataFrame({"customer": [1, 1, 3], "item": ["a", "c", "a"], "order": [5, 5, 6],
                          "date": [START + pd.Timedelta(days=100)] * 3})
    assert holdout_relevance(before, after, REORDER) == {1: {"a", "c"}}  # customer 3 is new: not measured
    assert holdout_relevance(before, after, NEW) == {1: {"c"}}
    assert ranking_metrics({}, {1: set()}, 3)["precision"] is None


@pytest.mark.parametrize("params, message", [
    ({"strategy": "magic"}, "strategy"), ({"alpha": 1.5}, "alpha"), ({"alphas": ()}, "alphas"),
    ({"n_components": 0}, "n_components"), ({"validation_days": -1}, "validation_days"),
    ({"use_features": "yes"}, "use_features"),
])
def test_bad_parameters_are_refused_clearly(lines, params, message):
    with pytest.raises(ValueError, match=message):
        ProductRecommender(**params).fit(lines)


def test_bad_input_is_refused_clearly(lines, fitted):
    with pytest.raises(ValueError, match="misses columns"):
        ProductRecommender().fit(lines.drop(columns="order"))
    with pytest.raises(ValueError, match="no order lines"):
        ProductRecommender().fit(lines.iloc[:0])
    with pytest.raises(ValueError, match="kind"):
        fitted.recommend(lines, [0], "upsell")
