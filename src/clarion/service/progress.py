"""A campaign's progress per stage, read from Postgres (the record of truth, not worker
memory)."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.domain.reports import CarrierOutcomes
from clarion.pipeline.send import CARRIER_DAILY_CAP, PAUSED
from clarion.pipeline.send_decision import BEST_TIME, LOCAL_TIME
from clarion.store.campaigns import campaign_report
from clarion.store.db import Pool

_HANDED_OVER = ("accepted", "sent", "delivered", "undelivered")
_FINAL = ("delivered", "undelivered", "failed", "expired", "suppressed")
_LONG_WAITS = frozenset({"quiet_hours_deferred", CARRIER_DAILY_CAP, PAUSED, LOCAL_TIME, BEST_TIME})


@dataclass(frozen=True)
class Progress:
    audience: int  # recipients the audience resolved (every subscriber with a phone)
    audience_done: bool
    persisted: int  # rendered (or failed to render) and stored
    handed_over: int  # accepted by the provider
    final: int  # in a terminal status
    carrier_counted: int  # final outcomes the carrier stage has tallied
    by_status: dict[str, int]
    errors: dict[str, int]
    carriers: list[CarrierOutcomes]
    suppressed_by_reason: dict[str, int]
    deferred_by_reason: dict[str, int]
    receipted: int = 0  # SMS outcomes the carrier stage is to count

    @property
    def suppressed(self) -> int:
        """Recipients the compliance gate dropped (no consent, opted out, caps, expired)."""
        return sum(self.suppressed_by_reason.values())

    @property
    def deferred(self) -> int:
        return self.by_status.get("deferred", 0)

    @property
    def unknown(self) -> int:
        """Messages whose provider call a crash cut short (not repeatable): they wait for the
        provider's receipts to say what became of them."""
        return self.by_status.get("unknown", 0)

    @property
    def eligible(self) -> int:
        return self.audience - self.suppressed

    @property
    def delivered(self) -> int:
        return self.by_status.get("delivered", 0)

    @property
    def failed(self) -> int:
        s = self.by_status
        return s.get("failed", 0) + s.get("undelivered", 0)

    @property
    def waiting_long(self) -> int:
        """Deferred to a later moment (quiet hours, a spent daily cap, a pause), as opposed to
        the seconds a lane wait, a retry or the subscriber's sequence takes."""
        return sum(n for r, n in self.deferred_by_reason.items() if r in _LONG_WAITS)

    @property
    def complete(self) -> bool:
        """Every recipient settled (final, or deferred to a later moment) and counted."""
        return (
            self.audience_done
            and self.final + self.waiting_long == self.audience
            and self.carrier_counted >= self.receipted
        )


async def campaign_progress(pool: Pool, campaign_id: int) -> Progress:
    r = await campaign_report(pool, campaign_id)
    s = r.by_status
    return Progress(
        audience=r.campaign.audience_count,
        audience_done=r.campaign.audience_done,
        persisted=r.persisted,
        handed_over=sum(s.get(k, 0) for k in _HANDED_OVER),
        final=sum(s.get(k, 0) for k in _FINAL),
        carrier_counted=sum(c.delivered + c.undelivered + c.failed for c in r.carriers),
        by_status=s,
        errors=r.errors,
        carriers=r.carriers,
        suppressed_by_reason=r.suppressed_by_reason,
        deferred_by_reason=r.deferred_by_reason,
        receipted=r.receipted,
    )
