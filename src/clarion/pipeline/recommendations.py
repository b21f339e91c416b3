"""Recommendations in a message: each recipient's `recommendations`, a list of products
(`id`, `name`, `url`, `price`, `image_url`), best first, in stock.

The lists were computed ahead of the send (`intelligence/recs.py`, stored per model
version); a batch's are read in one query and made into these here, one pass per batch:
a recipient's own products that are still in stock, then the popular ones they lack (a
newcomer gets popularity alone). Only as many as the template reads are made (`Use`), and
when the campaign tracks links each one's `url` is the recipient's short link to it, all
of a batch's codes made in one pass of the cipher (`links.make_codes`), nothing written
per recipient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec
from jinja2 import nodes

from clarion.domain.catalog import Product
from clarion.pipeline import sandbox
from clarion.pipeline.links import make_codes

_ENV = sandbox.BoundedSandbox()  # to read a template's tree
NAME = "recommendations"  # the field a template reads
LIST_SIZE = 10  # the most a recipient gets (what a model stores per subscriber)
# A recipient who has none to show, with a template that needs one.
NONE_REASON = (
    "template_error: no recommendations for this subscriber (the brand has no trained"
    " recommendations model and no popular product in stock)"
)


class Recommendation(msgspec.Struct, frozen=True, gc=False):
    """A recommended product as a template reads it; `url` is the recipient's tracked short
    link when the campaign tracks links ("" when the product has no URL)."""

    id: str
    name: str
    url: str
    price: float | None
    image_url: str | None


FIELDS = frozenset(Recommendation.__struct_fields__)


@dataclass(frozen=True)
class Use:
    """How a template reads `recommendations`: the first `count` of them, and whether it
    reads a `url` (then each is a tracked link to make)."""

    count: int
    urls: bool

    def merge(self, other: Use | None) -> Use:
        if other is None:
            return self
        return Use(max(self.count, other.count), self.urls or other.urls)


def use_of(bodies: Iterable[str]) -> Use | None:
    """How the templates read `recommendations` (None: they do not). `recommendations[2].url`
    reads the first three and a URL; any other use (a loop, a filter, an index that is not
    a constant) may read them all."""
    found: Use | None = None
    for body in bodies:
        use = _use_of(body)
        if use is not None:
            found = use.merge(found)
    return found


def _use_of(body: str) -> Use | None:
    try:
        tree = sandbox.parse(_ENV, body)
    except Exception:
        return None  # a template that does not compile renders nothing (its error is its own)
    names = [n for n in tree.find_all(nodes.Name) if n.name == NAME and n.ctx == "load"]
    if not names:
        return None
    indexed = [
        (g.node.arg.value, g.attr)
        for g in tree.find_all(nodes.Getattr)
        if isinstance(g.node, nodes.Getitem)
        and isinstance(g.node.node, nodes.Name)
        and g.node.node.name == NAME
        and isinstance(g.node.arg, nodes.Const)
        and type(g.node.arg.value) is int
        and 0 <= g.node.arg.value < LIST_SIZE
    ]
    if len(indexed) < len(names):
        return Use(LIST_SIZE, urls=True)
    return Use(max(i for i, _ in indexed) + 1, urls=any(attr == "url" for _, attr in indexed))


@dataclass(frozen=True)
class Tracking:
    """A campaign variant's links to recommended products (product URL → link id) and
    where its short links point (`https://{domain}/l/`)."""

    base: str
    links: Mapping[str, int]
    secret: str


def chosen(
    subscriber_ids: Sequence[int],
    lists: Mapping[int, Sequence[str]],
    *,
    popular: Sequence[str],
    products: Mapping[str, Product | None],
    count: int,
) -> list[list[Product]]:
    """Each recipient's first `count` products in stock (`products`: those known; None or
    missing, not to show): their own, then the popular ones not among them."""
    shown = [p for p in (products.get(i) for i in popular) if p is not None][:count]
    out: list[list[Product]] = []
    for sid in subscriber_ids:
        own = lists.get(sid)
        if not own:
            out.append(shown)
            continue
        picked: list[Product] = []
        for product_id in own:
            if (p := products.get(product_id)) is not None:
                picked.append(p)
                if len(picked) == count:
                    break
        if len(picked) < count:
            have = {p.id for p in picked}
            picked += [p for p in shown if p.id not in have][: count - len(picked)]
        out.append(picked)
    return out


def to_show(
    subscriber_ids: Sequence[int],
    picked: Sequence[Sequence[Product]],
    tracking: Tracking | None,
    cache: dict[str, Recommendation],
) -> dict[int, list[Recommendation]]:
    """Each recipient's recommendations as a template reads them; with `tracking`, every
    product URL it has a link for becomes the recipient's short link (one pass of the
    cipher for the batch). `cache` keeps the untracked form of each product."""
    plain = [[_plain(p, cache) for p in ps] for ps in picked]
    if tracking is None or not tracking.links:
        return dict(zip(subscriber_ids, plain, strict=True))
    links = tracking.links
    pairs = [
        (links[r.url], sid)
        for sid, recs in zip(subscriber_ids, plain, strict=True)
        for r in recs
        if r.url in links
    ]
    codes = iter(make_codes(tracking.secret, pairs))
    base = tracking.base
    out: dict[int, list[Recommendation]] = {}
    for sid, recs in zip(subscriber_ids, plain, strict=True):
        out[sid] = [
            msgspec.structs.replace(r, url=base + next(codes)) if r.url in links else r
            for r in recs
        ]
    return out


def _plain(p: Product, cache: dict[str, Recommendation]) -> Recommendation:
    r = cache.get(p.id)
    if r is None:
        r = Recommendation(p.id, p.name, p.url or "", p.price, p.image_url)
        cache[p.id] = r
    return r


def urls_of(picked: Iterable[Sequence[Product]]) -> set[str]:
    """The product URLs of the recipients' picks (to register as tracked links)."""
    return {p.url for ps in picked for p in ps if p.url}
