"""`clarion intelligence`: a brand's learned models — train a new version now, list them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from clarion import bootstrap, service
from clarion.cli._app import app, run_async
from clarion.config import Settings

intelligence_app = typer.Typer(
    help="Learned models: send times, recommendations.", no_args_is_help=True
)
app.add_typer(intelligence_app, name="intelligence")
out = Console()


@intelligence_app.command("train")
def train(
    brand_id: int,
    kind: Annotated[str, typer.Option(help="The model: sto (send times) or recs.")] = "sto",
) -> None:
    """Fit a new version of one of a brand's models now (the `intelligence` worker role does
    it by itself when there is something new to learn)."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            model = await service.intelligence.train(
                infra.pool, brand_id, kind, now=datetime.now(UTC)
            )
            if model is None:
                print(f"brand {brand_id}: nothing to learn a {kind} model from yet")
                return
            print(f"brand {brand_id}: {kind} model v{model.version} (id {model.id})")
            for key, value in model.summary.items():
                if not isinstance(value, list | dict):
                    print(f"  {key}: {value}")

    run_async(go())


@intelligence_app.command("models")
def listed(brand_id: int) -> None:
    """A brand's model versions, newest first."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            rows = await service.intelligence.listed(infra.pool, brand_id)
        table = Table("id", "kind", "version", "trained", "learnt until", "output")
        for m in rows:
            table.add_row(
                str(m.id), m.kind, str(m.version), m.trained_at.isoformat(timespec="seconds"),
                m.data_until.isoformat(timespec="seconds"), "pruned" if m.pruned_at else "kept",
            )  # fmt: skip
        out.print(table)

    run_async(go())
