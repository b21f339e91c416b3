"""Brands, their API keys, provider accounts and routes."""

from __future__ import annotations

from typing import Annotated

import typer

from clarion import bootstrap, service
from clarion.cli._app import brand_app, provider_app, run_async
from clarion.config import Settings
from clarion.domain.keys import SCOPES, ApiKey
from clarion.domain.rows import AccountRow


@brand_app.command("create")
def brand_create(
    slug: str,
    name: str,
    sender: Annotated[str, typer.Argument(help="A phone number or a short code.")],
    help_text: str = "",
    max_segments: Annotated[
        int, typer.Option(help="The most parts one of its SMS may have.", min=1, max=10)
    ] = 10,
) -> None:
    """Create a brand; prints its id."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            print(
                await service.brands.create(
                    infra, slug=slug, name=name, sender=sender, help_text=help_text,
                    max_segments=max_segments,
                )
            )  # fmt: skip

    run_async(go())


@provider_app.command("add")
def provider_add(
    name: str,
    kind: str,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value; secrets as env:VARIABLE (repeatable)."),
    ] = None,
) -> None:
    """Add (or replace) a provider account. Its webhooks are /webhooks/NAME/status|inbound."""
    settings = dict(item.partition("=")[::2] for item in setting or [])

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await service.brands.add_provider(infra, name, kind, settings)
            print(f"provider account {name} ({kind}) saved")

    run_async(go())


@provider_app.command("list")
def provider_list() -> None:
    """Provider accounts and their settings (references, never secret values)."""

    async def go() -> list[AccountRow]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.brands.providers(infra)

    for a in run_async(go()):
        settings = " ".join(f"{k}={v}" for k, v in sorted(a.settings.items()))
        print(f"{a.name:<16} {a.kind:<8} {settings}")


@brand_app.command("route")
def brand_route(brand_id: int, channel: str, providers: str) -> None:
    """Route a brand's channel (sms) over provider accounts, most preferred first
    ("primary,backup"): traffic moves to the next when one's circuit opens."""
    names = [n.strip() for n in providers.split(",") if n.strip()]

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await service.brands.route(infra, brand_id, channel, names)
            print(f"brand {brand_id} {channel}: {' → '.join(names)}")

    run_async(go())


@brand_app.command("api-key")
def brand_api_key(
    brand_id: int,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    scope: Annotated[
        list[str] | None,
        typer.Option(help="read, write or send; repeat for several (default: all three)."),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Requests a second (default: CLARION_API_RATE_PER_S).")
    ] = None,
) -> None:
    """Create an API key for a brand (`Authorization: Bearer <key>` on /v1); its secret is
    printed once."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            _, secret = await service.keys.create(
                infra, brand_id, name, scope or list(SCOPES), rate_per_s=rate
            )
            print(secret)

    run_async(go())


@brand_app.command("keys")
def brand_keys(brand_id: int) -> None:
    """A brand's API keys: id, name, scopes, the secret's last four characters, last use,
    revocation (never the secrets)."""

    async def go() -> list[ApiKey]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.keys.listed(infra, brand_id, limit=10_000)

    for k in run_async(go()):
        used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "live"
        print(f"{k.id:<6} {k.name:<20} {','.join(k.scopes):<16} …{k.hint}  {used:<16} {state}")


@brand_app.command("revoke-key")
def brand_revoke_key(brand_id: int, key_id: int) -> None:
    """Revoke one of a brand's API keys: its next request gets 401."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await service.keys.revoke(infra, brand_id, key_id)
            print(f"key {key_id} revoked")

    run_async(go())


@brand_app.command("macros")
def brand_macros(
    brand_id: int,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="NAME=TEXT: a `{{ brand.NAME }}` value; repeatable."),
    ] = None,
    clear: Annotated[bool, typer.Option(help="Remove every macro first.")] = False,
) -> None:
    """A brand's global macros (`{{ brand.NAME }}` in every campaign), changed with --set
    (and --clear); prints them."""

    async def go() -> dict[str, str]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            current = {} if clear else await service.brands.macros(infra, brand_id)
            if set_ or clear:
                pairs = dict(p.partition("=")[::2] for p in set_ or [])
                current = await service.brands.set_macros(infra, brand_id, current | pairs)
            return current

    for name, value in run_async(go()).items():
        print(f"brand.{name} = {value}")


@brand_app.command("link-domain")
def brand_link_domain(
    brand_id: int,
    domain: Annotated[
        str | None, typer.Argument(help="A host name pointed at Clarion; none: the install's.")
    ] = None,
) -> None:
    """Serve the brand's tracked short links (`https://DOMAIN/l/…`) on its own domain."""

    async def go() -> str | None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.links.set_link_domain(infra, brand_id, domain)

    host = run_async(go())
    print(f"brand {brand_id} links: https://{host}/l/…" if host else "the install's links URL")


@brand_app.command("attribution")
def brand_attribution(
    brand_id: int,
    click_hours: Annotated[float, typer.Option(help="An order within this long of a click.")] = 120,
    view_hours: Annotated[float, typer.Option(help="Else within this long of a delivery.")] = 24,
) -> None:
    """How long after a click, or else a delivery, an order is attributed to the message."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await service.brands.set_attribution_windows(infra, brand_id, click_hours, view_hours)

    run_async(go())
    print(
        f"brand {brand_id}: orders within {click_hours:g} h of a click, else {view_hours:g} h"
        " of a delivery"
    )
