"""The ports: what the core asks of the world outside it, as `typing.Protocol`s. Adapters
(`bus/`, `providers/`) implement them; stage cores and the runtime depend on these, not on
the adapters. Each docstring is the promise an implementation keeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

import msgspec

from clarion.domain.messages import SendResult
from clarion.domain.records import InboundMessage, OutboundMessage, Receipt


class Clock(Protocol):
    """The one clock a worker runs on, read three ways. `now()` is the time decisions run on
    (quiet hours, expiry, waits), an aware `datetime` in UTC: tests pin it, the CLI's
    `--clock-offset` shifts it. `monotonic()` is seconds that never go backwards, for
    intervals (breakers, re-reads). `epoch()` is real wall seconds since the epoch, for what
    other processes or the database compare with (the lanes' shared state). Implementations:
    `domain.clock.SystemClock` and `domain.clock.PinnedClock`. No reading does I/O or
    raises."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def epoch(self) -> float: ...


class Bus(Protocol):
    """Where a stage hands its output to the next one: one hop (a named queue) per stage.

    `publish` returns once the batch is stored (acknowledged by the server), never sooner,
    so a caller acks its own input only after its output is safe. Batches published one
    after another on the same hop and partition are delivered in that order; a partitioned
    hop (`rendered`, `transactional`) takes its partition from `record.partition` when
    `partition` is None, so one subscriber's messages stay in one ordered lane. `msg_id`
    is the de-duplication key: a second publish with the same `hop` and `msg_id` within the
    server's window (300 s) is dropped, so a retried publish is harmless. Each publish is
    atomic on its own (the whole batch or nothing); there is no transaction across
    publishes. A batch that could not be stored raises the transport's error (a timeout, a
    lost connection): the caller must treat it as not published and let its input be
    redelivered. Consumers may still see a batch twice and must be idempotent."""

    async def publish(
        self, hop: str, record: msgspec.Struct, *, msg_id: str, partition: int | None = None
    ) -> None: ...


class Provider(Protocol):
    """A way to hand messages to a carrier network and hear back about them.

    `send` takes at most `max_batch` messages, all from `sender`, and returns one result per
    message, in any order. Each message's `message_id` is passed to the provider as its
    idempotency key, so sending the same message twice reaches the handset once. A failure of
    the call as a whole raises `ProviderError` (transient: the caller retries the batch); a
    per-message rejection is a `SendResult` with `accepted=False` (permanent).

    `parse_status_webhook` verifies the request's signature (raising `ForgedWebhook`) and
    returns the receipts it carries; it does no I/O.
    """

    name: str
    max_batch: int
    # Whether the provider honours our message id as an idempotency key. If it does not, a
    # provider call cut short by a crash is never repeated (its messages become `unknown`).
    idempotent: bool

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]: ...

    async def lookup_carriers(self, numbers: Sequence[str]) -> dict[str, str]:
        """The carrier network of each number (as a carrier lookup API answers); numbers it
        cannot place are left out. Carrier lanes need it before a message goes."""
        ...

    def parse_status_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[Receipt]]:
        """(batch id, receipts) of a verified status webhook."""
        ...

    def parse_inbound_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[InboundMessage]]:
        """(batch id, messages) of a verified inbound-message webhook."""
        ...

    async def aclose(self) -> None: ...
