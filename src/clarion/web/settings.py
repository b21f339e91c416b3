"""Settings (`/settings`): the brand's API keys (a secret shown once), outbound webhook
endpoints and their recent deliveries (`/settings/webhooks/{id}`), link domain, attribution
windows, smart sending, limits at each carrier; and, read only, what the install or the law
decides (provider accounts and routes, the install's lane limits, quiet hours, state caps).

Each form calls the use case the API or the CLI calls; what it refuses is shown next to its
field (422, or 409 for a refusal such as another brand's link domain), never as a 500."""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clarion import service
from clarion.domain.keys import SCOPES
from clarion.errors import InvalidInput, Refused
from clarion.service import sending
from clarion.web.common import Ctx, Web
from clarion.web.conversations import path_id, said

NAV = "/settings"
LIST_LIMIT = 100
# Provider settings whose value is hidden unless it is an `env:` reference: the store keeps
# only references, and a page never trusts that alone.
SECRET_NAMES = frozenset({"password", "secret", "token", "auth_token", "api_key", "key"})

# What a redirect after a change says (`?done=…`): fixed texts, never the query's own.
NOTICES = {
    "revoked": "The key is revoked: its next request gets 401.",
    "enabled": "The endpoint is enabled: its waiting events go now.",
    "disabled": "The endpoint is disabled: its events wait until it is enabled again.",
    "deleted": "The endpoint is deleted.",
    "link": "The link domain is saved.",
    "attribution": "The attribution windows are saved.",
    "smart": "Smart sending is saved.",
    "carrier": "The carrier limits are saved; sending uses them within a minute.",
}


def _number(raw: str | None, field: str, *, optional: bool = False) -> float | None:
    text = (raw or "").strip()
    if not text and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput("a number", field=field) from None
    if not math.isfinite(value):
        raise InvalidInput("a number", field=field)
    return value


def _whole(raw: str | None, field: str) -> int | None:
    value = _number(raw, field, optional=True)
    if value is not None and value != int(value):
        raise InvalidInput("a whole number", field=field)
    return None if value is None else int(value)


def _field_of(exc: InvalidInput | Refused, default: str) -> str:
    """The form field an error is shown next to: the one it names ("event_types[2]": the
    event types' group, `default`), else `default`."""
    named = exc.field or default
    return default if named.startswith(default) else named


def routes(web: Web) -> list[Route]:
    async def page(
        ctx: Ctx,
        *,
        status_code: int = 200,
        errors: dict[str, str] | None = None,
        form: str = "",
        **shown: Any,
    ) -> Response:
        brand = await service.brands.get(web.svc, ctx.brand_id)
        return web.render(
            ctx.request, "settings.html", session=ctx.session, nav=NAV, title="Settings",
            status_code=status_code, brand=brand, scopes=SCOPES,
            event_types=service.hooks.EVENT_TYPES,
            keys=await service.keys.listed(web.svc, ctx.brand_id, limit=LIST_LIMIT),
            hooks=await service.hooks.listed(web.svc, ctx.brand_id, after_id=0, limit=LIST_LIMIT),
            sending=await sending.overview(web.svc, ctx.brand_id),
            errors={f"{form}:{k}": v for k, v in (errors or {}).items()},
            values=ctx.form if errors else {}, form=form,
            notice=NOTICES.get(ctx.request.query_params.get("done", "")),
            secret_names=SECRET_NAMES, new_key=shown.get("new_key"), new_hook=shown.get("new_hook"),
            limits={"smart": sending.MAX_SMART_SENDING_H, "minute": sending.MAX_PER_MINUTE,
                    "day": sending.MAX_PER_DAY, "window": service.brands.MAX_WINDOW_H},
        )  # fmt: skip

    async def refused(ctx: Ctx, form: str, exc: InvalidInput | Refused, field: str) -> Response:
        return await page(
            ctx, status_code=409 if isinstance(exc, Refused) else 422, form=form,
            errors={_field_of(exc, field): said(exc.reason)},
        )  # fmt: skip

    def done(what: str, anchor: str) -> Response:
        return RedirectResponse(f"{NAV}?done={what}#{anchor}", status_code=303)

    async def show(ctx: Ctx) -> Response:
        return await page(ctx)

    async def create_key(ctx: Ctx) -> Response:
        f = ctx.form
        try:
            rate = _number(f.get("rate_per_s"), "rate_per_s", optional=True)
            key, secret = await service.keys.create(
                web.svc, ctx.brand_id, f.get("name", ""),
                [s for s in SCOPES if f.get(f"scope_{s}")], rate_per_s=rate,
            )  # fmt: skip
        except (InvalidInput, Refused) as exc:
            return await refused(ctx, "key", exc, "name")
        return await page(ctx, status_code=201, new_key=(key, secret))

    async def revoke_key(ctx: Ctx) -> Response:
        await service.keys.revoke(web.svc, ctx.brand_id, path_id(ctx, "key_id"))
        return done("revoked", "keys")

    async def create_hook(ctx: Ctx) -> Response:
        f = ctx.form
        types = [t for t in service.hooks.EVENT_TYPES if f.get(f"event_{t}")]
        try:
            made, secret = await service.hooks.create(
                web.svc, ctx.brand_id, f.get("url", ""), types
            )
        except (InvalidInput, Refused) as exc:
            field = "event_types" if (exc.field or "").startswith("event_types") else "url"
            return await refused(ctx, "hook", exc, field)
        return await page(ctx, status_code=201, new_hook=(made, secret))

    async def hook(ctx: Ctx) -> Response:
        endpoint_id = path_id(ctx, "endpoint_id")
        found = await service.hooks.get(web.svc, ctx.brand_id, endpoint_id)
        return web.render(
            ctx.request, "settings_webhook.html", session=ctx.session, nav=NAV,
            title=f"Webhook endpoint {found.id}", hook=found,
            deliveries=await service.hooks.recent(web.svc, ctx.brand_id, endpoint_id),
        )  # fmt: skip

    async def hook_action(ctx: Ctx) -> Response:
        endpoint_id, action = path_id(ctx, "endpoint_id"), ctx.request.path_params["action"]
        if action == "enable":
            await service.hooks.enable(web.svc, ctx.brand_id, endpoint_id)
        elif action == "disable":
            by = ctx.session.user.email
            await service.hooks.disable(web.svc, ctx.brand_id, endpoint_id, by=by)
        elif action == "delete":
            await service.hooks.delete(web.svc, ctx.brand_id, endpoint_id)
            return done("deleted", "webhooks")
        else:
            raise InvalidInput("enable, disable or delete", field="action")
        return done(f"{action}d", f"hook-{endpoint_id}")

    async def link_domain(ctx: Ctx) -> Response:
        raw = ctx.form.get("link_domain", "").strip()
        try:
            await service.links.set_link_domain(web.svc, ctx.brand_id, raw or None)
        except (InvalidInput, Refused) as exc:
            return await refused(ctx, "link", exc, "link_domain")
        return done("link", "links")

    async def attribution(ctx: Ctx) -> Response:
        f = ctx.form
        try:
            click = _number(f.get("click_window_h"), "click_window_h")
            view = _number(f.get("view_window_h"), "view_window_h")
            assert click is not None
            assert view is not None
            await service.brands.set_attribution_windows(web.svc, ctx.brand_id, click, view)
        except (InvalidInput, Refused) as exc:
            return await refused(ctx, "attr", exc, "click_window_h")
        return done("attribution", "attribution")

    async def smart_sending(ctx: Ctx) -> Response:
        try:
            hours = _number(ctx.form.get("smart_sending_h"), "smart_sending_h")
            assert hours is not None
            await sending.set_smart_sending(web.svc, ctx.brand_id, hours)
        except (InvalidInput, Refused) as exc:
            return await refused(ctx, "smart", exc, "smart_sending_h")
        return done("smart", "sending")

    async def carrier(ctx: Ctx) -> Response:
        f = ctx.form
        name = f.get("carrier", "")
        try:
            await sending.set_carrier_limit(
                web.svc, ctx.brand_id, name,
                per_minute=_number(f.get("per_minute"), "per_minute", optional=True),
                per_day=_whole(f.get("per_day"), "per_day"),
            )  # fmt: skip
        except (InvalidInput, Refused) as exc:
            return await refused(ctx, f"carrier-{name}", exc, "per_minute")
        return done("carrier", "carriers")

    return [
        web.page(NAV, show),
        web.page(NAV + "/keys", create_key, methods=("POST",)),
        web.page(NAV + "/keys/{key_id}/revoke", revoke_key, methods=("POST",)),
        web.page(NAV + "/webhooks", create_hook, methods=("POST",)),
        web.page(NAV + "/webhooks/{endpoint_id}", hook),
        web.page(NAV + "/webhooks/{endpoint_id}/{action}", hook_action, methods=("POST",)),
        web.page(NAV + "/link-domain", link_domain, methods=("POST",)),
        web.page(NAV + "/attribution", attribution, methods=("POST",)),
        web.page(NAV + "/smart-sending", smart_sending, methods=("POST",)),
        web.page(NAV + "/carriers", carrier, methods=("POST",)),
    ]
