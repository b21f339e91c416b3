"""Brand use cases: brands, their API keys, providers and routes."""

from __future__ import annotations

from typing import Any

from clarion.domain.brands import macros_in
from clarion.domain.rows import AccountRow, BrandRow
from clarion.errors import InvalidInput
from clarion.service.context import Services
from clarion.store import accounts, brands, lanes


async def create(
    svc: Services,
    *,
    slug: str,
    name: str,
    sender: str,
    help_text: str = "",
    max_segments: int = 10,
) -> int:
    """A new brand sending from `sender` (a phone number or a short code); its id."""
    return await brands.create_brand(
        svc.pool, slug=slug, name=name, sender=sender, help_text=help_text,
        max_segments=max_segments,
    )  # fmt: skip


async def route(svc: Services, brand_id: int, channel: str, providers: list[str]) -> None:
    """Send the brand's `channel` over these provider accounts, most preferred first."""
    await lanes.set_route(svc.pool, brand_id, channel, providers)


async def add_provider(svc: Services, name: str, kind: str, settings: dict[str, str]) -> None:
    """Add (or replace) a provider account; secrets only as `env:VARIABLE` references."""
    await accounts.add_account(svc.pool, name, kind, settings)


async def providers(svc: Services) -> list[AccountRow]:
    """Provider accounts with their settings (references, never secret values)."""
    return await accounts.list_accounts(svc.pool)


async def get(svc: Services, brand_id: int) -> BrandRow:
    return await brands.get_brand(svc.pool, brand_id)


async def macros(svc: Services, brand_id: int) -> dict[str, str]:
    return (await brands.get_brand(svc.pool, brand_id)).macros


async def set_macros(svc: Services, brand_id: int, raw: Any) -> dict[str, str]:
    """Replace the brand's global macros (`{{ brand.NAME }}` in every campaign); refused,
    naming the macro, if one is not a name and a text. Campaigns already sending keep the
    values they started with."""
    checked = macros_in(raw)
    await brands.set_macros(svc.pool, brand_id, checked)
    return checked


# An attribution window is at most 90 days.
MAX_WINDOW_H = 2160.0


async def set_attribution_windows(
    svc: Services, brand_id: int, click_window_h: float, view_window_h: float
) -> None:
    """How long after a click (default 5 days) or a delivery (default 24 hours) an order is
    the message's doing."""
    for field, hours in (("click_window_h", click_window_h), ("view_window_h", view_window_h)):
        if not 0 <= hours <= MAX_WINDOW_H:
            raise InvalidInput(f"between 0 and {MAX_WINDOW_H:.0f} hours", field=field)
    await brands.set_attribution_windows(svc.pool, brand_id, click_window_h, view_window_h)
