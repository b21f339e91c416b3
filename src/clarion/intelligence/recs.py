"""Product recommendations: implicit-feedback matrix factorisation (implicit's ALS) over what
subscribers did in the shop, each subscriber's best in-stock products first, and popularity
for everyone the model knows nothing of.

What a subscriber did with a product is one number, the sum of their events' weights
(`WEIGHTS`): an order says much more than a look. ALS reads it as confidence (Hu, Koren and
Volinsky, 2008): `1 + alpha * weight` that the subscriber likes the product, and 1 that a
product they never touched is a weaker "no". A product they already bought is not filtered
out: shoppers buy again what they like, and on the simulator's world dropping them lowers
hit-rate@5 (see `clarion experiment recs`).

Pure: arrays in (the store reads them), product ids out. Fitting and ranking run on the
CPU, `threads` OpenMP threads; nothing is downloaded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

# An event's weight: how much it says the subscriber wants the product.
WEIGHTS = {"viewed_product": 1.0, "added_to_cart": 3.0, "started_checkout": 3.0, "ordered": 5.0}
LIST_SIZE = 10  # products kept per subscriber
POPULAR_SIZE = 50  # products kept in the popularity list (the fallback)

Ids = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Params:
    """The model's parameters, chosen on the simulator's world (`clarion experiment recs`);
    `threads` are the fit's and the ranking's (1 by default: on a small machine the
    trainer shares the cores with the sending)."""

    factors: int = 32
    regularization: float = 0.05
    alpha: float = 2.0
    iterations: int = 15
    threads: int = 1
    seed: int = 1
    batch: int = 50_000  # subscribers ranked at a time (a dense batch x products block)


@dataclass(frozen=True)
class Interactions:
    """What each subscriber did with each product, one entry per pair: `products` are
    positions in the catalog's `product_ids`, `weights` the sums of `WEIGHTS`."""

    subscribers: Ids
    products: Ids
    weights: Floats
    product_ids: Sequence[str]  # the catalog: position → the shop's id
    in_stock: npt.NDArray[np.bool_]  # by position


@dataclass(frozen=True)
class Recommendations:
    """Each fitted subscriber's products (`lists[i]` is `subscribers[i]`'s, best first, in
    stock) and the popularity list (best first, in stock), with what the fit saw and took."""

    subscribers: Ids
    lists: list[list[str]]
    popular: list[str]
    summary: dict[str, float | int] = field(default_factory=dict)


def popularity(interactions: Interactions, n: int = POPULAR_SIZE) -> list[str]:
    """The in-stock products with the most weight over everyone, best first."""
    totals = np.bincount(
        interactions.products, weights=interactions.weights, minlength=len(interactions.product_ids)
    )
    totals[~interactions.in_stock] = -1.0
    order = np.argsort(-totals, kind="stable")[:n]
    return [interactions.product_ids[i] for i in order if totals[i] > 0]


def fit(interactions: Interactions, params: Params = Params()) -> Recommendations:
    """Fit ALS on the interactions and rank every subscriber who has any: their
    `LIST_SIZE` best in-stock products."""
    # implicit is imported here: it loads its compiled extensions (and probes the GPU) on
    # import, which a process that never trains should not pay for
    from implicit.cpu.als import AlternatingLeastSquares

    started = time.perf_counter()
    users, rows = np.unique(interactions.subscribers, return_inverse=True)
    n_products = len(interactions.product_ids)
    user_items = sp.csr_matrix(
        (interactions.weights.astype(np.float32), (rows, interactions.products)),
        shape=(len(users), n_products),
    )
    user_items.sum_duplicates()
    model = AlternatingLeastSquares(
        factors=params.factors, regularization=params.regularization, alpha=params.alpha,
        iterations=params.iterations, num_threads=params.threads, random_state=params.seed,
    )  # fmt: skip
    # implicit's own threads do the work; BLAS's would only compete with them
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(user_items, show_progress=False)
        fitted_s = time.perf_counter() - started
        out_of_stock = np.flatnonzero(~interactions.in_stock)
        n = min(LIST_SIZE, n_products - len(out_of_stock))
        lists: list[list[str]] = []
        ids = np.asarray(interactions.product_ids, dtype=object)
        for start in range(0, len(users), params.batch):
            batch = np.arange(start, min(start + params.batch, len(users)))
            if n <= 0:
                lists.extend([] for _ in batch)
                continue
            found, _ = model.recommend(
                batch, user_items[batch], N=n, filter_already_liked_items=False,
                filter_items=out_of_stock if len(out_of_stock) else None,
            )  # fmt: skip
            lists.extend(ids[found].tolist())
    return Recommendations(
        subscribers=users.astype(np.int64),
        lists=lists,
        popular=popularity(interactions),
        summary={
            "rows": int(user_items.nnz),
            "subscribers": len(users),
            "products": n_products,
            "in_stock": int(interactions.in_stock.sum()),
            "factors": params.factors,
            "iterations": params.iterations,
            "regularization": params.regularization,
            "alpha": params.alpha,
            "fit_s": round(fitted_s, 3),
            "rank_s": round(time.perf_counter() - started - fitted_s, 3),
        },
    )
