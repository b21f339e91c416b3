"""The composer: a draft campaign authored (`/campaigns/new`, `/campaigns/{id}/edit`) with
a live preview of each variant for a subscriber of the marketer's choosing — the counter of
characters, encoding and segments (naming what forces UCS-2, with the fix), the checks a
launch makes, links as they will be shortened, recommendations — through htmx as they type
(`/campaigns/compose/preview`). Saving calls `service.campaigns.create` or `update_draft`,
as the API does."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clarion import service
from clarion.compliance.encoding import SMART_SUBSTITUTIONS, SmsSegments, sms_segments
from clarion.domain.brands import brand_fields
from clarion.domain.rows import CampaignRow
from clarion.errors import CampaignStateError, InvalidInput, NotFound
from clarion.service.previews import CODE_CHARS, Preview, Rendered, find_urls, gsm_fixed
from clarion.web.common import Ctx, Web
from clarion.web.composer_form import ComposeForm, form_field

PREVIEW_PATH = "/campaigns/compose/preview"
MAX_SEGMENTS_LISTED = 100  # segments offered as an audience (and as exclusions)


def path_id(ctx: Ctx, name: str) -> int:
    """A record's id from the path: a bad one is the 404 page (there is nothing there)."""
    raw = str(ctx.request.path_params[name])
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise NotFound(name, raw)
    return int(raw)


@dataclass(frozen=True)
class Forcing:
    """A character that makes an SMS UCS-2, and its GSM-7 equivalent (None: it has none)."""

    char: str
    name: str
    fix: str | None


@dataclass(frozen=True)
class Counter:
    """What a variant's SMS costs as it will be sent (links shortened), and what the fix
    would make of it."""

    chars: int
    segments: SmsSegments
    forcing: list[Forcing]
    fixable: bool  # the template has look-alikes to replace
    fixed: SmsSegments | None  # the message once they are replaced
    links: list[str]  # its short links


def counter(body: str, rendered: Rendered, short_base: str) -> Counter:
    sms = rendered.sms
    forcing = [
        Forcing(ch, unicodedata.name(ch, f"U+{ord(ch):04X}").title(), SMART_SUBSTITUTIONS.get(ch))
        for ch in sms.segments.non_gsm
    ]
    fixable = gsm_fixed(body) != body
    shorts = [u for u in find_urls(sms.sample) if u.startswith(short_base)]
    return Counter(
        chars=len(sms.sample), segments=sms.segments, forcing=forcing, fixable=fixable,
        fixed=sms_segments(gsm_fixed(sms.sample)) if fixable else None, links=shorts,
    )  # fmt: skip


def routes(web: Web) -> list[Route]:
    async def options(ctx: Ctx) -> dict[str, Any]:
        b = await service.brands.get(web.svc, ctx.brand_id)
        segments = await service.segments.listed(web.svc, ctx.brand_id, limit=MAX_SEGMENTS_LISTED)
        macros = brand_fields(b.name, b.help_text, b.sender, b.macros)
        return {"segments": segments, "macros": sorted(macros), "brand": b}

    async def live(ctx: Ctx, f: ComposeForm) -> dict[str, Any]:
        """The preview's context: each variant rendered for the chosen subscriber."""
        try:
            shown: Preview = await service.previews.preview(
                web.svc, ctx.brand_id, f.texts(), who=f.who, track_links=f.track_links
            )
        except InvalidInput as exc:
            return {"preview": None, "who_error": exc.reason, "counters": []}
        b = await service.brands.get(web.svc, ctx.brand_id)
        base = service.previews.short_base(web.svc, b.link_domain)
        counters = [
            counter(v.body, r, base) for v, r in zip(f.texts(), shown.variants, strict=True)
        ]
        return {"preview": shown, "who_error": None, "counters": counters,
                "short_base": base, "code_chars": CODE_CHARS}  # fmt: skip

    async def page(
        ctx: Ctx,
        f: ComposeForm,
        *,
        campaign: CampaignRow | None,
        errors: dict[str, str] | None = None,
        status: int = 200,
        saved: bool = False,
    ) -> Response:
        return web.render(
            ctx.request, "composer.html", status_code=status, session=ctx.session,
            nav="/campaigns", title=f"Edit {campaign.name}" if campaign else "New campaign",
            f=f, campaign=campaign, errors=errors or {}, saved=saved,
            action=f"/campaigns/{campaign.id}/edit" if campaign else "/campaigns/new",
            preview_path=PREVIEW_PATH, **await options(ctx), **await live(ctx, f),
        )  # fmt: skip

    async def posted(ctx: Ctx, campaign: CampaignRow | None) -> Response:
        f = ComposeForm.posted(ctx.form)
        op = ctx.form.get("op", "save")
        if op == "add":
            return await page(ctx, f.with_variant(), campaign=campaign)
        if op.startswith("remove:") and op[7:].isdigit():
            return await page(ctx, f.without_variant(int(op[7:])), campaign=campaign)
        if op.startswith("fix:") and op[4:].isdigit() and int(op[4:]) < len(f.variants):
            i = int(op[4:])
            variants = list(f.variants)
            variants[i] = replace(variants[i], body=gsm_fixed(variants[i].body))
            return await page(ctx, replace(f, variants=variants), campaign=campaign)
        definition = campaign.audience_definition if campaign else None
        try:
            changes = f.changes(definition)
            if campaign is None:
                campaign_id = await service.campaigns.create(
                    web.svc, brand_id=ctx.brand_id, **changes
                )
            else:
                campaign_id = campaign.id
                await service.campaigns.update_draft(
                    web.svc, campaign.id, changes, brand_id=ctx.brand_id
                )
        except InvalidInput as exc:
            where = form_field(exc.field, len(f.variants))
            return await page(ctx, f, campaign=campaign, errors={where: exc.reason}, status=400)
        except CampaignStateError as exc:
            return await page(ctx, f, campaign=campaign, errors={"form": str(exc)}, status=409)
        return RedirectResponse(f"/campaigns/{campaign_id}/edit?saved=1", status_code=303)

    async def new(ctx: Ctx) -> Response:
        if ctx.request.method == "POST":
            return await posted(ctx, None)
        return await page(ctx, ComposeForm(), campaign=None)

    async def edit(ctx: Ctx) -> Response:
        c = await service.campaigns.get(web.svc, path_id(ctx, "campaign_id"), brand_id=ctx.brand_id)
        if c.status != "draft":
            return web.render(
                ctx.request, "composer_locked.html", status_code=409, session=ctx.session,
                nav="/campaigns", title=c.name, campaign=c,
            )  # fmt: skip
        if ctx.request.method == "POST":
            return await posted(ctx, c)
        saved = ctx.request.query_params.get("saved") == "1"
        return await page(ctx, ComposeForm.of(c), campaign=c, saved=saved)

    async def preview(ctx: Ctx) -> Response:
        f = ComposeForm.posted(ctx.form)
        return web.render(
            ctx.request, "composer_live.html", session=ctx.session, f=f, **await live(ctx, f)
        )

    return [
        web.page("/campaigns/new", new, methods=("GET", "POST")),
        web.page(PREVIEW_PATH, preview, methods=("POST",)),
        web.page("/campaigns/{campaign_id}/edit", edit, methods=("GET", "POST")),
    ]
