"""Sending windows: federal quiet hours, state windows and day bans, zones, DST, holidays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone

from clarion.compliance.windows import (
    STATE_RULES,
    US_ZONES,
    SendingWindow,
    presumed_region,
    sending_window,
    us_federal_holidays,
)

NEW_YORK = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
DENVER = ZoneInfo("America/Denver")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
HONOLULU = ZoneInfo("Pacific/Honolulu")

MONDAY = date(2026, 6, 1)
SATURDAY = date(2026, 6, 6)
SUNDAY = date(2026, 6, 7)
THANKSGIVING = date(2026, 11, 26)


@dataclass(frozen=True)
class State:
    code: str
    phone: str
    zone: ZoneInfo
    start: time
    end: time
    rule: str


STATES = (
    State("FL", "+13055550123", NEW_YORK, time(8), time(20), "FL 08:00-20:00"),
    State("OK", "+14055550123", CHICAGO, time(8), time(20), "OK 08:00-20:00"),
    State("MD", "+14105550123", NEW_YORK, time(8), time(20), "MD 08:00-20:00"),
    State("AL", "+12055550123", CHICAGO, time(8), time(20), "AL 08:00-20:00"),
    State("LA", "+15045550123", CHICAGO, time(8), time(20), "LA 08:00-20:00"),
    State("MS", "+16015550123", CHICAGO, time(8), time(20), "MS 08:00-20:00"),
    State("CT", "+12035550123", NEW_YORK, time(9), time(20), "CT 09:00-20:00"),
    State("KY", "+15025550123", NEW_YORK, time(10), time(21), "KY 10:00-21:00"),
    State("MI", "+13135550123", NEW_YORK, time(9), time(21), "MI 09:00-21:00"),
    State("MN", "+16125550123", CHICAGO, time(9), time(21), "MN 09:00-21:00"),
    State("NM", "+15055550123", DENVER, time(9), time(21), "NM 09:00-21:00"),
    State("NV", "+17025550123", LOS_ANGELES, time(9), time(20), "NV 09:00-20:00"),
    State("RI", "+14015550123", NEW_YORK, time(9), time(18), "RI: weekdays 09:00-18:00"),
    State("NY", "+12125550123", NEW_YORK, time(8), time(21), "federal 08:00-21:00"),
)
BY_CODE = {s.code: s for s in STATES}
ONE_SECOND = timedelta(seconds=1)


def local(zone: ZoneInfo, day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=zone)


def at_clock(zone: ZoneInfo, day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


def test_the_rule_table_covers_exactly_the_states_compliance_names() -> None:
    assert set(STATE_RULES) == {s.code for s in STATES} - {"NY"}


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.code)
def test_each_area_code_is_presumed_its_state(state: State) -> None:
    assert presumed_region(state.phone) == state.code


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.code)
def test_one_second_before_the_window_opens_is_deferred_to_the_opening(state: State) -> None:
    opening = at_clock(state.zone, MONDAY, state.start)
    result = sending_window(state.phone, opening - ONE_SECOND)
    assert not result.allowed
    assert result.rule == state.rule
    assert result.next_allowed_at == opening


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.code)
def test_the_opening_instant_is_allowed_and_names_the_binding_window(state: State) -> None:
    opening = at_clock(state.zone, MONDAY, state.start)
    assert sending_window(state.phone, opening) == SendingWindow(
        True, opening.astimezone(UTC), state.rule
    )


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.code)
def test_the_last_second_of_the_window_is_allowed(state: State) -> None:
    closing = at_clock(state.zone, MONDAY, state.end)
    result = sending_window(state.phone, closing - ONE_SECOND)
    assert result.allowed
    assert result.rule == state.rule


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.code)
def test_the_closing_instant_is_deferred_to_the_next_opening(state: State) -> None:
    closing = at_clock(state.zone, MONDAY, state.end)
    result = sending_window(state.phone, closing)
    assert not result.allowed
    assert result.rule == state.rule
    assert result.next_allowed_at == at_clock(state.zone, MONDAY + timedelta(days=1), state.start)


@pytest.mark.parametrize(
    ("clock", "allowed"),
    [(time(7, 59, 59), False), (time(8), True), (time(20, 59, 59), True), (time(21), False)],
)
def test_the_federal_window_is_08_to_21_end_exclusive(clock: time, allowed: bool) -> None:
    result = sending_window(BY_CODE["NY"].phone, at_clock(NEW_YORK, MONDAY, clock))
    assert result.allowed is allowed
    assert result.rule == "federal 08:00-21:00"


def test_an_allowed_moment_is_its_own_next_allowed_moment_in_utc() -> None:
    at = local(NEW_YORK, MONDAY, 12, 30, 15).replace(microsecond=123)
    result = sending_window(BY_CODE["NY"].phone, at)
    assert result.allowed
    assert result.next_allowed_at == at
    assert result.next_allowed_at.tzinfo is UTC


def test_a_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        sending_window(BY_CODE["NY"].phone, datetime(2026, 6, 1, 12))


# --- day bans ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AL", "LA", "MS"])
def test_sunday_is_banned_and_deferred_to_monday_morning(code: str) -> None:
    state = BY_CODE[code]
    result = sending_window(state.phone, local(state.zone, SUNDAY, 12))
    assert not result.allowed
    assert result.rule == f"{code}: no Sundays"
    assert result.next_allowed_at == local(state.zone, SUNDAY + timedelta(days=1), 8)


def test_sunday_midday_is_allowed_where_no_sunday_rule_applies() -> None:
    assert sending_window(BY_CODE["FL"].phone, local(NEW_YORK, SUNDAY, 12)).allowed


def test_saturday_night_in_alabama_waits_for_monday_08_00() -> None:
    result = sending_window(BY_CODE["AL"].phone, local(CHICAGO, SATURDAY, 22))
    assert not result.allowed
    assert result.rule == "AL 08:00-20:00"
    assert result.next_allowed_at == local(CHICAGO, date(2026, 6, 8), 8)


def test_saturday_night_in_alabama_before_a_monday_holiday_waits_for_tuesday() -> None:
    # 2026-01-19 is Martin Luther King, Jr. Day.
    result = sending_window(BY_CODE["AL"].phone, local(CHICAGO, date(2026, 1, 17), 22))
    assert result.next_allowed_at == local(CHICAGO, date(2026, 1, 20), 8)


@pytest.mark.parametrize("code", ["AL", "LA"])
def test_thanksgiving_is_banned_where_holidays_are(code: str) -> None:
    state = BY_CODE[code]
    result = sending_window(state.phone, local(state.zone, THANKSGIVING, 12))
    assert not result.allowed
    assert result.rule == f"{code}: federal holiday"
    assert result.next_allowed_at == local(state.zone, THANKSGIVING + timedelta(days=1), 8)


def test_thanksgiving_is_allowed_in_mississippi_which_bans_only_sundays() -> None:
    assert sending_window(BY_CODE["MS"].phone, local(CHICAGO, THANKSGIVING, 12)).allowed


def test_both_the_observed_friday_and_the_saturday_july_4_are_banned_in_alabama() -> None:
    # July 4, 2026 is a Saturday: observed Friday July 3; Sunday July 5 is banned as well.
    phone = BY_CODE["AL"].phone
    observed = sending_window(phone, local(CHICAGO, date(2026, 7, 3), 12))
    legal = sending_window(phone, local(CHICAGO, date(2026, 7, 4), 12))
    assert observed.rule == legal.rule == "AL: federal holiday"
    assert observed.next_allowed_at == local(CHICAGO, date(2026, 7, 6), 8)


@pytest.mark.parametrize("day", [SATURDAY, SUNDAY])
def test_rhode_island_weekends_wait_for_monday_09_00(day: date) -> None:
    result = sending_window(BY_CODE["RI"].phone, local(NEW_YORK, day, 12))
    assert not result.allowed
    assert result.rule == "RI: weekdays 09:00-18:00"
    assert result.next_allowed_at == local(NEW_YORK, date(2026, 6, 8), 9)


def test_rhode_island_friday_evening_waits_for_monday() -> None:
    result = sending_window(BY_CODE["RI"].phone, local(NEW_YORK, date(2026, 6, 5), 18))
    assert result.next_allowed_at == local(NEW_YORK, date(2026, 6, 8), 9)


# --- DST -----------------------------------------------------------------------------------------


SPRING_FORWARD, FALL_BACK = date(2026, 3, 8), date(2026, 11, 1)


@pytest.mark.parametrize(
    ("at", "opening_day", "offset_h"),
    [
        pytest.param(local(NEW_YORK, SPRING_FORWARD, 1), SPRING_FORWARD, -4, id="spring-01:00-EST"),
        pytest.param(local(NEW_YORK, SPRING_FORWARD, 3), SPRING_FORWARD, -4, id="spring-03:00-EDT"),
        pytest.param(local(NEW_YORK, date(2026, 3, 7), 22), SPRING_FORWARD, -4, id="spring-eve"),
        pytest.param(local(NEW_YORK, FALL_BACK, 1, 30), FALL_BACK, -5, id="fall-01:30-EDT"),
        pytest.param(
            local(NEW_YORK, FALL_BACK, 1, 30).replace(fold=1), FALL_BACK, -5, id="fall-01:30-EST"
        ),
        pytest.param(local(NEW_YORK, date(2026, 10, 31), 22), FALL_BACK, -5, id="fall-eve"),
    ],
)
def test_on_dst_change_days_the_next_opening_is_08_00_local_at_the_new_offset(
    at: datetime, opening_day: date, offset_h: int
) -> None:
    result = sending_window(BY_CODE["NY"].phone, at)
    assert not result.allowed
    opening = result.next_allowed_at.astimezone(NEW_YORK)
    assert (opening.date(), opening.time()) == (opening_day, time(8))
    assert opening.utcoffset() == timedelta(hours=offset_h)
    assert result.next_allowed_at == datetime.combine(opening_day, time(8 - offset_h), UTC)


def test_08_00_on_the_spring_forward_day_is_allowed() -> None:
    assert sending_window(BY_CODE["NY"].phone, local(NEW_YORK, SPRING_FORWARD, 8)).allowed


# --- zones and region ----------------------------------------------------------------------------

IDAHO = "+12085550123"  # America/Boise (Mountain) and America/Los_Angeles (Pacific)


def test_the_idaho_number_spans_two_zones() -> None:
    zones = pn_timezone.time_zones_for_number(phonenumbers.parse(IDAHO))
    assert set(zones) == {"America/Boise", "America/Los_Angeles"}


@pytest.mark.parametrize(
    ("pacific_clock", "allowed", "next_opening"),
    [
        (time(7, 30), False, local(LOS_ANGELES, MONDAY, 8)),  # 08:30 Mountain
        (time(12), True, local(LOS_ANGELES, MONDAY, 12)),
        (time(19, 59, 59), True, local(LOS_ANGELES, MONDAY, 19, 59, 59)),  # 20:59:59 Mountain
        (time(20), False, local(LOS_ANGELES, MONDAY + timedelta(days=1), 8)),  # 21:00 Mountain
    ],
)
def test_a_multi_zone_number_is_allowed_only_when_every_zone_allows(
    pacific_clock: time, allowed: bool, next_opening: datetime
) -> None:
    result = sending_window(IDAHO, at_clock(LOS_ANGELES, MONDAY, pacific_clock))
    assert (result.allowed, result.next_allowed_at) == (allowed, next_opening)


def test_a_stored_zone_overrides_the_numbers_zones() -> None:
    at = local(LOS_ANGELES, MONDAY, 20, 30)
    assert not sending_window(IDAHO, at).allowed
    assert sending_window(IDAHO, at, tz="America/Los_Angeles").allowed
    assert not sending_window(IDAHO, at, tz="America/Boise").allowed


def test_a_stored_zone_can_move_a_number_away_from_its_area_code() -> None:
    # A New York number whose subscriber lives in Honolulu: 12:00 Eastern is 06:00 there.
    result = sending_window(BY_CODE["NY"].phone, local(NEW_YORK, MONDAY, 12), tz="Pacific/Honolulu")
    assert not result.allowed
    assert result.next_allowed_at == local(HONOLULU, MONDAY, 8)


def test_an_unknown_stored_zone_falls_back_to_the_numbers_zones() -> None:
    at = local(NEW_YORK, MONDAY, 21, 30)
    assert sending_window(BY_CODE["NY"].phone, at, tz="Not/AZone") == sending_window(
        BY_CODE["NY"].phone, at
    )


def test_a_known_region_overrides_the_area_code() -> None:
    evening = local(NEW_YORK, MONDAY, 20, 30)
    assert sending_window(BY_CODE["NY"].phone, evening).allowed
    moved_to_florida = sending_window(BY_CODE["NY"].phone, evening, region="fl")
    assert not moved_to_florida.allowed
    assert moved_to_florida.rule == "FL 08:00-20:00"
    moved_to_new_york = sending_window(BY_CODE["FL"].phone, evening, region="NY")
    assert moved_to_new_york.allowed
    assert moved_to_new_york.rule == "federal 08:00-21:00"


def test_a_number_without_a_zone_must_be_inside_the_window_in_every_us_zone() -> None:
    assert US_ZONES[0] == "America/New_York"
    assert US_ZONES[-1] == "Pacific/Honolulu"
    early = sending_window("not a number", local(NEW_YORK, MONDAY, 12))  # 06:00 in Honolulu
    assert not early.allowed
    assert early.next_allowed_at == local(HONOLULU, MONDAY, 8)
    assert sending_window("not a number", local(NEW_YORK, MONDAY, 14)).allowed
    assert not sending_window("not a number", local(NEW_YORK, MONDAY, 21)).allowed


def test_a_number_outside_the_us_gets_the_federal_rule_in_its_own_zone() -> None:
    uk = "+447911123456"
    assert presumed_region(uk) is None
    result = sending_window(uk, local(ZoneInfo("Europe/London"), MONDAY, 20, 30))
    assert (result.allowed, result.rule) == (True, "federal 08:00-21:00")


@pytest.mark.parametrize("area_code", ["405", "539", "580", "918"])
def test_every_oklahoma_area_code_is_presumed_oklahoma(area_code: str) -> None:
    assert presumed_region(f"+1{area_code}5550123") == "OK"


@pytest.mark.parametrize(
    ("phone", "region"),
    [
        ("+12025550123", "DC"),
        ("+12065550123", "WA"),
        ("(305) 555-0123", "FL"),
        ("+18005550123", None),  # toll-free: no area
        ("+14165550123", None),  # Toronto: NANP but not US
        ("not a number", None),
    ],
)
def test_presumed_region_edge_cases(phone: str, region: str | None) -> None:
    assert presumed_region(phone) == region


# --- holidays --------------------------------------------------------------------------------


def test_the_2026_federal_holidays_with_july_4_observed_on_friday() -> None:
    assert us_federal_holidays(2026) == {
        date(2026, 1, 1),
        date(2026, 1, 19),
        date(2026, 2, 16),
        date(2026, 5, 25),
        date(2026, 6, 19),
        date(2026, 7, 3),
        date(2026, 9, 7),
        date(2026, 10, 12),
        date(2026, 11, 11),
        date(2026, 11, 26),
        date(2026, 12, 25),
    }


def test_a_saturday_new_years_day_is_observed_in_the_year_before() -> None:
    assert date(2021, 12, 31) in us_federal_holidays(2021)
    assert len(us_federal_holidays(2021)) == 12
    assert date(2022, 1, 1) not in us_federal_holidays(2022)
    assert len(us_federal_holidays(2022)) == 10


def test_a_sunday_holiday_is_observed_on_monday() -> None:
    assert date(2022, 12, 26) in us_federal_holidays(2022)
    assert date(2022, 12, 25) not in us_federal_holidays(2022)


def test_juneteenth_counts_from_2021() -> None:
    assert not any(d.month == 6 for d in us_federal_holidays(2020))
    assert date(2021, 6, 18) in us_federal_holidays(2021)


# --- properties ------------------------------------------------------------------------------

PHONES = [s.phone for s in STATES] + [IDAHO, "+16055550123", "not a number", "+447911123456"]
ZONES = st.sampled_from([UTC, NEW_YORK, CHICAGO, LOS_ANGELES, HONOLULU])


@settings(deadline=None, max_examples=200)
@given(
    phone=st.sampled_from(PHONES),
    at=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=ZONES
    ),
)
def test_next_allowed_at_is_the_earliest_allowed_moment_from_at(phone: str, at: datetime) -> None:
    # Compare in UTC: an aware datetime in a DST gap or fold never equals one in another zone
    # (PEP 495), and hypothesis does generate those.
    at_utc = at.astimezone(UTC)
    result = sending_window(phone, at)
    assert result.next_allowed_at >= at_utc
    assert result.next_allowed_at.tzinfo is UTC
    assert sending_window(phone, result.next_allowed_at).allowed
    if result.allowed:
        assert result.next_allowed_at == at_utc
    else:
        just_before = result.next_allowed_at - timedelta(microseconds=1)
        assert not sending_window(phone, just_before).allowed


def test_a_toll_free_number_must_be_inside_the_window_in_every_nanp_zone() -> None:
    # Country-level zones for +1 run from Guam (08:00 = 22:00 UTC) to St. John's (21:00 =
    # 23:30 UTC in summer).
    toll_free = "+18005550123"
    noon_utc = datetime(2026, 6, 1, 12, tzinfo=UTC)
    result = sending_window(toll_free, noon_utc)
    assert not result.allowed
    assert result.next_allowed_at == datetime(2026, 6, 1, 22, tzinfo=UTC)
    assert not sending_window(toll_free, datetime(2026, 6, 1, 23, 30, tzinfo=UTC)).allowed


def test_the_prefix_path_for_stored_us_numbers_agrees_with_parsing_them() -> None:
    """Stored numbers (E.164, US geographic area codes) take a cached path by area code and
    exchange instead of being parsed; for valid numbers of every area code it gives the same
    zones and state as the full phonenumbers lookup."""
    import random

    import phonenumbers

    from clarion.compliance import windows
    from clarion.compliance.area_codes import AREA_CODE_STATE

    rng = random.Random(11)
    checked = 0
    for npa in sorted(AREA_CODE_STATE):
        for _ in range(6):
            number = f"+1{npa}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
            parsed = phonenumbers.parse(number, "US")
            if not phonenumbers.is_valid_number(parsed):
                continue
            full = (windows._zones(parsed, None), windows._state(parsed, None))
            assert windows._zones_and_state(number, None, None) == full, number
            checked += 1
    assert checked > 1000
