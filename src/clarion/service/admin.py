"""An operator's chores: the schema, and what to say when Postgres refuses a value."""

from __future__ import annotations

from clarion.errors import ClarionError
from clarion.store.db import Refused, constraint_error
from clarion.store.db import migrate as apply_migrations

# The errors of Postgres refusing a value a user gave (a rule of the schema, data it cannot
# hold), which `explain_refusal` turns into Clarion's own.
REFUSALS = Refused


def explain_refusal(exc: Exception) -> ClarionError:
    """What a user should read for a write Postgres refused (one of `REFUSALS`)."""
    assert isinstance(exc, REFUSALS)
    return constraint_error(exc)


async def migrate(database_url: str) -> list[str]:
    """Apply the schema migrations not yet applied; their names."""
    return await apply_migrations(database_url)
