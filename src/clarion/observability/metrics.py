"""Prometheus metrics every stage exports (throughput, latency, errors, lag)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCHES = Counter("clarion_stage_batches_total", "Batches handled", ["stage", "outcome"])
ITEMS = Counter(
    "clarion_stage_items_total", "Items (recipients, messages, receipts) handled", ["stage"]
)
BATCH_SECONDS = Histogram(
    "clarion_stage_batch_seconds",
    "Time to handle one batch",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INFLIGHT = Gauge("clarion_stage_inflight_batches", "Batches being handled", ["stage"])
MESSAGES = Counter("clarion_messages_total", "Message status transitions", ["status"])
WEBHOOKS = Counter("clarion_webhooks_total", "Provider webhooks received", ["provider", "outcome"])
RECEIPTS_DROPPED = Counter(
    "clarion_receipts_dropped_total", "Receipts that could not be folded, left out", ["reason"]
)
CARRIER_OUTCOMES = Counter(
    "clarion_carrier_outcomes_total", "Final message outcomes per carrier", ["carrier", "outcome"]
)

CARRIER_DELIVERY_RATE = Gauge(
    "clarion_carrier_delivery_rate",
    "Share of final outcomes that were delivered, over the monitoring window",
    ["brand", "carrier"],
)
CARRIER_LATENCY = Histogram(
    "clarion_carrier_delivery_latency_seconds",
    "Handed over to delivered, per carrier (mean per batch)",
    ["carrier"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
ALERTS = Counter("clarion_alerts_raised_total", "Alerts raised", ["kind"])
