"""SMS encoding and segment count (GSM 03.38 / UCS-2), as Twilio's segment calculator counts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# GSM 03.38 basic character set (one septet each).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Any character outside the basic set: its absence means one septet per character.
_NOT_BASIC = re.compile("[^" + "".join(re.escape(ch) for ch in sorted(_GSM_BASIC)) + "]")
# Extension table: escape + char, two septets each.
_GSM_EXTENDED = frozenset("\f^{}\\[~]|€")

_GSM_SINGLE, _GSM_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67
# Providers cap a message at 1,600 characters and 10 parts; a brand may allow fewer parts
# (`brands.max_segments`), never more.
MAX_SMS_CHARS = 1_600
MAX_SEGMENTS = 10


@dataclass(frozen=True, slots=True)
class SmsSegments:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    non_gsm: tuple[str, ...]  # characters that forced UCS-2, in order of first appearance
    # The text with smart-encoding substitutions (curly quotes, dashes, …) when any apply.
    suggestion: str | None = None


# Smart encoding: look-alikes that turn a message into UCS-2, and their GSM-7 stand-ins
# (the substitutions Twilio's Smart Encoding makes).
SMART_SUBSTITUTIONS: dict[str, str] = {
    "\u00ab": '"', "\u00bb": '"', "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2033": '"', "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u02bc": "'", "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-", "\u2026": "...", "\u2022": "-", "\u00a0": " ", "\u2002": " ",
    "\u2003": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u200b": "", "\u2060": "",
    "\ufeff": "", "\u02c6": "^", "\u02dc": "~", "\u2039": "<", "\u203a": ">",
}  # fmt: skip
_SMART_TABLE = str.maketrans(SMART_SUBSTITUTIONS)


def _gsm_units(ch: str) -> int:
    return 2 if ch in _GSM_EXTENDED else 1


def sms_segments(text: str) -> SmsSegments:
    """Encoding and number of SMS parts for `text`.

    A character (an escape pair, a surrogate pair) is never split across parts, so a part may
    carry one unit less than its capacity.
    """
    if _NOT_BASIC.search(text) is None:  # the common case, without a per-character walk
        return _basic(len(text))
    return _segments(text)


@lru_cache(maxsize=1024)
def _basic(n: int) -> SmsSegments:
    """The count for `n` characters of the GSM-7 basic set (shared: it is immutable)."""
    parts = -(-n // _GSM_PART) if n > _GSM_SINGLE else (1 if n else 0)
    return SmsSegments("GSM-7", parts, n, ())


def _segments(text: str) -> SmsSegments:
    substituted = text.translate(_SMART_TABLE)
    suggestion = substituted if substituted != text else None
    non_gsm = tuple(
        dict.fromkeys(ch for ch in text if ch not in _GSM_BASIC and ch not in _GSM_EXTENDED)
    )
    if not non_gsm:
        sizes = [_gsm_units(ch) for ch in text]
        single, part, encoding = _GSM_SINGLE, _GSM_PART, "GSM-7"
    else:
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, part, encoding = _UCS2_SINGLE, _UCS2_PART, "UCS-2"
    units = sum(sizes)
    if units <= single:
        return SmsSegments(encoding, 1 if units else 0, units, non_gsm, suggestion)
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return SmsSegments(encoding, segments, units, non_gsm, suggestion)
