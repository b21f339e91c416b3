"""Marketing email on the wire: RFC 5322 messages carrying RFC 8058 one-click unsubscribe
headers under a DKIM signature, and the vocabulary providers answer with (SMTP reply codes,
SendGrid events). Pure: builds bytes and reads answers, does no I/O.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal, Protocol

import dkim as dkimpy
import msgspec
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from clarion.domain.messages import SendResult
from clarion.domain.records import Receipt
from clarion.errors import InvalidInput

# Bodies are encoded at 78 columns (quoted-printable/base64 need it); headers are written at
# RFC 5322's hard limit instead, because the email package folds an over-long unstructured
# header into RFC 2047 encoded words, which turns a long List-Unsubscribe URL into garbage
# that no mail client decodes (RFC 2369 values are URLs, never encoded words).
_BODY_POLICY = policy.SMTP.clone(cte_type="7bit")
_WIRE_POLICY = _BODY_POLICY.clone(max_line_length=998)

ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1, the only allowed value
# Signed once each, then once more ("over-signed"), so no header of the same name can be
# added later without breaking the signature (RFC 6376 §8.15).
SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "list-unsubscribe",
    "list-unsubscribe-post", "mime-version", "content-type",
)  # fmt: skip
OVERSIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post",
)  # fmt: skip
_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_URL_FORBIDDEN = re.compile(r"[\s<>\x00-\x1f\x7f]")


class OutboundEmail(msgspec.Struct, frozen=True, kw_only=True):
    """A rendered marketing email for one recipient. `message_id` is Clarion's message id
    (the same id a receipt names); `from_addr` may carry a display name."""

    message_id: str
    to: str
    from_addr: str
    subject: str
    text: str
    unsubscribe_url: str  # https URL of the one-click endpoint (`/u/{token}`)
    html: str | None = None
    unsubscribe_mailto: str | None = None  # "mailto:…", offered to clients without HTTP
    subscriber_id: int | None = None


class EmailProvider(Protocol):
    """A way to hand emails to the mail network.

    `send_emails` returns one result per email, in the order given, and never raises for a
    single recipient's failure: a permanent refusal is `accepted=False`, a passing one
    (a 4xx, a throttle, a lost connection) is `accepted=False, retry=True`. A message whose
    hand-over was cut short may be sent twice on retry (`idempotent` is False for SMTP and
    SendGrid, which take no idempotency key); RFC 5321 §6.1 prefers that to losing it.
    """

    name: str
    max_batch: int
    idempotent: bool

    async def send_emails(self, emails: Sequence[OutboundEmail]) -> list[SendResult]: ...

    async def aclose(self) -> None: ...


# --- DKIM ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DkimKey:
    """An RSA signing key for `d=domain; s=selector`. The PEM (PKCS#1 or PKCS#8) never
    appears in a repr."""

    selector: str
    domain: str
    private_key_pem: bytes = field(repr=False)

    @property
    def dns_name(self) -> str:
        """Where the public key is published (a TXT record)."""
        return f"{self.selector}._domainkey.{self.domain}"

    def txt_record(self) -> str:
        return dkim_txt_record(self.private_key_pem)


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)])
    if n >= 0x80:
        length += n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


_RSA_ALGORITHM = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + _der(0x05, b""))


def dkim_txt_record(private_key_pem: bytes) -> str:
    """The DNS TXT value (`v=DKIM1; k=rsa; p=…`) publishing the public half of a key. Over
    255 octets: zone files split it into several quoted strings, which DNS concatenates."""
    try:
        key = parse_pem_private_key(private_key_pem)
    except UnparsableKeyError as exc:
        raise InvalidInput(f"not an RSA private key: {exc}", field="dkim_key") from exc
    rsa_public = _der(0x30, _der_int(key["modulus"]) + _der_int(key["publicExponent"]))
    spki = _der(0x30, _RSA_ALGORITHM + _der(0x03, b"\x00" + rsa_public))
    return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"


_SMALL_PRIMES = tuple(
    p for p in range(3, 2000, 2) if all(p % d for d in range(3, math.isqrt(p) + 1, 2))
)


def _probably_prime(n: int, randbits: Callable[[int], int], rounds: int = 40) -> bool:
    """Miller–Rabin after trial division (error below 4^-rounds)."""
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(2 + randbits(n.bit_length() + 64) % (n - 3), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, e: int, randbits: Callable[[int], int]) -> int:
    while True:
        # The top two bits set make p·q exactly 2·bits long; the low bit makes it odd.
        candidate = randbits(bits) | (0b11 << (bits - 2)) | 1
        if (candidate - 1) % e and _probably_prime(candidate, randbits):
            return candidate


def generate_dkim_key(
    selector: str,
    domain: str,
    *,
    bits: int = 2048,
    randbits: Callable[[int], int] = secrets.randbits,
) -> DkimKey:
    """A fresh RSA key pair for tests and development, in pure Python (no `cryptography`, no
    openssl). Production keys come from `openssl genrsa 2048` and `CLARION_DKIM_KEY_FILE`."""
    e = 65537
    p = _prime(bits // 2, e, randbits)
    q = _prime(bits // 2, e, randbits)
    while q == p:
        q = _prime(bits // 2, e, randbits)
    p, q = max(p, q), min(p, q)
    d = pow(e, -1, (p - 1) * (q - 1))
    fields = (0, p * q, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))
    der = _der(0x30, b"".join(_der_int(v) for v in fields))
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *lines, "-----END RSA PRIVATE KEY-----"])
    return DkimKey(selector, domain, (pem + "\n").encode())


# --- building -----------------------------------------------------------------------------


def _domain_of(address: str, what: str) -> str:
    addr = parseaddr(address)[1]
    local, at, domain = addr.rpartition("@")
    if not (local and at and domain):
        raise InvalidInput(f"not an email address: {address!r}", field=what)
    return domain.lower()


def build_email(
    *,
    message_id: str,
    from_addr: str,
    to_addr: str,
    subject: str,
    text: str,
    html: str | None = None,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None = None,
    dkim: DkimKey | None,
    now: datetime | None = None,
) -> bytes:
    """An RFC 5322 message (CRLF line ends, 7-bit transfer encodings) with
    `Message-ID: <{message_id}@{from domain}>`, RFC 8058 one-click unsubscribe headers and,
    given a key, a relaxed/relaxed rsa-sha256 DKIM-Signature covering them. Raises
    `InvalidInput` for a header that would not be safe (CR/LF, a non-https unsubscribe URL)."""
    if not _ATOM.match(message_id):
        raise InvalidInput(f"message id {message_id!r} cannot be a Message-ID", field="message_id")
    domain = _domain_of(from_addr, "from_addr")
    _domain_of(to_addr, "to")
    if not unsubscribe_url.startswith("https://") or _URL_FORBIDDEN.search(unsubscribe_url):
        raise InvalidInput("one-click unsubscribe needs an https URL", field="unsubscribe_url")
    targets = [unsubscribe_url]
    if unsubscribe_mailto is not None:
        if not unsubscribe_mailto.startswith("mailto:") or _URL_FORBIDDEN.search(
            unsubscribe_mailto
        ):
            raise InvalidInput("not a mailto URL", field="unsubscribe_mailto")
        targets.append(unsubscribe_mailto)
    msg = EmailMessage(policy=_BODY_POLICY)
    try:
        msg["From"] = from_addr
        msg["To"] = to_addr
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now or datetime.now(UTC))
        msg["Message-ID"] = f"<{message_id}@{domain}>"
        msg["List-Unsubscribe"] = ", ".join(f"<{t}>" for t in targets)
        msg["List-Unsubscribe-Post"] = ONE_CLICK
    except ValueError as exc:  # CR or LF in a header: an injection attempt or a bug
        raise InvalidInput(f"unsafe header value: {exc}", field="headers") from exc
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    raw = msg.as_bytes(policy=_WIRE_POLICY)
    if dkim is None:
        return raw
    return sign_dkim(raw, dkim)


def sign_dkim(raw: bytes, key: DkimKey) -> bytes:
    """`raw` with a DKIM-Signature (rsa-sha256, relaxed/relaxed) prepended."""
    signature = dkimpy.sign(
        raw,
        key.selector.encode(),
        key.domain.encode(),
        key.private_key_pem,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=b"rsa-sha256",
        include_headers=[h.encode() for h in SIGNED_HEADERS + OVERSIGNED_HEADERS],
    )
    return bytes(signature) + raw


# --- what providers answer ----------------------------------------------------------------

BounceKind = Literal["hard", "soft"]
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_SOFT_TEXT = re.compile(
    r"mailbox (is )?full|over ?quota|quota exceeded|insufficient (system )?storage"
    r"|try again later|temporar",
    re.IGNORECASE,
)


def classify_smtp_reply(code: int, enhanced: str | None, text: str) -> BounceKind:
    """Whether a refused recipient is gone for good ("hard": suppress the address) or may
    take mail later ("soft": retry with backoff). First match wins:

    | reply                                         | kind | why                          |
    |-----------------------------------------------|------|------------------------------|
    | enhanced 4.x.x, or basic 4xx without one      | soft | transient by definition      |
    | 5.2.2 (mailbox full), or 552 without enhanced | soft | RFC 5321 §4.5.3.1.10, quota  |
    | 5.7.x (policy: spam block, DMARC, rate)       | soft | about us, not the address    |
    | basic 5xx whose text says full/quota/try again| soft | servers that omit 4.x.x/5.x.x|
    | any other 5.x.x or 5xx (5.1.1 user unknown …) | hard | the address does not take mail|
    | anything else (unexpected codes)              | soft | never suppress on a guess    |

    `enhanced` (RFC 3463) is read from the start of `text` when not given; its class wins
    over the basic code's when both are present.
    """
    if enhanced is None:
        m = _ENHANCED.match(text)
        enhanced = f"{m[1]}.{m[2]}.{m[3]}" if m else None
    if enhanced is not None:
        cls, subject, detail = [*enhanced.split("."), "", ""][:3]
        if cls == "4":
            return "soft"
        if cls == "5":
            if (subject, detail) == ("2", "2") or subject == "7":
                return "soft"
            return "hard"
    if 400 <= code < 500:
        return "soft"
    if 500 <= code < 600:
        if code == 552 or _SOFT_TEXT.search(text):
            return "soft"
        return "hard"
    return "soft"


CLARION_ID_ARG = "clarion_id"  # the custom arg that carries our message id through SendGrid
_DROPPED = {"Bounced Address": "bounce:hard", "Spam Reporting Address": "spamreport"}


def receipt_from_sendgrid_event(
    event: Mapping[str, object], *, received_at: datetime
) -> Receipt | None:
    """The receipt one SendGrid Event Webhook event means, or None for events that carry no
    delivery news (open, click, SendGrid's own unsubscribe tracking) or are not ours (no
    `clarion_id` custom arg). An event without a timestamp happened at `received_at`.

    | event      | status      | error_code                                             |
    |------------|-------------|--------------------------------------------------------|
    | processed  | accepted    | –                                                      |
    | deferred   | sent        | `deferred` (SendGrid keeps trying for 72 h)            |
    | delivered  | delivered   | –                                                      |
    | bounce     | undelivered | `bounce:hard`, or `bounce:soft` (type blocked, or a    |
    |            |             | reply `classify_smtp_reply` calls soft)                 |
    | dropped    | failed      | `bounce:hard` / `spamreport` when SendGrid dropped it  |
    |            |             | for an earlier bounce / complaint, else `dropped`      |
    | spamreport | delivered   | `spamreport` (a complaint: suppress the address)       |
    """
    message_id = event.get(CLARION_ID_ARG)
    kind = event.get("event")
    if not isinstance(message_id, str) or not message_id or not isinstance(kind, str):
        return None
    error: str | None = None
    if kind == "processed":
        status = "accepted"
    elif kind == "deferred":
        status, error = "sent", "deferred"
    elif kind == "delivered":
        status = "delivered"
    elif kind == "bounce":
        status = "undelivered"
        if event.get("type") == "blocked":
            error = "bounce:soft"
        else:
            reason = str(event.get("reason") or "")
            enhanced = event.get("status")
            code_m = re.match(r"\s*(\d{3})\b", reason)
            error = "bounce:" + classify_smtp_reply(
                int(code_m[1]) if code_m else 550,
                enhanced if isinstance(enhanced, str) and enhanced else None,
                reason,
            )
    elif kind == "dropped":
        status, error = "failed", _DROPPED.get(str(event.get("reason")), "dropped")
    elif kind == "spamreport":
        status, error = "delivered", "spamreport"
    else:
        return None
    sg_id = event.get("sg_message_id")
    ts = event.get("timestamp")  # Unix seconds; `received_at` when an event lacks it
    occurred_at = received_at
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        occurred_at = datetime.fromtimestamp(ts, UTC)
    return Receipt(
        message_id=message_id,
        status=status,
        occurred_at=occurred_at,
        provider_message_id=sg_id if isinstance(sg_id, str) else None,
        error_code=error,
    )
