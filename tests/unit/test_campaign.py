"""Campaign stage: launch validation and the launch command."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clarion.errors import CampaignStateError, TemplateError
from clarion.pipeline.campaign import launch_command, validate_launch

GOOD = 'Hi {{ first_name | default("there") }}'
BAD = "Hi {{ first_name"


@pytest.mark.parametrize("status", ["draft", "scheduled"])
def test_a_draft_or_scheduled_campaign_with_a_good_template_may_launch(status: str) -> None:
    validate_launch(campaign_id=1, body=GOOD, status=status, relaunch=False)


@pytest.mark.parametrize("relaunch", [False, True])
def test_a_template_that_does_not_compile_is_refused(relaunch: bool) -> None:
    with pytest.raises(TemplateError):
        validate_launch(campaign_id=1, body=BAD, status="draft", relaunch=relaunch)


@pytest.mark.parametrize("status", ["sending", "sent", "completed"])
def test_a_campaign_launched_already_is_refused_without_relaunch(status: str) -> None:
    with pytest.raises(CampaignStateError, match=rf"campaign 5 is {status}"):
        validate_launch(campaign_id=5, body=GOOD, status=status, relaunch=False)


@pytest.mark.parametrize("status", ["sending", "completed"])
def test_a_deliberate_relaunch_of_a_launched_campaign_is_allowed(status: str) -> None:
    validate_launch(campaign_id=5, body=GOOD, status=status, relaunch=True)


def test_a_bad_template_is_reported_before_the_campaign_state() -> None:
    with pytest.raises(TemplateError):
        validate_launch(campaign_id=5, body=BAD, status="completed", relaunch=False)


def test_the_launch_command_id_is_stable_per_attempt_and_differs_across_attempts() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    first = launch_command(brand_id=1, campaign_id=5, attempt=1, now=now)
    again = launch_command(brand_id=1, campaign_id=5, attempt=1, now=now.replace(hour=3))
    second = launch_command(brand_id=1, campaign_id=5, attempt=2, now=now)
    assert first.command_id == again.command_id
    assert first.command_id != second.command_id
    assert (first.brand_id, first.campaign_id, first.attempt, first.issued_at) == (1, 5, 1, now)
