"""Web UI users: `clarion user create BRAND_ID EMAIL`, `clarion user list BRAND_ID`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from clarion import bootstrap, service
from clarion.cli._app import fail, run_async, user_app
from clarion.config import Settings
from clarion.domain.users import password_problem


def _password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or asked twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to ask the password at: pass it with --password-stdin")
    while True:
        password: str = typer.prompt("Password (12 characters or more)", hide_input=True)
        if problem := password_problem(password):
            typer.echo(f"That password is refused: {problem}.", err=True)
            continue
        if typer.prompt("The same again", hide_input=True) == password:
            return password
        typer.echo("The two differ; once more.", err=True)


@user_app.command("create")
def user_create(
    brand_id: int,
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user of the brand who signs in to the web UI; prints their id."""
    password = _password(password_stdin)
    if problem := password_problem(password):
        raise fail(f"password: {problem}")

    async def go() -> int:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return (await service.users.create(infra, brand_id, email, password)).id

    print(run_async(go()))


@user_app.command("list")
def user_list(brand_id: int) -> None:
    """The brand's users: id, email, last sign-in."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            for u in await service.users.listed(infra, brand_id):
                last = (
                    u.last_sign_in_at.strftime("%Y-%m-%d %H:%M") if u.last_sign_in_at else "never"
                )
                print(f"{u.id:<6} {u.email:<40} {last}")

    run_async(go())
