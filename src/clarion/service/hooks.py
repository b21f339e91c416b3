"""A brand's outbound webhook endpoints (`/v1/webhooks`): Standard Webhooks requests for
`message.delivered`, `message.failed`, `message.clicked`, `subscriber.opted_out`,
`subscriber.opted_in` and `order.attributed` (`pipeline.hooks`; posted by
`runtime.hooks_worker`)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from clarion.errors import InvalidInput
from clarion.pipeline.hooks import EVENT_TYPES, new_secret

__all__ = ["EVENT_TYPES", "create", "delete", "disable", "enable", "get", "listed", "recent"]
from clarion.service.context import Services
from clarion.store import hooks
from clarion.store.hooks import Attempt, Endpoint

MAX_URL_CHARS = 2000
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _checked_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if len(url) > MAX_URL_CHARS or parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("an https URL", field="url")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise InvalidInput("an https URL (http only to this machine)", field="url")
    return url.strip()


def _checked_types(event_types: Sequence[str]) -> list[str]:
    if not event_types:
        raise InvalidInput("at least one event type", field="event_types")
    for i, t in enumerate(event_types):
        if t not in EVENT_TYPES:
            raise InvalidInput(f"one of {', '.join(EVENT_TYPES)}", field=f"event_types[{i}]")
    return sorted(set(event_types))


async def create(
    svc: Services, brand_id: int, url: str, event_types: Sequence[str]
) -> tuple[Endpoint, str]:
    """A new endpoint, and its signing secret (`whsec_…`, shown this once)."""
    secret = new_secret()
    made = await hooks.create(
        svc.pool, brand_id, _checked_url(url), _checked_types(event_types), secret
    )
    return made, secret


async def get(svc: Services, brand_id: int, endpoint_id: int) -> Endpoint:
    return await hooks.get(svc.pool, brand_id, endpoint_id)


async def listed(svc: Services, brand_id: int, *, after_id: int, limit: int) -> list[Endpoint]:
    return await hooks.listed(svc.pool, brand_id, after_id=after_id, limit=limit)


async def recent(svc: Services, brand_id: int, endpoint_id: int) -> list[Attempt]:
    return await hooks.recent(svc.pool, brand_id, endpoint_id)


async def delete(svc: Services, brand_id: int, endpoint_id: int) -> None:
    await hooks.delete(svc.pool, brand_id, endpoint_id)


async def enable(svc: Services, brand_id: int, endpoint_id: int) -> Endpoint:
    """Enable again an endpoint that was disabled (its pending events go at once)."""
    await hooks.enable(svc.pool, brand_id, endpoint_id)
    return await hooks.get(svc.pool, brand_id, endpoint_id)


async def disable(svc: Services, brand_id: int, endpoint_id: int, *, by: str) -> Endpoint:
    """Stop posting to an endpoint (`by`: who, kept as the reason); its events wait."""
    await hooks.disable(svc.pool, brand_id, endpoint_id, f"disabled by {by}")
    return await hooks.get(svc.pool, brand_id, endpoint_id)
