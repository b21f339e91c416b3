"""Campaigns: author (create, list, edit and delete drafts), check, plan, launch, pause,
resume, cancel, follow."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from clarion import bootstrap, service
from clarion.cli._app import campaign_app, err, fail, run_async
from clarion.cli.tables import plan_tables, plan_vs_actual_table
from clarion.config import Settings
from clarion.domain.rows import CampaignSummary
from clarion.errors import InvalidInput


@campaign_app.command("create")
def campaign_create(
    brand_id: int,
    name: str,
    body: str,
    channel: Annotated[str, typer.Option(help="sms, email or both.")] = "sms",
    subject: Annotated[str | None, typer.Option(help="Email subject (a template).")] = None,
    email_body: Annotated[
        str | None, typer.Option(help="Email text (a template; default: BODY).")
    ] = None,
    segment: Annotated[
        int | None, typer.Option(help="Send to this segment (default: the whole list).")
    ] = None,
    exclude: Annotated[
        list[int] | None, typer.Option(help="Leave out this segment's subscribers; repeatable.")
    ] = None,
    definition: Annotated[
        str | None,
        typer.Option(
            help="Send to the subscribers a segment definition takes (JSON, as for"
            ' /v1/segments: \'{"attribute": "vip", "op": "eq", "value": true}\').'
        ),
    ] = None,
) -> None:
    """Create a draft campaign (texts are Jinja2 templates); prints its id. By SMS, email or
    both: each subscriber gets it on each channel they consented to. Its audience is a
    segment or a definition (less exclusion segments), resolved at the first launch, or the
    whole list."""

    async def go() -> None:
        # before any server starts
        service.campaigns.check_texts(body=body, subject=subject, email_body=email_body)
        parsed = _json_option(definition)
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            print(
                await service.campaigns.create(
                    infra,
                    brand_id=brand_id,
                    name=name,
                    body=body,
                    channel=channel,
                    subject=subject,
                    email_body=email_body,
                    segment_id=segment,
                    exclude_segment_ids=exclude or [],
                    definition=parsed,
                )
            )

    run_async(go())


def _json_option(text: str | None) -> Any:
    """`--definition`'s JSON (None: not given)."""
    if text is None:
        return None
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"not JSON: {exc}", field="--definition") from None


def _audience(c: CampaignSummary) -> str:
    if c.segment_id is None and c.audience_definition is None:
        return "whole list"
    to = f"segment {c.segment_id}" if c.segment_id is not None else "a definition"
    less = ", ".join(str(x) for x in c.exclude_segment_ids)
    return f"{to} less {less}" if less else to


@campaign_app.command("list")
def campaign_list(
    brand_id: Annotated[int | None, typer.Argument(help="Only this brand's.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only those in this status: draft, sending, paused, cancelled."),
    ] = None,
) -> None:
    """Campaigns, oldest first: id, brand, status, channel, created, launched, audience,
    name."""

    async def go() -> list[CampaignSummary]:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            found, after_id = [], 0
            while page := await service.campaigns.listed(
                infra, brand_id, status=status, after_id=after_id, limit=1000
            ):
                found += page
                after_id = page[-1].id
            return found

    for c in run_async(go()):
        launched = f"{c.launched_at:%Y-%m-%d %H:%M}" if c.launched_at else "never launched"
        print(
            f"{c.id:<6} brand {c.brand_id:<4} {c.status:<9} {c.channel:<5}"
            f" {c.created_at:%Y-%m-%d %H:%M}  {launched:<16} {_audience(c):<24} {c.name}"
        )


@campaign_app.command("edit")
def campaign_edit(
    campaign_id: int,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    body: Annotated[str | None, typer.Option(help="A new SMS text (a template).")] = None,
    channel: Annotated[str | None, typer.Option(help="sms, email or both.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="A new email subject; '' for none (the name).")
    ] = None,
    email_body: Annotated[
        str | None, typer.Option(help="A new email text; '' for none (the SMS text).")
    ] = None,
    segment: Annotated[int | None, typer.Option(help="Send to this segment instead.")] = None,
    exclude: Annotated[
        list[int] | None, typer.Option(help="Leave out this segment's subscribers; repeatable.")
    ] = None,
    definition: Annotated[
        str | None, typer.Option(help="Send to the subscribers this definition takes (JSON).")
    ] = None,
    whole_list: Annotated[bool, typer.Option(help="Send to the brand's whole list.")] = False,
) -> None:
    """Change a draft (a campaign never launched): only the options given change. Any of
    --segment, --definition, --exclude, --whole-list replaces the audience whole."""
    changes: dict[str, Any] = {
        k: v for k, v in {"name": name, "body": body, "channel": channel}.items() if v is not None
    }
    for field, text in (("subject", subject), ("email_body", email_body)):
        if text is not None:
            changes[field] = text or None
    new_audience = whole_list or segment is not None or bool(exclude) or definition is not None
    if not changes and not new_audience:
        raise fail("nothing to change: give --name, --body, … (see --help)")

    async def go() -> None:
        if new_audience:
            changes.update(
                segment_id=segment,
                definition=_json_option(definition),
                exclude_segment_ids=exclude or [],
            )
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await service.campaigns.update_draft(infra, campaign_id, changes)
            print(f"campaign {campaign_id} changed: {', '.join(sorted(changes))}")

    run_async(go())


@campaign_app.command("delete")
def campaign_delete(campaign_id: int) -> None:
    """Delete a draft (a campaign never launched); one that was launched is cancelled
    instead (`campaign cancel`)."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            await service.campaigns.delete_draft(infra, campaign_id)
            print(f"campaign {campaign_id} deleted")

    run_async(go())


@campaign_app.command("launch")
def campaign_launch(campaign_id: int, relaunch: bool = False) -> None:
    """Launch a campaign (the workers of `clarion run` send it)."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            cmd = await service.campaigns.launch(infra, campaign_id, relaunch=relaunch)
            print(f"launched campaign {campaign_id} (attempt {cmd.attempt})")

    run_async(go())


@campaign_app.command("schedule")
def campaign_schedule(
    campaign_id: int,
    at: Annotated[
        datetime | None, typer.Option(help="Launch at this time (UTC unless it says).")
    ] = None,
    local_time: Annotated[
        str | None, typer.Option(help="HH:MM on each subscriber's clock, in waves by zone.")
    ] = None,
    day: Annotated[
        datetime | None, typer.Option(help="The day of a --local-time send (default today).")
    ] = None,
    best_time_within: Annotated[
        int | None,
        typer.Option(help="Each subscriber at their best hour within this many hours (1-72)."),
    ] = None,
    cancel: Annotated[bool, typer.Option(help="Unschedule: back to a draft.")] = False,
) -> None:
    """Schedule a draft: the workers launch it on time, once; with --local-time, each
    subscriber gets it at that time on their clock; with --best-time-within, at their best
    hour as the brand's send-time model says (the compliance window still governs)."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            if cancel:
                await service.campaigns.unschedule(infra, campaign_id)
                print(f"campaign {campaign_id}: a draft again")
                return
            when = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
            done = await service.campaigns.schedule(
                infra, campaign_id, now=datetime.now(UTC), at=when, local_time=local_time,
                day=day.date() if day is not None else None, best_time_h=best_time_within,
            )  # fmt: skip
            print(f"campaign {campaign_id} launches at {done.scheduled_at.isoformat()}")
            if done.best_time_h is not None:
                model = (
                    "no send-time model yet: everyone at the launch"
                    if done.sto_model_version is None
                    else f"send-time model v{done.sto_model_version}"
                )
                print(f"  each subscriber at their best hour within {done.best_time_h} h ({model})")
            for w in done.waves:
                print(f"  {w.at.isoformat()}  {w.timezone}: {w.subscribers:,} subscribers")

    run_async(go())


def _campaign_command(verb: str, campaign_id: int) -> None:
    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            result = await getattr(service.campaigns, verb)(infra, campaign_id)
            extra = f" ({result} waiting messages cancelled)" if verb == "cancel" else ""
            print(f"campaign {campaign_id}: {verb} done{extra}")

    run_async(go())


@campaign_app.command("pause")
def campaign_pause(campaign_id: int) -> None:
    """Pause a sending campaign: no new provider calls from the next batch on."""
    _campaign_command("pause", campaign_id)


@campaign_app.command("resume")
def campaign_resume(campaign_id: int) -> None:
    """Resume a paused campaign where it stopped."""
    _campaign_command("resume", campaign_id)


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: int) -> None:
    """Cancel a campaign; every recipient not yet sent to is recorded as cancelled."""
    _campaign_command("cancel", campaign_id)


@campaign_app.command("validate")
def campaign_validate(campaign_id: int) -> None:
    """Check a campaign before launch: brand name, opt-out instructions, encoding, segments."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            check = await service.campaigns.check(infra, campaign_id)
            print(f"sample: {check.sample}")
            print(check.describe())
            for problem in check.errors:
                err.print(f"[red]problem:[/red] {problem}")
            if check.errors:
                raise typer.Exit(65)

    run_async(go())


@campaign_app.command("status")
def campaign_status(campaign_id: int) -> None:
    """Show a campaign's progress per stage, its counts by status, and its plan versus what
    happened (when a plan was computed)."""

    async def go() -> None:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            st = await service.campaigns.status(infra, campaign_id)
            p = st.progress
            print(
                f"audience {p.eligible} ({'done' if p.audience_done else 'resolving'}), "
                f"persisted {p.persisted}, handed over {p.handed_over}, final {p.final}"
            )
            for status, n in sorted(p.by_status.items()):
                print(f"  {status:<12} {n}")
            if st.plan_vs_actual is not None:
                Console().print(plan_vs_actual_table(st.plan_vs_actual))

    run_async(go())


@campaign_app.command("plan")
def campaign_plan(
    campaign_id: int,
    at: Annotated[
        datetime | None, typer.Option(help="Plan a launch at this UTC time (default: now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Before launch: recipients per lane and carrier, quiet hours and when they go, daily
    caps that will be hit, cost in segments, and the estimated finish time."""
    when = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at

    async def go() -> service.SendPlan:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.campaigns.plan(infra, campaign_id, at=when)

    plan = run_async(go())
    if as_json:
        sys.stdout.write(msgspec.json.encode(plan).decode() + "\n")
        return
    console = Console()
    for table in plan_tables(plan):
        console.print(table)


_REPORT_COLUMNS = (
    ("recipients", "recipients"), ("sent", "sent"), ("delivered", "delivered"),
    ("failed", "failed"), ("suppressed", "suppressed"), ("unique_clicks", "clicked"),
    ("click_rate", "click rate"), ("opt_outs", "opt-outs"), ("orders", "orders"),
    ("revenue", "revenue"), ("revenue_per_message", "rev/msg"), ("segments", "segments"),
)  # fmt: skip


@campaign_app.command("report")
def campaign_report(
    campaign_id: int,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """What a campaign did and earned: recipients, sent, delivered, failures by error,
    suppressions by reason, people's clicks, opt-outs, orders and attributed revenue, cost
    in segments — in all, per variant (with the A/B test's decision), per carrier, per
    minute (in --json)."""

    async def go() -> service.campaigns.Performance:
        async with bootstrap.infrastructure(Settings.from_env()) as infra:
            return await service.campaigns.report(infra, campaign_id)

    r = run_async(go())
    if json_out:
        sys.stdout.write(msgspec.json.encode(r).decode() + "\n")
        return
    console = Console()
    table = Table(title=f"campaign {r.campaign_id} {r.name!r} ({r.status})")
    table.add_column("")
    for _, title in _REPORT_COLUMNS:
        table.add_column(title, justify="right")
    rows = [("all", r.totals)] + [(f"{v.key} {v.name}", v.figures) for v in r.variants]
    rows += [(f"carrier {k}", v) for k, v in r.carriers.items()]
    for label, figures in rows:
        table.add_row(label, *(f"{figures[k]:g}" if isinstance(figures[k], float) else
                               str(figures[k]) for k, _ in _REPORT_COLUMNS))  # fmt: skip
    console.print(table)
    reasons = {
        "suppressed": r.suppressed_by_reason, "failed": r.failed_by_error,
        "deferred": r.deferred_by_reason,
    }  # fmt: skip
    for what, counts in reasons.items():
        if counts:
            console.print(f"{what}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    if r.ab is not None:
        decision = r.ab.get("decision") or {}
        console.print(
            f"A/B ({r.ab['mode']}, {r.ab['metric']}): "
            + (f"winner {r.ab['winner']}: {decision.get('reason', '')}" if r.ab.get("winner")
               else "not decided yet")
        )  # fmt: skip
        if r.ab.get("rounds"):
            console.print(_rounds_table(r.ab["rounds"]))
    for kind, label in (("sto", "send times"), ("recs", "recommendations")):
        model = r.models.get(kind)
        if model is not None:
            console.print(f"{label}: model v{model['version']} (id {model['id']})")


def _rounds_table(rounds: list[dict[str, Any]]) -> Table:
    """An adaptive test's allocation over time, a row per release."""
    table = Table(title="allocation over time (delivered / clicks before each round)")
    for title in ("round", "audience", "weights", "delivered", "clicks", "P(best)", "why"):
        table.add_column(title)
    for r in rounds:
        first, last = r["round"], r["last_round"]
        span = str(first) if first == last else f"{first}-{last}"
        table.add_row(
            span, f"{r['audience_share']:.0%}", _per_key(r["weights"], "{:.0%}"),
            _per_key(r["delivered"], "{}"), _per_key(r["clicks"], "{}"),
            _per_key(r["p_best"], "{:.3f}"), r["reason"],
        )  # fmt: skip
    return table


def _per_key(values: dict[str, Any], fmt: str) -> str:
    return " ".join(f"{k} {fmt.format(v)}" for k, v in sorted(values.items())) or "-"
