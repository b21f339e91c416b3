"""An ESME's SMPP session over asyncio: bind_transceiver, a window of outstanding submits,
enquire_link, and reconnection with exponential backoff.

The session runs in the background once started: it connects, binds, and serves the link
until it drops, then waits (0.25 s doubling to 30 s, with jitter; reset by a successful bind)
and starts over, until `close()` unbinds. `submit` waits (up to `bind_wait_s`) for a bound
link, takes a window slot, and resolves with the SMSC's response matched by sequence number.

Whether a submit reached the SMSC matters to a sender without idempotency keys, so the two
failures differ: `SubmitNotSent` (nothing was written: safe to send again) and
`SubmitUnanswered` (written, but the link dropped or the SMSC did not answer in time: the
message may have been taken).

Each deliver_sm is handed to `on_deliver` in its own task; its deliver_sm_resp goes only
after `on_deliver` returned, with the status it returned (ESME_RX_T_APPN if it raised, so the
SMSC delivers it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import msgspec

from clarion.errors import ProviderError
from clarion.smpp.pdu import (
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_ROK,
    ESME_RX_T_APPN,
    MAX_SEQUENCE,
    RESPONSE_BIT,
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
    Unbind,
    UnbindResp,
    UnknownPdu,
    command_length,
    decode,
    encode,
)

log = logging.getLogger(__name__)

DeliverHandler = Callable[[DeliverSm], Awaitable[int]]


class SubmitNotSent(ProviderError):
    """The submit_sm was never written (no bound link): sending it again is safe."""


class SubmitUnanswered(ProviderError):
    """The submit_sm was written but no response came: the SMSC may have taken it."""


class BindRefused(ProviderError):
    """The SMSC answered bind_transceiver with an error status."""


class _Link:
    """One TCP connection: its writer, and the requests waiting for a response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self._lock = asyncio.Lock()

    @property
    def closing(self) -> bool:
        return self.writer.is_closing()

    async def send(self, pdu: Pdu) -> None:
        await self.write(encode(pdu))

    async def write(self, data: bytes) -> None:
        async with self._lock:  # one drain at a time; PDUs never interleave
            self.writer.write(data)
            await self.writer.drain()

    def fail_pending(self, exc: Exception) -> None:
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)

    def abort(self) -> None:
        self.writer.transport.abort()


MAX_PDU_OCTETS = 65_536  # far above any PDU we read: a larger length is a broken stream


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """The next PDU on a stream. Raises `asyncio.IncompleteReadError` at end of stream,
    `ConnectionError` when the stream cannot be framed (a length below the header or absurdly
    large: nothing after it can be trusted), and `MalformedPdu` for a framed PDU that does not
    decode (answer generic_nack and read on)."""
    head = await reader.readexactly(4)
    try:
        length = command_length(head)
    except MalformedPdu as exc:
        raise ConnectionError(str(exc)) from exc
    if length > MAX_PDU_OCTETS:
        raise ConnectionError(f"command_length {length} is beyond {MAX_PDU_OCTETS}")
    rest = await reader.readexactly(length - 4)
    return decode(head + rest)


class SmppSession:
    """One bind_transceiver to an SMSC, kept up in the background (see the module doc)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        system_id: str,
        password: str,
        on_deliver: DeliverHandler,
        system_type: str = "",
        window: int = 10,
        enquire_link_s: float = 30.0,
        response_timeout_s: float = 10.0,
        reconnect_min_s: float = 0.25,
        reconnect_max_s: float = 30.0,
        label: str = "smpp",
    ) -> None:
        self.host, self.port, self.system_id = host, port, system_id
        self._password = password
        self._system_type = system_type
        self._on_deliver = on_deliver
        self._window = asyncio.Semaphore(window)
        self.window = window
        self.enquire_link_s = enquire_link_s
        self.response_timeout_s = response_timeout_s
        self._reconnect_s = (reconnect_min_s, reconnect_max_s)
        self.label = label
        self._sequence = 0
        self._link: _Link | None = None
        self._bound = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0  # submits waiting for or holding a window slot
        self.outstanding = 0  # submits written and not yet answered (at most `window`)
        self.peak_outstanding = 0
        self.submitted = 0  # submits answered (whatever the status)
        self.binds = 0  # successful binds so far (a reconnect adds one)
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return (
            f"SmppSession({self.label!r}, {self.host}:{self.port}, system_id={self.system_id!r},"
            f" bound={self.bound})"
        )

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    def start(self) -> None:
        """Begin connecting and binding in the background (idempotent)."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name=f"{self.label}-session")

    async def wait_bound(self, timeout_s: float) -> None:
        """Return once bound; `SubmitNotSent` (with the last error) after `timeout_s`."""
        try:
            await asyncio.wait_for(self._bound.wait(), timeout_s)
        except TimeoutError:
            raise SubmitNotSent(
                self.label, f"not bound after {timeout_s} s ({self.last_error or 'connecting'})"
            ) from None

    async def submit(self, pdu: SubmitSm, *, bind_wait_s: float) -> SubmitSmResp | GenericNack:
        """Submit one short message (its sequence number is assigned here) and return the
        SMSC's answer. Raises `SubmitNotSent` or `SubmitUnanswered` (see the module doc), or
        `ValueError` for a PDU that cannot be encoded (an address too long for its field)."""
        self.in_flight += 1
        try:
            async with self._window:
                await self.wait_bound(bind_wait_s)
                link = self._link
                if link is None or link.closing:
                    raise SubmitNotSent(self.label, "the link closed before the submit")
                self.outstanding += 1
                self.peak_outstanding = max(self.peak_outstanding, self.outstanding)
                try:
                    resp = await self._request(link, pdu)
                finally:
                    self.outstanding -= 1
                self.submitted += 1
        finally:
            self.in_flight -= 1
        if not isinstance(resp, SubmitSmResp | GenericNack):
            raise SubmitUnanswered(self.label, f"unexpected answer to submit_sm: {resp!r}")
        return resp

    async def close(self, timeout_s: float = 2.0) -> None:
        """Unbind (waiting up to `timeout_s` for unbind_resp) and stop reconnecting."""
        self._stop.set()
        link = self._link
        if link is not None and self.bound and not link.closing:
            with contextlib.suppress(ProviderError, OSError, TimeoutError):
                await asyncio.wait_for(self._request(link, Unbind(sequence=0)), timeout_s)
            link.writer.close()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._tasks):
            t.cancel()

    # ---- the connection loop ----------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            binds_before = self.binds
            try:
                await self._serve_one_link()
            except Exception as exc:  # whatever it was, the session keeps trying
                self.last_error = repr(exc)
                log.warning("smpp %s: %s:%d: %r", self.label, self.host, self.port, exc)
            failures = 0 if self.binds > binds_before else failures + 1
            if self._stop.is_set():
                break
            low, high = self._reconnect_s
            delay_s = min(high, low * 2 ** min(failures, 20)) * random.uniform(0.5, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay_s)

    async def _serve_one_link(self) -> None:
        """Connect, bind, and serve until the link drops."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.response_timeout_s
        )
        link = _Link(reader, writer)
        reading = asyncio.create_task(self._read_loop(link))
        pinging: asyncio.Task[None] | None = None
        try:
            bind = BindTransceiver(
                sequence=0, system_id=self.system_id, password=self._password,
                system_type=self._system_type,
            )  # fmt: skip
            resp = await self._request(link, bind)
            if not isinstance(resp, BindTransceiverResp) or resp.status != ESME_ROK:
                status = getattr(resp, "status", None)
                raise BindRefused(self.label, f"bind_transceiver refused: status {status!r}")
            self._link = link
            self.binds += 1
            self.last_error = None
            self._bound.set()
            log.info("smpp %s: bound to %s:%d as %s", self.label, self.host, self.port,
                     self.system_id)  # fmt: skip
            pinging = asyncio.create_task(self._enquire_loop(link))
            await reading
        finally:
            self._bound.clear()
            self._link = None
            for task in (reading, pinging):
                if task is not None:
                    task.cancel()
            link.fail_pending(SubmitUnanswered(self.label, "the link dropped"))
            writer.close()

    async def _request(self, link: _Link, pdu: Pdu) -> Response:
        """Send a request with the next sequence number and wait for its response. A PDU
        that cannot be encoded raises `ValueError` before anything is written."""
        self._sequence = self._sequence % MAX_SEQUENCE + 1  # 1 … 0x7FFFFFFF, then again
        sequence = self._sequence
        data = encode(msgspec.structs.replace(pdu, sequence=sequence))
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        link.pending[sequence] = future
        try:
            await link.write(data)
        except (OSError, RuntimeError) as exc:
            link.pending.pop(sequence, None)
            raise SubmitUnanswered(self.label, f"write failed: {exc!r}") from exc
        try:
            return await asyncio.wait_for(future, self.response_timeout_s)
        except TimeoutError:
            link.pending.pop(sequence, None)
            raise SubmitUnanswered(
                self.label, f"no answer within {self.response_timeout_s} s"
            ) from None

    async def _read_loop(self, link: _Link) -> None:
        while True:
            try:
                pdu = await read_pdu(link.reader)
            except MalformedPdu as exc:
                await link.send(GenericNack(sequence=exc.sequence, status=ESME_RINVCMDLEN))
                continue
            except (asyncio.IncompleteReadError, OSError):
                return
            if isinstance(pdu, Unbind):  # the SMSC ends the session
                with contextlib.suppress(OSError):
                    await link.send(UnbindResp(sequence=pdu.sequence))
                return
            self._dispatch(link, pdu)

    def _dispatch(self, link: _Link, pdu: Pdu) -> None:
        match pdu:
            case (
                SubmitSmResp() | BindTransceiverResp() | EnquireLinkResp() | UnbindResp()
                | DeliverSmResp() | GenericNack()
            ):  # fmt: skip
                future = link.pending.pop(pdu.sequence, None)
                if future is not None and not future.done():
                    future.set_result(pdu)
                elif isinstance(pdu, GenericNack):
                    log.warning("smpp %s: generic_nack %#x", self.label, pdu.status)
            case DeliverSm():
                self._spawn(self._deliver(link, pdu))
            case EnquireLink():
                self._spawn(link.send(EnquireLinkResp(sequence=pdu.sequence)))
            case UnknownPdu() if pdu.command_id & RESPONSE_BIT:
                link.pending.pop(pdu.sequence, None)
            case _:  # a request an ESME does not serve
                self._spawn(link.send(GenericNack(sequence=pdu.sequence, status=ESME_RINVCMDID)))

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            with contextlib.suppress(OSError, RuntimeError):
                await coro

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, link: _Link, pdu: DeliverSm) -> None:
        try:
            status = await self._on_deliver(pdu)
        except Exception:
            log.exception("smpp %s: deliver_sm handler failed; the SMSC will retry", self.label)
            status = ESME_RX_T_APPN
        if not link.closing:  # else the SMSC sees no response and delivers it again
            await link.send(DeliverSmResp(sequence=pdu.sequence, status=status))

    async def _enquire_loop(self, link: _Link) -> None:
        """Probe the link every `enquire_link_s`; no answer in time drops it (and reconnects)."""
        while True:
            await asyncio.sleep(self.enquire_link_s)
            try:
                await self._request(link, EnquireLink(sequence=0))
            except ProviderError:
                log.warning("smpp %s: enquire_link unanswered; reconnecting", self.label)
                link.abort()
                return
