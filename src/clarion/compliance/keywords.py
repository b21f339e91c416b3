"""Classify an inbound SMS reply: opt-out, help, opt-in, or anything else.

Sources (see COMPLIANCE.md, "SMS: consent and keywords"):
- the opt-out, HELP and opt-in keyword lists of CTIA, Twilio and AWS, matched on the whole
  message, case-insensitive, trimmed;
- FCC 24-24 (47 CFR §64.1200(a)(10), in force 2025-04-11): consent may be revoked "in any
  reasonable manner", so plain-language revocations count too.

Decisions, in the order `classify_inbound` applies them:

1. Normalisation. Surrounding white space and surrounding quote marks are dropped, trailing
   punctuation (``. ! ? , ; : …``, repeated, mixed with white space) is dropped, internal
   runs of white space become one space, curly apostrophes become ``'``, and case is
   ignored. Leading punctuation is kept ("?stop" is not a keyword).
2. Opt-out wins over everything else: an exact opt-out keyword, or a revocation phrase
   anywhere in the message ("please stop texting me", "remove me from your list",
   "don't text me anymore", "no more texts", "leave me alone", "wrong number"...).
   Phrases are whole-word patterns, never a single word found anywhere: "can I cancel my
   order?", "when does the sale end?", "is there a bus stop nearby" and "I can't stop
   smiling" are `OTHER`. A keyword followed by a sentence break ("Stop. Who is this") is
   a revocation; a negated phrase ("please don't stop texting me") is not.
3. HELP only when the whole message is HELP or INFO: "help me find my order" is a
   customer-service question (`OTHER`), not a request for the HELP reply.
4. Opt-in only when the whole message is an opt-in keyword (START, UNSTOP, YES, Y, JOIN,
   SUBSCRIBE): "Yes I got it thanks, what time do you open?" is `OTHER`, so a chatty reply
   never re-subscribes anyone.
5. Everything else is `OTHER` (routed to a human inbox, never acted on).

Erring towards opt-out is deliberate: a missed revocation is a TCPA violation per message,
a wrongly honoured one costs a subscriber who can reply START.
"""

from __future__ import annotations

import re
from enum import StrEnum


class InboundIntent(StrEnum):
    """What an inbound reply asks for."""

    OPT_OUT = "opt_out"
    HELP = "help"
    OPT_IN = "opt_in"
    OTHER = "other"


# Whole-message opt-out keywords: CTIA / Twilio / AWS lists (COMPLIANCE.md). "STOP ALL" is the
# spaced form of STOPALL that handsets' autocorrect produces.
OPT_OUT_KEYWORDS: frozenset[str] = frozenset(
    {
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
    }
)
# Whole-message HELP keywords (CTIA): answer with brand, contact, frequency, rates, STOP.
HELP_KEYWORDS: frozenset[str] = frozenset({"HELP", "INFO"})
# Whole-message re-subscribe keywords (CTIA / Twilio: START, UNSTOP, YES; JOIN, SUBSCRIBE and
# the double opt-in reply Y are common programme keywords).
OPT_IN_KEYWORDS: frozenset[str] = frozenset({"START", "UNSTOP", "YES", "Y", "JOIN", "SUBSCRIBE"})

_OPT_OUT_LOWER = frozenset(k.lower() for k in OPT_OUT_KEYWORDS)
_HELP_LOWER = frozenset(k.lower() for k in HELP_KEYWORDS)
_OPT_IN_LOWER = frozenset(k.lower() for k in OPT_IN_KEYWORDS)

# --- Plain-language revocations (FCC 24-24, "any reasonable manner") -----------------------
# Building blocks, matched against the normalised (lower-case) message.
_KEYWORD = r"(?:stop ?all|stop|unsubscribe|cancel|end|quit|revoke|opt[- ]?out|remove)"
_POLITE = (
    r"(?:please|pls|plz|kindly|now|right now|asap|immediately|thanks|thank you|thx|ty|ok|okay)"
)
_THING = (
    r"(?:texts?|text messages?|messages?|msgs?|sms|alerts?|notifications?|promotions?|promos?"
    r"|ads?|adverts?|advertising|marketing|spam|these|this|them|it|that|all)"
)
# Gerunds of contacting someone ("sending" has its own phrase: "stop sending the wrong size"
# is about an order).
_MESSAGING = (
    r"(?:texting|messaging|msging|contacting|calling|emailing|spamming|bothering|harassing"
    r"|smsing)"
)
_CONTACT_VERB = r"(?:text|message|msg|contact|call|email|sms|spam|bother|harass)"
_NOT = r"(?:don'?t|do not|never)"
# Not after a negation: "please don't stop texting me" is not a revocation. (Fixed-width
# look-behinds, one per form.)
_NOT_BEFORE = r"(?<!don't )(?<!dont )(?<!do not )(?<!never )"
_NOUN = (
    r"(?:texts?|text messages?|messages|msgs|sms|alerts|notifications|promotions|promos|ads"
    r"|marketing|spam)"
)
# A sentence break after a leading keyword: "Stop. Who is this", "STOP - wrong person".
_BREAK = r"(?:[.!?,;:]|\s-+\s)"

# (name, pattern): each names one way people revoke consent; `re.search`, whole words.
_REVOCATION_PHRASES: tuple[tuple[str, str], ...] = (
    # "stop please", "please stop", "STOP now thanks", "stop it", "unsubscribe all"
    ("polite keyword", rf"^(?:{_POLITE} )*{_KEYWORD}(?: (?:{_THING}|{_POLITE}))*$"),
    # "Stop. Who is this?", "Unsubscribe! I never signed up"
    ("keyword then sentence break", rf"^{_KEYWORD}\s*{_BREAK}"),
    # "please stop texting me", "quit texting me", "you won't stop calling"
    ("stop contacting", rf"{_NOT_BEFORE}\b(?:stop|quit|cease) {_MESSAGING}\b"),
    # "Stop sending me these", "stop sending texts about sales"; not "stop sending the wrong
    # size" (a complaint about an order)
    (
        "stop sending",
        rf"{_NOT_BEFORE}\b(?:stop|quit|cease) sending(?: me| us)?"
        rf"(?:(?: (?:{_THING}|{_POLITE}|any ?more))*\s*(?:[.!?,;]|$)"
        rf"| (?:all |the |these |this |your |any )?{_NOUN}\b)",
    ),
    # "stop receiving these", "I want to stop getting texts"
    ("stop receiving", rf"{_NOT_BEFORE}\b(?:stop|quit) (?:receiving|getting)\b"),
    # "stop all texts", "end these messages", "cancel my alerts"; not "cancel my order"
    (
        "stop the texts",
        rf"{_NOT_BEFORE}\b(?:stop|end|quit|cancel)"
        rf" (?:all |the |these |this |your |my |all the |all of these )?{_NOUN}\b",
    ),
    # "don't text me anymore", "do not contact me", "never message me again"
    ("do not contact", rf"\b{_NOT} (?:ever )?{_CONTACT_VERB} (?:me|us)\b"),
    # "don't send me any more texts", "do not send me these"
    ("do not send", rf"\b{_NOT} send (?:me|us) (?:any ?more|more|{_THING})\b"),
    # "I don't want any more texts", "do not want these messages"
    (
        "do not want",
        rf"\b{_NOT} want (?:any ?more |more |these |this |your |any |the )?{_NOUN}\b",
    ),
    # "no more texts", "no more messages please", "no further texting"
    ("no more", rf"\bno (?:more|further) (?:{_NOUN}|texting|messaging)\b"),
    # "unsubscribe me", "remove me from your list", "remove my number", "opt me out"
    ("remove me", r"\b(?:unsubscribe|remove|delete) (?:me|my number|this number)\b"),
    ("take me off", r"\btake (?:me|my number|this number) off\b"),
    ("opt me out", r"\bopt (?:me|us) out\b"),
    ("unsubscribe from", r"\bunsubscribe (?:from|to)\b"),
    # "I want to opt out", "I'd like to unsubscribe", "how do I opt out", "wish to be removed";
    # not "I don't want to unsubscribe"
    (
        "want to opt out",
        rf"{_NOT_BEFORE}\b(?:want|wish|like|need|trying|going|how) (?:do i |can i |to )?"
        r"(?:unsubscribe|opt[- ]?out|be removed|be taken off"
        r"|cancel (?:my |the |this )?(?:subscription|texts|messages|sms|alerts))\b",
    ),
    # "cancel my subscription", "cancel the text subscription"
    ("cancel subscription", r"\bcancel (?:my |the |this )?(?:text |sms )?subscription\b"),
    ("leave me alone", r"\bleave (?:me|us) alone\b"),
    # A reassigned or mistyped number: whoever answers never consented.
    ("wrong number", r"\bwrong (?:number|person|#)(?!\w)"),
)
_REVOCATIONS = tuple(re.compile(pattern) for _, pattern in _REVOCATION_PHRASES)

_WHITESPACE = re.compile(r"\s+")
_QUOTES = "\"'“”‘’«»"
_TRAILING = re.compile(r"[\s.!?,;:…" + re.escape(_QUOTES) + r"]+$")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})


def normalize_inbound(text: str) -> str:
    """The message as keywords are matched: lower case, white space collapsed, surrounding
    quotes and trailing punctuation removed, curly apostrophes straightened."""
    collapsed = _WHITESPACE.sub(" ", text).strip().strip(_QUOTES).strip()
    return _TRAILING.sub("", collapsed).translate(_APOSTROPHES).lower()


def classify_inbound(text: str) -> InboundIntent:
    """What an inbound SMS asks for; see the module docstring for each decision.

    Opt-out: an exact opt-out keyword or a plain-language revocation. Help: exactly HELP or
    INFO. Opt-in: exactly START, UNSTOP, YES, Y, JOIN or SUBSCRIBE. Anything else: `OTHER`.
    """
    message = normalize_inbound(text)
    if not message:
        return InboundIntent.OTHER
    if message in _OPT_OUT_LOWER or any(p.search(message) for p in _REVOCATIONS):
        return InboundIntent.OPT_OUT
    if message in _HELP_LOWER:
        return InboundIntent.HELP
    if message in _OPT_IN_LOWER:
        return InboundIntent.OPT_IN
    return InboundIntent.OTHER
