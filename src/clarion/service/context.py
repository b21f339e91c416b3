"""What every use case reaches: the database, the bus, the settings, and a provider to look
carriers up with. The composition root's `Infra` is one; tests may pass their own."""

from __future__ import annotations

from typing import Protocol

from clarion.bus.jetstream import Bus
from clarion.config import Settings
from clarion.domain.ports import Provider
from clarion.store.db import Pool


class Services(Protocol):
    pool: Pool
    bus: Bus
    settings: Settings

    def lookup_provider(self) -> Provider:
        """A provider to look carriers up with (for plans); the caller closes it."""
        ...
