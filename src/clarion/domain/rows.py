"""Rows the store reads, typed. Two kinds, built two ways:

Whole rows (`SELECT *`: `BrandRow`, `CampaignRow`) have one field per column, in the order
the migrations (src/clarion/store/migrations/*.sql) create them, later `ALTER TABLE`s last, and
are built by name (`msgspec.convert`). A column added by a migration is a field added here. A
column the struct lacks is ignored, not refused: during a rolling upgrade, processes of the
previous version read rows of a schema one migration ahead. A column of another type, or a
field with no column, is refused at the first read.

Rows of a query (the others) have one field per column the store's query selects, by the
same name. `SubscriberRow`, read by the thousand on the way to every message, is built from
the record by position, unchecked; its query selects `SUBSCRIBER_COLUMNS`, the struct's own
fields, so the two cannot drift apart. The rest are built by name, and checked.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec

from clarion.domain.schedule import LocalWave, local_time_in
from clarion.domain.variants import AbTest, Variant


class BrandRow(msgspec.Struct, frozen=True, kw_only=True):
    """A row of `brands`."""

    id: int
    slug: str
    name: str
    sender: str  # default SMS sender (long code / short code)
    help_text: str
    created_at: datetime
    smart_sending_h: float  # 0 turns smart sending off
    support_contact: str
    email_from: str | None  # From of the brand's email (None: `<name> <news@<slug>.example>`)
    link_domain: str | None = None  # where its short links are served (None: the install's)
    macros: dict[str, str] = {}  # its own `{{ brand.* }}` values
    click_window_h: float = 120.0  # an order this long after a click is the message's doing
    view_window_h: float = 24.0  # else this long after a delivery
    max_segments: int  # the most SMS parts a message of the brand may take (1 to 10)


class CampaignRow(msgspec.Struct, frozen=True, kw_only=True):
    """A row of `campaigns`."""

    id: int
    uid: uuid.UUID  # globally unique: message ids derive from it
    brand_id: int
    name: str
    channel: str  # sms, email or both
    body: str
    status: str
    launch_count: int
    audience_cursor: int  # last subscriber id published by audience
    audience_count: int
    audience_done: bool
    created_at: datetime
    launched_at: datetime | None
    first_send_at: datetime | None
    expiry_h: float  # messages are never sent after launch + expiry_h
    expires_at: datetime | None  # fixed at the first launch
    audience_cursors: list[int]  # one per partition (-1: done)
    plan: Any  # the last computed send plan, as JSON (None: not planned)
    subject: str | None  # email subject (a template)
    email_body: str | None  # email text (a template; None: body)
    segment_id: int | None  # its audience (None: the brand's whole list)
    exclude_segment_ids: list[int]  # less these segments' subscribers
    audience_resolved_at: datetime | None  # the segment resolved, at the first launch
    audience_definition: Any  # a segment definition of its own (JSON) instead of a segment
    track_links: bool = True  # its URLs become tracked short links
    variants: Any = None  # [Variant as JSON] (None: one, the texts above)
    ab: Any = None  # AbTest as JSON (None: no test)
    ab_winner: str | None = None  # a test's winner, once decided
    ab_decision: Any = None  # the Decision as JSON
    ab_decided_at: datetime | None = None
    ab_attempt: int | None = None  # the launch attempt that sends the winner to the rest
    scheduled_at: datetime | None = None  # a scheduled campaign launches itself then
    local_day: date | None = None  # a local-time send: on this day ...
    local_time: str | None = None  # ... at this HH:MM on each subscriber's clock
    email_html: str | None = None  # email HTML (a template; None: text only)
    best_time_h: int | None = None  # a best-time send: each at their best hour within this
    sto_model_id: int | None = None  # the send-time model that chose the times (at launch)
    recs_model_id: int | None = None  # the recommendations model that chose the products

    def local_wave(self) -> LocalWave | None:
        if self.local_day is None or self.local_time is None:
            return None
        hour, minute = local_time_in(self.local_time)
        return LocalWave(self.local_day, hour, minute)

    def variant_list(self) -> list[Variant]:
        """Its variants (one, its own texts, when it has none)."""
        if self.variants:
            return msgspec.convert(self.variants, list[Variant])
        return [Variant(key="a", name="A", weight=100.0, body=self.body, subject=self.subject,
                        email_body=self.email_body, email_html=self.email_html)]  # fmt: skip

    def ab_test(self) -> AbTest | None:
        return None if self.ab is None else msgspec.convert(self.ab, AbTest)

    @property
    def targeted(self) -> bool:
        """To a segment or a definition (resolved at the launch), not the whole list."""
        return self.segment_id is not None or self.audience_definition is not None


# What `campaigns.status` may be: a draft until its first launch, then sending or paused,
# and cancelled for good (a campaign whose messages are all final stays `sending`).
CAMPAIGN_STATUSES = ("draft", "scheduled", "sending", "paused", "cancelled")


class CampaignSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign in a list: what it is and to whom, without its texts or plan."""

    id: int
    brand_id: int
    name: str
    channel: str
    status: str
    created_at: datetime
    launched_at: datetime | None
    segment_id: int | None
    exclude_segment_ids: list[int]
    audience_definition: Any
    scheduled_at: datetime | None = None


class SubscriberRow(msgspec.Struct, frozen=True, gc=False):
    """A subscriber as the audience and the send plan read them (positional: built as
    `SubscriberRow(*record)` from a query selecting `SUBSCRIBER_COLUMNS`)."""

    id: int
    phone: str | None  # E.164 (None: reached by email only)
    timezone: str | None  # IANA zone (None: the number spans several; each one is checked)
    first_name: str | None
    last_name: str | None
    email: str | None
    attributes: dict[str, Any] | None  # the import's other columns (None: a JSON null)
    carrier: str | None  # looked up once and kept (None: not looked up yet)


# The columns a query reading `SubscriberRow`s selects, in its fields' order.
SUBSCRIBER_COLUMNS: tuple[str, ...] = SubscriberRow.__struct_fields__


class ConsentRow(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of the consent ledger (`consents`), with the subscriber's phone and email:
    what an audit export shows."""

    id: int
    subscriber_id: int
    phone: str | None
    email: str | None
    channel: str  # sms or email
    status: str  # opted_in or opted_out
    source: str  # how it was given: an import's source, sms_keyword, email_unsubscribe:…
    keyword: str | None  # the word texted (STOP, START, …), for an SMS keyword
    disclosure: str | None  # the text the subscriber was shown when opting in
    created_at: datetime


class AccountRow(msgspec.Struct, frozen=True, kw_only=True):
    """A provider account (`provider_accounts`)."""

    name: str
    kind: str  # one of domain.accounts.KINDS
    settings: dict[str, Any]  # secrets only as "env:VARIABLE" references


class MessageStatusRow(msgspec.Struct, frozen=True, kw_only=True):
    """A message's current status, as `GET /v1/messages/{id}` shows it: the fields are the
    API's JSON keys, in its order."""

    id: str  # the message's UUID
    kind: str  # marketing or transactional
    to: str  # the number or address it goes to
    status: str
    error_code: str | None
    segments: int  # SMS parts billed
    sent_at: datetime | None  # when it was handed to the provider (None: not yet)
    updated_at: datetime
