"""A DNS server whose answers a test scripts: the attacker's own authoritative server.

dnsmasq (the labs' real DNS) answers every query for a record the same way. An attacker
who controls its reverse zone need not: it can answer one query with the innocent's name
and TTL 0, the next with another name, or send an SOA with its "no such name" so the
answer is cached. ``ScriptedDns`` speaks real DNS over UDP on loopback (dnspython builds
and parses the messages) and answers each PTR query with the next step of its script for
that name; other queries get REFUSED. Nothing leaves loopback.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset

__all__ = ["Answer", "ScriptedDns"]

SOA = "ns.attacker.test. hostmaster.attacker.test. 1 1200 180 1209600 {minimum}"


@dataclass(frozen=True)
class Answer:
    """One scripted reply: PTR ``names`` (none: NXDOMAIN) with ``ttl``; ``soa_minimum`` puts
    an SOA in a negative reply (None: none, as dnsmasq's local zones do); ``silent`` sends
    nothing (a timeout)."""

    names: tuple[str, ...] = ()
    ttl: int = 600
    soa_minimum: int | None = None
    silent: bool = False


@dataclass
class ScriptedDns:
    """UDP DNS on 127.0.0.1; ``script[address]`` is the list of answers given in turn (the
    last one repeats). ``asked`` counts queries per address."""

    script: dict[str, list[Answer]] = field(default_factory=dict)
    asked: dict[str, int] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._zones = {dns.reversename.from_address(a): a for a in self.script}

    def __enter__(self) -> ScriptedDns:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self._reply(data)
            if reply is not None:
                self._sock.sendto(reply, peer)

    def _reply(self, data: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        question = query.question[0] if query.question else None
        address = self._zones.get(question.name) if question is not None else None
        if question is None or address is None or question.rdtype != dns.rdatatype.PTR:
            reply.set_rcode(dns.rcode.REFUSED)
            return reply.to_wire()
        turn = self.asked.get(address, 0)
        self.asked[address] = turn + 1
        steps = self.script[address]
        answer = steps[min(turn, len(steps) - 1)]
        if answer.silent:
            return None
        if answer.names:
            reply.answer.append(
                dns.rrset.from_text_list(
                    question.name, answer.ttl, "IN", "PTR", [f"{n}." for n in answer.names]
                )
            )
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            if answer.soa_minimum is not None:
                zone = question.name.parent()
                soa = SOA.format(minimum=answer.soa_minimum)
                reply.authority.append(dns.rrset.from_text(zone, answer.ttl, "IN", "SOA", soa))
        return reply.to_wire()
