"""A Twilio-compatible front end for the simulator: the Messages API, IncomingPhoneNumbers
(where a number's inbound messages go), Lookup v2, and signed form-encoded callbacks.

The simulator plays Twilio here, so its signing code is written from Twilio's description,
not shared with Clarion's adapter: the tests check both against Twilio's own validator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clarion.sim import network
from clarion.sim.state import Channel, OverLimit, SimState
from clarion.sim.wire import SimInbound, SimReceipt

API_VERSION = "2010-04-01"
MAX_BODY_CHARS = 1600
_ERRORS_URL = "https://www.twilio.com/docs/errors/"
_HASHES = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}


class _Target(msgspec.Struct, frozen=True):
    """A message's receipt target: its StatusCallback, and what Twilio's callbacks repeat
    about it (the simulator's receipts carry neither number)."""

    url: str
    to: str
    sender: str


_encode_target = msgspec.json.Encoder().encode
_decode_target = msgspec.json.Decoder(_Target).decode


def sign(token: str, url: str, params: Mapping[str, str], algorithm: str = "HMAC_SHA1") -> str:
    """X-Twilio-Signature: Base64(HMAC(token, url + every param's name and value, in name
    order)), HMAC-SHA1 unless the request says otherwise."""
    text = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), text.encode(), _HASHES[algorithm]).digest()
    return base64.b64encode(digest).decode()


def _error(code: int, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """An error as Twilio words it."""
    body = {"code": code, "message": message, "more_info": f"{_ERRORS_URL}{code}", "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


def _authorized(request: Request, sid: str, token: str) -> bool:
    """HTTP Basic auth with the account's sid and auth token, for the account in the path."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{sid}:{token}".encode()
    account = request.path_params.get("sid", sid)
    return scheme.lower() == "basic" and hmac.compare_digest(given, expected) and account == sid


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))


def routes(state: SimState, *, over_limit: OverLimit | None = None) -> list[Route]:
    """The Twilio-compatible endpoints; `over_limit` is the account's throughput bucket
    (shared with the simulator's other front ends), answered with 429 as Twilio does."""
    config = state.config
    by_sid: dict[str, str] = {}  # a message's sid → our id for it (what its resource is read by)

    def refused(request: Request) -> Response | None:
        if _authorized(request, config.twilio_account_sid, token_of(state)):
            return None
        return _error(20003, "Authenticate", 401)

    async def create_message(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        state.counts["requests"] += 1
        wait_s = over_limit(1) if over_limit is not None else None
        if wait_s is not None:
            state.counts["throttled"] = state.counts.get("throttled", 0) + 1
            return _error(
                20429, "Too Many Requests", 429, {"Retry-After": f"{max(wait_s, 0.05):.2f}"}
            )
        form = await _form(request)
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return _error(21604, "A 'To' phone number is required.", 400)
        if not sender:
            return _error(21603, "A 'From' phone number is required.", 400)
        if not body:
            return _error(21602, "Message body is required.", 400)
        if len(body) > MAX_BODY_CHARS:
            return _error(
                21617, "The concatenated message body exceeds the 1600 character limit.", 400
            )
        callback = form.get("StatusCallback", "")
        sid = "SM" + uuid.uuid4().hex
        # Our message id travels in the callback URL; without one, the sid stands in.
        mid = parse_qs(urlsplit(callback).query).get("mid", [sid])[0]
        target = _encode_target(_Target(callback, to, sender)).decode()
        result = state.submit(
            mid, to, sender, body, channel="twilio", target=target, provider_id=sid,
            idempotent=False,
        )  # fmt: skip
        if result.status != "accepted":
            code = int(result.error_code or 21211)
            return _error(code, f"The 'To' number {to} is not a valid phone number.", 400)
        by_sid[sid] = mid
        now = format_datetime(datetime.now(UTC), usegmt=True)
        resource = {
            "sid": sid,
            "account_sid": config.twilio_account_sid,
            "api_version": API_VERSION,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "messaging_service_sid": None,
            "uri": f"/{API_VERSION}/Accounts/{config.twilio_account_sid}/Messages/{sid}.json",
        }
        return JSONResponse(resource, status_code=201)

    async def fetch_message(request: Request) -> Response:
        """A message resource by its sid: its current status (what reconciliation asks)."""
        if (denied := refused(request)) is not None:
            return denied
        sid = request.path_params["message_sid"]
        mid = by_sid.get(sid)
        if mid is None:
            return _error(20404, f"The requested resource {sid} was not found", 404)
        last = state.status_of(mid)
        return JSONResponse(
            {
                "sid": sid,
                "status": last.status if last else "queued",
                "error_code": int(last.error_code) if last and last.error_code else None,
            }
        )

    async def configure_number(request: Request) -> Response:
        """Point a number's incoming messages at `SmsUrl` (Twilio's number configuration)."""
        if (denied := refused(request)) is not None:
            return denied
        form = await _form(request)
        number, sms_url = form.get("PhoneNumber", ""), form.get("SmsUrl", "")
        # Not `network.is_invalid`: senders may be fictional 555-01XX numbers.
        if not (number.startswith("+") and number[1:].isdigit()):
            return _error(21421, "PhoneNumber is invalid.", 400)
        if not sms_url:
            return _error(21502, "SmsUrl is required.", 400)
        state.inbound_urls[number] = ("twilio", sms_url)
        sid = "PN" + hashlib.blake2b(number.encode(), digest_size=16).hexdigest()
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": config.twilio_account_sid,
                "phone_number": number,
                "sms_url": sms_url,
                "sms_method": "POST",
                "capabilities": {"sms": True, "mms": False, "voice": False},
            },
            status_code=201,
        )

    async def lookup(request: Request) -> Response:
        """Lookup v2: validity, and with `Fields=line_type_intelligence` the carrier."""
        if (denied := refused(request)) is not None:
            return denied
        number = request.path_params["e164"]
        state.counts["lookups"] = state.counts.get("lookups", 0) + 1
        valid = not network.is_invalid(number)
        fields = request.query_params.get("Fields", "").split(",")
        line = None
        if valid and "line_type_intelligence" in fields:
            line = {
                "carrier_name": network.carrier_for(number).name,
                "type": "mobile",
                "mobile_country_code": "310",
                "mobile_network_code": None,
                "error_code": None,
            }
        return JSONResponse(
            {
                "calling_country_code": "1",
                "country_code": "US" if valid else None,
                "phone_number": number,
                "valid": valid,
                "validation_errors": [] if valid else ["NOT_A_NUMBER"],
                "line_type_intelligence": line,
                "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{number}",
            }
        )

    accounts = f"/{API_VERSION}/Accounts/{{sid}}"
    return [
        Route(f"{accounts}/Messages.json", create_message, methods=["POST"]),
        Route(f"{accounts}/Messages/{{message_sid}}.json", fetch_message, methods=["GET"]),
        Route(f"{accounts}/IncomingPhoneNumbers.json", configure_number, methods=["POST"]),
        Route("/v2/PhoneNumbers/{e164}", lookup, methods=["GET"]),
    ]


def token_of(state: SimState) -> str:
    """The account's auth token: its own setting, else the simulator's secret."""
    return state.config.twilio_auth_token or state.config.secret


def status_params(account_sid: str, target: str, receipt: SimReceipt) -> dict[str, str]:
    """The form Twilio posts to a StatusCallback for one status of one message."""
    t = _decode_target(target)
    params = {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": receipt.provider_id,
        "SmsSid": receipt.provider_id,
        "MessageStatus": receipt.status,
        "SmsStatus": receipt.status,
        "To": t.to,
        "From": t.sender,
    }
    if receipt.status in ("undelivered", "failed"):
        params["ErrorCode"] = receipt.error_code or "30008"
    if receipt.status in ("delivered", "undelivered"):
        params["RawDlrDoneDate"] = receipt.occurred_at.astimezone(UTC).strftime("%y%m%d%H%M")
    return params


def inbound_params(account_sid: str, message: SimInbound) -> dict[str, str]:
    """The form Twilio posts to a number's SmsUrl for an incoming message."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": message.id,
        "SmsMessageSid": message.id,
        "SmsSid": message.id,
        "SmsStatus": "received",
        "From": message.from_,
        "To": message.to,
        "Body": message.body,
        "NumMedia": "0",
        "NumSegments": "1",
    }


def channel(state: SimState, client: httpx.AsyncClient) -> Channel:
    """Twilio's way back: one signed form POST per status to the message's StatusCallback
    (none when it had none), and one per incoming message to the number's SmsUrl."""
    config = state.config

    async def post(url: str, params: dict[str, str]) -> int:
        headers = {"X-Twilio-Signature": sign(token_of(state), url, params)}
        resp = await client.post(url, data=params, headers=headers)
        return resp.status_code

    async def receipts(target: str, batch: list[SimReceipt]) -> bool:
        url = _decode_target(target).url
        if not url:
            return True  # no StatusCallback: Twilio tells no one
        try:
            for receipt in batch:
                params = status_params(config.twilio_account_sid, target, receipt)
                if await post(url, params) >= 300:
                    return False
        except httpx.HTTPError:
            return False
        return True

    async def inbound(url: str, message: SimInbound) -> int:
        try:
            return await post(url, inbound_params(config.twilio_account_sid, message))
        except httpx.HTTPError:
            return 502  # the webhook did not answer

    return Channel(receipts, inbound, batch=1)
