"""The compliance gate: the last decision before a marketing message is handed to a provider.

Pure: the caller reads current state (consent, suppression, recent sends) at the moment of
sending and passes it in; `decide` says send, defer (until when) or drop (and why).
Order of checks, strictest reason first: expiry, consent, suppression, frequency, window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from clarion.compliance.windows import presumed_region, sending_window


class Reason(StrEnum):
    """Why a recipient was not sent to (recorded on the message, counted in reports)."""

    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    SUPPRESSED = "suppressed"
    FREQUENCY_CAPPED = "frequency_capped"  # smart sending: messaged within the last N hours
    STATE_CAP = "state_frequency_cap"  # FL/OK/MD: at most 3 per 24 h
    QUIET_HOURS = "quiet_hours_deferred"
    EXPIRED = "expired"


class Action(StrEnum):
    SEND = "send"
    DEFER = "defer"
    DROP = "drop"


# States that cap marketing messages at 3 per rolling 24 hours (COMPLIANCE.md).
STATE_CAP_PER_24H: dict[str, int] = {"FL": 3, "OK": 3, "MD": 3}
DEFAULT_SMART_SENDING_H = 16.0


@dataclass(frozen=True, slots=True)
class GateInput:
    phone: str
    at: datetime  # aware; the moment of the check
    consent: str | None  # current SMS consent: "opted_in", "opted_out", "pending" or None
    suppression: str | None = None  # reason, when the number is suppressed (brand or global)
    recent_sends: Sequence[datetime] = field(default_factory=tuple)  # marketing, last 24 h
    timezone: str | None = None  # the subscriber's stored zone, if known
    region: str | None = None  # the subscriber's state, if known
    expires_at: datetime | None = None
    smart_sending_h: float = DEFAULT_SMART_SENDING_H


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: Reason | None = None
    not_before: datetime | None = None  # for DEFER
    detail: str | None = None  # e.g. the window rule or the suppression reason


SEND = Decision(Action.SEND)


def decide(g: GateInput) -> Decision:
    """Send, defer or drop one message. Never SEND without current consent or outside the
    recipient's sending window; never defer past the message's expiry."""
    if g.expires_at is not None and g.at >= g.expires_at:
        return Decision(Action.DROP, Reason.EXPIRED)
    if g.consent == "opted_out":
        return Decision(Action.DROP, Reason.OPTED_OUT)
    if g.consent != "opted_in":
        return Decision(Action.DROP, Reason.NO_CONSENT, detail=g.consent)
    if g.suppression is not None:
        return Decision(Action.DROP, Reason.SUPPRESSED, detail=g.suppression)
    if g.smart_sending_h > 0:
        since = g.at - timedelta(hours=g.smart_sending_h)
        if any(since < t <= g.at for t in g.recent_sends):
            return Decision(Action.DROP, Reason.FREQUENCY_CAPPED)
    region = g.region or presumed_region(g.phone)
    cap = STATE_CAP_PER_24H.get(region or "")
    if cap is not None:
        day_ago = g.at - timedelta(hours=24)
        if sum(1 for t in g.recent_sends if day_ago < t <= g.at) >= cap:
            return Decision(Action.DROP, Reason.STATE_CAP, detail=region)
    window = sending_window(g.phone, g.at, tz=g.timezone, region=region)
    if window.allowed:
        return SEND
    if g.expires_at is not None and window.next_allowed_at >= g.expires_at:
        return Decision(Action.DROP, Reason.EXPIRED, detail=window.rule)
    return Decision(Action.DEFER, Reason.QUIET_HOURS, window.next_allowed_at, window.rule)
