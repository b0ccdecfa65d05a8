"""Recommended products: what a customer will order again, and which new product to offer.

Pure numpy / scipy / pandas (LightFM when it is installed; no Odoo).  Input is one row
per product of an order::

    lines: DataFrame with columns customer, item, order (any id), date (datetime) and
           optionally weight (float, default 1: a confirmed order; a product only quoted
           on a lead's quotation is a weaker signal, e.g. 0.25)

A (customer, product, order) row counts once, whatever the quantity: "how many orders
held it" is what tells a habit, a single bulk order does not.

Two questions, two lists, measured apart (``bench/bench_recommend.py``):

* ``REORDER``, "what will they buy again": the customer's own products, in most orders
  first (ties: the more popular product first), then, if the customer bought fewer
  than N products, the best new ones.  On real data the customer's history is by far
  the best answer to this question (Online Retail, precision@10: own history 0.34,
  popularity 0.11, LightFM 0.24), so no model is allowed to reorder it.
* ``NEW``, "what to offer next": products the customer never bought (or not within
  ``exclude_days``), ranked by a blend of two collaborative scores, each standardised
  per customer (z-scores, so neither dominates by its scale)::

      score(c, i) = alpha * z(item-item(c, i)) + (1 - alpha) * z(LightFM(c, i))

  item-item is the classic "customers who buy X also buy Y": the sum, over the
  customer's products X, of the cosine between X's and Y's customer sets (each product
  keeps its ``neighbours`` nearest products).  LightFM is a WARP matrix factorisation
  (``n_components`` factors; one thread and a fixed seed, so it is deterministic).

``alpha`` is chosen on the newest ``validation_days`` of the training orders, among the
grid ``alphas`` and popularity alone, by precision@k (``alpha = 1``: item-item alone,
``0``: LightFM alone), so on that validation the blend is never below item-item or
popularity alone.  Without LightFM (not installed) only ``alpha = 1`` is possible.

Cold start:

* a customer with no history gets the products most customers of his group bought (a
  group: segment, country..., with ``min_group_customers`` customers at least), else the
  most popular ones;
* a product with no sale yet but a known category is scored, for a customer who bought
  in that category, with the mean score of the sold products of its category (what the
  customer thinks of the category), and only shown if that beats other products.

Every recommendation has a reason, as ``(code, about)``: ``"every"`` (reorder: ordered
every ~``about`` days), ``"bought"`` (reorder: in ``about`` orders), ``"also_buy"``
(customers who buy product ``about`` also buy this), ``"similar_customers"`` (LightFM:
customers who buy like this one), ``"popular_group"`` (popular in group ``about``),
``"popular"``, ``"new_in_category"`` (a new product of category ``about``).
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp

REORDER = "reorder"
NEW = "new"
KINDS = (REORDER, NEW)
STRATEGIES = ("hybrid", "popularity", "history", "item_item", "lightfm")
DAY = pd.Timedelta(days=1)
#: "ordered every ~N days" needs this many orders at least (two make one interval: not a rhythm).
MIN_ORDERS_FOR_RHYTHM = 3
#: Customers rows scored at once (dense scores: rows x products floats).
SCORE_CHUNK = 256
#: Products whose neighbours are computed at once (dense co-occurrences: chunk x products).
SIMILARITY_CHUNK = 256


def lightfm_import_error():
    """None when LightFM can be imported, else the reason (the engine then serves item-item)."""
    try:
        import lightfm  # noqa: F401
    except Exception as error:  # ImportError, or a broken compiled extension
        return f"{type(error).__name__}: {error}"
    return None


#: Marks a frame ``_lines`` already normalised (pandas keeps ``attrs`` through filters): a
#: 5-million-line frame is not copied again by every step of a fit.
_NORMALISED = "crm_ai_recommend_lines"


def _lines(lines):
    if lines.attrs.get(_NORMALISED):
        return lines
    required = {"customer", "item", "order", "date"}
    missing = required - set(lines.columns)
    if missing:
        raise ValueError(f"lines misses columns {sorted(missing)}")
    lines = lines.loc[:, [c for c in ("customer", "item", "order", "date", "weight") if c in lines.columns]].copy()
    lines["date"] = pd.to_datetime(lines["date"])
    if "weight" not in lines:
        lines["weight"] = 1.0
    lines["weight"] = pd.to_numeric(lines["weight"], errors="coerce").fillna(0.0).astype(float)
    lines = lines[lines["weight"] > 0]
    # one row per (customer, product, order): the strongest signal of that order
    lines = (lines.sort_values("weight", ascending=False, kind="stable")
             .drop_duplicates(["customer", "item", "order"])
             .reset_index(drop=True))
    lines.attrs[_NORMALISED] = True
    return lines


def _top_k_rows(matrix, k):
    """Keep the ``k`` largest values of every row of a dense array (others set to 0)."""
    if matrix.shape[1] > k:
        cut = np.argpartition(-matrix, k - 1, axis=1)[:, k - 1:k]
        threshold = np.take_along_axis(matrix, cut, axis=1)
        matrix = np.where(matrix >= threshold, matrix, 0.0)
    return matrix


def _sorted_unique(values):
    """Distinct values, sorted (ids of mixed types: by type, then value), as an array."""
    unique = pd.unique(values)
    try:
        return np.sort(unique)
    except TypeError:
        return np.array(sorted(unique, key=lambda v: (type(v).__name__, v)), dtype=object)


def feature_matrix(ids, frame):
    """LightFM's feature matrix of ``ids``: each one's own indicator, plus one indicator per
    (column, value) of ``frame`` (indexed by id; a cell may be a list, e.g. tags; empty cells
    add nothing), every row normalised to sum to 1 (LightFM's advice for mixed features).

    >>> m = feature_matrix(["a", "b"], pd.DataFrame({"country": ["BE", None]}, index=["a", "b"]))
    >>> m.shape, m.toarray().round(2).tolist()
    ((2, 3), [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    """
    rows, cols, vocabulary = list(range(len(ids))), list(range(len(ids))), {}
    if frame is not None and len(frame.columns):
        frame = frame.reindex(list(ids))
        for column in frame.columns:
            for row, cell in enumerate(frame[column].tolist()):
                values = cell if isinstance(cell, (list, tuple, set)) else [cell]
                for value in values:
                    if value is None or (isinstance(value, float) and np.isnan(value)):
                        continue
                    rows.append(row)
                    cols.append(len(ids) + vocabulary.setdefault((column, value), len(vocabulary)))
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(ids), len(ids) + len(vocabulary)))
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1.0)) @ matrix, dtype=np.float32)


def _standardise(scores, valid):
    """Per-row z-scores over the ``valid`` entries (a row without any: 0)."""
    valid = np.broadcast_to(valid, scores.shape)
    count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    mean = np.where(valid, scores, 0.0).sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(valid, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    return (scores - mean) / np.where(spread > 0, spread, 1.0)


class ProductRecommender:
    """Both recommendation lists for every customer (see the module docstring).

    Parameters
    ----------
    strategy : "hybrid" (default), or one of the baselines it is measured against:
        "popularity" (most customers bought it), "history" (the customer's own
        products, for both lists: the new list then falls back to popularity),
        "item_item", "lightfm".
    alpha : blend weight of item-item (None: chosen on the validation tail; "popularity":
        the new list is popularity, e.g. the choice of an earlier fit).
    alphas : the grid ``alpha`` is chosen from.
    n_components, epochs, learning_rate : LightFM's.
    neighbours, max_similarities : item-item keeps every similarity while there are
        at most ``max_similarities`` (products squared), else the largest ones per
        product, ``max(neighbours, max_similarities / products)`` of them.
    validation_days : the newest days of the training orders used to choose ``alpha``.
    k : the list length precision is measured at when choosing.
    min_group_customers : a group's popularity is used for customers with no history
        only if that many customers of the group bought something.
    random_state : LightFM's seed.
    use_features : whether LightFM also learns from the customer and product features
        given to ``fit`` (None: tried on the validation tail next to LightFM without them,
        kept only if it wins there).
    """

    def __init__(self, strategy="hybrid", alpha=None, alphas=(0.0, 0.25, 0.5, 0.75, 1.0), n_components=64,
                 epochs=30, learning_rate=0.05, neighbours=100, max_similarities=10_000_000, validation_days=90, k=10,
                 min_group_customers=5, random_state=0, use_features=None):
        self.strategy = strategy
        self.alpha = alpha
        self.alphas = alphas
        self.n_components = n_components
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.neighbours = neighbours
        self.max_similarities = max_similarities
        self.validation_days = validation_days
        self.k = k
        self.min_group_customers = min_group_customers
        self.random_state = random_state
        self.use_features = use_features

    def get_params(self):
        return {name: getattr(self, name) for name in (
            "strategy", "alpha", "alphas", "n_components", "epochs", "learning_rate", "neighbours", "max_similarities",
            "validation_days", "k", "min_group_customers", "random_state", "use_features")}

    def _check_params(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.alpha not in (None, "popularity") and not (
                isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1], None or 'popularity', got {self.alpha!r}")
        if not self.alphas or any(not 0.0 <= a <= 1.0 for a in self.alphas):
            raise ValueError(f"alphas must be values in [0, 1], got {self.alphas!r}")
        for name in ("n_components", "epochs", "neighbours", "max_similarities", "k", "min_group_customers"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.use_features not in (None, True, False):
            raise ValueError(f"use_features must be None, True or False, got {self.use_features!r}")
        if self.validation_days is not None and self.validation_days <= 0:
            raise ValueError(f"validation_days must be positive or None, got {self.validation_days!r}")

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, lines, groups=None, customer_features=None, item_features=None):
        """Learn from ``lines`` (see the module docstring); ``groups``: Series customer ->
        group key (e.g. segment or country) for customers with no history;
        ``customer_features`` / ``item_features``: DataFrames indexed by customer / product
        whose columns are categories (a cell may hold a list, e.g. tags), for LightFM's
        hybrid model (see ``use_features``).

        For the hybrid without a fixed ``alpha``: fit on all but the newest
        ``validation_days``, choose ``alpha`` by precision@k of the new list on them,
        then fit again on everything with that ``alpha``."""
        self._check_params()
        lines = _lines(lines)
        if lines.empty:
            raise ValueError("no order lines to learn from")
        self.lightfm_error_ = lightfm_import_error() if self.strategy in ("hybrid", "lightfm") else None
        if self.strategy == "lightfm" and self.lightfm_error_:
            raise ImportError(f"LightFM cannot be imported: {self.lightfm_error_}")
        self.validation_ = {}
        features = (customer_features, item_features)
        given = any(f is not None and len(f.columns) for f in features)
        with_features = bool(self.use_features) and given and self.strategy in ("hybrid", "lightfm")
        if self.strategy != "hybrid":
            alpha = {"item_item": 1.0, "lightfm": 0.0}.get(self.strategy)
        elif self.alpha == "popularity":
            alpha = None
        elif self.lightfm_error_:
            alpha = 1.0  # item-item alone
        elif self.alpha is None:
            alpha, with_features = self._choose_alpha(lines, groups, features if (
                given and self.use_features is not False) else None)
        else:
            alpha = float(self.alpha)
        #: the item-item weight of the new list's blend (None: popularity)
        self.alpha_ = alpha
        #: whether LightFM learnt from the customer and product features too
        self.features_used_ = bool(with_features and not self.lightfm_error_ and alpha != 1.0 and alpha is not None)
        self._fit_components(lines, groups, self.alpha_, features if self.features_used_ else None)
        return self

    def _choose_alpha(self, lines, groups, features=None):
        """``(alpha, with features)`` with the best precision@k of the new list on the
        validation tail (alpha None: popularity won; ties: without features, then the
        larger alpha, the simpler models).  With ``features``, LightFM is also fitted with
        them and every blend that uses it is measured that way too."""
        end = lines["date"].max()
        cut = end - (self.validation_days or 90) * DAY
        before, after = lines[lines["date"] < cut], lines[lines["date"] >= cut]
        if before.empty or after.empty or before["customer"].nunique() < 2:
            return 1.0, False  # nothing to choose on: item-item, the simpler
        alphas = sorted(set(self.alphas), reverse=True)
        candidates = {}
        for variant in ([None, features] if features is not None else [None]):
            trial = ProductRecommender(**{**self.get_params(), "alpha": 0.0})
            trial._check_params()
            trial.lightfm_error_, trial.validation_, trial.alpha_ = None, {}, None
            trial._fit_components(_lines(before), groups, None, variant)
            if variant is None:
                candidates.update(trial._precision_by_alpha(before, after, alphas, groups))
            else:
                measured = trial._precision_by_alpha(before, after, [a for a in alphas if a < 1], groups)
                candidates.update({f"{a:g} + features": v for a, v in measured.items() if a != "popularity"})
        self.validation_ = {"cut": cut, "precision": candidates,
                            "customers": int(after["customer"][after["customer"].isin(before["customer"])].nunique())}
        measured = {key: value for key, value in candidates.items() if value is not None}
        if not measured:
            return 1.0, False
        best = max(measured.values())
        plain = [key for key, value in measured.items() if value == best and not isinstance(key, str)]
        if plain:
            return max(plain), False
        featured = [key for key, value in measured.items() if value == best and key.endswith("+ features")]
        if featured:
            return max(float(key.split(" ")[0]) for key in featured), True
        return None, False  # popularity

    def _precision_by_alpha(self, before, after, alphas, groups):
        """precision@k of the new list for every blend weight in ``alphas`` and for
        popularity, on the customers of ``before`` who bought new products in ``after``:
        each customer's scores are computed once and blended for every weight (what
        ``evaluate`` measures, for all candidates in one pass, from sparse matrices rather
        than per-customer sets: a 5-million-line history stays a few arrays)."""
        before, after = _lines(before), _lines(after)
        keys = ["customer", "item"]
        seen = before[keys].drop_duplicates()
        # confirmed purchases only (see holdout_relevance: a quotation of the list is not a hit)
        fresh = after.loc[after["customer"].isin(self._customer_index) & (after["weight"] >= 1), keys].drop_duplicates()
        fresh = fresh.merge(seen, on=keys, how="left", indicator=True)
        fresh = fresh.loc[fresh["_merge"] == "left_only", keys]
        customers = pd.unique(fresh["customer"])
        hits = dict.fromkeys([*alphas, "popularity"], 0)
        if not len(customers):
            return dict.fromkeys(hits)
        row_of = {c: r for r, c in enumerate(customers.tolist())}
        known = fresh[fresh["item"].isin(self._item_index)]
        wanted = sp.csr_matrix((np.ones(len(known), np.float32),
                                (known["customer"].map(row_of).to_numpy(), known["item"].map(self._item_index).to_numpy())),
                               shape=(len(customers), len(self.items_)))
        strongest = before[before["customer"].isin(row_of)].groupby(keys, sort=False)["weight"].max()
        bought = sp.csr_matrix((np.minimum(strongest.to_numpy(), 1.0).astype(np.float32),
                                (strongest.index.get_level_values(0).map(row_of).to_numpy(),
                                 strongest.index.get_level_values(1).map(self._item_index).to_numpy())),
                               shape=(len(customers), len(self.items_)))
        k = min(self.k, len(self.items_))
        for start in range(0, len(customers), SCORE_CHUNK):
            chunk = customers[start:start + SCORE_CHUNK].tolist()
            chunk_bought = bought[start:start + SCORE_CHUNK]
            confirmed = (chunk_bought >= 1.0).toarray()
            chunk_wanted = wanted[start:start + SCORE_CHUNK].toarray() > 0
            parts = self._components(chunk_bought, chunk, groups, every=True)
            for alpha in hits:
                scores, _use = self._blend(parts, None if alpha == "popularity" else alpha)
                scores[confirmed] = -np.inf
                top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
                hits[alpha] += int(np.take_along_axis(chunk_wanted & np.isfinite(scores), top, axis=1).sum())
        return {alpha: round(count / (self.k * len(customers)), 4) for alpha, count in hits.items()}

    def _fit_components(self, lines, groups, alpha, features=None):
        """Index, popularity, group popularity, neighbours and (if used) LightFM."""
        self.items_ = _sorted_unique(lines["item"])
        self.customers_ = _sorted_unique(lines["customer"])
        self._item_index = {item: i for i, item in enumerate(self.items_.tolist())}
        self._customer_index = {c: i for i, c in enumerate(self.customers_.tolist())}
        strongest = lines.groupby(["customer", "item"], sort=False)["weight"].max()
        rows = strongest.index.get_level_values(0).map(self._customer_index).to_numpy()
        cols = strongest.index.get_level_values(1).map(self._item_index).to_numpy()
        # a product counts once per customer: 1 bought, less when only quoted
        bought = sp.csr_matrix((np.minimum(strongest.to_numpy(), 1.0).astype(np.float32), (rows, cols)),
                               shape=(len(self.customers_), len(self.items_)))
        self.popularity_ = np.asarray(bought.sum(axis=0)).ravel()
        self.group_popularity_ = {}
        if groups is not None:
            key = pd.Series(self.customers_).map(groups).to_numpy()
            for group in pd.unique(key[pd.notna(key)]):
                members = np.flatnonzero(key == group)
                if len(members) >= self.min_group_customers:
                    self.group_popularity_[group] = np.asarray(bought[members].sum(axis=0)).ravel()
        self.neighbours_ = self._neighbours(bought) if self.strategy in ("hybrid", "item_item") else None
        self.user_factors_ = self.item_factors_ = None
        uses_lightfm = self.strategy == "lightfm" or (self.strategy == "hybrid" and alpha != 1.0)
        if uses_lightfm and not self.lightfm_error_:
            self._fit_lightfm(bought, features)

    def _neighbours(self, bought):
        """Sparse product x product cosine, the ``neighbours`` largest per product."""
        norms = np.sqrt(self.popularity_)
        normalised = sp.csr_matrix(bought.multiply(1.0 / np.where(norms > 0, norms, 1.0)))
        by_item = normalised.T.tocsr()
        # every similarity while they fit in max_similarities (exact item-item: truncating
        # the rare products' lists loses the many small votes popular products get)
        keep = max(self.neighbours, self.max_similarities // max(1, len(self.items_)))
        blocks = []
        for start in range(0, by_item.shape[0], SIMILARITY_CHUNK):
            block = (by_item[start:start + SIMILARITY_CHUNK] @ normalised).toarray()
            block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = 0.0
            blocks.append(sp.csr_matrix(_top_k_rows(block, keep).astype(np.float32)))
        return sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit_lightfm(self, bought, features=None):
        from lightfm import LightFM

        model = LightFM(no_components=self.n_components, loss="warp", learning_rate=self.learning_rate,
                        random_state=np.random.RandomState(self.random_state))
        inputs = {}
        if features is not None:
            customer_features, item_features = features
            inputs = {"user_features": feature_matrix(self.customers_, customer_features),
                      "item_features": feature_matrix(self.items_, item_features)}
        model.fit(sp.coo_matrix(bought), epochs=self.epochs, num_threads=1, **inputs)
        # kept as plain arrays (each customer's and product's representation, features
        # included): scoring is a matrix product, and the stored model needs no LightFM
        user_biases, user_embeddings = model.get_user_representations(inputs.get("user_features"))
        item_biases, item_embeddings = model.get_item_representations(inputs.get("item_features"))
        self.user_factors_ = np.hstack([user_embeddings, user_biases[:, None]]).astype(np.float32)
        self.item_factors_ = np.hstack([item_embeddings, np.ones((len(self.items_), 1), np.float32)]
                                       ).astype(np.float32)
        self.item_biases_ = item_biases.astype(np.float32)

    # -- scoring ------------------------------------------------------------------------------
    def history(self, lines, customers, now=None):
        """Per customer: ``{item: (weight, orders, last date, median days between orders)}``.

        ``weight``: the strongest signal (1 bought, less: only quoted); ``orders``,
        ``last`` and the rhythm count confirmed orders only (None when never bought)."""
        lines = _lines(lines)
        lines = lines[lines["customer"].isin(set(customers))]
        if now is not None:
            lines = lines[lines["date"] < pd.Timestamp(now)]
        result = {c: {} for c in customers}
        if lines.empty:
            return result
        keys = ["customer", "item"]
        strongest = lines.groupby(keys, sort=False)["weight"].max()
        confirmed = lines[lines["weight"] >= 1.0].sort_values(["customer", "item", "date"])
        gaps = confirmed.groupby(keys, sort=False)["date"].diff().dt.total_seconds() / 86400.0
        per_item = confirmed.assign(gap=gaps).groupby(keys, sort=False).agg(
            orders=("order", "size"), last=("date", "max"), rhythm=("gap", "median")).reindex(strongest.index)
        orders = per_item["orders"].fillna(0).astype(int).to_numpy()
        rhythm = per_item["rhythm"].to_numpy()
        last = per_item["last"].to_numpy()  # datetime64: no Timestamp per row
        for (customer, item), weight, count, day, gap in zip(strongest.index, strongest.to_numpy().tolist(),
                                                              orders.tolist(), last, rhythm.tolist()):
            result[customer][item] = (weight, count, day if count else None,
                                      gap if count >= MIN_ORDERS_FOR_RHYTHM else None)
        return result

    def recommend(self, lines, customers, kind, n=5, items=None, groups=None, categories=None, exclude_days=None,
                  now=None):
        """``{customer: [{"item", "score", "reason", "about"}, ...]}``, best first, ``n`` at most.

        ``lines``: the customers' order lines now (their history may be newer than the
        model); ``items``: the products that may be recommended (None: every product
        the model knows); ``groups``: customer -> group key; ``categories``: product ->
        category, for products never sold; ``exclude_days``: the new list leaves out
        products bought within that many days of ``now`` (None: ever bought).
        """
        return self.recommend_lists(lines, customers, (kind,), n=n, items=items, groups=groups,
                                    categories=categories, exclude_days=exclude_days, now=now)[kind]

    def recommend_lists(self, lines, customers, kinds=KINDS, n=5, items=None, groups=None, categories=None,
                        exclude_days=None, now=None):
        """``{kind: recommend(...)}`` for several lists at once (one history, one scoring)."""
        if any(kind not in KINDS for kind in kinds):
            raise ValueError(f"kind must be one of {KINDS}, got {kinds!r}")
        if n < 1:
            raise ValueError(f"n must be positive, got {n!r}")
        customers = list(customers)
        history = self.history(lines, customers, now)
        catalogue = self._catalogue(items)
        now = pd.Timestamp(now) if now is not None else None
        position = {item: p for p, item in enumerate(catalogue)}
        known_positions = np.array([self._item_index[i] for i in catalogue if i in self._item_index], dtype=np.int64)
        cold = self._cold_categories(catalogue[len(known_positions):], categories)
        result = {kind: {} for kind in kinds}
        for start in range(0, len(customers), SCORE_CHUNK):
            chunk = customers[start:start + SCORE_CHUNK]
            bought = self._bought_matrix([history[c] for c in chunk])
            parts = self._components(bought, chunk, groups)
            known_scores, use_collaborative = self._blend(parts, self.alpha_)
            scores, sources = self._over_catalogue(known_scores, use_collaborative, bought, known_positions, cold)
            for kind in kinds:
                for row, customer in enumerate(chunk):
                    result[kind][customer] = self._one_list(kind, n, history[customer], scores[row], sources[row],
                                                            catalogue, position, groups, categories, customer,
                                                            exclude_days, now)
        return result

    def _catalogue(self, items):
        """Products that may be recommended: known ones first (model order), then unknown ones."""
        if items is None:
            return list(self.items_.tolist())
        wanted = set(items)
        known = [i for i in self.items_.tolist() if i in wanted]
        unknown = sorted(wanted - set(self.items_.tolist()), key=str)
        return known + unknown

    def _bought_matrix(self, histories):
        """Customers x known products: the strongest signal (1 bought, less: only quoted)."""
        rows, cols, values = [], [], []
        for row, items in enumerate(histories):
            for item, entry in items.items():
                column = self._item_index.get(item)
                if column is not None:
                    rows.append(row)
                    cols.append(column)
                    values.append(entry[0])
        return sp.csr_matrix((np.asarray(values, dtype=np.float32), (rows, cols)),
                             shape=(len(histories), len(self.items_)))

    def _components(self, bought, customers, groups, every=False):
        """The scores a chunk of customers' lists are made of, each standardised per customer
        over the products it speaks of: popularity (of the customer's group), item-item and
        LightFM (``every``: both, whatever ``alpha_``; else only those the blend uses)."""
        n_known = len(self.items_)
        standard = {}
        group_of = [self._group(groups, c) for c in customers]
        for group in set(group_of):
            vector = self.group_popularity_[group] if group is not None else self.popularity_
            standard[group] = _standardise(vector[None, :].astype(np.float32), np.ones((1, n_known), bool))[0]
        parts = {"has_history": np.asarray(bought.sum(axis=1)).ravel() > 0,
                 "popularity": np.vstack([standard[g] for g in group_of]).astype(np.float32),
                 "item_item": None, "lightfm": None}
        alpha = self.alpha_
        collaborative = self.strategy in ("hybrid", "item_item", "lightfm")
        if collaborative and self.neighbours_ is not None and (every or (alpha is not None and alpha > 0)):
            raw = (bought @ self.neighbours_).toarray()
            valid = raw > 0
            parts["item_item"] = (np.where(valid, _standardise(raw, valid), 0.0).astype(np.float32), valid.any(axis=1))
        if collaborative and self.user_factors_ is not None and (every or (alpha is not None and alpha < 1)):
            rows = np.array([self._customer_index.get(c, -1) for c in customers], dtype=np.int64)
            known = rows >= 0
            raw = np.zeros((len(customers), n_known), dtype=np.float32)
            if known.any():
                raw[known] = self.user_factors_[rows[known]] @ self.item_factors_.T + self.item_biases_
            valid = np.broadcast_to(known[:, None], raw.shape)
            parts["lightfm"] = (np.where(valid, _standardise(raw, valid), 0.0).astype(np.float32), known)
        return parts

    def _blend(self, parts, alpha):
        """``(scores over the known products, whether each customer's are collaborative)``:
        ``alpha`` x item-item + (1 - alpha) x LightFM for customers with a history and a
        signal, popularity otherwise (and for ``alpha`` None: popularity)."""
        rows = len(parts["has_history"])
        collaborative = np.zeros_like(parts["popularity"])
        has_signal = np.zeros(rows, dtype=bool)
        if self.strategy in ("hybrid", "item_item", "lightfm") and alpha is not None:
            for weight, part in ((alpha, parts["item_item"]), (1.0 - alpha, parts["lightfm"])):
                if weight > 0 and part is not None:
                    collaborative += np.float32(weight) * part[0]
                    has_signal |= part[1]
        use = parts["has_history"] & has_signal
        scores = np.where(use[:, None], collaborative, parts["popularity"])
        # a tiny popularity term breaks ties (many products share one score)
        scores += (1e-6 * self.popularity_ / max(1.0, float(self.popularity_.max()))).astype(np.float32)
        return scores, use

    def _cold_categories(self, cold_items, categories):
        """For never-sold products: their category's column in a one-hot product x category
        matrix of the known products (-1: no category, or no sold product in it)."""
        if not cold_items or categories is None:
            return {"items": len(cold_items), "column": np.full(len(cold_items), -1), "matrix": None}
        known = pd.Series(self.items_).map(categories)
        codes = {category: c for c, category in enumerate(pd.unique(known.dropna()))}
        rows = [r for r, category in enumerate(known) if category in codes]
        matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, [codes[known.iloc[r]] for r in rows])),
                               shape=(len(self.items_), max(1, len(codes))))
        column = np.array([codes.get(categories.get(item), -1) if hasattr(categories, "get") else -1
                           for item in cold_items], dtype=np.int64)
        return {"items": len(cold_items), "column": column, "matrix": matrix}

    def _over_catalogue(self, known_scores, use_collaborative, bought, known_positions, cold):
        """Scores over the catalogue (known products, then never-sold ones) and where each
        comes from (``sources``: 0 popularity, 1 collaborative, 2 its category).

        A never-sold product is scored, for a customer who bought in its category, with
        his mean score of the sold products of that category (others: never)."""
        rows = known_scores.shape[0]
        width = len(known_positions) + cold["items"]
        scores = np.full((rows, width), -np.inf, dtype=np.float32)
        sources = np.zeros((rows, width), dtype=np.int8)
        scores[:, :len(known_positions)] = known_scores[:, known_positions]
        sources[:, :len(known_positions)] = np.where(use_collaborative[:, None], 1, 0)
        if cold["matrix"] is not None and (cold["column"] >= 0).any():
            matrix = cold["matrix"]
            members = np.asarray(matrix.sum(axis=0)).ravel()
            mean = (sp.csr_matrix(known_scores) @ matrix).toarray() / np.maximum(members, 1)
            buys_there = ((bought >= 1.0).astype(np.float32) @ matrix).toarray() >= 1
            has = cold["column"] >= 0
            cols = cold["column"][has]
            block = np.where(buys_there[:, cols], mean[:, cols], -np.inf)
            target = np.flatnonzero(has) + len(known_positions)
            scores[:, target] = block
            sources[:, target] = 2
        return scores, sources

    def _group(self, groups, customer):
        """The customer's group if it has its own popularity, else None."""
        if groups is not None and customer in groups:
            group = groups.get(customer)
            if group in self.group_popularity_:
                return group
        return None

    def _popularity_of(self, item):
        index = self._item_index.get(item)
        return 0.0 if index is None else float(self.popularity_[index])

    def _anchors(self, history, items):
        """For each of ``items``, the customer's product most similar to it (None: none):
        the largest of the item's kept similarities to the products he bought ("customers
        who buy X": X confirmed, not only quoted)."""
        own = np.array([self._item_index[i] for i, h in history.items() if h[1] > 0 and i in self._item_index],
                       dtype=np.int64)
        similar = self.neighbours_
        anchors = []
        for item in items:
            column = self._item_index.get(item)
            if column is None or similar is None or not len(own):
                anchors.append(None)
                continue
            lo, hi = similar.indptr[column], similar.indptr[column + 1]
            mine = np.isin(similar.indices[lo:hi], own)
            if not mine.any():
                anchors.append(None)
                continue
            best = similar.indices[lo:hi][mine][np.argmax(similar.data[lo:hi][mine])]
            anchor = self.items_[best]
            anchors.append(anchor.item() if hasattr(anchor, "item") else anchor)
        return anchors

    def _one_list(self, kind, n, history, scores, sources, catalogue, position, groups, categories, customer,
                  exclude_days, now):
        chosen = []
        bought = {item: h for item, h in history.items() if h[1] > 0}
        if kind == REORDER and self.strategy in ("hybrid", "history"):
            # own products: in most orders first, then the more popular (measured: a better tie-break
            # than the collaborative score, bench/bench_recommend.py)
            own = [item for item in bought if item in position]
            own.sort(key=lambda item: (-bought[item][1], -self._popularity_of(item), str(item)))
            for item in own[:n]:
                _weight, orders, _last, rhythm = bought[item]
                # orders the same day make no rhythm ("every 0 days")
                reason, about = ("every", round(rhythm)) if rhythm and round(rhythm) >= 1 else ("bought", orders)
                chosen.append({"item": item, "score": float(orders), "reason": reason, "about": about})
            excluded = set(bought)
        elif kind == REORDER:
            excluded = set()  # a baseline ranks every product, bought or not
        else:
            # what is on an open quotation is offered already: not new (nor is it new in the holdout)
            quoted = {item for item, h in history.items() if h[1] == 0}
            excluded = set(bought) | quoted
            if exclude_days is not None and now is not None:
                since = (now - exclude_days * DAY).to_datetime64()
                excluded = {item for item, h in bought.items() if h[2] >= since} | quoted
        if len(chosen) < n:
            masked = np.where(np.isfinite(scores), scores, -np.inf)
            masked[[position[item] for item in excluded if item in position]] = -np.inf
            count = min(n - len(chosen), int(np.isfinite(masked).sum()))
            if count > 0:
                top = np.argpartition(-masked, count - 1)[:count]
                top = top[np.lexsort((top, -masked[top]))]
                anchors = self._anchors(history, [catalogue[p] if sources[p] == 1 else None for p in top])
                for p, anchor in zip(top, anchors):
                    chosen.append({"item": catalogue[p], "score": round(float(masked[p]), 4),
                                   **self._reason(int(sources[p]), anchor, catalogue[p], groups, categories,
                                                  customer)})
        return chosen

    def _reason(self, source, anchor, item, groups, categories, customer):
        if source == 2:
            return {"reason": "new_in_category", "about": categories.get(item)}
        if source == 1:
            if anchor is not None:
                return {"reason": "also_buy", "about": anchor}
            if self.alpha_ is not None and self.alpha_ < 1 and getattr(self, "item_factors_", None) is not None:
                return {"reason": "similar_customers", "about": None}  # LightFM's factors put it there
            # item-item alone and no product of his leads to it: ranked by its popularity
        group = self._group(groups, customer)
        if group is not None:
            return {"reason": "popular_group", "about": group}
        return {"reason": "popular", "about": None}


# -- measuring ---------------------------------------------------------------------------------
def ranking_metrics(recommended, relevant, n_items, k=10):
    """precision@k, recall@k (means over customers with something relevant) and catalogue
    coverage (share of ``n_items`` recommended to someone).

    >>> ranking_metrics({1: [10, 11], 2: [10, 12]}, {1: {11}, 2: {13}}, n_items=4, k=2)
    {'precision': 0.25, 'recall': 0.5, 'coverage': 0.75, 'customers': 2}
    """
    precision, recall, shown = [], [], set()
    for customer, wanted in relevant.items():
        if not wanted:
            continue
        top = list(recommended.get(customer, []))[:k]
        hits = len(set(top) & set(wanted))
        precision.append(hits / k)
        recall.append(hits / len(wanted))
        shown.update(top)
    if not precision:
        return {"precision": None, "recall": None, "coverage": None, "customers": 0}
    return {"precision": round(float(np.mean(precision)), 4), "recall": round(float(np.mean(recall)), 4),
            "coverage": round(len(shown) / max(1, n_items), 4), "customers": len(precision)}


def holdout_relevance(before, after, kind):
    """What each customer of ``before`` bought in ``after``: every product (``REORDER``:
    all items, repeat purchases count) or the ones he had never bought (``NEW``).  Bought
    means confirmed (weight 1): a quotation in ``after`` is no hit, or a quotation made of
    the served list (what the quotation wizard does) would count the list as its own hit."""
    before, after = _lines(before), _lines(after)
    after = after[after["customer"].isin(set(before["customer"])) & (after["weight"] >= 1)]
    bought_after = after.groupby("customer")["item"].agg(set)
    if kind == REORDER:
        return bought_after.to_dict()
    bought_before = before[before["customer"].isin(bought_after.index)].groupby("customer")["item"].agg(set)
    return {c: items - bought_before.get(c, set()) for c, items in bought_after.items()}


def evaluate(model, before, after, kind, k=10, items=None, groups=None):
    """Holdout ranking metrics of a fitted ``model`` (fitted on ``before``) for the
    customers who bought in ``after``."""
    return evaluate_lists(model, before, after, (kind,), k=k, items=items, groups=groups)[kind]


def evaluate_lists(model, before, after, kinds=KINDS, k=10, items=None, groups=None):
    """``{kind: evaluate(...)}``, both lists scored in one pass."""
    relevant = {kind: holdout_relevance(before, after, kind) for kind in kinds}
    customers = sorted({c for wanted in relevant.values() for c, items_ in wanted.items() if items_}, key=str)
    lists = model.recommend_lists(before, customers, kinds, n=k, items=items, groups=groups)
    n_items = len(items) if items is not None else len(model.items_)
    return {kind: ranking_metrics({c: [r["item"] for r in lists[kind][c]] for c in customers}, relevant[kind],
                                  n_items, k=k) for kind in kinds}
