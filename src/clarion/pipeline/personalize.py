"""Personalize stage core: render every recipient's message with a sandboxed Jinja2 template.

The template is compiled once per campaign. A field the template needs but a subscriber does
not have is an error for that recipient only (StrictUndefined); `default()` makes it optional.
Templates run in a bounded sandbox (sandbox.py): a render that would use too much time or
memory, or an SMS longer than the brand allows, is an error for that recipient only too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import msgspec
from jinja2 import nodes

from clarion.compliance.encoding import MAX_SEGMENTS, sms_segments
from clarion.domain.ids import campaign_message_id
from clarion.domain.records import (
    OutboundMessage,
    Recipient,
    RecipientBatch,
    RenderedBatch,
    RenderFailure,
)
from clarion.errors import TemplateError
from clarion.pipeline import sandbox
from clarion.pipeline.links import Rewriter, find_urls
from clarion.pipeline.recommendations import FIELDS as RECOMMENDATION_FIELDS
from clarion.pipeline.recommendations import NAME, NONE_REASON, Recommendation

_ENV = sandbox.BoundedSandbox(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
)
# An email's HTML part: the subscriber's fields are escaped (a name is text, not markup).
_HTML_ENV = sandbox.BoundedSandbox(
    undefined=jinja2.StrictUndefined, autoescape=True, keep_trailing_newline=False
)
# Campaign validation renders one sample leniently: a field a sample lacks renders empty (and
# so do its attributes: `brand.name` with no brand).
_LENIENT_ENV = sandbox.BoundedSandbox(undefined=jinja2.ChainableUndefined, autoescape=False)
VARIANT = "a"


# A piece of a template that only fills in fields: literal text, a field, an attribute of a
# field (`brand.name`), a field with a constant default (`first_name | default('there')`), or
# a field of a recommended product (`recommendations[0].name`).
_Piece = tuple[str, str, Any]


class _Fallback(Exception):
    """The fast path cannot say what Jinja would: Jinja renders this recipient."""


@dataclass(frozen=True)
class Template:
    """A compiled campaign template. Jinja renders it, sandboxed and strict; a template
    that only fills in fields is rendered by plain Python instead, with the same output
    (Jinja's per-render context costs about 10 µs, most of a message's render at the
    bench's rates). Anything the fast path is unsure of — a field missing, an attribute
    that is not a plain key — goes to Jinja, so errors and edge cases are Jinja's own."""

    jinja: jinja2.Template
    pieces: tuple[_Piece, ...] | None
    # Set on a stored template that no longer compiles: every render fails with it.
    error: TemplateError | None = None

    def render(self, context: Mapping[str, Any]) -> str:
        """The message for `context`; a TemplateError when it is over the sandbox's limits."""
        if self.error is not None:
            raise self.error
        if self.pieces is not None:
            try:
                text = _fill(self.pieces, context)
            except _Fallback:
                pass
            else:
                if len(text) > sandbox.MAX_TEXT_CHARS:
                    raise TemplateError(sandbox.TOO_LONG)
                return text
        return sandbox.render(self.jinja, context)


def _fill(pieces: tuple[_Piece, ...], context: Mapping[str, Any]) -> str:
    out = []
    for kind, name, extra in pieces:
        if kind == "text":
            out.append(name)
            continue
        if name not in context:
            if kind != "default" or name in _ENV.globals:
                raise _Fallback
            out.append(str(extra))
            continue
        value = context[name]
        if kind == "item":  # `recommendations[0].name`: a product's field
            index, attr = extra
            if type(value) is not list or index >= len(value):
                raise _Fallback
            item = value[index]
            if type(item) is not Recommendation or attr not in RECOMMENDATION_FIELDS:
                raise _Fallback
            value = getattr(item, attr)
        elif kind == "attr":
            # the sandbox's getattr: a dict's key, unless the dict has an attribute so named
            if type(value) is not dict or extra not in value or hasattr(dict, extra):
                raise _Fallback
            value = value[extra]
        out.append(str(value))
    return "".join(out)


def _pieces(tree: nodes.Template) -> tuple[_Piece, ...] | None:
    """The template as fill-in pieces, or None when it does anything more."""
    pieces: list[_Piece] = []
    for output in tree.body:
        if not isinstance(output, nodes.Output):
            return None
        for n in output.nodes:
            if isinstance(n, nodes.TemplateData):
                pieces.append(("text", n.data, None))
            elif isinstance(n, nodes.Name) and n.ctx == "load":
                pieces.append(("field", n.name, None))
            elif (
                isinstance(n, nodes.Getattr)
                and isinstance(n.node, nodes.Name)
                and n.node.ctx == "load"
            ):
                pieces.append(("attr", n.node.name, n.attr))
            elif (
                isinstance(n, nodes.Getattr)
                and isinstance(n.node, nodes.Getitem)
                and isinstance(n.node.node, nodes.Name)
                and n.node.node.ctx == "load"
                and isinstance(n.node.arg, nodes.Const)
                and type(n.node.arg.value) is int
                and n.node.arg.value >= 0
            ):
                pieces.append(("item", n.node.node.name, (n.node.arg.value, n.attr)))
            elif (
                isinstance(n, nodes.Filter)
                and n.name == "default"
                and isinstance(n.node, nodes.Name)
                and n.node.ctx == "load"
                and len(n.args) == 1
                and isinstance(n.args[0], nodes.Const)
                and not (n.kwargs or n.dyn_args or n.dyn_kwargs)
            ):
                pieces.append(("default", n.node.name, n.args[0].value))
            else:
                return None
    return tuple(pieces)


def compile_template(body: str) -> Template:
    """Compile a campaign body; any problem (syntax, a construct the sandbox refuses) is a
    TemplateError naming its line."""
    try:
        tree = sandbox.parse(_ENV, body)
        return Template(sandbox.build(_ENV, tree), _pieces(tree))
    except Exception as exc:
        raise sandbox.template_error(exc) from exc


def stored_html_template(html: str) -> Template:
    """`stored_template` for an email's HTML part: rendered by Jinja with autoescape (no
    fill-in fast path: it does not escape)."""
    try:
        return Template(sandbox.build(_HTML_ENV, sandbox.parse(_HTML_ENV, html)), None)
    except Exception as exc:
        return Template(_ENV.from_string(""), None, error=sandbox.template_error(exc))


def stored_template(body: str) -> Template:
    """`compile_template` for a template already stored and launched: one that does not
    compile (stored before a limit of the sandbox) fails at each recipient's render with
    the reason, so every recipient gets a recorded failure — a batch that raised would be
    redelivered for ever."""
    try:
        return compile_template(body)
    except TemplateError as exc:
        return Template(_ENV.from_string(""), None, error=exc)


def check_template(body: str) -> Template:
    """`compile_template`, then one render with no fields (all render empty): a template over
    the sandbox's limits whatever the subscriber (`{{ 10**5000 }}`) is refused now, not at
    each recipient. Other errors of that render may be the fields' doing and are left to
    the sample render of validation and to each recipient's."""
    template = compile_template(body)
    try:
        sandbox.render(sandbox.build(_LENIENT_ENV, sandbox.parse(_LENIENT_ENV, body)), {})
    except TemplateError as exc:
        raise sandbox.template_error(exc) from exc
    except Exception:
        pass
    return template


def _failure(r: Recipient, message_id: str, to: str, reason: str) -> RenderFailure:
    return RenderFailure(message_id=message_id, subscriber_id=r.subscriber_id, to=to, error=reason)


def _undefined_reason(exc: jinja2.UndefinedError, context: Mapping[str, Any]) -> str:
    """Why a render met an undefined value: no recommendations to show, or a field the
    subscriber lacks."""
    if context.get(NAME) == []:
        return NONE_REASON
    return f"template_error: unknown field ({exc.message})"


def _reason(exc: Exception) -> str:
    """A render failure's stored reason: `template_error (line N): what`."""
    error = sandbox.template_error(exc)
    at = f" (line {error.line})" if error.line is not None else ""
    return f"template_error{at}: {error.message}"


def render_batch(
    template: Template,
    batch: RecipientBatch,
    *,
    campaign_uid: str,
    brand: Mapping[str, Any],
    sender: str,
    max_segments: int = MAX_SEGMENTS,
    links: Rewriter | None = None,
    variant: str = VARIANT,
    recommendations: Mapping[int, list[Recommendation]] | None = None,
) -> RenderedBatch:
    """Render each recipient (their tracked URLs become their short `links`; their
    `recommendations`, by subscriber id, are theirs to show); a recipient whose render
    fails, or whose message is longer than `max_segments` (the brand's), becomes a
    `RenderFailure` with the reason, and the rest of the batch goes on."""
    rendered: list[tuple[Recipient, str, str]] = []
    failures: list[RenderFailure] = []
    for r in batch.recipients:
        if not r.phone:
            continue  # no number: nothing to send on this channel
        message_id = campaign_message_id(campaign_uid, variant, r.subscriber_id)
        context = {**r.fields, "phone": r.phone, "brand": brand}
        if recommendations is not None:
            context[NAME] = recommendations.get(r.subscriber_id, [])
        try:
            rendered.append((r, message_id, template.render(context).strip()))
        except jinja2.UndefinedError as exc:
            reason = _undefined_reason(exc, context)
            failures.append(_failure(r, message_id, r.phone, reason))
        except Exception as exc:  # any render failure is the recipient's, not the batch's
            failures.append(_failure(r, message_id, r.phone, _reason(exc)))
    bodies = [body for _, _, body in rendered]
    if links is not None:
        bodies = links.apply(bodies, [r.subscriber_id for r, _, _ in rendered])
    messages: list[OutboundMessage] = []
    for (r, message_id, _), body in zip(rendered, bodies, strict=True):
        assert r.phone is not None
        segments = sms_segments(body).segments
        if segments > max_segments:
            reason = f"template_error: {segments} segments; the brand's limit is {max_segments}"
            failures.append(_failure(r, message_id, r.phone, reason))
            continue
        messages.append(
            OutboundMessage(
                message_id=message_id,
                subscriber_id=r.subscriber_id,
                to=r.phone,
                body=body,
                segments=segments,
                timezone=r.timezone,
                carrier=r.carrier,
            )
        )
    return RenderedBatch(
        batch_id=batch.batch_id,
        brand_id=batch.brand_id,
        campaign_id=batch.campaign_id,
        sender=sender,
        messages=messages,
        failures=failures,
        partition=batch.partition,
    )


EMAIL_VARIANT = "email"


def render_email_batch(
    body: Template,
    subject: Template,
    batch: RecipientBatch,
    *,
    campaign_uid: str,
    brand: Mapping[str, Any],
    from_addr: str,
    unsubscribe_url: Callable[[int], str],
    links: Rewriter | None = None,
    variant: str = EMAIL_VARIANT,
    html: Template | None = None,
    recommendations: Mapping[int, list[Recommendation]] | None = None,
) -> RenderedBatch:
    """The email of each recipient who has an address: subject and text rendered like an SMS
    body (a recipient whose render fails fails alone, with the reason; tracked URLs become
    their short `links`), the one-click unsubscribe link per subscriber. Message ids differ
    from the SMS ones (variant)."""
    messages: list[OutboundMessage] = []
    failures: list[RenderFailure] = []
    for r in batch.recipients:
        email = r.fields.get("email")
        if not isinstance(email, str) or "@" not in email:
            continue
        message_id = campaign_message_id(campaign_uid, variant, r.subscriber_id)
        context = {**r.fields, "phone": r.phone, "brand": brand}
        if recommendations is not None:
            context[NAME] = recommendations.get(r.subscriber_id, [])
        try:
            text = body.render(context).strip()
            title = " ".join(subject.render(context).split())
            markup = html.render(context) if html is not None else None
        except Exception as exc:  # any render failure is the recipient's, not the batch's
            none = isinstance(exc, jinja2.UndefinedError) and context.get(NAME) == []
            failures.append(_failure(r, message_id, email, NONE_REASON if none else _reason(exc)))
            continue
        messages.append(
            OutboundMessage(
                message_id=message_id,
                subscriber_id=r.subscriber_id,
                to=email,
                body=text,
                segments=0,
                timezone=r.timezone,
                subject=title,
                unsubscribe_url=unsubscribe_url(r.subscriber_id),
                html=markup,
            )
        )
    if links is not None and messages:
        ids = [m.subscriber_id or 0 for m in messages]
        texts = links.apply([m.body for m in messages], ids)
        marked = links.apply([m.html or "" for m in messages], ids) if html is not None else None
        messages = [
            msgspec.structs.replace(m, body=t, html=m.html if marked is None else marked[i])
            for i, (m, t) in enumerate(zip(messages, texts, strict=True))
        ]
    return RenderedBatch(
        batch_id=f"{batch.batch_id}:email",
        brand_id=batch.brand_id,
        campaign_id=batch.campaign_id,
        sender=from_addr,
        messages=messages,
        failures=failures,
        partition=batch.partition,
        channel="email",
    )


def brand_names_used(body: str) -> set[str]:
    """The `brand.NAME`s a template reads (empty for a template that does not compile)."""
    try:
        tree = sandbox.parse(_ENV, body)
    except Exception:
        return set()
    return {
        n.attr
        for n in tree.find_all(nodes.Getattr)
        if isinstance(n.node, nodes.Name) and n.node.name == "brand"
    }


class _Marked(jinja2.ChainableUndefined):
    """A subscriber's field in `constant_urls`: renders as a mark no URL has."""

    def __str__(self) -> str:
        return _MARK


_MARK = "\ue000"  # a private-use character
_MARKED_ENV = sandbox.BoundedSandbox(undefined=_Marked, autoescape=False)


def constant_urls(body: str, *, brand: Mapping[str, Any]) -> list[str]:
    """The URLs of `body` that are the same for every recipient (brand macros filled in; a
    field's `default()` counts as a constant): a render in which each subscriber field is a
    mark, less the URLs the mark is in. A template that does not render has none."""
    try:
        text = sandbox.render(sandbox.build(_MARKED_ENV, sandbox.parse(_MARKED_ENV, body)),
                              {"brand": brand})  # fmt: skip
    except Exception:
        return []
    return [u for u in find_urls(text) if _MARK not in u]


def render_sample(body: str, fields: Mapping[str, Any], *, brand: Mapping[str, Any]) -> str:
    """What `body` renders to for one sample subscriber (missing fields render empty); any
    problem is a TemplateError naming its line."""
    compile_template(body)
    try:
        template = sandbox.build(_LENIENT_ENV, sandbox.parse(_LENIENT_ENV, body))
        return sandbox.render(template, {**fields, "brand": brand}).strip()
    except Exception as exc:
        raise sandbox.template_error(exc) from exc
