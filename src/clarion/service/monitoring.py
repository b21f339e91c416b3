"""What an operator or a brand watches: alerts, and delivery per carrier."""

from __future__ import annotations

from datetime import datetime, timedelta

from clarion.domain.monitoring import AlertRow, CarrierDelivery
from clarion.service.context import Services
from clarion.store import monitoring


async def alerts(
    svc: Services, *, brand_id: int | None = None, include_cleared: bool = False
) -> list[AlertRow]:
    """Open alerts (a carrier's delivery rate below the threshold, …), of one brand or all."""
    return await monitoring.list_alerts(svc.pool, brand_id=brand_id, open_only=not include_cleared)


async def carriers(
    svc: Services, brand_id: int, *, minutes: int, now: datetime
) -> list[CarrierDelivery]:
    """Delivery per carrier for a brand over the last `minutes`: outcomes, rate, latency,
    error codes."""
    return await monitoring.carrier_report(svc.pool, brand_id, now - timedelta(minutes=minutes))
