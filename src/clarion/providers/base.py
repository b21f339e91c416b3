"""The one protocol every provider adapter implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from clarion.domain.records import InboundMessage, OutboundMessage, Receipt
from clarion.pipeline.send import SendResult

__all__ = ["Provider", "SendResult"]


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
