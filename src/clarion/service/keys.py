"""API keys: create, list, rotate and revoke a brand's keys, and find the key a request
carries. A key grants its scopes (`domain.keys.SCOPES`); a key may only make keys whose
scopes it holds itself, so no key can mint a stronger one."""

from __future__ import annotations

from collections.abc import Sequence

from clarion.domain.keys import SCOPES, ApiKey, invalid_scopes
from clarion.errors import Forbidden, InvalidInput
from clarion.service.context import Services
from clarion.store import api_keys, brands

# The longest secret worth hashing: Clarion's are 47 characters.
MAX_SECRET_CHARS = 200
MAX_NAME_CHARS = 100


def _check(name: str, scopes: Sequence[str], rate_per_s: float | None) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise InvalidInput(f"1 to {MAX_NAME_CHARS} characters, no NUL", field="name")
    if not scopes:
        raise InvalidInput(f"at least one of {', '.join(SCOPES)}", field="scopes")
    if bad := invalid_scopes(list(scopes)):
        raise InvalidInput(
            f"{', '.join(map(repr, bad))} is no scope (one of {', '.join(SCOPES)})",
            field="scopes",
        )
    if rate_per_s is not None and not 0 < rate_per_s <= 100_000:
        raise InvalidInput("more than 0 and at most 100000 requests a second", field="rate_per_s")


def _within(held: Sequence[str] | None, wanted: Sequence[str]) -> None:
    if held is not None and (beyond := sorted(set(wanted) - set(held))):
        raise Forbidden(f"a key cannot grant scopes it does not hold: {', '.join(beyond)}")


async def create(
    svc: Services,
    brand_id: int,
    name: str,
    scopes: Sequence[str] = SCOPES,
    *,
    rate_per_s: float | None = None,
    by: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the brand: (the key, its secret, shown this once). `by`: the key that
    asks (None: an operator)."""
    _check(name, scopes, rate_per_s)
    _within(by.scopes if by else None, scopes)
    await brands.get_brand(svc.pool, brand_id)  # NotFound for no such brand
    return await api_keys.create(
        svc.pool, brand_id, name.strip(), sorted(set(scopes), key=SCOPES.index),
        rate_per_s=rate_per_s,
    )  # fmt: skip


async def listed(
    svc: Services, brand_id: int, *, after_id: int = 0, limit: int = 100
) -> list[ApiKey]:
    """The brand's keys (revoked ones too, with when), without their secrets."""
    return await api_keys.list_keys(svc.pool, brand_id, after_id=after_id, limit=limit)


async def get(svc: Services, brand_id: int, key_id: int) -> ApiKey:
    return await api_keys.get_key(svc.pool, brand_id, key_id)


async def rotate(
    svc: Services, brand_id: int, key_id: int, *, by: ApiKey | None = None
) -> tuple[ApiKey, str]:
    """A new secret for a live key (same name, scopes, rate); the old one stops working."""
    _within(by.scopes if by else None, (await get(svc, brand_id, key_id)).scopes)
    return await api_keys.rotate(svc.pool, brand_id, key_id)


async def revoke(svc: Services, brand_id: int, key_id: int) -> ApiKey:
    """Revoke a key: its next request gets 401."""
    return await api_keys.revoke(svc.pool, brand_id, key_id)


async def authenticate(svc: Services, secret: str) -> ApiKey | None:
    """The live key a request's bearer secret is (None: unknown, malformed or revoked)."""
    if not 0 < len(secret) <= MAX_SECRET_CHARS:
        return None
    return await api_keys.authenticate(svc.pool, secret)


async def touch(svc: Services, key_ids: Sequence[int]) -> None:
    """Record that these keys were used (the API calls it at most once a minute a key)."""
    await api_keys.touch(svc.pool, key_ids)
