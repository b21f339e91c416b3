"""Inbound stage core: what an inbound SMS changes (consent) and what it gets back (a reply).

STOP-family → opted out at once and one confirmation with no marketing in it; HELP → the
brand's help text; START/UNSTOP/YES → re-subscribe with a confirmation. A number that joins
by SMS is `pending` and gets a double opt-in question; only its "Y"/"YES" subscribes it.
STOP and HELP are answered even for numbers that never subscribed.
"""

from __future__ import annotations

from dataclasses import dataclass

from clarion.compliance.keywords import InboundIntent, normalize_inbound
from clarion.domain.brands import BrandInfo

_CONFIRM_WORDS = frozenset({"y", "yes"})


@dataclass(frozen=True, slots=True)
class InboundResponse:
    consent: str | None = None  # ledger status to append, if consent changes
    create_subscriber: bool = False
    reply: str | None = None


def opt_out_confirmation(brand: BrandInfo) -> str:
    return (
        f"{brand.name}: You are unsubscribed and will receive no more messages. "
        "Reply START to resubscribe."
    )


def help_reply(brand: BrandInfo) -> str:
    """The brand's help text, completed with what a HELP answer must carry (CTIA)."""
    if brand.help_text:
        text = brand.help_text.strip()
        if "rates may apply" not in text.lower():
            text += " Msg&data rates may apply."
        if "stop" not in text.lower():
            text += " Reply STOP to cancel."
        return text
    contact = f" Help: {brand.support_contact}." if brand.support_contact else ""
    return (
        f"{brand.name}: Recurring marketing texts.{contact} Msg&data rates may apply. "
        "Reply STOP to cancel."
    )


def double_opt_in_question(brand: BrandInfo) -> str:
    return (
        f"{brand.name}: Reply Y to confirm you want recurring marketing texts. Consent is not "
        "a condition of purchase. Msg&data rates may apply. Reply HELP for help, STOP to cancel."
    )


def subscribed_confirmation(brand: BrandInfo) -> str:
    return (
        f"{brand.name}: You are subscribed to recurring marketing texts. Msg&data rates may "
        "apply. Reply HELP for help, STOP to cancel."
    )


def respond(
    intent: InboundIntent, text: str, *, known: bool, consent: str | None, brand: BrandInfo
) -> InboundResponse:
    """The effect of one inbound message from a number whose current consent is `consent`
    (None when it has none); `known` says whether the number is a subscriber of the brand."""
    if intent is InboundIntent.OPT_OUT:
        return InboundResponse(
            consent="opted_out" if known and consent != "opted_out" else None,
            reply=opt_out_confirmation(brand),
        )
    if intent is InboundIntent.HELP:
        return InboundResponse(reply=help_reply(brand))
    if intent is InboundIntent.OPT_IN:
        word = normalize_inbound(text)
        if consent == "opted_in":
            return InboundResponse()
        if consent == "pending" and word in _CONFIRM_WORDS:
            return InboundResponse(consent="opted_in", reply=subscribed_confirmation(brand))
        if consent == "opted_out":
            return InboundResponse(consent="opted_in", reply=subscribed_confirmation(brand))
        return InboundResponse(
            consent=None if consent == "pending" else "pending",
            create_subscriber=not known,
            reply=double_opt_in_question(brand),
        )
    return InboundResponse()
