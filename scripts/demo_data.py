"""Realistic generated CRM history for a crm_ai demo database.

Run inside ``odoo-bin shell`` (``env`` is given):  scripts/run does it for you.

It creates customers (companies with contacts), two years of leads with sources,
media, campaigns, countries, tags, revenue and contact quality, a history of emails,
notes and done activities, closes the older ones as won or lost, and two years of
sale orders (customers buying at their own pace, some churning, some never buying).
Lead outcomes are drawn from a hidden logistic model (source, team, country, revenue, activity,
customer history, tags, drift over time) plus noise, so there is real signal to
learn and a realistic ~30 % win rate, not a toy separable set.

Environment: CRM_AI_DEMO_LEADS (default 3000), CRM_AI_DEMO_SEED (default 42).
"""
import logging
import math
import os
import random
from datetime import datetime, timedelta

_logger = logging.getLogger("crm_ai.demo")

N_LEADS = int(os.environ.get("CRM_AI_DEMO_LEADS", "3000"))
SEED = int(os.environ.get("CRM_AI_DEMO_SEED", "42"))
OPEN_SHARE = 0.15          # newest leads stay open: those are what gets scored
HISTORY_DAYS = 730

rng = random.Random(SEED)
now = datetime.now().replace(microsecond=0)


def pick(weighted):
    items, weights = zip(*weighted)
    return rng.choices(items, weights)[0]


def ref(xmlid):
    return env.ref(xmlid, raise_if_not_found=False)  # noqa: F821 -- given by odoo shell


Lead = env["crm.lead"].with_context(tracking_disable=True, mail_create_nolog=True,  # noqa: F821
                                    mail_notrack=True, mail_auto_subscribe_no_notify=True)
company = env.company  # noqa: F821

# -- reference data (name -> (record, effect on log-odds)) ------------------------------
def ensure(model, name, **extra):
    rec = env[model].search([("name", "=", name)], limit=1)  # noqa: F821
    return rec or env[model].create({"name": name, **extra})  # noqa: F821


sources = [(ensure("utm.source", n), w, eff) for n, w, eff in [
    ("Search engine", 30, 0.2), ("Newsletter", 15, -0.3), ("Referral", 10, 1.0), ("Trade fair", 8, 0.6),
    ("LinkedIn", 12, 0.0), ("Cold call list", 15, -0.9), ("Partner", 10, 0.7)]]
media = [(ensure("utm.medium", n), w, eff) for n, w, eff in [
    ("Email", 35, -0.1), ("Phone", 25, 0.3), ("Website", 30, 0.0), ("Event", 10, 0.4)]]
campaigns = [(ensure("utm.campaign", n), w, eff) for n, w, eff in [
    ("Spring promo", 20, 0.1), ("Product launch", 20, 0.3), ("Black Friday", 15, -0.2), ("Webinar series", 10, 0.4)]]
tag_specs = [("Enterprise", 0.15, 0.5), ("SMB", 0.35, -0.1), ("Services", 0.3, 0.2), ("Product", 0.4, 0.0),
             ("Urgent", 0.1, 0.6), ("Price sensitive", 0.2, -0.6)]
tags = [(ensure("crm.tag", n), p, eff) for n, p, eff in tag_specs]
countries = [(c, w, eff) for c, w, eff in [
    (ref("base.be"), 20, 0.3), (ref("base.fr"), 20, 0.0), (ref("base.us"), 25, 0.1), (ref("base.de"), 15, 0.2),
    (ref("base.in"), 10, -0.5), (ref("base.br"), 10, -0.3)] if c]
teams = env["crm.team"].search([], limit=4)  # noqa: F821
team_effects = {team.id: eff for team, eff in zip(teams, [0.3, -0.2, 0.0, 0.1])}
users = env["res.users"].search([("share", "=", False), ("active", "=", True)], limit=6)  # noqa: F821
user_effects = {u.id: rng.gauss(0, 0.3) for u in users}
lost_reasons = env["crm.lost.reason"].search([])  # noqa: F821
won_stage = env["crm.stage"].search([("is_won", "=", True)], limit=1)  # noqa: F821
open_stages = env["crm.stage"].search([("is_won", "=", False)], order="sequence")  # noqa: F821

# -- customers -------------------------------------------------------------------------
first = ["Alba", "Bruno", "Chloé", "Dario", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kaori", "Liam",
         "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara"]
last = ["Martin", "Novak", "Silva", "Dubois", "Keller", "Rossi", "Kowalski", "Jensen", "Moreau", "Ito"]
words = ["Nord", "Blue", "Atlas", "Vertex", "Green", "Pixel", "Solar", "Delta", "Nova", "Orbit", "Cedar", "Iron"]
kinds = ["Logistics", "Foods", "Systems", "Consulting", "Energy", "Retail", "Labs", "Health"]
n_customers = max(N_LEADS // 4, 50)
customer_vals = []
for i in range(n_customers):
    country = pick([(c, w) for c, w, _e in countries])
    customer_vals.append({"name": f"{rng.choice(words)} {rng.choice(kinds)} {i + 1}", "is_company": True,
                          "country_id": country.id, "email": f"info{i}@example.com"})
customers = env["res.partner"].create(customer_vals)  # noqa: F821
customer_quality = {c.id: rng.gauss(0, 0.6) for c in customers}
_logger.info("crm_ai demo: %d customers", len(customers))

# -- leads -----------------------------------------------------------------------------
specs = []
for i in range(N_LEADS):
    created = now - timedelta(days=HISTORY_DAYS * (1 - i / N_LEADS), hours=rng.random() * 24)
    src, _w, src_eff = rng.choices(sources, [w for _s, w, _e in sources])[0]
    med, _w, med_eff = rng.choices(media, [w for _s, w, _e in media])[0]
    camp, _w, camp_eff = rng.choices(campaigns, [w for _s, w, _e in campaigns])[0] if rng.random() < 0.6 else (None, 0, 0.0)
    country, _w, country_eff = rng.choices(countries, [w for _c, w, _e in countries])[0]
    lead_tags = [(t, eff) for t, p, eff in tags if rng.random() < p]
    team = rng.choice(teams) if teams else None
    user = rng.choice(users)
    customer = rng.choice(customers) if rng.random() < 0.75 else None
    revenue = round(math.exp(rng.gauss(9, 1.1)), -2)
    email_ok = rng.random() < 0.85
    phone_ok = rng.random() < 0.7
    priority = pick([("0", 50), ("1", 30), ("2", 15), ("3", 5)])
    n_messages = min(int(rng.expovariate(1 / 3)), 20)
    n_activities = min(int(rng.expovariate(1 / 2)), 12)
    logit = (-1.7 + src_eff + med_eff + camp_eff + country_eff + sum(e for _t, e in lead_tags)
             + team_effects.get(team.id if team else 0, 0) + user_effects[user.id]
             + (customer_quality[customer.id] if customer else -0.3)
             - 0.35 * (math.log(revenue) - 9) ** 2 * 0.5 + 0.12 * n_activities + 0.05 * n_messages
             + (0.4 if email_ok else -0.6) + (0.3 if phone_ok else -0.2) + 0.25 * int(priority)
             + 0.3 * math.sin(2 * math.pi * i / N_LEADS))  # slow drift over the two years
    won = rng.random() < 1 / (1 + math.exp(-logit))
    is_open = i >= N_LEADS * (1 - OPEN_SHARE)
    duration = timedelta(days=rng.uniform(3, 90))
    closed = min(created + duration, now - timedelta(hours=1))
    specs.append(dict(created=created, closed=None if is_open else closed, won=won, n_messages=n_messages,
                      n_activities=n_activities, vals={
                          "name": f"{(customer.name if customer else rng.choice(first) + ' ' + rng.choice(last))}: "
                                  f"{rng.choice(['licences', 'onboarding', 'renewal', 'consulting', 'upgrade', 'pilot'])}",
                          "type": "opportunity", "partner_id": customer.id if customer else False,
                          "contact_name": f"{rng.choice(first)} {rng.choice(last)}",
                          "email_from": f"contact{i}@example.com" if email_ok else "not-an-email",
                          "phone": "+32 2 290 34 90" if phone_ok else "12",
                          "source_id": src.id, "medium_id": med.id, "campaign_id": camp.id if camp else False,
                          "country_id": country.id, "tag_ids": [(6, 0, [t.id for t, _e in lead_tags])],
                          "team_id": team.id if team else False, "user_id": user.id,
                          "expected_revenue": revenue, "priority": priority,
                          "stage_id": rng.choice(open_stages[:3]).id if open_stages else False,
                      }))

leads = env["crm.lead"].browse()  # noqa: F821
for start in range(0, len(specs), 500):
    leads |= Lead.create([s["vals"] for s in specs[start:start + 500]])
env.flush_all()  # noqa: F821 -- pending ORM recomputes must not overwrite the SQL below
_logger.info("crm_ai demo: %d leads created", len(leads))

# Messages and done activities, dated inside each lead's life (plain SQL: thousands of rows).
cr = env.cr  # noqa: F821
activity_type = ref("mail.mail_activity_data_call")
note_subtype = ref("mail.mt_note")
author = env.user.partner_id.id  # noqa: F821
rows = []
for lead, spec in zip(leads, specs):
    end = spec["closed"] or now
    span = max((end - spec["created"]).total_seconds(), 3600)
    for k in range(spec["n_messages"] + spec["n_activities"]):
        when = spec["created"] + timedelta(seconds=rng.random() * span)
        is_activity = k >= spec["n_messages"]
        rows.append((lead.id, when, "comment" if is_activity else rng.choice(["email", "comment"]),
                     activity_type.id if (is_activity and activity_type) else None,
                     "<p>Call done</p>" if is_activity else "<p>Follow-up</p>"))
for start in range(0, len(rows), 5000):
    chunk = rows[start:start + 5000]
    cr.execute("""
        INSERT INTO mail_message (model, res_id, date, message_type, mail_activity_type_id, body, author_id,
                                  subtype_id, create_date, write_date, create_uid, write_uid)
        SELECT 'crm.lead', r.res_id, r.d, r.t, r.a, r.b, %s, %s, r.d, r.d, 1, 1
          FROM unnest(%s::int[], %s::timestamp[], %s::varchar[], %s::int[], %s::text[]) AS r(res_id, d, t, a, b)
    """, (author, note_subtype.id if note_subtype else None, [r[0] for r in chunk], [r[1] for r in chunk],
          [r[2] for r in chunk], [r[3] for r in chunk], [r[4] for r in chunk]))

# Close the older leads (SQL keeps their historical dates; tracking would stamp "now").
won_ids = [lead.id for lead, s in zip(leads, specs) if s["closed"] and s["won"]]
lost_ids = [lead.id for lead, s in zip(leads, specs) if s["closed"] and not s["won"]]
cr.execute("UPDATE crm_lead l SET create_date = v.c, write_date = COALESCE(v.e, v.c), date_open = v.c, "
           "date_closed = v.e FROM unnest(%s::int[], %s::timestamp[], %s::timestamp[]) AS v(id, c, e) WHERE l.id = v.id",
           ([lead.id for lead in leads], [s["created"] for s in specs], [s["closed"] for s in specs]))
if won_ids and won_stage:
    cr.execute("UPDATE crm_lead SET stage_id = %s, probability = 100, automated_probability = 100 WHERE id = ANY(%s)",
               (won_stage.id, won_ids))
if lost_ids:
    cr.execute("UPDATE crm_lead SET active = FALSE, probability = 0, automated_probability = 0, "
               "lost_reason_id = (%s::int[])[1 + (id %% %s)] WHERE id = ANY(%s)",
               (lost_reasons.ids or [None], max(len(lost_reasons), 1), lost_ids))
env["crm.lead"].invalidate_model()  # noqa: F821

# -- sale orders (customer segments, repeat purchase, recommendations) ---------------------------
# Each customer buys as a Poisson process at its own rate from its first order on, some stop
# buying at a random moment (churn), some never buy (prospects); order values vary around
# the customer's own level.  A few orders are cancelled (they must not count).  What they buy
# follows a profile (retail shops buy hardware and software, agencies services and support,
# ...): each customer has a few favourite products of its profile and now and then tries
# another one, so customers alike buy alike (what the recommendations learn).
catalogue = {  # category -> [(product, price)]
    "Software licences": [("Licence pack", 900.0), ("CRM add-on", 300.0), ("Analytics module", 600.0),
                 ("Mobile app seats", 250.0), ("Integration connector", 400.0)],
    "Professional services": [("Onboarding day", 1200.0), ("Data migration", 2000.0), ("Custom report", 500.0),
                 ("Consulting hours", 150.0)],
    "Support plans": [("Support plan", 450.0), ("Premium support", 900.0), ("Extended warranty", 200.0)],
    "Point of sale hardware": [("Barcode scanner", 180.0), ("Receipt printer", 220.0), ("POS terminal", 650.0),
                 ("Label printer", 160.0)],
    "Training courses": [("Admin training", 800.0), ("User training", 400.0), ("E-learning pass", 120.0)],
}
# (names of their own: Odoo's demo data has "Services" etc. with its own products in them)
profiles = [("Point of sale hardware", "Software licences"), ("Professional services", "Support plans"),
            ("Software licences", "Training courses"), ("Software licences", "Professional services", "Support plans")]
saleable = ensure("product.category", "Saleable")
products_by_category = {}
for category_name, items in catalogue.items():
    category = ensure("product.category", category_name, parent_id=saleable.id)
    products_by_category[category_name] = [
        env["product.product"].create({"name": name, "list_price": price, "type": "service",  # noqa: F821
                                       "categ_id": category.id}) for name, price in items]
# launched last week, never sold yet: offered to customers who buy its category
env["product.product"].create({"name": "Self-checkout kiosk", "list_price": 2400.0, "type": "service",  # noqa: F821
                               "categ_id": ensure("product.category", "Point of sale hardware").id})
order_specs = []
for customer in customers:
    if rng.random() < 0.2:
        continue  # a prospect: no order yet
    rate = math.exp(rng.gauss(math.log(3), 0.8)) / 365.0  # orders per day
    level = math.exp(rng.gauss(0, 0.7))
    profile = [p for category in rng.choice(profiles) for p in products_by_category[category]]
    favourites = rng.sample(profile, rng.randint(2, 4))
    start = now - timedelta(days=rng.uniform(0, HISTORY_DAYS))
    end = now if rng.random() < 0.6 else start + timedelta(days=rng.uniform(30, HISTORY_DAYS))
    when = start
    while when < min(end, now):
        basket = {rng.choice(favourites) for _ in range(rng.randint(1, 3))}
        if rng.random() < 0.3:
            basket.add(rng.choice(profile))  # trying something else of its kind
        lines = [(product, max(1, round(level * rng.uniform(0.5, 3)))) for product in sorted(basket, key=lambda p: p.id)]
        order_specs.append((customer.id, when, lines, "cancel" if rng.random() < 0.05 else "sale"))
        when += timedelta(days=rng.expovariate(rate))
SaleOrder = env["sale.order"].with_context(tracking_disable=True, mail_create_nolog=True)  # noqa: F821
# a customer's orders are sold by the salesperson of its latest deal (own-documents users see those)
account_owner = {s["vals"]["partner_id"]: s["vals"]["user_id"] for s in specs if s["vals"]["partner_id"]}
orders = env["sale.order"].browse()  # noqa: F821
for start in range(0, len(order_specs), 500):
    orders |= SaleOrder.create([{
        "partner_id": partner_id, "date_order": when, "user_id": account_owner.get(partner_id, env.uid),  # noqa: F821
        "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": qty, "price_unit": product.list_price})
                       for product, qty in lines],
    } for partner_id, when, lines, _state in order_specs[start:start + 500]])
env.flush_all()  # noqa: F821
# confirmed / cancelled at their historical dates (SQL: confirming thousands by hand is not the point)
cr.execute("UPDATE sale_order o SET state = v.s, date_order = v.d, create_date = v.d, write_date = v.d "
           "FROM unnest(%s::int[], %s::varchar[], %s::timestamp[]) AS v(id, s, d) WHERE o.id = v.id",
           (orders.ids, [s[3] for s in order_specs], [s[1] for s in order_specs]))
# the lines' stored copy of the state, as confirming through the ORM would set it
cr.execute("UPDATE sale_order_line l SET state = o.state FROM sale_order o WHERE o.id = l.order_id AND o.id = ANY(%s)",
           (orders.ids,))
# an order came out of the customer's won deal when it has one (its tags then say what sells in such deals)
cr.execute("""UPDATE sale_order so SET opportunity_id = (
                  SELECT l.id FROM crm_lead l WHERE l.partner_id = so.partner_id AND l.probability = 100
                   ORDER BY l.id LIMIT 1)
               WHERE so.id = ANY(%s)""", (orders.ids,))
env["sale.order"].invalidate_model()  # noqa: F821
env["sale.order.line"].invalidate_model()  # noqa: F821

# -- what customers wrote (sentiment) --------------------------------------------------------------
# Incoming emails on a third of the open leads with a customer, from the customer: mostly
# English (happy, neutral, annoyed), some in Portuguese and French (which the engine says it
# cannot read rather than guessing), some quoting our previous email.
customer_texts = {
    "positive": ["Thanks a lot for the quick answer, the demo was excellent.",
                 "Great proposal, the team loved it. Let's move forward.",
                 "Your support has been fantastic, we are very happy with the pilot."],
    "neutral": ["Could you send the updated quote with 20 licences?",
                "Please find attached our purchase conditions.",
                "We will discuss it internally next week."],
    "negative": ["This is the third time I ask for a quote. Very disappointed.",
                 "The delivery was late again and nobody answered my emails. Not acceptable.",
                 "Honestly the price is too high and the onboarding was a mess."],
    "foreign": ["Obrigado, mas o preço ainda está muito alto para nós.",
                "Bonjour, nous attendons toujours le devis corrigé, merci de faire vite."],
}
email_rows = []
open_with_customer = [(lead, spec) for lead, spec in zip(leads, specs) if spec["closed"] is None and lead.partner_id]
for lead, spec in open_with_customer:
    if rng.random() > 0.35:
        continue
    mood = pick([("positive", 35), ("neutral", 30), ("negative", 25), ("foreign", 10)])
    for _k in range(rng.randint(1, 3)):
        body = "<p>%s</p>" % rng.choice(customer_texts[mood])
        if rng.random() < 0.3:
            body += "<blockquote>On Monday, our sales team wrote: we are delighted to offer you a great deal!</blockquote>"
        when = spec["created"] + timedelta(seconds=rng.random() * max((now - spec["created"]).total_seconds(), 3600))
        email_rows.append((lead.id, when, body, lead.partner_id.id))
comment_subtype = ref("mail.mt_comment")
for start in range(0, len(email_rows), 5000):
    chunk = email_rows[start:start + 5000]
    cr.execute("""
        INSERT INTO mail_message (model, res_id, date, message_type, body, author_id, subtype_id,
                                  create_date, write_date, create_uid, write_uid)
        SELECT 'crm.lead', r.res_id, r.d, 'email', r.b, r.a, %s, r.d, r.d, 1, 1
          FROM unnest(%s::int[], %s::timestamp[], %s::text[], %s::int[]) AS r(res_id, d, b, a)
    """, (comment_subtype.id if comment_subtype else None, [r[0] for r in chunk],
          [r[1] for r in chunk], [r[2] for r in chunk], [r[3] for r in chunk]))
env.cr.commit()  # noqa: F821
print(f"crm_ai demo data: {len(customers)} customers, {len(leads)} leads "
      f"({len(won_ids)} won, {len(lost_ids)} lost, {len(leads) - len(won_ids) - len(lost_ids)} open), "
      f"{len(rows)} messages/activities, {len(orders)} sale orders, {len(email_rows)} customer emails")
