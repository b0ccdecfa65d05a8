"""Customer-service phrases (ml/sentiment_phrases.py): what customers write to a seller
that TextBlob's and VADER's opinion lexicons read as no sentiment, or backwards."""

import pytest
from ml.sentiment import SentimentModel
from ml.sentiment_phrases import blank_phrases, normalise, phrase_matches, phrase_score, strip_formulas


@pytest.mark.parametrize("text", [
    "This is the third time I ask for a quote.",
    "It doesn't work.",
    "The pump stopped working after two days.",
    "We never received the parts.",
    "Still waiting for the corrected invoice.",
    "Nobody called me back.",
    "No answer from your support for two weeks.",
    "We are sending it back.",
    "Please cancel our order.",
    "I would not recommend it.",
    "Don't buy it.",
    "Not worth it.",
    "It did not arrive on time.",
    "I expected better.",
])
def test_complaints_in_plain_words_read_negative(text):
    assert phrase_score(text)[0] == -1.0


@pytest.mark.parametrize("text", [
    "Works great, will order again.",
    "Arrived on time, exactly as described.",
    "We are happy to proceed with the order.",
    "I couldn't be happier with it.",  # VADER alone reads "not" + "happy": negative
    "Exactly what we needed.",
    "I would highly recommend them.",
])
def test_satisfaction_reads_positive(text):
    assert phrase_score(text)[0] == 1.0


def test_no_phrase_no_score():
    assert phrase_score("Send the quote to our Paris office.") == (0.0, [])
    assert phrase_score("") == (0.0, [])


def test_a_phrase_inside_a_longer_one_counts_once():
    # "not worth" is matched first: its "worth it" does not also count as praise
    assert phrase_score("Not worth it.")[1] == [("Not worth", -1.0)]
    assert phrase_score("I would not recommend it.")[1] == [("would not recommend", -1.0)]


def test_a_negation_just_before_a_positive_phrase_turns_it():
    assert phrase_score("The parts were not delivered on time.")[0] == -1.0
    assert phrase_score("The parts were delivered on time.")[0] == 1.0
    # further away it no longer applies
    assert phrase_score("No, I mean the parts came, and they arrived on time.")[0] == 1.0


def test_the_sum_is_clipped():
    score, found = phrase_score("It doesn't work, I want a refund, nobody called me back.")
    assert score == -1.0 and len(found) == 3


def test_contractions_and_curly_apostrophes_are_spelt_out():
    assert normalise("It doesn\u2019t work, I can't, we won't") == "it does not work, i can not, we will not"
    assert phrase_score("It doesnt work")[0] == -1.0


def test_the_phrases_move_the_engine_score():
    model = SentimentModel()
    request, complaint = model.analyze(["Send the quote to our Paris office.", "Please send it back, I want a refund."])
    assert request["label"] == "neutral"
    assert complaint["label"] == "negative" and complaint["evidence"][:2] == ["send it back", "want a refund"]


def test_politeness_formulas_are_not_opinions():
    model = SentimentModel()
    attached, objection, chasing = model.analyze([
        "Dear Ann, please find attached our purchase conditions. Hoping to hear from you soon.",
        "Honestly, the price is too high and the onboarding was a mess.",
        "I was hoping for more, please call me.",  # the phrases still read the whole text
    ])
    assert attached["label"] == "neutral" and attached["evidence"] == []
    assert objection["label"] == "negative" and objection["evidence"][:2] == ["too high", "was a mess"]
    assert chasing["label"] == "negative" and chasing["evidence"][0] == "hoping for more"


def test_a_positive_phrase_in_a_question_asks_for_it():
    assert phrase_score("Will it be delivered on time?") == (0.0, [])
    assert phrase_score("Is it as described? It works great.")[1] == [("works great", 1.0)]
    # a complaint asked as a question is still a complaint
    assert phrase_score("Why is it still not working?")[0] == -1.0


def test_a_negation_cancels_a_negative_phrase_and_stops_at_the_clause():
    assert phrase_score("It's not too expensive.") == (0.0, [])
    # "have not received" says the customer waits; the refund it waits for is not counted again, nor turned
    assert phrase_score("I have not received a refund.")[1] == [("have not received", -1.0)]
    # the "not" of another clause does not reach the phrase
    assert phrase_score("They did not call, still waiting.")[1] == [("still waiting", -1.0)]
    assert phrase_score("We did not expect it, but it arrived on time.")[0] == 1.0


def test_a_phrase_is_named_as_the_customer_wrote_it():
    assert phrase_score("This is the THIRD time I ask.")[1] == [("THIRD time I ask", -1.0)]
    assert phrase_score("It doesn’t work. It DOESN'T work!")[1] == [("doesn’t work", -1.0), ("DOESN'T work", -1.0)]
    assert phrase_score("It cannot work, it won't work")[1] == [("cannot work", -1.0), ("won't work", -1.0)]


@pytest.mark.parametrize("text", [
    "Please return the signed contract by Friday.",
    "Could you return my call when you have a minute?",
    "Please send the invoice back to me with the corrected VAT number.",
    "We will claim the VAT refund ourselves.",
    "Please check your junk folder, I replied yesterday.",
    "How many times per year do you deliver to Norway?",
    "No reply needed, just for your information.",
    "We haven't received any complaints from our staff since the installation.",
    "Still no problem on our side, we can meet Thursday.",
    "Sorry it took me too long to reply.",
    "We do not order in bulk, only single units.",
    "We need the goods on time for our trade fair.",
    "We rated your service 4.5 stars internally.",
    "Will the delivery be late?",
    "What happens if the unit is defective?",
    "Can I return the item if it doesn't fit?",
    "Will it be delivered on time for the 3.2 release?",
    "Is it as described on www.example.com?",
    "If a unit is defective we will send it back to you.",
])
def test_ordinary_business_emails_have_no_phrase(text):
    """A seller's everyday mail (contracts, calls, invoices, a prospect's questions and
    conditions) is no complaint and no praise."""
    assert phrase_score(text) == (0.0, []), phrase_score(text)


@pytest.mark.parametrize("text, polarity", [
    ("We never got a refund.", -1.0),
    ("We are still without a refund.", -1.0),
    ("Why is it still not working?", -1.0),  # the complaint asked as a question
    ("How many times do I have to ask for the invoice?", -1.0),
    ("Everything arrived on time, could you send the invoice?", 1.0),  # the question is another clause
    ("I can't believe it arrived on time!", 1.0),  # "can't believe" negates nothing
    ("We would never buy anything else!", 1.0),
    ("The shipment was not on time.", -1.0),
])
def test_complaints_and_praise_in_harder_shapes(text, polarity):
    assert phrase_score(text)[0] == polarity, phrase_score(text)


def test_evidence_is_the_occurrence_that_counted_and_keeps_its_negation():
    # the first "arrived on time" is asked about, the second one is a fact
    assert phrase_score("Did it arrive on time? Yes: it arrived on time.")[1] == [("arrived on time", 1.0)]
    assert phrase_score("The parts were not delivered on time.")[1] == [("not delivered on time", -1.0)]


def test_the_lexicons_do_not_read_the_phrases_again():
    """"could not be happier" is no "not happy" for VADER, "hoping for more" no "hoping"."""
    model = SentimentModel()
    happy, chasing = model.analyze(["I could not be happier with it.", "I was hoping for more."])
    assert happy["label"] == "positive" and chasing["label"] == "negative"
    assert blank_phrases("I could not be happier.", phrase_matches("I could not be happier.")).split() == ["I", "."]


def test_formulas_are_stripped_only_where_they_are_formulas():
    assert strip_formulas("Your help was invaluable.") == "Your help was invaluable."
    assert strip_formulas("There is no hope this will ever work.") == "There is no hope this will ever work."
    assert strip_formulas("The help-desk says it is fixed.") == "The help-desk says it is fixed."
    assert "help" not in strip_formulas("Could you help us? I hope you are well.").lower()
    assert "dear" not in strip_formulas("Dear Ann, thanks.").lower()
