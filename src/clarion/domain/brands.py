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
