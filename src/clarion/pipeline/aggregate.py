"""Aggregate stage core: fold a batch of receipts into at most one status change per message.

Events are de-duplicated on (message, status); the winning status per message is the highest
ranked (terminal states win; the first terminal seen stands). The database applies it only if
it ranks above what is stored, so the fold is monotonic across batches too.
"""

from __future__ import annotations

import math
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import msgspec

from clarion.domain.records import Receipt, ReceiptBatch
from clarion.domain.status import RANK, TERMINAL_RANK

H = TypeVar("H")
_FINAL = frozenset(status for status, r in RANK.items() if r >= TERMINAL_RANK)
COMPLAINT = "spamreport"  # a receipt's error code for a recipient's spam complaint


def unique_events(receipts: Sequence[Receipt]) -> list[Receipt]:
    """Receipts with duplicate (message, status) pairs and unknown statuses removed."""
    return fold_reports([_as_batch(receipts)], answers="").events


def fold(receipts: Sequence[Receipt]) -> list[Receipt]:
    """The highest-ranked receipt per message, with the carrier and the provider's id taken
    from any receipt that has them (a send answer names the id, a report the carrier)."""
    return fold_reports([_as_batch(receipts)], answers="").folded


def _as_batch(receipts: Sequence[Receipt]) -> ReceiptBatch:
    return ReceiptBatch(batch_id="", provider="", receipts=list(receipts))


class Reports(NamedTuple):
    events: list[Receipt]
    folded: list[Receipt]
    complaints: list[str]  # ids of the messages a receipt reports a spam complaint about


def fold_reports(batches: Sequence[ReceiptBatch], *, answers: str) -> Reports:
    """(events, folded, complaints) in one pass over the batches (the receipts side handles
    three receipts per message). Events: the receipts of every batch but those of origin
    `answers` (send answers move a status but are no provider's report), without repeated
    (message, status) pairs or unknown statuses. Folded: per message, the highest-ranked of
    all its receipts (terminal states win; the first terminal seen stands), with the carrier
    and the provider's id taken from any receipt that has them (a send answer names the
    id, a report the carrier). Complaints: the messages of receipts whose error is a spam
    report (`delivered`, then a complaint: no status change, but the address is
    suppressed)."""
    seen: set[tuple[str, str]] = set()
    events: list[Receipt] = []
    best: dict[str, tuple[int, Receipt]] = {}
    carrier: dict[str, str] = {}
    provider_id: dict[str, str] = {}
    complaints: list[str] = []
    rank_of = RANK.get
    for batch in batches:
        reports = batch.origin != answers
        for r in batch.receipts:
            if r.error_code == COMPLAINT:
                complaints.append(r.message_id)
            r_rank = rank_of(r.status, -1)
            if r_rank < 0:
                continue
            message_id = r.message_id
            if reports:
                key = (message_id, r.status)
                if key not in seen:
                    seen.add(key)
                    events.append(r)
            if r.carrier and message_id not in carrier:
                carrier[message_id] = r.carrier
            if r.provider_message_id and message_id not in provider_id:
                provider_id[message_id] = r.provider_message_id
            current = best.get(message_id)
            if current is None or r_rank > current[0]:
                best[message_id] = (r_rank, r)
    folded = []
    for message_id, (_, r) in best.items():
        if (not r.carrier and message_id in carrier) or (
            not r.provider_message_id and message_id in provider_id
        ):
            r = msgspec.structs.replace(
                r,
                carrier=r.carrier or carrier.get(message_id),
                provider_message_id=r.provider_message_id or provider_id.get(message_id),
            )
        folded.append(r)
    return Reports(events, folded, complaints)


def without_malformed_ids(
    batches: Sequence[ReceiptBatch],
) -> tuple[list[ReceiptBatch], list[tuple[str, Receipt]]]:
    """The batches without their receipts whose message id is not a uuid (no message of
    ours can have it, and the fold, which reads them as uuids, cannot take them), and
    those receipts, with their provider. A receipt with no message id (named by the
    provider's id) is kept. Checked only after a fold has failed on one: a uuid's parse
    per receipt is not worth it when none is malformed."""
    kept: list[ReceiptBatch] = []
    dropped: list[tuple[str, Receipt]] = []
    for batch in batches:
        good = []
        for r in batch.receipts:
            try:
                if r.message_id:
                    uuid.UUID(r.message_id)
            except ValueError:
                dropped.append((batch.provider, r))
            else:
                good.append(r)
        kept.append(msgspec.structs.replace(batch, receipts=good))
    return kept, dropped


@dataclass(eq=False, slots=True)
class _Entry(Generic[H]):
    """A bus message whose receipts are being held: released once all of them are."""

    handle: H
    batch: ReceiptBatch
    outstanding: int
    touched_at: float
    group: tuple[str, str]  # (provider, origin): released receipts are batched by it


class Holding(Generic[H]):
    """Receipts held until their message's final report is in, so that a message's row is
    written once instead of once per report (the send answer's `accepted`, then `sent`, then
    the final status usually arrive within a second of each other, in different webhooks).

    A message's receipts are released together when a final one arrives, or when the first
    of them has waited `hold_s`; one that comes within `hold_s` (up to twice that) after its
    message's final one, and one that names no message of ours (SMPP, resolved by the
    fold), at once.

    `H` is the bus message a batch came in: it is done (to be acknowledged after the fold
    commits) once every receipt it carried is released. Each receipt is looked at a bounded
    number of times, however many are held. Bus messages in hand are unacknowledged, and
    the bus stops handing out more at its limit: with `max_batches` or more in hand,
    everything is released (a provider that posts one receipt per webhook, as Twilio does,
    fills it fastest)."""

    def __init__(self, hold_s: float, max_batches: int = 8192) -> None:
        self.hold_s = hold_s
        self.max_batches = max_batches
        # message id → (when its first held receipt came, its held receipts); insertion
        # order is arrival order, so the oldest are at the front. Ordered dicts: a plain
        # dict's first key, after many deletions at the front, is found by a scan over the
        # deleted slots (that was 15 % of a worker at bench rates).
        self._held: OrderedDict[str, tuple[float, list[tuple[_Entry[H], Receipt]]]] = OrderedDict()
        self._ready: list[tuple[_Entry[H], Receipt]] = []
        self._live: dict[int, _Entry[H]] = {}
        self._empty: list[H] = []  # bus messages with no receipt: done as they come
        # messages whose final receipt came in the last one or two `hold_s` (two sets, the
        # older dropped each `hold_s`): a report that arrives after the final one (webhooks
        # overtake each other) has nothing to wait for
        self._final: set[str] = set()
        self._final_before: set[str] = set()
        self._final_since = -math.inf

    def add(self, handle: H, batch: ReceiptBatch, now: float) -> None:
        if not batch.receipts:
            self._empty.append(handle)
            return
        entry = _Entry(handle, batch, len(batch.receipts), now, (batch.provider, batch.origin))
        self._live[id(entry)] = entry
        held, ready, final, before = self._held, self._ready, self._final, self._final_before
        for r in batch.receipts:
            message_id = r.message_id
            slot = held.get(message_id)
            if slot is not None:  # the message's earlier receipts are held
                slot[1].append((entry, r))
                if r.status in _FINAL:  # the message's wait is over
                    ready += held.pop(message_id)[1]
                    final.add(message_id)
            elif not message_id or message_id in final or message_id in before:
                ready.append((entry, r))  # nothing to wait for
            elif r.status in _FINAL:  # final first: nothing held, nothing to wait for
                ready.append((entry, r))
                final.add(message_id)
            else:
                held[message_id] = (now, [(entry, r)])

    def next_due(self) -> float | None:
        """When the oldest held message is released (None: nothing held)."""
        if self._ready or self._empty:
            return 0.0
        for first, _ in self._held.values():
            return first + self.hold_s
        return None

    def take(self, now: float, *, everything: bool = False) -> tuple[list[ReceiptBatch], list[H]]:
        """The released receipts, in batches of the origin and provider they came with, and
        the bus messages that have nothing held any more."""
        held, ready = self._held, self._ready
        everything = everything or len(self._live) >= self.max_batches
        if now - self._final_since >= self.hold_s:
            self._final_before, self._final, self._final_since = self._final, set(), now
        while held:
            message_id = next(iter(held))
            first, items = held[message_id]
            if not everything and now - first < self.hold_s:
                break
            del held[message_id]
            ready += items
        done, self._empty = self._empty, []
        if not ready:
            return [], done
        self._ready = []
        groups: dict[tuple[str, str], list[Receipt]] = {}
        live = self._live
        for entry, r in ready:
            group = groups.get(entry.group)
            if group is None:
                group = groups[entry.group] = []
            group.append(r)
            entry.outstanding -= 1
            if not entry.outstanding:
                done.append(entry.handle)
                del live[id(entry)]
        batches = [
            ReceiptBatch(batch_id="", provider=provider, origin=origin, receipts=receipts)
            for (provider, origin), receipts in groups.items()
        ]
        return batches, done

    def stale(self, now: float, age_s: float) -> list[H]:
        """Bus messages held longer than `age_s` since they were last reported in progress
        (they are marked as reported now)."""
        out = []
        for entry in self._live.values():
            if now - entry.touched_at >= age_s:
                entry.touched_at = now
                out.append(entry.handle)
        return out

    def drop(self) -> list[H]:
        """Forget everything (a fold failed): the bus messages to hand back for redelivery."""
        handles = [e.handle for e in self._live.values()] + self._empty
        self._held, self._ready, self._live, self._empty = OrderedDict(), [], {}, []
        self._final, self._final_before = set(), set()
        return handles
