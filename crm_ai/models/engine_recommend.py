"""Recommended products: what each customer will order again, and which new product to
offer, with a reason each (``ml.recommend.ProductRecommender``).

Learnt per company from its confirmed sale order lines (a product quoted on an
opportunity's quotation counts as a weaker signal), measured on the newest
``holdout_days`` of orders against the simple answers on the same customers:
popularity, the customer's own history and item-item.  The gate compares the new
list's precision@10 with item-item's, so a model that cannot beat "customers who buy X
also buy Y" is never activated.

Recommendations are rows (``crm.ai.recommendation``), not columns of the partner: the
engine rewrites a customer's rows in the same transaction as it marks the partner
scored (that UPDATE skips partners users hold, whose rows then wait for the next run).
A customer's contacts show their commercial partner's rows.  Rows without a partner
hold the most popular products per country (and overall), per sales team and per lead
tag, for leads that have no customer yet.
"""

import logging
import time

import pandas as pd

from odoo import _
from odoo.tools import SQL

from ..ml.recommend import KINDS, NEW, REORDER, ProductRecommender, evaluate, evaluate_lists, lightfm_import_error
from .crm_ai_engine import CrmAiEngine, Param, TrainResult, register_engine
from .customer_orders import CustomerValueEngine

_logger = logging.getLogger(__name__)

DEFAULT_HOLDOUT_DAYS = 90
DEFAULT_LIST_SIZE = 5
#: A product only quoted on an opportunity (not bought) counts this much of a purchase.
QUOTE_WEIGHT = 0.25
#: Precision and recall are measured on lists of this length (as the benchmark).
MEASURED_AT = 10
#: Group key of the lists for leads without a customer and without a (known) country.
ANY_COUNTRY = 0


@register_engine
class RecommendEngine(CustomerValueEngine, CrmAiEngine):
    task = "recommend"
    label = "Recommended products"
    state_field = "ai_recommend_state"
    date_field = "ai_recommend_date"
    model_field = "ai_recommend_model_id"
    value_fields = ()
    primary_metric = "precision_at_10"
    primary_metric_label = "Precision@10, new products"
    higher_is_better = True
    baseline_label = "Item-item (new) / own history (reorder)"
    # the stored model is arrays (LightFM's factors included): loading it needs no LightFM
    libraries = ("numpy", "scipy", "pandas")
    params = {
        **CrmAiEngine.params,
        **CustomerValueEngine.params_common,
        "holdout_days": Param("int", DEFAULT_HOLDOUT_DAYS, minimum=14, maximum=365),
        "list_size": Param("int", DEFAULT_LIST_SIZE, minimum=1, maximum=20),
        # the new-product list leaves out products bought within that many days (0: ever bought)
        "new_excludes_days": Param("int", 0, minimum=0, maximum=3650),
    }

    # -- data -----------------------------------------------------------------------------------
    def order_lines(self, commercial_ids=None, until=None):
        """The company's order lines as ``ml.recommend`` reads them: customer (commercial
        partner), item (product id), order, date, weight (1 confirmed; QUOTE_WEIGHT quoted
        on an opportunity's open quotation).  Section / note lines, down payments, discount
        and reward lines (a negative price: Odoo's global discount, loyalty rewards) and
        delivery charges are not products bought, nor is a product the customer returned in
        full (its confirmed quantities, returns as negative lines included, add up to zero
        or less)."""
        self.env["sale.order"].flush_model()
        self.env["sale.order.line"].flush_model()
        conditions = [SQL("TRUE")]
        for flag in ("is_delivery", "is_reward_line"):  # the delivery and sale_loyalty addons' lines
            if flag in self.env["sale.order.line"]._fields:
                conditions.append(SQL("NOT COALESCE(%s, FALSE)", SQL.identifier("sol", flag)))
        if commercial_ids is not None:
            conditions.append(SQL("p.commercial_partner_id = ANY(%s)", [int(i) for i in commercial_ids]))
        if until is not None:
            conditions.append(SQL("so.date_order < %s", until))
        self.env.cr.execute(SQL("""
            WITH line AS (
                SELECT p.commercial_partner_id AS customer, sol.product_id AS product, so.id AS sale,
                       so.date_order AS date, so.state = 'sale' AS confirmed, sol.product_uom_qty AS qty
                  FROM sale_order_line sol
                  JOIN sale_order so ON so.id = sol.order_id
                  JOIN res_partner p ON p.id = so.partner_id
                 WHERE so.company_id = %(company)s
                   AND (so.state = 'sale' OR (so.state IN ('draft', 'sent') AND so.opportunity_id IS NOT NULL))
                   AND sol.product_id IS NOT NULL AND sol.display_type IS NULL
                   AND NOT COALESCE(sol.is_downpayment, FALSE) AND sol.price_unit >= 0 AND %(conditions)s),
            returned AS (  -- bought and returned in full: not a purchase
                SELECT customer, product FROM line WHERE confirmed
                 GROUP BY customer, product HAVING SUM(qty) <= 0)
            SELECT l.customer, l.product, l.sale, l.date, CASE WHEN l.confirmed THEN 1.0 ELSE %(quote)s END
              FROM line l
             WHERE l.qty > 0
               AND NOT (l.confirmed AND (l.customer, l.product) IN (SELECT customer, product FROM returned))""",
                                quote=QUOTE_WEIGHT, company=self.company.id,
                                conditions=SQL(" AND ").join(conditions)))
        lines = pd.DataFrame.from_records(self.env.cr.fetchall(),
                                          columns=["customer", "item", "order", "date", "weight"])
        lines["date"] = pd.to_datetime(lines["date"])
        lines["weight"] = pd.to_numeric(lines["weight"]).astype(float)
        return lines

    def catalogue(self):
        """``(product ids, {product id: category id})``: what may be recommended in this
        company (active, can be sold, shared or the company's own)."""
        if getattr(self, "_catalogue", None) is None:
            self.env["product.product"].flush_model()
            self.env["product.template"].flush_model()
            self.env.cr.execute(SQL("""
                SELECT pp.id, pt.categ_id FROM product_product pp
                  JOIN product_template pt ON pt.id = pp.product_tmpl_id
                 WHERE pp.active AND pt.active AND pt.sale_ok
                   AND (pt.company_id IS NULL OR pt.company_id = %s)
                   -- the product behind Odoo's global discount lines is no product to offer
                   AND pp.id IS DISTINCT FROM (SELECT sale_discount_product_id FROM res_company WHERE id = %s)
                 ORDER BY pp.id""", self.company.id, self.company.id))
            rows = self.env.cr.fetchall()
            self._catalogue = ([product for product, _categ in rows],
                               {product: categ for product, categ in rows if categ})
        return self._catalogue

    def features(self, lines, until=None):
        """LightFM's optional inputs, ``{"customer_features", "item_features"}``: per customer
        (commercial partner) its country, industry and quintile of spend before ``until``;
        per product its category, price quintile and tags.  Tried on the validation tail and
        used only where they win (``ml.recommend``).  The model measured on the holdout gets
        its spend from the orders before the holdout (its spend in the holdout would tell it
        who buys there); the customer's segment is not an input: it is today's, made of
        every order."""
        customers = sorted(set(lines["customer"]))
        self.env["res.partner"].flush_model()
        self.env.cr.execute(SQL("SELECT p.id, p.country_id, p.industry_id FROM res_partner p WHERE p.id = ANY(%s)",
                                customers))
        customer = pd.DataFrame.from_records(self.env.cr.fetchall(), columns=["id", "country", "industry"]
                                             ).set_index("id")
        orders = self.orders(customers, until=until)
        spend = orders.groupby("partner")["amount"].sum().reindex(customer.index).fillna(0.0)
        customer["spend"] = pd.qcut(spend.rank(method="first"), min(5, len(spend)), labels=False) if len(spend) else []
        items, _categories = self.catalogue()
        products = sorted(set(items) | set(lines["item"]))
        self.env["product.template"].flush_model()
        self.env.cr.execute(SQL("""
            SELECT pp.id, pt.categ_id, pt.list_price,
                   ARRAY(SELECT r.product_tag_id FROM product_tag_product_template_rel r
                          WHERE r.product_template_id = pt.id ORDER BY r.product_tag_id)
              FROM product_product pp JOIN product_template pt ON pt.id = pp.product_tmpl_id
             WHERE pp.id = ANY(%s)""", products))
        item = pd.DataFrame.from_records(self.env.cr.fetchall(), columns=["id", "category", "price", "tags"]
                                         ).set_index("id")
        price = pd.to_numeric(item.pop("price")).astype(float)
        item["price"] = pd.qcut(price.rank(method="first"), min(5, len(price)), labels=False) if len(price) else []
        return {"customer_features": customer.astype(object).where(customer.notna(), None),
                "item_features": item.astype(object).where(item.notna(), None)}

    def countries(self, customers=None):
        """``{commercial partner id: country id}`` (the cold-start group)."""
        self.env["res.partner"].flush_model(["country_id"])
        self.env.cr.execute(SQL(
            "SELECT id, country_id FROM res_partner WHERE country_id IS NOT NULL AND %s",
            SQL("id = ANY(%s)", list(customers)) if customers is not None else SQL("id = commercial_partner_id")))
        return dict(self.env.cr.fetchall())

    # -- training ---------------------------------------------------------------------------------
    def data_shortfall(self):
        days = self.param("holdout_days")
        count = self.customer_count(days_to=days)
        minimum = self.param("min_customers")
        if count < minimum:
            return _("Not enough data: %(count)s customers with a confirmed sale order older than %(days)s days "
                     "(the holdout), %(min)s needed.", count=count, days=days, min=minimum)
        return None

    def train(self, champion, champion_record):
        started = time.monotonic()
        now = self.now()
        lines = self.order_lines(until=now)
        # from midnight (as the repeat-purchase holdout): whole days, whatever the hour of the run
        cut = pd.Timestamp(now).normalize() - pd.Timedelta(days=self.param("holdout_days"))
        # the training part as it stood at the cut: a purchase returned during the holdout was
        # still a purchase then (``lines`` leaves out products returned in full by now)
        before, after = self.order_lines(until=cut.to_pydatetime()), lines[lines["date"] >= cut]
        if before.empty:
            return TrainResult("insufficient_data", _("Not enough data: no order line before the holdout."))
        groups = self.countries()
        features = self.features(before, until=cut.to_pydatetime())
        trial = ProductRecommender().fit(before, groups=groups, **features)
        if trial.lightfm_error_:
            _logger.warning("crm_ai: %s", lightfm_status(self.env))
        measured = evaluate_lists(trial, before, after, KINDS, k=MEASURED_AT, groups=groups)
        baselines = {}
        for strategy, label in (("popularity", _("Popularity")), ("history", _("Own history")),
                                ("item_item", _("Item-item"))):
            baseline = ProductRecommender(strategy=strategy).fit(before)
            baselines[label] = self.flat_metrics(evaluate_lists(baseline, before, after, KINDS, k=MEASURED_AT))
        champion_score, note = self.champion_precision(champion_record, champion, before, after, cut, groups,
                                                       features)
        # the deployed model also learns from the holdout period, with the blend chosen above
        final = ProductRecommender(alpha=trial.alpha_ if trial.alpha_ is not None else "popularity",
                                   use_features=trial.features_used_).fit(lines, groups=groups, **self.features(lines))
        item_item, history = baselines[_("Item-item")], baselines[_("Own history")]
        baseline_metrics = {name: (history if name.startswith("reorder_") else item_item)[name]
                            for name in item_item}
        return TrainResult(
            "trained", estimator=final, metrics=self.flat_metrics(measured), baseline_metrics=baseline_metrics,
            other_baselines=baselines, champion_score=champion_score, gate_note=note,
            counts={"customers": measured[NEW]["customers"], "reorder_customers": measured[REORDER]["customers"],
                    "products": len(final.items_), "seconds": time.monotonic() - started},
            n_train=int(before["customer"].nunique()), n_holdout=int(measured[REORDER]["customers"] or 0),
            date_from=lines["date"].min().date(), holdout_date_from=cut.to_pydatetime(),
            holdout_date_to=pd.Timestamp(now).to_pydatetime(), train_date_to=pd.Timestamp(now).to_pydatetime(),
            hyperparameters=self.describe(trial, final),
            feature_names=[_("Products bought together"), _("Customers' purchase history (LightFM)"),
                           _("Customer country (new customers)"), _("Product category (new products)"),
                           *([_("Customer country, industry and spend; product category, price band "
                                "and tags (LightFM)")] if final.features_used_ else [])],
        )

    @staticmethod
    def flat_metrics(by_kind):
        """``{"precision_at_10": new list's, ..., "reorder_precision_at_10": reorder list's, ...}``."""
        flat = {}
        for kind, prefix in ((NEW, ""), (REORDER, "reorder_")):
            values = by_kind[kind]
            flat[f"{prefix}precision_at_10"] = values["precision"]
            flat[f"{prefix}recall_at_10"] = values["recall"]
            flat[f"{prefix}coverage"] = values["coverage"]
        return flat

    def describe(self, trial, final):
        if final.lightfm_error_:
            blend = _("item-item alone (LightFM cannot be imported: %s)", final.lightfm_error_)
        elif final.alpha_ is None:
            blend = _("popularity (it beat item-item and LightFM on the validation tail)")
        else:
            blend = _("%(ii)s %% item-item + %(lf)s %% LightFM (%(factors)s factors, %(epochs)s epochs%(features)s)",
                      ii=round(100 * final.alpha_), lf=round(100 * (1 - final.alpha_)), factors=final.n_components,
                      epochs=final.epochs, features=_(", with customer and product features")
                      if getattr(final, "features_used_", False) else "")
        chosen = (trial.validation_ or {}).get("precision") or {}
        table = ", ".join(f"{key if isinstance(key, str) else f'{key:g}'}: {value:.3f}"
                          for key, value in chosen.items() if value is not None)
        return _("New products: %(blend)s; validation precision@10 by item-item weight (\"+ features\": "
                 "LightFM with the customer and product features): %(table)s",
                 blend=blend, table=table or _("not measured (too little data)"))

    def champion_precision(self, record, estimator, before, after, cut, groups, features):
        """The active model's new-list precision@10 on this holdout; its recipe refitted on
        the training part when it learnt from orders inside the holdout."""
        if estimator is None:
            return None, ""
        try:
            if record.train_date_to and pd.Timestamp(record.train_date_to) <= cut:
                note = _("active model scored on a holdout it never saw")
            else:
                estimator = ProductRecommender(**estimator.get_params()).fit(before, groups=groups, **features)
                note = _("active model's recipe refitted on the same orders, as it had seen the holdout")
            return evaluate(estimator, before, after, NEW, k=MEASURED_AT, groups=groups)["precision"], note
        except Exception as error:  # an old model that cannot read today's data
            return None, _("the active model could not be measured: %s", error)

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, ids, estimator, model, now):
        """Both lists of the batch's customers (kept for ``after_write``): no partner column."""
        commercial = self.commercial_partners(ids)
        customers = sorted({c for i, c in commercial.items() if i == c})  # contacts show their company's
        items, categories = self.catalogue()
        options = {"n": self.param("list_size"), "items": items, "categories": categories, "now": now}
        lines = self.order_lines(customers, until=now)
        groups = self.countries(customers)
        exclude = self.param("new_excludes_days") or None
        self._lists = estimator.recommend_lists(lines, customers, KINDS, groups=groups, exclude_days=exclude, **options)
        self._model, self._scored_at = model, now
        self.ensure_group_lists(estimator, model, now, options)
        return {}

    def after_write(self, written_ids):
        """Replace the written customers' rows (their partners are marked scored in this
        same transaction)."""
        written = set(written_ids)
        customers = [c for c in self._lists[REORDER] if c in written]
        if customers:
            self.write_rows(customers, self._lists)

    def after_clear(self):
        """No model: no recommendation in this company (its customers' and its leads')."""
        self.env.cr.execute(SQL("DELETE FROM crm_ai_recommendation WHERE company_id = %s", self.company.id))
        self.invalidate_lists()

    def write_rows(self, keys, lists, group=None):
        """Replace the rows of the customers ``keys``; for a ``group`` ("country", "team",
        "tag"): add the partner-less rows of those groups (``ensure_group_lists`` cleared them;
        key 0: everyone's)."""
        Recommendation = self.env["crm.ai.recommendation"]
        Recommendation.flush_model()
        if group is None:
            self.env.cr.execute(SQL("DELETE FROM crm_ai_recommendation WHERE company_id = %s AND partner_id = ANY(%s)",
                                    self.company.id, list(keys)))
        columns = {name: [] for name in ("partner", "country", "team", "tag", "kind", "rank", "product", "score",
                                         "reason", "reason_product", "reason_value")}
        for kind, by_key in lists.items():
            for key in keys:
                for rank, row in enumerate(by_key.get(key, []), start=1):
                    about = row["about"]
                    columns["partner"].append(None if group else int(key))
                    for name in ("country", "team", "tag"):
                        columns[name].append((int(key) or None) if group == name else None)
                    columns["kind"].append(kind)
                    columns["rank"].append(rank)
                    columns["product"].append(int(row["item"]))
                    columns["score"].append(float(row["score"]))
                    columns["reason"].append(row["reason"])
                    columns["reason_product"].append(int(about) if row["reason"] == "also_buy" else None)
                    columns["reason_value"].append(None if about is None or row["reason"] == "also_buy"
                                                   else str(about))
        if columns["product"]:
            self.env.cr.execute(SQL(
                """INSERT INTO crm_ai_recommendation (partner_id, country_id, team_id, tag_id, list_type, rank,
                                                      product_id, score, reason, reason_product_id, reason_value,
                                                      company_id, model_id, date, create_uid, create_date, write_uid,
                                                      write_date)
                   SELECT v.partner, v.country, v.team, v.tag, v.kind, v.rank, v.product, v.score, v.reason,
                          v.reason_product, v.reason_value, %(company)s, %(model)s, %(now)s, %(uid)s, %(now)s,
                          %(uid)s, %(now)s
                     FROM unnest(%(partner)s::int[], %(country)s::int[], %(team)s::int[], %(tag)s::int[],
                                 %(kind)s::varchar[], %(rank)s::int[], %(product)s::int[], %(score)s::float8[],
                                 %(reason)s::varchar[], %(reason_product)s::int[], %(reason_value)s::varchar[])
                          AS v(partner, country, team, tag, kind, rank, product, score, reason, reason_product,
                               reason_value)""",
                company=self.company.id, model=self._model.id, now=self._scored_at, uid=self.env.uid, **columns))
        self.invalidate_lists()

    def invalidate_lists(self):
        """The rows changed under the ORM: forget them, and the lists computed from them."""
        self.env["crm.ai.recommendation"].invalidate_model()
        names = ["ai_reorder_recommendation_ids", "ai_new_recommendation_ids", "ai_recommended_product_ids"]
        self.env["res.partner"].invalidate_model(names)
        self.env["crm.lead"].invalidate_model(names)

    def ensure_group_lists(self, estimator, model, now, options):
        """The new-product lists for leads without a customer, written once per model (they
        only change when the model does): per country and overall (the model's popularity
        by country), per sales team and per lead tag (the products most customers bought on
        that team's orders, or on orders of opportunities with that tag)."""
        self.env.cr.execute(SQL(
            "SELECT 1 FROM crm_ai_recommendation WHERE company_id = %s AND partner_id IS NULL AND model_id = %s LIMIT 1",
            self.company.id, model.id))
        if self.env.cr.fetchone():
            return
        self.env.cr.execute(SQL("DELETE FROM crm_ai_recommendation WHERE company_id = %s AND partner_id IS NULL",
                                self.company.id))
        countries = [int(c) for c in estimator.group_popularity_ if c]
        groups = {country: country for country in countries}
        empty = pd.DataFrame(columns=["customer", "item", "order", "date"])
        lists = {NEW: estimator.recommend(empty, [*countries, ANY_COUNTRY], NEW, groups=groups, **options)}
        self.write_rows([*countries, ANY_COUNTRY], lists, group="country")
        for group, key_sql, join_sql in (
                ("team", SQL("so.team_id"), SQL("")),
                ("tag", SQL("rel.tag_id"), SQL("JOIN crm_tag_rel rel ON rel.lead_id = so.opportunity_id"))):
            by_key = self.popular_by(key_sql, join_sql, options["items"], options["n"], now)
            reason = "popular_" + group
            lists = {NEW: {key: [{"item": product, "score": float(buyers), "reason": reason, "about": key}
                                 for product, buyers in rows] for key, rows in by_key.items()}}
            self.write_rows(list(by_key), lists, group=group)

    def popular_by(self, key_sql, join_sql, items, n, now):
        """``{key: [(product, customers who bought it)]}``: the ``n`` products most customers
        bought on the company's confirmed orders, per ``key_sql`` (an order's team, its
        opportunity's tags)."""
        self.env.cr.execute(SQL("""
            SELECT key, product, buyers FROM (
                SELECT %(key)s AS key, sol.product_id AS product, COUNT(DISTINCT p.commercial_partner_id) AS buyers,
                       ROW_NUMBER() OVER (PARTITION BY %(key)s
                                          ORDER BY COUNT(DISTINCT p.commercial_partner_id) DESC, sol.product_id) AS rank
                  FROM sale_order_line sol
                  JOIN sale_order so ON so.id = sol.order_id
                  JOIN res_partner p ON p.id = so.partner_id
                  %(join)s
                 WHERE so.state = 'sale' AND so.company_id = %(company)s AND so.date_order < %(now)s
                   AND %(key)s IS NOT NULL AND sol.product_id = ANY(%(items)s) AND sol.display_type IS NULL
                   AND NOT COALESCE(sol.is_downpayment, FALSE) AND sol.product_uom_qty > 0 AND sol.price_unit >= 0
                 GROUP BY %(key)s, sol.product_id) ranked
             WHERE rank <= %(n)s ORDER BY key, rank""",
                                key=key_sql, join=join_sql, company=self.company.id, now=now, items=list(items), n=n))
        by_key = {}
        for key, product, buyers in self.env.cr.fetchall():
            by_key.setdefault(key, []).append((product, buyers))
        return by_key


def lightfm_status(env):
    """None when LightFM can be imported, else a message for admins (Settings, logs)."""
    error = lightfm_import_error()
    if error:
        return env._("LightFM cannot be imported (%s): recommendations use item-item and popularity only. "
                 "See the README for installing lightfm 1.17.", error)
    return None
