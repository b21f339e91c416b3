"""SendGrid's Event Webhook signature, made as the simulator (playing SendGrid) makes it:
ECDSA P-256 with SHA-256 over `timestamp ‖ body`, the DER signature in base64 in
`X-Twilio-Email-Event-Webhook-Signature`, the timestamp in
`X-Twilio-Email-Event-Webhook-Timestamp`; the verification key is base64 DER
SubjectPublicKeyInfo.

Written with `cryptography`, not shared with Clarion's adapter (whose verifier is written by
hand): a signing bug on either side fails the tests that run one against the other.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_KEY_LABEL = b"clarion-sim/sendgrid-event-webhook\x00"


def webhook_private_key(secret: str) -> ec.EllipticCurvePrivateKey:
    """The simulator's Event Webhook signing key: derived from its secret, so it is the same
    across restarts (and the same as earlier versions of the simulator derived)."""
    digest = hashlib.sha256(_KEY_LABEL + secret.encode()).digest()
    scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def verification_key(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The key a webhook's receiver verifies with (SendGrid's "Verification Key")."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` posted at `timestamp` (Unix seconds, as text)."""
    der = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(der).decode()
