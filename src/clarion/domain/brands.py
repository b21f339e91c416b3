"""A brand as the inbound stage answers for it (its name, sender, help text)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clarion.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class BrandInfo:
    id: int
    name: str
    sender: str
    help_text: str = ""
    support_contact: str = ""


def email_sender(name: str, slug: str, email_from: str | None) -> str:
    """The From of a brand's email: its own, or `<name> <news@<slug>.example>`."""
    return email_from or f"{name} <news@{slug}.example>"


# `{{ brand.* }}`: what Clarion knows of every brand, and a brand's own macros beside it.
BUILT_IN_MACROS = ("name", "help_text", "sender")
MAX_MACROS = 50
MAX_MACRO_CHARS = 500
_MACRO_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def macros_in(raw: Any) -> dict[str, str]:
    """A brand's macros from JSON (an object of names to text), or `InvalidInput` naming
    the bad one."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("macros are a JSON object of names to text", field="macros")
    if len(raw) > MAX_MACROS:
        raise InvalidInput(f"at most {MAX_MACROS} macros", field="macros")
    out: dict[str, str] = {}
    for name, value in raw.items():
        where = f"macros.{str(name)[:40]}"
        if not isinstance(name, str) or not _MACRO_NAME.fullmatch(name):
            raise InvalidInput(
                "a macro's name is lower-case letters, digits and _ (40 at most),"
                " beginning with a letter",
                field=where,
            )
        if name in BUILT_IN_MACROS:
            raise InvalidInput(f"brand.{name} is Clarion's own", field=where)
        if not isinstance(value, str) or len(value) > MAX_MACRO_CHARS:
            raise InvalidInput(f"text of at most {MAX_MACRO_CHARS} characters", field=where)
        out[name] = value
    return out


def brand_fields(
    name: str, help_text: str, sender: str, macros: Mapping[str, str] | None
) -> dict[str, str]:
    """What templates see as `brand`: its macros, and its name, help text and sender."""
    return {**(macros or {}), "name": name, "help_text": help_text, "sender": sender}
