"""Audience: the brand's saved segments with their live counts (`/segments`), and the
segment builder (`/segments/new`, `/segments/{id}`) whose count follows the conditions as
they change (`/segments/count`, htmx). Saved, changed, counted and deleted through
`service.segments`, as the API does; the definition is the JSON the API takes."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clarion import service
from clarion.domain.segments import SegmentRow
from clarion.errors import InvalidInput, Refused
from clarion.web.common import Ctx, Web
from clarion.web.composer import path_id
from clarion.web.segments_form import FIELDS, KINDS, MAX_ROWS, OP_LABELS, OPS, Row, SegmentForm
from clarion.web.segments_form import form_field as segment_field

COUNT_PATH = "/segments/count"
PAGE_SIZE = 25


def routes(web: Web) -> list[Route]:
    async def counted(ctx: Ctx, f: SegmentForm) -> dict[str, Any]:
        """The live count's context: the number the definition takes now, or why not."""
        try:
            definition = f.definition()
            if definition is None:
                return {"count": None, "count_error": None, "definition": None, "error_at": None}
            got = await service.segments.count_definition(web.svc, ctx.brand_id, definition)
        except InvalidInput as exc:
            where = segment_field(exc.field, f)
            return {"count": None, "count_error": exc.reason, "error_at": where,
                    "definition": None}  # fmt: skip
        return {"count": got.count, "took_ms": got.took_ms, "count_error": None,
                "definition": json.dumps(definition, indent=2), "error_at": None}  # fmt: skip

    async def builder(
        ctx: Ctx,
        f: SegmentForm,
        segment: SegmentRow | None,
        *,
        errors: dict[str, str] | None = None,
        status: int = 200,
        confirm_delete: bool = False,
    ) -> Response:
        return web.render(
            ctx.request, "segments_builder.html", status_code=status, session=ctx.session,
            nav="/segments", title=segment.name if segment else "New segment", f=f,
            segment=segment, errors=errors or {}, kinds=KINDS, ops=OPS, op_labels=OP_LABELS,
            fields=FIELDS, max_rows=MAX_ROWS, count_path=COUNT_PATH,
            confirm_delete=confirm_delete, saved=ctx.request.query_params.get("saved") == "1",
            action=f"/segments/{segment.id}" if segment else "/segments/new",
            **await counted(ctx, f),
        )  # fmt: skip

    async def posted(ctx: Ctx, segment: SegmentRow | None) -> Response:
        f = SegmentForm.posted(ctx.form)
        op = ctx.form.get("op", "save")
        if op == "add" and len(f.rows) < MAX_ROWS:
            return await builder(ctx, SegmentForm(f.name, f.match, [*f.rows, Row()]), segment)
        if op.startswith("remove:") and op[7:].isdigit() and len(f.rows) > 1:
            kept = [r for i, r in enumerate(f.rows) if i != int(op[7:])]
            return await builder(ctx, SegmentForm(f.name, f.match, kept), segment)
        if op == "json":
            return await builder(ctx, f.as_json(), segment)
        if op == "rows":
            return await builder(ctx, f.as_rows(), segment)
        if segment is not None and op == "delete":
            return await builder(ctx, f, segment, confirm_delete=True)
        if segment is not None and op == "delete-confirmed":
            try:
                await service.segments.delete(web.svc, ctx.brand_id, segment.id)
            except Refused as exc:
                return await builder(ctx, f, segment, errors={"form": exc.reason}, status=409)
            return RedirectResponse("/segments?deleted=1", status_code=303)
        try:
            definition = f.definition()
            if definition is None:
                raise InvalidInput("add a condition", field="c0_name")
            if segment is None:
                made = await service.segments.create(web.svc, ctx.brand_id, f.name, definition)
            else:
                made = await service.segments.update(
                    web.svc, ctx.brand_id, segment.id, f.name, definition
                )
        except InvalidInput as exc:
            errors = {segment_field(exc.field, f): exc.reason}
            return await builder(ctx, f, segment, errors=errors, status=400)
        return RedirectResponse(f"/segments/{made.id}?saved=1", status_code=303)

    async def listed(ctx: Ctx) -> Response:
        raw = ctx.request.query_params.get("after", "")
        after = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0
        found = await service.segments.listed(web.svc, ctx.brand_id, after_id=after,
                                              limit=PAGE_SIZE + 1)  # fmt: skip
        rows = []
        for s in found[:PAGE_SIZE]:
            got = await service.segments.count_saved(web.svc, ctx.brand_id, s.id)
            rows.append((s, got.count))
        return web.render(
            ctx.request, "segments.html", session=ctx.session, nav="/segments",
            title="Audience", rows=rows, after=after,
            more=found[PAGE_SIZE - 1].id if len(found) > PAGE_SIZE else None,
            deleted=ctx.request.query_params.get("deleted") == "1",
        )  # fmt: skip

    async def new(ctx: Ctx) -> Response:
        if ctx.request.method == "POST":
            return await posted(ctx, None)
        return await builder(ctx, SegmentForm(), None)

    async def one(ctx: Ctx) -> Response:
        s = await service.segments.get(web.svc, ctx.brand_id, path_id(ctx, "segment_id"))
        if ctx.request.method == "POST":
            return await posted(ctx, s)
        return await builder(ctx, SegmentForm.of(s.name, s.definition), s)

    async def count(ctx: Ctx) -> Response:
        f = SegmentForm.posted(ctx.form)
        return web.render(
            ctx.request, "segments_count.html", session=ctx.session, **await counted(ctx, f)
        )

    return [
        web.page("/segments", listed),
        web.page("/segments/new", new, methods=("GET", "POST")),
        web.page(COUNT_PATH, count, methods=("POST",)),
        web.page("/segments/{segment_id}", one, methods=("GET", "POST")),
    ]
