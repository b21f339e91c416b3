"""Subscribers: import from CSV, and the consent ledger for audits."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from clarion import bootstrap, service
from clarion.cli._app import app, err, fail, run_async, subscribers_app
from clarion.compliance.ledger import ledger_csv, ledger_json
from clarion.config import Settings
from clarion.domain.imports import ImportRow
from clarion.domain.rows import ConsentRow
from clarion.errors import ClarionError, InvalidInput


def _file_chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """The file's bytes; a file that cannot be read is a `ClarionError`, not a traceback."""
    try:
        with path.open("rb") as f:
            while chunk := f.read(size):
                yield chunk
    except OSError as exc:
        raise ClarionError(f"cannot read {path}: {exc.strerror or exc}") from None


@subscribers_app.command("import")
def subscribers_import(
    brand_id: int,
    csv_path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    source: Annotated[str, typer.Option(help="Where consent was collected.")] = "csv-import",
    encoding: Annotated[
        str,
        typer.Option(
            help="The file's encoding (cp1252, latin-1, utf-16…). auto: what a BOM says"
            " (UTF-8, UTF-16), else UTF-8, or cp1252 when the file does not start as UTF-8."
        ),
    ] = "auto",
) -> None:
    """Import subscribers from a CSV (phone, email, first_name, last_name, timezone,
    sms_consent, and any other column as an attribute). Bad rows are reported by number
    (the header is row 1) and skipped; a phone or email seen in an earlier row is one."""

    def fell_back(name: str) -> None:
        err.print(
            f"[yellow]note:[/yellow] the file does not start as UTF-8; reading it as {name}"
            " (state its encoding with --encoding)",
            soft_wrap=True,
        )

    def rejected(row: InvalidInput) -> None:
        print(f"skipped {row}", file=sys.stderr)  # plain: no markup in it

    async def go() -> ImportRow:
        # reads the header: a file that cannot be imported fails before any server starts
        rows = service.imports.open_csv(
            _file_chunks(csv_path), encoding=encoding, on_fallback=fell_back
        )
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            import_id = await service.imports.start(infra, brand_id, source=source)
            # the file is read as the rows go in, a batch ahead of the COPY
            return await service.imports.run(
                infra, import_id, brand_id, rows, source=source, on_rejected=rejected
            )

    done = run_async(go())
    if done.status == "failed":
        raise fail(f"import {done.id} failed after {done.rows_read} rows: {done.error}", 70)
    print(
        f"imported {done.created} new subscribers; {done.rejected} rows rejected;"
        f" {done.existing} were subscribers already (import {done.id})"
    )


@app.command("consent-export")
def consent_export(
    brand_id: int,
    subscriber: Annotated[int | None, typer.Option(help="Only this subscriber.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
) -> None:
    """Export the consent ledger (every opt-in and opt-out, with source and time) for audits."""
    if fmt not in ("csv", "json"):
        raise fail("--format must be csv or json")

    async def go() -> list[ConsentRow]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.subscribers.consent_ledger(infra, brand_id, subscriber)

    rows = run_async(go())
    sys.stdout.write(ledger_csv(rows) if fmt == "csv" else ledger_json(rows) + "\n")
