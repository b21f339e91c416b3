"""Clarion's use cases: what the CLI, the HTTP API and the web UI do, each a plain async
function of a `Services` (the database, the bus, the settings) and its arguments.

Entrypoints parse, call one of these, and map Clarion's errors (`clarion.errors`) to a
message and an exit code or an HTTP status; they import nothing below this package. The
records they show (plans, checks, progress) are re-exported here for them.
"""

from clarion.bus.jetstream import Bus
from clarion.domain.ports import Provider
from clarion.pipeline.campaign import BodyCheck
from clarion.pipeline.plan import PlanRow, SendPlan
from clarion.service import (
    admin,
    brands,
    campaigns,
    catalog,
    events,
    figures,
    hooks,
    imports,
    intelligence,
    keys,
    links,
    messages,
    monitoring,
    previews,
    segments,
    signups,
    subscribers,
    users,
    webhooks,
)
from clarion.service.campaigns import Status
from clarion.service.context import Services
from clarion.service.progress import Progress, campaign_progress

__all__ = [
    "BodyCheck",
    "Bus",
    "PlanRow",
    "Progress",
    "Provider",
    "SendPlan",
    "Services",
    "Status",
    "admin",
    "brands",
    "campaign_progress",
    "campaigns",
    "catalog",
    "events",
    "figures",
    "hooks",
    "imports",
    "intelligence",
    "keys",
    "links",
    "messages",
    "monitoring",
    "previews",
    "segments",
    "signups",
    "subscribers",
    "users",
    "webhooks",
]
