"""Signing in and out. The sign-in form carries a CSRF token too (echoing a cookie the form's
page set), so no other site can sign a browser in to an account of its choosing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clarion import service
from clarion.domain.users import SESSION_FOR
from clarion.errors import SignInFailed
from clarion.web.common import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Ctx,
    Web,
    local_path,
    new_token,
    read_form,
    same_token,
)

SIGNIN_FORM_S = 3600  # how long a sign-in page's form may be left before it is sent


def routes(web: Web) -> list[Route]:
    def form(
        request: Request, *, next_path: str, email: str = "", error: str = "", status: int = 200
    ) -> Response:
        token = new_token()
        page = web.render(
            request, "signin.html", status_code=status, csrf_token=token, next=next_path,
            email=email, error=error, title="Sign in", nav="",
        )  # fmt: skip
        page.set_cookie(
            SIGNIN_COOKIE, token, max_age=SIGNIN_FORM_S, path="/signin", httponly=True,
            samesite="strict", secure=web.secure_cookies,
        )  # fmt: skip
        return page

    async def signin(request: Request) -> Response:
        next_path = local_path(request.query_params.get("next"))
        if request.method == "GET":
            if await web.signed_in(request) is not None:
                return RedirectResponse(next_path, status_code=303)
            return form(request, next_path=next_path)
        fields = await read_form(request)
        if fields is None:
            return web.error(request, 415, "A form was expected.")
        next_path = local_path(fields.get("next"))
        if not same_token(fields.get(CSRF_FIELD), request.cookies.get(SIGNIN_COOKIE, "")):
            return web.error(
                request, 403, "The sign-in form had expired: open the sign-in page again."
            )
        email = fields.get("email", "")
        try:
            signed = await service.users.sign_in(
                web.svc, email, fields.get("password", ""), now=web.now()
            )
        except SignInFailed as exc:
            return form(request, next_path=next_path, email=email, error=str(exc), status=401)
        done = RedirectResponse(next_path, status_code=303)
        done.set_cookie(
            SESSION_COOKIE, signed.token, max_age=int(SESSION_FOR.total_seconds()), path="/",
            httponly=True, samesite="lax", secure=web.secure_cookies,
        )  # fmt: skip
        done.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return done

    async def signout(ctx: Ctx) -> Response:
        await service.users.sign_out(web.svc, ctx.request.cookies.get(SESSION_COOKIE, ""))
        done = RedirectResponse("/signin", status_code=303)
        done.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
        return done

    return [
        Route("/signin", signin, methods=["GET", "POST"]),
        web.page("/signout", signout, methods=("POST",)),
    ]
