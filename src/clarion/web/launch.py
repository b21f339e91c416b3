"""Plan, schedule, launch (`/campaigns/{id}/launch`): the launch's checks, the send plan
(`service.campaigns.plan`: per lane and carrier, quiet-hours deferrals and waves, caps, cost
in segments, finish time), and the controls — launch now, at a time, at a local time, at
each subscriber's best time; unschedule; pause, resume, cancel. Each control is a POST
(CSRF-checked) that asks for a confirmation first, then calls the use case the API calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clarion import service
from clarion.domain.rows import CampaignRow
from clarion.errors import CampaignInvalid, CampaignStateError, InvalidInput, NotFound
from clarion.service import BodyCheck
from clarion.web.common import Ctx, Web
from clarion.web.composer import path_id

WHENS = ("now", "at", "local", "best")
# What each control asks before it acts: (question, what it does, the button's words).
CONFIRM = {
    "launch": ("Launch this campaign?", "", "Yes, launch"),
    "unschedule": ("Unschedule it?", "It goes back to a draft and will not launch itself.",
                   "Yes, unschedule"),
    "pause": ("Pause sending?", "No new message is handed to a provider from the next batch on;"
              " resume to go on where it stopped.", "Yes, pause"),
    "resume": ("Resume sending?", "It goes on where it stopped.", "Yes, resume"),
    "cancel": ("Cancel this campaign for good?", "Every message not yet handed over is recorded"
               " as cancelled. This cannot be undone.", "Yes, cancel it"),
}  # fmt: skip
ALLOWED = {
    "draft": ("plan", "launch"),
    "scheduled": ("plan", "unschedule", "cancel"),
    "sending": ("pause", "cancel"),
    "paused": ("resume", "cancel"),
    "cancelled": (),
}


@dataclass(frozen=True)
class When:
    """When to launch, as the form gives it (strings: shown back as typed)."""

    how: str = "now"
    at: str = ""  # YYYY-MM-DDTHH:MM, UTC
    local_time: str = ""  # HH:MM on each subscriber's clock
    local_day: str = ""  # YYYY-MM-DD (empty: today)
    best_time_h: str = "24"

    @classmethod
    def posted(cls, form: dict[str, str]) -> When:
        how = form.get("when", "now")
        return cls(
            how=how if how in WHENS else "now", at=form.get("at", "")[:32],
            local_time=form.get("local_time", "")[:8], local_day=form.get("local_day", "")[:16],
            best_time_h=form.get("best_time_h", "24")[:4],
        )  # fmt: skip

    def at_time(self) -> datetime | None:
        if not self.at.strip():
            return None
        try:
            parsed = datetime.fromisoformat(self.at.strip())
        except ValueError:
            raise InvalidInput("a date and time, YYYY-MM-DD HH:MM (UTC)", field="at") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def day(self) -> date | None:
        if not self.local_day.strip():
            return None
        try:
            return date.fromisoformat(self.local_day.strip())
        except ValueError:
            raise InvalidInput("a date, YYYY-MM-DD", field="local_day") from None

    def hours(self) -> int:
        raw = self.best_time_h.strip()
        if not (raw.isascii() and raw.isdigit()):
            raise InvalidInput("a whole number of hours, 1 to 72", field="best_time_h")
        return int(raw)

    def validate(self) -> None:
        """`InvalidInput` (naming the field) for a time the chosen way cannot read."""
        if self.how in ("at", "best"):
            self.at_time()
        if self.how == "at" and not self.at.strip():
            raise InvalidInput("a date and time, YYYY-MM-DD HH:MM (UTC)", field="at")
        if self.how == "local":
            self.day()
            if not self.local_time.strip():
                raise InvalidInput("a time, HH:MM", field="local_time")
        if self.how == "best" and not 1 <= self.hours() <= 72:
            raise InvalidInput("a window of 1 to 72 hours", field="best_time_h")

    def describe(self) -> str:
        if self.how == "at":
            return f"at {self.at.replace('T', ' ')} UTC"
        if self.how == "local":
            day = self.local_day or "today"
            return f"at {self.local_time} on each subscriber's clock, {day}, in waves by zone"
        if self.how == "best":
            return f"at each subscriber's best time within {self.best_time_h} hours"
        return "now"


def routes(web: Web) -> list[Route]:
    async def checked(c: CampaignRow, ctx: Ctx) -> tuple[BodyCheck | None, list[str]]:
        try:
            check = await service.campaigns.check(web.svc, c.id, brand_id=ctx.brand_id)
        except InvalidInput as exc:
            return None, [exc.reason]
        return check, list(check.errors)

    async def page(
        ctx: Ctx,
        c: CampaignRow,
        *,
        when: When | None = None,
        confirm: str | None = None,
        error: str | None = None,
        problems: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        check, found = await checked(c, ctx)
        plan = await service.campaigns.stored_plan(web.svc, c.id, brand_id=ctx.brand_id)
        segment = None
        if c.segment_id is not None:
            try:
                segment = await service.segments.get(web.svc, ctx.brand_id, c.segment_id)
            except NotFound:
                segment = None
        when = when or When()
        return web.render(
            ctx.request, "launch.html", status_code=status, session=ctx.session,
            nav="/campaigns", title=f"Launch {c.name}", campaign=c, check=check,
            check_problems=found, plan=plan, segment=segment, when=when,
            allowed=ALLOWED.get(c.status, ()), confirm=confirm, confirm_text=CONFIRM,
            error=error, problems=problems or [], done=ctx.request.query_params.get("done"),
            now=web.now(),
        )  # fmt: skip

    async def act(ctx: Ctx, c: CampaignRow, op: str, when: When) -> str:
        """Do `op`; what to say it did."""
        svc, brand_id = web.svc, ctx.brand_id
        if op == "unschedule":
            await service.campaigns.unschedule(svc, c.id, brand_id=brand_id)
            return "unscheduled"
        if op == "pause":
            await service.campaigns.pause(svc, c.id, brand_id=brand_id)
            return "paused"
        if op == "resume":
            await service.campaigns.resume(svc, c.id, at=web.now(), brand_id=brand_id)
            return "resumed"
        if op == "cancel":
            await service.campaigns.cancel(svc, c.id, brand_id=brand_id)
            return "cancelled"
        if when.how == "now":
            await service.campaigns.launch(svc, c.id, at=web.now(), brand_id=brand_id)
            return "launched"
        await service.campaigns.schedule(
            svc, c.id, now=web.now(), brand_id=brand_id,
            at=when.at_time() if when.how in ("at", "best") else None,
            local_time=(when.local_time.strip() or "??:??") if when.how == "local" else None,
            day=when.day() if when.how == "local" else None,
            best_time_h=when.hours() if when.how == "best" else None,
        )  # fmt: skip
        return "scheduled"

    async def launch_page(ctx: Ctx) -> Response:
        campaign_id = path_id(ctx, "campaign_id")
        c = await service.campaigns.get(web.svc, campaign_id, brand_id=ctx.brand_id)
        if ctx.request.method == "GET":
            return await page(ctx, c)
        op = ctx.form.get("op", "")
        confirmed = op.endswith("-confirmed")
        op = op.removesuffix("-confirmed")
        when = When.posted(ctx.form)
        if op not in ALLOWED.get(c.status, ()):
            return await page(
                ctx, c, when=when, status=409,
                error=f"This campaign is {c.status}: it cannot be {op or 'changed'} now.",
            )  # fmt: skip
        try:
            if op == "plan":
                at = when.at_time() if when.how == "at" else None
                await service.campaigns.plan(
                    web.svc, c.id, at=at or web.now(), brand_id=ctx.brand_id
                )
                return RedirectResponse(f"/campaigns/{c.id}/launch?done=planned", 303)
            if not confirmed:
                if op == "launch":  # a bad time is said before the confirmation
                    when.validate()
                return await page(ctx, c, when=when, confirm=op)
            done = await act(ctx, c, op, when)
        except CampaignInvalid as exc:
            return await page(ctx, c, when=when, status=400, problems=exc.problems,
                              error="The launch was refused: fix these first.")  # fmt: skip
        except InvalidInput as exc:
            return await page(ctx, c, when=when, status=400, error=exc.reason)
        except CampaignStateError as exc:
            return await page(ctx, c, when=when, status=409, error=str(exc))
        return RedirectResponse(f"/campaigns/{c.id}/launch?done={done}", 303)

    return [web.page("/campaigns/{campaign_id}/launch", launch_page, methods=("GET", "POST"))]
