"""What customers write to a seller that general-purpose sentiment lexicons miss.

TextBlob's and VADER's lexicons score opinion words ("great", "awful"); a customer's
complaint is often in plain words: "It doesn't work.", "Still waiting for the invoice.",
"This is the third time I ask for a quote.", "We are sending it back." read as having no
sentiment at all, and "Please send it back, I want a refund." reads positive ("please",
"want").  :func:`phrase_score` finds such customer-service phrases: failures, returns and
refunds, waiting and chasing, advice against buying, and their positive counterparts
(works as described, on time, will order again).

Pure Python, no Odoo.  The phrases were written from what customers write to sellers,
before any measurement on the yelp or imdb files; whether they are used at all, and with
what weight, is decided on the amazon file alone (``bench/bench_sentiment.py``).
"""

import re

#: Contractions spelt out, so that every phrase needs only its "not" form.
_CONTRACTIONS = (
    (re.compile(r"\b(can)'?t\b"), r"\1 not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bain'?t\b"), "is not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|has|have|had|would|could|should|need)n'?t\b"), r"\1 not"),
    (re.compile(r"\bcannot\b"), "can not"),
)
_NOT = r"(?:not|never)"
_IT = r"(?:it|this|that|them|these|those|the \w+|my \w+|our \w+)"
_BE = r"(?:is|was|are|were|be|been|arrived|came)"

#: ``(pattern, polarity)``: +1 a customer's satisfaction, -1 a complaint.  Matched on the
#: lowercased text with contractions spelt out; a phrase inside a longer one that matched
#: first does not count again.  Negative phrases that contain a negation come first, so
#: that "not worth it" is not also read as "worth it".
PHRASES = [(re.compile(r"\b(?:" + pattern + r")\b"), polarity) for pattern, polarity in (
    # it does not work
    (rf"(?:does|do|did|is|was|are|were|will|would|can|could) {_NOT} (?:\w+ )?(?:work|working|function|functioning)", -1),
    (r"(?:stopped|stops|quit|quits|ceased) (?:working|functioning)|never worked|not working|"
     r"(?:broke|broken|died|fell apart|falls apart) (?:after|within|in|down|again)|"
     rf"{_BE} (?:broken|damaged|defective|faulty|missing|wrong|late|incomplete)|defective|faulty|junk", -1),
    # returns and refunds, cancelling
    (rf"(?:send|sent|sending|ship|shipped|shipping|take|took|taking|bring|brought) {_IT} back|"
     rf"(?:return|returned|returning) {_IT}|refund|money back|chargeback|charged twice|double charged|"
     rf"(?:cancel|cancelled|canceled|cancelling|canceling|terminate|terminating) (?:my|our|the) "
     rf"(?:order|contract|subscription|account)", -1),
    # advice against buying
    (rf"(?:do|would|will|should|could) {_NOT} (?:\w+ )?(?:buy|purchase|order|recommend)|"
     rf"{_NOT} (?:buy|purchase|order) (?:it|this|that|one|again|from)|never again|not worth|waste of|"
     r"rip off|ripoff|scam|overpriced|over ?charged|stay away|look elsewhere", -1),
    # waiting, chasing, nobody answers
    (r"still (?:waiting|no|not|nothing|have not|has not|did not|do not|does not)|"
     r"(?:no|never an?|never got an?|without an?) (?:answer|response|reply|feedback|news|update|call back|callback)|"
     r"(?:nobody|no one|noone) (?:answered|answers|called|calls|replied|replies|responded|got back|came back|"
     r"came|showed up)|"
     r"(?:second|third|fourth|fifth|[2-9](?:nd|rd|th)) time (?:i|we) (?:ask|asked|write|wrote|call|called|"
     r"request|requested|remind|send|sent|chase)|how many times|"
     rf"(?:have|has|had|did|do) {_NOT} (?:yet )?(?:received|receive|arrived|arrive|got|gotten|heard)|"
     r"(?:never|not yet) (?:received|arrived|delivered|heard)|(?:arrived|delivered|came|answered) (?:late|too late)|"
     r"unanswered|waiting for (?:weeks|months|days|ages)", -1),
    # a buyer's objections
    (r"too (?:expensive|pricey|costly|high|slow|late|long|complicated|complex|difficult|small|short|little)|"
     r"(?:is|was|are|were) a mess", -1),
    # disappointed expectations, advice to keep away
    (r"(?:expected|expecting|hoped for|hoping for|hope for|hoping to get) (?:a |something |much |a lot |far |a bit )?"
     r"(?:more|better)|(?:do not|never) (?:waste|bother)|save your money|steer clear|keep looking|thumbs? down", -1),
    # delight that the lexicons read backwards ("could not be happier": "not" and "happy")
    (r"(?:could|can) not (?:be )?(?:happier|more (?:happy|pleased|satisfied)|ask for more|be better)|can not beat|"
     r"nothing bad|no (?:problems|issues|complaints)|"
     r"(?:exactly|just) what (?:i|we) (?:wanted|needed|ordered|asked for|was looking for|were looking for)|"
     r"works for (?:me|us)|a must have|thumbs? up", 1),
    # satisfaction
    (r"(?:works|worked|working|work) (?:great|perfectly|perfect|well|fine|flawlessly|beautifully|like a charm|"
     r"as (?:advertised|described|expected|promised))|as (?:advertised|described|promised)|"
     r"(?:highly|definitely|strongly|would|will|can|i) recommend|"
     r"(?:buy|order|purchase|come back|be back|use you|work with you) again|"
     r"(?:exceeded|exceeds|beyond) (?:my |our |all )?expectations|worth (?:every penny|the money|the price|it)|"
     r"(?:arrived|delivered|shipped|came|answered|replied|responded) (?:quickly|fast|promptly|early|"
     r"on time|in time|right away|the next day)|(?:fast|quick|prompt|speedy|rapid) "
     r"(?:delivery|shipping|shipment|response|reply|answer|service|support)|on time|"
     r"(?:happy|glad|pleased|ready|delighted) to (?:proceed|confirm|order|sign|go ahead|move forward|"
     r"recommend|work with)|(?:5|five) stars|well done|thanks to you", 1),
)]
#: Politeness formulas of business correspondence, not opinions: the lexicons score them
#: ("Please find attached our conditions." read positive, "Honestly, the price is too
#: high" less negative), so they are taken out of the text the lexicons read.
FORMULAS = re.compile(r"\b(?:please|pls|kindly|dear|greetings|cheers|sincerely|honestly|hope|hoping|help)\b[,!]?",
                      re.IGNORECASE)
#: A negation this few words before a phrase, in the same clause, turns a positive phrase
#: around ("not on time", "would never recommend", as VADER reads "not good") and cancels a
#: negative one ("not too expensive"; "I have not received a refund" is the customer waiting
#: for it, which "have not received" already says).
NEGATION_WINDOW = 3
_NEGATION = re.compile(r"\b(?:not|never|no|hardly|without)\b")
_CLAUSE_END = re.compile(r"[.,;:!?]")
_SENTENCE_END = re.compile(r"[.!?\n]")


def normalise(text):
    """Lowercased, with typographic apostrophes straight and contractions spelt out."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def strip_formulas(text):
    """``text`` without its politeness formulas (:data:`FORMULAS`), for the lexicons.

    >>> strip_formulas("Dear Ann, please find attached our conditions.")
    ' Ann,  find attached our conditions.'
    """
    return FORMULAS.sub("", text)


def _as_written(original, phrase):
    """``phrase`` (lowercased, contractions spelt out) as the customer wrote it, when it can be
    found so in ``original`` ("third time I ask"); else as it is ("does not work" for "doesn't
    work")."""
    match = re.search(r"\b" + r"\s+".join(map(re.escape, phrase.split())) + r"\b", original, re.IGNORECASE)
    return match.group(0) if match else phrase


def phrase_score(text):
    """``(score, phrases)``: the summed polarity of the customer-service phrases in
    ``text``, clipped to [-1, 1], and the phrases found with their polarity.

    >>> phrase_score("This is the third time I ask for a quote.")
    (-1.0, [('third time I ask', -1.0)])
    >>> phrase_score("Arrived on time, exactly as described.")[0]
    1.0
    >>> phrase_score("It did not arrive on time.")[0]
    -1.0
    >>> phrase_score("Will it be delivered on time?")  # a question, not praise
    (0.0, [])
    """
    original, text = text, normalise(text)
    taken, found = [], []
    for pattern, polarity in PHRASES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            # a positive phrase in a question asks for it ("is it as described?"); a negative one
            # in a question is usually the complaint itself ("why is it still not working?")
            sentence_end = _SENTENCE_END.search(text, end)
            if polarity > 0 and sentence_end and sentence_end.group(0) == "?":
                continue
            clause = _CLAUSE_END.split(text[:start])[-1]
            if any(_NEGATION.fullmatch(word) for word in clause.split()[-NEGATION_WINDOW:]):
                if polarity < 0:
                    continue
                polarity = -polarity
            found.append((_as_written(original, match.group(0)), float(polarity)))
    score = sum(polarity for _phrase, polarity in found)
    return float(max(-1.0, min(1.0, score))), found
