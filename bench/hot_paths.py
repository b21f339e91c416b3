"""Microseconds per message of the pipeline's per-message Python, without servers.

Times the pure cores the bench's profiles name, on synthetic subscribers in batches of
1,000 as the stages see them, and prints one JSON line (the best of `--rounds` rounds, so
a busy host shows less; compare runs on the same machine, close together):

- `gate_batch`: the compliance gate over a batch (95 % with consent, nobody suppressed or
  recently sent to, a weekday afternoon: nearly everyone goes);
- `lanes`: a batch's lane demand and admission (six lane sets, limits that carry it);
- `sms_segments`: the encoding and segment count of a rendered GSM-7 text;
- `receipts`: holding and folding three receipts per message (the send answer, `sent`,
  `delivered`), as the receipts side does before its database writes;
- `simulator`: the simulator's side of the same messages (it shares the machine in
  `clarion bench`): decoding a send request, deciding and scheduling each message's two
  receipts, encoding the answer, then releasing the receipts and encoding their webhooks.

    .venv/bin/python bench/hot_paths.py
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from clarion.compliance.encoding import sms_segments
from clarion.domain.lanes import Grant, Lane, LaneLimit
from clarion.domain.records import OutboundMessage, Receipt, ReceiptBatch
from clarion.harness.seed import synthetic_subscribers
from clarion.pipeline import aggregate, lanes, send
from clarion.sim import app as sim_app
from clarion.sim.wire import ReceiptPost, SendRequest, SendResponse, SimMessage

BATCH = 1000
AT = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # a Wednesday, 1 pm in New York
TEXT = (
    "Hi Noah, Black Friday at Northwind: 30% off everything until midnight. "
    "Shop https://clr.io/l/AbC12xyz Reply STOP to opt out."
)


def best_us(fn: Callable[[], int], rounds: int) -> float:
    """The fastest round's microseconds per message (`fn` returns how many it handled)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        n = fn()
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return round(best, 2)


def gate(n: int) -> Callable[[], int]:
    subs = synthetic_subscribers(n)
    rng = random.Random(1)
    messages = [
        OutboundMessage(
            message_id=f"m{i}", subscriber_id=i, to=s.phone, body=TEXT, segments=1,
            timezone=s.timezone,
        )
        for i, s in enumerate(subs)
    ]  # fmt: skip
    consent = {i: "opted_in" for i in range(n) if rng.random() < 0.95}

    def run() -> int:
        for k in range(0, n, BATCH):
            send.gate_batch(
                messages[k : k + BATCH], at=AT, consent=consent, suppressed={},
                recent_sends={}, expires_at=None, smart_sending_h=16,
            )  # fmt: skip
        return n

    return run


def lane_admission(n: int) -> Callable[[], int]:
    sets = [
        (("provider", "sim"), ("sender", f"+1512555010{i}"), ("carrier", c), ("brand", "1"))
        for i in range(2)
        for c in ("Verizon", "AT&T", "T-Mobile")
    ]
    lanes_of = [sets[i % len(sets)] for i in range(BATCH)]
    segments = [2 if i % 7 == 0 else 1 for i in range(BATCH)]
    limit = LaneLimit(rate_per_s=100_000, burst=100_000)

    def limit_of(_lane: Lane) -> LaneLimit:
        return limit

    def run() -> int:
        for _ in range(n // BATCH):
            want = lanes.demand(lanes_of, segments, limit_of)
            grants = {lane: Grant(tokens) for lane, tokens in want.items()}
            lanes.admit(lanes_of, segments, limit_of, grants)
        return n

    return run


def segments(n: int) -> Callable[[], int]:
    def run() -> int:
        for _ in range(n):
            sms_segments(TEXT)
        return n

    return run


def receipts(n: int) -> Callable[[], int]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    batches = []
    for k in range(0, n, BATCH):
        chunk = ids[k : k + BATCH]
        for status, origin, carrier in (
            ("accepted", send.ANSWER, None),
            ("sent", "webhook", "AT&T"),
            ("delivered", "webhook", "AT&T"),
        ):
            reported = [
                Receipt(
                    # a string of its own per receipt, as each is decoded: hashed anew
                    message_id=str(uuid.UUID(i)),
                    status=status,
                    occurred_at=AT,
                    provider_message_id="SM" + i[:30],
                    carrier=carrier,
                )
                for i in chunk
            ]
            batches.append(
                ReceiptBatch(
                    batch_id=f"{status}{k}", provider="sim", origin=origin, receipts=reported
                )
            )

    def run() -> int:
        holding: aggregate.Holding[int] = aggregate.Holding(0.5)
        now = 0.0
        for j, batch in enumerate(batches):
            holding.add(j, batch, now)
            if j % 4 == 3:
                released, _ = holding.take(now)
                if released:
                    folded = aggregate.fold_reports(released, answers=send.ANSWER).folded
                    folded.sort(key=lambda r: r.message_id)
            now += 0.01
        holding.take(now + 10, everything=True)
        return n

    return run


def simulator(n: int) -> Callable[[], int]:
    subs = synthetic_subscribers(n)
    requests = [
        sim_app.encode(
            SendRequest(
                callback_url="http://127.0.0.1:8080/webhooks/sim/status",
                messages=[
                    SimMessage(str(uuid.uuid4()), s.phone, "+15125550100", TEXT)
                    for s in subs[k : k + BATCH]
                ],
            )
        )
        for k in range(0, n, BATCH)
    ]

    def run() -> int:
        # latency 0: every receipt is due at once, so one pass releases them all
        state = sim_app.SimState(sim_app.SimConfig(latency_scale=0.0, seed=1), random.Random(1))
        for body in requests:
            sim_app.encode(SendResponse(state.accept(sim_app.decode_request(body))))
        while state.pending:
            due = state.pop_due(sim_app.RECEIPTS_PER_POST)
            for report in due:
                sim_app.encode(ReceiptPost(batch_id="b", receipts=report.receipts))
        return n

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n, rounds = args.messages, args.rounds
    print(
        json.dumps(
            {
                "messages": n,
                "us_per_message": {
                    "gate_batch": best_us(gate(n), rounds),
                    "lanes": best_us(lane_admission(n), rounds),
                    "sms_segments": best_us(segments(n), rounds),
                    "receipts": best_us(receipts(n), rounds),
                    "simulator": best_us(simulator(n), rounds),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
