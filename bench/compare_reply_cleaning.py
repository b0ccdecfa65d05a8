"""Cutting quoted replies and signatures from plain-text emails: crm_ai's rules
(``ml.sentiment.clean_text``) against GitHub's email_reply_parser (MIT, ``pip install
email-reply-parser``; not a crm_ai dependency: install it apart, e.g. ``pip install --target
/tmp/erp email-reply-parser`` and ``PYTHONPATH=/tmp/erp``).

    python bench/compare_reply_cleaning.py

600 emails: one to three review sentences (the customer's own words, from
``../shared/data/sentiment_sentences``) followed by one of 12 endings seen in real mail
(English, French and German reply headers, Outlook headers and separators, quoted lines,
"-- " signatures, phone footers, sign-offs).  A cut is right when exactly the customer's
words remain (whitespace aside).  Caveat: the endings were written by the authors of the
rules being compared, so this favours crm_ai's rules; it shows what each handles, not a
field error rate.  (Odoo stores HTML bodies, whose quote blocks are removed structurally
before these text rules run.)
"""
import pathlib
import random
import re
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "crm_ai"))
from email_reply_parser import EmailReplyParser
from ml.sentiment import clean_text

D = REPO.parent / "shared" / "data" / "sentiment_sentences"
sents = [line.rsplit("\t", 1)[0].strip() for f in ("amazon_cells_labelled.txt", "yelp_labelled.txt")
         for line in open(D / f, encoding="utf-8")]
rng = random.Random(0)
TEMPLATES = [
    "{own}\n\nOn Mon, Mar 3, 2025 at 10:12 AM Ann Sales <ann@acme.com> wrote:\n> {quote}\n> Best,\n> Ann",
    "{own}\n\n-----Original Message-----\nFrom: Ann Sales\nSent: Monday, March 3, 2025 10:12\nTo: Bob\nSubject: Quote\n\n{quote}",
    "{own}\n\nFrom: Ann Sales <ann@acme.com>\nSent: Monday, March 3, 2025 10:12\nTo: Bob\n\n{quote}",
    "{own}\n\nLe lun. 3 mars 2025 à 10:12, Ann <ann@acme.com> a écrit :\n> {quote}",
    "{own}\n\nAm Mo., 3. März 2025 um 10:12 Uhr schrieb Ann <ann@acme.com>:\n> {quote}",
    "{own}\n\n-- \nBob Customer\nPurchasing manager, Example Ltd\n+32 2 290 34 90",
    "{own}\n\nSent from my iPhone",
    "{own}\n\nBest regards,\nBob Customer\nExample Ltd",
    "{own}\n\nThanks,\nBob",
    "{own}",
    "{own}\n\n> {quote}\n> {quote}",
    "{own}\n\n________________________________\nFrom: Ann Sales\nSent: Monday\n{quote}",
]
n = {"ours": 0, "email_reply_parser": 0}  # right cuts
per = {i: {"ours": 0, "email_reply_parser": 0, "n": 0} for i in range(len(TEMPLATES))}


def norm(text):
    return re.sub(r"\s+", " ", text).strip()


N = 600
for k in range(N):
    own = " ".join(rng.sample(sents, rng.randint(1, 3)))
    i = k % len(TEMPLATES)
    email = TEMPLATES[i].format(own=own, quote=rng.choice(sents))
    ok_ours = norm(clean_text(email)) == norm(own)
    ok_erp = norm(EmailReplyParser.parse_reply(email)) == norm(own)
    for counts in (n, per[i]):
        counts["ours"] += ok_ours
        counts["email_reply_parser"] += ok_erp
    per[i]["n"] += 1
print("right cuts:", {k: round(v / N, 3) for k, v in n.items()})
for i, row in per.items():
    print(f"  {TEMPLATES[i][7:60]!r}: crm_ai {row['ours']}/{row['n']}, "
          f"email_reply_parser {row['email_reply_parser']}/{row['n']}")
