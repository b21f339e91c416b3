"""Brand use cases: brands, their API keys, providers and routes."""

from __future__ import annotations

from clarion.domain.rows import AccountRow
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
