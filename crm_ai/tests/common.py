import random
from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase, tagged

from ..models.crm_ai_engine import ENGINES

TASK = "lead_propensity"

#: won-probability per source in the synthetic history: a strong, learnable signal.
SOURCE_WIN_RATES = {"Referral": 0.85, "Website": 0.5, "Cold list": 0.12}


class CrmAiDataMixin:
    """Synthetic CRM history shared by TransactionCase and HttpCase tests."""

    @classmethod
    def _crm_ai_setup_data(cls, n_closed=300, n_open=12, seed=7, company=None):
        """Closed and open leads of ``company`` (default: the current one, and every
        other lead is deleted first so demo leads do not train)."""
        env = cls.env
        if company is None:
            # Independence from demo data: demo leads would be part of the training set.
            env["crm.lead"].with_context(active_test=False).search([]).unlink()
            cls.company = env.company
            cls._crm_ai_only(TASK)
        company = company or cls.company
        env.ref("base.user_admin").company_ids |= company  # the salesperson of the synthetic leads
        cls.won_stage = env["crm.stage"].search([("is_won", "=", True)], limit=1)
        cls.first_stage = env["crm.stage"].search([("is_won", "=", False)], order="sequence, id", limit=1)
        if "sources" not in cls.__dict__:
            cls.sources = {name: env["utm.source"].create({"name": f"{name} (crm_ai test)"}) for name in SOURCE_WIN_RATES}
            cls.tag_vip = env["crm.tag"].create({"name": "VIP (crm_ai test)"})
        rng = random.Random(seed)
        now = fields.Datetime.now()
        Lead = env["crm.lead"].with_company(company).with_context(tracking_disable=True, mail_create_nolog=True)
        vals, outcomes = [], []
        for i in range(n_closed + n_open):
            name = rng.choice(list(SOURCE_WIN_RATES))
            vals.append({
                "name": f"crm_ai lead {i}", "type": "opportunity", "source_id": cls.sources[name].id,
                "expected_revenue": rng.choice([1000, 5000, 20000]), "company_id": company.id,
                "stage_id": cls.first_stage.id, "user_id": env.ref("base.user_admin").id, "team_id": False,
                "tag_ids": [(6, 0, cls.tag_vip.ids)] if rng.random() < 0.3 else [],
                "email_from": f"lead{i}@example.com",
            })
            outcomes.append(rng.random() < SOURCE_WIN_RATES[name])
        leads = Lead.create(vals)
        env.flush_all()
        closed_leads, open_leads = leads[:n_closed], leads[n_closed:]
        created = [now - timedelta(days=700 - i * 2) for i in range(len(leads))]
        env.cr.execute("""
            UPDATE crm_lead l SET create_date = v.c, date_open = v.c
              FROM unnest(%s::int[], %s::timestamp[]) v(id, c) WHERE l.id = v.id""",
                       (leads.ids, created))
        won = [lead.id for lead, w in zip(closed_leads, outcomes) if w]
        lost = [lead.id for lead, w in zip(closed_leads, outcomes) if not w]
        env.cr.execute("""UPDATE crm_lead SET stage_id = %s, probability = 100, automated_probability = 100,
                                              date_closed = create_date + interval '10 days'
                           WHERE id = ANY(%s)""", (cls.won_stage.id, won))
        env.cr.execute("""UPDATE crm_lead SET active = FALSE, probability = 0, automated_probability = 0,
                                              date_closed = create_date + interval '10 days'
                           WHERE id = ANY(%s)""", (lost,))
        env["crm.lead"].invalidate_model()
        if company == cls.company:
            cls.closed_leads, cls.open_leads = closed_leads, open_leads
            cls.n_won, cls.n_lost = len(won), len(lost)
        return closed_leads, open_leads

    @classmethod
    def _crm_ai_only(cls, *tasks):
        """Switch off every other engine: the crons then run only what the test is about."""
        for task in ENGINES:
            cls.env["ir.config_parameter"].sudo().set_param(f"crm_ai.{task}.enabled", str(task in tasks))

    @classmethod
    def _crm_ai_train(cls, company=None):
        """Train lead propensity for ``company`` (the unit of work the train cron runs)."""
        return cls.env["crm.ai.driver"]._ai_train_unit(TASK, company if company is not None else cls.company)

    @classmethod
    def _crm_ai_engine(cls, company=None):
        return cls.env["crm.ai.driver"]._ai_engine(TASK, company if company is not None else cls.company)

    @classmethod
    def _crm_ai_param(cls, name, value):
        cls.env["ir.config_parameter"].sudo().set_param(f"crm_ai.{TASK}.{name}", value)


@tagged("crm_ai", "post_install", "-at_install")
class TestCrmAiCommon(CrmAiDataMixin, TransactionCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._crm_ai_setup_data()
        cls.Registry = cls.env["crm.ai.model"]
        cls.Driver = cls.env["crm.ai.driver"]


class CrmAiCustomerMixin:
    """Customers and their sale orders, for the customer-value engines."""

    SEGMENT, REPEAT = "customer_segment", "repeat_purchase"

    @classmethod
    def _crm_ai_product(cls):
        if "product" not in cls.__dict__:
            cls.product = cls.env["product.product"].create({"name": "crm_ai test product", "type": "service",
                                                             "list_price": 100.0})
        return cls.product

    @classmethod
    def _crm_ai_orders(cls, specs, company=None, currency=None):
        """Sale orders from ``[(partner, days_ago, amount, state)]`` (one line each), dated in
        the past, confirmed or cancelled with SQL (as if at that date)."""
        env, company = cls.env, company or cls.env.company
        product = cls._crm_ai_product()
        now = fields.Datetime.now()
        SaleOrder = env["sale.order"].with_company(company).with_context(tracking_disable=True, mail_create_nolog=True)
        vals = []
        for partner, days_ago, amount, _state in specs:
            order = {"partner_id": partner.id, "company_id": company.id, "date_order": now - timedelta(days=days_ago),
                     "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1, "price_unit": amount,
                                            "tax_id": [(6, 0, [])]})]}
            if currency:
                pricelist = env["product.pricelist"].create({"name": f"crm_ai {currency.name}",
                                                             "currency_id": currency.id, "company_id": company.id})
                order["pricelist_id"] = pricelist.id
            vals.append(order)
        orders = SaleOrder.create(vals)
        env.flush_all()
        env.cr.execute("UPDATE sale_order o SET state = v.s FROM unnest(%s::int[], %s::varchar[]) v(id, s) "
                       "WHERE o.id = v.id", (orders.ids, [s[3] for s in specs]))
        env["sale.order"].invalidate_model(["state"])
        return orders

    @classmethod
    def _crm_ai_customers(cls, n=40, seed=11, company=None, prefix="crm_ai customer"):
        """``n`` customers with up to a year of orders each in their own rhythm: loyal
        (often, until now, big orders), lapsed (often, but stopped half a year ago),
        occasional, and new (a first order or two in the last weeks); returns them."""
        rng = random.Random(seed)
        company = company or cls.env.company
        partners = cls.env["res.partner"].create([{"name": f"{prefix} {i}", "is_company": True} for i in range(n)])
        specs = []
        for i, partner in enumerate(partners):
            kind = i % 4
            gap, stop = {0: (20, 0), 1: (25, 200), 2: (120, 0), 3: (15, 0)}[kind]
            day = 400 - rng.randint(0, 30) if kind != 3 else rng.randint(5, 25)
            while day > stop:
                specs.append((partner, day, rng.choice([200.0, 500.0, 1500.0]) * (3 if kind == 0 else 1), "sale"))
                day -= max(3, int(rng.expovariate(1 / gap)))
        cls._crm_ai_orders(specs, company)
        return partners

    @classmethod
    def _crm_ai_customer_params(cls):
        """Small data, small thresholds: 10 customers, up to 4 segments, 30-day horizon."""
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("crm_ai.customer_segment.min_customers", "10")
        params.set_param("crm_ai.customer_segment.k_max", "4")
        params.set_param("crm_ai.repeat_purchase.min_customers", "10")
        params.set_param("crm_ai.repeat_purchase.horizon_days", "30")
        params.set_param("crm_ai.repeat_purchase.snapshots", "3")


class CrmAiRecommendMixin(CrmAiCustomerMixin):
    """Two kinds of customers buying two kinds of products, for the recommendation engine."""

    @classmethod
    def _crm_ai_catalogue(cls):
        Category = cls.env["product.category"]
        cls.categ_a, cls.categ_b = Category.create([{"name": "crm_ai A things"}, {"name": "crm_ai B things"}])
        Product = cls.env["product.product"]
        cls.products_a = Product.create([{"name": f"crm_ai a{i}", "categ_id": cls.categ_a.id, "list_price": 10.0 * i}
                                         for i in range(1, 7)])
        cls.products_b = Product.create([{"name": f"crm_ai b{i}", "categ_id": cls.categ_b.id, "list_price": 20.0 * i}
                                         for i in range(1, 7)])
        cls.belgium, cls.france = cls.env.ref("base.be"), cls.env.ref("base.fr")

    @classmethod
    def _crm_ai_tribes(cls, n, company, seed=5, prefix="crm_ai shopper"):
        """``n`` customers, even ones Belgian buying A things, odd ones French buying B
        things: each orders 1-3 of its 2 favourite products about monthly for 300 days,
        and one time in three tries another product of its kind."""
        rng = random.Random(seed)
        partners = cls.env["res.partner"].create([{
            "name": f"{prefix} {i}", "is_company": True,
            "country_id": (cls.belgium if i % 2 == 0 else cls.france).id} for i in range(n)])
        now = fields.Datetime.now()
        vals = []
        for i, partner in enumerate(partners):
            tribe = cls.products_a if i % 2 == 0 else cls.products_b
            favourites = rng.sample(list(tribe), 2)
            for day in range(300 - rng.randint(0, 20), 0, -30):
                basket = {rng.choice(favourites) for _ in range(rng.randint(1, 2))}
                if rng.random() < 0.35:
                    basket.add(rng.choice(tribe))
                vals.append({"partner_id": partner.id, "company_id": company.id,
                             "date_order": now - timedelta(days=day, hours=rng.randint(0, 20)),
                             "order_line": [(0, 0, {"product_id": p.id, "product_uom_qty": 1, "tax_id": [(6, 0, [])]})
                                            for p in basket]})
        orders = cls.env["sale.order"].with_company(company).with_context(tracking_disable=True).create(vals)
        cls.env.flush_all()
        cls.env.cr.execute("UPDATE sale_order SET state = 'sale' WHERE id = ANY(%s)", (orders.ids,))
        cls.env["sale.order"].invalidate_model(["state"])
        return partners

