"""Who calls the `/v1` API: the bearer key a request carries, whether it holds the scope the
route needs, and whether it is within its rate. A revoked key is refused at its next
request: keys are looked up on every request, not cached."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from clarion import service
from clarion.api.errors import ApiError
from clarion.api.ratelimit import RateLimiter, retry_after
from clarion.domain.keys import ApiKey
from clarion.domain.ports import Clock

# A key's last use is recorded at most this often (a write per request would cost more
# than the request).
_TOUCH_EVERY_S = 60.0


@dataclass
class Auth:
    svc: service.Services
    clock: Clock
    rate_per_s: float = 100.0  # a key's requests a second unless it has a rate of its own
    limiter: RateLimiter = field(default_factory=RateLimiter)
    _touched: dict[int, float] = field(default_factory=dict)

    def require(self, scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
        """A dependency: the request's key, which holds `scope` and is within its rate."""

        async def caller(request: Request) -> ApiKey:
            key = await self.key_of(request)
            if scope not in key.scopes:
                raise ApiError(
                    403, f"this key lacks the {scope!r} scope (it has {', '.join(key.scopes)})",
                    code="insufficient_scope",
                )  # fmt: skip
            now_s = self.clock.monotonic()
            wait_s = self.limiter.take(key.id, key.rate_per_s or self.rate_per_s, now_s)
            if wait_s > 0:
                raise ApiError(
                    429, f"rate limit of {key.rate_per_s or self.rate_per_s:g} requests a second",
                    headers={"Retry-After": retry_after(wait_s)},
                )  # fmt: skip
            if now_s - self._touched.get(key.id, -_TOUCH_EVERY_S) >= _TOUCH_EVERY_S:
                self._touched[key.id] = now_s
                await service.keys.touch(self.svc, [key.id])
            return key

        return caller

    async def key_of(self, request: Request) -> ApiKey:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        key = None
        if scheme.lower() == "bearer" and secret.strip():
            key = await service.keys.authenticate(self.svc, secret.strip())
        if key is None:
            raise ApiError(
                401, "a valid API key is required: Authorization: Bearer <key>",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        return key
