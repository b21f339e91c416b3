"""The inbound stage's worker: keywords and replies. Consent changes at once (in the same
transaction as the message's record); replies go on the transactional hop."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.compliance.encoding import sms_segments
from clarion.compliance.keywords import classify_inbound
from clarion.domain.brands import BrandInfo
from clarion.domain.ids import partition_of, reply_message_id
from clarion.domain.records import InboundBatch, OutboundMessage, RenderedBatch
from clarion.pipeline import inbound
from clarion.runtime.context import WorkerContext
from clarion.store import compliance


@dataclass
class InboundWorker:
    ctx: WorkerContext

    async def __call__(self, batch: InboundBatch) -> int:
        replies: dict[tuple[int, int], tuple[BrandInfo, list[OutboundMessage]]] = {}
        async with self.ctx.pool.acquire() as conn, conn.transaction():
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
                await self.ctx.bus.publish("transactional", out, msg_id=out.batch_id)
        return len(batch.messages)
