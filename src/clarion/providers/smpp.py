"""Adapter for an SMSC over SMPP 3.4 (bind_transceiver).

Sending: each message is one submit_sm, or UDH-concatenated parts when it is long; a pool of
`binds` sessions shares the load (the least busy bound one takes the next submit), each with
a window of `window` outstanding submits. A long message counts accepted when all its parts
are; its provider id is the first part's. If a later part cannot go (throttled, link down)
after a few quick retries, the message is reported failed (`smpp_partial`): its first parts
may already be on the handset, so sending it again would repeat them.

submit_sm_resp status → result: 0 → accepted; 0x58 throttled / 0x14 queue full → retry,
throttled; 0x0B, 0x0A (bad address) and 0x01 (bad length) → permanent rejection; any other →
retry. A submit written but never answered (the link dropped, a timeout) may have been taken
by the SMSC; as this provider has no idempotency key it is not sent again: it is answered
"not now" with `no_answer`, which the send stage records as of unknown fate.

Receiving: receipts and handset messages arrive as deliver_sm on the same sessions. They are
gathered for up to `callback_linger_s` (at most `callback_batch`) and handed to `on_receipts`
/ `on_inbound`; each deliver_sm_resp goes after that call returned (at-least-once: a crash
before it makes the SMSC deliver again). A receipt's `message_id` is "" and its
`provider_message_id` the SMSC id in canonical form (`smpp.pdu.canonical_id`): the
receipted_message_id TLV when present (written like submit_sm_resp ids, `submit_id_base`),
else the text's `id:` (written in `receipt_id_base`). Receipts about the second and later
parts of a long message are acknowledged and dropped while this process remembers the parts
(the last 100,000); a long message's status is its first part's. Parts of a long handset
message are joined before `on_inbound` (parts acknowledged before the last one arrives are
lost if the process dies in between).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from clarion.domain.messages import NO_ANSWER, SendResult
from clarion.domain.records import InboundMessage, OutboundMessage, Receipt
from clarion.errors import ConfigurationError, InvalidInput
from clarion.smpp.pdu import (
    ESM_DELIVERY_RECEIPT,
    ESM_TYPE_MASK,
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    ESME_RINVSRCADR,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    RD_FINAL,
    TAG_MESSAGE_STATE,
    TAG_RECEIPTED_MESSAGE_ID,
    DeliverSm,
    Reassembler,
    SubmitSm,
    address_of,
    canonical_id,
    concat_of,
    decode_text,
    encode_message,
    number_of,
    parse_receipt_date,
    parse_receipt_text,
    receipt_status,
)
from clarion.smpp.session import SmppSession, SubmitNotSent, SubmitUnanswered

log = logging.getLogger(__name__)

T = TypeVar("T")
ReceiptCallback = Callable[[list[Receipt]], Awaitable[None]]
InboundCallback = Callable[[list[InboundMessage]], Awaitable[None]]

THROTTLE_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
PERMANENT_STATUSES = frozenset({ESME_RINVDSTADR, ESME_RINVSRCADR, ESME_RINVMSGLEN})
_PART_RETRIES_S = (0.1, 0.2, 0.4, 0.8, 1.6)  # a later part of a long message, throttled
_REMEMBERED_PARTS = 100_000
_LATE_RECEIPT = timedelta(minutes=2)


def error_code(status: int) -> str:
    """Clarion's error code for an SMPP command status, e.g. "smpp:0x0b"."""
    return f"smpp:{status:#04x}"


def result_for(message_id: str, status: int, provider_message_id: str) -> SendResult:
    """The send result a submit_sm_resp status means (see the module doc)."""
    if status == ESME_ROK:
        return SendResult(
            message_id=message_id, accepted=True, provider_message_id=provider_message_id
        )
    detail = f"submit_sm_resp status {status:#x}"
    if status in THROTTLE_STATUSES:
        return SendResult(
            message_id=message_id, accepted=False, error_code=error_code(status),
            error_detail=detail, retry=True, throttled=True,
        )  # fmt: skip
    return SendResult(
        message_id=message_id,
        accepted=False,
        error_code=error_code(status),
        error_detail=detail,
        retry=status not in PERMANENT_STATUSES,
    )


class _Batcher(Generic[T]):
    """Hands items to `flush` in batches: what arrives within `linger_s`, at most `size`.
    `add` returns once its batch was flushed, or raises what `flush` raised."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], size: int, linger_s: float):
        self._flush, self._size, self._linger_s = flush, size, linger_s
        self._items: list[T] = []
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def add(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        if self._done is None:
            self._done = loop.create_future()
            self._done.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._timer = loop.call_later(self._linger_s, self._fire)
        done = self._done
        self._items.append(item)
        if len(self._items) >= self._size:
            self._fire()
        await asyncio.shield(done)

    def _fire(self) -> None:
        items, done = self._items, self._done
        self._items, self._done = [], None
        if self._timer is not None:
            self._timer.cancel()
        if done is None:
            return
        task = asyncio.create_task(self._run(items, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, items: list[T], done: asyncio.Future[None]) -> None:
        try:
            await self._flush(items)
        except Exception as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)

    async def aclose(self) -> None:
        self._fire()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class SmppProvider:
    """SMS through an SMSC over SMPP (see the module doc). `start()` binds; `send` also
    binds on first use. Receipts and handset messages only arrive while bound."""

    max_batch = 100
    idempotent = False
    # Receipts name the SMSC's id only: the aggregate stage matches them through the id map
    # written with the send answers (and keeps those that come first).
    reports_by_provider_id = True

    def __init__(
        self,
        *,
        host: str,
        port: int,
        system_id: str,
        password: str,
        on_receipts: ReceiptCallback,
        on_inbound: InboundCallback,
        name: str = "smpp",
        binds: int = 1,
        window: int = 10,
        system_type: str = "",
        enquire_link_s: float = 30.0,
        response_timeout_s: float = 10.0,
        bind_wait_s: float = 5.0,
        reconnect_min_s: float = 0.25,
        reconnect_max_s: float = 30.0,
        submit_id_base: int | None = None,
        receipt_id_base: int | None = None,
        registered_delivery: int = RD_FINAL,
        callback_batch: int = 100,
        callback_linger_s: float = 0.02,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        for base in (submit_id_base, receipt_id_base):
            if base not in (None, 10, 16):
                raise ConfigurationError(f"smpp: an id base is 10, 16 or unset, not {base}")
        self.name = name
        self.host, self.port, self.system_id = host, port, system_id
        self.submit_id_base, self.receipt_id_base = submit_id_base, receipt_id_base
        self.bind_wait_s = bind_wait_s
        self._registered_delivery = registered_delivery
        self._clock = clock
        new_session = functools.partial(
            SmppSession, host=host, port=port, system_id=system_id, password=password,
            on_deliver=self._on_deliver, system_type=system_type, window=window,
            enquire_link_s=enquire_link_s, response_timeout_s=response_timeout_s,
            reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_max_s,
        )  # fmt: skip
        self._sessions = [new_session(label=f"{name}#{i + 1}") for i in range(binds)]
        self._slots = asyncio.Semaphore(binds * window)
        self._refs = itertools.count()
        self._later_parts: OrderedDict[str, None] = OrderedDict()
        self._reassembler = Reassembler()
        self._receipts = _Batcher(on_receipts, callback_batch, callback_linger_s)
        self._inbound = _Batcher(on_inbound, callback_batch, callback_linger_s)

    def __repr__(self) -> str:
        return (
            f"SmppProvider(name={self.name!r}, host={self.host!r}, port={self.port},"
            f" system_id={self.system_id!r}, binds={len(self._sessions)})"
        )

    @classmethod
    def from_env(
        cls,
        *,
        on_receipts: ReceiptCallback,
        on_inbound: InboundCallback,
        environ: Mapping[str, str] | None = None,
    ) -> SmppProvider:
        """From CLARION_SMPP_HOST, _PORT, _SYSTEM_ID, _PASSWORD (required), and optionally
        _BINDS (1), _WINDOW (10), _SYSTEM_TYPE, _SUBMIT_ID_BASE and _RECEIPT_ID_BASE (10 or
        16; unset compares ids as given)."""
        env = os.environ if environ is None else environ

        def required(key: str) -> str:
            value = env.get(f"CLARION_SMPP_{key}", "")
            if not value:
                raise ConfigurationError(f"CLARION_SMPP_{key} is not set")
            return value

        def number(key: str, default: int | None) -> int | None:
            value = env.get(f"CLARION_SMPP_{key}", "")
            if not value:
                return default
            try:
                return int(value)
            except ValueError:
                raise ConfigurationError(f"CLARION_SMPP_{key} must be a number") from None

        host, system_id, password = required("HOST"), required("SYSTEM_ID"), required("PASSWORD")
        required("PORT")
        return cls(
            host=host,
            port=number("PORT", None) or 0,
            system_id=system_id,
            password=password,
            on_receipts=on_receipts,
            on_inbound=on_inbound,
            binds=number("BINDS", 1) or 1,
            window=number("WINDOW", 10) or 10,
            system_type=env.get("CLARION_SMPP_SYSTEM_TYPE", ""),
            submit_id_base=number("SUBMIT_ID_BASE", None),
            receipt_id_base=number("RECEIPT_ID_BASE", None),
        )

    @property
    def sessions(self) -> tuple[SmppSession, ...]:
        return tuple(self._sessions)

    async def start(self, wait_s: float | None = None) -> None:
        """Start every bind; with `wait_s`, wait that long for all of them to be bound."""
        for session in self._sessions:
            session.start()
        if wait_s is not None:
            await asyncio.gather(*(s.wait_bound(wait_s) for s in self._sessions))

    # ---- sending ----------------------------------------------------------------------------

    async def send(self, sender: str, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        if len(messages) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} messages a call")
        await self.start()
        throttled = asyncio.Event()  # once the SMSC says slow down, the rest wait untried
        return list(await asyncio.gather(*(self._send_one(sender, m, throttled) for m in messages)))

    async def _send_one(
        self, sender: str, message: OutboundMessage, throttled: asyncio.Event
    ) -> SendResult:
        mid = message.message_id
        async with self._slots:
            if throttled.is_set():
                return SendResult(
                    message_id=mid, accepted=False, retry=True, throttled=True,
                    error_detail="not tried: the SMSC throttled this batch",
                )  # fmt: skip
            try:
                encoded = encode_message(message.body, next(self._refs) & 0xFF)
            except ValueError as exc:
                return SendResult(
                    message_id=mid, accepted=False, error_code="smpp_too_long",
                    error_detail=str(exc),
                )  # fmt: skip
            ton, npi, source = address_of(sender)
            dest_ton, dest_npi, dest = address_of(message.to)
            first_id = ""
            for i, short_message in enumerate(encoded.parts):
                pdu = SubmitSm(
                    sequence=0, source_addr_ton=ton, source_addr_npi=npi, source_addr=source,
                    dest_addr_ton=dest_ton, dest_addr_npi=dest_npi, destination_addr=dest,
                    esm_class=encoded.esm_class, registered_delivery=self._registered_delivery,
                    data_coding=encoded.data_coding, short_message=short_message,
                )  # fmt: skip
                result = await self._submit_part(mid, pdu, later=i > 0)
                if not result.accepted:
                    if result.throttled:
                        throttled.set()
                    return result
                pid = result.provider_message_id or ""
                if i == 0:
                    first_id = pid
                else:
                    self._remember_later_part(pid)
            return SendResult(message_id=mid, accepted=True, provider_message_id=first_id)

    async def _submit_part(self, mid: str, pdu: SubmitSm, *, later: bool) -> SendResult:
        """One part's result. A later part that cannot go now is tried again a few times:
        reporting the message as not sent would resend parts the handset already has."""
        retries = iter(_PART_RETRIES_S if later else ())
        while True:
            try:
                resp = await self._session().submit(pdu, bind_wait_s=self.bind_wait_s)
            except SubmitNotSent as exc:
                result = SendResult(
                    message_id=mid, accepted=False, retry=True, error_code="smpp_not_bound",
                    error_detail=str(exc),
                )  # fmt: skip
            except ValueError as exc:  # e.g. an address too long for SMPP
                return SendResult(
                    message_id=mid, accepted=False, error_code="smpp_invalid_pdu",
                    error_detail=str(exc),
                )  # fmt: skip
            except SubmitUnanswered as exc:
                # The send stage records it as of unknown fate (never resent): a receipt, if
                # the SMSC took it, cannot name it, so it stays `unknown`.
                return SendResult(
                    message_id=mid, accepted=False, retry=True, error_code=NO_ANSWER,
                    error_detail=f"{exc} (the SMSC may have taken it; not sent again)",
                )  # fmt: skip
            else:
                pid = canonical_id(
                    getattr(resp, "message_id", ""), self.submit_id_base,
                    out_base=self.submit_id_base,
                )  # fmt: skip
                result = result_for(mid, resp.status, pid)
            if result.accepted or not result.retry or not later:
                return result
            delay_s = next(retries, None)
            if delay_s is None:
                return SendResult(
                    message_id=mid, accepted=False, error_code="smpp_partial",
                    error_detail=f"a later part did not go: {result.error_detail}",
                )  # fmt: skip
            await asyncio.sleep(delay_s)

    def _session(self) -> SmppSession:
        """The least busy bound session; when none is bound, the least busy one (its submit
        waits for its bind)."""
        bound = [s for s in self._sessions if s.bound] or self._sessions
        return min(bound, key=lambda s: s.in_flight)

    def _remember_later_part(self, provider_id: str) -> None:
        self._later_parts[provider_id] = None
        if len(self._later_parts) > _REMEMBERED_PARTS:
            self._later_parts.popitem(last=False)

    async def lookup_carriers(self, numbers: Sequence[str]) -> dict[str, str]:
        """SMPP has no carrier lookup."""
        return {}

    # ---- receiving --------------------------------------------------------------------------

    async def _on_deliver(self, pdu: DeliverSm) -> int:
        if pdu.esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT:
            receipt = self.receipt_of(pdu)
            if receipt is None:  # unreadable: acknowledged, or the SMSC would loop on it
                log.warning("smpp %s: unreadable receipt %r", self.name, pdu.payload()[:200])
            elif receipt.provider_message_id not in self._later_parts:
                await self._receipts.add(receipt)
            return ESME_ROK
        concat, data = concat_of(pdu)
        body = decode_text(pdu.data_coding, data)
        sender = number_of(pdu.source_addr_ton, pdu.source_addr)
        to = number_of(pdu.dest_addr_ton, pdu.destination_addr)
        if concat is not None:
            whole = self._reassembler.add(sender, to, concat, body)
            if whole is None:
                return ESME_ROK
            body = whole
        await self._inbound.add(
            InboundMessage(
                # SMPP gives a handset's message no id; a redelivered one gets a new id.
                provider_message_id=f"smpp-{uuid.uuid4().hex}",
                from_=sender,
                to=to,
                body=body,
                received_at=self._clock(),
            )
        )
        return ESME_ROK

    def receipt_of(self, pdu: DeliverSm) -> Receipt | None:
        """The receipt a deliver_sm carries (None when it names no id or no known state)."""
        fields = parse_receipt_text(decode_text(pdu.data_coding, pdu.payload()))
        tlv_id = pdu.tlv(TAG_RECEIPTED_MESSAGE_ID)
        state = pdu.tlv(TAG_MESSAGE_STATE)
        if tlv_id and tlv_id.strip(b"\x00"):
            pid = canonical_id(
                tlv_id.decode("latin-1"), self.submit_id_base, out_base=self.submit_id_base
            )
        elif fields is not None and fields.id:
            pid = canonical_id(fields.id, self.receipt_id_base, out_base=self.submit_id_base)
        else:
            return None
        status = receipt_status(fields.stat if fields else None, state[0] if state else None)
        if status is None:
            return None
        err = fields.err if fields else None
        failed = status in ("undelivered", "failed")
        now = self._clock()
        done_at = parse_receipt_date(fields.done_date if fields else None)
        # Receipt dates have minutes only: the arrival time is closer, unless it is late.
        occurred_at = done_at if done_at is not None and now - done_at > _LATE_RECEIPT else now
        return Receipt(
            message_id="",
            status=status,
            occurred_at=occurred_at,
            provider_message_id=pid,
            error_code=err if failed and err and err.strip("0") else None,
        )

    def parse_status_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[Receipt]]:
        raise InvalidInput("SMPP reports over its session, not by webhook")

    def parse_inbound_webhook(
        self, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, list[InboundMessage]]:
        raise InvalidInput("SMPP reports over its session, not by webhook")

    async def aclose(self) -> None:
        """Hand over the receipts and messages gathered so far, then unbind every session
        (what arrives meanwhile is unanswered, so the SMSC delivers it again)."""
        await self._receipts.aclose()
        await self._inbound.aclose()
        await asyncio.gather(*(s.close() for s in self._sessions))
