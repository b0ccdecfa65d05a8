"""Sentiment of what customers wrote, on leads and partners.

The engines around ``ml.sentiment`` (TextBlob and VADER combined, English only; see its
docstring and BENCHMARKS.md §6).  They do not train: the weights were fitted once on a
labelled file and are constants; the registry keeps one row per ``untrained_version``.

What is read: a lead's description, and the chatter messages *the customer* wrote:
incoming emails and comments whose author is not an internal user (internal notes,
employees' messages, outgoing mailings and system notifications never count).  For a
partner: its own chatter and its contacts', and the messages of its leads in the
company (per company, like the customer value).

Incremental: a message is analysed once.  Its result is stored on the message
(``mail_message.ai_sentiment_*``, written with SQL: no chatter, no ``write_date``); a
label on the message is how far the engine got.  A lead or partner is then the
recency-weighted aggregate of its analysed texts, recomputed when a new message arrives
and daily (recency moves).
"""

from odoo import SUPERUSER_ID
from odoo.tools import SQL

from ..ml.sentiment import (
    NEGATIVE,
    NEUTRAL,
    NO_TEXT,
    POSITIVE,
    RAW_CAP,
    UNSUPPORTED,
    TextSentiment,
    aggregate,
    excerpt,
)
from .crm_ai_engine import CrmAiEngine, Param, register_engine
from .customer_orders import CustomerValueEngine
from .engine_lead_propensity import open_sql

#: What the engine's labels say to people (record fields' selection; Odoo translates them).
SENTIMENT_LABELS = [
    (POSITIVE, "Positive"),
    (NEUTRAL, "Neutral"),
    (NEGATIVE, "Negative"),
    (UNSUPPORTED, "Unsupported language"),
    (NO_TEXT, "No customer text"),
]
#: A text's weight halves every this many days (a complaint of last week weighs more).
DEFAULT_HALF_LIFE_DAYS = 30
#: "Sentiment worsened": the score fell by at least this much since the previous value.
WORSENED_BY = 0.2
#: Messages analysed per query (the chain scores ~4,000 short texts/s).
MESSAGE_BATCH = 2000
#: The reading chain's version (lexicons, phrases, weights, cleaning): a message read by an
#: earlier one is read again, so that a customer's messages are all read the same way.
CHAIN_VERSION = 3
UNTRAINED_VERSION = (f"textblob+vader+customer phrases v{CHAIN_VERSION} (weights fitted on amazon, words' score;"
                     " BENCHMARKS.md §6)")

#: A message's date, never later than its arrival: an email's Date header comes from the
#: sender's clock, and one dated years ahead would weigh fully for years.
MESSAGE_DATE = SQL("LEAST(m.date, m.create_date)")

_CHAIN = None


def text_sentiment():
    """The analysis chain, loaded once per process (lexicons and language model: ~130 MB)."""
    global _CHAIN  # a process-wide cache of read-only models
    if _CHAIN is None:
        _CHAIN = TextSentiment()
    return _CHAIN


def customer_written_sql(message):
    """SQL condition: mail_message ``message`` was written by the customer."""
    m = SQL.identifier(message)
    return SQL("""%(m)s.message_type IN ('email', 'comment')
        AND NOT EXISTS (SELECT 1 FROM mail_message_subtype st WHERE st.id = %(m)s.subtype_id AND st.internal)
        AND (%(m)s.author_id IS NULL AND %(m)s.message_type = 'email'
             OR EXISTS (SELECT 1 FROM res_partner a WHERE a.id = %(m)s.author_id)
                AND NOT EXISTS (SELECT 1 FROM res_users u WHERE u.partner_id = %(m)s.author_id AND NOT u.share)
                -- a template sent "from the company" is authored by the company's own partner
                AND NOT EXISTS (SELECT 1 FROM res_company rc WHERE rc.partner_id = %(m)s.author_id))""",
               m=m)


class SentimentEngine:
    """What the lead and partner sentiment engines share (put before ``CrmAiEngine``)."""

    trains = False
    untrained_version = UNTRAINED_VERSION
    # bench/run sentiment (BENCHMARKS.md §6): weights fitted on amazon, measured on yelp and imdb
    untrained_metrics = {
        "model": {"accuracy": 0.824, "accuracy_yelp": 0.843, "accuracy_imdb": 0.805,
                  "macro_f1_yelp": 0.843, "macro_f1_imdb": 0.804},
        "baseline": {"accuracy": 0.769, "accuracy_yelp": 0.774, "accuracy_imdb": 0.764,
                     "macro_f1_yelp": 0.774, "macro_f1_imdb": 0.764},
    }
    primary_metric = "accuracy"
    primary_metric_label = "Accuracy"
    baseline_label = "TextBlob"
    libraries = ("scikit-learn", "numpy", "textblob", "vaderSentiment", "py3langid")
    batch_size = 2000
    value_prefix = "ai_sentiment"
    # the same columns on leads and partners (crm_ai_sentiment_fields.sentiment_fields)
    state_field = "ai_sentiment_state"
    date_field = "ai_sentiment_scored_date"
    model_field = "ai_sentiment_model_id"
    value_fields = ("ai_sentiment", "ai_sentiment_label", "ai_sentiment_excerpt", "ai_sentiment_evidence",
                    "ai_sentiment_count", "ai_sentiment_date", "ai_sentiment_trend")
    params_common = {"half_life_days": Param("float", DEFAULT_HALF_LIFE_DAYS, minimum=1, maximum=3650)}
    #: whether the target stores the id of the message its excerpt quotes (a customer's excerpt
    #: may quote a lead its reader cannot open: the partner shows it only to who may read it)
    excerpt_message = False

    def untrained_estimator(self):
        return text_sentiment()

    # -- messages ---------------------------------------------------------------------------
    def analyze_new_messages(self, message_ids):
        """Analyse the messages among ``message_ids`` not analysed yet (or by an earlier
        :data:`CHAIN_VERSION`), and store the result on each (SQL: no chatter, no
        write_date); returns how many were analysed."""
        self.env["mail.message"].flush_model(["body", "ai_sentiment_label", "ai_sentiment_version"])
        # the chain reads at most RAW_CAP characters of a body: a thread of 1 MB emails is not fetched whole
        self.env.cr.execute(SQL("SELECT id, left(body, %s) FROM mail_message WHERE id = ANY(%s)"
                                " AND (ai_sentiment_label IS NULL OR ai_sentiment_version IS DISTINCT FROM %s)",
                                RAW_CAP, list(message_ids), CHAIN_VERSION))
        rows = self.env.cr.fetchall()
        chain = text_sentiment()
        for start in range(0, len(rows), MESSAGE_BATCH):
            chunk = rows[start:start + MESSAGE_BATCH]
            analyses = chain.analyze([body or "" for _id, body in chunk])
            self.env.cr.execute(SQL("""
                UPDATE mail_message m SET ai_sentiment_score = v.score, ai_sentiment_label = v.label,
                                          ai_sentiment_language = v.language, ai_sentiment_excerpt = v.excerpt,
                                          ai_sentiment_evidence = v.evidence, ai_sentiment_version = %s
                  FROM unnest(%s::int[], %s::float8[], %s::varchar[], %s::varchar[], %s::text[], %s::varchar[])
                       AS v(id, score, label, language, excerpt, evidence)
                 WHERE m.id = v.id""",
                CHAIN_VERSION, [i for i, _b in chunk],
                [a["score"] if a["signal"] else None for a in analyses],
                [a["label"] for a in analyses],
                [a["language"] or None for a in analyses],
                [self.excerpt_of(a) for a in analyses],
                [", ".join(a["evidence"]) or None for a in analyses]))
        self.env["mail.message"].invalidate_model(
            ["ai_sentiment_score", "ai_sentiment_label", "ai_sentiment_language", "ai_sentiment_excerpt",
             "ai_sentiment_evidence", "ai_sentiment_version"])
        return len(rows)

    @staticmethod
    def excerpt_of(analysis):
        """The part of a text to show: around its evidence when it reads negative."""
        return excerpt(analysis["text"], analysis["evidence"] if analysis["label"] == NEGATIVE else ())

    @staticmethod
    def stored_analysis(score, label):
        """A message's stored result as ``ml.sentiment.aggregate`` reads it."""
        return {"score": score if score is not None else (0.0 if label == NEUTRAL else None),
                "signal": score is not None, "label": label}

    def aggregate_values(self, ids, texts_by_record, now, current, model_id):
        """``{column: [value per id]}`` from ``texts_by_record[id] = [(analysis, date,
        excerpt, evidence, message id or None)]`` and the records' current ``(score, count,
        trend, model id)``.  With ``excerpt_message``, also the id of the message the excerpt
        quotes.  The trend compares scores of the same chain (``model_id``): a score of an
        earlier version is no previous value (a new reading is not a change of mood)."""
        half_life = self.param("half_life_days")
        prefix = self.value_prefix
        values = {f"{prefix}": [], f"{prefix}_label": [], f"{prefix}_excerpt": [], f"{prefix}_evidence": [],
                  f"{prefix}_count": [],
                  f"{prefix}_date": [], f"{prefix}_trend": []}
        if self.excerpt_message:
            values[f"{prefix}_message"] = []
        for record_id in ids:
            texts = texts_by_record.get(record_id, [])
            result = aggregate([t[0] for t in texts], [max((now - t[1]).total_seconds(), 0) / 86400 for t in texts],
                               half_life_days=half_life)
            old_score, old_count, old_trend, old_model = current.get(record_id, (None, None, None, None))
            trend = old_trend
            if old_model is not None and old_model != model_id:
                trend = None  # read by another version of the chain: nothing to compare with
            elif result["score"] is not None and old_score is not None and result["count"] != (old_count or 0):
                trend = round(result["score"] - old_score, 4)  # moved by new texts, not by time
            elif result["score"] is None:
                trend = None
            worst = result["excerpt_index"]
            values[prefix].append(result["score"])
            values[f"{prefix}_label"].append(result["label"])
            values[f"{prefix}_excerpt"].append(texts[worst][2] if worst is not None else None)
            values[f"{prefix}_evidence"].append(texts[worst][3] if worst is not None else None)
            values[f"{prefix}_count"].append(result["count"])
            values[f"{prefix}_date"].append(max((t[1] for t in texts), default=None))
            values[f"{prefix}_trend"].append(trend)
            if self.excerpt_message:
                values[f"{prefix}_message"].append(texts[worst][4] if worst is not None else None)
        return values

    def current_values(self, ids):
        prefix = self.value_prefix
        self.env.cr.execute(SQL("SELECT t.id, %s, %s, %s, %s FROM %s t WHERE t.id = ANY(%s)",
                                self.column_sql("t", prefix), self.column_sql("t", f"{prefix}_count"),
                                self.column_sql("t", f"{prefix}_trend"), self.column_sql("t", self.model_field),
                                SQL.identifier(self.table), list(ids)))
        return {row[0]: row[1:] for row in self.env.cr.fetchall()}


@register_engine
class LeadSentimentEngine(SentimentEngine, CrmAiEngine):
    task = "lead_sentiment"
    label = "Lead sentiment"
    target_model = "crm.lead"
    params = {**CrmAiEngine.params, **SentimentEngine.params_common}

    def scope_sql(self, alias):
        # open leads (the won and lost ones no longer need a daily look; their messages still
        # count for their customer's sentiment)
        return SQL("%s AND %s", open_sql(alias), self.company_sql(SQL("%s.company_id", SQL.identifier(alias))))

    def changed_sql(self, alias):
        lead = SQL.identifier(alias)
        # write_date: a message edited or emptied ("deleted" in the chatter) is re-read too
        return SQL("""EXISTS (SELECT 1 FROM mail_message m WHERE m.model = 'crm.lead' AND m.res_id = %s.id
                                 AND m.write_date > %s AND %s)""",
                   lead, self.column_sql(alias, self.date_field), customer_written_sql("m"))

    def score(self, ids, estimator, model, now):
        self.env["mail.message"].flush_model()
        self.env.cr.execute(SQL("SELECT m.id FROM mail_message m WHERE m.model = 'crm.lead' AND m.res_id = ANY(%s) AND %s",
                                list(ids), customer_written_sql("m")))
        self.analyze_new_messages([row[0] for row in self.env.cr.fetchall()])
        self.env.cr.execute(SQL("""
            SELECT m.res_id, m.ai_sentiment_score, m.ai_sentiment_label, %s, m.ai_sentiment_excerpt,
                   m.ai_sentiment_evidence
              FROM mail_message m
             WHERE m.model = 'crm.lead' AND m.res_id = ANY(%s) AND %s AND m.ai_sentiment_label IS NOT NULL""",
            MESSAGE_DATE, list(ids), customer_written_sql("m")))
        texts = {}
        for lead_id, score, label, date, text, evidence in self.env.cr.fetchall():
            texts.setdefault(lead_id, []).append((self.stored_analysis(score, label), date, text, evidence, None))
        # the description: what the customer asked for, dated at the lead's creation
        self.env["crm.lead"].flush_model(["description"])
        self.env.cr.execute(SQL("""
            SELECT l.id, l.description, l.create_date FROM crm_lead l
             WHERE l.id = ANY(%s) AND l.description IS NOT NULL
               -- the description is the customer's words on a lead a customer created: by a portal or public
               -- user, or by Odoo's website form (which creates it as the superuser); on a lead an employee
               -- created it is the "Internal Notes" page, and on one the mail gateway created (as the
               -- superuser too, with the customer's email as a message, the description left empty) what
               -- a salesperson wrote there afterwards
               AND (EXISTS (SELECT 1 FROM res_users u WHERE u.id = l.create_uid AND u.share)
                    OR l.create_uid = %s AND NOT EXISTS (
                        SELECT 1 FROM mail_message m WHERE m.model = 'crm.lead' AND m.res_id = l.id
                           AND m.message_type = 'email' AND m.create_date = l.create_date))""",
            list(ids), SUPERUSER_ID))
        rows = self.env.cr.fetchall()
        for (lead_id, _d, created), analysis in zip(rows, text_sentiment().analyze([d for _i, d, _c in rows])):
            if analysis["label"] != NO_TEXT:
                stored = self.stored_analysis(analysis["score"] if analysis["signal"] else None, analysis["label"])
                texts.setdefault(lead_id, []).append(
                    (stored, created, self.excerpt_of(analysis), ", ".join(analysis["evidence"]) or None, None))
        return self.aggregate_values(ids, texts, now, self.current_values(ids), model.id)


@register_engine
class PartnerSentimentEngine(SentimentEngine, CustomerValueEngine, CrmAiEngine):
    task = "partner_sentiment"
    label = "Customer sentiment"
    params = {**CrmAiEngine.params, **SentimentEngine.params_common}
    # a batch holds every message of its customers (and of their leads) at once: 500 customers
    # keep the peak well under the 2,000-lead batches' (bench/bench_sentiment_odoo.py: +87 MB at 2,000)
    batch_size = 500
    excerpt_message = True
    value_fields = (*SentimentEngine.value_fields, "ai_sentiment_message")

    def data_shortfall(self):
        return None  # CustomerValueEngine's minimum of customers is for models that learn

    def messages_sql(self, customers):
        """``(customer, message id)`` of the customers' own chatter (and their contacts')
        and of their leads in this company, customer-written only."""
        return SQL("""
            SELECT p.commercial_partner_id, m.id FROM mail_message m JOIN res_partner p ON p.id = m.res_id
             WHERE m.model = 'res.partner' AND p.commercial_partner_id = ANY(%(customers)s) AND %(written)s
             UNION ALL
            SELECT p.commercial_partner_id, m.id FROM mail_message m
              JOIN crm_lead l ON l.id = m.res_id JOIN res_partner p ON p.id = l.partner_id
             WHERE m.model = 'crm.lead' AND p.commercial_partner_id = ANY(%(customers)s)
               AND (l.company_id = %(company)s OR l.company_id IS NULL) AND %(written)s""",
                   customers=list(customers), company=self.company.id, written=customer_written_sql("m"))

    def changed_sql(self, alias):
        t = SQL.identifier(alias)
        date = self.column_sql(alias, self.date_field)
        # a lead edited since (it may have come from another customer, with its messages), and the
        # message the excerpt quotes now on another customer's lead (the lead went to him)
        return SQL("""EXISTS (SELECT 1 FROM crm_lead l JOIN res_partner lp ON lp.id = l.partner_id
                                JOIN mail_message m ON m.model = 'crm.lead' AND m.res_id = l.id
                               WHERE lp.commercial_partner_id = %(t)s.commercial_partner_id
                                 AND (l.company_id = %(company)s OR l.company_id IS NULL)
                                 AND (m.write_date > %(date)s OR l.write_date > %(date)s) AND %(written)s)
                   OR EXISTS (SELECT 1 FROM mail_message m JOIN crm_lead l ON m.model = 'crm.lead' AND l.id = m.res_id
                                LEFT JOIN res_partner lp ON lp.id = l.partner_id
                               WHERE m.id = %(quoted)s
                                 AND lp.commercial_partner_id IS DISTINCT FROM %(t)s.commercial_partner_id)
                   OR EXISTS (SELECT 1 FROM mail_message m JOIN res_partner mp ON mp.id = m.res_id
                               WHERE m.model = 'res.partner' AND mp.commercial_partner_id = %(t)s.commercial_partner_id
                                 AND m.write_date > %(date)s AND %(written)s)""",
                   t=t, company=self.company.id, date=date, written=customer_written_sql("m"),
                   quoted=self.column_sql(alias, "ai_sentiment_message"))

    def score(self, ids, estimator, model, now):
        commercial = self.commercial_partners(ids)
        customers = sorted(set(commercial.values()))
        self.env["mail.message"].flush_model()
        self.env.cr.execute(self.messages_sql(customers))
        pairs = self.env.cr.fetchall()
        self.analyze_new_messages([message_id for _c, message_id in pairs])
        self.env.cr.execute(SQL("""
            SELECT v.customer, m.ai_sentiment_score, m.ai_sentiment_label, %s, m.ai_sentiment_excerpt,
                   m.ai_sentiment_evidence, m.id
              FROM unnest(%s::int[], %s::int[]) AS v(customer, message) JOIN mail_message m ON m.id = v.message
             WHERE m.ai_sentiment_label IS NOT NULL""", MESSAGE_DATE, [c for c, _m in pairs], [m for _c, m in pairs]))
        by_customer = {}
        for customer, score, label, date, text, evidence, message in self.env.cr.fetchall():
            by_customer.setdefault(customer, []).append(
                (self.stored_analysis(score, label), date, text, evidence, message))
        # once per customer (its own row holds the previous value, for the trend), then on each of
        # the batch's partners, contacts included
        values = self.aggregate_values(customers, by_customer, now, self.current_values(customers), model.id)
        position = {customer: i for i, customer in enumerate(customers)}
        return {column: [column_values[position[commercial[pid]]] for pid in ids]
                for column, column_values in values.items()}


def describe_trend(env, trend):
    """Words for a sentiment change, in ``env``'s language."""
    if trend is None:
        return ""
    if trend <= -WORSENED_BY:
        return env._("worsened")
    if trend >= WORSENED_BY:
        return env._("improved")
    return env._("stable")
