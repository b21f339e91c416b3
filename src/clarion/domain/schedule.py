"""When a campaign goes out: now, at a time, or at a local time in each subscriber's zone
("10:00 wherever they are", in waves by zone). The compliance window governs each message
whatever the schedule: a wave inside someone's quiet hours waits for their window."""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from clarion.errors import InvalidInput

# A campaign is scheduled at most this far ahead.
MAX_AHEAD = timedelta(days=90)
_HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class LocalWave(msgspec.Struct, frozen=True):
    """A local-time send: on `day`, at `hour`:`minute` on each subscriber's clock."""

    day: date
    hour: int
    minute: int

    def due(self, timezone: str | None) -> datetime | None:
        """When the wave reaches a subscriber in `timezone`; None for a subscriber whose
        zone is not known (a number spanning several): they go with the first wave."""
        zone = zone_of(timezone)
        if zone is None:
            return None
        return datetime.combine(self.day, time(self.hour, self.minute), tzinfo=zone)


def zone_of(name: str | None) -> ZoneInfo | None:
    """The zone of an IANA name; None for none or a name no zone has."""
    return _zone(name) if name else None


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_time_in(raw: str) -> tuple[int, int]:
    """ "HH:MM" (24-hour) as (hour, minute), or `InvalidInput`."""
    m = _HH_MM.fullmatch(raw.strip())
    if m is None:
        raise InvalidInput(f"a local time as HH:MM (24-hour), not {raw!r}", field="local_time")
    return int(m.group(1)), int(m.group(2))


def check_at(at: datetime, now: datetime) -> datetime:
    """A launch time: aware, not in the past, at most `MAX_AHEAD` ahead."""
    if at.tzinfo is None:
        raise InvalidInput("a time with its offset (e.g. 2026-12-10T15:00:00Z)", field="at")
    if at < now - timedelta(seconds=1):
        raise InvalidInput(f"{at.isoformat()} is in the past", field="at")
    if at > now + MAX_AHEAD:
        raise InvalidInput(f"at most {MAX_AHEAD.days} days ahead", field="at")
    return at


def first_wave(wave: LocalWave, zones: list[str]) -> datetime | None:
    """The earliest moment `wave` reaches any of `zones` (the audience's): when the
    campaign launches. None when no zone is known."""
    moments = [d for z in zones if (d := wave.due(z)) is not None]
    return min(moments) if moments else None
