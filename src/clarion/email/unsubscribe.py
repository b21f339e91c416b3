"""One-click unsubscribe (RFC 8058): sealed tokens naming a brand's subscriber (the
`/u/{token}` endpoint a mail client POSTs to is `clarion.api.unsubscribe`). The same tokens,
sealed for another purpose (`CONFIRM`: a sign-up's confirmation link, naming the brand and
the ledger entry that asked), cannot stand in for each other.

A token is base64url(version 2 ‖ AES-SIV(brand id ‖ subscriber id)), with a key derived
from the secret: the endpoint needs no database to know whom it is about, a token cannot be
made up or pointed at someone else without the secret (SIV authenticates), and it does not
show the ids (sequential ids would tell a reader how big a list is, and invite guessing).
Version 1 tokens (ids in the clear, HMAC-SHA256 truncated to 128 bits), made before, are still
read. Tokens do not expire: CAN-SPAM wants the opt-out to work for at least 30 days after the
send, and an old email's link should still work.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from clarion.errors import InvalidInput

_V1, _V2 = 1, 2
_IDS = struct.Struct(">QQ")  # brand id, subscriber id
_V1_IDS = struct.Struct(">BQQ")  # version, brand id, subscriber id
_MAC_BYTES = 16
_TOKEN_BYTES = 1 + _IDS.size + 16  # version, the sealed ids, SIV's tag (v1: ids and a MAC)
_CONTEXT = b"clarion/unsubscribe/v1\x00"  # keeps these MACs apart from other uses of a secret
_V2_CONTEXT = b"clarion/unsubscribe/v2"
UNSUBSCRIBE = b""  # the purpose of unsubscribe links (as made before purposes existed)
CONFIRM = b"confirm-email-signup"  # a double opt-in link: (brand id, the pending entry's id)


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, ids: bytes) -> bytes:
    return hmac.new(_key(secret), _CONTEXT + ids, hashlib.sha256).digest()[:_MAC_BYTES]


@functools.lru_cache(maxsize=8)
def _siv(secret: str | bytes) -> AESSIV:
    """AES-256-SIV keyed by the secret (a 512-bit key derived with HMAC-SHA512)."""
    return AESSIV(hmac.new(_key(secret), _V2_CONTEXT, hashlib.sha512).digest())


def _data(version: bytes, purpose: bytes) -> list[bytes]:
    """SIV's associated data: the version, and the purpose unless it is unsubscribing."""
    return [version, purpose] if purpose else [version]


def make_token(
    secret: str | bytes, brand_id: int, subscriber_id: int, purpose: bytes = UNSUBSCRIBE
) -> str:
    """A URL-safe token (44 characters, no padding) naming `subscriber_id` of `brand_id`
    without showing either; read back only for the same `purpose`."""
    if not secret:
        raise InvalidInput("an unsubscribe secret is required", field="secret")
    if not (0 <= brand_id < 2**64 and 0 <= subscriber_id < 2**64):
        raise InvalidInput("ids must fit in 64 bits", field="subscriber_id")
    version = bytes([_V2])
    sealed = _siv(secret).encrypt(_IDS.pack(brand_id, subscriber_id), _data(version, purpose))
    return base64.urlsafe_b64encode(version + sealed).rstrip(b"=").decode()


def read_token(secret: str | bytes, token: str, purpose: bytes = UNSUBSCRIBE) -> tuple[int, int]:
    """(brand id, subscriber id) of a token `make_token` made with `secret` for `purpose`.
    Raises `InvalidInput` (field "token") for anything else: malformed, tampered, another
    secret or purpose."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidInput("malformed unsubscribe token", field="token") from exc
    if len(raw) != _TOKEN_BYTES or not secret:
        raise InvalidInput("malformed unsubscribe token", field="token")
    if raw[0] == _V2:
        try:
            opened = _siv(secret).decrypt(raw[1:], _data(raw[:1], purpose))
            brand_id, subscriber_id = _IDS.unpack(opened)
        except InvalidTag:
            raise InvalidInput("unsubscribe token does not verify", field="token") from None
        return brand_id, subscriber_id
    if purpose != UNSUBSCRIBE:  # version 1 was only ever made for unsubscribing
        raise InvalidInput("malformed token", field="token")
    ids, mac = raw[: _V1_IDS.size], raw[_V1_IDS.size :]
    if not hmac.compare_digest(mac, _mac(secret, ids)):
        raise InvalidInput("unsubscribe token does not verify", field="token")
    version, brand_id, subscriber_id = _V1_IDS.unpack(ids)
    if version != _V1:
        raise InvalidInput(f"unknown token version {version}", field="token")
    return brand_id, subscriber_id
