"""What the store counts for a report: a campaign's messages (its progress, and what it did
against its send plan) and a brand's audience."""

from __future__ import annotations

from datetime import datetime

import msgspec

from clarion.domain.rows import CampaignRow


class CarrierOutcomes(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign's final SMS outcomes through one carrier, as the carrier stage counted them
    (`carrier_stats`)."""

    carrier: str
    delivered: int
    undelivered: int
    failed: int


class CampaignReport(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign's messages counted by status and reason, with its bookkeeping: what its
    progress and final report are made of."""

    campaign: CampaignRow
    by_status: dict[str, int]  # status → messages
    persisted: int  # messages stored (the sum of `by_status`)
    receipted: int  # SMS messages with a final receipt (delivered or undelivered)
    carriers: list[CarrierOutcomes]  # by carrier name
    errors: dict[str, int]  # error code → messages that failed with it
    suppressed_by_reason: dict[str, int]  # reason → messages suppressed or expired
    deferred_by_reason: dict[str, int]  # reason → messages waiting


class ActualCounts(msgspec.Struct, frozen=True, kw_only=True):
    """What a campaign did, counted the way its send plan counts."""

    sent: int  # handed to the provider without waiting for quiet hours to end
    deferred: int  # held by quiet hours (sent later or still waiting)
    capped: int  # held by a carrier's daily cap
    expired: int
    excluded: int  # suppressed, or the template failed for the subscriber
    segments: int  # SMS parts handed to the provider
    finished_at: datetime | None  # the last final status (None: none yet)
    carriers: dict[str, int]  # carrier → messages handed over ("unknown": not looked up)


class SubscriberCounts(msgspec.Struct, frozen=True, kw_only=True):
    """A brand's audience."""

    total: int  # subscribers
    sms_opted_in: int  # of them, those whose current SMS consent is opted in
