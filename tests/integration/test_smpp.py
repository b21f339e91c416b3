"""SMPP end to end against the simulator's SMSC (its own process): an independent client
(smpplib) proves the SMSC speaks SMPP; Clarion's provider sends, hears receipts and handset
messages, slows down when throttled, and reconnects after the SMSC goes away."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import msgspec
import pytest
import smpplib.client
import smpplib.command
import smpplib.gsm

from clarion.domain.records import InboundMessage, OutboundMessage, Receipt
from clarion.providers.smpp import SmppProvider
from clarion.sim.process import SimProcess
from clarion.smpp import pdu as P
from clarion.smpp.session import read_pdu

SYSTEM_ID, PASSWORD = "northwnd", "s3cret"
SENDER = "+15125550100"


def smsc_process(**options: float) -> SimProcess:
    return SimProcess(
        secret="smpp-test-secret-0001", failure_rate=0.0, latency_scale=0.05, seed=7, smpp_port=0,
        smpp_system_id=SYSTEM_ID, smpp_password=PASSWORD, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with smsc_process() as process:
        yield process


class Heard:
    """What the provider's callbacks were given."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.inbound: list[InboundMessage] = []
        self.calls = 0

    async def on_receipts(self, receipts: list[Receipt]) -> None:
        self.calls += 1
        self.receipts.extend(receipts)

    async def on_inbound(self, messages: list[InboundMessage]) -> None:
        self.inbound.extend(messages)

    def final(self) -> dict[str, str]:
        return {r.provider_message_id or "": r.status for r in self.receipts if r.status != "sent"}


@contextlib.asynccontextmanager
async def bound(sim: SimProcess, heard: Heard, **options: float) -> AsyncIterator[SmppProvider]:
    assert sim.smpp_port is not None
    provider = SmppProvider(
        host="127.0.0.1", port=sim.smpp_port, system_id=SYSTEM_ID, password=PASSWORD,
        on_receipts=heard.on_receipts, on_inbound=heard.on_inbound, submit_id_base=16,
        receipt_id_base=10, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    await provider.start(wait_s=5)
    try:
        yield provider
    finally:
        await provider.aclose()


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def messages(
    first: int, n: int, body: str = "Northwind: 20% off today. Reply STOP to opt out"
) -> list[OutboundMessage]:
    return [
        OutboundMessage(message_id=f"m{first + i}", subscriber_id=first + i,
                        to=f"+1212{first + i:07d}", body=body, segments=1)
        for i in range(n)
    ]  # fmt: skip


def test_an_independent_client_submits_a_long_message_and_hears_each_parts_receipt(
    sim: SimProcess,
) -> None:
    assert sim.smpp_port is not None
    client = smpplib.client.Client(
        "127.0.0.1", sim.smpp_port, timeout=2, allow_unknown_opt_params=True
    )
    submitted: list[str] = []
    receipts: list[smpplib.command.Command] = []
    client.set_message_sent_handler(lambda pdu: submitted.append(pdu.message_id.decode()))
    client.set_message_received_handler(lambda pdu: receipts.append(pdu))
    text = "Northwind: " + "the spring sale starts now, everything must go! " * 5
    parts, data_coding, esm_class = smpplib.gsm.make_parts(text)
    assert len(parts) == 2
    client.connect()
    try:
        client.bind_transceiver(system_id=SYSTEM_ID, password=PASSWORD)
        for to, short_messages, esm in (
            ("12120000042", parts, esm_class),
            ("12120000043", [b"Hello from smpplib"], 0),
        ):
            for part in short_messages:
                client.send_message(
                    source_addr_ton=1, source_addr_npi=1, source_addr=SENDER[1:],
                    dest_addr_ton=1, dest_addr_npi=1, destination_addr=to,
                    short_message=part, data_coding=data_coding, esm_class=esm,
                    registered_delivery=1,
                )  # fmt: skip
        deadline = time.monotonic() + 5
        while (len(submitted) < 3 or len(receipts) < 3) and time.monotonic() < deadline:
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    assert len(submitted) == 3
    assert all(re.fullmatch(r"[0-9a-f]+", i) and re.search(r"[a-f]", i) for i in submitted)
    by_tlv = {r.receipted_message_id.decode(): r for r in receipts}
    assert set(by_tlv) == set(submitted)  # one receipt per part, hex in the TLV
    for hex_id, receipt in by_tlv.items():
        assert receipt.esm_class == 0x04
        assert receipt.message_state == 2
        assert receipt.source_addr == b"12120000042" or receipt.source_addr == b"12120000043"
        decimal = re.search(rb"\bid:(\d+)", receipt.short_message)
        assert decimal is not None
        assert int(decimal.group(1)) == int(hex_id, 16)  # decimal in the text
        assert b"stat:DELIVRD" in receipt.short_message
    (long_one,) = sim.handset("+12120000042")
    assert long_one["body"] == text  # the parts were joined before the handset saw them
    assert [m["body"] for m in sim.handset("+12120000043")] == ["Hello from smpplib"]


def test_a_wrong_password_is_refused(sim: SimProcess) -> None:
    assert sim.smpp_port is not None
    client = smpplib.client.Client("127.0.0.1", sim.smpp_port, allow_unknown_opt_params=True)
    client.connect()
    try:
        with pytest.raises(smpplib.exceptions.PDUError) as caught:
            client.bind_transceiver(system_id=SYSTEM_ID, password="wrong")
        assert caught.value.args[1] == 0x0E  # ESME_RINVPASWD
    finally:
        client.disconnect()


async def test_two_binds_send_200_messages_and_every_receipt_names_its_submit(
    sim: SimProcess,
) -> None:
    heard = Heard()
    batch = messages(1000, 200)
    long_body = "Northwind: " + "a long message in three parts, " * 12
    batch[0] = OutboundMessage(
        message_id="m-long", subscriber_id=1, to=batch[0].to, body=long_body, segments=3
    )
    async with bound(sim, heard, binds=2, window=10) as provider:
        assert all(s.bound for s in provider.sessions)
        results = [
            r for chunk in (batch[:100], batch[100:]) for r in await provider.send(SENDER, chunk)
        ]
        assert all(r.accepted for r in results), [r for r in results if not r.accepted][:3]
        ids = {r.message_id: r.provider_message_id for r in results}
        assert len(set(ids.values())) == 200
        await eventually(lambda: len(heard.final()) >= 200)
        await asyncio.sleep(0.2)  # nothing else may come: no receipt of a later part
        assert heard.final() == dict.fromkeys(ids.values(), "delivered")
        assert all(r.message_id == "" for r in heard.receipts)
        assert heard.calls < 200  # receipts are handed over in batches
        assert [s.binds for s in provider.sessions] == [1, 1]
        assert all(s.submitted > 50 for s in provider.sessions)  # both binds carried load
        assert all(1 < s.peak_outstanding <= 10 for s in provider.sessions)  # the window
    handsets = sim.handsets()
    assert all(handsets[m.to] == 1 for m in batch)
    assert sim.handset(batch[0].to)[0]["body"] == long_body


async def test_an_smsc_over_its_rate_throttles_and_the_rest_of_the_batch_waits() -> None:
    heard = Heard()
    with smsc_process(max_mps=5) as slow:
        async with bound(slow, heard, binds=1, window=10) as provider:
            results = await provider.send(SENDER, messages(3000, 40))
        stats = slow.stats()
    accepted = [r for r in results if r.accepted]
    throttled = [r for r in results if r.throttled]
    assert 1 <= len(accepted) <= 10
    assert len(accepted) + len(throttled) == 40
    assert all(r.retry and not r.accepted for r in throttled)
    assert any(r.error_code == "smpp:0x58" for r in throttled)
    assert 1 <= stats["smpp_throttled"] <= 10  # the batch stopped asking once throttled
    assert stats["smpp_submits"] < 40


async def test_a_handset_reply_reaches_on_inbound_whole(sim: SimProcess) -> None:
    heard = Heard()
    sender = "+15125550177"
    long_reply = "Ça va? Merci pour l'offre 😀 " * 6
    async with bound(sim, heard) as provider:
        (result,) = await provider.send(sender, messages(4000, 1))
        assert result.accepted  # the SMSC now routes replies to this number to us
        async with httpx.AsyncClient(base_url=sim.url) as http:
            for body in ("STOP", long_reply):
                resp = await http.post(
                    "/handsets/+12120004000/reply", json={"to": sender, "body": body}
                )
                assert resp.json()["webhook_status"] == 200
    assert [(m.from_, m.to, m.body) for m in heard.inbound] == [
        ("+12120004000", sender, "STOP"),
        ("+12120004000", sender, long_reply),
    ]
    assert len({m.provider_message_id for m in heard.inbound}) == 2


async def test_the_session_reconnects_after_the_smsc_restarts() -> None:
    heard = Heard()
    with smsc_process() as flaky:
        async with bound(
            flaky, heard, binds=1, bind_wait_s=0.3, reconnect_min_s=0.05, reconnect_max_s=0.3
        ) as provider:
            (before,) = await provider.send(SENDER, messages(5000, 1))
            assert before.accepted
            await asyncio.to_thread(flaky.stop)
            await eventually(lambda: not provider.sessions[0].bound)
            (down,) = await provider.send(SENDER, messages(5001, 1))
            assert (down.accepted, down.retry, down.error_code) == (False, True, "smpp_not_bound")
            await asyncio.to_thread(flaky.start)
            await provider.start(wait_s=5)
            assert provider.sessions[0].binds == 2
            (after,) = await provider.send(SENDER, messages(5002, 1))
            assert after.accepted
            assert after.provider_message_id != before.provider_message_id
            await eventually(lambda: after.provider_message_id in heard.final())
        assert len(flaky.handset("+12120005002")) == 1


Link = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class FakeSmsc:
    """A scripted SMSC on a local port (our own codec), to drive the session from the
    network's side: what it receives is queued per connection."""

    def __init__(self) -> None:
        self.links: asyncio.Queue[Link] = asyncio.Queue()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeSmsc:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self.links.put((reader, writer))

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def bound_link(self) -> Link:
        reader, writer = await asyncio.wait_for(self.links.get(), 5)
        bind = await read_pdu(reader)
        assert isinstance(bind, P.BindTransceiver)
        assert (bind.system_id, bind.password) == (SYSTEM_ID, PASSWORD)
        writer.write(P.encode(P.BindTransceiverResp(sequence=bind.sequence, system_id="fake")))
        return reader, writer


async def answer(reader: asyncio.StreamReader, timeout_s: float = 2.0) -> P.Pdu:
    return await asyncio.wait_for(read_pdu(reader), timeout_s)


async def close_answering_unbind(
    provider: SmppProvider, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Close the provider; it must unbind cleanly (the SMSC answers, probes aside)."""
    closing = asyncio.create_task(provider.aclose())
    while not isinstance(pdu := await answer(reader), P.Unbind):
        assert isinstance(pdu, P.EnquireLink)
        writer.write(P.encode(P.EnquireLinkResp(sequence=pdu.sequence)))
    writer.write(P.encode(P.UnbindResp(sequence=pdu.sequence)))
    await asyncio.wait_for(closing, 1)


RECEIPT = P.DeliverSm(
    sequence=101, source_addr_ton=1, source_addr="12120006000", esm_class=0x04,
    short_message=b"id:255 sub:001 dlvrd:001 stat:DELIVRD err:000",
    tlvs=(P.Tlv(P.TAG_RECEIPTED_MESSAGE_ID, b"FF\x00"),),
)  # fmt: skip


async def test_a_receipt_is_acknowledged_only_after_on_receipts_returned() -> None:
    release = asyncio.Event()
    heard = Heard()
    fail = True

    async def slow_receipts(receipts: list[Receipt]) -> None:
        nonlocal fail
        if fail:
            fail = False
            raise RuntimeError("the bus is down")
        await release.wait()
        await heard.on_receipts(receipts)

    async with FakeSmsc() as smsc:
        provider = SmppProvider(
            host="127.0.0.1", port=smsc.port, system_id=SYSTEM_ID, password=PASSWORD,
            on_receipts=slow_receipts, on_inbound=heard.on_inbound, submit_id_base=16,
            reconnect_min_s=0.05,
        )  # fmt: skip
        await provider.start()
        reader, writer = await smsc.bound_link()
        await provider.start(wait_s=2)
        writer.write(P.encode(P.EnquireLink(sequence=100)))
        assert await answer(reader) == P.EnquireLinkResp(sequence=100)
        writer.write(P.encode(RECEIPT))  # the callback fails: the SMSC must deliver it again
        assert await answer(reader) == P.DeliverSmResp(sequence=101, status=P.ESME_RX_T_APPN)
        writer.write(P.encode(msgspec.structs.replace(RECEIPT, sequence=102)))
        with pytest.raises(TimeoutError):  # no answer while the callback has not returned
            await answer(reader, timeout_s=0.3)
        release.set()
        assert await answer(reader) == P.DeliverSmResp(sequence=102)
        assert [(r.provider_message_id, r.status) for r in heard.receipts] == [("ff", "delivered")]
        writer.write(P.encode(P.Unbind(sequence=103)))  # the SMSC ends the session
        assert await answer(reader) == P.UnbindResp(sequence=103)
        writer.close()
        reader, writer = await smsc.bound_link()  # and the session binds again
        await eventually(lambda: provider.sessions[0].binds == 2)
        await close_answering_unbind(provider, reader, writer)
        assert not provider.sessions[0].bound


async def test_an_unanswered_enquire_link_drops_the_link_and_the_session_binds_again() -> None:
    heard = Heard()
    async with FakeSmsc() as smsc:
        provider = SmppProvider(
            host="127.0.0.1", port=smsc.port, system_id=SYSTEM_ID, password=PASSWORD,
            on_receipts=heard.on_receipts, on_inbound=heard.on_inbound, enquire_link_s=0.05,
            response_timeout_s=0.3, reconnect_min_s=0.05,
        )  # fmt: skip
        await provider.start()
        reader, writer = await smsc.bound_link()
        probe = await answer(reader)
        assert isinstance(probe, P.EnquireLink)
        writer.write(P.encode(P.EnquireLinkResp(sequence=probe.sequence)))
        again = await answer(reader)  # answered: the link stays, the next probe comes
        assert isinstance(again, P.EnquireLink)
        assert provider.sessions[0].binds == 1
        # this one goes unanswered: the session gives the link up and binds anew
        reader, writer = await smsc.bound_link()
        await eventually(lambda: provider.sessions[0].binds == 2)
        await close_answering_unbind(provider, reader, writer)
