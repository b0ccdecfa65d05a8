"""Sentiment engine (crm_ai/ml/sentiment.py): cleaning, language, scores, evidence, aggregate."""

import time

import pytest
from ml.sentiment import (
    DEFAULT_NEUTRAL_BAND,
    INPUTS,
    MAX_CHARS,
    NEGATIVE,
    NEUTRAL,
    NO_TEXT,
    POSITIVE,
    UNSUPPORTED,
    LanguageDetector,
    SentimentModel,
    TextSentiment,
    aggregate,
    aggregate_band,
    clean_text,
    excerpt,
)


@pytest.fixture(scope="module")
def chain():
    return TextSentiment()


def one(chain, text):
    return chain.analyze([text])[0]


# -- cleaning ------------------------------------------------------------------------------------
def test_html_is_text_and_quotes_are_cut():
    email = ("<div>Still no answer.<br>Please call me.</div>"
             "<div class='gmail_quote'>On Mon, 3 Mar 2025, Sales wrote:<blockquote>We are happy to help!</blockquote></div>")
    assert clean_text(email) == "Still no answer. Please call me."
    odoo = '<p>Thanks a lot</p><div data-o-mail-quote="1">-- <br>Mitchell Admin</div>'
    assert clean_text(odoo) == "Thanks a lot"
    outlook = '<p>Fine for me.</p><div id="divRplyFwdMsg"><b>From:</b> Sales</div><p>Great offer!</p>'
    assert clean_text(outlook) == "Fine for me. Great offer!"  # only the header element goes; its siblings stay


def test_plain_text_replies_forwards_and_signatures_are_cut():
    assert clean_text("Not happy at all.\n\nOn 2025-01-03 Ann wrote:\n> Here is your wonderful quote") == "Not happy at all."
    assert clean_text("Sounds good.\n-----Original Message-----\nFrom: x\nGreat deal!") == "Sounds good."
    assert clean_text("Merci.\n\nLe 3 janv. 2025, Ann a écrit :\n> Super offre") == "Merci."
    assert clean_text("Works now.\n> quoted\n> lines\nthanks") == "Works now."
    # a thank-you on its own line at the end signs off: it must not make a complaint read positive
    for sign_off in ("Thanks", "Thanks!", "Many thanks,", "Thanks and regards,", "Best wishes,", "Thank you",
                     "Thanks in advance"):
        assert clean_text(f"<p>I still have not received my order. Please advise.<br><br>{sign_off}<br>John</p>") \
            == "I still have not received my order. Please advise.", sign_off
    assert clean_text("Thanks") == "Thanks", "a thank-you alone is the message"
    # what follows a sign-off must read like a signature, not like the message going on
    assert clean_text("The demo went well.\nBest,\nbut the delivery was awful and late") \
        == "The demo went well. but the delivery was awful and late"
    # a disclaimer or a lowercase title further down is no reason to keep a polite sign-off
    for tail in ("John Smith\nsales manager", "John Smith\nThis message is confidential and\nmay be privileged."):
        assert clean_text(f"Still no delivery, this is unacceptable.\nKind regards,\n{tail}") \
            == "Still no delivery, this is unacceptable.", tail
    assert clean_text("The parts arrived late.\nThanks,\nJohn\nSent from my iPhone") == "The parts arrived late."
    for signature in ("John Smith\njohn.smith@acme.com", "John\nwww.acme.com", "Ann\nm: +1 555 0100"):
        assert clean_text(f"The parts were damaged.\nThanks\n{signature}") == "The parts were damaged.", signature
    # "… wrote:" inside the customer's own sentence is not a reply header
    own = "On your website you wrote: free delivery in 2 days. It took 3 weeks, I am furious."
    assert clean_text(own) == own
    assert clean_text("<p>On Monday your technician wrote: all fixed. Nothing works.</p>").startswith("On Monday")
    assert clean_text("I love it.\n-- \nAnn Smith\nThe best company in the world") == "I love it."
    assert clean_text("Terrible delay.\n\nSent from my iPhone") == "Terrible delay."
    # a sign-off far from the end is part of the message
    long = "Thanks,\n" + "\n".join(f"line {i} of the complaint" for i in range(12))
    assert clean_text(long).startswith("Thanks, line 0")


def test_whitespace_empty_and_huge_input():
    assert clean_text("  lots \n\n of\t\tspace  ") == "lots of space"
    assert clean_text("") == "" and clean_text(None) == "" and clean_text("   \n\t ") == ""
    huge = "<p>" + "The support was slow. " * 60000 + "</p>"  # ~1.3 MB
    started = time.perf_counter()
    text = clean_text(huge)
    assert len(text) <= MAX_CHARS
    assert time.perf_counter() - started < 5  # capped before parsing: a 1 MB email is cheap (bench: 0.04 s)


# -- language --------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, language", [
    ("Não gostei do produto, chegou quebrado e ninguém responde", "pt"),
    ("Das Angebot ist leider viel zu teuer für uns", "de"),
    ("Le produit est arrivé cassé et personne ne répond", "fr"),
    ("El servicio fue terrible y nadie contesta", "es"),
    ("Il prodotto è arrivato rotto, pessimo servizio", "it"),
    ("This is the third time I ask for a quote", "en"),
    ("Terrible.", "en"),
    ("not bad at all", "en"),
])
def test_language_is_detected(text, language):
    assert LanguageDetector().detect(text)[0] == language


def test_non_english_is_never_scored_neutral_or_positive(chain):
    for text in ("Não gostei do produto, chegou quebrado", "Das ist leider nicht gut", "Très déçu par le service",
                 "Excelente atención, muchas gracias", "Отличный сервис, спасибо", "非常满意"):
        result = one(chain, text)
        assert result["label"] == UNSUPPORTED and result["score"] is None, text


def test_mixed_language_goes_by_the_main_language(chain):
    assert one(chain, "Bonjour, the delivery was late again and nobody answered my emails")["language"] == "en"
    assert one(chain, "Thanks! Mais le produit est arrivé cassé et le service client ne répond pas")["label"] == UNSUPPORTED


# -- scores ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, label", [
    ("This is the third time I ask for a quote. Very disappointed.", NEGATIVE),
    ("I am extremely unhappy with the delay", NEGATIVE),
    ("not good", NEGATIVE),
    ("not bad at all", POSITIVE),
    ("The demo was excellent, thank you!", POSITIVE),
    ("Thanks, the demo was excellent 😀", POSITIVE),
    ("Still waiting for the invoice correction.", NEGATIVE),  # no opinion word, a customer-service phrase
    ("Please send it back, I want a refund.", NEGATIVE),  # "please" and "want" alone read positive
    ("Send the quote to our Paris office.", NEUTRAL),  # no sentiment word nor phrase: no signal
])
def test_labels(chain, text, label):
    assert one(chain, text)["label"] == label


def test_negation_intensifiers_caps_and_emoji_move_the_score(chain):
    def score(text):
        return one(chain, text)["score"]
    assert score("good") > 0 > score("not good")
    assert score("very bad") < score("bad") < 0
    assert score("GREAT!!!") >= score("great") > 0
    assert score("the meeting was fine 😠") < score("the meeting was fine 😀")


def test_no_text_is_not_neutral(chain):
    for text in ("", "   ", "<p><br></p>", "> only a quote"):
        result = one(chain, text)
        assert result["label"] == NO_TEXT and result["score"] is None, repr(text)


def test_evidence_names_the_words_that_drove_the_score(chain):
    result = one(chain, "I am extremely unhappy with the delay, the support was useless")
    assert result["label"] == NEGATIVE
    assert "extremely unhappy" in result["evidence"] and "useless" in result["evidence"]
    assert one(chain, "The product is GREAT!!!")["evidence"] == ["great"]
    assert one(chain, "Still waiting for the invoice correction.")["evidence"] == ["Still waiting"]
    assert one(chain, "Send the quote to our Paris office.")["evidence"] == []


def test_fit_learns_the_weights_and_survives_pickling():
    import pickle
    texts = ["great", "excellent work", "love it", "awful", "terrible service", "hate it", "nice", "bad"] * 5
    y = [1, 1, 1, 0, 0, 0, 1, 0] * 5
    texts += ["it does not work", "works great, will order again"] * 5
    y += [0, 1] * 5
    model = SentimentModel().fit(texts, y)
    weights = dict(zip(INPUTS, model.coef))
    assert len(model.coef) == len(INPUTS) == 6
    assert weights["textblob_polarity"] > 0 and weights["vader_compound"] > 0 and weights["customer_phrases"] > 0
    again = pickle.loads(pickle.dumps(model))
    assert list(again.predict(["awful", "great"])) == [0, 1]


# -- aggregate ---------------------------------------------------------------------------------------------
def test_aggregate_weights_recent_texts_and_names_the_worst():
    analyses = [{"score": 0.9, "signal": True}, {"score": 0.8, "signal": True}, {"score": -0.7, "signal": True}]
    recent_complaint = aggregate(analyses, [200, 150, 1])
    assert recent_complaint["label"] == NEGATIVE and recent_complaint["excerpt_index"] == 2
    old_complaint = aggregate(analyses, [1, 2, 300])
    assert old_complaint["label"] == POSITIVE and old_complaint["count"] == 3


def test_aggregate_band_shrinks_smoothly_with_the_number_of_texts():
    """One text reads as it does on its own; the band of an average shrinks towards half a
    text's as texts add up, and a text of years ago changes next to nothing."""
    mild = {"score": -0.44, "signal": True, "label": NEUTRAL}
    assert aggregate([mild], [0])["label"] == NEUTRAL
    assert aggregate([mild, dict(mild), dict(mild), dict(mild)], [0, 1, 2, 3])["label"] == NEGATIVE
    ancient = {"score": 0.9, "signal": True, "label": "positive"}
    assert aggregate([mild, ancient], [0, 3 * 365])["label"] == NEUTRAL
    assert aggregate_band([1.0]) == pytest.approx(DEFAULT_NEUTRAL_BAND)
    assert aggregate_band([1.0, 1.0]) == pytest.approx(0.75 * DEFAULT_NEUTRAL_BAND)
    assert aggregate_band([1.0] * 1000) == pytest.approx(0.5 * DEFAULT_NEUTRAL_BAND, abs=1e-3)
    assert aggregate_band([1.0, 1e-8]) == pytest.approx(DEFAULT_NEUTRAL_BAND, abs=1e-6)


def test_aggregate_without_signal_or_text():
    assert aggregate([{"score": 0.0, "signal": False}], [1]) == {"score": None, "label": NEUTRAL, "count": 1,
                                                                  "excerpt_index": None}
    assert aggregate([{"score": None, "label": UNSUPPORTED}], [1])["label"] == UNSUPPORTED
    assert aggregate([], [])["label"] == NO_TEXT
    # an unsupported text is neither counted nor averaged
    mixed = aggregate([{"score": None, "label": UNSUPPORTED}, {"score": -0.9, "signal": True}], [1, 1])
    assert (mixed["count"], mixed["label"]) == (1, NEGATIVE)
    # but a customer who writes mostly in another language is not read from his one English "Ok"
    french = [{"score": None, "label": UNSUPPORTED}] * 2 + [{"score": 0.84, "signal": True}]
    assert aggregate(french, [10, 5, 0]) == {"score": None, "label": UNSUPPORTED, "count": 1, "excerpt_index": None}
    assert aggregate(french, [400, 300, 0])["label"] == POSITIVE, "by the same recency weights"


def test_emoji_alone_are_read_and_symbols_alone_are_no_text(chain):
    assert one(chain, "<p>😡😡😡</p>")["label"] != UNSUPPORTED, "emoji are no foreign language"
    assert one(chain, "👍")["language"] == "en"
    for text in ("...", "123", "!!!"):
        assert one(chain, text)["label"] == NO_TEXT, text


def test_excerpt_centres_on_the_evidence():
    text = "Hello team. " * 30 + "The invoice is wrong again and I am furious about it. " + "Regards. " * 20
    piece = excerpt(text, ["furious"], width=80)
    assert "furious" in piece and len(piece) <= 82
    assert excerpt("short", ["x"]) == "short"


def test_a_polite_request_with_one_doubt_is_not_negative(chain):
    """The shown score is the words' own pull: the reviews' base rate (the fitted
    intercept, "little sentiment is usually a complaint") is not applied to a customer's email."""
    text = ("Hello! We talked a bit last month at this international conference. We would like to attend a "
            "training, but we are not quite sure about what we can ask. Maybe we should meet and talk about that?")
    assert one(chain, text)["label"] == NEUTRAL
