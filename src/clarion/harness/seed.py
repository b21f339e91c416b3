"""Synthetic but realistic subscribers for the demo and the benchmark."""

from __future__ import annotations

import random
from collections.abc import Iterator

from clarion.domain.contacts import NewSubscriber, new_subscriber

# Real US area codes spread over every US time zone (and the states with their own rules).
AREA_CODES = (
    "212",
    "646",
    "617",
    "215",
    "202",
    "305",
    "407",
    "813",
    "404",
    "704",
    "313",
    "216",  # Eastern
    "312",
    "773",
    "214",
    "713",
    "512",
    "615",
    "504",
    "612",
    "405",
    "316",
    "205",
    "601",  # Central
    "303",
    "505",
    "801",
    "406",  # Mountain
    "602",
    "480",  # Arizona (no DST)
    "206",
    "503",
    "415",
    "213",
    "310",
    "619",
    "702",
    "916",  # Pacific
    "907",  # Alaska
    "808",  # Hawaii
)
FIRST_NAMES = (
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mia", "Lucas", "Amelia", "Mateo", "Sofia",
    "Ethan", "Isabella", "Zoe", "Elijah", "Chloe", "James", "Aria", "Leo", "Nora", "Kai",
)  # fmt: skip
CITIES = ("Austin", "Boston", "Denver", "Miami", "Seattle", "Chicago", "Phoenix", "Tulsa")


def synthetic_rows(
    n: int, *, seed: int = 7, consent_rate: float = 0.95
) -> Iterator[dict[str, str]]:
    """`n` import rows with distinct valid numbers; about 1 - `consent_rate` lack SMS consent;
    about one in six has no first name (so templates need a default)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n:
        area = rng.choice(AREA_CODES)
        exchange = rng.randint(200, 999)
        if exchange % 100 == 11 or exchange == 555:
            continue
        number = f"+1{area}{exchange}{rng.randint(0, 9999):04d}"
        if number in seen:
            continue
        seen.add(number)
        yield {
            "phone": number,
            "first_name": rng.choice(FIRST_NAMES) if rng.random() > 1 / 6 else "",
            "city": rng.choice(CITIES),
            "sms_consent": "yes" if rng.random() < consent_rate else "no",
        }


def synthetic_subscribers(n: int, *, seed: int = 7) -> list[NewSubscriber]:
    """Rows normalised through the same import path every subscriber takes."""
    return [new_subscriber(row) for row in synthetic_rows(n, seed=seed)]
