"""API keys: what a key may do (its scopes) and how it is shown (never its secret)."""

from __future__ import annotations

from datetime import datetime

import msgspec

# read: GET anything of the brand's; write: change subscribers, events, the catalog, segments,
# campaigns' drafts and keys; send: launch, pause, resume and cancel campaigns, and send
# transactional messages.
SCOPES = ("read", "write", "send")


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A brand's API key as listed: its secret is shown once, at creation or rotation, and
    only its SHA-256 is kept; `hint` is the secret's last four characters, to tell keys
    apart."""

    id: int
    brand_id: int
    name: str
    scopes: list[str]
    hint: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    rate_per_s: float | None  # requests a second it may make (None: the install's default)


def invalid_scopes(scopes: list[str]) -> list[str]:
    """The names in `scopes` that are no scope."""
    return [s for s in scopes if s not in SCOPES]
