"""Local-time sends: when a wave reaches a zone, and how the send decision holds a message
the gate lets go until its wave."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from clarion.domain.records import OutboundMessage
from clarion.domain.schedule import LocalWave, check_at, first_wave, local_time_in
from clarion.errors import InvalidInput
from clarion.pipeline.send_decision import LOCAL_TIME, SendState, decide


def _message(i: int, zone: str | None) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"m{i}", subscriber_id=i, to=f"+1212555{i:04d}", body="Hi. Reply STOP",
        segments=1, timezone=zone,
    )  # fmt: skip


def test_a_wave_reaches_each_zone_at_its_local_time() -> None:
    wave = LocalWave(date(2026, 12, 10), 10, 0)
    assert wave.due("America/New_York") == datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
    assert wave.due("America/Los_Angeles") == datetime(2026, 12, 10, 18, 0, tzinfo=UTC)
    assert wave.due(None) is None
    assert wave.due("Not/AZone") is None
    assert first_wave(wave, ["America/Chicago", "America/New_York"]) == datetime(
        2026, 12, 10, 15, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("raw", ["25:00", "9:00", "10:60", "ten", ""])
def test_a_local_time_is_hh_mm(raw: str) -> None:
    with pytest.raises(InvalidInput):
        local_time_in(raw)


def test_a_launch_time_is_aware_and_ahead() -> None:
    now = datetime(2026, 12, 10, 12, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="past"):
        check_at(datetime(2026, 12, 9, tzinfo=UTC), now)
    with pytest.raises(InvalidInput, match="offset"):
        check_at(datetime(2026, 12, 11), now)
    with pytest.raises(InvalidInput, match="days ahead"):
        check_at(datetime(2027, 6, 1, tzinfo=UTC), now)


def test_the_decision_holds_a_message_until_its_wave() -> None:
    at = datetime(2026, 12, 10, 17, 30, tzinfo=UTC)  # 12:30 in New York, 09:30 in LA
    todo = [_message(1, "America/New_York"), _message(2, "America/Los_Angeles"),
            _message(3, None)]  # fmt: skip
    state = SendState(
        at=at, consent={1: "opted_in", 2: "opted_in", 3: "opted_in"},
        local_wave=LocalWave(date(2026, 12, 10), 10, 0),
    )  # fmt: skip
    d = decide("sms", todo, state, new=True)
    assert [m.message_id for m in d.go] == ["m1", "m3"]
    assert d.waits == [("m2", datetime(2026, 12, 10, 18, 0, tzinfo=UTC), LOCAL_TIME, None)]
