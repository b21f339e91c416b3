"""The web UI's people and their signed-in browsers, and the rules of signing in."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # hashing a longer one would only be a way to spend our CPU
MAX_EMAIL_CHARS = 254  # RFC 5321's limit on a path
FAILURES_BEFORE_LOCK = 5  # wrong passwords in a row that lock an account
LOCK_FOR = timedelta(minutes=15)
SESSION_FOR = timedelta(hours=12)


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A person who signs in to the web UI; they see only their brand."""

    id: int
    brand_id: int
    email: str
    created_at: datetime
    last_sign_in_at: datetime | None


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """A user as sign-in checks them: the hash to verify, and the lock-out state."""

    user: User
    password_hash: str
    failed_attempts: int
    locked_until: datetime | None


class WebSession(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in browser: who, in which brand (named, for the page's header), its CSRF
    token, and when it ends."""

    user: User
    brand_name: str
    csrf_token: str
    expires_at: datetime


def password_problem(password: str) -> str | None:
    """Why a new password is refused (None: it is accepted)."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"at most {MAX_PASSWORD_CHARS} characters"
    if "\x00" in password:
        return "no NUL character"
    return None


def normal_email(raw: str) -> str | None:
    """The address as stored (trimmed), or None for one that cannot be an address."""
    email = raw.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL_CHARS:
        return None
    if any(c.isspace() or c == "\x00" for c in email):
        return None
    return email


def locked(c: Credentials, now: datetime) -> bool:
    return c.locked_until is not None and c.locked_until > now
