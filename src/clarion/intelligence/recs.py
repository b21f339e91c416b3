"""Product recommendations: implicit-feedback matrix factorisation (implicit's ALS) over what
subscribers did in the shop, blended with popularity; each subscriber's best in-stock
products first, and popularity alone for everyone the model knows nothing of.

What a subscriber did with a product is one number, the sum of their events' weights
(`WEIGHTS`): an order says much more than a look. ALS reads it as confidence (Hu, Koren and
Volinsky, 2008): `1 + alpha * weight` that the subscriber likes the product, and 1 that a
product they never touched is a weaker "no" (implicit takes the confidence itself as the
matrix's value: it is given `1 + alpha * weight`, and its own `alpha` is 1).

A subscriber's score of a product is their ALS preference (scaled to their best, 1) plus
`popularity_weight` times the product's popularity (scaled to the most popular's, 1). A
shopper with a handful of events tells a little about their taste and nothing about what
is worth buying in it; what everyone buys says that. The parameters were chosen on the
simulator's world of seed 2026 (a grid of factors, regularisation, alpha and the blend's
weight; `clarion experiment recs`) and checked on seed 7, where they did as well
(BENCHMARKS.md). A product the subscriber already bought is not filtered out: shoppers buy
again what they like, and filtering halved hit-rate@5 on the world.

Pure: arrays in (the store reads them), product ids out. Fitting runs on the CPU with
`threads` OpenMP threads; ranking is numpy, a batch of subscribers at a time; nothing is
downloaded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

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

    factors: int = 16
    regularization: float = 1.0
    alpha: float = 2.0
    iterations: int = 15
    popularity_weight: float = 1.0
    threads: int = 1
    seed: int = 1
    scores_per_batch: int = 20_000_000  # subscribers x products ranked at a time (80 MB)


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
    # imported here: implicit loads its compiled extensions on import, which a process
    # that never trains should not pay for (threadpoolctl comes with it)
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    users, rows = np.unique(interactions.subscribers, return_inverse=True)
    n_products = len(interactions.product_ids)
    weights = sp.csr_matrix(
        (interactions.weights.astype(np.float32), (rows, interactions.products)),
        shape=(len(users), n_products),
    )
    weights.sum_duplicates()
    confidence = weights.copy()
    confidence.data = 1.0 + params.alpha * confidence.data
    # implicit's own threads do the work; BLAS's would only compete with them (implicit
    # checks, and warns, when the model is made)
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=params.factors, regularization=params.regularization, alpha=1.0,
            iterations=params.iterations, num_threads=params.threads,
            random_state=params.seed, calculate_training_loss=False,
        )  # fmt: skip
        model.fit(confidence, show_progress=False)
    fitted_s = time.perf_counter() - started
    lists = _ranked(
        np.asarray(model.user_factors, dtype=np.float32),
        np.asarray(model.item_factors, dtype=np.float32),
        _scaled(np.asarray(weights.sum(axis=0)).ravel()),
        interactions,
        params,
    )
    return Recommendations(
        subscribers=users.astype(np.int64),
        lists=lists,
        popular=popularity(interactions),
        summary={
            "rows": int(weights.nnz),
            "subscribers": len(users),
            "products": n_products,
            "in_stock": int(interactions.in_stock.sum()),
            "factors": params.factors,
            "iterations": params.iterations,
            "regularization": params.regularization,
            "alpha": params.alpha,
            "popularity_weight": params.popularity_weight,
            "fit_s": round(fitted_s, 3),
            "rank_s": round(time.perf_counter() - started - fitted_s, 3),
        },
    )


def _scaled(values: npt.NDArray[np.floating[Any]]) -> Floats:
    top = float(values.max()) if len(values) else 0.0
    return (values / top if top > 0 else values).astype(np.float32)


def _ranked(
    user_factors: Floats,
    item_factors: Floats,
    popular: Floats,
    interactions: Interactions,
    params: Params,
) -> list[list[str]]:
    """Each subscriber's `LIST_SIZE` best in-stock products by the blended score, a block
    of subscribers at a time."""
    n_products = len(item_factors)
    in_stock = interactions.in_stock
    n = min(LIST_SIZE, int(in_stock.sum()))
    if n == 0:
        return [[] for _ in range(len(user_factors))]
    boost = params.popularity_weight * popular
    boost[~in_stock] = -np.inf
    ids = np.asarray(interactions.product_ids, dtype=object)
    batch = max(1, params.scores_per_batch // max(n_products, 1))
    lists: list[list[str]] = []
    for start in range(0, len(user_factors), batch):
        scores = user_factors[start : start + batch] @ item_factors.T
        best = np.abs(scores).max(axis=1, keepdims=True)
        scores /= np.where(best > 0, best, 1.0)
        scores += boost
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
        lists.extend(ids[np.take_along_axis(top, order, axis=1)].tolist())
    return lists
