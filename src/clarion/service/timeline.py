"""A brand's subscribers for the web UI: found by phone or email (exactly, or by how it
starts), and one subscriber's timeline — messages, clicks, events and consent, newest first.
Every read is bounded and goes through an index, whatever the size of the brand."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from clarion.domain.subscribers import Subscriber, email_of, phone_of
from clarion.errors import InvalidInput
from clarion.service.context import Services
from clarion.store import compliance, subscribers, timeline
from clarion.store.timeline import Found

__all__ = ["Entry", "Found", "Timeline", "search", "subscriber_timeline"]

MAX_RESULTS = 25
MAX_QUERY_CHARS = 254
MIN_PREFIX_CHARS = 3  # a shorter start matches too much of a large list to be of use
PER_KIND = 50  # the newest of each kind a timeline shows
_PHONE_LIKE = re.compile(r"\+?[\d\s().-]+")


async def search(svc: Services, brand_id: int, query: str) -> list[Found]:
    """The brand's subscribers whose phone or email is `query` or starts with it (an email
    when it has a letter or an @, else a phone: `+1 512 555` and `1512555` alike), at most
    `MAX_RESULTS`, exact match first; with no query, the newest subscribers."""
    q = query.strip()
    if not q:
        return await timeline.newest(svc.pool, brand_id, MAX_RESULTS)
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidInput(f"at most {MAX_QUERY_CHARS} characters", field="q")
    if _PHONE_LIKE.fullmatch(q):
        column, prefix = "phone", "+" + re.sub(r"\D", "", q)
        exact = _exact(phone_of, q)
    else:
        column, prefix = "email", q.lower()
        exact = _exact(email_of, q)
    found: list[Found] = []
    if exact is not None:
        by = {"phone": exact} if column == "phone" else {"email": exact}
        found = [_found(s) for s in await subscribers.find(svc.pool, brand_id, **by)]
    if len(prefix.lstrip("+")) >= MIN_PREFIX_CHARS:
        seen = {f.id for f in found}
        more = await timeline.search(svc.pool, brand_id, column, prefix, MAX_RESULTS)
        found += [f for f in more if f.id not in seen]
    return found[:MAX_RESULTS]


def _exact(parse: Callable[[str], str | None], q: str) -> str | None:
    """`q` as the column stores it (E.164, lowercase), or None when it is not whole."""
    try:
        return parse(q)
    except InvalidInput:
        return None


def _found(s: Subscriber) -> Found:
    return Found(
        id=s.id, phone=s.phone, email=s.email, first_name=s.first_name,
        last_name=s.last_name, created_at=s.created_at,
    )  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """A moment of a subscriber's timeline: what happened (`kind`: message, click, event,
    consent), a title and details, and the campaign it belongs to, if any."""

    at: datetime
    kind: str
    title: str
    detail: str
    campaign_id: int | None = None
    campaign: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Timeline:
    subscriber: Subscriber
    entries: list[Entry]  # newest first
    clipped: bool  # some kind had more than `PER_KIND`: only its newest are shown


async def subscriber_timeline(svc: Services, brand_id: int, subscriber_id: int) -> Timeline:
    """The brand's subscriber (`NotFound` for another brand's) and what happened to them:
    the newest `PER_KIND` of their messages, clicks, events and consent entries."""
    s = await subscribers.get(svc.pool, brand_id, subscriber_id)
    sent = await timeline.messages(svc.pool, brand_id, subscriber_id, PER_KIND)
    clicked = await timeline.clicks(svc.pool, brand_id, subscriber_id, PER_KIND)
    done = await timeline.events(svc.pool, brand_id, subscriber_id, PER_KIND)
    ledger = await compliance.consent_ledger(svc.pool, brand_id, subscriber_id)
    entries = [
        *(
            Entry(
                at=m.sent_at or m.created_at, kind="message",
                title=f"{m.channel.upper()} {m.kind} message",
                detail=f"error {m.error_code}" if m.error_code else "",
                campaign_id=m.campaign_id, campaign=m.campaign, status=m.status,
            )
            for m in sent
        ),
        *(
            Entry(
                at=k.last_at, kind="click", title=f"Clicked {k.url}",
                detail=f"{k.clicks} click{'s' if k.clicks != 1 else ''}, first"
                f" {k.first_at:%Y-%m-%d %H:%M} UTC",
                campaign_id=k.campaign_id, campaign=k.campaign,
            )
            for k in clicked
        ),
        *(
            Entry(
                at=e.occurred_at, kind="event", title=e.type,
                detail="" if e.value is None else f"value {e.value:.2f}",
            )
            for e in done
        ),
        *(
            Entry(
                at=c.created_at, kind="consent",
                title=f"{c.channel.upper()} {c.status.replace('_', ' ')}",
                detail=c.source + (f" (texted {c.keyword})" if c.keyword else ""),
                status=c.status,
            )
            for c in ledger[-PER_KIND:]
        ),
    ]  # fmt: skip
    entries.sort(key=lambda e: e.at, reverse=True)
    clipped = any(len(x) >= PER_KIND for x in (sent, clicked, done)) or len(ledger) > PER_KIND
    return Timeline(subscriber=s, entries=entries, clipped=clipped)
