"""What the responder answers, with no I/O: an OCSP request's bytes in, the bytes to
send out. The store is reached through callables the server passes in.

The store holds each response without its envelope (signature algorithm and responder
certificate, kept once per responder key): it is put around here, once per cached answer.

RFC 9919 (which obsoletes RFC 5019) profiles high-volume responders: one Request per
OCSPRequest, no nonce in pre-signed responses. So:
- more than one Request, or bytes that are not an OCSPRequest: malformedRequest;
- an issuer that is not ours, a hash we do not pre-sign, a serial never issued, a
  serial of another of our issuers than the one the CertID names: unauthorized (never
  "good");
- an issued serial whose response is not there yet or has passed its nextUpdate (the
  refresher is behind or the signer down): tryLater.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from core.base.errors import MalformedOcspRequest
from core.store.keys import SERIAL_WIDTH
from core.store.records import ocsp_response_in
from ocsp.codec import CertIdHash, IssuerHashes, ResponseStatus, error_response, parse_request
from ocsp.response_codec import Envelopes

MALFORMED = error_response(ResponseStatus.MALFORMED_REQUEST)
UNAUTHORIZED = error_response(ResponseStatus.UNAUTHORIZED)
TRY_LATER = error_response(ResponseStatus.TRY_LATER)


class Answer(msgspec.Struct, frozen=True, gc=False):
    """gc=False: a responder caches hundreds of thousands of these, and bytes and ints
    cannot form cycles, so the cyclic collector need never walk them (a full collection
    over 200,000 tracked entries measured 58 ms: a latency spike on every client)."""

    body: bytes
    # For a successful response: what HTTP caching headers are made of.
    this_update: int = 0
    next_update: int = 0
    key: bytes = b""  # the store key it came from, to revalidate cached answers

    @property
    def successful(self) -> bool:
        return self.next_update != 0


class Responder:
    def __init__(
        self,
        issuers: IssuerHashes | Sequence[IssuerHashes],
        served: frozenset[CertIdHash],
        *,
        lookup: Callable[[bytes], bytes | None],
        issued: Callable[[bytes], bool],
        envelope: Callable[[bytes], bytes | None],
        refresh: Callable[[], None] = lambda: None,
    ) -> None:
        every = [issuers] if isinstance(issuers, IssuerHashes) else list(issuers)
        # (hash, issuerNameHash, issuerKeyHash) of every issuer: one set lookup a request.
        self._issuers = frozenset(
            (h, name, key) for i in every for h, (name, key) in i.by_hash.items()
        )
        self._served = served
        self._lookup = lookup
        self._envelopes = Envelopes(envelope)
        self._issued = issued
        self._refresh = refresh

    def forget_envelopes(self) -> None:
        """Wrap responses in their keys' envelopes as stored now (a renewed certificate)."""
        self._envelopes.forget()

    def answer(self, der: bytes, now: int) -> Answer:
        try:
            req = parse_request(der)
        except MalformedOcspRequest:
            return Answer(MALFORMED)
        if len(req.cert_ids) != 1:
            return Answer(MALFORMED)
        cid = req.cert_ids[0]
        if cid.hash not in self._served or (
            (cid.hash, cid.issuer_name_hash, cid.issuer_key_hash) not in self._issuers
        ):
            return Answer(UNAUTHORIZED)
        if cid.serial == 0 or cid.serial.bit_length() > 8 * SERIAL_WIDTH:
            return Answer(UNAUTHORIZED)
        key = cid.serial.to_bytes(SERIAL_WIDTH, "big")
        return self.lookup(key, int(cid.hash), now, cid.issuer_key_hash)

    def lookup(self, key: bytes, hash_id: int, now: int, issuer_key_hash: bytes = b"") -> Answer:
        """`issuer_key_hash`: the CertID's; a stored response for another issuer's
        certificate of that serial (its CertID holds another key hash) is no answer."""
        raw = self._lookup(key)
        if raw is None:
            # The store snapshot may predate an issuance that just returned: look again
            # in a fresh one before saying anything (misses are rare on this path).
            self._refresh()
            raw = self._lookup(key)
        found = ocsp_response_in(raw, hash_id) if raw is not None else None
        if found is not None and issuer_key_hash and issuer_key_hash not in found[2]:
            return Answer(UNAUTHORIZED)
        body = self._envelopes.response(found[2]) if found is not None else None
        if found is None or body is None or found[1] <= now:
            return Answer(TRY_LATER if self._issued(key) else UNAUTHORIZED)
        return Answer(body, found[0], found[1], key)
