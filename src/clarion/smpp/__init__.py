"""SMPP 3.4: the PDU codec and receipt text (`pdu`, pure) and the ESME session (`session`,
asyncio). The provider adapter is `clarion.providers.smpp`; the simulator's SMSC is
`clarion.sim.smsc`."""

from clarion.smpp.pdu import (
    Concat,
    EncodedMessage,
    MalformedPdu,
    Pdu,
    Reassembler,
    ReceiptText,
    canonical_id,
    decode,
    decode_text,
    encode,
    encode_message,
    parse_receipt_text,
    receipt_status,
    split_udh,
)
from clarion.smpp.session import SmppSession, SubmitNotSent, SubmitUnanswered

__all__ = [
    "Concat",
    "EncodedMessage",
    "MalformedPdu",
    "Pdu",
    "Reassembler",
    "ReceiptText",
    "SmppSession",
    "SubmitNotSent",
    "SubmitUnanswered",
    "canonical_id",
    "decode",
    "decode_text",
    "encode",
    "encode_message",
    "parse_receipt_text",
    "receipt_status",
    "split_udh",
]
