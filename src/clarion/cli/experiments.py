"""`clarion experiment sto|recs|ab`: measure what the intelligence features earn, against
the simulator's world (one JSON object as the last line with --json)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from clarion.cli._app import app, fail, run_async

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


Recipients = Annotated[int, typer.Option(help="People on the list each campaign goes to.")]
Campaigns = Annotated[int, typer.Option(help="Simulated campaigns (each run both ways).")]


@experiment_app.command("ab")
def ab(
    recipients: Recipients = 20_000,
    campaigns: Campaigns = 600,
    seed: Seed = 2026,
    json_out: JsonFlag = False,
) -> None:
    """Adaptive A/B against test-then-winner on the same simulated campaigns: recipients sent
    a worse variant (regret), clicks lost, winner accuracy, with a bootstrap interval."""
    # imported here: numpy loads only for the experiment, not for every `clarion` command
    from clarion.harness.experiments.ab import AbExperiment, run

    if recipients < 100 or campaigns < 2:
        raise typer.BadParameter("at least 100 recipients and 2 campaigns")
    _print(run(AbExperiment(recipients=recipients, campaigns=campaigns, seed=seed)), json_out)


@experiment_app.command("recs")
def recs(
    subscribers: Annotated[
        int, typer.Option(help="The world's people written as subscribers with their events.")
    ] = 10_000,
    seed: Seed = 2026,
    holdout: Annotated[
        str,
        typer.Option(
            help="session: the last order and the session that led to it are held out;"
            " order: the last order alone (its view and cart stay in the training data)."
        ),
    ] = "session",
    json_out: JsonFlag = False,
) -> None:
    """Hit-rate@5 of each person's held-out last order: the recommendations model against
    popularity, with a bootstrap interval of the lift, and the training's timings."""
    from clarion.harness.experiments.recs import RecsExperiment, run

    if subscribers < 1:
        raise fail("--subscribers must be at least 1")
    if holdout not in ("session", "order"):
        raise fail("--holdout is session or order")
    options = RecsExperiment(subscribers=subscribers, seed=seed, holdout=holdout)
    _print(run_async(run(options)), json_out)
