"""Carrier stage: tally final outcomes per (brand, campaign, carrier)."""

from __future__ import annotations

from collections import Counter

from clarion.domain.records import StatusChange
from clarion.pipeline.carrier import UNKNOWN_CARRIER, tally


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
