"""The bus: one work-queue stream per install, one subject and one durable consumer per hop.

Every bus message is a msgspec-encoded batch. Publishing carries a `Nats-Msg-Id` (the batch id)
so a republished batch inside the de-duplication window is dropped by the server; consumers are
idempotent anyway, because the bus may replay (see COMPLIANCE.md, reliability lessons).
"""

from __future__ import annotations

from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from clarion.domain.ids import PARTITIONS
from clarion.domain.records import (
    InboundBatch,
    LaunchCampaign,
    ReceiptBatch,
    RecipientBatch,
    RenderedBatch,
    StatusBatch,
)

# hop name → record type carried on it
HOPS: dict[str, type[msgspec.Struct]] = {
    "launch": LaunchCampaign,
    "audience": RecipientBatch,
    "rendered": RenderedBatch,
    "receipts": ReceiptBatch,
    "status": StatusBatch,
    "inbound": InboundBatch,
    # Replies (opt-out and HELP answers, confirmations): their own hop and consumer, so they
    # never wait behind a campaign's rendered batches.
    "transactional": RenderedBatch,
}

# Hops whose batches are routed by subscriber (see `domain.ids.partition_of`): one subject
# and one consumer per partition, each with one batch in flight across all workers, so a
# subscriber's messages are handled by one worker at a time, in order.
PARTITIONED = frozenset({"rendered", "transactional"})
# Room left in a publish for its subject and headers (the de-duplication id is bounded).
_HEADROOM_BYTES = 4096

_encoder = msgspec.msgpack.Encoder()
_decoders = {hop: msgspec.msgpack.Decoder(t) for hop, t in HOPS.items()}


def encode(record: msgspec.Struct) -> bytes:
    return _encoder.encode(record)


def decode(hop: str, data: bytes) -> Any:
    return _decoders[hop].decode(data)


class Bus:
    """A connection to JetStream scoped to one namespace (stream, subjects, consumers)."""

    def __init__(self, nc: Client, namespace: str, *, replicas: int = 1) -> None:
        self.nc = nc
        self.replicas = replicas  # copies of the stream in a NATS cluster (1 on one server)
        self.js: JetStreamContext = nc.jetstream(timeout=30)
        self.namespace = namespace
        self.stream = f"{namespace.upper().replace('.', '_')}_PIPELINE"

    @classmethod
    async def connect(cls, url: str, namespace: str, *, replicas: int = 1) -> Bus:
        nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        bus = cls(nc, namespace, replicas=replicas)
        await bus.ensure_stream()
        return bus

    def subject(self, hop: str, partition: int | None = None) -> str:
        if hop in PARTITIONED:
            return f"{self.namespace}.{hop}.{'*' if partition is None else partition}"
        return f"{self.namespace}.{hop}"

    def durable(self, hop: str, partition: int | None = None) -> str:
        name = f"{self.namespace.replace('.', '_')}_{hop}"
        return name if partition is None else f"{name}_{partition}"

    def partitions(self, hop: str) -> list[int | None]:
        """The partitions of a hop ([None] for a hop that is not partitioned)."""
        return list(range(PARTITIONS)) if hop in PARTITIONED else [None]

    async def ensure_stream(self) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=[self.subject(h) for h in HOPS],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=300.0,
            num_replicas=self.replicas,
        )
        try:
            await self.js.stream_info(self.stream)
            await self.js.update_stream(config)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(config)

    async def consumer_config(
        self, hop: str, *, ack_wait_s: float, max_inflight: int, partition: int | None = None
    ) -> None:
        """Create (or update) the durable pull consumer of `hop` (of one of its partitions),
        shared by all workers. A partition's consumer hands out one batch at a time."""
        await self.js.add_consumer(
            self.stream,
            ConsumerConfig(
                durable_name=self.durable(hop, partition),
                filter_subject=self.subject(hop, partition),
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ack_wait_s,
                max_deliver=-1,
                max_ack_pending=1 if partition is not None else max(64, max_inflight * 16),
            ),
        )

    async def publish(
        self, hop: str, record: msgspec.Struct, *, msg_id: str, partition: int | None = None
    ) -> None:
        """Publish and wait for JetStream's ack (the batch is stored before this returns).
        A partitioned hop takes the batch's partition from the record."""
        if hop in PARTITIONED and partition is None:
            partition = int(getattr(record, "partition"))  # noqa: B009
        await self.js.publish(
            self.subject(hop, partition),
            encode(record),
            headers={"Nats-Msg-Id": f"{hop}:{msg_id}"},
        )

    @property
    def max_payload_bytes(self) -> int:
        """The largest batch (encoded) a publish may carry: the server's limit, less room
        for the subject and headers."""
        return int(self.nc.max_payload) - _HEADROOM_BYTES

    async def pending(self, hop: str) -> int:
        """Batches of `hop` not yet acknowledged (waiting or in flight)."""
        total = 0
        for p in self.partitions(hop):
            try:
                info = await self.js.consumer_info(self.stream, self.durable(hop, p))
            except nats.js.errors.NotFoundError:
                continue  # no worker has consumed this hop yet
            total += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return total

    async def close(self) -> None:
        await self.nc.drain()
