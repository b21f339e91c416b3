"""Inbound SMS keywords: opt-out (CTIA lists and FCC 24-24 plain language), HELP, opt-in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clarion.compliance.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    InboundIntent,
    classify_inbound,
)

# Every way a handset may dress a bare keyword: case, surrounding white space, trailing
# punctuation (repeated, mixed, after a space).
DRESSINGS = (
    "{}",
    "{lower}",
    "{title}",
    "{mixed}",
    "  {}  ",
    "\t{lower}\n",
    "\u00a0{}\u00a0",
    "{}.",
    "{lower}!!!",
    "{title}?",
    "{}?!",
    "{mixed} ,;:",
    "{} !",
    "  {lower}...  ",
    "{}…",
    '"{}"',
)


def mixed_case(word: str) -> str:
    return "".join(c.lower() if i % 2 else c.upper() for i, c in enumerate(word))


def dress(template: str, keyword: str) -> str:
    return template.format(
        keyword, lower=keyword.lower(), title=keyword.title(), mixed=mixed_case(keyword)
    )


def dressed(keywords: frozenset[str]) -> list[str]:
    return [dress(t, k) for k in sorted(keywords) for t in DRESSINGS]


def test_the_keyword_lists_are_the_ones_compliance_names() -> None:
    assert {
        "STOP",
        "STOPALL",
        "STOP ALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "OPT OUT",
        "OPT-OUT",
        "REMOVE",
    } == OPT_OUT_KEYWORDS
    assert {"HELP", "INFO"} == HELP_KEYWORDS
    assert {"START", "UNSTOP", "YES", "Y", "JOIN", "SUBSCRIBE"} == OPT_IN_KEYWORDS


@pytest.mark.parametrize("text", dressed(OPT_OUT_KEYWORDS))
def test_every_opt_out_keyword_in_any_dress_opts_out(text: str) -> None:
    assert classify_inbound(text) is InboundIntent.OPT_OUT


@pytest.mark.parametrize("text", dressed(HELP_KEYWORDS))
def test_a_bare_help_keyword_in_any_dress_asks_for_help(text: str) -> None:
    assert classify_inbound(text) is InboundIntent.HELP


@pytest.mark.parametrize("text", dressed(OPT_IN_KEYWORDS))
def test_a_bare_opt_in_keyword_in_any_dress_opts_in(text: str) -> None:
    assert classify_inbound(text) is InboundIntent.OPT_IN


@pytest.mark.parametrize(
    "text", ["OPT   OUT", "opt\tout", "Stop \n ALL", " stop   all!! ", "OPT\u2003OUT"]
)
def test_internal_white_space_runs_collapse(text: str) -> None:
    assert classify_inbound(text) is InboundIntent.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "Stop sending me these",
        "unsubscribe me",
        "remove me from your list",
        "take me off this list",
        "don't text me anymore",
        "don’t text me anymore",
        "dont text me",
        "do not contact me",
        "no more texts",
        "opt me out",
        "I want to opt out",
        "stop please",
        "Please stop",
        "STOP!!!",
        "stop now thanks",
        "stop it",
        "leave me alone",
        "cancel my subscription",
        "quit texting me",
        "Stop. Who is this?",
        "Unsubscribe! I never signed up",
        "how do I opt out?",
        "I'd like to unsubscribe",
        "I don't want any more texts",
        "never message me again",
        "you won't stop calling me",
        "stop sending texts about sales",
        "end these messages",
        "stop all texts",
        "unsubscribe from this list",
        "Wrong number",
    ],
)
def test_plain_language_revocations_opt_out(text: str) -> None:
    assert classify_inbound(text) is InboundIntent.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "the stopwatch I ordered",
        "when does the sale end?",
        "can I cancel my order?",
        "is there a bus stop nearby",
        "I can't stop smiling",
        "remove the item from my cart",
        "stop sending the wrong size",
        "please don't stop texting me",
        "I don't want to unsubscribe",
        "end-of-season sale?",
        "Yes I got it thanks, what time do you open?",
        "yes please",
        "help me find my order",
        "info on the new menu?",
        "?stop",
        "",
        "   ",
        "!!!",
    ],
)
def test_a_keyword_word_in_another_sense_is_other(text: str) -> None:
    assert classify_inbound(text) is InboundIntent.OTHER


def test_opt_out_wins_over_an_opt_in_word_in_the_same_message() -> None:
    assert classify_inbound("yes. stop texting me") is InboundIntent.OPT_OUT


WHITESPACE = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=4)
PUNCTUATION = st.text(alphabet=".!?,;: ", max_size=5)


@st.composite
def dressed_opt_out(draw: st.DrawFn) -> str:
    keyword = draw(st.sampled_from(sorted(OPT_OUT_KEYWORDS)))
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in keyword)
    spaced = cased.replace(" ", draw(WHITESPACE.filter(bool)))
    return draw(WHITESPACE) + spaced + draw(PUNCTUATION) + draw(WHITESPACE)


@given(dressed_opt_out())
def test_any_dressed_opt_out_keyword_opts_out(text: str) -> None:
    assert classify_inbound(text) is InboundIntent.OPT_OUT
