"""Campaign stage core: whether a campaign may be launched, and the command that launches it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clarion.compliance.encoding import MAX_SEGMENTS, SmsSegments, sms_segments
from clarion.domain.ids import batch_id
from clarion.domain.records import LaunchCampaign
from clarion.domain.rows import SubscriberRow
from clarion.errors import CampaignStateError
from clarion.pipeline.personalize import check_template

LAUNCHABLE = frozenset({"draft", "scheduled"})


def validate_launch(*, campaign_id: int, body: str, status: str, relaunch: bool) -> None:
    """Refuse a campaign whose template does not compile or is over the sandbox's limits, or
    that was launched already (unless this is a deliberate relaunch, which the pipeline's
    idempotency makes harmless)."""
    check_template(body)
    if status not in LAUNCHABLE and not relaunch:
        raise CampaignStateError(
            f"campaign {campaign_id} is {status}; it was launched already (use relaunch to resume)"
        )


def require_draft(*, campaign_id: int, status: str, verb: str) -> None:
    """Refuse to change (`verb`: "changed", "deleted") a campaign that has been launched:
    what it sent, and its report, are of the campaign as it was."""
    if status != "draft":
        raise CampaignStateError(
            f"campaign {campaign_id} is {status}; only a draft (never launched) can be {verb}"
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


# "Reply STOP to opt out", "Text STOP to end", "opt-out", "unsubscribe": how to opt out.
_OPT_OUT_INSTRUCTIONS = re.compile(r"\b(stop|opt[\s-]?out|unsubscribe)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BodyCheck:
    """What a marketer sees before launch: problems, and how the message will be billed."""

    sample: str
    segments: SmsSegments
    errors: tuple[str, ...]

    def describe(self) -> str:
        s = self.segments
        lines = [f"{s.encoding}, {s.segments} segment(s), {s.units} units"]
        if s.non_gsm:
            lines.append("characters forcing UCS-2: " + " ".join(repr(c) for c in s.non_gsm))
        if s.suggestion is not None:
            fixed = sms_segments(s.suggestion)
            # Only a fix that makes the message cheaper: "…" → "..." can cost more.
            if fixed.segments < s.segments or (
                fixed.encoding == "GSM-7" and fixed.segments <= s.segments
            ):
                lines.append(
                    f"suggested fix ({fixed.encoding}, {fixed.segments} segment(s)): {s.suggestion}"
                )
        return "; ".join(lines)


def sample_fields(subscriber: SubscriberRow | None) -> dict[str, Any]:
    """What a campaign's template sees of the sample subscriber it is checked with: their
    attributes, then each of their names, email and phone they have (none: nothing)."""
    if subscriber is None:
        return {}
    fields = dict(subscriber.attributes or {})
    standard = {
        "first_name": subscriber.first_name,
        "last_name": subscriber.last_name,
        "email": subscriber.email,
        "phone": subscriber.phone,
    }
    fields.update((name, value) for name, value in standard.items() if value)
    return fields


def check_sms_body(
    sample: str, *, brand_name: str, first_contact: bool, max_segments: int = MAX_SEGMENTS
) -> BodyCheck:
    """Check a rendered sample. A campaign that is some subscriber's first message from the
    brand must name the brand and say how to opt out (CTIA; COMPLIANCE.md); no message may
    be longer than the brand's `max_segments`."""
    segments = sms_segments(sample)
    errors = []
    if first_contact:
        if brand_name.casefold() not in sample.casefold():
            errors.append(f"the first message to a subscriber must name the brand ({brand_name!r})")
        if not _OPT_OUT_INSTRUCTIONS.search(sample):
            errors.append(
                "the first message to a subscriber must say how to opt out (e.g. 'Reply STOP to "
                "opt out')"
            )
    if not sample:
        errors.append("the message renders empty")
    if segments.segments > max_segments:
        errors.append(
            f"the message is {segments.segments} segments; the brand's limit is {max_segments}"
        )
    return BodyCheck(sample=sample, segments=segments, errors=tuple(errors))
