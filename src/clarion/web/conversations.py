"""Conversations (`/conversations`): the brand's inbox of replies that are no keyword, one
thread per subscriber, unread first; a thread (`/conversations/{subscriber_id}`) with the
subscriber's messages in and out in time order, and a form to answer it — a transactional
SMS through the same gate as `POST /v1/messages` (an opted-out subscriber is refused)."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clarion.errors import InvalidInput, Refused
from clarion.service import conversations
from clarion.web.common import Ctx, Web, new_token

NAV = "/conversations"
MAX_ID_DIGITS = 18


def path_id(ctx: Ctx, name: str) -> int:
    """A positive id from the path; anything else is a 404 (no such page)."""
    raw = ctx.request.path_params[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_ID_DIGITS or int(raw) == 0:
        raise InvalidInput("an id", field=name)
    return int(raw)


def display_name(first: str | None, last: str | None, phone: str | None) -> str:
    name = " ".join(p for p in (first, last) if p)
    return name or phone or "A subscriber"


def routes(web: Web) -> list[Route]:
    async def inbox(ctx: Ctx) -> Response:
        threads = await conversations.inbox(web.svc, ctx.brand_id)
        return web.render(
            ctx.request, "conversations.html", session=ctx.session, nav=NAV,
            title="Conversations", threads=threads, name_of=display_name,
            unread=sum(t.unread for t in threads),
        )  # fmt: skip

    async def thread_page(
        ctx: Ctx,
        subscriber_id: int,
        *,
        error: str | None = None,
        draft: str = "",
        status_code: int = 200,
    ) -> Response:
        # `brand_id`: another brand's subscriber is NotFound, the 404 page
        thread = await conversations.read(
            web.svc, ctx.brand_id, subscriber_id, mark_read=ctx.request.method == "GET"
        )
        s = thread.subscriber
        return web.render(
            ctx.request, "conversation.html", session=ctx.session, nav=NAV,
            status_code=status_code, title=display_name(s.first_name, s.last_name, s.phone),
            thread=thread, error=error, draft=draft, answer_key=new_token(),
            sent=ctx.request.query_params.get("sent") == "1",
        )  # fmt: skip

    async def thread(ctx: Ctx) -> Response:
        return await thread_page(ctx, path_id(ctx, "subscriber_id"))

    async def answer(ctx: Ctx) -> Response:
        subscriber_id = path_id(ctx, "subscriber_id")
        body = ctx.form.get("body", "")
        try:
            await conversations.answer(
                web.svc, ctx.brand_id, subscriber_id, body, user_id=ctx.session.user.id,
                idempotency_key=ctx.form.get("answer_key") or new_token(), now=web.now(),
            )  # fmt: skip
        except InvalidInput as exc:
            return await thread_page(
                ctx, subscriber_id, error=said(exc.reason), draft=body, status_code=422
            )
        except Refused as exc:
            return await thread_page(
                ctx, subscriber_id, error=f"Not sent: {exc.reason}.", draft=body, status_code=409
            )
        return RedirectResponse(f"/conversations/{subscriber_id}?sent=1", status_code=303)

    return [
        web.page(NAV, inbox),
        web.page(NAV + "/{subscriber_id}", thread),
        web.page(NAV + "/{subscriber_id}", answer, methods=("POST",)),
    ]


def said(reason: str) -> str:
    """A use case's reason as a sentence next to its field ("empty" → "Empty."); a reason
    that starts with a value (a host, a number) keeps its case."""
    text = reason.strip().rstrip(".")
    first = text.split(" ", 1)[0]
    if first.isalpha():
        text = text[:1].upper() + text[1:]
    return text + "."
