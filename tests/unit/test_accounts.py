"""Provider accounts: settings are checked, secrets are environment references only, and an
account builds the adapter for its kind without the secret ever being stored or shown."""

from __future__ import annotations

import pytest

from clarion.config import Settings
from clarion.domain.accounts import check
from clarion.errors import ConfigurationError, InvalidInput
from clarion.providers import accounts

TWILIO = {"account_sid": "AC" + "0" * 32, "auth_token": "env:ACME_TWILIO_TOKEN"}


def test_a_secret_in_the_clear_is_refused_with_the_field_named() -> None:
    with pytest.raises(InvalidInput, match="auth_token must reference an environment variable"):
        check("acme", "twilio", {**TWILIO, "auth_token": "s3cr3t"})


def test_unknown_kinds_settings_and_missing_ones_are_named() -> None:
    with pytest.raises(InvalidInput, match="kind"):
        check("acme", "carrier-pigeon", {})
    with pytest.raises(InvalidInput, match="unknown setting 'colour'"):
        check("acme", "twilio", {**TWILIO, "colour": "red"})
    with pytest.raises(InvalidInput, match="needs 'account_sid'"):
        check("acme", "twilio", {"auth_token": "env:X"})


def test_an_account_builds_its_adapter_with_the_secret_from_the_environment() -> None:
    env = {"ACME_TWILIO_TOKEN": "tok-123"}
    app = Settings(public_url="https://clarion.example")
    provider = accounts.build("acme-twilio", "twilio", TWILIO, app, env)
    assert provider.name == "acme-twilio"
    assert "tok-123" not in repr(provider)
    assert "tok-123" not in str(provider)
    with pytest.raises(ConfigurationError, match="needs a secret"):  # none set, none made
        accounts.build("backup", "sim", {"url": "http://sim:9090"}, app, env)
    app = Settings(public_url="https://clarion.example", sim_secret="s" * 16)
    sim = accounts.build("backup", "sim", {"url": "http://sim:9090"}, app, env)
    assert sim.name == "backup"


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(ConfigurationError, match="ACME_TWILIO_TOKEN"):
        accounts.build("acme-twilio", "twilio", TWILIO, Settings(), {})
