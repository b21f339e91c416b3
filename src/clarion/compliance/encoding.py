"""SMS encoding and segment count (GSM 03.38 / UCS-2), as Twilio's segment calculator counts."""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 basic character set (one septet each).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: escape + char, two septets each.
_GSM_EXTENDED = frozenset("\f^{}\\[~]|€")

_GSM_SINGLE, _GSM_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67


@dataclass(frozen=True, slots=True)
class SmsSegments:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    non_gsm: tuple[str, ...]  # characters that forced UCS-2, in order of first appearance


def _gsm_units(ch: str) -> int:
    return 2 if ch in _GSM_EXTENDED else 1


def sms_segments(text: str) -> SmsSegments:
    """Encoding and number of SMS parts for `text`.

    A character (an escape pair, a surrogate pair) is never split across parts, so a part may
    carry one unit less than its capacity.
    """
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
        return SmsSegments(encoding, 1 if units else 0, units, non_gsm)
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return SmsSegments(encoding, segments, units, non_gsm)
