"""Web UI users: create one for a brand, sign in (locked for a while after repeated wrong
passwords), and the sessions a signed-in browser holds, each with its CSRF token.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
parameter set); hashing costs tens of milliseconds of CPU on purpose, so it runs in a
thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from clarion.domain.users import (
    FAILURES_BEFORE_LOCK,
    LOCK_FOR,
    MAX_PASSWORD_CHARS,
    SESSION_FOR,
    User,
    WebSession,
    locked,
    normal_email,
    password_problem,
)
from clarion.errors import AccountLocked, InvalidInput, SignInFailed
from clarion.service.context import Services
from clarion.store import brands, users

_hasher = PasswordHasher()


@functools.cache
def _nobody_hash() -> str:
    """Verified when the address is unknown, so that a wrong address takes as long to refuse
    as a wrong password (a timing difference would tell which addresses have accounts). Made
    at the first need: every `clarion` command imports this module."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def create(svc: Services, brand_id: int, email: str, password: str) -> User:
    """A new user of the brand. `InvalidInput` for an address that is none or a password
    shorter than 12 characters; `Duplicate` for an address already in use (in any brand);
    `NotFound` for no such brand."""
    address = normal_email(email)
    if address is None:
        raise InvalidInput("not an email address", field="email")
    if problem := password_problem(password):
        raise InvalidInput(problem, field="password")
    await brands.get_brand(svc.pool, brand_id)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    return await users.create(svc.pool, brand_id, address, password_hash)


async def set_password(svc: Services, brand_id: int, user_id: int, password: str) -> None:
    """A new password for the brand's user; their sessions end."""
    if problem := password_problem(password):
        raise InvalidInput(problem, field="password")
    await users.get(svc.pool, brand_id, user_id)
    await users.set_password(svc.pool, user_id, await asyncio.to_thread(_hasher.hash, password))


async def listed(svc: Services, brand_id: int) -> list[User]:
    return await users.list_users(svc.pool, brand_id)


@dataclass(frozen=True)
class SignedIn:
    """A new session: the token for the browser's cookie (shown this once) and its CSRF
    token."""

    user: User
    token: str
    csrf_token: str
    expires_at: datetime


async def sign_in(svc: Services, email: str, password: str, *, now: datetime) -> SignedIn:
    """A session for the user with this address and password. `SignInFailed` for a wrong
    address or password (the same answer for both); the fifth wrong password in a row locks
    the account for 15 minutes, and `AccountLocked` is the answer to every attempt until
    then, the right password too."""
    found = None
    if len(password) <= MAX_PASSWORD_CHARS and (address := normal_email(email)) is not None:
        found = await users.credentials(svc.pool, address)
    if found is None:
        await asyncio.to_thread(_verify, _nobody_hash(), password[:MAX_PASSWORD_CHARS])
        raise SignInFailed()
    if locked(found, now):
        assert found.locked_until is not None
        raise AccountLocked(found.locked_until)
    if not await asyncio.to_thread(_verify, found.password_hash, password):
        until = now + LOCK_FOR
        left = await users.record_failure(
            svc.pool, found.user.id, limit=FAILURES_BEFORE_LOCK, lock_until=until
        )
        if left == 0:
            raise AccountLocked(until)
        raise SignInFailed()
    rehashed = None
    if _hasher.check_needs_rehash(found.password_hash):
        rehashed = await asyncio.to_thread(_hasher.hash, password)
    await users.record_success(svc.pool, found.user.id, rehashed, now)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = now + SESSION_FOR
    await users.create_session(svc.pool, found.user.id, token, csrf, now=now, expires_at=expires_at)
    return SignedIn(found.user, token, csrf, expires_at)


async def session(svc: Services, token: str, *, now: datetime) -> WebSession | None:
    """The live session a browser's cookie names (None: unknown, signed out or expired)."""
    if not 0 < len(token) <= 100:
        return None
    return await users.session(svc.pool, token, now)


async def sign_out(svc: Services, token: str) -> None:
    """End the session: its cookie signs no one in any more."""
    if 0 < len(token) <= 100:
        await users.revoke_session(svc.pool, token)
