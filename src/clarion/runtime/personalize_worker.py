"""The personalize stage's worker: a recipient batch becomes rendered batches (SMS, email or
both), from the campaign's templates compiled once per campaign."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import msgspec

from clarion.domain.brands import brand_fields, email_sender
from clarion.domain.records import Recipient, RecipientBatch, RenderedBatch
from clarion.domain.rows import BrandRow, CampaignRow
from clarion.domain.schedule import zone_of
from clarion.domain.variants import (
    AbTest,
    Variant,
    assign,
    assign_by,
    in_sample,
    message_variant,
    round_of,
)
from clarion.email.unsubscribe import make_token
from clarion.intelligence import sto
from clarion.pipeline import links, personalize, recommendations
from clarion.pipeline.links import links_base
from clarion.runtime.context import WorkerContext
from clarion.runtime.recommending import CampaignRecs
from clarion.store import ab_rounds, brands, campaigns, models, send_hours
from clarion.store import links as store_links

log = logging.getLogger(__name__)

# Campaigns whose compiled templates one process keeps.
_TEMPLATES_KEPT = 256
# Products of a recipient's list read beyond those a template shows (for any out of stock).
_SPARE = 3


@dataclass(frozen=True, eq=False)  # one per variant: known by identity
class VariantTemplates:
    """One variant's compiled texts and tracked links."""

    key: str
    sms: personalize.Template
    email: personalize.Template | None
    subject: personalize.Template | None
    html: personalize.Template | None = None  # the email's HTML part (None: text only)
    sms_links: links.Rewriter | None = None  # None: links not tracked
    email_links: links.Rewriter | None = None
    # How the texts read `recommendations` (None: they do not)
    sms_recs: recommendations.Use | None = None
    email_recs: recommendations.Use | None = None


@dataclass(frozen=True)
class CampaignTemplates:
    """A campaign's compiled templates and what rendering needs, read once per campaign."""

    channel: str
    brand: dict[str, Any]
    sender: str
    uid: str
    email_from: str
    max_segments: int  # the brand's: a longer SMS fails for its recipient
    variants: tuple[VariantTemplates, ...]
    weights: tuple[Variant, ...]
    ab: AbTest | None = None
    winner: str | None = None  # a test's, once decided
    # an adaptive test's releases so far: (first round, last round, weights)
    releases: tuple[tuple[int, int, dict[str, float]], ...] = ()
    best_time: BestTime | None = None  # a best-time send's window and model
    recs: CampaignRecs | None = None  # when a variant reads `recommendations`
    # how much of each list to read: what the templates show, and a few more to take the
    # place of those out of stock
    recs_take: int = recommendations.LIST_SIZE
    links_base: str | None = None  # where its short links point (None: links not tracked)


@dataclass(frozen=True)
class BestTime:
    """A best-time send: each subscriber at their best hour within `window_h` of `start`, by
    the send-time model `model_id` (None: none was trained; all at `start`)."""

    start: datetime
    window_h: float
    model_id: int | None
    brand_hours: list[int]


@dataclass
class PersonalizeWorker:
    ctx: WorkerContext
    # Where one-click unsubscribe links point, and the secret that signs them.
    public_url: str = "http://127.0.0.1:8080"
    unsubscribe_secret: str = "clarion-unsubscribe"
    _templates: OrderedDict[int, CampaignTemplates] = field(default_factory=OrderedDict)

    async def __call__(self, batch: RecipientBatch) -> int:
        t = await self._template(batch.brand_id, batch.campaign_id)
        groups = self._by_variant(t, batch)
        if groups is None:  # someone is due the winner this process has not heard of
            self._templates.pop(batch.campaign_id, None)
            t = await self._template(batch.brand_id, batch.campaign_id)
            groups = self._by_variant(t, batch) or {}
        sms: list[RenderedBatch] = []
        email: list[RenderedBatch] = []
        lists = None
        if t.recs is not None:  # one read of the batch's lists, whatever the variants
            ids = [r.subscriber_id for r in batch.recipients]
            lists = await t.recs.lists(self.ctx.pool, ids, t.recs_take)
        for v, recipients in groups.items():
            part = batch if len(groups) == 1 else msgspec.structs.replace(
                batch, recipients=recipients
            )  # fmt: skip
            if t.channel in ("sms", "both"):
                variant = message_variant("sms", v.key)
                sms.append(
                    personalize.render_batch(
                        v.sms, part, campaign_uid=t.uid, brand=t.brand, sender=t.sender,
                        max_segments=t.max_segments, links=v.sms_links, variant=variant,
                        recommendations=await self._recs(t, v.sms_recs, part, lists, variant),
                    )
                )  # fmt: skip
            if v.email is not None and v.subject is not None:
                variant = message_variant("email", v.key)
                email.append(
                    personalize.render_email_batch(
                        v.email, v.subject, part, campaign_uid=t.uid, brand=t.brand,
                        from_addr=t.email_from,
                        unsubscribe_url=partial(self._unsubscribe_url, batch.brand_id),
                        links=v.email_links, variant=variant, html=v.html,
                        recommendations=await self._recs(t, v.email_recs, part, lists, variant),
                    )
                )  # fmt: skip
        for rendered in (_joined(sms), _joined(email)):
            if rendered is None:
                continue
            if t.best_time is not None:
                rendered = await self._at_best_times(t.best_time, rendered, batch)
            if rendered.failures:  # one line per batch: each reason is on its message row
                first = rendered.failures[0]
                log.warning(
                    "campaign %s: %d of %d recipients failed to render (first: subscriber %s: %s)",
                    batch.campaign_id, len(rendered.failures), len(batch.recipients),
                    first.subscriber_id, first.error,
                )  # fmt: skip
            await self.ctx.bus.publish("rendered", rendered, msg_id=rendered.batch_id)
        return len(batch.recipients)

    async def _recs(
        self,
        t: CampaignTemplates,
        use: recommendations.Use | None,
        part: RecipientBatch,
        lists: dict[int, list[str]] | None,
        variant: str,
    ) -> dict[int, list[recommendations.Recommendation]] | None:
        """The recipients' recommendations, for a text that reads them (else None)."""
        if use is None or t.recs is None or lists is None:
            return None
        tracking = None if t.links_base is None else (t.links_base, self.unsubscribe_secret)
        return await t.recs.shown(
            self.ctx.pool, [r.subscriber_id for r in part.recipients], lists, use,
            variant=variant, tracking=tracking,
        )  # fmt: skip

    def _by_variant(
        self, t: CampaignTemplates, batch: RecipientBatch
    ) -> dict[VariantTemplates, list[Recipient]] | None:
        """The batch's recipients by their variant; None when one is due a test's winner
        that `t` does not know yet."""
        if len(t.variants) == 1 and t.ab is None:
            return {t.variants[0]: batch.recipients}
        by_key = {v.key: v for v in t.variants}
        groups: dict[VariantTemplates, list[Recipient]] = {}
        if t.ab is not None and t.ab.mode == "adaptive":
            return _by_round(t, batch, by_key)
        for r in batch.recipients:
            if in_sample(t.uid, r.subscriber_id, t.ab):
                key = assign(t.uid, r.subscriber_id, t.weights).key
            elif t.winner is None:
                return None
            else:
                key = t.winner
            groups.setdefault(by_key[key], []).append(r)
        return groups

    async def _template(self, brand_id: int, campaign_id: int) -> CampaignTemplates:
        cached = self._templates.get(campaign_id)
        if cached is None:
            pool = self.ctx.pool
            c = await campaigns.get_campaign(pool, campaign_id, brand_id=brand_id)
            b = await brands.get_brand(pool, brand_id)
            shown = brand_fields(b.name, b.help_text, b.sender, b.macros)
            email = c.channel in ("email", "both")
            sms = c.channel in ("sms", "both")
            tracked = c.track_links
            variants = c.variant_list()
            compiled = []
            for v in variants:
                email_text = v.email_body or v.body
                email_texts = (email_text, v.subject or c.name, v.email_html or "")
                compiled.append(
                    VariantTemplates(
                        key=v.key,
                        sms=personalize.stored_template(v.body),
                        email=personalize.stored_template(email_text) if email else None,
                        subject=(
                            personalize.stored_template(v.subject or c.name) if email else None
                        ),
                        html=(
                            personalize.stored_html_template(v.email_html)
                            if email and v.email_html else None
                        ),
                        sms_links=(
                            await self._links(b, c.id, message_variant("sms", v.key), v.body, shown)
                            if tracked and sms else None
                        ),
                        email_links=(
                            await self._links(
                                b, c.id, message_variant("email", v.key),
                                email_text + "\n" + (v.email_html or ""), shown,
                            )
                            if tracked and email else None
                        ),
                        sms_recs=recommendations.use_of([v.body]) if sms else None,
                        email_recs=recommendations.use_of(email_texts) if email else None,
                    )
                )  # fmt: skip
            cached = CampaignTemplates(
                channel=c.channel, brand=shown, sender=b.sender, uid=str(c.uid),
                email_from=email_sender(b.name, b.slug, b.email_from),
                max_segments=b.max_segments, variants=tuple(compiled),
                weights=tuple(variants), ab=c.ab_test(), winner=c.ab_winner,
                best_time=await self._best_time(c),
                releases=tuple(
                    (r.round, r.last_round, r.weights)
                    for r in await ab_rounds.releases(pool, campaign_id)
                ),
                recs=(
                    await CampaignRecs.load(pool, brand_id, campaign_id)
                    if any(v.sms_recs or v.email_recs for v in compiled) else None
                ),
                recs_take=min(recommendations.LIST_SIZE, _SPARE + max(
                    (u.count for v in compiled for u in (v.sms_recs, v.email_recs) if u),
                    default=0,
                )),
                links_base=links_base(b.link_domain, self.public_url) if tracked else None,
            )  # fmt: skip
            self._templates[campaign_id] = cached
            while len(self._templates) > _TEMPLATES_KEPT:
                self._templates.popitem(last=False)
        return cached

    async def _at_best_times(
        self, best: BestTime, rendered: RenderedBatch, batch: RecipientBatch
    ) -> RenderedBatch:
        """Each message stamped with its subscriber's moment (one read of the batch's hours)."""
        if best.model_id is None:
            known: dict[int, list[int]] = {}
        else:
            ids = [r.subscriber_id for r in batch.recipients]
            known = await send_hours.read(self.ctx.pool, best.model_id, ids)
        at = sto.moments(
            known, best.brand_hours,
            [(r.subscriber_id, zone_of(r.timezone)) for r in batch.recipients],
            start=best.start, window_h=best.window_h,
        )  # fmt: skip
        return msgspec.structs.replace(
            rendered,
            messages=[
                msgspec.structs.replace(m, not_before=at.get(m.subscriber_id or 0, best.start))
                for m in rendered.messages
            ],
        )

    async def _best_time(self, c: CampaignRow) -> BestTime | None:
        if c.best_time_h is None:
            return None
        start = c.scheduled_at or c.launched_at or self.ctx.clock.now()
        model = (
            None if c.sto_model_id is None
            else await models.get_model(self.ctx.pool, c.sto_model_id, brand_id=c.brand_id)
        )  # fmt: skip
        return BestTime(
            start=start, window_h=float(c.best_time_h),
            model_id=None if model is None else model.id,
            brand_hours=[] if model is None else sto.brand_hours(model.summary),
        )  # fmt: skip

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


def _by_round(
    t: CampaignTemplates, batch: RecipientBatch, by_key: dict[str, VariantTemplates]
) -> dict[VariantTemplates, list[Recipient]] | None:
    """An adaptive test's recipients by their variant: each by the weights of the release
    that sends their round; None when one's round is in a release `t` does not know yet."""
    assert t.ab is not None
    groups: dict[VariantTemplates, list[Recipient]] = {}
    for r in batch.recipients:
        n = round_of(t.uid, r.subscriber_id, t.ab)
        weights = next((w for lo, hi, w in t.releases if lo <= n <= hi), None)
        if weights is None:
            return None
        key = assign_by(t.uid, r.subscriber_id, weights)
        groups.setdefault(by_key[key], []).append(r)
    return groups


def _joined(parts: list[RenderedBatch]) -> RenderedBatch | None:
    """One channel's renders of a batch's variants as one batch (its id the first's)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return msgspec.structs.replace(
        parts[0],
        messages=[m for p in parts for m in p.messages],
        failures=[f for p in parts for f in p.failures],
    )
