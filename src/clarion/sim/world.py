"""A world with known truth: the simulator's people, each with latent traits Clarion never
reads, against which its send-time optimisation, recommendations and adaptive A/B tests are
measured.

Every trait is a function of the world's seed and the person's number (a phone, or any
stable key), so the simulator's handsets, an experiment and a test agree on who someone is
without sharing state. The default world's parameters (`WorldConfig`) are:

- **Propensity**: how much more or less than others a person clicks, log-normal of mean 1
  and sigma `spread` (0.5).
- **Engaged hours**: a chronotype drawn from four (morning 08:30, weight 0.25; lunch 12:30,
  0.30; evening 19:30, 0.35; late 22:30, 0.10), the person's own peak jittered around it
  (sd `peak_jitter_h`, 1 h). A message delivered at local hour h is clicked with
  probability `click_rate` × propensity × engagement(h), engagement being `floor` (0.5) +
  `amplitude` (1.5) × a Gaussian bump of sd `width_h` (1.5 h) around the peak, on the
  24-hour circle: 2.0 at the peak, 0.5 far from it. The "late" people's peak lies in
  quiet hours: the compliance window bounds what any model may do for them.
- **Taste**: affinities to `categories` (12) product categories, Dirichlet(`taste_alpha`,
  0.3): most people like two or three categories, some one.
- **Catalog**: `products` (400) products, each in one category, priced log-normally (median
  $35), with a popularity that is Zipf-like (exponent 1.0) across the whole catalog: some
  products are what everyone buys, which is what a popularity baseline gets right.
- **Price level**: the price a person usually pays, log-normal around the catalog's median
  (sigma `price_spread` 0.6); they shop within a band of it (`price_band`, 0.35 in log
  price): budget shoppers and premium ones.
- **Shopping**: each person has `sessions` (mean 15, Poisson: a year of an engaged
  subscriber's browsing) sessions over the history; a session picks a category by the
  person's taste mixed with overall popularity (`taste_weight` 0.7), a product in it by
  popularity times the nearness of its price to theirs, is a view, then a cart with
  probability 0.35, then an order with probability 0.45 of a cart.

Clarion sees only what the world does: deliveries, clicks on its links, the shop's events.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from statistics import NormalDist

_NORMAL = NormalDist()
CHRONOTYPES = ((8.5, 0.25), (12.5, 0.30), (19.5, 0.35), (22.5, 0.10))


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 2026
    click_rate: float = 0.08
    spread: float = 0.5
    peak_jitter_h: float = 1.0
    width_h: float = 1.5
    floor: float = 0.5
    amplitude: float = 1.5
    categories: int = 12
    taste_alpha: float = 0.3
    products: int = 400
    price_median: float = 35.0
    popularity_exponent: float = 1.0
    sessions: float = 15.0
    taste_weight: float = 0.7
    price_spread: float = 0.6  # sigma of the log of people's price levels (as of prices)
    price_band: float = 0.35  # how far from their level people shop (sigma, in log price)
    cart_rate: float = 0.35
    order_rate: float = 0.45


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    category: str
    price: float
    url: str


@dataclass(frozen=True)
class Person:
    key: str
    propensity: float
    peak_h: float  # local hour of the day, 0 <= peak < 24
    taste: tuple[float, ...]  # per category, sums to 1
    price_level: float = 35.0  # the price they usually pay: they shop around it


@dataclass(frozen=True)
class ShopEvent:
    type: str  # viewed_product, added_to_cart, ordered
    product: Product
    at: datetime


@dataclass(eq=False)
class World:
    config: WorldConfig = field(default_factory=WorldConfig)

    # --- people ---------------------------------------------------------------------------

    def rng(self, key: str, purpose: str) -> random.Random:
        """A generator fixed by the world's seed, a person and what it draws."""
        digest = hashlib.blake2b(
            f"{self.config.seed}:{purpose}:{key}".encode(), digest_size=8
        ).digest()
        return random.Random(int.from_bytes(digest, "big"))

    @functools.lru_cache(maxsize=1 << 20)  # noqa: B019 - the world lives as long as its users
    def person(self, key: str) -> Person:
        c = self.config
        r = self.rng(key, "traits")
        z = _NORMAL.inv_cdf(min(max(r.random(), 1e-12), 1 - 1e-12))
        propensity = math.exp(c.spread * z - c.spread * c.spread / 2)
        centre = r.choices([p for p, _ in CHRONOTYPES], [w for _, w in CHRONOTYPES])[0]
        peak = (centre + r.gauss(0.0, c.peak_jitter_h)) % 24.0
        draws = [r.gammavariate(c.taste_alpha, 1.0) for _ in range(c.categories)]
        total = sum(draws) or 1.0
        level = c.price_median * math.exp(r.gauss(0.0, c.price_spread))
        return Person(key, propensity, peak, tuple(d / total for d in draws), level)

    def engagement(self, key: str, local_hour: float) -> float:
        """How engaged the person is at a local time of day (hours, fractional)."""
        c = self.config
        d = abs(local_hour - self.person(key).peak_h) % 24.0
        d = min(d, 24.0 - d)
        return c.floor + c.amplitude * math.exp(-d * d / (2 * c.width_h * c.width_h))

    def click_probability(self, key: str, local_hour: float, boost: float = 1.0) -> float:
        """The chance the person clicks a message with a link delivered at `local_hour`
        (`boost`: the content's factor, such as a better variant's)."""
        p = self.config.click_rate * self.person(key).propensity * boost
        return min(1.0, p * self.engagement(key, local_hour))

    def clicks(self, key: str, local_hour: float, rng: random.Random, boost: float = 1.0) -> bool:
        return rng.random() < self.click_probability(key, local_hour, boost)

    # --- the shop -------------------------------------------------------------------------

    @functools.cached_property
    def catalog(self) -> tuple[Product, ...]:
        c = self.config
        r = random.Random(f"{c.seed}:catalog")
        out = []
        for n in range(c.products):
            category = f"category-{n % c.categories:02d}"
            price = round(c.price_median * math.exp(r.gauss(0.0, 0.6)), 2)
            out.append(
                Product(
                    id=f"p{n:05d}", name=f"Product {n:05d}", category=category, price=price,
                    url=f"https://shop.example/p/{n:05d}",
                )
            )  # fmt: skip
        r.shuffle(out)  # popularity (by position) unrelated to category
        return tuple(out)

    @functools.cached_property
    def _popularity(self) -> tuple[float, ...]:
        e = self.config.popularity_exponent
        return tuple(1.0 / (rank + 1) ** e for rank in range(len(self.catalog)))

    @functools.cached_property
    def _by_category(self) -> dict[int, tuple[list[int], list[float]]]:
        """Per category: its products' positions in the catalog and their cumulative
        popularity (to draw one)."""
        out: dict[int, tuple[list[int], list[float]]] = {}
        for i, p in enumerate(self.catalog):
            k = int(p.category.rsplit("-", 1)[1])
            idx, cum = out.setdefault(k, ([], []))
            idx.append(i)
            cum.append((cum[-1] if cum else 0.0) + self._popularity[i])
        return out

    @functools.cached_property
    def _category_popularity(self) -> tuple[float, ...]:
        by = self._by_category
        total = sum(cum[-1] for _, cum in by.values())
        return tuple(by[k][1][-1] / total for k in range(self.config.categories))

    def pick_product(self, key: str, r: random.Random) -> Product:
        """A product the person looks at: a category by taste (mixed with what everyone
        looks at), a product in it by popularity and by how near its price is to theirs."""
        c = self.config
        taste = self.person(key).taste
        w = c.taste_weight
        mixed = [w * t + (1 - w) * p for t, p in zip(taste, self._category_popularity, strict=True)]
        k = r.choices(range(c.categories), mixed)[0]
        idx, weights = self._within(key, k)
        return self.catalog[r.choices(idx, weights)[0]]

    def _within(self, key: str, category: int) -> tuple[list[int], list[float]]:
        """A category's products (positions) and the person's weight of each: popularity
        times a Gaussian of the log price's distance from theirs."""
        idx, _ = self._by_category[category]
        level = math.log(self.person(key).price_level)
        band = 2 * self.config.price_band**2
        weights = [
            self._popularity[i] * math.exp(-((self._log_price[i] - level) ** 2) / band) for i in idx
        ]
        return idx, weights

    @functools.cached_property
    def _log_price(self) -> tuple[float, ...]:
        return tuple(math.log(p.price) for p in self.catalog)

    def product_odds(self, key: str) -> list[float]:
        """The chance that a session of the person's is about each product of the catalog
        (by position): the truth a recommender can at best learn."""
        c = self.config
        taste = self.person(key).taste
        w = c.taste_weight
        odds = [0.0] * len(self.catalog)
        for k in self._by_category:
            mixed = w * taste[k] + (1 - w) * self._category_popularity[k]
            idx, weights = self._within(key, k)
            total = sum(weights) or 1.0
            for i, weight in zip(idx, weights, strict=True):
                odds[i] = mixed * weight / total
        return odds

    def history(
        self, key: str, *, start: datetime, days: float, sessions: float | None = None
    ) -> list[ShopEvent]:
        """The person's shop events over `days` from `start`, in time order."""
        c = self.config
        r = self.rng(key, f"history:{start.isoformat()}:{days}")
        n = _poisson(r, c.sessions if sessions is None else sessions)
        events = []
        for _ in range(n):
            at = start + timedelta(seconds=r.random() * days * 86400)
            product = self.pick_product(key, r)
            events.append(ShopEvent("viewed_product", product, at))
            if r.random() < c.cart_rate:
                at += timedelta(minutes=r.uniform(1, 20))
                events.append(ShopEvent("added_to_cart", product, at))
                if r.random() < c.order_rate:
                    at += timedelta(minutes=r.uniform(1, 30))
                    events.append(ShopEvent("ordered", product, at))
        events.sort(key=lambda e: e.at)
        return events


def _poisson(r: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's; the means here are small)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1


def local_hour(at: datetime, zone: tzinfo) -> float:
    """The local time of day, in hours, of an instant in a zone."""
    t = at.astimezone(zone)
    return t.hour + t.minute / 60 + t.second / 3600
