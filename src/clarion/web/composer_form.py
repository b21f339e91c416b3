"""The composer's form: what it posts (flat fields, one name each: `v0_body`, `v1_weight`,
`ab_sample`, `exclude_7`), read into the changes of a `service.campaigns.Draft` — the same
fields the API's body gives the same use cases — and a campaign back into the form. Errors
name the form's field they belong next to."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from clarion.domain.rows import CampaignRow
from clarion.domain.variants import KEYS, MAX_VARIANTS
from clarion.errors import InvalidInput
from clarion.service.previews import Texts

TEXTS = ("body", "subject", "email_body", "email_html")
AB_MODES = ("split", "test", "adaptive")
# The A/B settings the form offers (the API's `ab`), by mode; the others keep their defaults.
AB_FIELDS = {
    "test": ("sample", "wait_minutes", "metric", "fallback"),
    "adaptive": ("rounds", "round_share", "wait_minutes", "floor", "confidence"),
    "split": (),
}
AB_DEFAULTS = {
    "sample": "0.2", "wait_minutes": "60", "metric": "click_rate", "fallback": "leader",
    "rounds": "5", "round_share": "0.1", "floor": "0.05", "confidence": "0.95",
}  # fmt: skip
_INTS = frozenset({"wait_minutes", "rounds"})
_TEXT_SETTINGS = frozenset({"metric", "fallback"})


@dataclass
class VariantForm:
    name: str = ""
    weight: str = ""
    body: str = ""
    subject: str = ""
    email_body: str = ""
    email_html: str = ""

    def texts(self) -> Texts:
        return Texts(self.body, self.subject or None, self.email_body or None,
                     self.email_html or None)  # fmt: skip


@dataclass
class ComposeForm:
    """The composer's fields as typed (strings: a form shows back what was sent)."""

    name: str = ""
    channel: str = "sms"
    variants: list[VariantForm] = field(default_factory=lambda: [VariantForm()])
    ab_mode: str = "split"
    ab: dict[str, str] = field(default_factory=lambda: dict(AB_DEFAULTS))
    audience: str = ""  # "": the whole list; a segment's id; "definition": its own
    exclude: frozenset[int] = frozenset()
    track_links: bool = True
    who: str = ""  # whom the preview is for

    @classmethod
    def posted(cls, form: Mapping[str, str]) -> ComposeForm:
        count = _count(form.get("variants", "1"))
        variants = [
            VariantForm(**{k: form.get(f"v{i}_{k}", "") for k in ("name", "weight", *TEXTS)})
            for i in range(count)
        ]
        exclude = frozenset(
            int(k[8:]) for k, v in form.items()
            if k.startswith("exclude_") and k[8:].isdigit() and len(k) < 27 and v
        )  # fmt: skip
        return cls(
            name=form.get("name", ""), channel=form.get("channel", "sms"), variants=variants,
            ab_mode=form.get("ab_mode", "split"),
            ab={k: form.get(f"ab_{k}", d) for k, d in AB_DEFAULTS.items()},
            audience=form.get("audience", ""), exclude=exclude,
            track_links=form.get("track_links") == "on", who=form.get("who", "")[:320],
        )  # fmt: skip

    @classmethod
    def of(cls, c: CampaignRow) -> ComposeForm:
        if c.variants:
            variants = [
                VariantForm(
                    name=v.get("name") or "",
                    weight=_shown(v.get("weight")),
                    **{k: v.get(k) or "" for k in TEXTS},
                )
                for v in c.variants
            ]
        else:
            variants = [VariantForm(body=c.body, subject=c.subject or "",
                                    email_body=c.email_body or "",
                                    email_html=c.email_html or "")]  # fmt: skip
        ab = dict(AB_DEFAULTS)
        ab.update((k, _shown(v)) for k, v in (c.ab or {}).items() if k in AB_DEFAULTS)
        audience = "definition" if c.audience_definition is not None else ""
        return cls(
            name=c.name, channel=c.channel, variants=variants,
            ab_mode=(c.ab or {}).get("mode", "split"), ab=ab,
            audience=str(c.segment_id) if c.segment_id is not None else audience,
            exclude=frozenset(c.exclude_segment_ids), track_links=c.track_links,
        )  # fmt: skip

    def texts(self) -> list[Texts]:
        return [v.texts() for v in self.variants]

    def with_variant(self) -> ComposeForm:
        if len(self.variants) >= MAX_VARIANTS:
            return self
        first = self.variants[0]
        added = VariantForm(body=first.body, subject=first.subject, email_body=first.email_body,
                            email_html=first.email_html)  # fmt: skip
        return replace(self, variants=[*self.variants, added])

    def without_variant(self, i: int) -> ComposeForm:
        if len(self.variants) < 2 or not 0 <= i < len(self.variants):
            return self
        return replace(self, variants=[v for j, v in enumerate(self.variants) if j != i])

    def changes(self, definition: Any) -> dict[str, Any]:
        """The draft's fields as `service.campaigns.create` and `update_draft` take them
        (`definition`: the audience definition of its own the campaign has, if any).
        `InvalidInput` naming the form's field for a number that is not one."""
        audience: dict[str, Any] = {"segment_id": None, "definition": None}
        if self.audience == "definition":
            audience["definition"] = definition
        elif self.audience:
            audience["segment_id"] = _id(self.audience, "audience")
        out: dict[str, Any] = {
            "name": self.name, "channel": self.channel, **audience,
            "exclude_segment_ids": tuple(sorted(self.exclude)), "track_links": self.track_links,
        }  # fmt: skip
        if len(self.variants) == 1:
            texts = self.variants[0].texts()
            return {**out, "body": texts.body, "subject": texts.subject,
                    "email_body": texts.email_body, "email_html": texts.email_html,
                    "variants": None, "ab": None}  # fmt: skip
        variants = []
        for i, v in enumerate(self.variants):
            made: dict[str, Any] = {"name": v.name.strip() or f"Variant {KEYS[i].upper()}"}
            if v.weight.strip():
                made["weight"] = _number(v.weight, f"v{i}_weight")
            variants.append({**made, **{k: getattr(v.texts(), k) for k in TEXTS
                                        if getattr(v.texts(), k) is not None}})  # fmt: skip
        if any("weight" in v for v in variants) and not all("weight" in v for v in variants):
            raise InvalidInput("give every variant a weight, or none", field="weights")
        if self.ab_mode not in AB_MODES:
            raise InvalidInput("split, test or adaptive", field="ab_mode")
        ab: dict[str, Any] = {"mode": self.ab_mode}
        for k in AB_FIELDS[self.ab_mode]:
            raw = self.ab.get(k, AB_DEFAULTS[k])
            ab[k] = raw if k in _TEXT_SETTINGS else _number(raw, f"ab_{k}", whole=k in _INTS)
        return {**out, "body": variants[0]["body"], "variants": variants, "ab": ab}


def _count(raw: str) -> int:
    return int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_VARIANTS else 1


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _id(raw: str, name: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidInput("not a segment of yours", field=name)
    return int(raw)


def _number(raw: str, name: str, *, whole: bool = False) -> float | int:
    text = raw.strip().rstrip("%").strip()
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        raise InvalidInput("a whole number" if whole else "a number", field=name) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("a number", field=name)
    return value


# Where an error of the use cases (its `field`, as the API names it) is shown in the form.
_VARIANT_FIELD = re.compile(r"variants\[(\d)\](?:\.(\w+))?")


def form_field(error_field: str | None, variants: int) -> str:
    """The form field next to which an error of `service.campaigns` belongs."""
    f = error_field or ""
    if f in ("name", "channel", "audience", "weights", "ab_mode", "who"):
        return f
    if f.startswith(("v", "ab_")) and not f.startswith("variants"):
        return f
    if f in TEXTS:
        return f"v0_{f}"
    if m := _VARIANT_FIELD.fullmatch(f):
        part = m.group(2) or "body"
        return f"v{m.group(1)}_{part if part in (*TEXTS, 'weight', 'name') else 'body'}"
    if f == "variants":
        return "weights" if variants > 1 else "v0_body"
    if f == "ab":
        return "ab_mode"
    if f.startswith("ab."):
        name = f[3:].split(".")[0]
        return f"ab_{name}" if name in AB_DEFAULTS else "ab_mode"
    if f.split(".")[0].split("[")[0] in ("segment_id", "definition", "exclude"):
        return "audience"
    return "form"
