"""Provider accounts as data: the kinds there are, the settings each kind takes, and the
rule that a secret is a reference to an environment variable, never the secret itself."""

from __future__ import annotations

from collections.abc import Mapping

from clarion.errors import InvalidInput

KINDS = ("sim", "twilio", "smpp", "smtp", "sendgrid")
# Settings that are secrets: they must be "env:VARIABLE" references.
SECRETS = frozenset({"auth_token", "password", "api_key", "secret"})
# The settings each kind takes (required first).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sim": ((), ("url", "secret")),
    "twilio": (("account_sid", "auth_token"), ("api_base", "lookup_base")),
    "smpp": (
        ("host", "port", "system_id", "password"),
        ("binds", "window", "submit_id_base", "receipt_id_base"),
    ),
    "smtp": (
        ("host",),
        ("port", "username", "password", "tls", "dkim_selector", "dkim_domain", "dkim_key_file"),
    ),
    "sendgrid": (("api_key",), ("webhook_public_key", "base_url")),
}


def check(name: str, kind: str, settings: Mapping[str, str]) -> None:
    """Refuse an account that could not work or that would store a secret in the clear."""
    if kind not in FIELDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    required, optional = FIELDS[kind]
    for key in settings:
        if key not in required and key not in optional:
            raise InvalidInput(f"{name}: unknown setting {key!r} for {kind}", field=key)
    for key in required:
        if not settings.get(key):
            raise InvalidInput(f"{name}: {kind} needs {key!r}", field=key)
    for key in SECRETS & settings.keys():
        if not settings[key].startswith("env:"):
            raise InvalidInput(
                f"{name}: {key} must reference an environment variable (env:NAME);"
                " secrets are not stored",
                field=key,
            )
