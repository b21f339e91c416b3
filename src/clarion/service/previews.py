"""A campaign's texts as one subscriber will get them, and the checks a launch makes on them:
the use case behind `campaigns.check` (a stored campaign, the brand's sample subscriber) and
the composer's live preview (texts as typed, a subscriber of the marketer's choosing).

Each tracked URL is shown as the short link it becomes (a sample code of its length) and
counted in the SMS segments as sent; a text that reads `recommendations` gets the
subscriber's list (else the brand's popular products)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from clarion.compliance.encoding import SMART_SUBSTITUTIONS
from clarion.domain.brands import brand_fields
from clarion.domain.rows import BrandRow
from clarion.domain.subscribers import Subscriber, email_of, phone_of
from clarion.errors import InvalidInput, TemplateError
from clarion.pipeline import links
from clarion.pipeline import recommendations as recs
from clarion.pipeline.campaign import BodyCheck, check_sms_body, sample_fields

# the composer shows links as they will be shortened
from clarion.pipeline.links import CODE_CHARS as CODE_CHARS
from clarion.pipeline.links import find_urls as find_urls
from clarion.pipeline.personalize import brand_names_used, constant_urls, render_sample
from clarion.runtime.recommending import POPULAR_DAYS, POPULAR_KEPT
from clarion.service.context import Services
from clarion.store import brands, campaigns, models, subscribers
from clarion.store import recommendations as store_recs

_SMART = str.maketrans(SMART_SUBSTITUTIONS)
PREVIEW_SECRET = "preview"  # the sample codes' key: a preview's links lead nowhere


def gsm_fixed(text: str) -> str:
    """`text` with each look-alike that forces UCS-2 (curly quotes, dashes, odd spaces, …)
    replaced by its GSM-7 equivalent; characters without one are left as they are."""
    return text.translate(_SMART)


def short_base(svc: Services, link_domain: str | None) -> str:
    """Where the brand's short links point: `https://{domain}/l/`, a code follows."""
    return links.links_base(link_domain, svc.settings.links_url or svc.settings.public_url)


def preview_links(
    svc: Services, link_domain: str | None, body: str, brand: dict[str, str], rendered: str
) -> str:
    """`rendered` with each URL that will be tracked as a short link of the length it will
    have (a sample code)."""
    urls = constant_urls(body, brand=brand)
    rewriter = links.Rewriter(short_base(svc, link_domain), dict.fromkeys(urls, 1), PREVIEW_SECRET)
    return rewriter.apply([rendered], [1])[0]


@dataclass(frozen=True)
class Texts:
    """A variant's texts (templates): the SMS body, the email's subject, text and HTML."""

    body: str
    subject: str | None = None
    email_body: str | None = None
    email_html: str | None = None

    def all(self) -> list[str]:
        return [self.body, self.subject or "", self.email_body or "", self.email_html or ""]


@dataclass(frozen=True)
class Rendered:
    """A variant as the subscriber gets it: the SMS checked as a launch checks it; the
    email's parts; the template errors of each text (by field: body, subject, …)."""

    sms: BodyCheck
    subject: str | None
    email_text: str | None
    email_html: str | None
    template_errors: dict[str, TemplateError]


def _render(
    text: str | None,
    field: str,
    fields: dict[str, Any],
    brand: dict[str, str],
    errors: dict[str, TemplateError],
) -> str | None:
    if not text:
        return None
    try:
        return render_sample(text, fields, brand=brand)
    except TemplateError as exc:
        errors[field] = TemplateError(exc.message, line=exc.line, field=field)
        return None


def _unknown_macros(texts: Sequence[str], brand: dict[str, str]) -> list[str]:
    unknown = sorted({n for t in texts for n in brand_names_used(t)} - brand.keys())
    known = ", ".join(sorted(brand)) or "none"
    return [f"unknown macro brand.{n} (the brand's: {known})" for n in unknown]


def checked(
    svc: Services,
    b: BrandRow,
    texts: Texts,
    fields: dict[str, Any],
    *,
    first_contact: bool,
    track_links: bool,
) -> Rendered:
    """Render `texts` for a subscriber's `fields` (missing ones render empty) and check the
    SMS as a launch does: the brand's name and how to opt out in a first message, the
    brand's segment limit, every `brand.NAME` a macro of the brand's."""
    brand = brand_fields(b.name, b.help_text, b.sender, b.macros)
    errors: dict[str, TemplateError] = {}
    sms = _render(texts.body, "body", fields, brand, errors) or ""
    if track_links:  # counted as sent: each tracked URL as its short link
        sms = preview_links(svc, b.link_domain, texts.body, brand, sms)
    check = check_sms_body(
        sms, brand_name=b.name, first_contact=first_contact, max_segments=b.max_segments
    )
    if "body" in errors:
        check = replace(check, errors=(str(errors["body"]), *check.errors))
    unknown = _unknown_macros(texts.all(), brand)
    if unknown:  # every recipient's render would fail on it
        check = replace(check, errors=(*check.errors, *unknown))
    subject = _render(texts.subject, "subject", fields, brand, errors)
    email_text = _render(texts.email_body or texts.body, "email_body", fields, brand, errors)
    html = _render(texts.email_html, "email_html", fields, brand, errors)
    if track_links:
        email_text = email_text and preview_links(
            svc, b.link_domain, texts.email_body or texts.body, brand, email_text
        )
    return Rendered(check, subject and " ".join(subject.split()), email_text, html, errors)


@dataclass(frozen=True)
class Preview:
    """Texts rendered for one subscriber: who (None: the brand has no subscriber with a
    phone), the brand's macros, each variant, and the recommendations they read (None:
    no text reads them)."""

    subscriber: Subscriber | None
    sampled: bool  # the brand's sample subscriber, not one asked for
    macros: dict[str, str]
    variants: list[Rendered]
    recommendations: list[recs.Recommendation] | None


async def _subscriber(svc: Services, brand_id: int, who: str) -> Subscriber:
    """The brand's subscriber with this phone or email; `InvalidInput` (field `who`) for
    none."""
    try:
        found = await subscribers.find(
            svc.pool, brand_id,
            **({"email": email_of(who, "who")} if "@" in who else {"phone": phone_of(who, "who")}),
        )  # fmt: skip
    except InvalidInput as exc:
        raise InvalidInput(exc.reason, field="who") from None
    if not found:
        raise InvalidInput(f"no subscriber with {who!r}", field="who")
    return found[0]


def _fields(s: Subscriber) -> dict[str, Any]:
    """What a template sees of a subscriber (as `pipeline.campaign.sample_fields`)."""
    out = dict(s.attributes or {})
    standard = {"first_name": s.first_name, "last_name": s.last_name, "email": s.email,
                "phone": s.phone}  # fmt: skip
    out.update((k, v) for k, v in standard.items() if v)
    return out


async def recommended(
    svc: Services, b: BrandRow, subscriber_id: int | None, use: recs.Use, *, track_links: bool
) -> list[recs.Recommendation]:
    """The subscriber's recommendations as a send would make them now: their list of the
    brand's newest model, else (or topped up with) its popular products in stock; each
    product URL a short link when the campaign tracks links."""
    model = await models.latest(svc.pool, b.id, "recs")
    if model is None:
        popular = await store_recs.popular_now(
            svc.pool, b.id, days=POPULAR_DAYS, limit=POPULAR_KEPT
        )
        lists: dict[int, list[str]] = {}
    else:
        popular = [str(p) for p in model.summary.get("popular", [])]
        lists = (
            {}
            if subscriber_id is None or model.pruned_at is not None
            else await store_recs.lists(svc.pool, model.id, [subscriber_id], use.count)
        )
    sid = subscriber_id or 0
    wanted = sorted({*popular, *lists.get(sid, [])})
    products = await store_recs.in_stock(svc.pool, b.id, wanted) if wanted else {}
    picked = recs.chosen([sid], lists, popular=popular, products=dict(products), count=use.count)
    tracking = None
    if track_links and use.urls:
        urls = dict.fromkeys(sorted(recs.urls_of(picked)), 1)
        tracking = recs.Tracking(
            base=short_base(svc, b.link_domain), links=urls, secret=PREVIEW_SECRET
        )
    return recs.to_show([sid], picked, tracking, {})[sid]


async def preview(
    svc: Services,
    brand_id: int,
    variants: Sequence[Texts],
    *,
    who: str = "",
    track_links: bool = True,
) -> Preview:
    """Each variant's texts rendered for the brand's subscriber `who` (a phone or an email;
    empty: the brand's sample subscriber) and checked as a launch checks them."""
    b = await brands.get_brand(svc.pool, brand_id)
    sample, first_contact = await campaigns.sample_and_first_contact(svc.pool, brand_id)
    chosen: Subscriber | None = None
    if who.strip():
        chosen = await _subscriber(svc, brand_id, who.strip())
        fields = _fields(chosen)
    else:
        fields = sample_fields(sample)
        if sample is not None:
            chosen = await subscribers.get(svc.pool, brand_id, sample.id)
    use = recs.use_of(t for v in variants for t in v.all())
    shown = None
    if use is not None:
        shown = await recommended(
            svc, b, chosen.id if chosen else None, use, track_links=track_links
        )
        fields = {**fields, recs.NAME: shown}
    rendered = [
        checked(svc, b, v, fields, first_contact=first_contact, track_links=track_links)
        for v in variants
    ]
    return Preview(chosen, not who.strip(), dict(b.macros), rendered, shown)
