"""Provider accounts turned into adapters: `build` makes the adapter that talks to an
account, its settings checked (`domain.accounts.check`) and its "env:" references read from
the environment (secrets are never stored, never logged)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from clarion.config import Settings
from clarion.domain.accounts import check
from clarion.domain.ids import batch_id
from clarion.domain.ports import Bus, Provider
from clarion.domain.records import InboundBatch, InboundMessage, Receipt, ReceiptBatch
from clarion.errors import ConfigurationError


def resolve(name: str, value: str, env: Mapping[str, str]) -> str:
    """A setting's value: an "env:VAR" reference is read from the environment."""
    if not value.startswith("env:"):
        return value
    var = value.removeprefix("env:")
    if var not in env:
        raise ConfigurationError(
            f"provider account {name!r}: environment variable {var} is not set"
        )
    return env[var]


def build(
    name: str,
    kind: str,
    settings: Mapping[str, Any],
    app: Settings,
    env: Mapping[str, str] = os.environ,
    bus: Bus | None = None,
) -> Provider:
    """The adapter for an account. Webhooks reach it at /webhooks/{name}/…; an SMPP account's
    receipts and inbound messages arrive over its binds and go onto `bus`."""
    check(name, kind, {k: str(v) for k, v in settings.items()})
    s = {k: resolve(name, str(v), env) for k, v in settings.items()}
    if kind == "sim":
        from clarion.providers.sim import SimProvider

        secret = s.get("secret") or app.sim_secret
        if not secret:
            raise ConfigurationError(f"provider {name}: the simulator needs a secret")
        return SimProvider(
            s.get("url", app.sim_url),
            secret,
            callback_url=f"{app.public_url}/webhooks/{name}/status",
            inbound_url=f"{app.public_url}/webhooks/{name}/inbound",
            name=name,
        )
    if kind == "twilio":
        from clarion.providers.twilio import API_BASE, LOOKUP_BASE, TwilioProvider

        return TwilioProvider(
            s["account_sid"],
            s["auth_token"],
            public_url=app.public_url,
            api_base=s.get("api_base", API_BASE),
            lookup_base=s.get("lookup_base", LOOKUP_BASE),
            name=name,
        )
    if kind == "smpp":
        from clarion.providers.smpp import SmppProvider

        if bus is None:
            raise ConfigurationError(f"provider account {name!r}: SMPP needs the bus")
        on_receipts, on_inbound = _publishers(name, bus)
        return SmppProvider(
            host=s["host"],
            port=int(s["port"]),
            system_id=s["system_id"],
            password=s["password"],
            on_receipts=on_receipts,
            on_inbound=on_inbound,
            name=name,
            binds=int(s.get("binds", 1)),
            window=int(s.get("window", 10)),
            submit_id_base=int(s["submit_id_base"]) if "submit_id_base" in s else None,
            receipt_id_base=int(s["receipt_id_base"]) if "receipt_id_base" in s else None,
        )
    if kind == "smtp":
        from pathlib import Path

        from clarion.email.message import DkimKey
        from clarion.providers.smtp import SmtpProvider

        dkim = None
        if "dkim_key_file" in s:
            pem = Path(s["dkim_key_file"]).read_bytes()
            dkim = DkimKey(s["dkim_selector"], s["dkim_domain"], pem)
        smtp = SmtpProvider(
            host=s["host"],
            port=int(s.get("port", 587)),
            username=s.get("username"),
            password=s.get("password"),
            tls=s.get("tls", "auto"),  # type: ignore[arg-type]
            dkim=dkim,
        )
        smtp.name = name
        return cast(Provider, smtp)
    if kind == "sendgrid":
        from clarion.providers.sendgrid import SendGridProvider

        grid = SendGridProvider(
            s["api_key"],
            webhook_public_key=s.get("webhook_public_key"),
            base_url=s.get("base_url", "https://api.sendgrid.com"),
        )
        grid.name = name
        return cast(Provider, grid)
    raise ConfigurationError(f"provider account {name!r}: {kind} accounts are not wired yet")


def _publishers(
    name: str, bus: Bus
) -> tuple[
    Callable[[list[Receipt]], Awaitable[None]], Callable[[list[InboundMessage]], Awaitable[None]]
]:
    """Callbacks that put what arrives over a session onto the bus (ids derived from the
    content, so a redelivered deliver_sm changes nothing)."""

    async def on_receipts(receipts: list[Receipt]) -> None:
        key = batch_id(name, *(f"{r.provider_message_id}:{r.status}" for r in receipts))
        out = ReceiptBatch(batch_id=key, provider=name, receipts=receipts)
        await bus.publish("receipts", out, msg_id=key)

    async def on_inbound(inbound: list[InboundMessage]) -> None:
        key = batch_id(name, "mo", *(m.provider_message_id for m in inbound))
        out = InboundBatch(batch_id=key, provider=name, messages=inbound)
        await bus.publish("inbound", out, msg_id=key)

    return on_receipts, on_inbound
