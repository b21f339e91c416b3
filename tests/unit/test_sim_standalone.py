"""The simulator stands alone: it signs SendGrid's Event Webhook with its own code (with
`cryptography`), which Clarion's hand-written verifier must accept, and loading it loads
none of Clarion's adapters or servers."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clarion.providers import sendgrid
from clarion.sim import sendgrid_signing

TIMESTAMP = "1795600000"
BODY = (
    json.dumps([{"email": "ana@example.com", "event": "delivered", "sg_event_id": "e1"}]) + "\r\n"
).encode()


def test_the_simulators_signature_verifies_with_clarions_verifier() -> None:
    key = sendgrid_signing.webhook_private_key("clarion-sim-secret")
    public = sendgrid_signing.verification_key(key)
    signature = sendgrid_signing.sign(key, TIMESTAMP, BODY)
    assert sendgrid.verify_event_webhook(public, TIMESTAMP, BODY, signature)


@pytest.mark.parametrize(
    ("timestamp", "body", "secret"),
    [
        ("1795600001", BODY, "clarion-sim-secret"),
        (TIMESTAMP, BODY.replace(b"delivered", b"bounce"), "clarion-sim-secret"),
        (TIMESTAMP, BODY, "another-secret-of-16"),
    ],
    ids=["other-timestamp", "other-body", "other-key"],
)
def test_clarion_refuses_a_simulator_signature_over_anything_else(
    timestamp: str, body: bytes, secret: str
) -> None:
    signature = sendgrid_signing.sign(
        sendgrid_signing.webhook_private_key("clarion-sim-secret"), TIMESTAMP, BODY
    )
    public = sendgrid_signing.verification_key(sendgrid_signing.webhook_private_key(secret))
    assert not sendgrid.verify_event_webhook(public, timestamp, body, signature)


def test_clarions_signature_verifies_with_cryptographys_ecdsa() -> None:
    private = 0x1234567890ABCDEF1234567890ABCDEF
    signature = base64.b64decode(sendgrid.sign_event_webhook(private, TIMESTAMP, BODY))
    public = serialization.load_der_public_key(base64.b64decode(sendgrid.ec_public_key(private)))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, TIMESTAMP.encode() + BODY, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"1795600001" + BODY, ec.ECDSA(hashes.SHA256()))


def test_both_sides_write_the_same_verification_key() -> None:
    key = sendgrid_signing.webhook_private_key("clarion-sim-secret")
    scalar = key.private_numbers().private_value
    assert sendgrid_signing.verification_key(key) == sendgrid.ec_public_key(scalar)
    # derived from the secret: the same key across restarts, another for another secret
    assert sendgrid_signing.webhook_private_key("clarion-sim-secret").private_numbers() == (
        key.private_numbers()
    )
    assert sendgrid_signing.verification_key(
        sendgrid_signing.webhook_private_key("another-secret-of-16")
    ) != sendgrid_signing.verification_key(key)


def test_loading_the_simulator_loads_no_clarion_adapter_or_server() -> None:
    """What the simulator's modules import, and what those import in turn."""
    forbidden = ("providers", "runtime", "store", "service", "bus", "api", "web", "harness")
    code = (
        "import sys, clarion.sim.app, clarion.sim.process\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('clarion.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "clarion.sim.sendgrid_api" in loaded
    assert not [m for m in loaded if m.split(".")[1] in forbidden]
