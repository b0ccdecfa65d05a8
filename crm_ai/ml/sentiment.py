"""Sentiment of what a customer wrote: cleaning, language, score, evidence, aggregate.

Pure Python (lxml, TextBlob, VADER, py3langid, scikit-learn; no Odoo).

* :func:`clean_text` turns an email or chatter message (HTML or text) into the words
  the customer wrote: quoted replies, forwarded headers and signatures cut, whitespace
  normalised, length capped (a 1 MB email costs no more than a page).
* :class:`LanguageDetector` names the language (py3langid, restricted to common
  languages so short texts are not put down to rare ones).  Both lexicons are English
  only: any other language is reported as "unsupported language", never as a neutral
  or positive score.
* :class:`SentimentModel` combines TextBlob (polarity, subjectivity), VADER (compound score,
  positive and negative shares) and the customer-service phrases of
  :mod:`.sentiment_phrases` with a logistic regression whose weights were fitted on one
  labelled file (amazon) and are measured on others (``bench/bench_sentiment.py``); a text
  in which neither lexicon finds a sentiment word and no phrase counts has no signal:
  score 0, label neutral, no evidence.
* :func:`aggregate` weighs a customer's texts by recency into one score, with the
  excerpt that weighs most negatively (the "why").
"""

import re
import unicodedata
from functools import cached_property

import numpy as np
from lxml import etree, html
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from .sentiment_phrases import blank_phrases, phrase_matches, phrase_total, strip_formulas

#: Characters of text kept per message (cleaning happens on at most ``RAW_CAP`` characters).
MAX_CHARS = 5000
RAW_CAP = 200_000
#: Labels of one text or of an aggregate.
POSITIVE, NEUTRAL, NEGATIVE, UNSUPPORTED, NO_TEXT = "positive", "neutral", "negative", "unsupported_language", "no_text"
LABELS = {
    POSITIVE: "Positive",
    NEUTRAL: "Neutral",
    NEGATIVE: "Negative",
    UNSUPPORTED: "Unsupported language",
    NO_TEXT: "No text",
}
#: The languages the sentiment lexicons read.
SUPPORTED_LANGUAGES = ("en",)
#: Candidate languages of the identifier: common business languages.  Restricting them
#: keeps short English texts from being put down to rare languages (0.9 % of the 3,000
#: English review sentences flagged foreign, against 1.7 % with all 97 languages).
CANDIDATE_LANGUAGES = ("en", "fr", "de", "es", "pt", "it", "nl", "pl", "sv", "da", "no", "fi", "cs", "ro", "hu", "tr",
                       "ru", "ar", "zh", "ja", "ko", "el", "he", "id", "vi", "uk", "ca")

#: The model's inputs per text, in order: the candidate set with the best cross-validated
#: accuracy on amazon (bench/bench_sentiment.py).
INPUTS = ("textblob_polarity", "vader_compound", "textblob_subjectivity", "vader_positive_share",
          "vader_negative_share", "customer_phrases")
# Weights fitted on the amazon file (bench/bench_sentiment.py), the only file used to choose
# anything: P(positive) = sigmoid(coef . inputs + intercept).
DEFAULT_COEF = (1.401, 2.285, 0.196, 0.938, -0.699, 2.001)
DEFAULT_INTERCEPT = -0.738
#: |score| below this: neutral (chosen on amazon: the widest band inside which the words'
#: cross-validated calls are right at most 2 times in 3).
DEFAULT_NEUTRAL_BAND = 0.55

# -- cleaning --------------------------------------------------------------------------------
#: Elements that hold quoted replies, forwarded messages or signatures in HTML emails
#: (Odoo marks quotes with data-o-mail-quote; Gmail, Outlook, Thunderbird, Apple Mail theirs).
_QUOTE_XPATH = (
    "//blockquote | //*[@data-o-mail-quote] | //*[@data-o-mail-quote-container] | "
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')] | "
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_signature ')] | "
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')] | "
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-signature ')] | "
    "//*[@id='divRplyFwdMsg'] | //*[@id='appendonsend'] | //*[@id='Signature'] | //style | //script | //head"
)
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "hr"}
#: A line that starts the quoted or forwarded part of a plain-text email.
_REPLY_HEADER = re.compile(
    # a header ends its line: "On your website you wrote: free delivery" is the customer's own words
    r"^\s*(?:(?:On\s.{0,200}wrote:|Le\s.{0,200}a\s+écrit\s*:|Am\s.{0,200}schrieb.{0,80}:|El\s.{0,200}escribió:|"
    r"Em\s.{0,200}escreveu:|Il\s.{0,200}ha\s+scritto:)[ \t]*$|-{2,}\s*(?:Original Message|Forwarded message|Message d'origine)"
    r"\s*-{2,}|_{10,}|(?:From|De|Von|Van):\s.+\n\s*(?:Sent|Date|Envoyé|Gesendet|Enviado|Verzonden):)",
    re.IGNORECASE | re.MULTILINE)
#: A line that starts a signature: the "-- " delimiter, a phone's footer, a sign-off.
_SIGNATURE = re.compile(
    r"^\s*(?:--\s*|Sent from my .{1,40}|Envoyé de mon .{1,40}|Get Outlook for .{1,40}|"
    r"(?:Best|Kind|Warm)?\s*regards,?|Best,?|Best wishes,?|Cheers,?|Sincerely,?|Cordialement,?|"
    # a thank-you alone on its line near the end is a sign-off, not praise ("Thanks\nJohn")
    r"(?:Many |Thanks and |Thanks & )?(?:thanks|regards)(?: (?:again|in advance|a lot))?[,.!]?|Thank you[,.!]?|"
    r"Mit freundlichen Grüßen,?|Met vriendelijke groet(?:en)?,?|Saludos,?|Atenciosamente,?)\s*$",
    re.IGNORECASE | re.MULTILINE)
#: A signature cut only when it starts within this many lines of the end (a "Thanks," in
#: the middle of a long message is not the end of it).
SIGNATURE_MAX_LINES = 8


def _html_to_text(markup):
    try:
        root = html.fromstring(markup)
    except (etree.ParserError, ValueError):
        return markup
    for element in root.xpath(_QUOTE_XPATH):
        parent = element.getparent()
        if parent is not None:
            element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
    return root.text_content()


def clean_text(text, max_chars=MAX_CHARS):
    """The words the author wrote in ``text`` (HTML or plain), or "" when none.

    >>> clean_text("<p>Still <b>waiting</b> for the quote.</p><blockquote>On Mon we wrote: ...</blockquote>")
    'Still waiting for the quote.'
    >>> clean_text("Great, thanks!\\n\\nOn Tue, 3 Jan 2025, Ann <ann@x.com> wrote:\\n> Here is the quote")
    'Great, thanks!'
    >>> clean_text("The demo was great.\\n\\nBest regards,\\nAnn Smith\\nACME Corp")
    'The demo was great.'
    """
    if not text or not isinstance(text, str):
        return ""
    text = text[:RAW_CAP]
    if "<" in text and re.search(r"<[a-zA-Z/!][^>]*>", text):
        text = _html_to_text(text)
    text = text.replace("\r\n", "\n").replace("\xa0", " ")
    match = _REPLY_HEADER.search(text)
    if match:
        text = text[:match.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    # the last sign-off near the end cuts the signature under it ("Thanks,\nJohn\nSent from my
    # iPhone": twice); the sign-off line itself always goes (a polite "Kind regards" is no praise),
    # and what follows it too unless it goes on with the sentence ("Best,\nbut the delivery was
    # awful": lowercase words right after it, where a signature has a name, a title, an address)
    for _round in range(3):
        for index in range(len(lines) - 1, max(-1, len(lines) - 1 - SIGNATURE_MAX_LINES), -1):
            if _SIGNATURE.match(lines[index]) and any(line.strip() for line in lines[:index]):
                after = next((line for line in lines[index + 1:] if line.strip()), "")
                goes_on = bool(re.match(r"\s*[a-z][a-z']*\s+[a-z]", after))
                lines = lines[:index] + (lines[index + 1:] if goes_on else [])
                break
        else:
            break
    text = re.sub(r"\s+", " ", " ".join(lines)).strip()
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        text = text[:cut if cut > max_chars // 2 else max_chars]
    return text


# -- language ---------------------------------------------------------------------------------
class LanguageDetector:
    """Language of a text: py3langid over :data:`CANDIDATE_LANGUAGES`.

    A very short text (a word or two) carries too few letters for the identifier; when
    every word of it is in the English sentiment lexicons it is English ("Terrible.").
    """

    SHORT_WORDS = 3

    @cached_property
    def _identifier(self):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier.set_languages(list(CANDIDATE_LANGUAGES))
        return identifier

    @cached_property
    def _english_words(self):
        from textblob.en import sentiment as pattern_lexicon
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        pattern_lexicon.load()
        words = set(SentimentIntensityAnalyzer().lexicon) | set(pattern_lexicon)
        return words | {"a", "an", "the", "it", "is", "was", "so", "very", "not", "no", "yes", "ok", "okay", "thanks",
                        "thank", "you", "this", "that", "i", "we", "too", "really"}

    def detect(self, text):
        """``(language code, confidence)``; ("", 0.0) for a text without letters, but emoji
        alone ("😡😡") read as English: VADER's lexicon scores them."""
        if not text or not re.search(r"[^\W\d_]", text):
            if text and any(unicodedata.category(char) == "So" for char in text):
                return "en", 1.0
            return "", 0.0
        language, confidence = self._identifier.classify(text)
        words = re.findall(r"[^\W\d_]+", text.lower())
        if language != "en" and len(words) <= self.SHORT_WORDS and all(w in self._english_words for w in words):
            return "en", confidence
        return language, float(confidence)


# -- sentiment --------------------------------------------------------------------------------
class SentimentModel(BaseEstimator):
    """Sentiment of English texts: the :data:`INPUTS` combined (see the module docstring).

    ``score`` in [-1, 1] is ``2 * sigmoid(words) - 1``, the inputs' weighted sum without
    the fitted intercept; ``|score| < neutral_band`` is neutral; a text with no sentiment
    word for either lexicon and no phrase has no signal (score 0, neutral).  ``predict``, for
    two-class benchmarks, adds the intercept.  ``fit(texts, y)`` refits the weights (the
    bench does, on amazon).
    """

    def __init__(self, coef=DEFAULT_COEF, intercept=DEFAULT_INTERCEPT, neutral_band=DEFAULT_NEUTRAL_BAND, C=1.0):
        self.coef = coef
        self.intercept = intercept
        self.neutral_band = neutral_band
        self.C = C

    @cached_property
    def _vader(self):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()

    def __getstate__(self):  # the analyzers are rebuilt, not pickled
        state = dict(self.__dict__)
        state.pop("_vader", None)
        return state

    def lexicon_scores(self, texts):
        """``(n, 6)`` array, the :data:`INPUTS` per text (TextBlob polarity, VADER compound,
        TextBlob subjectivity, VADER positive and negative shares, customer-service phrases),
        and the evidence ``[(words, weight)]`` per text."""
        # TextBlob's own sentiment (``TextBlob(text).sentiment_assessments``) is this
        # pattern lexicon's result, computed twice (once for the polarity, once for the
        # assessments) plus a namedtuple class made per text: called once here, the whole
        # chain takes a third less time for the same values (bench/bench_sentiment_odoo.py:
        # 34 -> 23 s for 100,000 emails).
        from textblob.en import sentiment as pattern_sentiment

        scores, evidence = np.zeros((len(texts), len(INPUTS))), []
        for i, text in enumerate(texts):
            if not isinstance(text, (str, bytes)):  # as TextBlob(text) refuses it
                raise TypeError(f"a text must be a string, not {type(text)}")
            matches = phrase_matches(text)
            # the lexicons read neither the phrases (counted once, by their own input) nor the
            # politeness formulas ("please", "dear", "I hope you"): requests, not opinions
            text = strip_formulas(blank_phrases(text, matches))
            blob = pattern_sentiment(text)  # (polarity, subjectivity), with .assessments
            vader = self._vader.polarity_scores(text)
            scores[i] = (blob[0], vader["compound"], blob[1], vader["pos"], vader["neg"],
                         phrase_total(matches))
            words = {written: polarity for written, polarity, _span in matches}  # "doesn't work", not "work"
            in_phrases = {t.lower() for phrase in words for t in phrase.split()}
            for tokens, polarity, *_rest in blob.assessments:
                phrase = " ".join(t for t in tokens if re.search(r"\w", t))
                if polarity and phrase and not set(phrase.lower().split()) <= in_phrases:
                    words[phrase] = polarity
            covered = {t.lower() for phrase in words for t in phrase.split()}
            for token in re.findall(r"[\w']+", text.lower()):
                valence = self._vader.lexicon.get(token)
                if valence and token not in covered:
                    words[token] = valence / 4.0  # VADER's valences run from -4 to 4
                    covered.add(token)
            evidence.append(sorted(words.items(), key=lambda item: -abs(item[1])))
        return scores, evidence

    def fit(self, texts, y):
        scores, _evidence = self.lexicon_scores(list(texts))
        model = LogisticRegression(C=self.C, max_iter=1000).fit(scores, np.asarray(y).astype(int))
        self.coef = tuple(round(float(c), 3) for c in model.coef_[0])
        self.intercept = round(float(model.intercept_[0]), 3)
        return self

    def _score(self, scores):
        # The words' own pull, without the fitted intercept: that is the reviews' base rate
        # (a sentence with little sentiment is more often a complaint there), not something
        # a customer's email says; a polite request with one "not sure" must not read negative.
        logit = scores @ np.asarray(self.coef, dtype=float)
        score = 2.0 / (1.0 + np.exp(-logit)) - 1.0
        no_signal = ~scores.any(axis=1)
        return np.where(no_signal, 0.0, score), no_signal

    def predict(self, texts):
        """1 (positive) or 0 (negative) per text, for benchmarks on two-class data: the
        sign of the model's score, also for a text without sentiment words (there the
        fitted intercept decides: on reviews, such sentences are mostly complaints),
        which :meth:`analyze` reports as neutral with no score of its own."""
        scores = self.lexicon_scores(list(texts))[0]
        return (scores @ np.asarray(self.coef, dtype=float) + self.intercept >= 0).astype(int)

    def analyze(self, texts, top=3):
        """One dict per (clean, English) text: score, label, evidence (the ``top`` words
        or phrases pushing the way the score goes, strongest first)."""
        texts = list(texts)
        scores, evidence = self.lexicon_scores(texts)
        score, no_signal = self._score(scores)
        results = []
        for i, text in enumerate(texts):
            if not text.strip():
                results.append({"score": None, "label": NO_TEXT, "evidence": [], "signal": False})
                continue
            s = float(score[i])
            label = NEUTRAL if no_signal[i] or abs(s) < self.neutral_band else (POSITIVE if s > 0 else NEGATIVE)
            sign = 0 if label == NEUTRAL else (1 if s > 0 else -1)
            words = [w for w, weight in evidence[i] if sign and weight * sign > 0][:top]
            results.append({"score": round(s, 4), "label": label, "evidence": words, "signal": not no_signal[i]})
        return results


class TextSentiment:
    """The whole chain for raw messages: clean, detect the language, score."""

    def __init__(self, model=None, detector=None, max_chars=MAX_CHARS):
        self.model = model or SentimentModel()
        self.detector = detector or LanguageDetector()
        self.max_chars = max_chars

    def analyze(self, raw_texts):
        """One dict per raw text: text (clean), language, score (None when there is no
        text or the language is unsupported), label, evidence."""
        cleaned = [clean_text(raw, self.max_chars) for raw in raw_texts]
        results, english = [], []
        for i, text in enumerate(cleaned):
            if not text:
                results.append({"text": "", "language": "", "score": None, "label": NO_TEXT, "evidence": [],
                                "signal": False})
                continue
            language, _confidence = self.detector.detect(text)
            # no letters ("...", "123"): nothing to read, not a language the engine cannot read
            results.append({"text": text, "language": language, "score": None,
                            "label": UNSUPPORTED if language else NO_TEXT, "evidence": [], "signal": False})
            if language in SUPPORTED_LANGUAGES:
                english.append(i)
        for i, analysis in zip(english, self.model.analyze([cleaned[i] for i in english])):
            results[i].update(analysis)
        return results


# -- aggregate -----------------------------------------------------------------------------------
def aggregate_band(weights, text_band=DEFAULT_NEUTRAL_BAND):
    """The neutral band of a weighted average of texts: a text's band for one text, shrinking
    smoothly to half of it as the effective number of texts ``(sum w)^2 / sum w^2`` grows (an
    average is pulled towards 0 by its mildest texts; a text of three years ago, weighing
    almost nothing, changes next to nothing)."""
    weights = np.asarray(weights, dtype=float)
    effective = weights.sum() ** 2 / max(float((weights ** 2).sum()), 1e-300)
    return text_band * (0.5 + 0.5 / max(effective, 1.0))


def aggregate(analyses, ages_days, half_life_days=30.0, text_band=DEFAULT_NEUTRAL_BAND):
    """One customer's (or lead's) sentiment from its texts' analyses.

    ``analyses``: dicts from :meth:`TextSentiment.analyze`; ``ages_days``: each text's
    age.  ``count`` is the texts read (in a supported language); the score is the mean of
    those with a sentiment signal, weighted by ``0.5 ** (age / half_life_days)`` (a text
    with no sentiment word does not pull it towards 0); the excerpt is the text that weighs
    most negatively (score x weight).  Nothing readable: label unsupported_language or
    no_text, score None; only texts without signal: neutral, score None.  A customer who
    writes mostly in a language the engine cannot read (by the same weights) is
    unsupported_language, score None: his rare English "Ok" does not speak for his angry
    French emails.  The neutral band is :func:`aggregate_band`'s: one text reads as it does on
    its own (a polite request with one doubt does not make its lead negative).

    >>> aggregate([{"score": 0.8, "signal": True}, {"score": -0.9, "signal": True}], [60, 0])["label"]
    'negative'
    >>> aggregate([{"score": None, "label": UNSUPPORTED}] * 2 + [{"score": 0.8, "signal": True}], [5, 5, 0])["label"]
    'unsupported_language'
    """
    weights = [0.5 ** (max(float(age), 0.0) / half_life_days) for age in ages_days]
    read = [a for a in analyses if a.get("score") is not None]
    scored = [(i, a["score"], w) for i, (a, w) in enumerate(zip(analyses, weights))
              if a.get("score") is not None and a.get("signal")]
    unsupported = sum(w for a, w in zip(analyses, weights) if a.get("label") == UNSUPPORTED)
    if not read or unsupported > sum(w for a, w in zip(analyses, weights) if a.get("score") is not None):
        return {"score": None, "label": UNSUPPORTED if unsupported else NO_TEXT, "count": len(read),
                "excerpt_index": None}
    if not scored:
        return {"score": None, "label": NEUTRAL, "count": len(read), "excerpt_index": None}
    total = sum(w for _i, _s, w in scored)
    score = sum(s * w for _i, s, w in scored) / total if total > 0 else 0.0
    worst = min(scored, key=lambda item: item[1] * item[2])
    band = aggregate_band([w for _i, _s, w in scored], text_band)
    label = NEUTRAL if abs(score) < band else (POSITIVE if score > 0 else NEGATIVE)
    return {"score": round(score, 4), "label": label, "count": len(read),
            "excerpt_index": worst[0] if worst[1] < 0 else None}


def excerpt(text, evidence=(), width=160):
    """The part of ``text`` around its first evidence word, at most ``width`` characters."""
    if len(text) <= width:
        return text
    lowered = text.lower()
    positions = [lowered.find(word.lower()) for word in evidence if word and lowered.find(word.lower()) >= 0]
    center = min(positions) if positions else 0
    start = max(0, min(center - width // 3, len(text) - width))
    piece = text[start:start + width]
    return ("…" if start else "") + piece.strip() + ("…" if start + width < len(text) else "")

