"""The provider webhooks (`POST /webhooks/{provider}/status|inbound`) under arbitrary input:
headers of any name and any byte (latin-1, very long, repeated, the signing headers among
them), bodies of any bytes, JSON of any shape, and bodies *validly signed* with the
account's secret, so the parsers behind the signature check are fuzzed too. The answer is
never a server error, and a webhook is accepted (200) only when it is validly signed.

Accounts: the simulator ("sim", Standard Webhooks signatures), Twilio ("twilio", signed by
Twilio's own `RequestValidator`, form and JSON bodies), and names no account has.

The app runs in-process (`httpx.ASGITransport`), with the `infra` fixture's real Postgres
and NATS (an accepted batch is published to the bus), and Hypothesis drives the async test
itself: pytest-asyncio runs each example in the test's event loop, the loop the pool and
the bus belong to, so one app serves every example. That is faster than a `clarion run`
process (no HTTP, no start-up) and as strict: the webhooks read nothing but the request, and
an exception inside the app (what a 500 is made of) propagates here with its traceback.
Over real HTTP a server refuses header bytes the app would never see (NUL, CR, LF), so
header values keep to what one passes: tab, visible ASCII and obs-text (0x80-0xff)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from clarion import bootstrap
from clarion.api.app import BODY_LIMITS, create_app
from clarion.providers.twilio import TwilioProvider
from clarion.sim.wire import signed_headers
from tests.conftest import SIM_SECRET

# With its port: the server's address in the ASGI scope, which a URL falls back to when the
# Host header is not a host (httpx leaves the port out, as None, for a URL without one).
BASE = "http://testserver:8000"
TWILIO_SID = "AC" + "7" * 32
TWILIO_TOKEN = "fuzz-auth-token"
# Every answer a webhook may give: accepted, malformed, forged, unknown provider, too large,
# unprocessable. Anything else (a 5xx above all) is a defect.
ANSWERS = {200, 400, 403, 404, 413, 422}
SIGNING_HEADERS = (
    "webhook-id", "webhook-timestamp", "webhook-signature",
    "x-twilio-signature", "x-twilio-webhooks-signature-settings",
)  # fmt: skip
# Names a client sets with a meaning of its own: the signing headers, the type of the body,
# and the host (the URL a Twilio signature covers is built from it).
MEANINGFUL_HEADERS = (*SIGNING_HEADERS, "content-type", "host")
CONTENT_TYPES = (
    "application/json", "application/json; charset=latin-1",
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "text/plain", "multipart/form-data; boundary=x", "*/*", "", "application/json\t;;;",
)  # fmt: skip

# -- headers -------------------------------------------------------------------------------

# Host headers that name no host (the app's URL is then its own address: a Twilio signature
# covers the URL).
NOT_HOSTS = ("[", "a:b", "h:99999", "[::1", "x@y:1", "é")

# Bytes a server passes in a header value: tab, visible ASCII, and obs-text (0x80-0xff).
_VALUE_BYTES = st.sampled_from([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
header_values = st.one_of(
    st.lists(_VALUE_BYTES, max_size=60).map(bytes),
    st.tuples(_VALUE_BYTES, st.integers(1, 200_000)).map(lambda b_n: bytes([b_n[0]]) * b_n[1]),
    st.sampled_from([b"v1,", b"v1,AAAA", b"0", b"99999999999999", b"-1", b" ", b"key=,algorithm="]),
    st.integers().map(lambda n: str(n).encode()),
    st.sampled_from(CONTENT_TYPES).map(str.encode),
    st.sampled_from(NOT_HOSTS).map(lambda h: h.encode("latin-1")),
)  # fmt: skip


def header_names(leaving_out: tuple[str, ...]) -> st.SearchStrategy[str]:
    framing = ("content-length", "transfer-encoding")  # the server's, not the client's
    any_token = st.from_regex(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}", fullmatch=True).filter(
        lambda n: n.lower() not in (*framing, *leaving_out)
    )
    meaningful = [n for n in MEANINGFUL_HEADERS if n not in leaving_out]
    return st.sampled_from(meaningful) | any_token if meaningful else any_token


def arbitrary_headers(
    *, leaving_out: tuple[str, ...] = ()
) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """Headers in any order, names repeated, `leaving_out` names kept out."""
    names = header_names(leaving_out).map(str.encode)
    return st.lists(st.tuples(names, header_values), max_size=8)


# -- bodies --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)  # fmt: skip
texts = st.text(max_size=60)


def _jsonish(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


# How deep to nest: past any recursion limit a parser may have, often (a uniform draw is
# mostly shallow).
depths = st.sampled_from([990, 1_000, 3_000, 100_000]) | st.integers(1, 100_000)
deeply_nested = depths.map(lambda n: b"[" * n + b"]" * n)
ids = st.text(min_size=1, max_size=40)
# Texts as they come, and those a header, a log line or a bus message id may choke on.
odd_texts = texts | st.sampled_from(["", " ", "a\r\nb", "\n", "\x00", "é", "\u2028", "x" * 201])
iso_times = st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat())


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` three times in four: a parser sees well-formed input often enough to get past
    its first check."""
    return st.one_of(good, good, good, bad)


def objects(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with `fields`; or, one time in four, each field well formed, any JSON
    value, or missing, and maybe one the parser does not know."""
    loose = st.fixed_dictionaries(
        {},
        optional={
            **{name: mostly(good, json_values) for name, good in fields.items()},
            "unknown": json_values,
        },
    )
    return mostly(st.fixed_dictionaries(fields), loose)


receipts = st.lists(
    objects({
        "message_id": mostly(ids, odd_texts),
        "provider_message_id": mostly(ids, odd_texts | st.none()),
        "status": mostly(st.sampled_from(["sent", "delivered", "undelivered", "queued"]),
                         odd_texts),
        "occurred_at": mostly(iso_times, odd_texts),
        "error_code": st.none() | odd_texts,
        "carrier": st.none() | odd_texts,
    }),
    max_size=5,
)  # fmt: skip
inbound_messages = st.lists(
    objects({
        "id": mostly(ids, odd_texts), "from": mostly(ids, odd_texts), "to": odd_texts,
        "body": odd_texts, "received_at": st.none() | mostly(iso_times, odd_texts),
    }),
    max_size=5,
)  # fmt: skip


def sim_posts(kind: str) -> st.SearchStrategy[bytes]:
    """The simulator's status (receipts) or inbound (messages) post, its parts well formed
    or not."""
    name, items = {"status": ("receipts", receipts), "inbound": ("messages", inbound_messages)}[
        kind
    ]
    return objects({"batch_id": mostly(ids, odd_texts), name: items}).map(_jsonish)


def many_receipts(n: int, *, error_code_chars: int = 0) -> bytes:
    """A well-formed status post of `n` receipts (near or past what one bus message
    carries: the app splits it), the last with an `error_code` of that many characters."""
    one = {"message_id": "m", "provider_message_id": "p", "status": "delivered",
           "occurred_at": "2026-11-25T18:00:00Z", "carrier": "Verizon"}  # fmt: skip
    receipts = [{**one, "message_id": f"m{i}"} for i in range(n)]
    receipts[-1]["error_code"] = "E" * error_code_chars
    return _jsonish({"batch_id": f"b{n}-{error_code_chars}", "receipts": receipts})


large_bodies = st.one_of(
    st.integers(1, 6_000).map(many_receipts),
    st.integers(1, 2 << 20).map(lambda n: many_receipts(1, error_code_chars=n)),
    st.just(b"x" * (BODY_LIMITS["/webhooks/"] + 1)),
)
any_body = st.one_of(
    st.binary(max_size=2_000),
    json_values.map(_jsonish),
    st.text(max_size=200).map(str.encode),
    deeply_nested,
    sim_posts("status"),
    sim_posts("inbound"),
    large_bodies,
)

# Twilio's form fields: those a status or inbound callback needs, and more of any name.
TWILIO_FIELDS = {
    "status": {"MessageSid": mostly(ids, odd_texts),
               "MessageStatus": mostly(st.sampled_from(["delivered", "failed", "read", "Sent"]),
                                       odd_texts),
               "ErrorCode": st.sampled_from(["0", "30003", ""]) | odd_texts},
    "inbound": {"MessageSid": mostly(ids, odd_texts), "From": mostly(ids, odd_texts),
                "To": mostly(ids, odd_texts), "Body": odd_texts},
}  # fmt: skip


def twilio_fields(kind: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    """A callback's fields as (name, value) pairs in any order, names repeated or not."""
    needed = st.fixed_dictionaries(TWILIO_FIELDS[kind]).map(lambda d: list(d.items()))
    names = mostly(texts, st.sampled_from(sorted(TWILIO_FIELDS[kind])))
    more = st.lists(st.tuples(names, odd_texts), max_size=3)
    return st.tuples(mostly(needed, st.just([])), more).flatmap(
        lambda n_m: st.permutations(n_m[0] + n_m[1])
    )


def twilio_json_bodies(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        twilio_fields(kind).map(lambda pairs: _jsonish(dict(pairs))),
        json_values.map(_jsonish),
        deeply_nested.map(lambda nested: b'{"Body": ' + nested + b"}"),
    )


def with_body_hash(url: str, body: bytes) -> str:
    """The URL Twilio calls (and signs) with a JSON body: the body's SHA-256 in its query."""
    return f"{url}{'&' if '?' in url else '?'}bodySHA256={hashlib.sha256(body).hexdigest()}"


# -- the webhook ---------------------------------------------------------------------------


class _MultiDict(dict[str, list[str]]):
    """Form parameters with every value of a name, read by `RequestValidator` as it reads
    a Flask request's."""

    def getall(self, name: str) -> list[str]:
        return self[name]


@dataclass(frozen=True)
class Webhook:
    """One request to a webhook, and whether it carries a valid signature."""

    url: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    provider: str
    signed: bool  # validly, now, with the account's secret

    def __repr__(self) -> str:  # a failure's report: long values cut short
        def cut(b: bytes) -> str:
            return repr(b[:300]) + (f"... ({len(b)} bytes)" if len(b) > 300 else "")

        headers = ", ".join(f"({k!r}, {cut(v)})" for k, v in self.headers)
        return (
            f"Webhook(url={self.url!r}, headers=[{headers}], body={cut(self.body)}, "
            f"signed={self.signed})"
        )


def _sim_signature(body: bytes, how: str, draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    msg_id = draw(st.from_regex(r"msg_[0-9A-Za-z]{1,40}", fullmatch=True))
    # Stale: more than the five minutes a signature is good for, in the past or the future.
    off_s = draw(st.sampled_from([-1, 1])) * draw(st.integers(301, 10**9))
    at_s = time.time() + (off_s if how == "stale" else 0)
    secret = "not-the-secret" if how == "other secret" else SIM_SECRET
    signed = signed_headers(secret, msg_id, body, at_s)
    if how == "valid" and draw(st.booleans()):  # Standard Webhooks: any one of several
        signed["webhook-signature"] = f"v1,{'A' * 44} {signed['webhook-signature']}"
    return [(k.encode(), v.encode()) for k, v in signed.items()]


@st.composite
def sim_webhooks(draw: st.DrawFn, kind: str) -> Webhook:
    body = draw(sim_posts(kind) | any_body)
    how = draw(st.sampled_from(["valid", "valid", "valid", "stale", "other secret", "unsigned"]))
    headers = [] if how == "unsigned" else _sim_signature(body, how, draw)
    extra = draw(arbitrary_headers(leaving_out=SIGNING_HEADERS if how == "valid" else ()))
    return Webhook(
        f"{BASE}/webhooks/sim/{kind}",
        draw(st.permutations(headers + extra)),
        body, "sim", signed=how == "valid",
    )  # fmt: skip


@st.composite
def twilio_webhooks(draw: st.DrawFn, kind: str) -> Webhook:
    """A form post (its parameters signed) or a JSON post (its hash in the signed URL), as
    Twilio's own `RequestValidator` signs them; or any body with any signature."""
    url = f"{BASE}/webhooks/twilio/{kind}"
    if draw(st.booleans()):
        url += "?" + urlencode({"mid": draw(texts)})
    shape = draw(st.sampled_from(["form", "json", "any"]))
    params = _MultiDict()
    if shape == "form":
        pairs = draw(twilio_fields(kind))
        body = urlencode(pairs).encode()
        for name, value in pairs:
            params.setdefault(name, []).append(value)
    elif shape == "json":
        body = draw(twilio_json_bodies(kind))
        url = with_body_hash(url, body)
    else:
        body = draw(any_body)
    how = draw(st.sampled_from(["valid", "valid", "other secret", "unsigned"]) if shape != "any"
               else st.just("unsigned"))  # fmt: skip
    headers: list[tuple[bytes, bytes]] = []
    if how != "unsigned":
        algorithm = draw(st.sampled_from(["HMAC_SHA1", "HMAC_SHA256"]))
        token = TWILIO_TOKEN if how == "valid" else "not-the-token"
        signature = RequestValidator(token).compute_signature(url, params, algorithm)
        headers.append((b"x-twilio-signature", signature.encode()))
        if algorithm != "HMAC_SHA1" or draw(st.booleans()):
            headers.append(
                (b"x-twilio-webhooks-signature-settings", f"algorithm={algorithm}".encode())
            )
    extra = draw(arbitrary_headers(leaving_out=MEANINGFUL_HEADERS if how == "valid" else ()))
    return Webhook(url, draw(st.permutations(headers + extra)), body, "twilio", how == "valid")


@st.composite
def unknown_provider_webhooks(draw: st.DrawFn, kind: str) -> Webhook:
    name = draw(st.text(min_size=1, max_size=30).filter(lambda n: n not in ("sim", "twilio")))
    headers, body = draw(arbitrary_headers()), draw(any_body)
    if draw(st.booleans()):  # signed as the simulator signs: still no such account
        signed = signed_headers(SIM_SECRET, "msg_1", body, time.time())
        headers += [(k.encode(), v.encode()) for k, v in signed.items()]
    return Webhook(f"{BASE}/webhooks/{quote(name, safe='')}/{kind}", headers, body, name, False)


# Each known account twice as often as an unknown name.
_MAKERS = {"sim": sim_webhooks, "twilio": twilio_webhooks, "unknown": unknown_provider_webhooks}
webhooks = st.tuples(
    st.sampled_from(["sim", "sim", "twilio", "twilio", "unknown"]),
    st.sampled_from(["status", "inbound"]),
).flatmap(lambda account_kind: _MAKERS[account_kind[0]](account_kind[1]))


def _deeply_nested_twilio_json() -> Webhook:
    """Found by this test: a validly signed JSON status callback nested 2,000 deep. Twilio's
    adapter reads it with `json.loads`, whose RecursionError is no ValueError: a 500."""
    body = b'{"MessageSid": ' + b"[" * 2_000 + b"]" * 2_000 + b"}"
    url = with_body_hash(f"{BASE}/webhooks/twilio/status", body)
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, {})
    return Webhook(url, [(b"x-twilio-signature", signature.encode())], body, "twilio", True)


# -- the app -------------------------------------------------------------------------------


@pytest.fixture
async def client(infra: bootstrap.Infra) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP app with a simulator account ("sim") and a Twilio account ("twilio")."""
    sim = bootstrap.build_provider(infra.settings)
    twilio = TwilioProvider(TWILIO_SID, TWILIO_TOKEN, public_url=infra.settings.public_url)
    app = create_app(infra.bus, {"sim": sim, "twilio": twilio}, pool=infra.pool)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as client:
            yield client
    finally:
        await sim.aclose()
        await twilio.aclose()


@settings(
    max_examples=300,
    deadline=None,
    # One app for every example, on purpose (see the module's docstring).
    suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)  # fmt: skip
@given(hook=webhooks)
@example(hook=_deeply_nested_twilio_json())
async def test_a_webhook_is_never_a_server_error_and_is_accepted_only_when_validly_signed(
    client: httpx.AsyncClient, hook: Webhook
) -> None:
    note(repr(hook))
    response = await client.post(hook.url, content=hook.body, headers=hook.headers)
    status = response.status_code
    known = hook.provider if hook.provider in ("sim", "twilio") else "unknown provider"
    event(f"{known}, {'validly signed' if hook.signed else 'not signed'}: {status}")
    assert status in ANSWERS, f"{status}: {response.text[:500]}"
    if hook.provider not in ("sim", "twilio"):  # 413 first: a body is measured as it comes
        assert status in (404, 413), response.text[:500]
    elif hook.signed:  # a valid signature is never taken for a forgery
        assert status in (200, 400, 413), response.text[:500]
    else:  # a forged or unsigned webhook is never accepted
        assert status in (400, 403, 413), response.text[:500]
