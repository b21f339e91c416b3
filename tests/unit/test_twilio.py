"""The Twilio adapter and the simulator's Twilio front end, checked against Twilio's own
request validator (the `twilio` package): signatures, status mapping, webhook parsing, and
how API answers become send results (over an in-memory HTTP transport)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qs, parse_qsl, urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from clarion.domain.messages import SendResult
from clarion.domain.records import InboundMessage, OutboundMessage
from clarion.errors import ConfigurationError, ForgedWebhook, InvalidInput, ProviderError
from clarion.providers.twilio import TwilioProvider
from clarion.sim import twilio_api
from clarion.sim.state import SimConfig, SimState
from clarion.sim.wire import SimInbound, SimReceipt

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "unit-auth-token-0123456789abcdef"
PUBLIC = "https://clarion.example.com"
STATUS_URL = f"{PUBLIC}/webhooks/twilio/status?mid=m-1"
INBOUND_URL = f"{PUBLIC}/webhooks/twilio/inbound"
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = "X-Twilio-Webhooks-Signature-Settings"


def make(**kwargs: object) -> TwilioProvider:
    options: dict[str, object] = {"public_url": PUBLIC, "clock": lambda: AT, **kwargs}
    return TwilioProvider(SID, TOKEN, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def provider() -> Iterator[TwilioProvider]:
    """One provider for the parsing tests (parsing does no I/O)."""
    p = make(shared_keys={"webhooks_sharedkey_1": "shared-secret"})
    yield p
    asyncio.run(p.aclose())


def status_form(**overrides: str) -> dict[str, str]:
    form = {
        "AccountSid": SID,
        "ApiVersion": "2010-04-01",
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "To": "+12125557788",
        "From": "+15125550100",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v != "<absent>"}


def signed(
    url: str, form: dict[str, str], token: str = TOKEN, algorithm: str | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a webhook as Twilio signs it (computed by Twilio's library)."""
    signature = RequestValidator(token).compute_signature(url, form, algorithm)
    headers = {"X-Twilio-Signature": signature}
    if algorithm is not None:
        headers[SETTINGS] = f"algorithm={algorithm}"
    return headers, urlencode(form).encode()


# -- signatures -----------------------------------------------------------------------------


def test_a_status_callback_signed_by_twilios_validator_parses_into_one_receipt(
    provider: TwilioProvider,
) -> None:
    form = status_form(MessageStatus="undelivered", ErrorCode="30003")
    headers, body = signed(STATUS_URL, form)
    batch_id, (receipt,) = provider.parse_status_webhook(STATUS_URL, headers, body)
    assert batch_id == f"{'SM' + 'a' * 32}:undelivered"
    assert (receipt.message_id, receipt.status, receipt.error_code) == (
        "m-1",
        "undelivered",
        "30003",
    )
    assert receipt.provider_message_id == "SM" + "a" * 32
    assert receipt.occurred_at == AT


def test_the_sha256_variant_named_in_the_settings_header_verifies(
    provider: TwilioProvider,
) -> None:
    headers, body = signed(STATUS_URL, status_form(), algorithm="HMAC_SHA256")
    _, (receipt,) = provider.parse_status_webhook(STATUS_URL, headers, body)
    assert receipt.status == "delivered"


def test_a_sha1_signature_claiming_sha256_is_forged(provider: TwilioProvider) -> None:
    headers, body = signed(STATUS_URL, status_form())
    headers[SETTINGS] = "algorithm=HMAC_SHA256"
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook(STATUS_URL, headers, body)


def test_an_unsupported_algorithm_is_forged(provider: TwilioProvider) -> None:
    headers, body = signed(STATUS_URL, status_form())
    headers[SETTINGS] = "algorithm=HMAC_MD5"
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook(STATUS_URL, headers, body)


def test_a_webhook_signed_with_a_shared_key_verifies_with_that_keys_secret(
    provider: TwilioProvider,
) -> None:
    form = status_form()
    headers, body = signed(STATUS_URL, form, token="shared-secret", algorithm="HMAC_SHA256")
    headers[SETTINGS] = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    _, (receipt,) = provider.parse_status_webhook(STATUS_URL, headers, body)
    assert receipt.status == "delivered"
    headers[SETTINGS] = "key=webhooks_sharedkey_2,algorithm=HMAC_SHA256"  # not ours
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook(STATUS_URL, headers, body)
    # A request that names a key is checked with that key only, never the auth token.
    headers, body = signed(STATUS_URL, form, algorithm="HMAC_SHA256")
    headers[SETTINGS] = "key=webhooks_sharedkey_2,algorithm=HMAC_SHA256"
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook(STATUS_URL, headers, body)


def test_a_json_body_is_verified_through_its_body_sha256_query_parameter(
    provider: TwilioProvider,
) -> None:
    text = json.dumps(status_form(MessageStatus="sent"))
    url = f"{STATUS_URL}&bodySHA256={hashlib.sha256(text.encode()).hexdigest()}"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    assert RequestValidator(TOKEN).validate(url, text, signature)  # Twilio's own reading
    headers = {"X-Twilio-Signature": signature}
    _, (receipt,) = provider.parse_status_webhook(url, headers, text.encode())
    assert (receipt.message_id, receipt.status) == ("m-1", "sent")
    tampered = text.replace('"sent"', '"delivered"').encode()
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook(url, headers, tampered)


@pytest.mark.parametrize(
    ("signed_url", "called_url"),
    [
        # Twilio signs with or without the default port; the validator accepts both.
        (f"{PUBLIC}:443/webhooks/twilio/status?mid=m-1", STATUS_URL),
        (STATUS_URL, f"{PUBLIC}:443/webhooks/twilio/status?mid=m-1"),
        (
            "http://hooks.internal/webhooks/twilio/status",
            "http://hooks.internal:80/webhooks/twilio/status",
        ),
        # Behind a proxy the app sees an internal address; Twilio signed the public one.
        (STATUS_URL, "http://10.0.0.5:8080/webhooks/twilio/status?mid=m-1"),
    ],
)
def test_the_url_variants_twilio_may_have_signed_verify(
    provider: TwilioProvider, signed_url: str, called_url: str
) -> None:
    headers, body = signed(signed_url, status_form())
    _, (receipt,) = provider.parse_status_webhook(called_url, headers, body)
    assert receipt.status == "delivered"


def test_repeated_parameters_are_signed_as_twilios_validator_signs_them(
    provider: TwilioProvider,
) -> None:
    class MultiDict(dict[str, str]):
        def getall(self, name: str) -> list[str]:
            return pairs[name]

    pairs = {k: [v] for k, v in status_form().items()}
    pairs["Extra"] = ["b", "a", "b"]
    signature = RequestValidator(TOKEN).compute_signature(STATUS_URL, MultiDict(pairs))
    body = urlencode([(k, v) for k, vs in pairs.items() for v in vs]).encode()
    headers = {"x-twilio-signature": signature}  # any header case
    _, (receipt,) = provider.parse_status_webhook(STATUS_URL, headers, body)
    assert receipt.status == "delivered"


@pytest.mark.parametrize(
    "forge",
    [
        "tampered param",
        "tampered mid",
        "added param",
        "wrong token",
        "missing header",
        "empty header",
    ],
)
def test_a_webhook_that_twilio_did_not_sign_as_received_is_forged(
    provider: TwilioProvider, forge: str
) -> None:
    form = status_form(MessageStatus="undelivered", ErrorCode="30003")
    url = STATUS_URL
    headers, body = signed(url, form, token="another-token" if forge == "wrong token" else TOKEN)
    if forge == "tampered param":
        body = urlencode({**form, "MessageStatus": "delivered"}).encode()
    elif forge == "tampered mid":
        url = STATUS_URL.replace("m-1", "m-2")
    elif forge == "added param":
        body += b"&ErrorCode=30005"
    elif forge == "missing header":
        headers = {}
    elif forge == "empty header":
        headers = {"X-Twilio-Signature": ""}
    with pytest.raises(ForgedWebhook):
        provider.parse_status_webhook(url, headers, body)


def test_an_inbound_webhook_is_verified_the_same_way(provider: TwilioProvider) -> None:
    form = {"MessageSid": "SMin", "From": "+12125557788", "To": "+15125550100", "Body": "stop"}
    headers, body = signed(INBOUND_URL, form)
    with pytest.raises(ForgedWebhook):
        provider.parse_inbound_webhook(INBOUND_URL, headers, body.replace(b"stop", b"STAY"))
    with pytest.raises(ForgedWebhook):
        provider.parse_inbound_webhook(INBOUND_URL, {}, body)


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("twilio_status", "status"),
    [
        ("queued", "accepted"),
        ("accepted", "accepted"),
        ("scheduled", "accepted"),
        ("sending", "accepted"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "delivered"),
        ("undelivered", "undelivered"),
        ("failed", "failed"),
        ("canceled", "failed"),
    ],
)
def test_twilio_statuses_map_to_clarion_statuses(
    provider: TwilioProvider, twilio_status: str, status: str
) -> None:
    headers, body = signed(STATUS_URL, status_form(MessageStatus=twilio_status))
    batch_id, (receipt,) = provider.parse_status_webhook(STATUS_URL, headers, body)
    assert receipt.status == status
    assert batch_id.endswith(f":{twilio_status}")


@pytest.mark.parametrize(
    "form",
    [
        status_form(MessageStatus="<absent>"),
        status_form(MessageStatus=""),
        status_form(MessageStatus="teleported"),
        status_form(MessageSid="<absent>"),
    ],
)
def test_a_signed_but_incomplete_status_callback_is_invalid(
    provider: TwilioProvider, form: dict[str, str]
) -> None:
    headers, body = signed(STATUS_URL, form)
    with pytest.raises(InvalidInput):
        provider.parse_status_webhook(STATUS_URL, headers, body)


def test_a_callback_without_mid_is_matched_by_sid_and_error_code_zero_is_no_error(
    provider: TwilioProvider,
) -> None:
    url = f"{PUBLIC}/webhooks/twilio/status"
    headers, body = signed(url, status_form(ErrorCode="0"))
    _, (receipt,) = provider.parse_status_webhook(url, headers, body)
    assert (receipt.message_id, receipt.error_code) == ("", None)
    assert receipt.provider_message_id == "SM" + "a" * 32


def test_a_body_that_is_not_utf8_is_invalid(provider: TwilioProvider) -> None:
    with pytest.raises(InvalidInput):
        provider.parse_status_webhook(STATUS_URL, {"X-Twilio-Signature": "x"}, b"Body=\xff")


def test_an_inbound_form_becomes_an_inbound_message(provider: TwilioProvider) -> None:
    form = {
        "MessageSid": "SMinbound1",
        "From": "+12125557788",
        "To": "+15125550100",
        "Body": "Stop & go + “quotes”",
        "NumMedia": "0",
    }
    headers, body = signed(INBOUND_URL, form)
    batch_id, messages = provider.parse_inbound_webhook(INBOUND_URL, headers, body)
    assert batch_id == "SMinbound1"
    assert messages == [
        InboundMessage(
            provider_message_id="SMinbound1",
            from_="+12125557788",
            to="+15125550100",
            body="Stop & go + “quotes”",
            received_at=AT,
        )
    ]
    incomplete = {k: v for k, v in form.items() if k != "From"}
    headers, body = signed(INBOUND_URL, incomplete)
    with pytest.raises(InvalidInput):
        provider.parse_inbound_webhook(INBOUND_URL, headers, body)


# -- the simulator's signing ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HMAC_SHA1", "HMAC_SHA256"])
def test_the_simulators_signatures_validate_with_twilios_validator(algorithm: str) -> None:
    receipt = SimReceipt("m-1", "SMabc", "undelivered", AT, "30005", "AT&T")
    target = twilio_api._encode_target(
        twilio_api._Target(STATUS_URL, "+12125557788", "+15125550100")
    ).decode()
    status = twilio_api.status_params(SID, target, receipt)
    assert (status["MessageStatus"], status["ErrorCode"], status["To"]) == (
        "undelivered",
        "30005",
        "+12125557788",
    )
    inbound = twilio_api.inbound_params(
        SID, SimInbound("MO1", "+12125557788", "+15125550100", "Stop & go", AT)
    )
    validator = RequestValidator(TOKEN)
    for url, params in ((STATUS_URL, status), (INBOUND_URL, inbound)):
        signature = twilio_api.sign(TOKEN, url, params, algorithm)
        assert validator.validate(url, params, signature, algorithm)
        assert not validator.validate(url, {**params, "Body": "changed"}, signature, algorithm)
        assert not RequestValidator("other").validate(url, params, signature, algorithm)


async def test_the_simulators_channel_posts_signed_forms_and_reports_failed_posts() -> None:
    posted: list[httpx.Request] = []
    answer = 200

    async def handler(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(answer)

    state = SimState(
        config=SimConfig(twilio_account_sid=SID, twilio_auth_token=TOKEN), rng=random.Random(1)
    )
    target = twilio_api._encode_target(
        twilio_api._Target(STATUS_URL, "+12125557788", "+15125550100")
    ).decode()
    receipt = SimReceipt("m-1", "SMabc", "sent", AT, None, "AT&T")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        channel = twilio_api.channel(state, client)
        assert await channel.receipts(target, [receipt])
        answer = 500
        assert not await channel.receipts(target, [receipt])  # the simulator retries it
        no_callback = twilio_api._encode_target(twilio_api._Target("", "+1", "+1")).decode()
        assert await channel.receipts(no_callback, [receipt])
    assert len(posted) == 2
    params = dict(parse_qsl(posted[0].content.decode()))
    assert params["MessageStatus"] == "sent"
    assert params["AccountSid"] == SID
    assert str(posted[0].url) == STATUS_URL
    signature = posted[0].headers["x-twilio-signature"]
    assert RequestValidator(TOKEN).validate(STATUS_URL, params, signature)


# -- credentials ----------------------------------------------------------------------------


def test_the_auth_token_is_never_in_the_providers_repr() -> None:
    p = make()
    try:
        assert TOKEN not in repr(p)
        assert TOKEN not in str(p)
        assert SID in repr(p)
    finally:
        asyncio.run(p.aclose())


def test_from_env_names_the_missing_variable_and_reads_the_rest() -> None:
    with pytest.raises(ConfigurationError, match="CLARION_TWILIO_AUTH_TOKEN"):
        TwilioProvider.from_env(PUBLIC, {"CLARION_TWILIO_ACCOUNT_SID": SID})
    env = {
        "CLARION_TWILIO_ACCOUNT_SID": SID,
        "CLARION_TWILIO_AUTH_TOKEN": TOKEN,
        "CLARION_TWILIO_API_BASE": "http://127.0.0.1:9",
        "CLARION_TWILIO_SHARED_KEYS": "k1=s1, k2=s=2",
    }
    p = TwilioProvider.from_env(PUBLIC, env)
    try:
        assert p.account_sid == SID
        assert "http://127.0.0.1:9" in repr(p)
        form = status_form()
        headers, body = signed(STATUS_URL, form, token="s=2", algorithm="HMAC_SHA256")
        headers[SETTINGS] = "key=k2,algorithm=HMAC_SHA256"
        assert p.parse_status_webhook(STATUS_URL, headers, body)[1][0].status == "delivered"
    finally:
        asyncio.run(p.aclose())


# -- sending and lookups over an in-memory transport ----------------------------------------

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def message(i: int, to: str | None = None) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"m-{i}", subscriber_id=i, to=to or f"+1212555{i:04d}", body="hi", segments=1
    )


async def send_with(handler: Handler, *messages: OutboundMessage, **kw: object) -> list[SendResult]:
    p = make(transport=httpx.MockTransport(handler), **kw)
    try:
        return list(await p.send("+15125550100", messages))
    finally:
        await p.aclose()


def twilio_error(status: int, code: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": f"e{code}"}, headers=headers)


async def test_each_message_is_one_authenticated_form_post_with_its_status_callback() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        form = parse_qs(request.content.decode())
        return httpx.Response(201, json={"sid": "SM-" + form["To"][0], "status": "queued"})

    results = await send_with(handler, message(1), message(2))
    assert [(r.message_id, r.accepted, r.provider_message_id) for r in results] == [
        ("m-1", True, "SM-+12125550001"),
        ("m-2", True, "SM-+12125550002"),
    ]
    first = seen[0]
    assert first.url.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert first.headers["authorization"] == httpx.BasicAuth(SID, TOKEN)._auth_header
    form = parse_qs(first.content.decode())
    assert form["From"] == ["+15125550100"]
    assert form["Body"] == ["hi"]
    assert form["StatusCallback"] == [f"{PUBLIC}/webhooks/twilio/status?mid=m-1"]


async def test_answers_map_to_send_results() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        to = parse_qs(request.content.decode())["To"][0]
        match to[-1]:
            case "1":
                return twilio_error(400, 21211)
            case "2":
                return twilio_error(400, 21610)
            case "3":
                return twilio_error(429, 20429, **{"Retry-After": "2.5"})
            case "4":
                return httpx.Response(503, text="upstream down")
            case "5":
                raise httpx.ConnectError("refused", request=request)
            case "6":
                raise httpx.ReadTimeout("no answer", request=request)
            case _:
                return httpx.Response(201, content=b"not json")

    results = await send_with(handler, *(message(i) for i in range(1, 8)))
    got = [(r.accepted, r.retry, r.throttled, r.error_code, r.retry_after_s) for r in results]
    assert got == [
        (False, False, False, "21211", None),
        (False, False, False, "21610", None),
        (False, True, True, "20429", 2.5),
        (False, True, False, "503", None),
        (False, True, False, "network", None),
        (False, True, False, "no_answer", None),
        (True, False, False, None, None),
    ]


async def test_requests_in_flight_stay_within_the_concurrency_bound() -> None:
    in_flight, peak = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(201, json={"sid": "SMx"})

    results = await send_with(handler, *(message(i) for i in range(20)), concurrency=3)
    assert len(results) == 20
    assert peak == 3


async def test_refused_credentials_for_every_message_raise_a_provider_error() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return twilio_error(401, 20003)

    with pytest.raises(ProviderError, match="credentials"):
        await send_with(handler, message(1), message(2))


async def test_lookups_keep_known_carriers_and_leave_the_rest_out() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["Fields"] == "line_type_intelligence"
        number = request.url.path.rsplit("/", 1)[1]
        if number.endswith("1"):
            return httpx.Response(200, json={"line_type_intelligence": {"carrier_name": "AT&T"}})
        if number.endswith("2"):
            return httpx.Response(404, json={"code": 20404})
        if number.endswith("3"):
            return httpx.Response(200, json={"valid": False, "line_type_intelligence": None})
        return httpx.Response(500)

    p = make(transport=httpx.MockTransport(handler))
    try:
        found = await p.lookup_carriers(
            ["+12125550001", "+12125550002", "+12125550003", "+12125550004"]
        )
        assert found == {"+12125550001": "AT&T"}
        with pytest.raises(ProviderError):
            await p.lookup_carriers(["+12125550004", "+12125550014"])
    finally:
        await p.aclose()
