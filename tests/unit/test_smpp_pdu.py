"""The SMPP codec against an independent implementation (smpplib), receipt text parsing, id
normalisation, long-message splitting, and the SMPP provider's pure mappings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import smpplib.gsm
import smpplib.smpp
from hypothesis import given
from hypothesis import strategies as st
from smpplib.client import SimpleSequenceGenerator

from clarion.compliance.encoding import sms_segments
from clarion.domain.records import InboundMessage, Receipt
from clarion.errors import ConfigurationError, InvalidInput
from clarion.providers.smpp import SmppProvider, result_for
from clarion.smpp import pdu as P

NOW = datetime(2026, 3, 2, 15, 30, 20, tzinfo=UTC)


def theirs(data: bytes) -> smpplib.command.Command:
    """smpplib's reading of our bytes."""
    return smpplib.smpp.parse_pdu(data, client=SimpleSequenceGenerator())


def made_by_smpplib(command: str, sequence: int, **fields: object) -> bytes:
    pdu = smpplib.smpp.make_pdu(command, client=SimpleSequenceGenerator(), **fields)
    pdu.sequence = sequence
    return bytes(pdu.generate())


# ---- against smpplib ------------------------------------------------------------------------


def test_smpplib_reads_our_bind_transceiver() -> None:
    data = P.encode(
        P.BindTransceiver(sequence=7, system_id="clarion", password="s3cret", system_type="SMS")
    )
    pdu = theirs(data)
    assert pdu.command == "bind_transceiver"
    assert pdu.sequence == 7
    assert (pdu.system_id, pdu.password, pdu.system_type) == (b"clarion", b"s3cret", b"SMS")
    assert pdu.interface_version == 0x34


def test_we_read_smpplibs_bind_transceiver_and_its_response() -> None:
    bind = P.decode(made_by_smpplib("bind_transceiver", 11, system_id="acct", password="pw"))
    assert bind == P.BindTransceiver(sequence=11, system_id="acct", password="pw")
    resp = P.decode(made_by_smpplib("bind_transceiver_resp", 11, system_id="SMSC"))
    assert resp == P.BindTransceiverResp(sequence=11, system_id="SMSC")


def test_smpplib_reads_our_gsm_submit_sm_with_its_own_gsm_table() -> None:
    text = "Hi Ana! 20% off {today} only"
    encoded = P.encode_message(text, ref=0)
    pdu = theirs(
        P.encode(
            P.SubmitSm(
                sequence=3, source_addr_ton=1, source_addr_npi=1, source_addr="15125550100",
                dest_addr_ton=1, dest_addr_npi=1, destination_addr="12127000001",
                registered_delivery=1, data_coding=encoded.data_coding,
                esm_class=encoded.esm_class, short_message=encoded.parts[0],
            )
        )
    )  # fmt: skip
    assert pdu.command == "submit_sm"
    assert (pdu.sequence, pdu.source_addr, pdu.destination_addr) == (
        3, b"15125550100", b"12127000001",
    )  # fmt: skip
    assert (pdu.source_addr_ton, pdu.dest_addr_npi, pdu.registered_delivery) == (1, 1, 1)
    assert pdu.data_coding == 0
    assert pdu.short_message == smpplib.gsm.gsm_encode(text)  # "{" "}" as ESC pairs


def test_smpplib_reads_our_ucs2_submit_sm() -> None:
    text = "Olá “friends” — 20% off"
    encoded = P.encode_message(text, ref=0)
    pdu = theirs(
        P.encode(
            P.SubmitSm(sequence=4, destination_addr="12127000001",
                       data_coding=encoded.data_coding, short_message=encoded.parts[0])
        )
    )  # fmt: skip
    assert pdu.data_coding == 0x08
    assert pdu.short_message.decode("utf-16-be") == text


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("x" * 400, P.DC_DEFAULT), ("ü" * 151 + "€" * 5, P.DC_DEFAULT), ("ж" * 200, P.DC_UCS2)],
)
def test_our_udh_parts_equal_smpplibs_but_for_the_reference(text: str, encoding: int) -> None:
    mine = P.encode_message(text, ref=0x42)
    parts, their_encoding, esm_class = smpplib.gsm.make_parts(text, encoding=encoding)
    assert len(parts) > 1
    assert (mine.data_coding, mine.esm_class) == (their_encoding, esm_class)
    assert [p[:3] + p[4:] for p in mine.parts] == [p[:3] + p[4:] for p in parts]
    assert all(p[3] == 0x42 for p in mine.parts)


def test_smpplibs_udh_parts_reassemble_with_our_decoder() -> None:
    text = "Привет! " * 30
    parts, data_coding, esm_class = smpplib.gsm.make_parts(text)
    assert len(parts) > 1
    joiner = P.Reassembler()
    whole = None
    for raw in reversed(parts):  # out of order, as a network may deliver them
        pdu = P.decode(made_by_smpplib(
            "deliver_sm", 5, source_addr="12127000001", destination_addr="15125550100",
            esm_class=esm_class, data_coding=data_coding, short_message=raw,
        ))  # fmt: skip
        assert isinstance(pdu, P.DeliverSm)
        concat, data = P.concat_of(pdu)
        assert concat is not None
        whole = joiner.add("a", "b", concat, P.decode_text(pdu.data_coding, data)) or whole
    assert whole == text


def test_smpplib_reads_our_deliver_sm_receipt_with_its_tlvs() -> None:
    text = "id:42 sub:001 dlvrd:001 submit date:2603021530 done date:2603021531 stat:DELIVRD"
    data = P.encode(
        P.DeliverSm(
            sequence=9, source_addr_ton=1, source_addr="12127000001", esm_class=0x04,
            short_message=P.gsm_encode(text),
            tlvs=(P.Tlv(P.TAG_RECEIPTED_MESSAGE_ID, b"2a\x00"),
                  P.Tlv(P.TAG_MESSAGE_STATE, b"\x02")),
        )
    )  # fmt: skip
    pdu = theirs(data)
    assert pdu.command == "deliver_sm"
    assert pdu.esm_class == 0x04
    assert pdu.receipted_message_id == b"2a"
    assert pdu.message_state == 2
    assert pdu.short_message == text.encode()


def test_we_read_smpplibs_deliver_sm_receipt() -> None:
    data = made_by_smpplib(
        "deliver_sm", 21, source_addr_ton=1, source_addr="12127000001", dest_addr_ton=1,
        destination_addr="15125550100", esm_class=0x04,
        short_message=b"id:0000006699 sub:001 dlvrd:000 submit date:2603021530"
        b" done date:2603021531 stat:UNDELIV err:030 text:Hello",
        receipted_message_id="1A2B", message_state=5,
    )  # fmt: skip
    pdu = P.decode(data)
    assert isinstance(pdu, P.DeliverSm)
    assert pdu.sequence == 21
    assert P.number_of(pdu.source_addr_ton, pdu.source_addr) == "+12127000001"
    assert pdu.tlv(P.TAG_RECEIPTED_MESSAGE_ID) == b"1A2B\x00"
    assert pdu.tlv(P.TAG_MESSAGE_STATE) == b"\x05"
    receipt = provider(submit_id_base=16, receipt_id_base=10).receipt_of(pdu)
    assert receipt is not None
    assert (receipt.message_id, receipt.provider_message_id) == ("", "1a2b")
    assert (receipt.status, receipt.error_code) == ("undelivered", "030")


@pytest.mark.parametrize(
    ("ours", "command"),
    [
        (P.SubmitSmResp(sequence=5, message_id="a000001f"), "submit_sm_resp"),
        (P.DeliverSmResp(sequence=6), "deliver_sm_resp"),
        (P.EnquireLink(sequence=7), "enquire_link"),
        (P.EnquireLinkResp(sequence=7), "enquire_link_resp"),
        (P.Unbind(sequence=8), "unbind"),
        (P.UnbindResp(sequence=8), "unbind_resp"),
        (P.GenericNack(sequence=9, status=P.ESME_RINVCMDLEN), "generic_nack"),
    ],
)
def test_the_small_pdus_are_byte_identical_to_smpplibs(ours: P.Pdu, command: str) -> None:
    fields = {"message_id": ours.message_id} if isinstance(ours, P.SubmitSmResp) else {}
    status = getattr(ours, "status", 0)
    reference = smpplib.smpp.make_pdu(
        command, client=SimpleSequenceGenerator(), status=status, **fields
    )
    reference.sequence = ours.sequence
    assert P.encode(ours) == reference.generate()
    assert P.decode(reference.generate()) == ours


def test_a_throttled_submit_sm_resp_without_a_body_decodes() -> None:
    data = P.HEADER.pack(16, P.SUBMIT_SM_RESP, P.ESME_RTHROTTLED, 12)
    assert P.decode(data) == P.SubmitSmResp(sequence=12, status=0x58, message_id="")


def test_a_truncated_tlv_is_dropped_and_an_unknown_command_kept_raw() -> None:
    full = P.encode(P.DeliverSm(sequence=1, tlvs=(P.Tlv(P.TAG_MESSAGE_STATE, b"\x02"),)))
    cut = full + b"\x00\x1e\x00\x09ab"  # announces 9 octets, carries 2
    cut = P.HEADER.pack(len(cut), P.DELIVER_SM, 0, 1) + cut[16:]
    pdu = P.decode(cut)
    assert isinstance(pdu, P.DeliverSm)
    assert pdu.tlvs == (P.Tlv(P.TAG_MESSAGE_STATE, b"\x02"),)
    query = P.HEADER.pack(20, 0x00000003, 0, 4) + b"abcd"
    assert P.decode(query) == P.UnknownPdu(command_id=3, sequence=4, body=b"abcd")


def test_a_length_that_disagrees_with_the_bytes_is_malformed_and_keeps_the_sequence() -> None:
    data = P.encode(P.EnquireLink(sequence=33)) + b"\x00"
    with pytest.raises(P.MalformedPdu) as caught:
        P.decode(data)
    assert caught.value.sequence == 33
    with pytest.raises(P.MalformedPdu):
        P.command_length(b"\x00\x00\x00\x08")


def test_strings_too_long_for_their_field_are_refused_on_encode() -> None:
    with pytest.raises(ValueError, match="password"):
        P.encode(P.BindTransceiver(sequence=1, system_id="a", password="123456789"))
    with pytest.raises(ValueError, match="short_message"):
        P.encode(P.SubmitSm(sequence=1, short_message=b"x" * 255))


def test_a_bind_never_shows_its_password() -> None:
    assert "hunter2" not in repr(P.BindTransceiver(sequence=1, system_id="a", password="hunter2"))


# ---- hypothesis round trips -----------------------------------------------------------------

octet = st.integers(0, 255)
sequence = st.integers(1, P.MAX_SEQUENCE)


def cstr(max_octets: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=max_octets - 1)


tlvs = st.lists(st.builds(P.Tlv, st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=3).map(
    tuple
)


def short_message(cls: type[P.SubmitSm] | type[P.DeliverSm]) -> st.SearchStrategy[P.Pdu]:
    return st.builds(
        cls, sequence=sequence, service_type=cstr(6), source_addr_ton=octet,
        source_addr_npi=octet, source_addr=cstr(21), dest_addr_ton=octet, dest_addr_npi=octet,
        destination_addr=cstr(21), esm_class=octet, protocol_id=octet, priority_flag=octet,
        schedule_delivery_time=cstr(17), validity_period=cstr(17), registered_delivery=octet,
        replace_if_present_flag=octet, data_coding=octet, sm_default_msg_id=octet,
        short_message=st.binary(max_size=254), tlvs=tlvs,
    )  # fmt: skip


pdus = st.one_of(
    st.builds(P.BindTransceiver, sequence=sequence, system_id=cstr(16), password=cstr(9),
              system_type=cstr(13), interface_version=octet, addr_ton=octet, addr_npi=octet,
              address_range=cstr(41)),
    st.builds(P.BindTransceiverResp, sequence=sequence, status=st.integers(0, 0xFFFF),
              system_id=cstr(16), tlvs=tlvs),
    short_message(P.SubmitSm),
    short_message(P.DeliverSm),
    st.builds(P.SubmitSmResp, sequence=sequence, status=st.integers(0, 0xFF),
              message_id=cstr(65)),
    st.builds(P.DeliverSmResp, sequence=sequence, status=st.integers(0, 0xFF),
              message_id=cstr(65)),
    st.builds(P.EnquireLink, sequence=sequence),
    st.builds(P.EnquireLinkResp, sequence=sequence, status=st.integers(0, 0xFF)),
    st.builds(P.Unbind, sequence=sequence),
    st.builds(P.UnbindResp, sequence=sequence, status=st.integers(0, 0xFF)),
    st.builds(P.GenericNack, sequence=sequence, status=st.integers(0, 0xFF)),
)  # fmt: skip


@given(pdus)
def test_every_pdu_decodes_to_what_was_encoded(pdu: P.Pdu) -> None:
    data = P.encode(pdu)
    assert P.command_length(data) == len(data)
    assert P.decode(data) == pdu


# ---- long messages --------------------------------------------------------------------------


def parts_text(encoded: P.EncodedMessage) -> list[str]:
    texts = []
    for raw in encoded.parts:
        concat, data = P.split_udh(encoded.esm_class, raw)
        assert (concat is None) == (len(encoded.parts) == 1)
        texts.append(P.decode_text(encoded.data_coding, data))
    return texts


def test_gsm_parts_carry_153_septets_and_ucs2_parts_67_characters() -> None:
    gsm = P.encode_message("a" * 400, ref=1)
    assert (gsm.data_coding, gsm.esm_class) == (P.DC_DEFAULT, P.ESM_UDHI)
    assert [len(p) - 6 for p in gsm.parts] == [153, 153, 94]
    ucs2 = P.encode_message("ж" * 150, ref=1)
    assert ucs2.data_coding == P.DC_UCS2
    assert [(len(p) - 6) // 2 for p in ucs2.parts] == [67, 67, 16]
    assert [p[:6] for p in ucs2.parts] == [bytes((5, 0, 3, 1, 3, i)) for i in (1, 2, 3)]


def test_a_text_that_fits_one_sms_goes_whole_without_udh() -> None:
    assert P.encode_message("a" * 160, ref=9) == P.EncodedMessage(0, 0, (b"a" * 160,))
    assert len(P.encode_message("a" * 161, ref=9).parts) == 2
    assert len(P.encode_message("ж" * 70, ref=9).parts) == 1
    assert len(P.encode_message("ж" * 71, ref=9).parts) == 2


def test_an_escape_pair_or_a_surrogate_pair_is_never_split() -> None:
    gsm = parts_text(P.encode_message("a" * 152 + "€" + "b" * 20, ref=1))
    assert gsm == ["a" * 152, "€" + "b" * 20]
    ucs2 = parts_text(P.encode_message("ж" * 66 + "😀" + "ж" * 10, ref=1))
    assert ucs2 == ["ж" * 66, "😀" + "ж" * 10]


texts = st.text(st.sampled_from("abcXYZ 019@£$_{}[]€^~|\\\néàж“”😀"), min_size=0, max_size=700)


@given(texts, st.integers(0, 255))
def test_parts_reassemble_to_the_text_and_count_as_sms_segments_says(text: str, ref: int) -> None:
    encoded = P.encode_message(text, ref)
    assert len(encoded.parts) == max(1, sms_segments(text).segments)
    assert all(len(p) <= 140 or encoded.data_coding == P.DC_DEFAULT for p in encoded.parts)
    assert all(len(p) <= 160 for p in encoded.parts)
    joiner = P.Reassembler()
    if len(encoded.parts) == 1:
        assert parts_text(encoded) == [text]
        return
    outcomes = []
    for raw in encoded.parts:
        concat, data = P.split_udh(encoded.esm_class, raw)
        assert concat is not None
        assert concat.ref == ref
        outcomes.append(joiner.add("+1", "+2", concat, P.decode_text(encoded.data_coding, data)))
    assert outcomes[:-1] == [None] * (len(outcomes) - 1)
    assert outcomes[-1] == text


def test_sar_tlvs_count_as_concatenation_too() -> None:
    pdu = P.DeliverSm(
        sequence=1, short_message=b"part",
        tlvs=(P.Tlv(P.TAG_SAR_MSG_REF_NUM, b"\x01\x02"), P.Tlv(P.TAG_SAR_TOTAL_SEGMENTS, b"\x03"),
              P.Tlv(P.TAG_SAR_SEGMENT_SEQNUM, b"\x02")),
    )  # fmt: skip
    assert P.concat_of(pdu) == (P.Concat(0x0102, 3, 2), b"part")


def test_a_malformed_udh_leaves_the_data_alone() -> None:
    assert P.split_udh(P.ESM_UDHI, b"\x09\x00\x03") == (None, b"\x09\x00\x03")
    assert P.split_udh(0, b"\x05\x00\x03\x01\x02\x01hi") == (None, b"\x05\x00\x03\x01\x02\x01hi")


def test_gsm_text_round_trips_through_the_default_alphabet() -> None:
    text = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà^{}\\[~]|€\f"
    assert P.gsm_decode(P.gsm_encode(text)) == text
    assert P.gsm_encode("@_$") == b"\x00\x11\x02"
    assert P.gsm_encode("ж", replace=True) == b"?"
    with pytest.raises(ValueError, match="GSM"):
        P.gsm_encode("ж")


# ---- receipt text ---------------------------------------------------------------------------

STANDARD = (
    "id:1234567890 sub:001 dlvrd:001 submit date:2603021530 done date:2603021531"
    " stat:DELIVRD err:000 text:Hi Ana, id:not this one"
)


def test_a_standard_receipt_text_parses_every_field() -> None:
    assert P.parse_receipt_text(STANDARD) == P.ReceiptText(
        id="1234567890", sub="001", dlvrd="001", submit_date="2603021530",
        done_date="2603021531", stat="DELIVRD", err="000", text="Hi Ana, id:not this one",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ID:ab12 STAT:undeliv ERR:005", P.ReceiptText(id="ab12", stat="undeliv", err="005")),
        ("stat:EXPIRED id:77", P.ReceiptText(id="77", stat="EXPIRED")),
        ("id: 99  Submit_Date:2603021530 stat: DELIVRD",
         P.ReceiptText(id="99", submit_date="2603021530", stat="DELIVRD")),
        ("id:5 submitdate:2603021530 donedate:2603021532 stat:REJECTD",
         P.ReceiptText(id="5", submit_date="2603021530", done_date="2603021532",
                       stat="REJECTD")),
        ("stat:DELIVRD", P.ReceiptText(stat="DELIVRD")),
        ("id:abc-def", P.ReceiptText(id="abc-def")),
    ],
)  # fmt: skip
def test_receipt_text_is_parsed_leniently(text: str, expected: P.ReceiptText) -> None:
    assert P.parse_receipt_text(text) == expected


@pytest.mark.parametrize("text", ["", "Hello there", "sub:001 dlvrd:001 err:000", "valid:123"])
def test_a_text_without_id_or_stat_is_no_receipt(text: str) -> None:
    assert P.parse_receipt_text(text) is None


@pytest.mark.parametrize(
    ("stat", "state", "status"),
    [
        ("DELIVRD", None, "delivered"), ("delivered", None, "delivered"),
        ("UNDELIV", None, "undelivered"), ("EXPIRED", None, "failed"),
        ("REJECTD", None, "failed"), ("DELETED", None, "failed"), ("UNKNOWN", None, "failed"),
        ("ACCEPTD", None, "sent"), ("ENROUTE", None, "sent"), (None, 2, "delivered"),
        (None, 5, "undelivered"), (None, 8, "failed"), ("DELIVRD", 5, "delivered"),
        ("???", 6, "sent"), ("???", None, None), (None, None, None),
    ],
)  # fmt: skip
def test_receipt_states_map_to_clarion_statuses(
    stat: str | None, state: int | None, status: str | None
) -> None:
    assert P.receipt_status(stat, state) == status


def test_receipt_dates_read_as_utc_with_or_without_seconds() -> None:
    assert P.parse_receipt_date("2603021531") == datetime(2026, 3, 2, 15, 31, tzinfo=UTC)
    assert P.parse_receipt_date("260302153107") == datetime(2026, 3, 2, 15, 31, 7, tzinfo=UTC)
    assert P.parse_receipt_date("2613021531") is None
    assert P.parse_receipt_date("yesterday") is None


# ---- id normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "base", "out_base", "canonical"),
    [
        ("1A2B", 16, 16, "1a2b"),  # a hex submit id, as given but lowercase
        ("00001a2b", 16, 16, "1a2b"),  # leading zeros do not matter
        ("6699", 10, 16, "1a2b"),  # the same id, decimal in the receipt text
        ("0000006699", 10, 16, "1a2b"),
        ("1a2b", 16, None, "6699"),  # decimal submit ids: hex receipts become decimal
        ("6699", 10, 10, "6699"),
        (" 1a2b\x00", 16, 16, "1a2b"),  # padding and NULs are dropped
        ("abc-123", 16, 16, "abc-123"),  # not a number in its base: kept as given
        ("1_0", 16, 16, "1_0"),  # Python's int() would accept this; SMSCs do not mean it
        ("AbC", None, None, "AbC"),  # opaque ids compare as given
    ],
)
def test_ids_in_either_base_normalise_to_the_submit_form(
    raw: str, base: int | None, out_base: int | None, canonical: str
) -> None:
    assert P.canonical_id(raw, base, out_base=out_base) == canonical


@given(st.integers(0, 2**64))
def test_a_hex_submit_id_and_its_decimal_receipt_id_meet(n: int) -> None:
    submit = format(n, "X").zfill(10)
    assert P.canonical_id(submit, 16, out_base=16) == P.canonical_id(str(n), 10, out_base=16)


# ---- the provider's pure parts --------------------------------------------------------------


async def _ignore(_: list[Receipt] | list[InboundMessage]) -> None:
    return None


def provider(**options: object) -> SmppProvider:
    return SmppProvider(
        host="127.0.0.1", port=1, system_id="acct", password="hunter2",
        on_receipts=_ignore, on_inbound=_ignore, clock=lambda: NOW, **options,  # type: ignore[arg-type]
    )  # fmt: skip


def receipt_pdu(text: str, *tlvs: P.Tlv) -> P.DeliverSm:
    return P.DeliverSm(sequence=1, esm_class=0x04, short_message=text.encode(), tlvs=tlvs)


def test_the_receipted_message_id_tlv_wins_over_the_text_id() -> None:
    pdu = receipt_pdu(
        "id:999 stat:DELIVRD err:000", P.Tlv(P.TAG_RECEIPTED_MESSAGE_ID, b"A000001F\x00")
    )
    receipt = provider(submit_id_base=16, receipt_id_base=10).receipt_of(pdu)
    assert receipt == Receipt(
        message_id="", status="delivered", occurred_at=NOW, provider_message_id="a000001f"
    )


def test_without_the_tlv_the_decimal_text_id_becomes_the_hex_submit_form() -> None:
    pdu = receipt_pdu("id:2684354591 stat:UNDELIV err:30003 done date:2603021530")
    receipt = provider(submit_id_base=16, receipt_id_base=10).receipt_of(pdu)
    assert receipt is not None
    assert receipt.provider_message_id == format(2684354591, "x")
    assert (receipt.status, receipt.error_code) == ("undelivered", "30003")
    assert receipt.occurred_at == NOW  # done date within two minutes: the arrival time


def test_a_late_receipt_keeps_its_done_date_and_unset_bases_compare_ids_as_given() -> None:
    late = NOW - timedelta(hours=3)
    pdu = receipt_pdu(f"id:00FF stat:EXPIRED err:000 done date:{late:%y%m%d%H%M}")
    receipt = provider().receipt_of(pdu)
    assert receipt is not None
    assert (receipt.provider_message_id, receipt.status) == ("00FF", "failed")
    assert receipt.error_code is None  # err 000 is no error
    assert receipt.occurred_at == late.replace(second=0)


def test_a_receipt_without_id_or_known_state_is_not_a_receipt() -> None:
    assert provider().receipt_of(receipt_pdu("stat:DELIVRD")) is None
    assert provider().receipt_of(receipt_pdu("id:12 stat:WHATEVER")) is None
    only_tlvs = receipt_pdu(
        "", P.Tlv(P.TAG_RECEIPTED_MESSAGE_ID, b"7\x00"), P.Tlv(P.TAG_MESSAGE_STATE, b"\x02")
    )
    receipt = provider().receipt_of(only_tlvs)
    assert receipt is not None
    assert (receipt.provider_message_id, receipt.status) == ("7", "delivered")


@pytest.mark.parametrize(
    ("status", "accepted", "retry", "throttled"),
    [
        (P.ESME_ROK, True, False, False),
        (P.ESME_RTHROTTLED, False, True, True),
        (P.ESME_RMSGQFUL, False, True, True),
        (P.ESME_RINVDSTADR, False, False, False),
        (P.ESME_RINVSRCADR, False, False, False),
        (P.ESME_RSYSERR, False, True, False),
    ],
)
def test_submit_statuses_map_to_send_results(
    status: int, accepted: bool, retry: bool, throttled: bool
) -> None:
    result = result_for("m1", status, "abc")
    assert (result.accepted, result.retry, result.throttled) == (accepted, retry, throttled)
    assert result.error_code == (None if accepted else f"smpp:0x{status:02x}")


def test_from_env_names_the_missing_setting_and_repr_hides_the_password() -> None:
    env = {
        "CLARION_SMPP_HOST": "smsc.example",
        "CLARION_SMPP_PORT": "2775",
        "CLARION_SMPP_SYSTEM_ID": "acct",
        "CLARION_SMPP_PASSWORD": "hunter2",
        "CLARION_SMPP_BINDS": "3",
        "CLARION_SMPP_SUBMIT_ID_BASE": "16",
    }
    made = SmppProvider.from_env(on_receipts=_ignore, on_inbound=_ignore, environ=env)
    assert (made.host, made.port, made.system_id, len(made.sessions)) == (
        "smsc.example", 2775, "acct", 3,
    )  # fmt: skip
    assert (made.submit_id_base, made.receipt_id_base) == (16, None)
    assert "hunter2" not in repr(made)
    assert "hunter2" not in repr(made.sessions[0])
    for missing in ("HOST", "PORT", "SYSTEM_ID", "PASSWORD"):
        partial = {k: v for k, v in env.items() if k != f"CLARION_SMPP_{missing}"}
        with pytest.raises(ConfigurationError, match=f"CLARION_SMPP_{missing}"):
            SmppProvider.from_env(on_receipts=_ignore, on_inbound=_ignore, environ=partial)
    with pytest.raises(ConfigurationError, match="CLARION_SMPP_PORT"):
        SmppProvider.from_env(
            on_receipts=_ignore, on_inbound=_ignore, environ={**env, "CLARION_SMPP_PORT": "x"}
        )
    with pytest.raises(ConfigurationError, match="base"):
        provider(submit_id_base=8)


def test_smpp_has_no_webhooks_and_no_carrier_lookup() -> None:
    p = provider()
    with pytest.raises(InvalidInput, match="SMPP reports over its session"):
        p.parse_status_webhook("/x", {}, b"")
    with pytest.raises(InvalidInput, match="SMPP reports over its session"):
        p.parse_inbound_webhook("/x", {}, b"")
    assert asyncio.run(p.lookup_carriers(["+12127000001"])) == {}
    assert (p.name, p.idempotent, p.max_batch) == ("smpp", False, 100)
