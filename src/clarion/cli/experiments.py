"""`clarion experiment sto|recs|ab`: measure what the intelligence features earn, against
the simulator's world (one JSON object as the last line with --json)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from clarion.cli._app import app, run_async

experiment_app = typer.Typer(
    help="Measure send-time optimisation, recommendations and adaptive A/B against the "
    "simulator's world.",
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")
out = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object (last line).")]
Seed = Annotated[int, typer.Option(help="The world's seed (the same seed, the same world).")]


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, separators=(",", ":")))
        return
    for key, value in result.items():
        out.print(f"[bold]{key}[/bold]: {value}")


@experiment_app.command("sto")
def sto_command(
    subscribers: Annotated[int, typer.Option(help="The list's size.")] = 1000,
    history: Annotated[int, typer.Option(help="Past campaigns the model learns from.")] = 60,
    seed: Seed = 2026,
    as_json: JsonFlag = False,
) -> None:
    """Send-time optimisation against a fixed time: a randomised split of one campaign,
    after a history of campaigns the model learns from."""
    from clarion.harness.experiments import sto

    if not 2 <= subscribers <= 1_000_000 or not 1 <= history <= 200:
        raise typer.BadParameter("--subscribers 2..1,000,000 and --history 1..200")
    _print(run_async(sto.run(subscribers, seed=seed, history_campaigns=history)), as_json)
