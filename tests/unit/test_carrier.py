"""Carrier stage: tally final outcomes per (brand, campaign, carrier)."""

from __future__ import annotations

from collections import Counter

from clarion.domain.records import StatusChange, StatusCount
from clarion.pipeline import carrier
from clarion.pipeline.carrier import UNKNOWN_CARRIER, counts_of


def tally(changes: list[StatusChange]) -> dict[tuple[int, int, str], Counter[str]]:
    """The tally of changes counted as the fold counts them."""
    return carrier.tally(counts_of(changes))


def change(
    status: str,
    *,
    carrier: str | None = "Verizon",
    brand_id: int = 1,
    campaign_id: int | None = 10,
    message_id: str = "m",
) -> StatusChange:
    return StatusChange(
        message_id=message_id,
        brand_id=brand_id,
        campaign_id=campaign_id,
        status=status,
        carrier=carrier,
        error_code=None,
    )


def test_only_final_outcomes_are_counted() -> None:
    out = tally(
        [
            change("queued"),
            change("accepted"),
            change("sent"),
            change("delivered"),
            change("delivered"),
            change("undelivered"),
            change("failed"),
        ]
    )
    assert out == {(1, 10, "Verizon"): Counter(delivered=2, undelivered=1, failed=1)}


def test_progress_only_changes_produce_no_tally_rows() -> None:
    assert tally([change("queued"), change("accepted"), change("sent")]) == {}


def test_counts_are_keyed_by_brand_campaign_and_carrier() -> None:
    out = tally(
        [
            change("delivered", carrier="Verizon"),
            change("delivered", carrier="AT&T"),
            change("failed", carrier="AT&T"),
            change("delivered", brand_id=2),
            change("delivered", campaign_id=11),
        ]
    )
    assert out == {
        (1, 10, "Verizon"): Counter(delivered=1),
        (1, 10, "AT&T"): Counter(delivered=1, failed=1),
        (2, 10, "Verizon"): Counter(delivered=1),
        (1, 11, "Verizon"): Counter(delivered=1),
    }


def test_a_missing_carrier_is_tallied_as_unknown() -> None:
    out = tally([change("delivered", carrier=None), change("undelivered", carrier="")])
    assert UNKNOWN_CARRIER == "unknown"
    assert out == {(1, 10, "unknown"): Counter(delivered=1, undelivered=1)}


def test_a_missing_campaign_is_tallied_under_campaign_zero() -> None:
    assert tally([change("failed", campaign_id=None)]) == {(1, 0, "Verizon"): Counter(failed=1)}


def test_a_tally_counter_reads_zero_for_an_outcome_that_did_not_occur() -> None:
    counts = tally([change("delivered")])[(1, 10, "Verizon")]
    assert (counts["delivered"], counts["undelivered"], counts["failed"]) == (1, 0, 0)


def test_minute_rows_count_outcomes_and_latency_per_brand_and_carrier() -> None:
    from datetime import UTC, datetime

    from clarion.domain.monitoring import MinuteRow
    from clarion.domain.records import StatusChange
    from clarion.pipeline.carrier import error_rows, minute_rows

    minute = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)

    def change(i: int, status: str, carrier: str | None, latency: float | None = None,
               error: str | None = None) -> StatusChange:  # fmt: skip
        return StatusChange(
            message_id=f"m{i}", brand_id=7, campaign_id=1, status=status, carrier=carrier,
            error_code=error, latency_s=latency,
        )  # fmt: skip

    changes = [
        change(1, "delivered", "AT&T", 2.0),
        change(2, "delivered", "AT&T", 4.0),
        change(3, "undelivered", "AT&T", None, "30003"),
        change(4, "failed", None, None, "30008"),
        change(5, "sent", "AT&T", 1.0),  # not an outcome
    ]
    assert minute_rows(counts_of(changes), minute) == [
        MinuteRow(7, "AT&T", minute, 2, 1, 6.0, 2),
        MinuteRow(7, "unknown", minute, 0, 1, 0.0, 0),
    ]
    assert error_rows(changes) == [(7, "AT&T", "30003", 1), (7, "unknown", "30008", 1)]


def test_changes_are_counted_per_brand_campaign_carrier_and_status() -> None:
    """As the fold counts them in Postgres: latency summed over those that have one, and
    the lowest message id of each group."""

    def change(i: str, status: str, latency: float | None, carrier: str = "AT&T") -> StatusChange:
        return StatusChange(
            message_id=i, brand_id=7, campaign_id=1, status=status, carrier=carrier,
            error_code=None, latency_s=latency,
        )  # fmt: skip

    changes = [
        change("m3", "delivered", 2.0),
        change("m1", "delivered", None),
        change("m2", "delivered", 4.5),
        change("m4", "sent", 1.0),
        change("m0", "delivered", 1.0, carrier="Verizon"),
    ]
    assert sorted(counts_of(changes)) == [
        StatusCount(7, 1, "AT&T", "delivered", 3, 6.5, 2, "m1"),
        StatusCount(7, 1, "AT&T", "sent", 1, 1.0, 1, "m4"),
        StatusCount(7, 1, "Verizon", "delivered", 1, 1.0, 1, "m0"),
    ]


def test_a_tally_adds_counts_of_the_same_key() -> None:
    """Counts from folds of several providers' receipts in one transaction may repeat a
    key: they add up."""
    row = StatusCount(1, 10, "AT&T", "delivered", 2, 0.0, 0, "m")
    assert carrier.tally([row, row._replace(n=3)]) == {(1, 10, "AT&T"): Counter(delivered=5)}


def test_an_alert_needs_volume_and_clears_only_with_a_margin() -> None:
    from clarion.domain.monitoring import Health
    from clarion.pipeline.carrier import judge

    low = Health(7, "AT&T", delivered=80, failed=20)  # 80 %
    assert judge(low, threshold=0.85, min_volume=200, is_open=False) is None  # too few
    assert judge(low, threshold=0.85, min_volume=100, is_open=False) == "raise"
    assert judge(low, threshold=0.85, min_volume=100, is_open=True) is None  # stays open
    barely = Health(7, "AT&T", delivered=86, failed=14)  # 86 %: above, inside the margin
    assert judge(barely, threshold=0.85, min_volume=100, is_open=True) is None
    good = Health(7, "AT&T", delivered=95, failed=5)
    assert judge(good, threshold=0.85, min_volume=100, is_open=True) == "clear"
    assert judge(good, threshold=0.85, min_volume=100, is_open=False) is None
