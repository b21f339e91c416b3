"""A brand's products, as its shop sends them: validated one by one, so a bad product of a
batch is reported by index and the others are stored."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from clarion.errors import InvalidInput

MAX_BATCH = 1000
MAX_ID_CHARS = 200
MAX_NAME_CHARS = 500
MAX_URL_CHARS = 2000
MAX_CATEGORIES = 50
MAX_CATEGORY_CHARS = 200
MAX_PRICE = 10**10
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_FIELDS = frozenset({"id", "name", "url", "price", "image_url", "categories", "in_stock"})


class Product(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the shop's own id, as its events name it
    name: str
    url: str | None = None
    price: float | None = None
    image_url: str | None = None
    categories: list[str] = []
    in_stock: bool = True


class StoredProduct(Product, frozen=True, kw_only=True):
    created_at: datetime
    updated_at: datetime


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput("must be a string", field=field)
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput("is required", field=field)
        return None
    if len(text) > limit:
        raise InvalidInput(f"at most {limit} characters", field=field)
    if _UNSTORABLE.search(text):
        raise InvalidInput("contains a NUL or an unpaired surrogate", field=field)
    return text


def _url(value: Any, field: str) -> str | None:
    url = _text(value, field, MAX_URL_CHARS)
    if url is not None and not _URL.fullmatch(url):
        raise InvalidInput("an http or https URL", field=field)
    return url


def price_of(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("a number", field=field)
    if not 0 <= value < MAX_PRICE:
        raise InvalidInput(f"at least 0 and below {MAX_PRICE}", field=field)
    return float(value)


def product_of(raw: Any) -> Product:
    """A product from the API's JSON, or `InvalidInput` naming the field."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("a product is a JSON object", field="body")
    if unknown := sorted(map(str, set(raw) - _FIELDS)):
        extra = unknown[0][:64]
        raise InvalidInput(f"unknown field {extra!r}", field=extra or "body")
    product_id = _text(raw.get("id"), "id", MAX_ID_CHARS, required=True)
    name = _text(raw.get("name"), "name", MAX_NAME_CHARS, required=True)
    assert product_id is not None
    assert name is not None
    categories = raw.get("categories") or []
    if not isinstance(categories, list) or len(categories) > MAX_CATEGORIES:
        raise InvalidInput(f"a list of at most {MAX_CATEGORIES} names", field="categories")
    cats = [_text(c, f"categories[{i}]", MAX_CATEGORY_CHARS) for i, c in enumerate(categories)]
    in_stock = raw.get("in_stock", True)
    if not isinstance(in_stock, bool):
        raise InvalidInput("true or false", field="in_stock")
    return Product(
        id=product_id,
        name=name,
        url=_url(raw.get("url"), "url"),
        price=price_of(raw.get("price"), "price"),
        image_url=_url(raw.get("image_url"), "image_url"),
        categories=[c for c in cats if c],
        in_stock=in_stock,
    )
