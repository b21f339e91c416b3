"""The simulator's SMSC: an SMPP 3.4 server in front of the simulated network.

An ESME binds as transceiver with the configured system_id and password, submits messages
(`submit_sm`; the parts of a UDH-concatenated text are joined before the network sees them,
each part keeping its own id) and hears back over the same session: delivery receipts
(deliver_sm, esm_class 0x04) and what handsets text the numbers it submitted from (esm_class
0). Message ids are hex in submit_sm_resp and in the receipted_message_id TLV but decimal in
the receipt text, as many SMSCs write them, so clients have to normalise.

Over `max_mps` submit_sm a second (one second's burst), the answer is ESME_RTHROTTLED
(0x58). Receipts follow registered_delivery (bits 0-1: final receipts; bit 4: an ENROUTE for
`sent`) and go to any session bound with the submitter's system_id; one that is not
acknowledged with ESME_ROK is reported again later by the simulator's dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from clarion.sim import network
from clarion.sim.state import Channel, SimState
from clarion.sim.wire import SimInbound, SimReceipt
from clarion.smpp.pdu import (
    DC_DEFAULT,
    ESM_DELIVERY_RECEIPT,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVDSTADR,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_ROK,
    ESME_RTHROTTLED,
    MAX_SEQUENCE,
    RD_INTERMEDIATE,
    TAG_MESSAGE_STATE,
    TAG_RECEIPTED_MESSAGE_ID,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    MalformedPdu,
    Pdu,
    Response,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    Unbind,
    UnbindResp,
    UnknownPdu,
    address_of,
    concat_of,
    decode_text,
    encode,
    encode_message,
    format_receipt_text,
    gsm_encode,
    number_of,
)
from clarion.smpp.session import read_pdu

log = logging.getLogger(__name__)

RECEIPTS_PER_REPORT = 100
# Simulator status → (receipt stat, message_state TLV).
_STAT = {"sent": ("ENROUTE", 1), "delivered": ("DELIVRD", 2), "undelivered": ("UNDELIV", 5),
         "failed": ("REJECTD", 8)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Submitted:
    """A message the network took over SMPP, kept until its final receipt is acknowledged."""

    to: str
    sender: str
    text: str
    part_ids: tuple[str, ...]
    registered_delivery: int
    submitted_at: datetime


class _Esme:
    """One client connection; `system_id` is set once it is bound."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.system_id: str | None = None
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self._lock = asyncio.Lock()
        self._sequence = 0
        self._window = asyncio.Semaphore(10)  # deliver_sm outstanding at once

    async def send(self, pdu: Pdu) -> None:
        async with self._lock:
            self.writer.write(encode(pdu))
            await self.writer.drain()

    async def request(self, pdu: DeliverSm, timeout_s: float) -> Response:
        """Send a deliver_sm and wait for the client's answer."""
        async with self._window:
            self._sequence = self._sequence % MAX_SEQUENCE + 1
            sequence = self._sequence
            future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
            self.pending[sequence] = future
            try:
                await self.send(msgspec.structs.replace(pdu, sequence=sequence))
                return await asyncio.wait_for(future, timeout_s)
            finally:
                self.pending.pop(sequence, None)


class Smsc:
    """The SMPP front end of a `SimState` (see the module doc)."""

    def __init__(
        self,
        state: SimState,
        *,
        host: str,
        port: int,
        system_id: str,
        password: str,
        max_mps: float | None = None,
        response_timeout_s: float = 10.0,
    ) -> None:
        self.state = state
        self.host, self.port = host, port
        self._system_id, self._password = system_id, password
        self._max_mps = max_mps
        self._tokens, self._tokens_at = max(1.0, max_mps or 0.0), time.monotonic()
        self._timeout_s = response_timeout_s
        # Unique across restarts (a restarted SMSC must not hand out an id again): the
        # microseconds at start, under a leading "a" so ids always show hex letters.
        self._ids = itertools.count((0xA << 52) | time.time_ns() // 1000)
        self._refs = itertools.count()
        self._server: asyncio.Server | None = None
        self._connections: set[_Esme] = set()
        self._turn = itertools.count()
        self._messages: dict[str, _Submitted] = {}
        self._parts: dict[tuple[str, str, str, int, int], dict[int, tuple[str, str]]] = {}
        for key in ("smpp_binds", "smpp_submits", "smpp_throttled", "smpp_receipts"):
            state.counts.setdefault(key, 0)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMSC listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for esme in list(self._connections):
            esme.writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()

    def channel(self) -> Channel:
        return Channel(self._report_receipts, self._deliver_inbound, batch=RECEIPTS_PER_REPORT)

    # ---- a connection -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        esme = _Esme(reader, writer)
        self._connections.add(esme)
        try:
            while True:
                try:
                    pdu = await read_pdu(reader)
                except MalformedPdu as exc:
                    await esme.send(GenericNack(sequence=exc.sequence, status=ESME_RINVCMDLEN))
                    continue
                except (asyncio.IncompleteReadError, OSError):
                    break
                if isinstance(pdu, Unbind):
                    await esme.send(UnbindResp(sequence=pdu.sequence))
                    break
                answer = self._handle(esme, pdu)
                if answer is not None:
                    await esme.send(answer)
        except OSError:
            pass
        finally:
            self._connections.discard(esme)
            for future in esme.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the ESME went away"))
            writer.close()

    def _handle(self, esme: _Esme, pdu: Pdu) -> Pdu | None:
        """The answer to a PDU from a client (None for a response it sent us)."""
        match pdu:
            case BindTransceiver():
                return BindTransceiverResp(sequence=pdu.sequence, status=self._bind(esme, pdu),
                                           system_id="clarion-sim")  # fmt: skip
            case DeliverSmResp() | EnquireLinkResp() | GenericNack():
                future = esme.pending.get(pdu.sequence)
                if future is not None and not future.done():
                    future.set_result(pdu)
                return None
            case EnquireLink():
                return EnquireLinkResp(sequence=pdu.sequence)
            case SubmitSm():
                if esme.system_id is None:
                    return SubmitSmResp(sequence=pdu.sequence, status=ESME_RINVBNDSTS)
                return self._submit(esme.system_id, pdu)
            case UnknownPdu() if pdu.command_id & 0x80000000:
                return None
        return GenericNack(sequence=pdu.sequence, status=ESME_RINVCMDID)

    def _bind(self, esme: _Esme, pdu: BindTransceiver) -> int:
        if esme.system_id is not None:
            return ESME_RALYBND
        if pdu.system_id != self._system_id:
            return ESME_RINVSYSID
        if not hmac.compare_digest(pdu.password.encode(), self._password.encode()):
            return ESME_RINVPASWD
        esme.system_id = pdu.system_id
        self.state.counts["smpp_binds"] += 1
        return ESME_ROK

    def _take_token(self) -> bool:
        """One submit's worth of the account's throughput (a token bucket, 1 s of burst)."""
        if self._max_mps is None:
            return True
        now = time.monotonic()
        burst = max(1.0, self._max_mps)
        self._tokens = min(burst, self._tokens + (now - self._tokens_at) * self._max_mps)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _submit(self, system_id: str, pdu: SubmitSm) -> SubmitSmResp:
        self.state.counts["smpp_submits"] += 1
        if not self._take_token():
            self.state.counts["smpp_throttled"] += 1
            return SubmitSmResp(sequence=pdu.sequence, status=ESME_RTHROTTLED)
        to = number_of(pdu.dest_addr_ton, pdu.destination_addr)
        sender = number_of(pdu.source_addr_ton, pdu.source_addr)
        if network.is_invalid(to):
            self.state.counts["rejected"] += 1
            return SubmitSmResp(sequence=pdu.sequence, status=ESME_RINVDSTADR)
        smsc_id = format(next(self._ids), "x")
        self.state.inbound_urls[sender] = ("smpp", system_id)
        concat, data = concat_of(pdu)
        text = decode_text(pdu.data_coding, data)
        part_ids: tuple[str, ...] = (smsc_id,)
        if concat is not None:
            key = (system_id, sender, to, concat.ref, concat.total)
            parts = self._parts.setdefault(key, {})
            parts[concat.seq] = (smsc_id, text)
            if len(parts) < concat.total:
                return SubmitSmResp(sequence=pdu.sequence, message_id=smsc_id)
            del self._parts[key]
            ordered = [parts[i] for i in range(1, concat.total + 1)]
            part_ids = tuple(i for i, _ in ordered)
            text = "".join(t for _, t in ordered)
        first = part_ids[0]
        self._messages[first] = _Submitted(
            to, sender, text, part_ids, pdu.registered_delivery, datetime.now(UTC)
        )
        self.state.submit(
            first, to, sender, text, channel="smpp", target=system_id, provider_id=first,
            idempotent=False,
        )  # fmt: skip
        return SubmitSmResp(sequence=pdu.sequence, message_id=smsc_id)

    # ---- the channel: receipts and handset messages to bound clients ------------------------

    def _esme_for(self, system_id: str) -> _Esme | None:
        """A session bound as `system_id`, taking turns; None when there is none."""
        bound = [e for e in self._connections if e.system_id == system_id]
        return bound[next(self._turn) % len(bound)] if bound else None

    async def _report_receipts(self, system_id: str, receipts: list[SimReceipt]) -> bool:
        esme = self._esme_for(system_id)
        if esme is None:
            return False
        outcomes = await asyncio.gather(*(self._report(esme, r) for r in receipts))
        return all(outcomes)

    async def _report(self, esme: _Esme, receipt: SimReceipt) -> bool:
        """Every part's receipt for one simulator receipt (if registered_delivery asks)."""
        submitted = self._messages.get(receipt.provider_id)
        if submitted is None:  # reported before (a batch being retried): done
            return True
        final = receipt.status != "sent"
        wanted = submitted.registered_delivery & 0x03
        if final and not (wanted == 1 or (wanted == 2 and receipt.status != "delivered")):
            self._messages.pop(receipt.provider_id, None)
            return True
        if not final and not submitted.registered_delivery & RD_INTERMEDIATE:
            return True
        pdus = [self._receipt_pdu(submitted, part_id, receipt) for part_id in submitted.part_ids]
        try:
            answers = await asyncio.gather(*(esme.request(p, self._timeout_s) for p in pdus))
        except (ConnectionError, OSError, TimeoutError):
            return False
        if not all(isinstance(a, DeliverSmResp) and a.status == ESME_ROK for a in answers):
            return False
        self.state.counts["smpp_receipts"] += len(pdus)
        if final:
            self._messages.pop(receipt.provider_id, None)
        return True

    @staticmethod
    def _receipt_pdu(submitted: _Submitted, part_id: str, receipt: SimReceipt) -> DeliverSm:
        stat, message_state = _STAT.get(receipt.status, ("UNKNOWN", 7))
        text = format_receipt_text(
            str(int(part_id, 16)),  # decimal here, hex in the TLV: clients must normalise
            stat=stat,
            err=receipt.error_code or "000",
            submitted_at=submitted.submitted_at,
            done_at=receipt.occurred_at,
            text=submitted.text,
            delivered=receipt.status == "delivered",
        )
        source_ton, source_npi, source = address_of(submitted.to)
        dest_ton, dest_npi, dest = address_of(submitted.sender)
        return DeliverSm(
            sequence=0, source_addr_ton=source_ton, source_addr_npi=source_npi,
            source_addr=source, dest_addr_ton=dest_ton, dest_addr_npi=dest_npi,
            destination_addr=dest, esm_class=ESM_DELIVERY_RECEIPT, data_coding=DC_DEFAULT,
            short_message=gsm_encode(text, replace=True),
            tlvs=(Tlv(TAG_RECEIPTED_MESSAGE_ID, part_id.encode() + b"\x00"),
                  Tlv(TAG_MESSAGE_STATE, bytes((message_state,)))),
        )  # fmt: skip

    async def _deliver_inbound(self, system_id: str, message: SimInbound) -> int:
        """A handset's message to the client (as many parts as it needs): 200 when every
        part was acknowledged, 503 with no session bound, 502 otherwise."""
        esme = self._esme_for(system_id)
        if esme is None:
            return 503
        encoded = encode_message(message.body, next(self._refs) & 0xFF)
        source_ton, source_npi, source = address_of(message.from_)
        dest_ton, dest_npi, dest = address_of(message.to)
        for short_message in encoded.parts:
            pdu = DeliverSm(
                sequence=0, source_addr_ton=source_ton, source_addr_npi=source_npi,
                source_addr=source, dest_addr_ton=dest_ton, dest_addr_npi=dest_npi,
                destination_addr=dest, esm_class=encoded.esm_class,
                data_coding=encoded.data_coding, short_message=short_message,
            )  # fmt: skip
            try:
                answer = await esme.request(pdu, self._timeout_s)
            except (ConnectionError, OSError, TimeoutError):
                return 502
            if not isinstance(answer, DeliverSmResp) or answer.status != ESME_ROK:
                return 502
        return 200


@contextlib.asynccontextmanager
async def serve_smsc(state: SimState) -> AsyncIterator[Smsc | None]:
    """Run the SMSC for the simulator's lifetime when `smpp_port` is configured, with its
    channel registered as "smpp"; without it, do nothing."""
    config = state.config
    if config.smpp_port is None:
        yield None
        return
    smsc = Smsc(
        state, host=config.smpp_host, port=config.smpp_port, system_id=config.smpp_system_id,
        password=config.smpp_password, max_mps=config.max_mps,
    )  # fmt: skip
    await smsc.start()
    state.channels["smpp"] = smsc.channel()
    try:
        yield smsc
    finally:
        await smsc.stop()
