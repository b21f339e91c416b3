"""Personalize stage core: render every recipient's message with a sandboxed Jinja2 template.

The template is compiled once per campaign. A field the template needs but a subscriber does
not have is an error for that recipient only (StrictUndefined); `default()` makes it optional.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from clarion.compliance.encoding import sms_segments
from clarion.domain.ids import campaign_message_id
from clarion.domain.records import OutboundMessage, RecipientBatch, RenderedBatch, RenderFailure
from clarion.errors import TemplateError

_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
)
# Campaign validation renders one sample leniently: a field a sample lacks renders empty.
_LENIENT_ENV = ImmutableSandboxedEnvironment(autoescape=False)
VARIANT = "a"


def compile_template(body: str) -> jinja2.Template:
    """Compile a campaign body; a syntax error names its line."""
    try:
        return _ENV.from_string(body)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.message or str(exc), line=exc.lineno) from exc


def render_batch(
    template: jinja2.Template,
    batch: RecipientBatch,
    *,
    campaign_uid: str,
    brand: Mapping[str, Any],
    sender: str,
) -> RenderedBatch:
    """Render each recipient; a recipient whose render fails becomes a `RenderFailure`
    with the reason, and the rest of the batch goes on."""
    messages: list[OutboundMessage] = []
    failures: list[RenderFailure] = []
    for r in batch.recipients:
        if not r.phone:
            continue  # no number: nothing to send on this channel
        message_id = campaign_message_id(campaign_uid, VARIANT, r.subscriber_id)
        context = {**r.fields, "phone": r.phone, "brand": brand}
        try:
            body = template.render(context).strip()
        except jinja2.UndefinedError as exc:
            failures.append(
                RenderFailure(
                    message_id=message_id,
                    subscriber_id=r.subscriber_id,
                    to=r.phone,
                    error=f"template_error: unknown field ({exc.message})",
                )
            )
            continue
        except Exception as exc:  # any render failure is the recipient's, not the batch's
            failures.append(
                RenderFailure(
                    message_id=message_id,
                    subscriber_id=r.subscriber_id,
                    to=r.phone,
                    error=f"template_error: {type(exc).__name__}: {exc}",
                )
            )
            continue
        messages.append(
            OutboundMessage(
                message_id=message_id,
                subscriber_id=r.subscriber_id,
                to=r.phone,
                body=body,
                segments=sms_segments(body).segments,
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
    body: jinja2.Template,
    subject: jinja2.Template,
    batch: RecipientBatch,
    *,
    campaign_uid: str,
    brand: Mapping[str, Any],
    from_addr: str,
    unsubscribe_url: Callable[[int], str],
) -> RenderedBatch:
    """The email of each recipient who has an address: subject and text rendered like an SMS
    body (a recipient whose render fails fails alone, with the reason), the one-click
    unsubscribe link per subscriber. Message ids differ from the SMS ones (variant)."""
    messages: list[OutboundMessage] = []
    failures: list[RenderFailure] = []
    for r in batch.recipients:
        email = r.fields.get("email")
        if not isinstance(email, str) or "@" not in email:
            continue
        message_id = campaign_message_id(campaign_uid, EMAIL_VARIANT, r.subscriber_id)
        context = {**r.fields, "phone": r.phone, "brand": brand}
        try:
            text = body.render(context).strip()
            title = " ".join(subject.render(context).split())
        except Exception as exc:  # any render failure is the recipient's, not the batch's
            failures.append(
                RenderFailure(
                    message_id=message_id,
                    subscriber_id=r.subscriber_id,
                    to=email,
                    error=f"template_error: {type(exc).__name__}: {exc}",
                )
            )
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
            )
        )
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


def render_sample(body: str, fields: Mapping[str, Any], *, brand: Mapping[str, Any]) -> str:
    """What `body` renders to for one sample subscriber (missing fields render empty)."""
    compile_template(body)
    return _LENIENT_ENV.from_string(body).render({**fields, "brand": brand}).strip()
