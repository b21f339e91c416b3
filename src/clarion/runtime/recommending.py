"""What the personalize worker needs to put each recipient's `recommendations` in their
message: one campaign's model, its popularity list, the products it has seen (in stock or
not) and the links it has registered, kept while the campaign sends; and, per batch, one
read of the recipients' lists."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from clarion.domain.catalog import Product
from clarion.pipeline import recommendations as recs
from clarion.store import links as store_links
from clarion.store import models
from clarion.store import recommendations as store_recs
from clarion.store.db import Pool

log = logging.getLogger(__name__)

# A brand with no model yet: popularity from its shop events of these last days.
POPULAR_DAYS = 90
POPULAR_KEPT = 50


@dataclass
class CampaignRecs:
    """A campaign's recommendations while it sends (one per campaign and process)."""

    brand_id: int
    campaign_id: int
    model_id: int | None  # None: the brand has no model (popularity from its events)
    popular: list[str]
    products: dict[str, Product | None] = field(default_factory=dict)  # None: not to show
    links: dict[str, dict[str, int]] = field(default_factory=dict)  # variant → URL → link
    plain: dict[str, recs.Recommendation] = field(default_factory=dict)

    @classmethod
    async def load(cls, pool: Pool, brand_id: int, campaign_id: int) -> CampaignRecs:
        """The model the campaign names (set at its launch), else the brand's newest."""
        model = None
        if (named := await store_recs.campaign_model(pool, campaign_id, brand_id)) is not None:
            model = await models.get_model(pool, named, brand_id=brand_id)
        if model is None:
            model = await models.latest(pool, brand_id, "recs")
        if model is None:
            popular = await store_recs.popular_now(
                pool, brand_id, days=POPULAR_DAYS, limit=POPULAR_KEPT
            )
            log.warning(
                "campaign %s reads recommendations but brand %s has no model: popularity"
                " for everyone (%d products)", campaign_id, brand_id, len(popular),
            )  # fmt: skip
            return cls(brand_id, campaign_id, None, popular)
        if model.pruned_at is not None:  # its lists are gone; its popularity list is kept
            log.warning("campaign %s names recommendations model %s, pruned", campaign_id, model.id)
        popular = [str(p) for p in model.summary.get("popular", [])]
        return cls(brand_id, campaign_id, None if model.pruned_at else model.id, popular)

    async def lists(
        self, pool: Pool, subscriber_ids: Sequence[int], take: int
    ) -> dict[int, list[str]]:
        """The first `take` of the batch's lists, in one query (a newcomer has none)."""
        if self.model_id is None:
            return {}
        return await store_recs.lists(pool, self.model_id, subscriber_ids, take)

    async def shown(
        self,
        pool: Pool,
        subscriber_ids: Sequence[int],
        lists: dict[int, list[str]],
        use: recs.Use,
        *,
        variant: str,
        tracking: tuple[str, str] | None,
    ) -> dict[int, list[recs.Recommendation]]:
        """Each recipient's recommendations for a template that reads them as `use` says;
        with `tracking` ((short links' base, secret)), each URL is their short link, the
        products' links registered for the campaign's `variant` once."""
        await self._learn(pool, [p for ids in lists.values() for p in ids])
        picked = recs.chosen(
            subscriber_ids, lists, popular=self.popular, products=self.products, count=use.count
        )
        track = None
        if tracking is not None and use.urls:
            known = self.links.setdefault(variant, {})
            if new := sorted(recs.urls_of(picked) - known.keys()):
                known.update(
                    await store_links.register(pool, self.brand_id, self.campaign_id, variant, new)
                )
            track = recs.Tracking(base=tracking[0], links=known, secret=tracking[1])
        return recs.to_show(subscriber_ids, picked, track, self.plain)

    async def _learn(self, pool: Pool, product_ids: list[str]) -> None:
        """Read the products not seen yet (the popular ones too, the first time)."""
        wanted = {p for p in (*product_ids, *self.popular) if p not in self.products}
        if not wanted:
            return
        found = await store_recs.in_stock(pool, self.brand_id, sorted(wanted))
        for p in wanted:
            self.products[p] = found.get(p)
