"""A brand as the inbound stage answers for it (its name, sender, help text)."""

from __future__ import annotations

from dataclasses import dataclass


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
