"""A brand's product catalog: upserted by its shop in batches (`POST /v1/products/batch`),
each product checked on its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clarion.domain.catalog import MAX_BATCH, Product, StoredProduct, product_of
from clarion.errors import ClarionError, InvalidInput
from clarion.service.context import Services
from clarion.store import catalog


async def upsert(
    svc: Services, brand_id: int, raw_products: Sequence[Any]
) -> tuple[int, list[tuple[int, ClarionError]]]:
    """Insert or replace each valid product (the same id twice in a batch: the last wins);
    returns (how many were written, each rejected one's index and error)."""
    if len(raw_products) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} products a request", field="products")
    valid: dict[str, Product] = {}
    rejected: list[tuple[int, ClarionError]] = []
    for i, raw in enumerate(raw_products):
        try:
            p = product_of(raw)
        except InvalidInput as exc:
            rejected.append((i, exc))
            continue
        valid[p.id] = p
    written = await catalog.upsert(svc.pool, brand_id, list(valid.values()))
    return written, rejected


async def get(svc: Services, brand_id: int, product_id: str) -> StoredProduct:
    return await catalog.get(svc.pool, brand_id, product_id)


async def listed(
    svc: Services, brand_id: int, *, after: int = 0, limit: int = 100
) -> list[tuple[int, StoredProduct]]:
    return await catalog.page(svc.pool, brand_id, after_seq=after, limit=limit)
