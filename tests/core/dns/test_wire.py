"""The DNS codec (core/dns/wire.py), pure, against messages dnspython builds: the query
it writes is one dnspython reads as asked; the replies it reads are dnspython's,
compressed, with CNAME chains in any order; a reply to another question, a
malformed one, or a compression loop is refused."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from core.dns import wire

CAA = wire.TYPES["CAA"]


def test_the_query_asks_what_it_says_with_do_set() -> None:
    q = dns.message.from_wire(wire.encode_query(4242, "WWW.Example.co.jp", CAA))
    assert q.id == 4242
    assert q.flags & dns.flags.RD
    assert q.ednsflags & dns.flags.DO
    assert (q.edns, q.payload) == (0, 1232)
    [question] = q.question
    assert question.name.to_text() == "WWW.Example.co.jp."
    assert question.rdtype == dns.rdatatype.CAA


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".jp", ("a" * 60 + ".") * 5 + "jp"])
def test_names_that_are_not_dns_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="DNS name"):
        wire.encode_name(name)


def _reply(qid: int, name: str, answers: list[tuple[str, str, list[str]]], **kw: int) -> bytes:
    edns = kw.get("edns", 0)
    q = dns.message.make_query(name, "CAA", use_edns=edns, want_dnssec=edns == 0)
    q.id = qid
    r = dns.message.make_response(q)
    r.flags |= kw.get("flags", 0)
    r.set_rcode(kw.get("rcode", dns.rcode.NOERROR))
    for owner, rdtype, texts in answers:
        r.answer.append(dns.rrset.from_text_list(owner + ".", 60, dns.rdataclass.IN, rdtype, texts))
    return bytes(r.to_wire())


def test_records_at_the_end_of_a_cname_chain_in_any_order() -> None:
    data = _reply(
        7,
        "www.example.co.jp",
        [
            ("target.example.net", "CAA", ['0 issue "ca.example"', '128 tbs "x"']),
            ("www.example.co.jp", "CNAME", ["mid.example.org."]),
            ("mid.example.org", "CNAME", ["target.example.net."]),
            ("www.example.co.jp", "TXT", ['"not asked"']),
        ],
        flags=dns.flags.AD,
    )
    reply = wire.decode_reply(data, 7, "WWW.example.co.jp.", CAA)
    assert reply.authenticated
    assert not reply.truncated
    assert reply.rcode == 0
    assert {wire.caa_rdata(r) for r in reply.records} == {
        (0, "issue", "ca.example"),
        (128, "tbs", "x"),
    }


def test_nxdomain_and_an_empty_answer() -> None:
    nx = wire.decode_reply(_reply(1, "a.jp", [], rcode=dns.rcode.NXDOMAIN), 1, "a.jp", CAA)
    assert (nx.rcode_text, nx.records) == ("NXDOMAIN", ())
    empty = wire.decode_reply(_reply(1, "a.jp", []), 1, "a.jp", CAA)
    assert (empty.rcode, empty.records, empty.authenticated) == (0, (), False)


def test_truncated() -> None:
    reply = wire.decode_reply(_reply(3, "a.jp", [], flags=dns.flags.TC), 3, "a.jp", CAA)
    assert reply.truncated


@pytest.mark.parametrize(
    ("qid", "name", "qtype"),
    [(8, "a.jp", CAA), (7, "b.jp", CAA), (7, "a.jp", wire.TYPES["TXT"])],
    ids=["another id", "another name", "another type"],
)
def test_a_reply_to_another_question_is_refused(qid: int, name: str, qtype: int) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_reply(_reply(7, "a.jp", []), qid, name, qtype)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x07\x81",  # shorter than a header
        b"\x00\x07\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c",  # a pointer to itself
        b"\x00\x07\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x05ab",  # a label past the end
        b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x02jp\x00\x01\x01\x00\x01",  # QR
    ],
    ids=["short", "pointer loop", "label past the end", "a query, not a reply"],
)
def test_malformed_replies_are_refused(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_reply(data, 7, "a.jp", CAA)


def test_an_answer_record_past_the_end_is_refused() -> None:
    data = _reply(9, "a.jp", [("a.jp", "CAA", ['0 issue "ca.example"'])], edns=-1)
    with pytest.raises(wire.WireError):
        wire.decode_reply(data[:-3], 9, "a.jp", CAA)


def test_txt_strings_are_joined() -> None:
    assert wire.txt_rdata(b"\x03abc\x02de") == "abcde"
    with pytest.raises(wire.WireError):
        wire.txt_rdata(b"\x05ab")
