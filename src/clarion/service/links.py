"""Tracked short links, followed: `GET /l/{code}` redirects to the link's URL and records the
click (once per recipient, link and kind, counted; `pipeline.links` says what a code is and
who counts as a person).

The redirect answers without waiting for Postgres: a code is decrypted in process, links
and link domains are cached, and clicks wait in memory for at most `FLUSH_S` before one
statement writes them all. A process that dies loses the clicks of that moment; a click is a
measure, not a ledger fact (consent and orders are written before they are acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from clarion.domain.ids import campaign_message_id
from clarion.domain.ports import Clock
from clarion.errors import InvalidInput, Refused
from clarion.pipeline import links
from clarion.service.context import Services
from clarion.store import campaigns
from clarion.store import links as store
from clarion.store.links import ClickRow, LinkClicks, LinkRow

log = logging.getLogger(__name__)

FLUSH_S = 0.05  # clicks wait at most this long in memory
MAX_PENDING = 100_000  # beyond this many unwritten clicks, new ones are counted, not kept
_LINKS_KEPT = 50_000
_DOMAIN_TTL_S = 30.0  # a brand's new link domain is honoured within this time


@dataclass
class Clicks:
    """Clicks not yet written, and the task that writes them."""

    svc: Services
    pending: list[ClickRow] = field(default_factory=list)
    dropped: int = 0

    def add(self, click: ClickRow) -> None:
        if len(self.pending) >= MAX_PENDING:  # Postgres is not keeping up: shed, loudly
            self.dropped += 1
            return
        self.pending.append(click)

    async def flush(self) -> int:
        batch, self.pending = self.pending, []
        if batch:
            try:
                await store.record_clicks(self.svc.pool, batch)
            except Exception:
                # kept for the next flush (bounded by MAX_PENDING)
                self.pending[:0] = batch[: MAX_PENDING - len(self.pending)]
                raise
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        """Write the clicks every `FLUSH_S` until `stop`, then the last of them."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_S)
            try:
                await self.flush()
            except Exception:
                log.exception("writing %d clicks failed; trying again", len(self.pending))
        if self.dropped:
            log.error("%d clicks were not recorded (Postgres did not keep up)", self.dropped)


@dataclass
class Redirects:
    """What `/l/{code}` does: the link a code names, and its click recorded."""

    svc: Services
    secret: str
    clicks: Clicks
    clock: Clock
    _links: OrderedDict[int, LinkRow | None] = field(default_factory=OrderedDict)
    _domains: dict[str, tuple[float, int | None]] = field(default_factory=dict)

    async def follow(self, code: str, host: str, method: str, user_agent: str | None) -> str | None:
        """The URL to send the visitor to, the click recorded; None for a code that names no
        link, or a link of another brand than the one whose link domain `host` is."""
        named = links.read_code(self.secret, code)
        if named is None:
            return None
        link_id, subscriber_id = named
        link = await self._link(link_id)
        if link is None:
            return None
        owner = await self._domain_owner(host.split(":", 1)[0].lower())
        if owner is not None and owner != link.brand_id:
            return None  # another brand's domain: as if there were no such link
        self.clicks.add(
            ClickRow(
                link_id, subscriber_id, links.click_kind(method, user_agent), link.brand_id,
                link.campaign_id,
                campaign_message_id(str(link.campaign_uid), link.variant, subscriber_id),
                self.clock.now(), (user_agent or "")[:512] or None,
            )
        )  # fmt: skip
        return link.url

    async def _link(self, link_id: int) -> LinkRow | None:
        if link_id in self._links:
            self._links.move_to_end(link_id)
            return self._links[link_id]
        found = await store.get_link(self.svc.pool, link_id)
        if found is not None:  # an unknown id is not kept: the cache is for real links
            self._links[link_id] = found
            while len(self._links) > _LINKS_KEPT:
                self._links.popitem(last=False)
        return found

    async def _domain_owner(self, host: str) -> int | None:
        now = time.monotonic()
        cached = self._domains.get(host)
        if cached is not None and now - cached[0] < _DOMAIN_TTL_S:
            return cached[1]
        owner = await store.brand_of_domain(self.svc.pool, host)
        if len(self._domains) > 10_000:
            self._domains.clear()
        self._domains[host] = (now, owner)
        return owner


async def campaign_links(svc: Services, brand_id: int, campaign_id: int) -> list[LinkClicks]:
    """The campaign's tracked links and their clicks; `NotFound` for another brand's."""
    await campaigns.get_campaign(svc.pool, campaign_id, brand_id=brand_id)
    return await store.campaign_links(svc.pool, campaign_id)


_HOSTNAME = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


async def set_link_domain(svc: Services, brand_id: int, domain: str | None) -> str | None:
    """Serve the brand's short links on `domain` (a host name whose DNS points at Clarion's
    public address, with its TLS certificate there); None: on the install's links URL. A
    domain another brand has is refused, and so is the install's own host (every brand's)."""
    if domain is None:
        await store.set_link_domain(svc.pool, brand_id, None)
        return None
    try:
        host = domain.strip().lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"not a domain name: {domain!r}", field="link_domain") from None
    if not _HOSTNAME.fullmatch(host):
        raise InvalidInput(
            f"a host name such as links.example.com, not {domain!r}", field="link_domain"
        )
    install = urlsplit(svc.settings.links_url or svc.settings.public_url).hostname
    if host == install:
        raise Refused(f"{host} is the install's own links host", field="link_domain")
    owner = await store.brand_of_domain(svc.pool, host)
    if owner is not None and owner != brand_id:
        raise Refused(f"{host} is another brand's link domain", field="link_domain")
    await store.set_link_domain(svc.pool, brand_id, host)
    return host
