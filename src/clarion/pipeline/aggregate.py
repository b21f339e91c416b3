"""Aggregate stage core: fold a batch of receipts into at most one status change per message.

Events are de-duplicated on (message, status); the winning status per message is the highest
ranked (terminal states win; the first terminal seen stands). The database applies it only if
it ranks above what is stored, so the fold is monotonic across batches too.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from clarion.domain.records import Receipt
from clarion.domain.status import RANK


def unique_events(receipts: Sequence[Receipt]) -> list[Receipt]:
    """Receipts with duplicate (message, status) pairs and unknown statuses removed."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in receipts:
        key = (r.message_id, r.status)
        if key in seen or r.status not in RANK:
            continue
        seen.add(key)
        out.append(r)
    return out


def fold(receipts: Sequence[Receipt]) -> list[Receipt]:
    """The highest-ranked receipt per message, with the carrier and the provider's id taken
    from any receipt that has them (a send answer names the id, a report the carrier)."""
    best: dict[str, tuple[int, Receipt]] = {}
    carrier: dict[str, str] = {}
    provider_id: dict[str, str] = {}
    for r in receipts:
        r_rank = RANK.get(r.status, -1)
        if r_rank < 0:
            continue
        if r.carrier:
            carrier.setdefault(r.message_id, r.carrier)
        if r.provider_message_id:
            provider_id.setdefault(r.message_id, r.provider_message_id)
        current = best.get(r.message_id)
        if current is None or r_rank > current[0]:
            best[r.message_id] = (r_rank, r)
    out = []
    for message_id, (_, r) in best.items():
        c = carrier.get(message_id)
        pid = provider_id.get(message_id)
        if (c and not r.carrier) or (pid and not r.provider_message_id):
            r = msgspec.structs.replace(
                r, carrier=r.carrier or c, provider_message_id=r.provider_message_id or pid
            )
        out.append(r)
    return out
