"""The simulated network's rules: which carrier owns a number, how long delivery takes, and
how a message fails. Deterministic per number; randomness comes from an injected `Random`."""

from __future__ import annotations

import itertools
import math
import random
import zlib
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Carrier:
    name: str
    share: float  # fraction of numbers
    latency_ms: float  # median submit → handset


CARRIERS = (
    Carrier("Verizon", 0.38, 180.0),
    Carrier("T-Mobile", 0.33, 120.0),
    Carrier("AT&T", 0.24, 250.0),
    Carrier("US Cellular", 0.05, 400.0),
)

# Twilio's error codes, which aggregators' customers recognise.
INVALID_NUMBER = ("21211", "Invalid 'To' Phone Number")
FAILURES = (
    ("30003", "Unreachable destination handset", 0.40),
    ("30005", "Unknown destination handset", 0.20),
    ("30006", "Landline or unreachable carrier", 0.15),
    ("30007", "Message filtered by carrier", 0.15),
    ("30008", "Unknown error", 0.10),
)


# Each carrier's upper bound on the number's hash point: the cumulative shares.
_BOUNDS = tuple(zip(itertools.accumulate(c.share for c in CARRIERS), CARRIERS, strict=True))


def carrier_for(number: str) -> Carrier:
    """The carrier a number belongs to (stable: a hash of the number)."""
    point = (zlib.crc32(number.encode()) % 10_000) / 10_000
    for bound, c in _BOUNDS:
        if point < bound:
            return c
    return CARRIERS[-1]


def is_invalid(number: str) -> bool:
    """Numbers the network refuses outright: not +1 NANP with 10 digits, or the fictional
    555-01XX range."""
    if not number.startswith("+1") or len(number) != 12 or not number[1:].isdigit():
        return True
    return number[5:8] == "555" and number[8:10] == "01"


class Outcome(NamedTuple):
    delivered: bool
    latency_s: float
    error_code: str | None = None
    error_message: str | None = None


def decide(
    number: str,
    rng: random.Random,
    *,
    failure_rate: float,
    latency_scale: float,
    carrier: Carrier | None = None,
) -> Outcome:
    """What happens to one accepted message (`carrier`: the number's, if known already)."""
    carrier = carrier or carrier_for(number)
    # log-normal around the carrier's median (exp of a normal: `gauss` draws two at a time)
    latency_s = carrier.latency_ms / 1000 * latency_scale * math.exp(rng.gauss(0.0, 0.4))
    if rng.random() < failure_rate:
        point, acc = rng.random(), 0.0
        for code, message, weight in FAILURES:
            acc += weight
            if point < acc:
                return Outcome(False, latency_s, code, message)
        code, message, _ = FAILURES[-1]
        return Outcome(False, latency_s, code, message)
    return Outcome(True, latency_s)
