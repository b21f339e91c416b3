"""The personalize stage's worker: a recipient batch becomes rendered batches (SMS, email or
both), from the campaign's templates compiled once per campaign."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from clarion.domain.brands import brand_fields, email_sender
from clarion.domain.records import RecipientBatch
from clarion.domain.rows import BrandRow
from clarion.email.unsubscribe import make_token
from clarion.pipeline import links, personalize
from clarion.pipeline.links import links_base
from clarion.runtime.context import WorkerContext
from clarion.store import brands, campaigns
from clarion.store import links as store_links

log = logging.getLogger(__name__)

# Campaigns whose compiled templates one process keeps.
_TEMPLATES_KEPT = 256


@dataclass(frozen=True)
class CampaignTemplates:
    """A campaign's compiled templates and what rendering needs, read once per campaign."""

    channel: str
    sms: personalize.Template
    brand: dict[str, Any]
    sender: str
    uid: str
    email: personalize.Template | None
    subject: personalize.Template | None
    email_from: str
    max_segments: int  # the brand's: a longer SMS fails for its recipient
    sms_links: links.Rewriter | None = None  # None: links not tracked
    email_links: links.Rewriter | None = None


@dataclass
class PersonalizeWorker:
    ctx: WorkerContext
    # Where one-click unsubscribe links point, and the secret that signs them.
    public_url: str = "http://127.0.0.1:8080"
    unsubscribe_secret: str = "clarion-unsubscribe"
    _templates: OrderedDict[int, CampaignTemplates] = field(default_factory=OrderedDict)

    async def __call__(self, batch: RecipientBatch) -> int:
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
                    links=t.sms_links,
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
                    links=t.email_links,
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
            await self.ctx.bus.publish("rendered", rendered, msg_id=rendered.batch_id)
        return len(batch.recipients)

    async def _template(self, brand_id: int, campaign_id: int) -> CampaignTemplates:
        cached = self._templates.get(campaign_id)
        if cached is None:
            pool = self.ctx.pool
            c = await campaigns.get_campaign(pool, campaign_id, brand_id=brand_id)
            b = await brands.get_brand(pool, brand_id)
            shown = brand_fields(b.name, b.help_text, b.sender, b.macros)
            email = c.channel in ("email", "both")
            email_text = c.email_body or c.body
            tracked = c.track_links
            cached = CampaignTemplates(
                channel=c.channel,
                sms=personalize.stored_template(c.body),
                brand=shown,
                sender=b.sender,
                uid=str(c.uid),
                email=personalize.stored_template(email_text) if email else None,
                subject=personalize.stored_template(c.subject or c.name) if email else None,
                email_from=email_sender(b.name, b.slug, b.email_from),
                max_segments=b.max_segments,
                sms_links=(
                    await self._links(b, c.id, personalize.VARIANT, c.body, shown)
                    if tracked and c.channel in ("sms", "both") else None
                ),
                email_links=(
                    await self._links(
                        b, c.id, personalize.EMAIL_VARIANT, email_text, shown
                    )
                    if tracked and email else None
                ),
            )  # fmt: skip
            self._templates[campaign_id] = cached
            while len(self._templates) > _TEMPLATES_KEPT:
                self._templates.popitem(last=False)
        return cached

    async def _links(
        self, b: BrandRow, campaign_id: int, variant: str, body: str, brand: dict[str, Any]
    ) -> links.Rewriter:
        """The variant's tracked links: the URLs its text has whatever the subscriber,
        registered (once, by whichever process renders first)."""
        urls = personalize.constant_urls(body, brand=brand)
        ids = await store_links.register(self.ctx.pool, b.id, campaign_id, variant, urls)
        return links.Rewriter(
            links_base(b.link_domain, self.public_url), ids, self.unsubscribe_secret
        )

    def _unsubscribe_url(self, brand_id: int, subscriber_id: int) -> str:
        token = make_token(self.unsubscribe_secret, brand_id, subscriber_id)
        return f"{self.public_url}/u/{token}"
