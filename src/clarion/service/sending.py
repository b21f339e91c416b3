"""How a brand's messages go out, as its settings page shows and changes them: smart
sending, its limits at each carrier (within the carriers' bounds, COMPLIANCE.md "Carriers
and providers"), its routes and senders; and what it cannot change from there — the
install's provider accounts and lane limits (`clarion provider …`, operators), and the
law's quiet hours and state caps (`compliance`), which apply on top of everything."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time

from clarion.compliance.gate import STATE_CAP_PER_24H
from clarion.compliance.windows import FEDERAL_END, FEDERAL_START, STATE_RULES
from clarion.domain.rows import AccountRow
from clarion.errors import InvalidInput
from clarion.service.context import Services
from clarion.store import accounts, brands
from clarion.store import sending as store
from clarion.store.sending import LaneLimitRow, SenderLimit

__all__ = ["CarrierLimit", "LaneLimitRow", "Overview", "SenderLimit", "StateWindow"]

# Smart sending: skip a subscriber messaged within this many hours (0: off). Vendors use
# 8 to 24 h; a week is the most that still reads as a frequency setting.
MAX_SMART_SENDING_H = 168.0
# A campaign's messages per minute at one carrier: AT&T's top 10DLC tier is 3,600 a
# minute, Verizon's ~6,000 per long code; nothing higher is ever granted.
MAX_PER_MINUTE = 6_000
# A brand's messages a day at one carrier: T-Mobile's top tier is 200,000.
MAX_PER_DAY = 200_000
MAX_CARRIER_CHARS = 64
# The carriers always listed (others appear once they have a limit).
MAIN_CARRIERS = ("AT&T", "T-Mobile", "Verizon")


@dataclass(frozen=True, slots=True)
class CarrierLimit:
    """A carrier's limits for the brand: its own (None: none) and the install's default."""

    carrier: str
    per_minute: float | None  # per campaign
    per_day: int | None  # per brand, days counted in Pacific time
    default_per_minute: float | None
    default_per_day: int | None


@dataclass(frozen=True, slots=True)
class StateWindow:
    state: str
    start: time
    end: time
    days: str  # "" or which days are banned
    cap_per_24h: int | None


@dataclass(frozen=True, slots=True)
class Overview:
    smart_sending_h: float
    max_segments: int
    routes: dict[str, list[str]]  # channel: provider accounts, most preferred first
    senders: list[SenderLimit]
    carriers: list[CarrierLimit]
    providers: list[AccountRow]  # the install's; settings as references, never secrets
    install_limits: list[LaneLimitRow]
    federal: tuple[time, time]
    states: list[StateWindow]


def _carriers(rows: list[LaneLimitRow], brand_id: int) -> list[CarrierLimit]:
    own: dict[str, dict[str, float | int | None]] = {}
    default: dict[str, dict[str, float | int | None]] = {}
    for r in rows:
        scope, carrier = r.key.split(":", 1)[0], r.key.rsplit(":", 1)[-1]
        table = own if scope == str(brand_id) else default
        entry = table.setdefault(carrier, {})
        if r.kind == store.CARRIER_MINUTE and r.rate_per_s is not None:
            entry["minute"] = round(r.rate_per_s * 60, 3)
        elif r.kind == store.CARRIER_DAY:
            entry["day"] = r.per_day
    names = sorted({*MAIN_CARRIERS, *own, *default}, key=str.casefold)
    return [
        CarrierLimit(
            carrier=c,
            per_minute=own.get(c, {}).get("minute"),
            per_day=_int(own.get(c, {}).get("day")),
            default_per_minute=default.get(c, {}).get("minute"),
            default_per_day=_int(default.get(c, {}).get("day")),
        )
        for c in names
    ]


def _int(value: float | int | None) -> int | None:
    return None if value is None else int(value)


def _states() -> list[StateWindow]:
    shown = []
    for state, rule in sorted(STATE_RULES.items()):
        days = ", ".join(
            d for d, on in (("weekdays only", rule.weekdays_only), ("no Sundays", rule.no_sundays),
                            ("no federal holidays", rule.no_federal_holidays)) if on
        )  # fmt: skip
        shown.append(StateWindow(state, rule.start, rule.end, days, STATE_CAP_PER_24H.get(state)))
    return shown


async def overview(svc: Services, brand_id: int) -> Overview:
    """The brand's sending settings, and the install's and the law's that bind it."""
    b = await brands.get_brand(svc.pool, brand_id)
    return Overview(
        smart_sending_h=b.smart_sending_h,
        max_segments=b.max_segments,
        routes=await store.routes(svc.pool, brand_id),
        senders=await store.senders(svc.pool, brand_id),
        carriers=_carriers(await store.carrier_limits(svc.pool, brand_id), brand_id),
        providers=await accounts.list_accounts(svc.pool),
        install_limits=await store.install_limits(svc.pool),
        federal=(FEDERAL_START, FEDERAL_END),
        states=_states(),
    )


async def set_smart_sending(svc: Services, brand_id: int, hours: float) -> None:
    """Skip a subscriber the brand's marketing reached within `hours` (0: off)."""
    if not (math.isfinite(hours) and 0 <= hours <= MAX_SMART_SENDING_H):
        raise InvalidInput(
            f"between 0 (off) and {MAX_SMART_SENDING_H:.0f} hours", field="smart_sending_h"
        )
    await store.set_smart_sending(svc.pool, brand_id, hours)


async def set_carrier_limit(
    svc: Services,
    brand_id: int,
    carrier: str,
    *,
    per_minute: float | None,
    per_day: int | None,
) -> None:
    """The brand's own limits at a carrier: messages a minute per campaign (1 to 6,000) and
    a day for the brand (1 to 200,000); None: the install's default. The send stage reads
    them again within a minute."""
    name = carrier.strip()
    if (
        not 0 < len(name) <= MAX_CARRIER_CHARS
        or any(c in name for c in ":*")
        or any(ord(c) < 0x20 for c in name)
    ):
        raise InvalidInput(
            f"a carrier's name, 1 to {MAX_CARRIER_CHARS} characters, no : or *", field="carrier"
        )
    if per_minute is not None and not (
        math.isfinite(per_minute) and 1 <= per_minute <= MAX_PER_MINUTE
    ):
        raise InvalidInput(f"between 1 and {MAX_PER_MINUTE:,} a minute", field="per_minute")
    if per_day is not None and not 1 <= per_day <= MAX_PER_DAY:
        raise InvalidInput(f"between 1 and {MAX_PER_DAY:,} a day", field="per_day")
    await brands.get_brand(svc.pool, brand_id)  # NotFound for no such brand
    await store.set_carrier_limit(
        svc.pool, brand_id, name,
        rate_per_s=None if per_minute is None else per_minute / 60, per_day=per_day,
    )  # fmt: skip
