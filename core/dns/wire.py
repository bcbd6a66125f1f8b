"""The DNS messages hanko asks and reads (RFC 1035, EDNS0 of RFC 6891), pure: a query
for one name and type with the DO bit set, and the parts of a reply a decision needs:
its rcode, whether the resolver validated it (AD) or truncated it (TC), and the answer
records of the type asked (CNAMEs followed in the answer, as the resolver chained them).

Written for the hot path of issuance: every name of every certificate is looked up
for CAA, and dnspython's general machinery spent ten times what this does per query.
Replies are checked against the question they answer (id, name, type, class): one
that does not match is no answer, and a malformed one is a failure, never "no
records"."""

from __future__ import annotations

import struct
from dataclasses import dataclass

CLASS_IN = 1
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "TXT": 16, "AAAA": 28, "CAA": 257}
_CNAME = 5
_OPT = 41
FLAG_QR = 0x8000
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_AD = 0x0020
FLAG_DO = 0x8000  # in the OPT record's TTL field
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
MAX_NAME = 255
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_QTAIL = struct.Struct("!HH")
_MAX_POINTERS = 64
_MAX_CHAIN = 16


class WireError(ValueError):
    """A reply that does not parse or does not answer the question asked."""


@dataclass(frozen=True)
class Reply:
    rcode: int
    authenticated: bool  # AD: the resolver validated the answer by DNSSEC
    truncated: bool  # TC: ask again over TCP
    records: tuple[bytes, ...]  # the rdata of the answers of the type asked

    @property
    def rcode_text(self) -> str:
        return RCODES.get(self.rcode, str(self.rcode))


def encode_name(name: str) -> bytes:
    """A name in wire form; ValueError for one that is not a DNS name."""
    text = name.rstrip(".")
    out = bytearray()
    if text:
        for label in text.split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) <= 63:
                raise ValueError(f"{name!r} is not a DNS name")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > MAX_NAME:
        raise ValueError(f"{name!r} is longer than a DNS name can be")
    return bytes(out)


def encode_query(qid: int, name: str, qtype: int, *, payload: int = 1232) -> bytes:
    """A recursive query with EDNS0 (`payload` bytes over UDP) and DO set, so that a
    validating resolver says whether it validated (AD) and keeps the answer's proof."""
    return query_with(qid, encode_name(name) + _QTAIL.pack(qtype, CLASS_IN), payload=payload)


def query_with(qid: int, question: bytes, *, payload: int = 1232) -> bytes:
    """The query of `encode_query` around a question section already encoded."""
    header = _HEADER.pack(qid, FLAG_RD, 1, 0, 0, 1)
    return header + question + b"\x00" + struct.pack("!HHIH", _OPT, payload, FLAG_DO, 0)


def _read_name(data: bytes, offset: int) -> tuple[bytes, int]:
    """The name at `offset` (lower-cased wire labels, compression followed) and where
    what follows it starts."""
    labels: list[bytes] = []
    end = -1
    pointers = 0
    total = 0
    while True:
        if offset >= len(data):
            raise WireError("a name runs past the end of the message")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("a compression pointer runs past the end")
            pointers += 1
            if pointers > _MAX_POINTERS:
                raise WireError("compression pointers loop")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length & 0xC0:
            raise WireError("a label type this client does not know")
        if length == 0:
            if end < 0:
                end = offset + 1
            return b".".join(labels).lower(), end
        label = data[offset + 1 : offset + 1 + length]
        if len(label) != length:
            raise WireError("a label runs past the end of the message")
        total += length + 1
        if total > MAX_NAME:
            raise WireError("a name longer than 255 octets")
        labels.append(label)
        offset += 1 + length


def question(name: str, qtype: int) -> bytes:
    """The question section of a query for (`name`, `qtype`), lower case: what a reply
    must repeat."""
    return encode_name(name.lower()) + _QTAIL.pack(qtype, CLASS_IN)


def decode_reply(data: bytes, qid: int, name: str, qtype: int, asked: bytes | None = None) -> Reply:
    """The reply to the query (`qid`, `name`, `qtype`); WireError when it is not one.
    `asked`: that query's `question()`, when the caller has it already."""
    if len(data) < _HEADER.size:
        raise WireError("shorter than a DNS header")
    rid, flags, qdcount, ancount, _nscount, _arcount = _HEADER.unpack_from(data)
    if rid != qid or not flags & FLAG_QR:
        raise WireError("not the reply to this query")
    truncated = bool(flags & FLAG_TC)
    rcode = flags & 0x000F
    if qdcount != 1:
        if truncated and qdcount == 0:
            return Reply(rcode, False, True, ())
        raise WireError("a reply must repeat its one question")
    if asked is None:
        try:
            asked = question(name, qtype)
        except ValueError:
            raise WireError("not the reply to this query") from None
    offset = _HEADER.size + len(asked)
    # A reply's question is never compressed: it must be the query's, octet for octet
    # but for the case of letters (length octets are below 64: lower() leaves them).
    if data[_HEADER.size : offset].lower() != asked:
        raise WireError("the reply answers another question")
    if truncated:
        return Reply(rcode, bool(flags & FLAG_AD), True, ())
    want = name.rstrip(".").lower().encode("ascii")
    found = _chain_end(data, _answers(data, offset, ancount, qtype), want, qtype)
    return Reply(rcode, bool(flags & FLAG_AD), False, tuple(found))


def _answers(data: bytes, offset: int, count: int, qtype: int) -> list[tuple[bytes, int, int, int]]:
    """(owner, type, rdata start, rdata end) of each answer record of `qtype` or CNAME."""
    answers: list[tuple[bytes, int, int, int]] = []
    for _ in range(count):
        owner, offset = _read_name(data, offset)
        if offset + _RR.size > len(data):
            raise WireError("a record runs past the end")
        rr_type, rr_class, _ttl, rdlength = _RR.unpack_from(data, offset)
        offset += _RR.size
        if offset + rdlength > len(data):
            raise WireError("a record's data runs past the end")
        if rr_class == CLASS_IN and rr_type in (qtype, _CNAME):
            answers.append((owner, rr_type, offset, offset + rdlength))
        offset += rdlength
    return answers


def _chain_end(
    data: bytes, answers: list[tuple[bytes, int, int, int]], name: bytes, qtype: int
) -> list[bytes]:
    """The rdata of `qtype` at the end of the CNAME chain from `name`, in whatever
    order the records came."""
    owner = name
    for _ in range(_MAX_CHAIN):
        alias = next((a for a in answers if a[0] == owner and a[1] == _CNAME), None)
        if alias is None:
            return [data[a[2] : a[3]] for a in answers if a[0] == owner and a[1] == qtype]
        owner, _ = _read_name(data, alias[2])
    raise WireError("a CNAME chain too long")


def caa_rdata(rdata: bytes) -> tuple[int, str, str]:
    """(flags, tag, value) of a CAA record's data (RFC 8659 4.1)."""
    if len(rdata) < 2:
        raise WireError("a CAA record shorter than its header")
    flags, tag_len = rdata[0], rdata[1]
    if tag_len == 0 or 2 + tag_len > len(rdata):
        raise WireError("a CAA record's tag does not fit")
    tag = rdata[2 : 2 + tag_len].decode("ascii", "replace")
    value = rdata[2 + tag_len :].decode("utf-8", "replace")
    return flags, tag, value


def txt_rdata(rdata: bytes) -> str:
    """A TXT record's character-strings, joined."""
    out = bytearray()
    i = 0
    while i < len(rdata):
        n = rdata[i]
        chunk = rdata[i + 1 : i + 1 + n]
        if len(chunk) != n:
            raise WireError("a TXT string runs past its record")
        out += chunk
        i += 1 + n
    return out.decode("utf-8", "replace")
