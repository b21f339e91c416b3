"""Microseconds per message of rendering with recommendations, without servers.

The personalize stage's per-message Python for the bench's bodies, on synthetic
subscribers in batches of 1,000, and one JSON line (the best of `--rounds` rounds):

- `links`: the bench's body with one tracked link (`clarion bench --links on`), rewritten
  to each recipient's short link;
- `recs`: `clarion bench --recs`'s body, `{{ recommendations[0].name }}` and its `.url`:
  each recipient's list (10 products of 400) made into what the template reads, its
  first product's short link made per batch, then the render;
- `recs_loop`: a body that loops over three recommendations (Jinja renders it, not the
  fill-in fast path): what a richer template costs.

    .venv/bin/python bench/recs_render.py
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from clarion.domain.catalog import Product
from clarion.domain.records import Recipient, RecipientBatch
from clarion.harness.bench import BODY, LINK, RECS_BODY
from clarion.harness.seed import synthetic_subscribers
from clarion.pipeline import personalize
from clarion.pipeline import recommendations as recs
from clarion.pipeline.links import Rewriter

BATCH = 1000
SECRET = "bench-secret"
BASE = "https://go.northwind.example/l/"
LOOP = (
    "{{ brand.name }}: picked for you:{% for r in recommendations[:3] %} {{ r.name }}"
    " {{ r.url }}{% endfor %} Reply STOP to opt out."
)
BRAND = {"name": "Northwind"}


def best_us(fn: Callable[[], int], rounds: int) -> float:
    """The fastest round's microseconds per message (`fn` returns how many it handled)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        handled = fn()
        best = min(best, (time.perf_counter() - started) / handled * 1e6)
    return round(best, 2)


def batches(n: int) -> list[RecipientBatch]:
    subs = synthetic_subscribers(n)
    recipients = [
        Recipient(
            subscriber_id=i + 1, phone=s.phone or "", timezone=s.timezone,
            fields={"first_name": s.first_name, "city": "Austin"},
        )
        for i, s in enumerate(subs)
    ]  # fmt: skip
    return [
        RecipientBatch(batch_id=str(k), brand_id=1, campaign_id=1,
                       recipients=recipients[k : k + BATCH])
        for k in range(0, n, BATCH)
    ]  # fmt: skip


def linked(n: int) -> Callable[[], int]:
    parts = batches(n)
    template = personalize.compile_template(BODY.replace(" Reply STOP", f" {LINK} Reply STOP"))
    rewriter = Rewriter(BASE, {LINK: 1}, SECRET)

    def run() -> int:
        for b in parts:
            personalize.render_batch(
                template, b, campaign_uid="u", brand=BRAND, sender="+1", links=rewriter
            )
        return n

    return run


def recommended(n: int, body: str) -> Callable[[], int]:
    parts = batches(n)
    rng = random.Random(1)
    products: dict[str, Product | None] = {
        f"p{i}": Product(id=f"p{i}", name=f"Product {i:05d}", url=f"https://shop.example/p/{i}",
                         price=round(rng.uniform(5, 90), 2))
        for i in range(400)
    }  # fmt: skip
    ids = list(products)
    lists = {r.subscriber_id: rng.sample(ids, recs.LIST_SIZE) for b in parts for r in b.recipients}
    use = recs.use_of([body])
    assert use is not None
    links = {p.url: i + 1 for i, p in enumerate(products.values()) if p is not None and p.url}
    tracking = recs.Tracking(base=BASE, links=links, secret=SECRET)
    template = personalize.compile_template(body)
    plain: dict[str, recs.Recommendation] = {}

    def run() -> int:
        for b in parts:
            sids = [r.subscriber_id for r in b.recipients]
            mine = {s: lists[s] for s in sids}  # the batch's one read
            picked = recs.chosen(sids, mine, popular=ids[:50], products=products, count=use.count)
            shown = recs.to_show(sids, picked, tracking, plain)
            personalize.render_batch(
                template, b, campaign_uid="u", brand=BRAND, sender="+1", recommendations=shown
            )
        return n

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = args.messages, args.rounds
    report = {
        "messages": n,
        "links": best_us(linked(n), rounds),
        "recs": best_us(recommended(n, RECS_BODY), rounds),
        "recs_loop": best_us(recommended(n, LOOP), rounds),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
