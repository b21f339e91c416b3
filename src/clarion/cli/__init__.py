"""The `clarion` command. Thin: parse, call a use case (`clarion.service`), map errors to a
message and an exit code. One module per group of commands."""

from __future__ import annotations

import sys

from clarion.cli import (
    brands,
    campaigns,
    experiments,
    intelligence,
    reports,
    servers,
    subscribers,
    users,
)
from clarion.cli._app import app

__all__ = [
    "app", "brands", "campaigns", "experiments", "intelligence", "main", "reports", "servers",
    "subscribers", "users",
]  # fmt: skip


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # pragma: no cover - `clarion … | head`
        sys.exit(0)
