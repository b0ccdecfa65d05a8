"""What customers write to a seller that general-purpose sentiment lexicons miss.

TextBlob's and VADER's lexicons score opinion words ("great", "awful"); a customer's
complaint is often in plain words: "It doesn't work.", "Still waiting for the invoice.",
"This is the third time I ask for a quote.", "We are sending it back." read as having no
sentiment at all, and "Please send it back, I want a refund." reads positive ("please",
"want").  :func:`phrase_score` finds such customer-service phrases: failures, returns and
refunds, waiting and chasing, advice against buying, and their positive counterparts
(works as described, on time, will order again).

Pure Python, no Odoo.  The phrases were written from what customers write to sellers
(with the amazon file's misread sentences and a review's business emails in view, never a
yelp or imdb sentence); whether they are used at all, and with what weight, is decided on
the amazon file alone (``bench/bench_sentiment.py``, BENCHMARKS.md §6).
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
#: What a customer sends back or returns: goods, not documents, calls or forms ("please return
#: the signed contract", "return my call" are no complaint).
_GOODS = (r"(?:it|them|this|these|the (?:item|items|product|products|goods|order|parts|part|unit|units|device|"
          r"machine|package|parcel|shipment|delivery|whole thing|lot)|my order|our order)")
_BE = r"(?:is|was|are|were|be|been|arrived|came)"
#: What a negative phrase of receiving or hearing must not be followed by: "we haven't
#: received any complaints", "still no problem" say that all is well.
_NOTHING_BAD = r"(?! (?:any |a single |a |one )?(?:complaints?|issues?|problems?|errors?|bugs?|negative|bad|trouble))"

#: ``(pattern, polarity)``: +1 a customer's satisfaction, -1 a complaint.  Matched on the
#: lowercased text with contractions spelt out; a phrase inside a longer one that matched
#: first does not count again.  Negative phrases that contain a negation come first, so
#: that "not worth it" is not also read as "worth it".
PHRASES = [(re.compile(r"\b(?:" + pattern + r")\b"), polarity) for pattern, polarity in (
    # it does not work
    (rf"(?:does|do|did|is|was|are|were|will|would|can|could) {_NOT} (?:\w+ )?(?:work|working|function|functioning)", -1),
    (r"(?:stopped|stops|quit|quits|ceased) (?:working|functioning)|never worked|not working|"
     r"(?:broke|broken|died|fell apart|falls apart) (?:after|within|in|down|again)|"
     rf"{_BE} (?:broken|damaged|defective|faulty|missing|wrong|late|incomplete)|"
     r"(?:is|was|it is|total|pure|piece of|absolute|absolutely|complete) junk", -1),
    # returns and refunds, cancelling
    (rf"(?:send|sent|sending|ship|shipped|shipping|take|took|taking|bring|brought) {_GOODS} back|"
     rf"(?:return|returned|returning) {_GOODS}(?! (?:to you|for))|"
     r"(?:want|need|demand|demanding|request|requesting|expect|expecting|waiting for|still waiting for|claim|"
     r"claiming) (?:a |my |our |the |a full |full )?refund|refund (?:me|us)|(?:my|our) refund|money back|"
     r"chargeback|charged twice|double charged|"
     r"(?:cancel|cancelled|canceled|cancelling|canceling|terminate|terminating) (?:my|our|the) "
     r"(?:order|contract|subscription|account)", -1),
    # advice against buying
    (rf"(?:do not|would {_NOT}|will {_NOT}|should {_NOT}) (?:ever )?(?:buy|purchase)(?! (?:anything|from anyone) else)|"
     rf"(?:would|will|could|do|can) {_NOT} (?:\w+ )?recommend|never again|not worth|waste of|"
     r"rip off|ripoff|scam|overpriced|over ?charged|stay away|look elsewhere", -1),
    # waiting, chasing, nobody answers
    (rf"still (?:waiting|no|not|nothing|have not|has not|did not|do not|does not){_NOTHING_BAD}|"
     r"(?:no|never an?|never got an?|never received an?|without an?|without any) (?:answer|response|reply|feedback|"
     r"news|update|call back|callback|refund)(?! (?:needed|necessary|required|is needed|expected))|"
     r"(?:nobody|no one|noone) (?:answered|answers|called|calls|replied|replies|responded|got back|came back|"
     r"came|showed up)|"
     r"(?:second|third|fourth|fifth|[2-9](?:nd|rd|th)) time (?:i|we) (?:ask|asked|write|wrote|call|called|"
     r"request|requested|remind|send|sent|chase)|how many times (?:do|did|have|must|should|shall) (?:i|we)|"
     rf"(?:have|has|had|did|do) {_NOT} (?:yet )?(?:received|receive|arrived|arrive|got|gotten|heard from you|"
     rf"heard back){_NOTHING_BAD}|(?:never|not yet) (?:received|arrived|delivered|heard back){_NOTHING_BAD}|"
     r"(?:arrived|delivered|came|answered) (?:late|too late)|(?:is|was|are|were) not (?:on time|in time)|unanswered|"
     r"waiting for (?:weeks|months|days|ages)", -1),
    # a buyer's objections
    (r"too (?:expensive|pricey|costly|high|slow|late|complicated|complex|difficult)|(?:is|was|are|were) a mess", -1),
    # disappointed expectations, advice to keep away
    (r"(?:expected|expecting|hoped for|hoping for|hope for|hoping to get) (?:a |something |much |a lot |far |a bit )?"
     r"(?:more|better)|(?:do not|never) (?:waste|bother)|save your money|steer clear|keep looking|thumbs? down", -1),
    # delight that the lexicons read backwards ("could not be happier": "not" and "happy")
    (r"(?:could|can) not (?:be )?(?:happier|more (?:happy|pleased|satisfied)|ask for more|be better)|can not beat|"
     r"nothing bad|no (?:problems|issues|complaints)|would never (?:buy|use|order) anything else|"
     r"(?:exactly|just) what (?:i|we) (?:wanted|needed|ordered|asked for|was looking for|were looking for)|"
     r"works for (?:me|us)|a must have|thumbs? up", 1),
    # satisfaction
    (r"(?:works|worked|working|work) (?:great|perfectly|perfect|well|fine|flawlessly|beautifully|like a charm|"
     r"as (?:advertised|described|expected|promised))|as (?:advertised|described|promised)|"
     r"(?:highly|definitely|strongly|would|will|can|i) recommend|"
     r"(?:buy|order|purchase|come back|be back|use you|work with you) again|"
     r"(?:exceeded|exceeds|beyond) (?:my |our |all )?expectations|worth (?:every penny|the money|the price|it)|"
     r"(?:arrived|delivered|shipped|came|answered|replied|responded|always|was|were|is|are) (?:quickly|fast|"
     r"promptly|early|on time|in time|right away|the next day)|(?:fast|quick|prompt|speedy|rapid) "
     r"(?:delivery|shipping|shipment|response|reply|answer|service|support)|"
     r"(?:happy|glad|pleased|ready|delighted) to (?:proceed|confirm|order|sign|go ahead|move forward|"
     r"recommend|work with)|(?<![\d.,])(?:5|five) stars|well done|thanks to you", 1),
)]
#: Politeness formulas of business correspondence, not opinions: the lexicons score them
#: ("Please find attached our conditions." read positive, "Honestly, the price is too
#: high" less negative), so they are taken out of the text the lexicons read.  Only where
#: they are formulas: "your help was invaluable", "there is no hope" keep their words.
FORMULAS = re.compile(
    r"(?<![\w-])(?:please|pls|greetings|cheers|sincerely|honestly)(?![\w-])[,!]?|"
    r"(?:^|(?<=[\n.!?]))\s*dear(?![\w-])|"
    r"(?<![\w-])kindly(?= (?:send|let|confirm|provide|find|note|advise|share|check|revert|reply|update|forward|"
    r"call|contact|sign|return|arrange))|"
    r"(?<![\w-])(?:i|we) (?:hope|am hoping|are hoping)(?= (?:you|this|that|to|it|all|everything|we)\b)|"
    r"(?<![\w-])hoping to hear|"
    r"(?<=you )(?:please )?help(?= (?:me|us)\b)|(?<=can )help|(?<=could )help|(?<=happy to )help",
    re.IGNORECASE)
#: A negation this few words before a phrase, in the same clause, turns a positive phrase
#: around ("not on time", "would never recommend", as VADER reads "not good") and cancels a
#: negative one ("not too expensive").  "not only", "can't believe" negate nothing.
NEGATION_WINDOW = 3
_NEGATION = re.compile(r"\b(?:not|never|no|hardly|without)\b")
_NOT_A_NEGATION_BEFORE = {"only", "just", "believe"}
#: Where a clause and a sentence end ("3.2" and "www.example.com" do not end one).
_CLAUSE_END = re.compile(r"[,;:\n]|[.!?](?=\s|$)")
_SENTENCE_END = re.compile(r"\n|[.!?](?=\s|$)")
#: A question that asks (a prospect's "will it arrive on time?", "what if the unit is
#: defective?") says nothing of how things went: no phrase in it counts, unless it is
#: the complaint asked as a question ("why is it still not working?", "when will I
#: finally get an answer?").
_ASKING = re.compile(r"^\s*(?:will|would|can|could|is|are|do|does|did|what|when|where|how|which|should|shall|may|"
                     r"if|has|have)\b")
_COMPLAINING = re.compile(r"^\s*why\b|\b(?:still|again|finally|yet)\b|how many times")
#: A phrase after "if" or "in case" in its clause is a condition, not a fact.
_CONDITION = re.compile(r"\b(?:if|in case|whether|unless)\b")


def normalise(text):
    """Lowercased, with typographic apostrophes straight and contractions spelt out."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def blank_phrases(text, matches):
    """``text`` with the spans of ``matches`` (from :func:`phrase_matches`) blanked: the
    lexicons do not read again what a phrase already says ("could not be happier" is no
    "not happy", "hoping for more" no "hoping")."""
    for _written, _polarity, span in matches:
        if span:
            text = text[:span[0]] + " " * (span[1] - span[0]) + text[span[1]:]
    return text


def strip_formulas(text):
    """``text`` without its politeness formulas (:data:`FORMULAS`), for the lexicons.

    >>> strip_formulas("Dear Ann, please find attached our conditions.")
    ' Ann,  find attached our conditions.'
    """
    return FORMULAS.sub("", text)


def _as_written(original, phrase, near):
    """``(text, span)``: ``phrase`` (lowercased, contractions spelt out) as the customer
    wrote it in ``original`` ("third time I ask", "doesn't work"), the occurrence nearest
    position ``near``, and its span there; else ``(phrase, None)``."""
    tokens, parts, i = phrase.split(), [], 0
    while i < len(tokens):
        if i + 1 < len(tokens) and tokens[i + 1] == "not":  # "does not" may be written "doesn't"
            aux = tokens[i]
            parts.append({"will": r"(?:will\s+not|won[’']?t)", "can": r"(?:can\s*not|can[’']?t)"}.get(
                aux, re.escape(aux) + r"(?:\s+not|n[’']?t)"))
            i += 2
        else:
            parts.append(re.escape(tokens[i]))
            i += 1
    matches = list(re.finditer(r"\b" + r"\s+".join(parts) + r"\b", original, re.IGNORECASE))
    if not matches:
        return phrase, None
    # spelt-out contractions only lengthen the normalised text: the nearest occurrence is the one
    best = min(matches, key=lambda m: abs(m.start() - near))
    return best.group(0), best.span()


def _negation(clause_words, next_word):
    """The negation among the last :data:`NEGATION_WINDOW` words of a clause, or None."""
    words = clause_words + [next_word]
    for i in range(max(0, len(clause_words) - NEGATION_WINDOW), len(clause_words)):
        if _NEGATION.fullmatch(words[i]) and words[i + 1] not in _NOT_A_NEGATION_BEFORE:
            return words[i]
    return None


def phrase_matches(text):
    """``[(phrase as written, polarity, span in text or None)]``: the customer-service
    phrases of ``text`` that count (see :func:`phrase_score`)."""
    original, text = text, normalise(text)
    taken, found = [], []
    for pattern, polarity in PHRASES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            sentence_start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
            sentence_end = _SENTENCE_END.search(text, end)
            sentence = text[sentence_start:sentence_end.end() if sentence_end else len(text)]
            if (sentence.rstrip().endswith("?") and _ASKING.match(sentence)
                    and not (polarity < 0 and _COMPLAINING.search(sentence))):
                continue
            clause = _CLAUSE_END.split(text[:start])[-1]
            if _CONDITION.search(clause):
                continue
            written, span = _as_written(original, match.group(0), start)
            negation = _negation([w.strip("'\"()") for w in clause.split()], match.group(0).split()[0])
            if negation:
                if polarity < 0:
                    continue
                polarity, written = -polarity, f"{negation} {written}"
            found.append((written, float(polarity), span))
    return found


def phrase_total(matches):
    """The summed polarity of ``matches`` (from :func:`phrase_matches`), clipped to [-1, 1]."""
    return float(max(-1.0, min(1.0, sum(polarity for _written, polarity, _span in matches))))


def phrase_score(text):
    """``(score, phrases)``: the summed polarity of the customer-service phrases in
    ``text``, clipped to [-1, 1], and the phrases found (as written) with their polarity.

    >>> phrase_score("This is the third time I ask for a quote.")
    (-1.0, [('third time I ask', -1.0)])
    >>> phrase_score("Arrived on time, exactly as described.")[0]
    1.0
    >>> phrase_score("The parts were not delivered on time.")
    (-1.0, [('not delivered on time', -1.0)])
    >>> phrase_score("Will it be delivered on time?")  # a question, not praise
    (0.0, [])
    """
    matches = phrase_matches(text)
    return phrase_total(matches), [(written, polarity) for written, polarity, _span in matches]
