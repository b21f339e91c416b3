"""SMPP 3.4 PDUs, short-message text and delivery receipts: pure functions, no I/O.

Covers what an ESME and a small SMSC need: bind_transceiver, submit_sm, deliver_sm,
enquire_link, unbind (each with its response) and generic_nack. Anything else decodes as an
`UnknownPdu`, which the peer answers with generic_nack. Decoding is lenient where SMSCs are
known to differ (a missing body on an error response, truncated TLVs, receipt text layout);
encoding is strict (a C-octet string too long for its field raises `ValueError`).

Text goes on the wire as the SMSC default alphabet (data_coding 0: GSM 03.38, one unpacked
septet per byte, the extension characters as ESC + code) or UCS-2 big-endian (0x08), chosen
by `compliance.encoding.sms_segments`. A long text becomes UDH-concatenated parts (IEI 0x00,
8-bit reference) of 153 septets or 67 UTF-16 units, never splitting an escape or a surrogate
pair, so the part count equals `sms_segments(text).segments`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeAlias

import msgspec

from clarion.compliance.encoding import sms_segments
from clarion.errors import InvalidInput

# Command ids (SMPP 3.4 §5.1.2.1); a response is its request's id with the top bit set.
GENERIC_NACK = 0x80000000
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
RESPONSE_BIT = 0x80000000

# Command status (§5.1.3), the ones Clarion acts on.
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01  # message too long: permanent
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04  # not bound
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVSRCADR = 0x0A  # bad source address: permanent
ESME_RINVDSTADR = 0x0B  # bad destination address: permanent
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14  # message queue full: slow down
ESME_RTHROTTLED = 0x58  # over the agreed rate: slow down
ESME_RX_T_APPN = 0x64  # ESME temporary application error: the SMSC redelivers

# Optional parameter tags (§5.3.2).
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_SAR_MSG_REF_NUM = 0x020C
TAG_SAR_TOTAL_SEGMENTS = 0x020E
TAG_SAR_SEGMENT_SEQNUM = 0x020F
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_MESSAGE_STATE = 0x0427

# esm_class bits (§5.2.12).
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04
ESM_UDHI = 0x40

# data_coding (§5.2.19).
DC_DEFAULT = 0x00  # SMSC default alphabet: GSM 03.38 here
DC_IA5 = 0x01
DC_LATIN1 = 0x03
DC_UCS2 = 0x08

# registered_delivery (§5.2.17): a receipt on final success or failure / on failure only.
RD_FINAL = 0x01
RD_FAILURE = 0x02
RD_INTERMEDIATE = 0x10

# Type of number / numbering plan (§5.2.5, §5.2.6).
TON_UNKNOWN, TON_INTERNATIONAL, TON_ALPHANUMERIC = 0x00, 0x01, 0x05
NPI_UNKNOWN, NPI_ISDN = 0x00, 0x01

HEADER = struct.Struct(">IIII")  # command_length, command_id, command_status, sequence_number
MAX_SEQUENCE = 0x7FFFFFFF
MAX_SHORT_MESSAGE = 254


class MalformedPdu(InvalidInput):
    """Bytes that are not a PDU we can read; `sequence` (when the header was readable) is what
    a generic_nack should answer."""

    def __init__(self, message: str, *, sequence: int = 0) -> None:
        super().__init__(f"malformed SMPP PDU: {message}")
        self.sequence = sequence


class Tlv(msgspec.Struct, frozen=True):
    tag: int
    value: bytes


class BindTransceiver(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""

    def __repr__(self) -> str:  # never show the password
        return f"BindTransceiver(sequence={self.sequence}, system_id={self.system_id!r})"


class BindTransceiverResp(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    status: int = ESME_ROK
    system_id: str = ""
    tlvs: tuple[Tlv, ...] = ()


class _ShortMessage(msgspec.Struct, frozen=True, kw_only=True):
    """submit_sm and deliver_sm share their body (§4.4.1, §4.6.1)."""

    sequence: int
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: tuple[Tlv, ...] = ()

    def tlv(self, tag: int) -> bytes | None:
        """The value of the first optional parameter with `tag`, if any."""
        return next((t.value for t in self.tlvs if t.tag == tag), None)

    def payload(self) -> bytes:
        """The user data: short_message, or the message_payload TLV when that is empty."""
        return self.short_message or self.tlv(TAG_MESSAGE_PAYLOAD) or b""


class SubmitSm(_ShortMessage, frozen=True, kw_only=True):
    pass


class DeliverSm(_ShortMessage, frozen=True, kw_only=True):
    pass


class SubmitSmResp(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    status: int = ESME_ROK
    message_id: str = ""


class DeliverSmResp(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    status: int = ESME_ROK
    message_id: str = ""


class EnquireLink(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int


class EnquireLinkResp(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    status: int = ESME_ROK


class Unbind(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int


class UnbindResp(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    status: int = ESME_ROK


class GenericNack(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    status: int


class UnknownPdu(msgspec.Struct, frozen=True, kw_only=True):
    """A command this codec does not model (query_sm, data_sm, …), kept raw."""

    command_id: int
    sequence: int
    status: int = ESME_ROK
    body: bytes = b""


Pdu: TypeAlias = (
    BindTransceiver | BindTransceiverResp | SubmitSm | SubmitSmResp | DeliverSm | DeliverSmResp
    | EnquireLink | EnquireLinkResp | Unbind | UnbindResp | GenericNack | UnknownPdu
)  # fmt: skip
Response: TypeAlias = (
    BindTransceiverResp | SubmitSmResp | DeliverSmResp | EnquireLinkResp | UnbindResp
    | GenericNack
)  # fmt: skip

# ---- encoding -------------------------------------------------------------------------------


def _cstr(value: str, max_octets: int, name: str) -> bytes:
    """A C-octet string; `max_octets` counts the terminating NUL, as the spec's tables do."""
    raw = value.encode("latin-1")
    if b"\x00" in raw or len(raw) + 1 > max_octets:
        raise ValueError(f"{name} must be at most {max_octets - 1} octets without NUL")
    return raw + b"\x00"


def _tlvs(tlvs: tuple[Tlv, ...]) -> bytes:
    return b"".join(struct.pack(">HH", t.tag, len(t.value)) + t.value for t in tlvs)


def _short_message_body(p: _ShortMessage) -> bytes:
    if len(p.short_message) > MAX_SHORT_MESSAGE:
        raise ValueError(f"short_message is at most {MAX_SHORT_MESSAGE} octets")
    return b"".join(
        (
            _cstr(p.service_type, 6, "service_type"),
            bytes((p.source_addr_ton, p.source_addr_npi)),
            _cstr(p.source_addr, 21, "source_addr"),
            bytes((p.dest_addr_ton, p.dest_addr_npi)),
            _cstr(p.destination_addr, 21, "destination_addr"),
            bytes((p.esm_class, p.protocol_id, p.priority_flag)),
            _cstr(p.schedule_delivery_time, 17, "schedule_delivery_time"),
            _cstr(p.validity_period, 17, "validity_period"),
            bytes((p.registered_delivery, p.replace_if_present_flag, p.data_coding)),
            bytes((p.sm_default_msg_id, len(p.short_message))),
            p.short_message,
            _tlvs(p.tlvs),
        )
    )


def _body(pdu: Pdu) -> tuple[int, int, bytes]:
    """(command_id, command_status, body) of a PDU."""
    match pdu:
        case BindTransceiver():
            body = b"".join(
                (
                    _cstr(pdu.system_id, 16, "system_id"),
                    _cstr(pdu.password, 9, "password"),
                    _cstr(pdu.system_type, 13, "system_type"),
                    bytes((pdu.interface_version, pdu.addr_ton, pdu.addr_npi)),
                    _cstr(pdu.address_range, 41, "address_range"),
                )
            )
            return BIND_TRANSCEIVER, ESME_ROK, body
        case BindTransceiverResp():
            body = _cstr(pdu.system_id, 16, "system_id") + _tlvs(pdu.tlvs)
            return BIND_TRANSCEIVER_RESP, pdu.status, body
        case SubmitSm():
            return SUBMIT_SM, ESME_ROK, _short_message_body(pdu)
        case DeliverSm():
            return DELIVER_SM, ESME_ROK, _short_message_body(pdu)
        case SubmitSmResp():
            return SUBMIT_SM_RESP, pdu.status, _cstr(pdu.message_id, 65, "message_id")
        case DeliverSmResp():
            return DELIVER_SM_RESP, pdu.status, _cstr(pdu.message_id, 65, "message_id")
        case EnquireLink():
            return ENQUIRE_LINK, ESME_ROK, b""
        case EnquireLinkResp():
            return ENQUIRE_LINK_RESP, pdu.status, b""
        case Unbind():
            return UNBIND, ESME_ROK, b""
        case UnbindResp():
            return UNBIND_RESP, pdu.status, b""
        case GenericNack():
            return GENERIC_NACK, pdu.status, b""
        case UnknownPdu():
            return pdu.command_id, pdu.status, pdu.body


def encode(pdu: Pdu) -> bytes:
    """The PDU's bytes, header included."""
    command_id, status, body = _body(pdu)
    if not 0 <= pdu.sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence number {pdu.sequence} out of range")
    return HEADER.pack(HEADER.size + len(body), command_id, status, pdu.sequence) + body


# ---- decoding -------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, sequence: int) -> None:
        self.data, self.pos, self.sequence = data, 0, sequence

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise MalformedPdu("body ends inside a field", sequence=self.sequence)
        self.pos += 1
        return self.data[self.pos - 1]

    def cstr(self) -> str:
        """A C-octet string; at the very end of the body an absent string reads as "" (error
        responses often come without a body) and a missing NUL is tolerated."""
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            end = len(self.data)
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = min(end + 1, len(self.data))
        return value

    def octets(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedPdu("short_message runs past the body", sequence=self.sequence)
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def tlvs(self) -> tuple[Tlv, ...]:
        """Optional parameters; a truncated one at the end is dropped, not an error."""
        found: list[Tlv] = []
        while self.pos + 4 <= len(self.data):
            tag, length = struct.unpack_from(">HH", self.data, self.pos)
            if self.pos + 4 + length > len(self.data):
                break
            found.append(Tlv(tag, self.data[self.pos + 4 : self.pos + 4 + length]))
            self.pos += 4 + length
        self.pos = len(self.data)
        return tuple(found)


def _decode_short_message(cls: type[SubmitSm] | type[DeliverSm], r: _Reader) -> Pdu:
    service_type = r.cstr()
    source = (r.u8(), r.u8(), r.cstr())
    dest = (r.u8(), r.u8(), r.cstr())
    esm_class, protocol_id, priority_flag = r.u8(), r.u8(), r.u8()
    schedule, validity = r.cstr(), r.cstr()
    registered, replace, data_coding, default_id = r.u8(), r.u8(), r.u8(), r.u8()
    short_message = r.octets(r.u8())
    return cls(
        sequence=r.sequence,
        service_type=service_type,
        source_addr_ton=source[0],
        source_addr_npi=source[1],
        source_addr=source[2],
        dest_addr_ton=dest[0],
        dest_addr_npi=dest[1],
        destination_addr=dest[2],
        esm_class=esm_class,
        protocol_id=protocol_id,
        priority_flag=priority_flag,
        schedule_delivery_time=schedule,
        validity_period=validity,
        registered_delivery=registered,
        replace_if_present_flag=replace,
        data_coding=data_coding,
        sm_default_msg_id=default_id,
        short_message=short_message,
        tlvs=r.tlvs(),
    )


_Decoder: TypeAlias = Callable[[_Reader, int], Pdu]


def command_length(prefix: bytes) -> int:
    """The length a PDU announces in its first four bytes (framing a stream)."""
    (length,) = struct.unpack(">I", prefix[:4])
    if length < HEADER.size:
        raise MalformedPdu(f"command_length {length} is shorter than the header")
    return int(length)


def decode(data: bytes) -> Pdu:
    """One PDU from exactly its bytes. Raises `MalformedPdu`."""
    if len(data) < HEADER.size:
        raise MalformedPdu(f"{len(data)} bytes is shorter than the header")
    length, command_id, status, sequence = HEADER.unpack_from(data)
    if length != len(data):
        raise MalformedPdu(f"command_length {length} but {len(data)} bytes", sequence=sequence)
    decoder = _DECODERS.get(command_id)
    if decoder is None:
        return UnknownPdu(
            command_id=command_id, sequence=sequence, status=status, body=data[HEADER.size :]
        )
    return decoder(_Reader(data[HEADER.size :], sequence), status)


def _decode_bind(r: _Reader, status: int) -> Pdu:
    system_id, password, system_type = r.cstr(), r.cstr(), r.cstr()
    version, ton, npi = r.u8(), r.u8(), r.u8()
    return BindTransceiver(
        sequence=r.sequence, system_id=system_id, password=password, system_type=system_type,
        interface_version=version, addr_ton=ton, addr_npi=npi, address_range=r.cstr(),
    )  # fmt: skip


def _decode_bind_resp(r: _Reader, status: int) -> Pdu:
    system_id = r.cstr()
    return BindTransceiverResp(
        sequence=r.sequence, status=status, system_id=system_id, tlvs=r.tlvs()
    )


def _decode_id_resp(cls: type[SubmitSmResp] | type[DeliverSmResp]) -> _Decoder:
    return lambda r, status: cls(sequence=r.sequence, status=status, message_id=r.cstr())


def _decode_empty(cls: type[EnquireLinkResp] | type[UnbindResp] | type[GenericNack]) -> _Decoder:
    return lambda r, status: cls(sequence=r.sequence, status=status)


_DECODERS: dict[int, _Decoder] = {
    BIND_TRANSCEIVER: _decode_bind,
    BIND_TRANSCEIVER_RESP: _decode_bind_resp,
    SUBMIT_SM: lambda r, _: _decode_short_message(SubmitSm, r),
    DELIVER_SM: lambda r, _: _decode_short_message(DeliverSm, r),
    SUBMIT_SM_RESP: _decode_id_resp(SubmitSmResp),
    DELIVER_SM_RESP: _decode_id_resp(DeliverSmResp),
    ENQUIRE_LINK: lambda r, _: EnquireLink(sequence=r.sequence),
    ENQUIRE_LINK_RESP: _decode_empty(EnquireLinkResp),
    UNBIND: lambda r, _: Unbind(sequence=r.sequence),
    UNBIND_RESP: _decode_empty(UnbindResp),
    GENERIC_NACK: _decode_empty(GenericNack),
}


# ---- addresses ------------------------------------------------------------------------------


def address_of(number: str) -> tuple[int, int, str]:
    """(TON, NPI, address) for a number: E.164 goes as international digits without "+",
    an alphanumeric sender as TON 5."""
    if number.startswith("+") and number[1:].isdigit():
        return TON_INTERNATIONAL, NPI_ISDN, number[1:]
    if number.isdigit():
        return TON_UNKNOWN, NPI_ISDN, number
    return TON_ALPHANUMERIC, NPI_UNKNOWN, number


def number_of(ton: int, address: str) -> str:
    """The number an address stands for: international digits become E.164."""
    if ton == TON_INTERNATIONAL and address.isdigit():
        return "+" + address
    return address


# ---- text -----------------------------------------------------------------------------------

# GSM 03.38 default alphabet by code (0x1B is the escape to the extension table).
_GSM = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
            "]": 0x3E, "|": 0x40, "€": 0x65}  # fmt: skip
_GSM_CODE = {ch: i for i, ch in enumerate(_GSM) if i != 0x1B}
_GSM_EXT_CHAR = {code: ch for ch, code in _GSM_EXT.items()}
GSM_PART_SEPTETS, UCS2_PART_UNITS = 153, 67


def _gsm_char(ch: str, replace: bool) -> bytes:
    code = _GSM_CODE.get(ch)
    if code is not None:
        return bytes((code,))
    ext = _GSM_EXT.get(ch)
    if ext is not None:
        return bytes((0x1B, ext))
    if replace:
        return bytes((_GSM_CODE["?"],))
    raise ValueError(f"{ch!r} is not in the GSM 03.38 alphabet")


def gsm_encode(text: str, *, replace: bool = False) -> bytes:
    """GSM 03.38 text as unpacked septets, one a byte. A character outside the alphabet raises
    `ValueError`, or becomes "?" with `replace`."""
    return b"".join(_gsm_char(ch, replace) for ch in text)


def gsm_decode(data: bytes) -> str:
    """Unpacked GSM 03.38 septets as text; an unknown code reads as "?" (lenient)."""
    out: list[str] = []
    escaped = False
    for b in data:
        if escaped:
            out.append(_GSM_EXT_CHAR.get(b, "?"))
            escaped = False
        elif b == 0x1B:
            escaped = True
        else:
            out.append(_GSM[b] if b < 0x80 else "?")
    return "".join(out)


def decode_text(data_coding: int, data: bytes) -> str:
    """The text of a short message (without its UDH) in the given data_coding."""
    if data_coding == DC_DEFAULT:
        return gsm_decode(data)
    if data_coding == DC_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if data_coding == DC_IA5:
        return data.decode("ascii", errors="replace")
    return data.decode("latin-1")  # Latin-1, and 8-bit data shown as such


class Concat(msgspec.Struct, frozen=True):
    """Where a part belongs: reference, total parts, this part's number (1-based)."""

    ref: int
    total: int
    seq: int


class EncodedMessage(msgspec.Struct, frozen=True):
    """A text ready for submit_sm: its data_coding, esm_class, and one short_message a part."""

    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]


def encode_message(text: str, ref: int) -> EncodedMessage:
    """The submit_sm parts of `text`; when it needs more than one SMS, each part starts with a
    concatenation UDH carrying `ref` (0-255). Raises `ValueError` beyond 255 parts."""
    encoding = sms_segments(text).encoding
    if encoding == "GSM-7":
        units = [gsm_encode(ch) for ch in text]
        data_coding, single, part = DC_DEFAULT, 160, GSM_PART_SEPTETS
    else:
        units = [ch.encode("utf-16-be") for ch in text]
        data_coding, single, part = DC_UCS2, 140, UCS2_PART_UNITS * 2
    whole = b"".join(units)
    if len(whole) <= single:
        return EncodedMessage(data_coding, 0, (whole,))
    chunks: list[bytes] = []
    current = b""
    for unit in units:  # never split an escape pair or a surrogate pair
        if len(current) + len(unit) > part:
            chunks.append(current)
            current = b""
        current += unit
    chunks.append(current)
    if len(chunks) > 255:
        raise ValueError(f"a text of {len(chunks)} parts cannot be concatenated (max 255)")
    header = bytes((5, 0x00, 3, ref & 0xFF, len(chunks)))
    return EncodedMessage(
        data_coding,
        ESM_UDHI,
        tuple(header + bytes((i,)) + c for i, c in enumerate(chunks, start=1)),
    )


def split_udh(esm_class: int, data: bytes) -> tuple[Concat | None, bytes]:
    """(concatenation info, user data without the UDH). Understands IEI 0x00 (8-bit ref) and
    0x08 (16-bit ref); a malformed UDH leaves the data as it is."""
    if not esm_class & ESM_UDHI or not data or data[0] + 1 > len(data):
        return None, data
    udh, rest = data[1 : 1 + data[0]], data[1 + data[0] :]
    concat, i = None, 0
    while i + 2 <= len(udh):
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2 : i + 2 + length]
        if len(value) < length:
            return None, data
        if iei == 0x00 and length == 3:
            concat = Concat(value[0], value[1], value[2])
        elif iei == 0x08 and length == 4:
            concat = Concat((value[0] << 8) | value[1], value[2], value[3])
        i += 2 + length
    return concat, rest


def concat_of(pdu: SubmitSm | DeliverSm) -> tuple[Concat | None, bytes]:
    """A short message's concatenation info (UDH, or the sar_* TLVs) and its user data."""
    concat, data = split_udh(pdu.esm_class, pdu.payload())
    if concat is None:
        ref = pdu.tlv(TAG_SAR_MSG_REF_NUM)
        total, seq = pdu.tlv(TAG_SAR_TOTAL_SEGMENTS), pdu.tlv(TAG_SAR_SEGMENT_SEQNUM)
        if ref and total and seq:
            concat = Concat(int.from_bytes(ref, "big"), total[0], seq[0])
    if concat is not None and not 1 <= concat.seq <= concat.total:
        concat = None
    return concat, data


class Reassembler:
    """Joins the parts of concatenated messages, keyed by (sender, recipient, ref, total).
    Holds at most `max_pending` incomplete messages (the oldest is dropped first)."""

    def __init__(self, max_pending: int = 10_000) -> None:
        self._pending: dict[tuple[str, str, int, int], dict[int, str]] = {}
        self._max_pending = max_pending

    def add(self, source: str, dest: str, concat: Concat, text: str) -> str | None:
        """The whole text once every part has arrived, else None."""
        key = (source, dest, concat.ref, concat.total)
        parts = self._pending.setdefault(key, {})
        parts[concat.seq] = text
        if len(parts) < concat.total:
            if len(self._pending) > self._max_pending:
                self._pending.pop(next(iter(self._pending)))
            return None
        del self._pending[key]
        return "".join(parts[i] for i in range(1, concat.total + 1))


# ---- delivery receipts ----------------------------------------------------------------------


class ReceiptText(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a receipt's text (SMPP 3.4 Appendix B; vendor-specific in practice)."""

    id: str | None = None
    sub: str | None = None
    dlvrd: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    stat: str | None = None
    err: str | None = None
    text: str | None = None


_RECEIPT_KEY = re.compile(
    r"\b(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:", re.IGNORECASE
)
_FIELD = {"id": "id", "sub": "sub", "dlvrd": "dlvrd", "submitdate": "submit_date",
          "donedate": "done_date", "stat": "stat", "err": "err", "text": "text"}  # fmt: skip


def parse_receipt_text(text: str) -> ReceiptText | None:
    """The fields of a receipt text, keys in any case, in any order, any of them missing; the
    value of `text:` is the rest of the message. None when it has neither id nor stat."""
    matches = list(_RECEIPT_KEY.finditer(text))
    fields: dict[str, str] = {}
    for i, m in enumerate(matches):
        name = _FIELD[re.sub(r"[ _]", "", m.group(1).lower())]
        if name == "text":
            fields.setdefault(name, text[m.end() :].strip())
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[m.end() : end].strip()
        if name not in ("submit_date", "done_date"):
            value = value.split()[0] if value else ""
        if value:
            fields.setdefault(name, value)
    if "id" not in fields and "stat" not in fields:
        return None
    return ReceiptText(**fields)


# stat → Clarion status, by the first five letters (DELIVRD / DELIVERED, UNDELIV / UNDELIVERABLE).
_STAT = {"DELIV": "delivered", "UNDEL": "undelivered", "EXPIR": "failed", "REJEC": "failed",
         "DELET": "failed", "UNKNO": "failed", "FAILE": "failed", "ACCEP": "sent",
         "ENROU": "sent"}  # fmt: skip
# message_state TLV (§5.3.2.35) → Clarion status.
_MESSAGE_STATE = {1: "sent", 2: "delivered", 3: "failed", 4: "failed", 5: "undelivered",
                  6: "sent", 7: "failed", 8: "failed"}  # fmt: skip


def receipt_status(stat: str | None, message_state: int | None = None) -> str | None:
    """Clarion's status for a receipt's `stat` (or, without one, its message_state TLV):
    DELIVRD → delivered, UNDELIV → undelivered, EXPIRED/REJECTD/DELETED/UNKNOWN → failed,
    ACCEPTD/ENROUTE → sent. None when neither says anything known."""
    if stat:
        found = _STAT.get(stat.strip().upper()[:5])
        if found is not None:
            return found
    return _MESSAGE_STATE.get(message_state) if message_state is not None else None


def format_receipt_text(
    message_id: str,
    *,
    stat: str,
    err: str,
    submitted_at: datetime,
    done_at: datetime,
    text: str,
    delivered: bool,
) -> str:
    """A receipt text as SMPP 3.4 Appendix B lays it out (dates as YYMMDDhhmm)."""
    return (
        f"id:{message_id} sub:001 dlvrd:{'001' if delivered else '000'}"
        f" submit date:{submitted_at:%y%m%d%H%M} done date:{done_at:%y%m%d%H%M}"
        f" stat:{stat} err:{err} text:{text[:20]}"
    )


def parse_receipt_date(value: str | None) -> datetime | None:
    """A receipt date (YYMMDDhhmm, or YYMMDDhhmmss) read as UTC; None when unreadable."""
    if not value or not value.isdigit() or len(value) not in (10, 12):
        return None
    try:
        parsed = datetime.strptime(value, "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M")
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC)


_DIGITS = {10: re.compile(r"[0-9]+"), 16: re.compile(r"[0-9a-fA-F]+")}


def canonical_id(raw: str, base: int | None, *, out_base: int | None) -> str:
    """An SMSC message id in one canonical form, so a receipt finds its submit.

    SMSCs write the same id in different bases in different places (a hex submit_sm_resp id
    and a decimal id in the receipt text is common): `base` is how this occurrence is
    written (10, 16, or None: an opaque string). A numeric id becomes its integer written in
    `out_base` (the base of the SMSC's submit_sm_resp ids: lowercase hex, or decimal when
    None or 10) without leading zeros; an opaque id, or one that is not a number in its
    base, is kept as given (surrounding blanks and NULs removed)."""
    value = raw.strip().strip("\x00").strip()
    if base is None or not _DIGITS[base].fullmatch(value):
        return value
    number = int(value, base)
    return format(number, "x") if out_base == 16 else str(number)
