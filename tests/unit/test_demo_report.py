"""The demo's printed report says what happened, including when nothing could be sent."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from clarion.harness.demo import _print_report


def _report(**changes: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "recipients": 1000, "eligible": 950, "suppressed": 50,
        "suppressed_by_reason": {"no_consent": 50}, "deferred": 0, "deferred_by_reason": {},
        "sent": 950, "delivered": 931, "failed": 19, "handset_messages": 931,
        "duration_s": 1.5, "throughput_mps": 620.7, "first_message_s": 0.217,
        "peak_rss_mb": 101.2, "errors": {}, "carriers": {},
    }  # fmt: skip
    r.update(changes)
    return r


def _printed(r: dict[str, Any]) -> str:
    console = Console(record=True, width=200)
    _print_report(console, r)
    return console.export_text()


def test_a_demo_that_sent_reports_its_first_provider_call_and_no_quiet_hours_hint() -> None:
    text = _printed(_report())

    assert "0.22 s" in text
    assert "quiet hours now" not in text


def test_a_demo_run_at_night_says_why_nothing_went_and_how_to_see_it_go() -> None:
    night = _report(
        deferred=950, deferred_by_reason={"quiet_hours_deferred": 950}, sent=0, delivered=0,
        failed=0, handset_messages=0, throughput_mps=0.0, first_message_s=None,
    )  # fmt: skip
    text = _printed(night)

    assert "None" not in text
    (row,) = [line for line in text.splitlines() if "first provider call" in line]
    assert "—" in row  # no call was made
    assert "quiet hours now" in text
    assert "clarion demo --at" in text
