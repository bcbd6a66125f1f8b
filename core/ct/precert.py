"""The two CT extensions a certificate's TBS gets (RFC 6962 3.1, 3.3), as whole
Extension DER for the TBS encoder's `extra`: the critical poison that makes a
precertificate unusable as a certificate, and the SCT list of the final certificate.
The TBS the logs sign is the precertificate's without its poison, which is the final
certificate's TBS without its SCT list: built with `extra=b""`, and the other two are
that TBS with one extension appended (`with_extension`), so it is encoded once."""

from __future__ import annotations

from core.base.der import read_tlv, sequence, tlv
from core.ct.sct import Sct, list_extension_value

_TRUE = bytes.fromhex("0101ff")
_POISON_OID = bytes.fromhex("060a2b06010401d679020403")  # 1.3.6.1.4.1.11129.2.4.3
_SCT_LIST_OID = bytes.fromhex("060a2b06010401d679020402")  # 1.3.6.1.4.1.11129.2.4.2
_NULL = b"\x05\x00"

POISON = sequence(_POISON_OID + _TRUE + tlv(0x04, _NULL))


def sct_list(scts: list[Sct]) -> bytes:
    return sequence(_SCT_LIST_OID + tlv(0x04, list_extension_value(scts)))


def without_poison(tbs: bytes) -> bytes:
    """A precertificate's TBSCertificate with its poison extension removed: what a log
    signs (RFC 6962 3.2). ValueError if `tbs` is not a TBSCertificate with one."""
    _, start, end = read_tlv(tbs)
    children: list[bytes] = []
    pos = start
    found = False
    while pos < end:
        tag, c_start, c_end = read_tlv(tbs, pos)
        element = tbs[pos:c_end]
        if tag == 0xA3:
            _, s_start, s_end = read_tlv(tbs, c_start)
            kept: list[bytes] = []
            ext = s_start
            while ext < s_end:
                _, e_start, e_end = read_tlv(tbs, ext)
                if tbs[e_start : e_start + len(_POISON_OID)] == _POISON_OID:
                    found = True
                else:
                    kept.append(tbs[ext:e_end])
                ext = e_end
            element = tlv(0xA3, sequence(b"".join(kept)))
        children.append(element)
        pos = c_end
    if not found:
        raise ValueError("the TBSCertificate has no CT poison extension")
    return sequence(b"".join(children))


def with_extension(tbs: bytes, extension: bytes) -> bytes:
    """`tbs` (a TBSCertificate whose last element is its extensions, as the TBS encoder
    writes it) with the whole Extension DER `extension` appended to them: the same bytes
    as encoding it with `extra=extension`."""
    _, start, end = read_tlv(tbs)
    pos = start
    last = start
    while pos < end:
        last = pos
        _, _, pos = read_tlv(tbs, pos)
    tag, e_start, _ = read_tlv(tbs, last)
    if tag != 0xA3:
        raise ValueError("the TBSCertificate does not end with its extensions")
    _, s_start, s_end = read_tlv(tbs, e_start)
    extensions = tlv(0xA3, sequence(tbs[s_start:s_end] + extension))
    return sequence(tbs[start:last] + extensions)
