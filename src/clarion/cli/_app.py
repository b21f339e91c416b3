"""The `clarion` command's apps and its one way to run a coroutine: a Clarion error is a
message and an exit code, never a traceback."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from clarion.errors import ClarionError

app = typer.Typer(help="Clarion: self-hosted SMS and email marketing.", no_args_is_help=True)
brand_app = typer.Typer(help="Brands.", no_args_is_help=True)
subscribers_app = typer.Typer(help="Subscribers and their consent.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns.", no_args_is_help=True)
provider_app = typer.Typer(help="Provider accounts (secrets as env:VAR references).")
user_app = typer.Typer(
    help="Users of the web UI (each belongs to one brand).", no_args_is_help=True
)
app.add_typer(brand_app, name="brand")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(campaign_app, name="campaign")
app.add_typer(provider_app, name="provider")
app.add_typer(user_app, name="user")
err = Console(stderr=True)
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on uvloop; a `ClarionError` is printed (escaped: it may quote a user's
    input) and becomes its exit code."""
    try:
        import uvloop

        return uvloop.run(coro)
    except ClarionError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted; servers stopped")
        raise typer.Exit(130) from None


def fail(message: str, code: int = 64) -> typer.Exit:
    """Print a usage error; the exit to raise."""
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)
