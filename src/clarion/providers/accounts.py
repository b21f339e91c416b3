"""Provider accounts as data: a name, a kind, and settings whose secrets are references to
environment variables (never stored, never logged). `build` turns an account into the
adapter that talks to it."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from clarion.bus.jetstream import Bus
from clarion.config import Settings
from clarion.domain.ids import batch_id
from clarion.domain.records import InboundBatch, InboundMessage, Receipt, ReceiptBatch
from clarion.errors import ConfigurationError, InvalidInput
from clarion.providers.base import Provider

KINDS = ("sim", "twilio", "smpp", "smtp", "sendgrid")
# Settings that are secrets: they must be "env:VARIABLE" references.
SECRETS = frozenset({"auth_token", "password", "api_key", "secret"})
# The settings each kind takes (required first).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sim": ((), ("url", "secret")),
    "twilio": (("account_sid", "auth_token"), ("api_base", "lookup_base")),
    "smpp": (
        ("host", "port", "system_id", "password"),
        ("binds", "window", "submit_id_base", "receipt_id_base"),
    ),
    "smtp": (
        ("host",),
        ("port", "username", "password", "tls", "dkim_selector", "dkim_domain", "dkim_key_file"),
    ),
    "sendgrid": (("api_key",), ("webhook_public_key", "base_url")),
}


def check(name: str, kind: str, settings: Mapping[str, str]) -> None:
    """Refuse an account that could not work or that would store a secret in the clear."""
    if kind not in FIELDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    required, optional = FIELDS[kind]
    for key in settings:
        if key not in required and key not in optional:
            raise InvalidInput(f"{name}: unknown setting {key!r} for {kind}", field=key)
    for key in required:
        if not settings.get(key):
            raise InvalidInput(f"{name}: {kind} needs {key!r}", field=key)
    for key in SECRETS & settings.keys():
        if not settings[key].startswith("env:"):
            raise InvalidInput(
                f"{name}: {key} must reference an environment variable (env:NAME);"
                " secrets are not stored",
                field=key,
            )


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
