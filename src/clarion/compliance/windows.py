"""When a marketing SMS may reach a recipient: federal quiet hours and state windows.

Rules (COMPLIANCE.md, "SMS: when and how often"), all in the recipient's local time, start
inclusive and end exclusive (under 08:00-20:00, 19:59:59 is allowed and 20:00:00 is not):

- federal (TCPA, 47 CFR §64.1200(c)(1)): 08:00-21:00 everywhere;
- the state's own window and day bans (`STATE_RULES`), applied on top: the strictest wins.

Local time is taken in every zone that may be the recipient's:

- `tz` when the caller knows the subscriber's zone (an unknown zone name counts as not known);
- else every zone `phonenumbers.timezone.time_zones_for_number` gives for the number (a number
  spanning several zones must be inside its window in all of them);
- else, when no zone can be found (an unparseable or unknown number), every US zone from
  America/New_York to Pacific/Honolulu (`US_ZONES`), again all at once.

The state is the `region` the caller passes when known, else the one presumed from the
number (`presumed_region`); numbers outside the US get the federal rule only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from clarion.compliance.area_codes import AREA_CODE_STATE


@dataclass(frozen=True, slots=True)
class SendingWindow:
    """Whether a message may be sent at a moment, and from when it may.

    `next_allowed_at` is aware UTC: the moment itself when `allowed`, else the earliest later
    moment at which every zone of the recipient allows. `rule` names the rule that decided:
    the one that forbids when not allowed, the binding window when allowed.
    """

    allowed: bool
    next_allowed_at: datetime
    rule: str


@dataclass(frozen=True, slots=True)
class StateRule:
    """One state's quiet-hours rule: a daily window (local, end exclusive) and day bans."""

    start: time
    end: time
    source: str
    weekdays_only: bool = False
    no_sundays: bool = False
    no_federal_holidays: bool = False


# Federal quiet hours, 47 CFR §64.1200(c)(1) (TCPA).
FEDERAL_START, FEDERAL_END = time(8), time(21)
FEDERAL_RULE = "federal 08:00-21:00"

# State rules, COMPLIANCE.md. Windows are local time, start inclusive, end exclusive.
STATE_RULES: MappingProxyType[str, StateRule] = MappingProxyType(
    {
        # Fla. Stat. §501.616(6) (FTSA).
        "FL": StateRule(time(8), time(20), "Fla. Stat. §501.616(6)"),
        # 15 O.S. §775C.4; secondary summaries.
        "OK": StateRule(time(8), time(20), "15 O.S. §775C.4"),
        # Secondary (state-by-state tables).
        "MD": StateRule(time(8), time(20), "secondary"),
        # Secondary: 08-20, no Sundays, no holidays (federal holidays here).
        "AL": StateRule(time(8), time(20), "secondary", no_sundays=True, no_federal_holidays=True),
        "LA": StateRule(time(8), time(20), "secondary", no_sundays=True, no_federal_holidays=True),
        # Secondary: 08-20, no Sundays.
        "MS": StateRule(time(8), time(20), "secondary", no_sundays=True),
        # Secondary (table dated 2025-11).
        "CT": StateRule(time(9), time(20), "secondary (table dated 2025-11)"),
        "KY": StateRule(time(10), time(21), "secondary (table dated 2025-11)"),
        "MI": StateRule(time(9), time(21), "secondary (table dated 2025-11)"),
        "MN": StateRule(time(9), time(21), "secondary (table dated 2025-11)"),
        "NM": StateRule(time(9), time(21), "secondary (table dated 2025-11)"),
        "NV": StateRule(time(9), time(20), "secondary (table dated 2025-11)"),
        "RI": StateRule(time(9), time(18), "secondary (table dated 2025-11)", weekdays_only=True),
    }
)

# Where the recipient's zone cannot be found: every US zone, east to west. The window must
# hold in all of them: 13:00-21:00 Eastern in winter, 14:00-21:00 in summer (Honolulu keeps
# no DST).
US_ZONES: tuple[str, ...] = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Adak",
    "Pacific/Honolulu",
)

# Search bounds; never reached with the rules above (the longest ban is a weekend next to
# a holiday, and zones' windows always overlap), but a loop over data must end.
_MAX_DAYS_AHEAD = 14
_MAX_ROUNDS = 32


def sending_window(
    phone: str, at: datetime, *, tz: str | None = None, region: str | None = None
) -> SendingWindow:
    """May a marketing SMS reach `phone` at `at`, and if not, from when?

    `at` must be aware (`ValueError` otherwise). `tz` is the subscriber's stored IANA zone
    when known; `region` their two-letter US state when known (else presumed from the number).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("sending_window needs an aware datetime")
    zones, state = _zones_and_state(phone, tz, region)
    return _window_at(zones, state, at.astimezone(UTC))


@lru_cache(maxsize=8192)
def _window_at(zones: tuple[ZoneInfo, ...], state: str | None, at_utc: datetime) -> SendingWindow:
    """The window for zones and a state at one moment: the gate asks it for a whole batch at
    the same moment, so a batch of a thousand numbers computes a few dozen windows."""
    rule = STATE_RULES.get(state) if state is not None else None

    firsts = [(_zone_next(at_utc, zone, rule), zone) for zone in zones]
    latest, binding_zone = max(firsts, key=lambda pair: pair[0])
    if latest == at_utc:
        return SendingWindow(True, at_utc, _window_label(state, rule))
    reason = _denial(at_utc, binding_zone, state, rule)
    return SendingWindow(False, _all_zones_next(latest, zones, rule), reason)


def presumed_region(phone: str) -> str | None:
    """The US state (two-letter code) presumed from the number's area code, or None.

    From the area code (a table generated from `phonenumbers.geocoder`, see `area_codes`); an
    Oklahoma area code (405, 539, 580, 918) is presumed an Oklahoma resident (15 O.S.
    §775C.4). None for numbers outside the US, non-geographic numbers (toll-free) and numbers
    that do not parse.
    """
    us = _us_area_state(phone)
    if us is not None:
        return us
    return _presumed_region(_parse(phone))


def us_federal_holidays(year: int) -> frozenset[date]:
    """The observed dates of the 11 US federal holidays (5 U.S.C. §6103) that fall in `year`.

    A holiday on a Saturday is observed the Friday before, on a Sunday the Monday after; so
    New Year's Day of `year + 1` on a Saturday is observed on December 31 of `year` and
    belongs to this set. Juneteenth counts from 2021, the year it became a holiday; the other
    ten are applied to every year as the law stands today.
    """
    return _observed_holidays(year)


# --- zones and region ------------------------------------------------------------------------


def _us_area_state(phone: str) -> str | None:
    """The state of a well-formed E.164 number in a US geographic area code (the form every
    stored number has), without parsing it; None for any other input."""
    if len(phone) == 12 and phone.startswith("+1") and phone[2:].isdigit():
        return AREA_CODE_STATE.get(phone[2:5])
    return None


def place_key(phone: str, tz: str | None) -> tuple[str | None, ...]:
    """All that a number's sending window depends on besides the moment, as a key: two
    numbers with the same key get the same window at any moment (with no region given).
    A well-formed US geographic number with a stored zone: the zone and the area code's
    state; without one, its first 8 characters ("+1", area code, exchange: its zones and
    its state come from them). Any other number: itself and the zone."""
    state = _us_area_state(phone)
    if state is None:
        return (tz, phone)
    if tz is not None and _zone(tz) is not None:
        return (tz, state)
    return (None, phone[:8])


@lru_cache(maxsize=1 << 16)
def _prefix_zones(prefix: str) -> tuple[ZoneInfo, ...]:
    """The zones of the US geographic numbers starting with `prefix` ("+1" + area code +
    exchange): phonenumbers keys +1 zone data by at most these 7 digits, so every valid
    number of the prefix shares them (`tests/unit/test_windows.py` checks this against the
    full lookup)."""
    names = pn_timezone.time_zones_for_geographical_number(phonenumbers.parse(prefix + "0000"))
    found = tuple(
        zone
        for name in names
        if name != pn_timezone.UNKNOWN_TIMEZONE and (zone := _zone(name)) is not None
    )
    return found or tuple(ZoneInfo(name) for name in US_ZONES)


def _zones_and_state(
    phone: str, tz: str | None, region: str | None
) -> tuple[tuple[ZoneInfo, ...], str | None]:
    """The zones a number may be in and its state. Parsing a number costs about 30 µs; the
    gate checks every message, so stored US numbers take a cached path by prefix."""
    us_state = _us_area_state(phone)
    if us_state is not None:
        given = _zone(tz) if tz is not None else None
        zones = (given,) if given is not None else _prefix_zones(phone[:8])
        state = region.strip().upper() if region is not None and region.strip() else us_state
        return zones, state
    parsed = _parse(phone)
    return _zones(parsed, tz), _state(parsed, region)


def _parse(phone: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return None


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, malformed, a folder
        return None


def _zones(parsed: phonenumbers.PhoneNumber | None, tz: str | None) -> tuple[ZoneInfo, ...]:
    if tz is not None and (given := _zone(tz)) is not None:
        return (given,)
    names = pn_timezone.time_zones_for_number(parsed) if parsed is not None else ()
    found = tuple(
        zone
        for name in names
        if name != pn_timezone.UNKNOWN_TIMEZONE and (zone := _zone(name)) is not None
    )
    return found or tuple(ZoneInfo(name) for name in US_ZONES)


def _state(parsed: phonenumbers.PhoneNumber | None, region: str | None) -> str | None:
    if region is not None and region.strip():
        return region.strip().upper()
    return _presumed_region(parsed)


def _presumed_region(parsed: phonenumbers.PhoneNumber | None) -> str | None:
    if parsed is None or phonenumbers.region_code_for_number(parsed) != "US":
        return None
    return AREA_CODE_STATE.get(str(parsed.national_number)[:3])


# --- one zone ----------------------------------------------------------------------------------


def _window(rule: StateRule | None) -> tuple[time, time]:
    """The intersection of the federal window and the state's."""
    if rule is None:
        return FEDERAL_START, FEDERAL_END
    return max(FEDERAL_START, rule.start), min(FEDERAL_END, rule.end)


def _day_ban(day: date, rule: StateRule | None) -> str | None:
    """Which ban closes the whole (local) day, if any: "weekend", "sunday" or "holiday"."""
    if rule is None:
        return None
    if rule.weekdays_only and day.weekday() >= 5:
        return "weekend"
    if rule.no_sundays and day.weekday() == 6:
        return "sunday"
    if rule.no_federal_holidays and _is_holiday(day):
        return "holiday"
    return None


def _zone_next(t: datetime, zone: ZoneInfo, rule: StateRule | None) -> datetime:
    """The earliest instant >= t (aware UTC) at which `zone`'s local time is allowed.

    Local window edges are built with `datetime.combine(day, edge, tzinfo=zone)`: US DST
    changes at 02:00, so 08:00, 09:00, 10:00, 18:00, 20:00 and 21:00 always exist once.
    Comparisons are made in UTC (aware datetimes sharing a tzinfo compare by wall clock).
    """
    start, end = _window(rule)
    first_day = t.astimezone(zone).date()
    for offset in range(_MAX_DAYS_AHEAD):
        day = first_day + timedelta(days=offset)
        if _day_ban(day, rule) is not None:
            continue
        day_end = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
        if t < day_end:
            return max(t, datetime.combine(day, start, tzinfo=zone).astimezone(UTC))
    raise RuntimeError(f"no allowed moment within {_MAX_DAYS_AHEAD} days in {zone.key}")


def _all_zones_next(t: datetime, zones: tuple[ZoneInfo, ...], rule: StateRule | None) -> datetime:
    """The earliest instant >= t at which every zone allows.

    Each round moves t to the latest zone's next allowed moment. That never passes the answer
    (every zone allows at the answer, so each zone's next moment is at or before it) and
    stops when all zones allow at t, so the fixed point is the earliest common moment.
    """
    for _ in range(_MAX_ROUNDS):
        latest = max(_zone_next(t, zone, rule) for zone in zones)
        if latest == t:
            return t
        t = latest
    raise RuntimeError(f"no common allowed moment across {len(zones)} zones")


def _denial(t: datetime, zone: ZoneInfo, state: str | None, rule: StateRule | None) -> str:
    """The rule that forbids `t` in `zone`: a day ban first, then the window that excludes it
    (the state's when the state sets one, since it lies inside the federal window)."""
    local = t.astimezone(zone)
    ban = _day_ban(local.date(), rule)
    if ban == "sunday":
        return f"{state}: no Sundays"
    if ban == "holiday":
        return f"{state}: federal holiday"
    if ban == "weekend":  # the weekdays-only window names itself
        return _window_label(state, rule)
    clock = local.time()
    if rule is not None and not rule.start <= clock < rule.end:
        return _window_label(state, rule)
    return FEDERAL_RULE


def _window_label(state: str | None, rule: StateRule | None) -> str:
    if rule is None:
        return FEDERAL_RULE
    hours = f"{rule.start:%H:%M}-{rule.end:%H:%M}"
    return f"{state}: weekdays {hours}" if rule.weekdays_only else f"{state} {hours}"


# --- holidays ----------------------------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) `weekday` (Monday 0) of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = next_month - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


_MON, _THU = 0, 3


def _legal_holidays(year: int) -> tuple[date, ...]:
    """The 11 federal holidays' legal dates in `year` (5 U.S.C. §6103), before observance."""
    days = [
        date(year, 1, 1),  # New Year's Day
        _nth_weekday(year, 1, _MON, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, _MON, 3),  # Washington's Birthday
        _last_weekday(year, 5, _MON),  # Memorial Day
        date(year, 7, 4),  # Independence Day
        _nth_weekday(year, 9, _MON, 1),  # Labor Day
        _nth_weekday(year, 10, _MON, 2),  # Columbus Day
        date(year, 11, 11),  # Veterans Day
        _nth_weekday(year, 11, _THU, 4),  # Thanksgiving Day
        date(year, 12, 25),  # Christmas Day
    ]
    if year >= 2021:
        days.append(date(year, 6, 19))  # Juneteenth National Independence Day
    return tuple(sorted(days))


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=256)
def _observed_holidays(year: int) -> frozenset[date]:
    # A holiday's observed day can fall in the year before (Saturday January 1).
    years = range(max(year - 1, MINYEAR + 1), min(year + 1, MAXYEAR - 1) + 1)
    nearby = (day for y in years for day in _legal_holidays(y))
    return frozenset(d for d in map(_observed, nearby) if d.year == year)


@lru_cache(maxsize=256)
def _banned_holidays(year: int) -> frozenset[date]:
    # Strictest reading of "no holidays": both the observed day and the legal date (a
    # Saturday July 4 bans Friday July 3 and Saturday July 4).
    return _observed_holidays(year) | frozenset(_legal_holidays(year))


def _is_holiday(day: date) -> bool:
    return day in _banned_holidays(day.year)
