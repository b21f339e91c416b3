"""Brands, their API keys, provider accounts and routes."""

from __future__ import annotations

from typing import Annotated

import typer

from clarion import bootstrap, service
from clarion.cli._app import brand_app, provider_app, run_async
from clarion.config import Settings
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
    brand_id: int, name: Annotated[str, typer.Option(help="What the key is for.")] = "default"
) -> None:
    """Create an API key for a brand (`Authorization: Bearer <key>` on /v1); printed once."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            print(await service.brands.create_api_key(infra, brand_id, name))

    run_async(go())
