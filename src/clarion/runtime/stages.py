"""The stage workers: each decodes a batch, calls its pure core, commits, publishes the next
batch, and returns (the consume loop acks). Everything they touch is passed in. `Stages` is
one worker with every stage: the audience, personalize and inbound stages and the deferred
sweep are here; the send stage is in send_side.py, the receipts side in receipts_side.py,
what they share in stage_base.py."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from clarion.compliance.encoding import sms_segments
from clarion.compliance.keywords import classify_inbound
from clarion.domain.brands import BrandInfo
from clarion.domain.ids import PARTITIONS, batch_id, partition_of, reply_message_id
from clarion.domain.records import (
    InboundBatch,
    LaunchCampaign,
    OutboundMessage,
    RecipientBatch,
    RenderedBatch,
)
from clarion.email.unsubscribe import make_token
from clarion.errors import Held
from clarion.pipeline import audience, inbound, personalize
from clarion.runtime.receipts_side import ReceiptsSide
from clarion.runtime.send_side import SendSide
from clarion.runtime.stage_base import CampaignTemplates, Monitor, StageBase
from clarion.store import brands, campaigns, compliance

__all__ = [
    "RECEIPTS_PER_FETCH",
    "SERIAL_STAGES",
    "STAGES",
    "STAGE_HOPS",
    "Monitor",
    "StageBase",
    "Stages",
]

log = logging.getLogger(__name__)

# stage name → the hop it consumes
STAGE_HOPS = {
    "audience": "launch",
    "personalize": "audience",
    "send": "rendered",
    "aggregate": "receipts",
    "carrier": "status",
    "inbound": "inbound",
    "transactional": "transactional",
}
STAGES = tuple(STAGE_HOPS)
# Batches one process handles at once, per stage. Aggregate and carrier update rows that
# concurrent batches share (a message's several receipts; a carrier's counters), so they run
# one batch at a time per process: overlapping transactions would only queue on row locks.
SERIAL_STAGES = frozenset({"aggregate", "carrier"})
# Receipt webhooks arrive as many small batches; the aggregate takes up to this many bus
# messages at a time (into its holding; see `consumer.consume_holding`).
RECEIPTS_PER_FETCH = 32

# Reads (a page per partition each) one audience turn publishes before yielding to other
# campaigns (a continuation command carries the rest; the cursors are in Postgres).
_READS_PER_TURN = 3


class Stages(SendSide, ReceiptsSide):
    """A worker's stages over one database, bus and set of providers (fields: `StageBase`)."""

    def handler(self, stage: str) -> Any:
        return {
            "audience": self.audience,
            "personalize": self.personalize,
            "send": self.send,
            "aggregate": self.aggregate,
            "carrier": self.carrier,
            "inbound": self.inbound,
            "transactional": self.send,
        }[stage]

    async def audience(self, cmd: LaunchCampaign) -> int:
        c = await campaigns.get_campaign(self.pool, cmd.campaign_id, brand_id=cmd.brand_id)
        if c.launch_count != cmd.attempt or c.audience_done:
            return 0  # superseded by a relaunch, finished earlier, or cancelled
        if c.status == "paused":
            raise Held(f"campaign {cmd.campaign_id} is paused", retry_after_s=0.5)
        # Each partition has its own cursor (-1: done). A read takes the next contiguous
        # range of subscribers from the lowest open cursor and publishes a page per partition
        # from it (`audience.split_pages`).
        cursors, published = list(c.audience_cursors), 0
        size = PARTITIONS * self.page_size
        for _ in range(_READS_PER_TURN):
            status = await campaigns.status_of(self.pool, cmd.campaign_id)
            if status == "paused":  # redelivered later; the cursors are in Postgres
                raise Held(f"campaign {cmd.campaign_id} is paused", retry_after_s=0.5)
            if status != "sending":  # cancelled since this turn began
                return published
            open_cursors = [x for x in cursors if x >= 0]
            if not open_cursors:
                await campaigns.finish_audience(self.pool, cmd.campaign_id, cmd.attempt)
                return published
            rows = await brands.audience_range(self.pool, cmd.brand_id, min(open_cursors), size)
            pages, after = audience.split_pages(
                rows, cursors, page_size=self.page_size, exhausted=len(rows) < size
            )
            added = 0
            for part, page in pages:
                batch = audience.recipient_batch(
                    brand_id=cmd.brand_id, campaign_id=cmd.campaign_id, attempt=cmd.attempt,
                    rows=page, partition=part, channel=c.channel,
                )  # fmt: skip
                if batch.recipients:
                    await self.bus.publish("audience", batch, msg_id=batch.batch_id)
                # the audience counts messages: a recipient on both channels counts twice
                added += audience.messages_for(batch, c.channel)
            await campaigns.advance_audience(
                self.pool, cmd.campaign_id, before=cursors, after=after, added=added,
                attempt=cmd.attempt,
            )  # fmt: skip
            cursors = after
            published += added
            if all(x < 0 for x in cursors):
                await campaigns.finish_audience(self.pool, cmd.campaign_id, cmd.attempt)
                return published
        turn = ":".join(map(str, cursors))
        await self.bus.publish("launch", cmd, msg_id=f"{cmd.command_id}:{turn}")
        return published

    async def _template(self, brand_id: int, campaign_id: int) -> CampaignTemplates:
        cached = self._templates.get(campaign_id)
        if cached is None:
            c = await campaigns.get_campaign(self.pool, campaign_id, brand_id=brand_id)
            b = await brands.get_brand(self.pool, brand_id)
            brand_fields = {"name": b.name, "help_text": b.help_text, "sender": b.sender}
            email = c.channel in ("email", "both")
            cached = CampaignTemplates(
                channel=c.channel,
                sms=personalize.stored_template(c.body),
                brand=brand_fields,
                sender=b.sender,
                uid=str(c.uid),
                email=personalize.stored_template(c.email_body or c.body) if email else None,
                subject=personalize.stored_template(c.subject or c.name) if email else None,
                email_from=b.email_from or f"{b.name} <news@{b.slug}.example>",
                max_segments=b.max_segments,
            )
            self._templates[campaign_id] = cached
            while len(self._templates) > 256:
                self._templates.popitem(last=False)
        return cached

    async def personalize(self, batch: RecipientBatch) -> int:
        t = await self._template(batch.brand_id, batch.campaign_id)
        outputs = []
        if t.channel in ("sms", "both"):
            outputs.append(
                personalize.render_batch(
                    t.sms,
                    batch,
                    campaign_uid=t.uid,
                    brand=t.brand,
                    sender=t.sender,
                    max_segments=t.max_segments,
                )
            )
        if t.email is not None and t.subject is not None:
            outputs.append(
                personalize.render_email_batch(
                    t.email,
                    t.subject,
                    batch,
                    campaign_uid=t.uid,
                    brand=t.brand,
                    from_addr=t.email_from,
                    unsubscribe_url=partial(self._unsubscribe_url, batch.brand_id),
                )
            )
        for rendered in outputs:
            if rendered.failures:  # one line per batch: each reason is on its message row
                first = rendered.failures[0]
                log.warning(
                    "campaign %s: %d of %d recipients failed to render (first: subscriber %s: %s)",
                    batch.campaign_id, len(rendered.failures), len(batch.recipients),
                    first.subscriber_id, first.error,
                )  # fmt: skip
            await self.bus.publish("rendered", rendered, msg_id=rendered.batch_id)
        return len(batch.recipients)

    def _unsubscribe_url(self, brand_id: int, subscriber_id: int) -> str:
        token = make_token(self.unsubscribe_secret, brand_id, subscriber_id)
        return f"{self.public_url}/u/{token}"

    async def inbound(self, batch: InboundBatch) -> int:
        """Keywords and replies: consent changes at once, replies go on the transactional hop."""
        replies: dict[tuple[int, int], tuple[BrandInfo, list[OutboundMessage]]] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for m in batch.messages:
                intent = classify_inbound(m.body)
                brand = await compliance.brand_for_number(conn, m.to)
                sub_id, consent = (None, None)
                if brand is not None:
                    sub_id, consent = await compliance.subscriber_consent(conn, brand.id, m.from_)
                fresh = await compliance.record_inbound(
                    conn, batch.provider, m, brand.id if brand else None, sub_id, intent
                )
                if not fresh or brand is None:
                    continue  # a redelivery, or a number that is no brand's
                r = inbound.respond(
                    intent, m.body, known=sub_id is not None, consent=consent, brand=brand
                )
                if r.create_subscriber:
                    sub_id = await compliance.add_subscriber_by_sms(conn, brand.id, m.from_)
                if r.consent is not None and sub_id is not None:
                    await compliance.append_consent(
                        conn, brand.id, sub_id, r.consent, keyword=m.body.strip()[:64],
                        disclosure=r.reply,
                    )  # fmt: skip
                if r.reply is not None:
                    reply = OutboundMessage(
                        message_id=reply_message_id(batch.provider, m.provider_message_id),
                        subscriber_id=sub_id,
                        to=m.from_,
                        body=r.reply,
                        segments=sms_segments(r.reply).segments,
                    )
                    key = (brand.id, partition_of(sub_id, m.from_))
                    replies.setdefault(key, (brand, []))[1].append(reply)
            # Published before commit: a retry after a failed commit publishes the same ids,
            # which the bus drops; the transactional stage persists before it sends.
            for (_, part), (brand, outgoing) in replies.items():
                out = RenderedBatch(
                    batch_id=f"{batch.batch_id}:{brand.id}:{part}", brand_id=brand.id,
                    campaign_id=None, sender=brand.sender, messages=outgoing,
                    kind="transactional", partition=part,
                )  # fmt: skip
                await self.bus.publish("transactional", out, msg_id=out.batch_id)
        return len(batch.messages)

    async def sweep_deferred(self, limit: int = 5000) -> int:
        """Republish deferred messages whose moment has come (a singleton: the caller holds
        the advisory lock), oldest first, to their subscriber's partition. A batch id is
        derived from its messages and their moments, so a repeat before the send stage has
        taken them is dropped by the bus."""
        async with self.pool.acquire() as conn:
            rows = await compliance.due_deferred(conn, self.clock(), limit)
        groups: dict[tuple[str, int, int | None, str, int], list[Any]] = {}
        for r in rows:
            part = partition_of(r["subscriber_id"], r["to_address"])
            key = (r["kind"], r["brand_id"], r["campaign_id"], r["sender"], part)
            groups.setdefault(key, []).append(r)
        for (kind, brand_id, campaign_id, sender, part), group in groups.items():
            for i in range(0, len(group), 1000):
                chunk = group[i : i + 1000]
                out = RenderedBatch(
                    batch_id=batch_id("deferred", *(f"{r['id']}@{r['not_before']}" for r in chunk)),
                    brand_id=brand_id,
                    campaign_id=campaign_id,
                    sender=sender,
                    messages=[
                        OutboundMessage(
                            message_id=r["id"],
                            subscriber_id=r["subscriber_id"],
                            to=r["to_address"],
                            body=r["body"],
                            segments=r["segments"],
                            timezone=r["timezone"],
                            carrier=r["carrier"],
                        )
                        for r in chunk
                    ],
                    kind=kind,
                    partition=part,
                    stored=True,
                )
                hop = "transactional" if kind == "transactional" else "rendered"
                await self.bus.publish(hop, out, msg_id=out.batch_id)
        return len(rows)
