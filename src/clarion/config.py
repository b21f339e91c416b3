"""Settings, read once from the environment (the public contract is in DESIGN.md)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from clarion.errors import ConfigurationError

# Carriers retry for up to about three days: a message no final report has come for by then
# never gets one, and reconciliation stops asking about it.
RECONCILE_MAX_AGE_S = 3 * 86_400.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where Clarion's servers are and how its workers behave.

    `database_url` / `nats_url` of None mean "start the embedded server under `data_dir`".
    """

    data_dir: Path = Path(".clarion")
    database_url: str | None = None
    nats_url: str | None = None
    # Prefix of every JetStream stream, consumer and subject, so several installs (or tests)
    # can share one NATS without seeing each other's traffic.
    bus_namespace: str = "clarion"
    # Copies JetStream keeps of the pipeline stream: 1 on a single server, 3 on a 3-node
    # cluster so a node can go down without stopping the pipeline.
    bus_replicas: int = 1
    # Base URL at which providers reach our webhooks (receipts, inbound messages).
    public_url: str = "http://127.0.0.1:8080"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Shared secret the simulator signs its webhooks with (a real provider's auth token).
    # None: the install's own, generated once into `data_dir/secrets/sim` (where `clarion
    # sim` run from the same directory finds it too); never a published default.
    sim_url: str = "http://127.0.0.1:9090"
    sim_secret: str | None = None
    # A batch not acknowledged within this time is redelivered to another consumer.
    ack_wait_s: float = 30.0
    # Batches handled concurrently by one stage worker (bounded work in flight).
    max_inflight_batches: int = 4
    # Recipients per audience page, and so per bus batch through personalize and send. Per
    # batch costs (gate reads, lane lease, transactions, bus messages) are spread over more
    # messages as it grows: 2,000 costs about 15 % less CPU per message than 1,000 end to
    # end, and 4,000 a few % less again but doubles the batch latency and the first send's
    # wait (`clarion bench`, BENCHMARKS.md).
    audience_page_size: int = 2000
    # A message whose provider calls fail this many times (transient errors) is dead-lettered:
    # status `failed`, error_code `dead_letter`, the last error as detail.
    send_max_attempts: int = 8
    retry_base_s: float = 0.5  # first retry delay; doubles per attempt, with jitter, to 5 min
    # Messages a second this install sustains end to end; the send plan's estimate never goes
    # faster than this. Default: the 2-core reference machine at 1M recipients with one
    # worker process (7,482/s; 9,426/s with two), rounded down (`clarion bench`,
    # BENCHMARKS.md's history, second pass); measure yours with `clarion bench`.
    platform_rate_mps: float = 7000.0
    # A provider's circuit opens when, over 10 s, at least `breaker_min_calls` calls were made
    # and half failed; traffic then moves to the next provider of the route for
    # `breaker_open_s`, after which one trial call decides.
    breaker_min_calls: int = 4
    breaker_open_s: float = 5.0
    # A carrier whose delivery rate for a brand falls below `carrier_alert_rate` over the last
    # `carrier_alert_window_min` minutes (with at least `carrier_alert_min_volume` outcomes)
    # raises an alert.
    carrier_alert_rate: float = 0.85
    carrier_alert_min_volume: int = 200
    carrier_alert_window_min: int = 10
    # The aggregate holds a message's receipts (the send answer, `sent`) until its final one
    # arrives, or this long, so that its row is written once rather than once per report.
    # A status shown before the final one is up to this much later, and so is a report that
    # a second aggregate process got while the first one had the final; 0 writes each as it
    # comes. The simulator's reports are final within a second; a carrier's may take longer
    # (then the answer and `sent` are still written together).
    receipt_hold_s: float = 1.0
    # Messages handed over this long ago without a final status are asked about (their
    # receipts may be lost); the reconciliation job runs every `reconcile_every_s`.
    reconcile_after_s: float = 600.0
    reconcile_every_s: float = 30.0
    # ... until this long after their hand-over.
    reconcile_max_age_s: float = RECONCILE_MAX_AGE_S
    # Base URL of links inside messages (one-click unsubscribe, short links): the https
    # address subscribers reach; default `public_url`. RFC 8058 one-click needs https.
    links_url: str | None = None
    # Signs one-click unsubscribe links (/u/{token}): anyone who knows it can unsubscribe
    # anyone. None: the install's own, generated once and kept in Postgres (every process of
    # the install reads the same one).
    unsubscribe_secret: str | None = None
    # Requests a second one API key may make to one API process (a key may have its own);
    # `burst` is two seconds' worth. 429 with Retry-After beyond it.
    api_rate_per_s: float = 100.0

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        values: dict[str, Any] = {
            "data_dir": Path(env.get("CLARION_DATA_DIR", ".clarion")),
            "database_url": env.get("CLARION_DATABASE_URL") or None,
            "nats_url": env.get("CLARION_NATS_URL") or None,
        }
        for key, var, kind in (
            ("public_url", "CLARION_PUBLIC_URL", str),
            ("http_host", "CLARION_HTTP_HOST", str),
            ("http_port", "CLARION_HTTP_PORT", int),
            ("sim_url", "CLARION_SIM_URL", str),
            ("bus_namespace", "CLARION_BUS_NAMESPACE", str),
            ("ack_wait_s", "CLARION_ACK_WAIT_S", float),
            ("max_inflight_batches", "CLARION_MAX_INFLIGHT_BATCHES", int),
            ("bus_replicas", "CLARION_BUS_REPLICAS", int),
            ("audience_page_size", "CLARION_AUDIENCE_PAGE_SIZE", int),
            ("send_max_attempts", "CLARION_SEND_MAX_ATTEMPTS", int),
            ("retry_base_s", "CLARION_RETRY_BASE_S", float),
            ("reconcile_every_s", "CLARION_RECONCILE_EVERY_S", float),
            ("carrier_alert_window_min", "CLARION_CARRIER_ALERT_WINDOW_MIN", int),
            ("platform_rate_mps", "CLARION_PLATFORM_RATE_MPS", float),
            ("breaker_min_calls", "CLARION_BREAKER_MIN_CALLS", int),
            ("breaker_open_s", "CLARION_BREAKER_OPEN_S", float),
            ("carrier_alert_rate", "CLARION_CARRIER_ALERT_RATE", float),
            ("carrier_alert_min_volume", "CLARION_CARRIER_ALERT_MIN_VOLUME", int),
            ("reconcile_after_s", "CLARION_RECONCILE_AFTER_S", float),
            ("reconcile_max_age_s", "CLARION_RECONCILE_MAX_AGE_S", float),
            ("receipt_hold_s", "CLARION_RECEIPT_HOLD_S", float),
            ("links_url", "CLARION_LINKS_URL", str),
            ("api_rate_per_s", "CLARION_API_RATE_PER_S", float),
        ):
            if var in env:
                values[key] = kind(env[var])
        for key, var in (("sim_secret", "CLARION_SIM_SECRET"),
                         ("unsubscribe_secret", "CLARION_UNSUBSCRIBE_SECRET")):  # fmt: skip
            if var in env:
                values[key] = checked_secret(var, env[var])
        values.update(overrides)
        return replace(cls(), **values)


# Values that earlier versions used as defaults, and so are public: never accepted.
_PUBLISHED_SECRETS = frozenset(
    {"clarion-sim-secret", "clarion-unsubscribe-dev", "clarion-unsubscribe"}
)
MIN_SECRET_CHARS = 16


def checked_secret(var: str, value: str) -> str:
    """`value` if it can be a secret; a `ConfigurationError` naming `var` if it cannot."""
    if value in _PUBLISHED_SECRETS:
        raise ConfigurationError(f"{var} is a published development default; set your own")
    if value.upper().startswith("CHANGE-ME"):  # deploy/secrets.env.example's placeholders
        raise ConfigurationError(f"{var} is still the example's placeholder; set your own")
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigurationError(f"{var} must have at least {MIN_SECRET_CHARS} characters")
    return value


def file_secret(path: Path) -> str:
    """The secret kept in `path` (owner-only), made at random the first time it is asked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
