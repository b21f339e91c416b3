"""Campaign stage core: whether a campaign may be launched, and the command that launches it."""

from __future__ import annotations

from datetime import datetime

from clarion.domain.ids import batch_id
from clarion.domain.records import LaunchCampaign
from clarion.errors import CampaignStateError
from clarion.pipeline.personalize import compile_template

LAUNCHABLE = frozenset({"draft", "scheduled"})


def validate_launch(*, campaign_id: int, body: str, status: str, relaunch: bool) -> None:
    """Refuse a campaign whose template does not compile, or that was launched already
    (unless this is a deliberate relaunch, which the pipeline's idempotency makes harmless)."""
    compile_template(body)
    if status not in LAUNCHABLE and not relaunch:
        raise CampaignStateError(
            f"campaign {campaign_id} is {status}; it was launched already (use relaunch to resume)"
        )


def launch_command(
    *, brand_id: int, campaign_id: int, attempt: int, now: datetime
) -> LaunchCampaign:
    return LaunchCampaign(
        command_id=batch_id("launch", campaign_id, attempt),
        brand_id=brand_id,
        campaign_id=campaign_id,
        attempt=attempt,
        issued_at=now,
    )
