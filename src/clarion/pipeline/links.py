"""Tracked short links: every URL of a campaign's message becomes a per-recipient link on the
brand's link domain, `https://{domain}/l/{code}`.

A code is one AES block, encrypted: the link's id (48 bits), the subscriber's (48 bits) and
32 zero bits, written base64url (22 characters). The redirect needs no lookup to know whose
click it is, a code cannot be made up (a guess decrypts to non-zero check bits but once in
four billion), and it shows nothing (neither id, nor how many links or subscribers there
are). One block under ECB is a keyed permutation of distinct inputs — no pattern to leak.
Nothing is written per recipient while sending: the campaign's links are registered once,
and the message a click belongs to is derived (`domain.ids.campaign_message_id`).

Which URLs are tracked: those of a campaign's texts that do not depend on the subscriber
(found in a render with no subscriber fields, brand macros filled in); each recipient's
message has them replaced after rendering. A URL built from a subscriber's fields
(`https://shop.example/{{ cart_id }}`) is sent as it is.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CODE_CHARS = 22
_BLOCK = struct.Struct(">HIHII")  # link id (16 + 32 bits), subscriber id (16 + 32), check
_MAX_ID = 1 << 48
_CONTEXT = b"clarion/short-links/v1"
# A URL as people write them in messages: http(s)://, then anything up to a space, a quote
# or an angle bracket; trailing punctuation that ends the sentence is not part of it.
_URL = re.compile(r"""https?://[^\s<>"'{}|\\^`]+""", re.IGNORECASE)
_TRAILING = ".,;:!?)]"
# what may follow a URL that the URL pattern would not take in (so the URL ends there)
_ENDS = frozenset(" \t\r\n<>\"'{}|\\^`")
_PAD = b"\0\0"


def links_base(link_domain: str | None, links_url: str) -> str:
    """Where a brand's short links point: `https://{its link domain}/l/`, else the install's
    links URL's `/l/`."""
    if link_domain:
        return f"https://{link_domain}/l/"
    return f"{links_url.rstrip('/')}/l/"


def find_urls(text: str) -> list[str]:
    """The URLs of `text`, first occurrence first, each once."""
    seen: dict[str, None] = {}
    for m in _URL.finditer(text):
        url = _clean(m.group(0))
        if len(url) > len("https://"):
            seen.setdefault(url, None)
    return list(seen)


@functools.lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def _cipher(secret: str) -> Cipher[modes.ECB]:
    # ECB over single blocks of distinct plaintexts is a keyed permutation (see above)
    return Cipher(algorithms.AES(_key(secret)), modes.ECB())


def make_codes(secret: str, pairs: Sequence[tuple[int, int]]) -> list[str]:
    """The codes of (link id, subscriber id) pairs, in one pass of the cipher."""
    if not pairs:
        return []
    for link, sub in pairs:
        if not (0 < link < _MAX_ID and 0 < sub < _MAX_ID):
            raise ValueError(f"ids out of range for a short link: {link}, {sub}")
    enc = _cipher(secret).encryptor()
    # a block is link id (48 bits), subscriber id (48 bits), 32 zero check bits
    plain = b"".join((link << 80 | sub << 32).to_bytes(16, "big") for link, sub in pairs)
    sealed = enc.update(plain) + enc.finalize()
    # base64 of a block is 22 characters and "==". Two zero bytes after each block make it
    # 18 bytes, 24 characters, so one encoding of them all gives each block's 22 first
    # (the 22nd character's low bits are the padding's zeros either way)
    padded = _PAD.join([sealed[i : i + 16] for i in range(0, len(sealed), 16)]) + _PAD
    text = base64.urlsafe_b64encode(padded).decode("ascii")
    return [text[i : i + CODE_CHARS] for i in range(0, len(text), 24)]


def read_code(secret: str, code: str) -> tuple[int, int] | None:
    """(link id, subscriber id) of a code `make_codes` made with `secret`; None for any
    other string."""
    if len(code) != CODE_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(code.encode("ascii") + b"==")
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) != 16 or base64.urlsafe_b64encode(raw)[:CODE_CHARS].decode() != code:
        return None  # not the one spelling of these bytes
    dec = _cipher(secret).decryptor()
    hi_link, lo_link, hi_sub, lo_sub, check = _BLOCK.unpack(dec.update(raw) + dec.finalize())
    if check != 0:
        return None
    return hi_link << 32 | lo_link, hi_sub << 32 | lo_sub


@dataclass(frozen=True)
class Rewriter:
    """A campaign variant's tracked links (URL → link id); `base` is `https://{domain}/l/`.
    A URL of a message is replaced only when it is one of them whole: a URL that only
    begins with one (a subscriber's field after it) is left as it is."""

    base: str
    links: Mapping[str, int]
    secret: str

    def short_length(self) -> int:
        return len(self.base) + CODE_CHARS

    def apply(self, texts: Sequence[str], subscriber_ids: Sequence[int]) -> list[str]:
        """Each recipient's text with every tracked URL replaced by their short link."""
        if not self.links:
            return list(texts)
        spans = [self._spans(t) for t in texts]
        pairs = [
            (link, sid) for found, sid in zip(spans, subscriber_ids, strict=True)
            for _, _, link in found
        ]  # fmt: skip
        codes = iter(make_codes(self.secret, pairs))
        base, out = self.base, []
        for text, found in zip(texts, spans, strict=True):
            if len(found) == 1:  # the common case, without building a list
                start, end, _ = found[0]
                text = text[:start] + base + next(codes) + text[end:]
            elif found:
                parts, at = [], 0
                for start, end, _ in found:
                    parts += [text[at:start], base, next(codes)]
                    at = end
                parts.append(text[at:])
                text = "".join(parts)
            out.append(text)
        return out

    def _spans(self, text: str) -> list[tuple[int, int, int]]:
        """Where the tracked URLs are, in order: each found by `str.find` (a campaign has a
        URL or two; a scan of every URL in every message cost twice as much), and taken
        only where the URL the text has there is that one whole."""
        found = []
        for url, link in self.links.items():
            start = text.find(url)
            while start >= 0:
                end = start + len(url)
                if end == len(text) or text[end] in _ENDS or self._whole(text, start, url):
                    found.append((start, end, link))
                start = text.find(url, end)
        if len(found) > 1:
            found.sort()
        return found

    @staticmethod
    def _whole(text: str, start: int, url: str) -> bool:
        """Whether the URL at `start` is `url` whole (what follows it is the sentence's
        punctuation, not more of the URL)."""
        m = _URL.match(text, start)
        return m is not None and _clean(m.group(0)) == url


def _clean(match: str) -> str:
    url = match.rstrip(_TRAILING)
    if url.count("(") > url.count(")") and match[len(url) :].startswith(")"):
        url += ")"  # a URL that closes its own bracket (Wikipedia's)
    return url


# --- who clicked ----------------------------------------------------------------------------

# Fetchers that are not a person: link unfurlers (chat apps and social networks fetch a link
# to show its preview; iMessage sends facebookexternalhit and Twitterbot), security scanners
# (mail and SMS firewalls open every link before the person does), crawlers, and HTTP
# libraries. Matched case-insensitively anywhere in the User-Agent.
_BOT_MARKS = (
    "bot", "crawler", "spider", "facebookexternalhit", "facebot", "slack", "whatsapp",
    "telegram", "discord", "skypeuripreview", "bingpreview", "google-safety",
    "googleimageproxy", "preview", "embedly", "vkshare", "pinterest", "linkedin",
    "barracuda", "proofpoint", "mimecast", "symantec", "forcepoint", "trend micro",
    "cloudflare-radar", "headless", "phantomjs", "python-requests", "python-httpx",
    "aiohttp", "curl/", "wget/", "go-http-client", "okhttp", "java/", "libwww",
    "scanner", "scan", "check", "monitor", "fetch",
)  # fmt: skip
_BOTS = re.compile("|".join(re.escape(s) for s in _BOT_MARKS), re.IGNORECASE)
HUMAN, HEAD, BOT = "human", "head", "bot"


def click_kind(method: str, user_agent: str | None) -> str:
    """`human`, or why not: `head` (a HEAD request: something checking the link) or `bot`
    (no user agent, or an unfurler's, a scanner's, a crawler's, a library's)."""
    if method.upper() == "HEAD":
        return HEAD
    if not user_agent or _BOTS.search(user_agent):
        return BOT
    return HUMAN
