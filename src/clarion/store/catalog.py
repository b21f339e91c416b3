"""A brand's product catalog: upserted in batches, read one at a time or in pages."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from clarion.domain.catalog import Product, StoredProduct
from clarion.errors import NotFound
from clarion.store.db import Pool

_json = msgspec.json.Encoder().encode

_COLUMNS = (
    "id, name, url, price::float8 AS price, image_url, categories, in_stock, created_at, updated_at"
)


async def upsert(pool: Pool, brand_id: int, products: Sequence[Product]) -> int:
    """Insert or replace the products (by the shop's id); returns how many were written."""
    if not products:
        return 0
    cols = list(zip(*(
        (p.id, p.name, p.url, p.price, p.image_url, _json(p.categories).decode(), p.in_stock)
        for p in products
    ), strict=True))  # fmt: skip
    await pool.execute(
        """
        INSERT INTO products (brand_id, id, name, url, price, image_url, categories, in_stock)
        SELECT $1, p.id, p.name, p.url, p.price, p.image_url,
               ARRAY(SELECT jsonb_array_elements_text(p.categories::jsonb)), p.in_stock
        FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::text[],
                    $8::bool[]) AS p(id, name, url, price, image_url, categories, in_stock)
        ON CONFLICT (brand_id, id) DO UPDATE SET name = excluded.name, url = excluded.url,
            price = excluded.price, image_url = excluded.image_url,
            categories = excluded.categories, in_stock = excluded.in_stock, updated_at = now()
        """,
        brand_id, *(list(c) for c in cols),
    )  # fmt: skip
    return len(products)


async def get(pool: Pool, brand_id: int, product_id: str) -> StoredProduct:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM products WHERE brand_id = $1 AND id = $2", brand_id, product_id
    )
    if row is None:
        raise NotFound("product", product_id)
    return msgspec.convert(dict(row), StoredProduct)


async def page(
    pool: Pool, brand_id: int, *, after_seq: int, limit: int
) -> list[tuple[int, StoredProduct]]:
    """The brand's products in the order they were first upserted: (position, product)."""
    rows = await pool.fetch(
        f"SELECT seq, {_COLUMNS} FROM products WHERE brand_id = $1 AND seq > $2"
        " ORDER BY brand_id, seq LIMIT $3",
        brand_id, after_seq, limit,
    )  # fmt: skip
    return [(r["seq"], msgspec.convert(dict(r), StoredProduct)) for r in rows]
