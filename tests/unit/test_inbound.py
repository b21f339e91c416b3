"""Inbound stage core: what an inbound SMS changes (consent) and what it gets back (a reply),
with the intent as `classify_inbound` reads it from the raw text."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from clarion.compliance.keywords import OPT_OUT_KEYWORDS, InboundIntent, classify_inbound
from clarion.domain.brands import BrandInfo
from clarion.pipeline.inbound import (
    InboundResponse,
    double_opt_in_question,
    help_reply,
    opt_out_confirmation,
    respond,
    subscribed_confirmation,
)

# No "off" anywhere in the name, so the no-marketing check on the opt-out reply means something.
BRAND = BrandInfo(id=7, name="Acme Bakery", sender="+15550001111")
BRAND_WITH_CONTACT = BrandInfo(
    id=8, name="Zed Books", sender="+15550002222", support_contact="help@zed.example"
)
BRAND_WITH_HELP_TEXT = BrandInfo(
    id=9,
    name="Quill Pens",
    sender="+15550003333",
    help_text="Quill Pens: pen alerts, 4 msgs/mo. Questions? quill.example/help",
)

CONSENTS = (None, "pending", "opted_in", "opted_out")
OPT_IN_WORDS = ("START", "UNSTOP", "YES", "Y", "JOIN", "SUBSCRIBE")

ReplyKind = Callable[[BrandInfo], str] | None


def inbound(text: str, *, known: bool, consent: str | None, brand: BrandInfo = BRAND):
    return respond(classify_inbound(text), text, known=known, consent=consent, brand=brand)


@pytest.mark.parametrize(
    ("text", "known", "consent", "new_consent", "create_subscriber", "reply_kind"),
    [
        # STOP family
        pytest.param("STOP", True, "opted_in", "opted_out", False, opt_out_confirmation,
                     id="stop-known-opted-in"),
        pytest.param("stop please", True, "opted_in", "opted_out", False, opt_out_confirmation,
                     id="plain-language-stop-known-opted-in"),
        pytest.param("STOP", True, "pending", "opted_out", False, opt_out_confirmation,
                     id="stop-known-pending"),
        pytest.param("STOP", False, None, None, False, opt_out_confirmation,
                     id="stop-unknown-number"),
        pytest.param("Unsubscribe", False, None, None, False, opt_out_confirmation,
                     id="unsubscribe-unknown-number"),
        pytest.param("STOP", True, "opted_out", None, False, opt_out_confirmation,
                     id="repeated-stop-opted-out"),
        # HELP
        pytest.param("HELP", True, "opted_in", None, False, help_reply, id="help-opted-in"),
        pytest.param("help", True, "opted_out", None, False, help_reply, id="help-opted-out"),
        pytest.param("INFO", True, "pending", None, False, help_reply, id="info-pending"),
        pytest.param("HELP", False, None, None, False, help_reply, id="help-unknown-number"),
        # Re-subscribe
        pytest.param("START", True, "opted_out", "opted_in", False, subscribed_confirmation,
                     id="start-opted-out"),
        pytest.param("unstop", True, "opted_out", "opted_in", False, subscribed_confirmation,
                     id="unstop-opted-out"),
        # Joining by SMS: double opt-in
        pytest.param("START", False, None, "pending", True, double_opt_in_question,
                     id="start-unknown-number"),
        pytest.param("JOIN", False, None, "pending", True, double_opt_in_question,
                     id="join-unknown-number"),
        pytest.param("Subscribe", False, None, "pending", True, double_opt_in_question,
                     id="subscribe-unknown-number"),
        pytest.param("Y", True, "pending", "opted_in", False, subscribed_confirmation,
                     id="y-pending"),
        pytest.param("yes", True, "pending", "opted_in", False, subscribed_confirmation,
                     id="yes-pending"),
        pytest.param("YES!", True, "pending", "opted_in", False, subscribed_confirmation,
                     id="yes-bang-pending"),
        pytest.param("  y.  ", True, "pending", "opted_in", False, subscribed_confirmation,
                     id="padded-y-pending"),
        pytest.param("START", True, "pending", None, False, double_opt_in_question,
                     id="start-pending-asks-again"),
        pytest.param("JOIN", True, "pending", None, False, double_opt_in_question,
                     id="join-pending-asks-again"),
        # Already subscribed: nothing
        pytest.param("START", True, "opted_in", None, False, None, id="start-opted-in"),
        pytest.param("YES", True, "opted_in", None, False, None, id="yes-opted-in"),
        # Anything else: nothing
        pytest.param("what time do you open?", True, "opted_in", None, False, None,
                     id="other-opted-in"),
        pytest.param("Yes I got it thanks", True, "pending", None, False, None,
                     id="chatty-yes-pending"),
        pytest.param("hello", False, None, None, False, None, id="other-unknown-number"),
    ],
)  # fmt: skip
def test_an_inbound_message_changes_consent_and_gets_the_reply_the_table_says(
    text: str,
    known: bool,
    consent: str | None,
    new_consent: str | None,
    create_subscriber: bool,
    reply_kind: ReplyKind,
) -> None:
    result = inbound(text, known=known, consent=consent)
    expected_reply = reply_kind(BRAND) if reply_kind is not None else None
    assert result == InboundResponse(
        consent=new_consent, create_subscriber=create_subscriber, reply=expected_reply
    )


def test_the_opt_out_confirmation_names_the_brand_and_how_to_resubscribe_without_marketing() -> (
    None
):
    reply = inbound("STOP", known=True, consent="opted_in").reply
    assert reply is not None
    assert BRAND.name in reply
    assert "unsubscribed" in reply
    assert "START" in reply
    assert "%" not in reply
    assert "off" not in reply.lower()


def test_a_stop_from_a_number_that_never_subscribed_changes_nothing_but_is_still_confirmed() -> (
    None
):
    result = inbound("STOP", known=False, consent=None)
    assert result.consent is None
    assert result.create_subscriber is False
    assert result.reply == opt_out_confirmation(BRAND)


@pytest.mark.parametrize(("known", "consent"), [(False, None), *((True, c) for c in CONSENTS)])
def test_help_from_anyone_answers_with_rates_and_how_to_stop(
    known: bool, consent: str | None
) -> None:
    result = inbound("HELP", known=known, consent=consent)
    assert result.consent is None
    assert result.create_subscriber is False
    assert result.reply is not None
    assert BRAND.name in result.reply
    assert "Msg&data rates may apply" in result.reply
    assert "STOP" in result.reply


def test_the_default_help_reply_gives_the_support_contact_when_the_brand_has_one() -> None:
    reply = inbound("HELP", known=False, consent=None, brand=BRAND_WITH_CONTACT).reply
    assert reply is not None
    assert "help@zed.example" in reply
    assert "Msg&data rates may apply" in reply
    assert "STOP" in reply


def test_help_answers_with_the_brands_own_help_text_when_it_has_one() -> None:
    reply = inbound("HELP", known=True, consent="opted_in", brand=BRAND_WITH_HELP_TEXT).reply
    assert reply is not None
    assert BRAND_WITH_HELP_TEXT.help_text in reply


def test_resubscribing_from_opted_out_is_confirmed_with_you_are_subscribed() -> None:
    result = inbound("START", known=True, consent="opted_out")
    assert result.consent == "opted_in"
    assert result.reply is not None
    assert "You are subscribed" in result.reply
    assert BRAND.name in result.reply
    assert "STOP" in result.reply


@pytest.mark.parametrize("word", ["START", "JOIN"])
def test_joining_from_an_unknown_number_creates_a_pending_subscriber_and_asks_to_reply_y(
    word: str,
) -> None:
    result = inbound(word, known=False, consent=None)
    assert result.create_subscriber is True
    assert result.consent == "pending"
    assert result.reply is not None
    assert "Reply Y" in result.reply
    assert BRAND.name in result.reply
    assert "STOP" in result.reply


@pytest.mark.parametrize("word", ["Y", "y", "yes", "Yes", "YES!", "yes?!", " Y. "])
def test_a_pending_subscriber_confirming_with_y_or_yes_is_opted_in_and_told_so(word: str) -> None:
    result = inbound(word, known=True, consent="pending")
    assert result.consent == "opted_in"
    assert result.create_subscriber is False
    assert result.reply is not None
    assert "You are subscribed" in result.reply


@pytest.mark.parametrize("word", ["START", "UNSTOP", "JOIN", "SUBSCRIBE"])
def test_a_non_confirming_opt_in_word_from_pending_asks_again_without_a_consent_row(
    word: str,
) -> None:
    result = inbound(word, known=True, consent="pending")
    assert result.consent is None
    assert result.create_subscriber is False
    assert result.reply == double_opt_in_question(BRAND)


@pytest.mark.parametrize("word", OPT_IN_WORDS)
def test_any_opt_in_word_from_an_opted_in_subscriber_does_nothing(word: str) -> None:
    assert inbound(word, known=True, consent="opted_in") == InboundResponse()


@pytest.mark.parametrize("consent", CONSENTS)
@pytest.mark.parametrize("known", [True, False])
def test_other_text_never_changes_consent_or_gets_a_reply(known: bool, consent: str | None) -> None:
    result = respond(
        InboundIntent.OTHER, "can I cancel my order?", known=known, consent=consent, brand=BRAND
    )
    assert result == InboundResponse()


# Text that classifies as opt-out often enough for the property below: keywords and
# plain-language revocations with random dressing, mixed with arbitrary text.
_REVOCATIONS = (
    *OPT_OUT_KEYWORDS,
    "please stop texting me",
    "remove me from your list",
    "Stop. Who is this",
    "wrong number",
    "no more texts",
    "cancel my alerts",
)
_opt_out_like = st.builds(
    lambda pre, word, post, upper: pre + (word.upper() if upper else word.lower()) + post,
    st.sampled_from(["", " ", "  ", "\t", '"', "please "]),
    st.sampled_from(_REVOCATIONS),
    st.sampled_from(["", ".", "!!", " ?", " now", "…", " thanks"]),
    st.booleans(),
)


@given(
    text=st.one_of(_opt_out_like, st.text(max_size=40)),
    known=st.booleans(),
    consent=st.sampled_from(CONSENTS),
)
def test_an_opt_out_never_opts_anyone_in_and_is_always_answered(
    text: str, known: bool, consent: str | None
) -> None:
    intent = classify_inbound(text)
    assume(intent is InboundIntent.OPT_OUT)
    result = respond(intent, text, known=known, consent=consent, brand=BRAND)
    assert result.consent in (None, "opted_out")
    assert result.create_subscriber is False
    assert result.reply == opt_out_confirmation(BRAND)


def test_a_brands_own_help_text_is_completed_with_rates_and_stop_instructions() -> None:
    brand = BrandInfo(id=1, name="Acme", sender="+15125550100", help_text="Acme: call 555-0100.")
    reply = respond(classify_inbound("HELP"), "HELP", known=False, consent=None, brand=brand).reply
    assert reply == "Acme: call 555-0100. Msg&data rates may apply. Reply STOP to cancel."


@pytest.mark.parametrize("text", ['"Y"', "‘yes’", "Yes…", "Y . !", "YES!"])
def test_a_pending_number_confirms_with_any_dressed_yes(text: str) -> None:
    brand = BrandInfo(id=1, name="Acme", sender="+15125550100")
    r = respond(classify_inbound(text), text, known=True, consent="pending", brand=brand)
    assert r.consent == "opted_in"
