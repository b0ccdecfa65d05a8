"""Sentiment inside Odoo: the lead and customer sentiment engines (``engine_sentiment``)
run by ``crm.ai.driver._cron_score`` over 100,000 customer emails on 10,000 leads.

Run it with ``bench/run sentiment-odoo``: it makes a fresh ``bench_sentiment`` database
and pipes this file into two ``odoo-bin shell`` processes, one per step (``$BENCH_STEP``),
so the scoring step's memory is that of a worker that never analysed anything:

* ``load``: with bulk SQL (``INSERT ... SELECT FROM unnest``, no ORM per row):

  - ``$BENCH_SENTIMENT_PARTNERS`` (2,000) customer companies (no user);
  - ``$BENCH_SENTIMENT_LEADS`` (10,000) opportunities of the current company, each of a
    customer drawn at random, created 370 to 400 days ago;
  - ``$BENCH_SENTIMENT_MESSAGES`` (100,000) customer emails on those leads (``email``,
    subtype Discussions, author = the lead's customer), each on a lead drawn at random,
    dated uniformly over the last 365 days (``create_date`` = ``date``).  The body is an
    HTML paragraph of 1 to 3 sentences (5 % of them 4 to 8) from the UCI Sentiment
    Labelled Sentences (``../shared/data/sentiment_sentences/*.txt``, ``$SENTIMENT_DIR``;
    read, never copied: each line split on its last tab); 30 % with a quoted reply
    (Gmail's ``gmail_quote`` or Odoo's ``blockquote``, holding a salesperson's cheerful
    sentence), 30 % with a signature (a sign-off line, a name, a company, a phone);
    10 % are in Portuguese, French, German or Spanish (:data:`FOREIGN`, written here);
  - ``$BENCH_SENTIMENT_OTHER`` (10,000) messages the engines must NOT read, on the same
    leads and with the same kind of text: half internal notes (subtype Note) and half
    employees' messages (comments and emails by the administrator's partner).

  Each message's ``message_id`` says what it is (``<bench-en-…>``, ``<bench-fr-…>``,
  ``<bench-note-…>``, ``<bench-staff-…>``, ``<bench-new-…>``), for the checks.  Every
  engine other than ``lead_sentiment`` and ``partner_sentiment`` is switched off
  (``crm_ai.<task>.enabled`` = False).

* ``score``: four ``_cron_score(time_budget=3600)`` runs, each committed:

  1. ``first``: every message analysed (once) and stored on it, every lead and customer
     scored: wall time, messages analysed, leads / partners written, phases, peak RSS and
     the RSS the engine adds to the process (right before its first analysis -> after
     the run: lexicons and language model load once per process);
  2. ``again``: nothing changed (the pending queries alone);
  3. ``new``: ``$BENCH_SENTIMENT_NEW`` (1,000) new customer emails dated now, on leads
     drawn at random: only those are analysed (checked).  The run starts a second after
     they are written: a partner's score date is stored to the second, so a message of
     the very second of a scoring would be scored again at the next run;
  4. ``daily``: every score date moved back 25 hours (``rescore_after`` is a day:
     recency moves), nothing new: every lead and customer re-aggregated from the
     stored analyses, none analysed again (checked).

  Then checks: every customer email analysed, no note nor employee message analysed,
  the foreign ones called "unsupported language", and on a sample the stored label is
  the label of the customer's own sentences alone (quotes and signatures cut).

Targets (the issue): the cron over 100,000 messages in 120 s at most; 200 MB at most
added to an Odoo worker; 2,000 short texts a second at least.

``python bench_sentiment_odoo.py --report DIR`` prints the tables from the JSON files.
"""

import html
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

BENCH_DIR = Path(os.environ.get("BENCH_DIR") or Path(os.getcwd()) / "bench")
sys.path.insert(0, str(BENCH_DIR))
import bank_leads as bl

PARTNERS = int(os.environ.get("BENCH_SENTIMENT_PARTNERS", 2_000))
LEADS = int(os.environ.get("BENCH_SENTIMENT_LEADS", 10_000))
MESSAGES = int(os.environ.get("BENCH_SENTIMENT_MESSAGES", 100_000))
OTHER = int(os.environ.get("BENCH_SENTIMENT_OTHER", 10_000))
NEW = int(os.environ.get("BENCH_SENTIMENT_NEW", 1_000))
FOREIGN_SHARE, QUOTE_SHARE, SIGNATURE_SHARE, LONG_SHARE = 0.10, 0.30, 0.30, 0.05
CHECK_SAMPLE = 1_000
TASKS = ("lead_sentiment", "partner_sentiment")
TARGETS = {"cron_seconds": 120.0, "cron_messages": 100_000, "rss_added_mb": 200.0, "texts_per_second": 2_000.0}
RUNS = ("first", "again", "new", "daily")
FILES = ("amazon_cells_labelled.txt", "yelp_labelled.txt", "imdb_labelled.txt")

#: Short customer sentences in the languages the lexicons do not read (written for this bench).
FOREIGN = {
    "pt": ["O atendimento foi excelente, muito obrigado pela ajuda.",
           "Ainda estou esperando a resposta sobre o orçamento.",
           "O produto chegou com defeito e ninguém me respondeu.",
           "Gostamos muito da demonstração, vamos avançar.",
           "A fatura está errada pela segunda vez.",
           "Podem me enviar a proposta atualizada até sexta-feira?",
           "Estamos muito satisfeitos com o serviço.",
           "O prazo de entrega é inaceitável."],
    "fr": ["Merci beaucoup pour votre réponse rapide, c'est parfait.",
           "Nous attendons toujours le devis promis la semaine dernière.",
           "La livraison est arrivée en retard et le colis était abîmé.",
           "La démonstration nous a beaucoup plu, merci à toute l'équipe.",
           "Je suis très déçu par le service après-vente.",
           "Pouvez-vous nous envoyer la facture corrigée ?",
           "Le produit fonctionne très bien, nous sommes ravis.",
           "Personne ne répond au téléphone, c'est inadmissible."],
    "de": ["Vielen Dank für das schnelle Angebot, wir sind sehr zufrieden.",
           "Wir warten immer noch auf die versprochene Lieferung.",
           "Die Rechnung ist leider schon wieder falsch.",
           "Die Vorführung war hervorragend, das Team war sehr kompetent.",
           "Ich bin mit dem Kundendienst äußerst unzufrieden.",
           "Können Sie uns bitte einen Termin für nächste Woche vorschlagen?",
           "Das Produkt ist kaputt angekommen.",
           "Wir freuen uns auf die Zusammenarbeit."],
    "es": ["Muchas gracias por la rápida respuesta, todo perfecto.",
           "Seguimos esperando el presupuesto que nos prometieron.",
           "El pedido llegó dañado y nadie nos ha contestado.",
           "La demostración nos encantó, queremos seguir adelante.",
           "Estoy muy decepcionado con el servicio de atención al cliente.",
           "¿Podrían enviarnos la factura corregida, por favor?",
           "El producto funciona muy bien, estamos encantados.",
           "El plazo de entrega es inaceptable."],
}
SIGN_OFFS = {"en": ["Best regards,", "Kind regards,", "Thanks,", "Cheers,", "-- ", "Sent from my iPhone"],
             "pt": ["Atenciosamente,"], "fr": ["Cordialement,"], "de": ["Mit freundlichen Grüßen,"], "es": ["Saludos,"]}
#: What the salesperson wrote, quoted under the customer's reply (cheerful: it would lift
#: every score if the quotes were not cut).
STAFF_QUOTES = ["Thank you so much for your interest, we are delighted to send you our best offer!",
                "Great news: your order is confirmed and the team is excited to work with you.",
                "It was a wonderful pleasure to meet you, I am happy to answer any question."]


def sentiment_dir():
    return Path(os.environ.get("SENTIMENT_DIR") or bl.repo_root().parent / "shared/data/sentiment_sentences")


def read_sentences():
    """The English sentences of the three files (each line split on its last tab)."""
    out = []
    for name in FILES:
        for line in (sentiment_dir() / name).read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                text = line.rsplit("\t", 1)[0].strip()
                if text:
                    out.append(text)
    return out


def rss_mb():
    """Resident memory of this process now (MB)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- data -------------------------------------------------------------------------------------
def make_bodies(rng, sentences, n, english_only=False):
    """``n`` (kind, body) pairs; kind: the language code of the customer's words."""
    out = []
    languages = list(FOREIGN)
    for _ in range(n):
        foreign = not english_only and rng.random() < FOREIGN_SHARE
        if foreign:
            language = languages[rng.integers(len(languages))]
            pool = FOREIGN[language]
            k = 1 + int(rng.random() < 0.4)
        else:
            language, pool = "en", sentences
            k = int(rng.integers(4, 9)) if rng.random() < LONG_SHARE else int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        own = " ".join(pool[i] for i in rng.integers(len(pool), size=k))
        body = f"<p>{html.escape(own, quote=False)}</p>"
        if rng.random() < SIGNATURE_SHARE:
            sign_offs = SIGN_OFFS[language]
            body += (f"<p>{html.escape(sign_offs[rng.integers(len(sign_offs))])}<br>Alex Morgan<br>"
                     f"Purchasing, Customer Co<br>+1 555 010{rng.integers(10)}</p>")
        if rng.random() < QUOTE_SHARE:
            staff = STAFF_QUOTES[rng.integers(len(STAFF_QUOTES))]
            if rng.random() < 0.5:
                body += ('<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, 3 Jun 2025 at 10:12, '
                         'Sales Team &lt;sales@example.com&gt; wrote:<br></div><blockquote class="gmail_quote" '
                         f'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204)"><p>{staff}</p>'
                         '</blockquote></div>')
            else:
                body += f'<blockquote data-o-mail-quote="1"><p>{staff}</p><p>Sales Team</p></blockquote>'
        out.append((language, body))
    return out


def insert_leads(env, rng, partner_ids):
    first_stage, _won = bl.stages(env)
    team = env["crm.team"].search([("company_id", "in", [env.company.id, False])], order="sequence, id", limit=1)
    partners = [int(p) for p in rng.choice(partner_ids, size=LEADS)]
    ages = [float(a) for a in rng.uniform(370, 400, size=LEADS) * 86400]
    created = "(clock_timestamp() AT TIME ZONE 'UTC') - v._age * interval '1 second'"
    env["crm.lead"].flush_model()
    rows = bl.insert(env, "crm_lead", {
        "name": ("varchar", [f"Sentiment bench lead {i + 1}" for i in range(LEADS)]),
        "partner_id": ("int4", partners), "_age": ("float8", ages),
        "type": ("varchar", "'opportunity'"), "active": ("bool", "TRUE"), "stage_id": ("int4", str(first_stage or "NULL")),
        "probability": ("float8", "10"), "company_id": ("int4", str(env.company.id)),
        "team_id": ("int4", str(team.id or "NULL")), "priority": ("varchar", "'0'"),
        "create_date": ("timestamp", created), "write_date": ("timestamp", created),
        "date_open": ("timestamp", created), "date_last_stage_update": ("timestamp", created),
        "create_uid": ("int4", str(env.uid)), "write_uid": ("int4", str(env.uid)),
    }, returning="id, partner_id")
    env.invalidate_all()
    return rows


def insert_messages(env, rng, leads, bodies, kinds, authors, message_type, subtype, tag, ages_days=None):
    """Messages on ``leads`` (one (lead id, customer) per message), dated ``ages_days`` ago
    (None: now); ``authors``: None = the lead's customer, else a partner id; returns ids."""
    n = len(bodies)
    if ages_days is None:
        ages = [0.0] * n
    else:
        ages = [float(a) for a in ages_days * 86400]
    env.cr.execute("SELECT nextval('mail_message_id_seq')")  # only to number the Message-Ids
    base = env.cr.fetchone()[0]
    date = "(clock_timestamp() AT TIME ZONE 'UTC') - v._age * interval '1 second'"
    env["mail.message"].flush_model()
    ids = bl.insert(env, "mail_message", {
        "res_id": ("int4", [lead for lead, _c in leads]),
        "author_id": ("int4", [customer if authors is None else authors for _l, customer in leads]),
        "body": ("text", bodies), "_age": ("float8", ages),
        "message_id": ("varchar", [f"<bench-{tag or kind}-{base + i}@sentiment.bench>" for i, kind in enumerate(kinds)]),
        "model": ("varchar", "'crm.lead'"), "message_type": ("varchar", f"'{message_type}'"),
        "subtype_id": ("int4", str(subtype)), "record_company_id": ("int4", str(env.company.id)),
        "email_from": ("varchar", "'customer@example.com'"), "is_internal": ("bool", "FALSE"),
        "date": ("timestamp", date), "create_date": ("timestamp", date), "write_date": ("timestamp", date),
        "create_uid": ("int4", str(env.uid)), "write_uid": ("int4", str(env.uid)),
    }, returning="id")
    env.invalidate_all()
    return [row[0] for row in ids]


def step_load(env):
    import numpy as np

    from odoo.addons.crm_ai.models.crm_ai_engine import ENGINES
    started = time.monotonic()
    env.cr.execute("SELECT count(*) FROM crm_lead")
    if env.cr.fetchone()[0]:
        raise SystemExit("the database already has leads: load needs a fresh one (bench/run makes it)")
    rng = np.random.default_rng(0)
    sentences = read_sentences()
    out = {"sentences": len(sentences), "sizes": {"partners": PARTNERS, "leads": LEADS, "messages": MESSAGES,
                                                   "other": OTHER, "new": NEW}}
    t = time.monotonic()
    partner_ids = bl.insert_partners(env, PARTNERS, prefix="Sentiment bench customer")
    leads = insert_leads(env, rng, partner_ids)
    out["seconds_partners_leads"] = time.monotonic() - t
    t = time.monotonic()
    made = make_bodies(rng, sentences, MESSAGES)
    out["seconds_bodies"] = time.monotonic() - t
    kinds = [kind for kind, _b in made]
    out["customer_messages_by_language"] = {k: kinds.count(k) for k in ("en", *FOREIGN)}
    out["with_quote"] = sum("quote" in b for _k, b in made)
    out["with_signature"] = sum("Alex Morgan" in b for _k, b in made)
    out["body_chars_mean"] = round(float(np.mean([len(b) for _k, b in made])))
    comment = env.ref("mail.mt_comment").id
    note = env.ref("mail.mt_note").id
    employee = env.user.partner_id.id
    t = time.monotonic()
    on = [leads[i] for i in rng.integers(len(leads), size=MESSAGES)]
    insert_messages(env, rng, on, [b for _k, b in made], kinds, None, "email", comment, None,
                    rng.uniform(0, 365, size=MESSAGES))
    # what must not be read: internal notes, employees' comments and emails
    other = [b for _k, b in make_bodies(rng, sentences, OTHER, english_only=True)]
    on = [leads[i] for i in rng.integers(len(leads), size=OTHER)]
    half, quarter = OTHER // 2, OTHER * 3 // 4
    for (lo, hi), message_type, subtype, tag in (((0, half), "comment", note, "note"),
                                                 ((half, quarter), "comment", comment, "staff"),
                                                 ((quarter, OTHER), "email", comment, "staff")):
        insert_messages(env, rng, on[lo:hi], other[lo:hi], [tag] * (hi - lo), employee, message_type, subtype, tag,
                        rng.uniform(0, 365, size=hi - lo))
    out["seconds_messages"] = time.monotonic() - t
    bl.set_params(env, crm_ai__enabled="True")
    off = [task for task in ENGINES if task not in TASKS]
    bl.set_params(env, **{f"crm_ai__{task}__enabled": "False" for task in off})
    out["engines_off"] = off
    env.cr.commit()
    env.cr.execute("ANALYZE res_partner; ANALYZE crm_lead; ANALYZE mail_message")
    env.cr.commit()
    env.invalidate_all()
    env.cr.execute("SELECT count(*) FROM res_partner WHERE active")
    out["partners_total"] = env.cr.fetchone()[0]
    out["partners"], out["leads"] = len(partner_ids), len(leads)
    env.cr.execute("""SELECT split_part(message_id, '-', 2), count(*), min(date), max(date)
                        FROM mail_message WHERE message_id LIKE '<bench-%%' GROUP BY 1 ORDER BY 1""")
    out["messages"] = {k: {"count": n, "from": str(a), "to": str(b)} for k, n, a, b in env.cr.fetchall()}
    env.cr.execute("SELECT pg_size_pretty(pg_total_relation_size('mail_message'))")
    out["mail_message_size"] = env.cr.fetchone()[0]
    out["seconds"] = time.monotonic() - started
    out["peak_rss_mb"] = bl.peak_rss_mb()
    return out


# -- measuring --------------------------------------------------------------------------------
class PeakRss:
    """Peak RSS of a stretch of work: Linux's high-water mark (``VmHWM``) reset before it
    (``/proc/self/clear_refs``), the process's overall peak kept aside."""

    def __init__(self):
        self.overall = 0.0
        self.works = self.reset()

    @staticmethod
    def hwm():
        with open("/proc/self/status") as handle:
            return next(int(line.split()[1]) / 1024 for line in handle if line.startswith("VmHWM:"))

    def reset(self):
        self.overall = max(self.overall, self.hwm())
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return True
        except OSError:
            return False

    def peak(self):
        return max(self.overall, self.hwm())


class Phases(bl.Phases):
    """bank_leads.Phases, and the one-off loads behind cached properties (with the RSS they add)."""

    def wrap_cached_property(self, owner, name, phase, memory):
        """Time (and RSS added by) the one-off load behind a ``cached_property``."""
        prop = owner.__dict__[name]
        original = prop.func

        def load(instance):
            before, t0 = rss_mb(), time.monotonic()
            try:
                return original(instance)
            finally:
                self.add(phase, time.monotonic() - t0)
                memory[phase] = round(rss_mb() - before, 1)
        prop.func = load


#: SQL statements of the sentiment scoring, by how they start.
SQL_KINDS = [
    (r"UPDATE mail_message", "SQL: UPDATE mail_message (store the analyses)"),
    (r"SELECT id, body FROM mail_message", "SQL: SELECT bodies not analysed yet"),
    (r"SELECT m\.id FROM mail_message m", "SQL: SELECT a batch's customer messages (lead)"),
    (r"SELECT m\.res_id, m\.ai_sentiment_score", "SQL: SELECT stored analyses (lead)"),
    (r"SELECT p\.commercial_partner_id, m\.id", "SQL: SELECT customers' messages (partner)"),
    (r"SELECT v\.customer, m\.ai_sentiment_score", "SQL: SELECT stored analyses (partner)"),
    (r"SELECT id, description", "SQL: SELECT lead descriptions"),
    (r"UPDATE crm_lead AS t", "SQL: UPDATE crm_lead (scores)"),
    (r"UPDATE res_partner AS t", "SQL: UPDATE res_partner (scores)"),
    (r"SELECT t\.id FROM crm_lead t", "SQL: pending query (crm_lead)"),
    (r"SELECT t\.id FROM res_partner t", "SQL: pending query (res_partner)"),
    (r"SELECT t\.id, ", "SQL: SELECT current values"),
]
SQL_PATTERNS = [(re.compile(r"\s*" + pattern), label) for pattern, label in SQL_KINDS]


def wrap_sql(phases):
    from odoo.sql_db import Cursor
    from odoo.tools import SQL
    original = Cursor.execute

    def execute(self, query, params=None, log_exceptions=True):
        code = query.code if isinstance(query, SQL) else str(query)
        t0 = time.monotonic()
        try:
            return original(self, query, params, log_exceptions)
        finally:
            label = next((label for pattern, label in SQL_PATTERNS if pattern.match(code)), "SQL: other")
            phases.add(label, time.monotonic() - t0)
    Cursor.execute = execute


def counts(env):
    """Messages analysed (by kind), leads and partners scored, label distributions."""
    company = str(env.company.id)
    env.cr.execute("""SELECT split_part(message_id, '-', 2), count(*), count(ai_sentiment_label)
                        FROM mail_message WHERE message_id LIKE '<bench-%%' GROUP BY 1 ORDER BY 1""")
    by_kind = {k: {"messages": n, "analysed": a} for k, n, a in env.cr.fetchall()}
    env.cr.execute("SELECT count(*) FROM mail_message WHERE ai_sentiment_label IS NOT NULL")
    analysed = env.cr.fetchone()[0]
    env.cr.execute("SELECT count(*) FROM crm_lead WHERE ai_sentiment_state = 'scored'")
    leads = env.cr.fetchone()[0]
    env.cr.execute("SELECT count(*) FROM res_partner WHERE ai_sentiment_state->>%s = 'scored'", [company])
    partners = env.cr.fetchone()[0]
    return {"analysed": analysed, "by_kind": by_kind, "leads_scored": leads, "partners_scored": partners}


def distributions(env):
    company = str(env.company.id)
    out = {}
    env.cr.execute("SELECT ai_sentiment_label, count(*) FROM crm_lead WHERE active GROUP BY 1 ORDER BY 2 DESC")
    out["leads"] = {str(k): n for k, n in env.cr.fetchall()}
    env.cr.execute("""SELECT ai_sentiment_label->>%s, count(*) FROM res_partner
                       WHERE active AND name LIKE 'Sentiment bench customer%%' GROUP BY 1 ORDER BY 2 DESC""", [company])
    out["customers"] = {str(k): n for k, n in env.cr.fetchall()}
    env.cr.execute("""SELECT ai_sentiment_label, count(*) FROM mail_message
                       WHERE ai_sentiment_label IS NOT NULL GROUP BY 1 ORDER BY 2 DESC""")
    out["messages"] = {str(k): n for k, n in env.cr.fetchall()}
    env.cr.execute("""SELECT split_part(message_id, '-', 2), COALESCE(ai_sentiment_language, ''), ai_sentiment_label,
                             count(*)
                        FROM mail_message WHERE ai_sentiment_label IS NOT NULL AND message_id LIKE '<bench-%%'
                       GROUP BY 1, 2, 3""")
    rows = env.cr.fetchall()
    foreign = {}
    for kind, language, label, n in rows:
        row = foreign.setdefault(kind, {"messages": 0, "unsupported": 0, "detected_as": defaultdict(int)})
        row["messages"] += n
        row["unsupported"] += n if label == "unsupported_language" else 0
        row["detected_as"][language] += n
    out["languages"] = {k: {**v, "detected_as": dict(sorted(v["detected_as"].items(), key=lambda x: -x[1])[:6])}
                        for k, v in foreign.items()}
    env.cr.execute("""SELECT avg(ai_sentiment), percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY
                             ai_sentiment), avg(ai_sentiment_count), count(*) FILTER (WHERE ai_sentiment_trend <= -0.2)
                        FROM crm_lead WHERE active AND ai_sentiment IS NOT NULL""")
    mean, deciles, texts, worsened = env.cr.fetchone()
    out["lead_scores"] = {"mean": mean, "p10_p50_p90": deciles, "texts_per_lead": float(texts or 0),
                          "worsened": worsened}
    return out


def check_cleaning(env, sample):
    """On a sample of customer emails: the stored label is the label of the customer's own
    sentences alone (the first paragraph: no quote, no signature)."""
    from odoo.addons.crm_ai.models.engine_sentiment import text_sentiment
    env.cr.execute("""SELECT body, ai_sentiment_label FROM mail_message
                       WHERE message_id LIKE '<bench-en-%%' AND ai_sentiment_label IS NOT NULL
                         AND (body LIKE '%%quote%%' OR body LIKE '%%Alex Morgan%%')
                       ORDER BY id LIMIT %s""", [sample])
    rows = env.cr.fetchall()
    own = [html.unescape(re.match(r"<p>(.*?)</p>", body, re.S).group(1)) for body, _label in rows]
    again = text_sentiment().analyze(own)
    same = sum(a["label"] == label for a, (_b, label) in zip(again, rows))
    return {"sample": len(rows), "same_label": same}


def run_cron(env, phases, memory, peak):
    for key in [k for k in memory if k.startswith("peak")]:
        del memory[key]
    before = counts(env)
    rss_before = rss_mb()
    phases.clear()  # the cron's own work only (not the counts around it)
    t0 = time.monotonic()
    done, remaining = env["crm.ai.driver"]._cron_score(time_budget=3600)
    seconds = time.monotonic() - t0
    env.cr.commit()
    result = phases.result()
    after = counts(env)
    Driver = env["crm.ai.driver"].sudo()
    pending = {task: Driver._ai_pending_count(task, env.company) for task in TASKS}
    return {"pending_after": pending, "seconds": round(seconds, 3), "done": done, "remaining": remaining,
            "analysed": after["analysed"] - before["analysed"], "counts": after,
            "rss_before_mb": round(rss_before, 1), "rss_after_mb": round(rss_mb(), 1),
            "peak_rss_mb": round(peak.peak(), 1), "phases": result, "loads_rss_mb": dict(memory)}


def step_score(env):
    import numpy as np
    from textblob import en as textblob_en

    from odoo.addons.crm_ai.ml import sentiment as ml
    from odoo.addons.crm_ai.models import engine_sentiment as es

    phases, memory, first_analysis, peak = Phases(), {}, {}, PeakRss()
    Driver = type(env["crm.ai.driver"])
    phases.wrap(Driver, "_ai_score_pair", "total (_ai_score_pair)", lambda a: a[1])
    score_pair = Driver._ai_score_pair

    def score_pair_peak(self, task, *args, **kwargs):
        before = rss_mb()
        peak.reset()
        try:
            return score_pair(self, task, *args, **kwargs)
        finally:
            if peak.works:  # the pair's own peak, above the RSS it started from
                key = f"peak: {task} (_ai_score_pair)"
                memory[key] = max(memory.get(key, 0.0), round(peak.hwm() - before, 1))
    Driver._ai_score_pair = score_pair_peak
    phases.wrap(Driver, "_ai_pending_ids", "pending query (_ai_pending_ids)", bl.driver_engine_task)
    phases.wrap(Driver, "_ai_scoring_model", "registry row (_ai_scoring_model)", bl.driver_engine_task)
    phases.wrap(Driver, "_ai_write_scores", "write scores (_ai_write_scores)", bl.driver_engine_task)
    for cls in (es.LeadSentimentEngine, es.PartnerSentimentEngine):
        phases.wrap(cls, "score", "engine.score", bl.engine_task, lambda a: len(a[1]))
    phases.wrap(es.SentimentEngine, "analyze_new_messages", "analyze_new_messages", bl.engine_task,
                lambda a: len(a[1]))
    phases.wrap(es.SentimentEngine, "aggregate_values", "aggregate_values", bl.engine_task, lambda a: len(a[1]))
    phases.wrap(es.SentimentEngine, "current_values", "current_values", bl.engine_task)
    phases.wrap(es, "excerpt", "excerpt() (analyze_new_messages)")
    phases.wrap(ml, "clean_text", "chain: clean_text")
    phases.wrap(ml.LanguageDetector, "detect", "chain: LanguageDetector.detect")
    phases.wrap(ml.SentimentModel, "analyze", "chain: SentimentModel.analyze (TextBlob + VADER, evidence)", None,
                lambda a: len(a[1]))
    phases.wrap_cached_property(ml.LanguageDetector, "_identifier", "load: py3langid model", memory)
    phases.wrap_cached_property(ml.LanguageDetector, "_english_words", "load: English word list", memory)
    phases.wrap_cached_property(ml.SentimentModel, "_vader", "load: VADER lexicon", memory)
    original_sentiment_load = textblob_en.Sentiment.load

    def textblob_load(self, *args, **kwargs):
        before, t0 = rss_mb(), time.monotonic()
        try:
            return original_sentiment_load(self, *args, **kwargs)
        finally:
            phases.add("load: TextBlob lexicon", time.monotonic() - t0)
            memory["load: TextBlob lexicon"] = round(rss_mb() - before, 1)
    textblob_en.Sentiment.load = textblob_load
    original_analyze = ml.TextSentiment.analyze

    def chain_analyze(self, raw_texts):
        raw_texts = list(raw_texts)
        if not first_analysis and raw_texts:
            first_analysis["rss_before_mb"] = round(rss_mb(), 1)
        t0 = time.monotonic()
        try:
            return original_analyze(self, raw_texts)
        finally:
            phases.add("chain: TextSentiment.analyze", time.monotonic() - t0, len(raw_texts))
            if raw_texts and "rss_after_mb" not in first_analysis:
                first_analysis["rss_after_mb"] = round(rss_mb(), 1)
                first_analysis["texts"] = len(raw_texts)
    ml.TextSentiment.analyze = chain_analyze
    wrap_sql(phases)

    out = {"rss_start_mb": round(rss_mb(), 1), "batch": es.SentimentEngine.batch_size,
           "message_batch": es.MESSAGE_BATCH, "runs": {}}
    out["tasks"] = env["crm.ai.driver"]._ai_tasks()
    out["runs"]["first"] = run_cron(env, phases, memory, peak)
    out["first_analysis"] = first_analysis
    out["runs"]["again"] = run_cron(env, phases, memory, peak)
    # 1,000 new customer emails, dated now
    rng = np.random.default_rng(1)
    env.cr.execute("SELECT id, partner_id FROM crm_lead WHERE name LIKE 'Sentiment bench lead %%' ORDER BY id")
    leads = env.cr.fetchall()
    made = make_bodies(rng, read_sentences(), NEW)
    on = [leads[i] for i in rng.integers(len(leads), size=NEW)]
    new_ids = insert_messages(env, rng, on, [b for _k, b in made], ["new"] * NEW, None, "email",
                              env.ref("mail.mt_comment").id, "new")
    env.cr.commit()
    # partners' score dates are stored to the second (company-dependent datetimes are text):
    # a message of the same second as a scoring is "newer" and scored again next time
    time.sleep(1.1)
    out["new_leads"] = len({lead for lead, _p in on})
    out["new_customers"] = len({p for _l, p in on})
    run = out["runs"]["new"] = run_cron(env, phases, memory, peak)
    env.cr.execute("SELECT count(*) FROM mail_message WHERE id = ANY(%s) AND ai_sentiment_label IS NOT NULL",
                   [new_ids])
    run["new_analysed"] = env.cr.fetchone()[0]
    # a day later: every score date 25 hours back, nothing new
    company = str(env.company.id)
    env.cr.execute("""UPDATE crm_lead SET ai_sentiment_scored_date = ai_sentiment_scored_date - interval '25 hours'
                       WHERE ai_sentiment_scored_date IS NOT NULL""")
    env.cr.execute("""UPDATE res_partner SET ai_sentiment_scored_date = ai_sentiment_scored_date || jsonb_build_object(
                             %(c)s, to_char((ai_sentiment_scored_date->>%(c)s)::timestamp - interval '25 hours',
                                            'YYYY-MM-DD HH24:MI:SS'))
                       WHERE ai_sentiment_scored_date->>%(c)s IS NOT NULL""", {"c": company})
    env.cr.commit()
    env.invalidate_all()
    out["runs"]["daily"] = run_cron(env, phases, memory, peak)
    Driver_ = env["crm.ai.driver"].sudo()
    out["pending_after"] = {task: Driver_._ai_pending_count(task, env.company) for task in TASKS}
    out["distributions"] = distributions(env)
    out["cleaning_check"] = check_cleaning(env, CHECK_SAMPLE)
    final = out["runs"]["daily"]["counts"]["by_kind"]
    customer_kinds = ("en", *FOREIGN, "new")
    out["checks"] = {
        "every_customer_email_analysed": all(final[k]["analysed"] == final[k]["messages"]
                                             for k in customer_kinds if k in final),
        "no_note_nor_employee_message_analysed": all(final[k]["analysed"] == 0 for k in ("note", "staff") if k in final),
        "first_run_analysed": out["runs"]["first"]["analysed"],
        "again_analysed_none": out["runs"]["again"]["analysed"] == 0 and out["runs"]["again"]["done"] == 0,
        "new_run_analysed_only_the_new": out["runs"]["new"]["analysed"] == NEW == run["new_analysed"],
        "daily_analysed_none": out["runs"]["daily"]["analysed"] == 0,
    }
    out["rss_end_mb"] = round(rss_mb(), 1)
    out["peak_rss_mb"] = round(peak.peak(), 1)
    return out


# -- report -----------------------------------------------------------------------------------
def report(folder):
    folder = Path(folder)
    paths = {step: folder / f"crm_ai_bench_sentiment_odoo_{step}.json" for step in ("load", "score")}
    r = {step: json.loads(p.read_text()) for step, p in paths.items() if p.exists()}
    if "load" not in r:
        return "no results"
    ld = r["load"]
    ok = lambda met: "met" if met else "**MISSED**"
    m = ld["messages"]
    customer = sum(v["count"] for k, v in m.items() if k in ("en", *FOREIGN))
    lines = [f"machine: {ld.get('machine')}", "",
             f"loaded in {ld['seconds']:.0f} s: {ld['partners']:,} customers ({ld['partners_total']:,} active partners "
             f"in all), {ld['leads']:,} leads, {customer:,} customer emails "
             f"({', '.join(f'{k} {v:,}' for k, v in ld['customer_messages_by_language'].items())}; "
             f"{ld['with_quote']:,} with a quoted reply, {ld['with_signature']:,} with a signature, "
             f"{ld['body_chars_mean']} characters of HTML on average), "
             f"{m.get('note', {}).get('count', 0):,} internal notes and {m.get('staff', {}).get('count', 0):,} "
             f"employee messages (not to be read); mail_message {ld['mail_message_size']}; "
             f"engines off: {', '.join(ld['engines_off'])}"]
    sc = r.get("score")
    if not sc:
        return "\n".join(lines)
    runs = sc["runs"]
    first = runs["first"]
    chain = first["phases"].get("chain: TextSentiment.analyze", {})
    loads = sum(v["seconds"] for k, v in first["phases"].items() if k.startswith("load: "))
    chain_rate = first["analysed"] / max(chain.get("seconds", 0) - loads, 1e-9)
    cron_rate = first["analysed"] / first["seconds"]
    fa = sc["first_analysis"]
    added = first["rss_after_mb"] - fa["rss_before_mb"]
    added_peak = first["peak_rss_mb"] - fa["rss_before_mb"]
    full = customer >= TARGETS["cron_messages"]
    lines += ["", "| target (the issue) | measured | |", "|---|---|---|",
              f"| cron over {TARGETS['cron_messages']:,} messages ≤ {TARGETS['cron_seconds']:.0f} s | "
              f"{first['seconds']:.1f} s for {first['analysed']:,} messages, {first['counts']['leads_scored']:,} leads "
              f"and {first['counts']['partners_scored']:,} partners | "
              f"{ok(first['seconds'] <= TARGETS['cron_seconds']) if full else '(smaller run)'} |",
              f"| memory added to a worker ≤ {TARGETS['rss_added_mb']:.0f} MB | {added:.0f} MB (RSS "
              f"{fa['rss_before_mb']:.0f} MB right before the first analysis -> {first['rss_after_mb']:.0f} MB after "
              f"the run; peak {first['peak_rss_mb']:.0f} MB: +{added_peak:.0f} MB) | "
              f"{ok(max(added, added_peak) <= TARGETS['rss_added_mb'])} |",
              f"| ≥ {TARGETS['texts_per_second']:,.0f} short texts/s | {chain_rate:,.0f} messages/s in the chain "
              f"(TextSentiment.analyze, {loads:.1f} s of one-off loads left out); {cron_rate:,.0f} messages/s for the "
              f"whole cron | {ok(chain_rate >= TARGETS['texts_per_second'])} |"]
    alone = folder / "crm_ai_bench_sentiment.json"
    if alone.exists():
        speed = json.loads(alone.read_text()).get("speed", {})
        lines += ["", f"engine alone (`bench/run sentiment`, review sentences without HTML): "
                      f"{speed.get('texts_per_second')} texts/s"]
    names = {"first": "first run (everything new)", "again": "again, nothing changed",
             "new": f"{NEW if 'new_analysed' not in runs['new'] else runs['new']['new_analysed']:,} new emails "
                    f"(on {sc['new_leads']:,} leads, {sc['new_customers']:,} customers)",
             "daily": "a day later, nothing new (re-aggregation)"}
    lines += ["", "| `_cron_score` run | wall time | records written | messages analysed | pending after (leads, "
                  "partners) | RSS before -> after (peak) | peak above the start of the lead / partner pass |",
              "|---|---|---|---|---|---|---|"]
    for run in RUNS:
        x = runs.get(run)
        if x:
            pending = x.get("pending_after", {})
            pair = {task: x["loads_rss_mb"].get(f"peak: {task} (_ai_score_pair)") for task in TASKS}
            lines.append(f"| {names[run]} | {x['seconds']:.2f} s | {x['done']:,} | {x['analysed']:,} | "
                         f"{pending.get('lead_sentiment', '?')}, {pending.get('partner_sentiment', '?')} | "
                         f"{x['rss_before_mb']:.0f} -> {x['rss_after_mb']:.0f} MB ({x['peak_rss_mb']:.0f}) | "
                         + " / ".join("?" if v is None else f"+{v:.0f} MB" for v in pair.values()) + " |")
    keys = sorted({k for x in runs.values() for k in x["phases"]},
                  key=lambda k: (k.startswith("SQL"), k.startswith("load"), k.startswith("chain"), k))
    lines += ["", f"| phase (lead batches of {sc['batch']:,}, analyses of {sc['message_batch']:,}) | "
                  + " | ".join(RUNS) + " |", "|---|" + "---|" * len(RUNS)]
    for key in keys:
        cells = []
        for run in RUNS:
            p = runs[run]["phases"].get(key)
            cells.append("" if not p else f"{p['seconds']:.2f} s ({p['calls']:,}"
                         + (f"; {p['items']:,}" if "items" in p else "") + ")")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "(calls; items: records or texts passed). RSS added by each one-off load: "
                  + ", ".join(f"{k[6:]} {v:+.0f} MB" for k, v in first["loads_rss_mb"].items() if k.startswith("load"))

              + f"; first analysis ({fa.get('texts', 0):,} texts): {fa['rss_before_mb']:.0f} -> "
                f"{fa['rss_after_mb']:.0f} MB"]
    d = sc["distributions"]
    lines += ["", "| labels | " + " | ".join(("positive", "neutral", "negative", "unsupported_language",
                                               "no_text", "None")) + " |", "|---|" + "---|" * 6]
    for what in ("leads", "customers", "messages"):
        lines.append(f"| {what} | " + " | ".join(f"{d[what].get(k, 0):,}" for k in (
            "positive", "neutral", "negative", "unsupported_language", "no_text", "None")) + " |")
    s = d["lead_scores"]
    lines += ["", f"lead scores: mean {s['mean']:.3f}, p10/p50/p90 "
                  f"{', '.join(f'{v:.3f}' for v in s['p10_p50_p90'])}, {s['texts_per_lead']:.1f} texts read per lead, "
                  f"{s['worsened']:,} 'worsened'"]
    lines += ["", "| written in | emails | called unsupported | detected as |", "|---|---|---|---|"]
    for kind, v in d["languages"].items():
        kind = kind if kind != "new" else "new (run 3: ~10 % in other languages)"
        lines.append(f"| {kind} | {v['messages']:,} | {v['unsupported']:,} ({v['unsupported'] / v['messages']:.1%}) | "
                     + ", ".join(f"{lang or '-'} {n:,}" for lang, n in v["detected_as"].items()) + " |")
    c, cl = sc["checks"], sc["cleaning_check"]
    lines += ["", "checks: " + "; ".join(f"{k}: {v}" for k, v in c.items())
              + f"; pending after: {sc['pending_after']}; quotes and signatures cut (stored label = label of the "
                f"customer's own sentences): {cl['same_label']:,} / {cl['sample']:,}"]
    return "\n".join(lines)


if "env" in globals():  # inside odoo-bin shell (bench/run)
    step = os.environ.get("BENCH_STEP")
    runner = {"load": step_load, "score": step_score}.get(step)
    if not runner:
        raise SystemExit(f"BENCH_STEP must be load or score ({step!r})")
    out = runner(env)  # noqa: F821 -- ``env`` comes from odoo-bin shell
    bl.emit(step, out, limit=2000)
elif __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--report":
    print(report(sys.argv[2]))
else:
    raise SystemExit("run through bench/run sentiment-odoo (or: python bench_sentiment_odoo.py --report DIR)")
