"""A small authoritative DNS server for tests, on loopback UDP (and TCP for truncated
answers), answering from a table the test sets and counting the questions it was
asked. A name may have a sequence of answers, one per question (DNS rebinding).

It is a real server on a real socket: hanko's resolver client talks to it as it would
to any other. DNSSEC is not its business (the validating resolver tests run Unbound).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Answer = list[str] | str  # record texts, or "SERVFAIL" / "NXDOMAIN" / "TIMEOUT"


class DnsServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.records: dict[tuple[str, str], Answer] = {}
        self.sequences: dict[tuple[str, str], Iterator[Answer]] = {}
        self.asked: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self.port = int(self._sock.getsockname()[1])
        self.address = f"{host}:{self.port}"
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def set(self, name: str, rdtype: str, answer: Answer) -> None:
        with self._lock:
            self.records[(name.rstrip(".").lower(), rdtype)] = answer

    def sequence(self, name: str, rdtype: str, answers: list[Answer]) -> None:
        """Answer the Nth question for (name, rdtype) with answers[N] (the last repeats)."""

        def gen() -> Iterator[Answer]:
            yield from answers
            while True:
                yield answers[-1]

        with self._lock:
            self.sequences[(name.rstrip(".").lower(), rdtype)] = gen()

    def _answer(self, key: tuple[str, str]) -> Answer | None:
        with self._lock:
            self.asked[key] += 1
            if key in self.sequences:
                return next(self.sequences[key])
            return self.records.get(key)

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop:
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: S112 - noise on the socket: no answer
                continue
            reply = self._reply(query)
            if reply is not None:
                self._sock.sendto(reply.to_wire(), peer)

    def _reply(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        answer = self._answer((name, rdtype))
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        if answer == "TIMEOUT":
            return None
        if answer == "SERVFAIL":
            reply.set_rcode(dns.rcode.SERVFAIL)
        elif answer == "NXDOMAIN" or (answer is None and not self._name_exists(name)):
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif isinstance(answer, list) and answer:
            reply.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, rdtype, answer)
            )
        return reply

    def _name_exists(self, name: str) -> bool:
        with self._lock:
            return any(n == name for n, _ in (*self.records, *self.sequences))

    def close(self) -> None:
        self._stop = True
        self._sock.close()
        self._thread.join(timeout=2)
