"""Abuse-contact lookup against a real RDAP HTTP server and real whois TCP servers on loopback.

The servers answer with recorded replies in each registry's real format
(tests/data/abuse/README.md); hostile replies carry CR/LF, 10 MB bodies or never answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bruteguard.abuse.contact import (
    NetworkContact,
    clean_email,
    clean_network,
    clean_phone,
    pick_email,
    remark_email,
)
from bruteguard.abuse.lookup import REGISTRIES, Servers, lookup
from bruteguard.abuse.national import NATIONAL_WHOIS
from bruteguard.abuse.rdap import TooLarge, fetch, parse_rdap
from bruteguard.abuse.whois import parse_whois, query_whois

DATA = Path(__file__).parent / "data" / "abuse"
BIG = 10 * 1024 * 1024

RDAP_ROUTES = {
    "/bootstrap/ipv4.json": "bootstrap-ipv4.json",
    "/bootstrap/ipv6.json": "bootstrap-ipv6.json",
    "/arin/ip/192.0.2.10": "rdap-arin-192.0.2.10.json",
    "/ripe/ip/2001:db8:1::7": "rdap-ripe-2001-db8-1.json",
    "/ripe/ip/192.0.2.70": "rdap-ripe-192.0.2.70.json",
    "/ripe/ip/203.0.113.10": "rdap-ripe-203.0.113.10.json",
    "/arin/ip/203.0.113.70": "rdap-arin-203.0.113.70.json",
    "/ripe/ip/192.0.2.200": "rdap-ripe-192.0.2.200.json",
    "/ripe/ip/192.0.2.210": "rdap-ripe-192.0.2.210.json",
    "/apnic/ip/2001:db8:3::5": "rdap-apnic-2001-db8-3.json",
    "/apnic/ip/198.51.100.20": "rdap-apnic-198.51.100.20.json",
    "/lacnic/ip/203.0.113.220": "rdap-lacnic-203.0.113.220.json",
    "/afrinic/ip/198.51.100.140": "rdap-afrinic-198.51.100.140.json",
}
WHOIS_REPLIES = {
    "ARIN": {
        "n + 192.0.2.130": "whois-arin-192.0.2.130.txt",
        "n + 203.0.113.70": "whois-arin-203.0.113.70.txt",
    },
    "RIPE": {
        "192.0.2.70": "whois-ripe-192.0.2.70.txt",
        "192.0.2.130": "whois-ripe-192.0.2.130.txt",
        "203.0.113.10": "whois-ripe-203.0.113.10.txt",
        "192.0.2.200": "whois-ripe-192.0.2.192.txt",
        "192.0.2.210": "whois-ripe-192.0.2.192.txt",
    },
    "APNIC": {
        "198.51.100.10": "whois-apnic-198.51.100.10.txt",
        "2001:db8:3::5": "whois-apnic-2001-db8-3.txt",
        "198.51.100.40": "whois-apnic-198.51.100.40.txt",
        "2001:db8:4::9": "whois-apnic-2001-db8-4.txt",
        "198.51.100.20": "whois-apnic-198.51.100.20.txt",
        "198.51.100.25": "whois-apnic-198.51.100.25.txt",
        "198.51.100.30": "whois-apnic-198.51.100.30.txt",
        "198.51.100.35": "whois-apnic-198.51.100.35.txt",
        "198.51.100.45": "whois-apnic-198.51.100.45.txt",
    },
    "JPNIC": {"2001:db8:4::9/e": "whois-jpnic-2001-db8-4.txt"},
    "KRNIC": {"198.51.100.40": "whois-krnic-198.51.100.40.txt"},
    "TWNIC": {"198.51.100.20": "whois-twnic-198.51.100.20.txt"},
    "CNNIC": {
        "198.51.100.25": "whois-cnnic-198.51.100.25.txt",
        "198.51.100.45": "whois-cnnic-198.51.100.45.txt",
    },
    "IDNIC": {"198.51.100.30": "whois-idnic-198.51.100.30.txt"},
    "NIC.br": {
        "198.51.100.100": "whois-nicbr-198.51.100.100.txt",
        "198.51.100.110": "whois-nicbr-198.51.100.110.txt",  # e-mail withheld (LGPD)
    },
    "LACNIC": {
        "198.51.100.70": "whois-lacnic-198.51.100.70.txt",
        "203.0.113.200": "whois-lacnic-203.0.113.200.txt",
        "198.51.100.100": "whois-lacnic-198.51.100.100.txt",
        "198.51.100.110": "whois-lacnic-198.51.100.100.txt",
    },
    "AFRINIC": {
        "198.51.100.130": "whois-afrinic-198.51.100.130.txt",
        "203.0.113.130": "whois-afrinic-203.0.113.130.txt",
    },
}


class _Rdap(BaseHTTPRequestHandler):
    """Recorded files by path; ``/big/`` sends 10 MB, ``/slow/`` never answers,
    ``/trickle/`` sends a byte every 0.2 s, ``/gzip/`` a compressed reply,
    ``/moved/PATH`` redirects to ``/PATH``, ``/loop/`` to itself, ``/ftp/`` to ftp://."""

    stop: threading.Event

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path.startswith("/slow/"):
            self.stop.wait(6.0)  # bounded: the server ends it at teardown at the latest
            return
        if self.path.startswith("/moved/"):
            return self._redirect(self.path.removeprefix("/moved"))
        if self.path.startswith("/loop/"):
            return self._redirect(self.path)
        if self.path.startswith("/ftp/"):
            return self._redirect("ftp://127.0.0.1/ip/192.0.2.10")
        if self.path.startswith("/trickle/"):
            self.send_response(200)
            self.send_header("Content-Type", "application/rdap+json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(30):  # bounded: 6 s at most
                    if self.stop.wait(0.2):
                        return
                    self.wfile.write(b" ")
                    self.wfile.flush()
            return
        if self.path.startswith("/gzip/"):
            # 20 MB of JSON in 20 kB: what a size cap on the wire alone would let through
            body = gzip.compress(b'{"remarks": ["' + b"x" * 20_000_000 + b'"]}')
            self.send_response(200)
            self.send_header("Content-Type", "application/rdap+json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/big/"):
            self.send_response(200)
            self.send_header("Content-Type", "application/rdap+json")
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(b'{"objectClassName": "ip network", "remarks": ["')
                for _ in range(BIG // 65536):
                    self.wfile.write(b"x" * 65536)
            return
        name = RDAP_ROUTES.get(self.path)
        body = (DATA / name).read_bytes() if name else b'{"errorCode": 404, "title": "Not Found"}'
        self.send_response(200 if name else 404)
        self.send_header("Content-Type", "application/rdap+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def rdap_url() -> Iterator[str]:
    stop = threading.Event()
    handler = type("Handler", (_Rdap,), {"stop": stop})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


class _Whois:
    """One registry's port 43: answers recorded replies, records the queries it got."""

    def __init__(self, replies: dict[str, str], mode: str = "files") -> None:
        self.replies = replies
        self.mode = mode
        self.queries: list[str] = []
        self.port = 0
        self.stop = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            query = line.decode("ascii").removesuffix("\r\n")
            self.queries.append(query)
            if self.mode == "silent":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), 6)
            elif self.mode == "big":
                for _ in range(BIG // 65536):
                    writer.write(b"remarks:        " + b"x" * 65519 + b"\n")
                    await writer.drain()
            else:
                name = self.replies.get(query)
                writer.write((DATA / name).read_bytes() if name else b"% No entries found\n")
                await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def whois_servers(mode: str = "files") -> AsyncIterator[dict[str, _Whois]]:
    found: dict[str, _Whois] = {}
    servers: list[asyncio.Server] = []
    try:
        for registry in (*REGISTRIES, *NATIONAL_WHOIS):
            one = _Whois(WHOIS_REPLIES.get(registry, {}), mode)
            server = await asyncio.start_server(one.handle, "127.0.0.1", 0)
            one.port = server.sockets[0].getsockname()[1]
            found[registry] = one
            servers.append(server)
        yield found
    finally:
        for one in found.values():
            one.stop.set()
        for server in servers:
            server.close()


def servers_for(
    rdap_url: str, whois: dict[str, _Whois], rdap_kind: str = "", **bounds: float
) -> Servers:
    return Servers(
        bootstrap=f"{rdap_url}/bootstrap/",
        rdap={r: f"{rdap_url}/{rdap_kind or r.lower()}/" for r in REGISTRIES},
        whois={r: ("127.0.0.1", w.port) for r, w in whois.items()},
        **bounds,  # type: ignore[arg-type]
    )


def run(
    address: str, rdap_url: str, mode: str = "files", rdap_kind: str = "", **bounds: float
) -> tuple[NetworkContact, dict[str, list[str]], float]:
    """The lookup's result, the queries each whois server got, and how long it took."""

    async def go() -> tuple[NetworkContact, dict[str, list[str]], float]:
        async with whois_servers(mode) as whois:
            servers = servers_for(rdap_url, whois, rdap_kind, **bounds)
            started = time.monotonic()
            result = await lookup(address, servers)
            elapsed = time.monotonic() - started
            return result, {r: w.queries for r, w in whois.items()}, elapsed

    return asyncio.run(go())


def no_controls(result: NetworkContact) -> None:
    for name in result.__struct_fields__:
        value = getattr(result, name)
        if isinstance(value, str):
            assert value.isprintable(), (name, value)


def test_rdap_abuse_entity_nested_in_registrant(rdap_url: str) -> None:
    result, queries, _ = run("192.0.2.10", rdap_url)
    assert result.source == "rdap"
    assert result.registry == "ARIN"
    assert result.network == "192.0.2.0/26"
    assert result.name == "EXAMPLE-NET-1"
    assert result.asn == 64496
    assert result.abuse_email == "abuse@example.net"
    assert result.abuse_phone == "+1-555-0100"
    assert result.looked_up > 0
    assert all(not q for q in queries.values()), "whois asked although RDAP had the contact"


def test_rdap_ipv6_top_level_abuse_role(rdap_url: str) -> None:
    result, _, _ = run("2001:db8:1::7", rdap_url)
    assert (result.source, result.registry, result.country) == ("rdap", "RIPE", "NL")
    assert result.network == "2001:db8:1::/48"
    assert result.abuse_email == "abuse-v6@example.net"
    assert result.abuse_phone == "+31 20 555 0199"


def test_rdap_lacnic_abuse_entity_nested_in_registrant(rdap_url: str) -> None:
    result, queries, _ = run("203.0.113.220", rdap_url)
    assert all(not q for q in queries.values()), "whois asked although RDAP had the contact"
    assert (result.source, result.registry, result.country) == ("rdap", "LACNIC", "MX")
    assert result.network == "203.0.113.192/26"
    assert result.name == "Ejemplo Cable S.A. de C.V."
    assert result.abuse_email == "abuse@example.com.mx"  # the abuse role, not NIC TECH's
    assert result.abuse_phone == "+52 33 5550 0020"


def test_rdap_afrinic_abuse_role(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.140", rdap_url)
    assert all(not q for q in queries.values())
    assert (result.source, result.registry, result.country) == ("rdap", "AFRINIC", "EG")
    assert result.network == "198.51.100.128/26"
    assert result.abuse_email == "abuse@example.com.eg"  # the abuse role before the remark
    assert result.abuse_phone == "+20 2 5550 0700"  # voice, not fax


def test_rdap_without_abuse_falls_back_to_whois(rdap_url: str) -> None:
    result, queries, _ = run("192.0.2.70", rdap_url)
    assert queries["RIPE"] == ["192.0.2.70"]
    assert result.source == "whois"
    assert result.registry == "RIPE"
    assert result.network == "192.0.2.64/26"
    assert result.name == "EXAMPLE-OLD-NET"
    assert result.country == "DE"
    assert result.asn == 64497  # from the route object
    assert result.abuse_email == "abuse@example.org"
    assert result.abuse_phone == "+49 30 5550100"


def test_arin_referral_to_ripe(rdap_url: str) -> None:
    result, queries, _ = run("192.0.2.130", rdap_url)  # ARIN's RDAP: 404
    assert queries["ARIN"] == ["n + 192.0.2.130"]
    assert queries["RIPE"] == ["192.0.2.130"]
    assert result.source == "whois"
    assert result.registry == "RIPE"
    assert result.abuse_email == "abuse@example.com"  # not ARIN's abuse@ripe.net
    assert result.abuse_phone == "+33 1 5550 0100"
    assert (result.name, result.country) == ("EXAMPLE-ERX-NET", "FR")
    assert result.network == "192.0.2.128/26"


def test_apnic_irt_object(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.10", rdap_url)
    assert queries["APNIC"] == ["198.51.100.10"]
    assert (result.source, result.registry, result.country) == ("whois", "APNIC", "KR")
    assert result.abuse_email == "irt@example.net"
    assert result.abuse_phone == "+82-2-555-0100"  # the IRT's, not the generated role's zeros
    assert result.asn == 64498
    assert result.network == "198.51.100.0/26"


def test_lacnic_format(rdap_url: str) -> None:
    result, _, _ = run("198.51.100.70", rdap_url)
    assert (result.source, result.registry, result.country) == ("whois", "LACNIC", "UY")
    assert result.network == "198.51.100.64/26"
    assert result.name == "Example Telecomunicaciones S.A."
    assert result.asn == 64499
    assert result.abuse_email == "abuse@example.com.uy"
    assert result.abuse_phone == "+598 2 5550199"


def test_afrinic_format(rdap_url: str) -> None:
    result, _, _ = run("198.51.100.130", rdap_url)
    assert (result.source, result.registry, result.country) == ("whois", "AFRINIC", "ZA")
    assert result.network == "198.51.100.128/26"
    assert result.name == "EXAMPLE-ZA-NET"
    assert result.abuse_email == "abuse@example.co.za"
    assert result.abuse_phone == "+27-21-555-0199"


def test_rdap_staff_mailboxes_only_whois_names_the_role(rdap_url: str) -> None:
    result, queries, _ = run("192.0.2.200", rdap_url)  # RDAP: two people's addresses
    assert queries["RIPE"] == ["192.0.2.200"], "RDAP in doubt, whois not asked"
    assert result.source == "whois"
    assert result.abuse_email == "abuse@example.co.uk"
    assert result.network == "192.0.2.192/26"


def test_rdap_several_mailboxes_abuse_first_cross_checked(rdap_url: str) -> None:
    result, queries, _ = run("192.0.2.210", rdap_url)  # staff listed before abuse@
    assert queries["RIPE"] == ["192.0.2.210"]
    assert result.source == "rdap"  # whois named no better mailbox
    assert result.abuse_email == "abuse@example.co.uk"
    assert result.abuse_phone == "+44 20 5550 0100"


def test_national_registry_address_refused_most_specific_network(rdap_url: str) -> None:
    result, queries, _ = run("2001:db8:3::5", rdap_url)  # APNIC RDAP: JPNIC's /32 only
    assert queries["APNIC"] == ["2001:db8:3::5"]
    assert result.source == "whois"
    assert result.network == "2001:db8:3::/48"
    assert result.name == "EXAMPLE-CUST-JP"
    assert result.abuse_email == "abuse@example-cust.jp"
    assert result.abuse_phone == "+81-3-5550-0199"
    assert "nic.ad.jp" not in repr(result)


def test_apnic_refers_korean_space_to_krnic(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.40", rdap_url)
    assert queries["APNIC"] == ["198.51.100.40"]
    assert queries["KRNIC"] == ["198.51.100.40"]
    assert (result.source, result.registry, result.country) == ("whois", "KRNIC", "KR")
    assert result.network == "198.51.100.32/28"  # the customer's, not the ISP's /26
    assert result.name == "Example Customer Co"
    assert result.abuse_email == "ip-manager@example-cust.co.kr"
    assert result.abuse_phone == "+82-2-555-0199"


def test_apnic_refers_japanese_space_to_jpnic(rdap_url: str) -> None:
    result, queries, _ = run("2001:db8:4::9", rdap_url)
    assert queries["APNIC"] == ["2001:db8:4::9"]
    assert queries["JPNIC"] == ["2001:db8:4::9/e"]  # /e: English output
    assert (result.source, result.registry, result.country) == ("whois", "JPNIC", "JP")
    assert result.network == "2001:db8:4::/48"
    assert result.name == "Example Customer, Inc."
    assert result.abuse_email == "abuse@example-isp.jp"


def test_no_national_referral_outside_apnic_or_with_a_contact(rdap_url: str) -> None:
    result, queries, _ = run("2001:db8:3::5", rdap_url)  # the /48 has its own abuse-c
    assert all(queries[nir] == [] for nir in NATIONAL_WHOIS)
    assert result.abuse_email == "abuse@example-cust.jp"
    result, queries, _ = run("198.51.100.70", rdap_url)  # LACNIC's own data, with a contact
    assert all(queries[nir] == [] for nir in NATIONAL_WHOIS)
    assert result.registry == "LACNIC"


def test_apnic_refers_taiwanese_space_to_twnic(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.20", rdap_url)  # RDAP: IRT-TWNIC-AP, refused
    assert queries["APNIC"] == ["198.51.100.20"]  # whois: MAINT-TW-TWNIC, IRT-TWNIC-AP
    assert queries["TWNIC"] == ["198.51.100.20"]
    assert (result.source, result.registry, result.country) == ("whois", "TWNIC", "TW")
    assert result.network == "198.51.100.16/28"  # the customer's, not the provider's /26
    assert result.name == "EXAMPLE-CUSTOMER-TW"
    assert result.abuse_email == "noc@example-cust.com.tw"  # the role before the person
    assert result.abuse_phone == "+886-2-5550-0198"
    assert "twnic" not in repr(result)


def test_apnic_refers_chinese_space_to_cnnic(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.25", rdap_url)  # IRT-CNNIC-CN only: refused
    assert queries["CNNIC"] == ["198.51.100.25"]
    assert (result.source, result.registry, result.country) == ("whois", "CNNIC", "CN")
    assert result.network == "198.51.100.24/29"
    assert result.name == "EXAMPLE-CN-CUSTOMER"
    assert result.abuse_email == "abuse@example-cloud.cn"  # abuse-mailbox, not the staff's
    assert result.abuse_phone == "+86-571-5550-2000"


def test_referral_keeps_the_referring_replys_smaller_network(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.45", rdap_url)  # APNIC: a /29; CNNIC: its /26
    assert queries["CNNIC"] == ["198.51.100.45"]
    assert result.abuse_email == "abuse@example-cloud.cn"  # the contact from CNNIC
    assert result.network == "198.51.100.40/29"  # an escalation blocks the /29, not the /26
    assert result.name == "EXAMPLE-CN-ASSIGNED"  # the /29's name goes with it
    assert result.registry == "CNNIC"


def test_apnic_refers_indonesian_space_to_idnic(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.30", rdap_url)  # MNT-APJII-ID, IRT-IDNIC-ID
    assert queries["IDNIC"] == ["198.51.100.30"]
    assert (result.source, result.registry, result.country) == ("whois", "IDNIC", "ID")
    assert result.network == "198.51.100.24/29"
    assert result.abuse_email == "abuse@example-net.id"  # the IRT's abuse-mailbox
    assert result.name == "EXAMPLE-ID-CUSTOMER-BLOCK"


def test_vietnamese_space_stays_with_apnic_facts(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.35", rdap_url)  # IRT-VNNIC-AP only: refused
    assert queries["APNIC"] == ["198.51.100.35"]
    assert all(queries[nir] == [] for nir in NATIONAL_WHOIS)  # VNNIC has no whois server
    assert (result.source, result.country, result.registry) == ("rfc2142", "VN", "APNIC")
    assert result.network == "198.51.100.32/28"  # APNIC's assignment stays the network
    assert result.abuse_email == "abuse@example-telecom.vn"  # the holder's, never VNNIC's
    assert "vnnic" not in repr(result)


def test_lacnic_refers_brazilian_space_to_nic_br(rdap_url: str) -> None:
    result, queries, _ = run("198.51.100.100", rdap_url)  # LACNIC's copy: no e-mail
    assert queries["LACNIC"] == ["198.51.100.100"]
    assert queries["NIC.br"] == ["198.51.100.100"]
    assert (result.source, result.registry, result.country) == ("whois", "NIC.br", "BR")
    assert result.network == "198.51.100.96/27"
    assert result.name == "EXEMPLO SERVICOS DE TELECOMUNICACOES LTDA"
    assert result.asn == 64502
    assert result.abuse_email == "abuse@example.com.br"


def test_nic_br_withholding_every_e_mail_leaves_cert_br(rdap_url: str) -> None:
    """NIC.br leaves persons' e-mail out under the LGPD: its reply's own closing comment
    names CERT.br for security issues, so the report goes there, not to "no contact"."""
    result, queries, _ = run("198.51.100.110", rdap_url)
    assert queries["NIC.br"] == ["198.51.100.110"]
    assert (result.source, result.abuse_email) == ("csirt", "cert@cert.br")
    assert (result.network, result.registry) == ("198.51.100.104/29", "NIC.br")


@pytest.mark.parametrize(
    "closing",
    [
        # a different mailbox where CERT.br's stands: not NIC.br's text, never taken
        "% Security and mail abuse issues should also be addressed to\n"
        "% cert.br, http://www.cert.br/ , respectivelly to attacker@example.org\n"
        "% and mail-abuse@cert.br\n",
        # the sentence in a holder's remarks is not the registry's comment
        "remarks:     Security and mail abuse issues should also be addressed to cert.br,"
        " http://www.cert.br/ , respectivelly to cert@cert.br and mail-abuse@cert.br\n",
        "",
    ],
)
def test_cert_br_only_from_nic_br_s_own_comment(closing: str) -> None:
    reply = (DATA / "whois-nicbr-198.51.100.110.txt").read_text()
    reply = reply[: reply.index("% Security")] + closing
    assert parse_whois(reply.encode(), "NIC.br").csirt_email is None
    whole = (DATA / "whois-nicbr-198.51.100.110.txt").read_bytes()
    assert parse_whois(whole, "NIC.br").csirt_email == "cert@cert.br"
    assert parse_whois(whole, "RIPE").csirt_email is None  # only NIC.br's own text counts


def test_afrinic_remarks_address_before_rfc2142(rdap_url: str) -> None:
    result, queries, _ = run("203.0.113.130", rdap_url)
    assert queries["AFRINIC"] == ["203.0.113.130"]
    assert (result.source, result.registry, result.country) == ("remarks", "AFRINIC", "KE")
    assert result.abuse_email == "spam@example.co.ke"  # not the RFC 2142 abuse@example.co.ke
    assert result.network == "203.0.113.128/26"


def test_lacnic_short_form_network(rdap_url: str) -> None:
    result, _, _ = run("203.0.113.200", rdap_url)
    assert (result.source, result.registry, result.country) == ("whois", "LACNIC", "MX")
    assert result.network == "203.0.113.0/24"
    assert result.abuse_email == "noc@example.com.mx"
    assert result.asn == 64501


def test_no_contact_anywhere_gives_rfc2142(rdap_url: str) -> None:
    result, queries, _ = run("203.0.113.10", rdap_url)
    assert queries["RIPE"] == ["203.0.113.10"]
    assert result.source == "rfc2142"
    assert result.abuse_email == "abuse@example.net"  # the domain of the tech contact
    assert result.registry == "RIPE"
    assert result.network == "203.0.113.0/26"


def test_unknown_everywhere_gives_none(rdap_url: str) -> None:
    result, queries, _ = run("192.0.2.40", rdap_url)  # ARIN space, nobody knows it
    assert queries["ARIN"] == ["n + 192.0.2.40"]
    assert result.source == "none"
    assert result.abuse_email is None


def test_hostile_values_rejected(rdap_url: str) -> None:
    result, queries, _ = run("203.0.113.70", rdap_url)
    assert queries["ARIN"] == ["n + 203.0.113.70"]  # the RDAP contact was refused
    no_controls(result)
    assert "victim" not in repr(result)
    assert "Injected" not in repr(result)
    assert result.abuse_phone is None
    assert result.name == "EVIL-NET"
    assert result.asn == 64500
    assert result.source == "rfc2142"
    assert result.abuse_email == "abuse@example.org"  # OrgTechEmail's domain, validated


def test_ten_megabyte_replies_cut_without_crash(rdap_url: str) -> None:
    result, queries, elapsed = run(
        "2001:db8:2::9", rdap_url, mode="big", rdap_kind="big", timeout=10.0
    )
    assert queries["ARIN"] == ["n + 2001:db8:2::9"]
    assert result.source == "none"
    assert result.abuse_email is None
    assert elapsed < 15


def test_whois_reply_cut_at_cap() -> None:
    async def go() -> bytes:
        async with whois_servers("big") as whois:
            return await query_whois(
                "127.0.0.1", whois["RIPE"].port, "x", timeout=10, max_bytes=1 << 20
            )

    assert len(asyncio.run(go())) == 1 << 20


def test_rdap_reply_over_cap_refused(rdap_url: str) -> None:
    with pytest.raises(TooLarge):
        asyncio.run(fetch(f"{rdap_url}/big/ip/x", timeout=10, max_bytes=1 << 20))
    assert (
        asyncio.run(fetch(f"{rdap_url}/arin/ip/192.0.2.99", timeout=5, max_bytes=1 << 20)) is None
    )
    boot = asyncio.run(fetch(f"{rdap_url}/bootstrap/ipv4.json", timeout=5, max_bytes=1 << 20))
    assert boot == json.loads((DATA / "bootstrap-ipv4.json").read_text())


def test_rdap_redirects_followed_within_bounds(rdap_url: str) -> None:
    """Registries redirect (ARIN's server sends other RIRs' space on): followed, but only a
    few times, and only to http(s)."""
    moved = asyncio.run(
        fetch(f"{rdap_url}/moved/bootstrap/ipv4.json", timeout=5, max_bytes=1 << 20)
    )
    assert moved == json.loads((DATA / "bootstrap-ipv4.json").read_text())
    with pytest.raises(Exception, match="redirect"):
        asyncio.run(fetch(f"{rdap_url}/loop/ip/x", timeout=5, max_bytes=1 << 20))
    with pytest.raises(Exception, match="ftp"):
        asyncio.run(fetch(f"{rdap_url}/ftp/ip/x", timeout=5, max_bytes=1 << 20))


def test_rdap_trickling_reply_cut_at_the_timeout(rdap_url: str) -> None:
    """A byte every 0.2 s never trips a read timeout of 1 s: the whole GET is bounded."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(fetch(f"{rdap_url}/trickle/ip/x", timeout=1.0, max_bytes=1 << 20))
    assert time.monotonic() - started < 2.0


def test_rdap_compressed_reply_refused(rdap_url: str) -> None:
    """None is asked for; a server that compresses anyway could pass a small size cap with
    a reply that inflates far past it."""
    with pytest.raises(ValueError, match="compressed"):
        asyncio.run(fetch(f"{rdap_url}/gzip/ip/x", timeout=5, max_bytes=1 << 20))


def test_silent_servers_time_out_within_bound(rdap_url: str) -> None:
    result, queries, elapsed = run(
        "192.0.2.10", rdap_url, mode="silent", rdap_kind="slow", timeout=1.0, deadline=10.0
    )
    assert queries["ARIN"] == ["n + 192.0.2.10"]  # RDAP timed out, whois was tried
    assert result.source == "none"
    assert elapsed < 5  # 1 s RDAP (+1 s grace) + 1 s whois


def test_whole_lookup_deadline(rdap_url: str) -> None:
    result, _, elapsed = run(
        "192.0.2.10", rdap_url, mode="silent", rdap_kind="slow", timeout=5.0, deadline=1.5
    )
    assert result.source == "none"
    assert result.address == "192.0.2.10"
    assert elapsed < 2.5


@pytest.mark.parametrize(
    "value",
    [
        "abuse@example.net\r\nBcc: victim@example.org",
        "abuse@example.net\nBcc: victim@example.org",
        "abuse@example.net\r",
        "Abuse Desk <abuse@example.net>",
        "abuse@example.net, other@example.org",
        "abuse@example.net other@example.org",
        "abuse@@example.net",
        "abuse@example",
        "abuse@-example.net",
        "abuse@example.net.",
        "@example.net",
        "abuse",
        "a" * 250 + "@example.net",
        "abuse@exämple.net",
        "abuse\x00@example.net",
        "",
    ],
)
def test_clean_email_rejects(value: str) -> None:
    assert clean_email(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abuse@example.net", "abuse@example.net"),
        ("  Abuse+bg@Example.NET ", "Abuse+bg@example.net"),
        ("mailto:abuse@example.co.za", "abuse@example.co.za"),
    ],
)
def test_clean_email_accepts(value: str, expected: str) -> None:
    assert clean_email(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+1-555-0100 ", "+1-555-0100"),
        ("tel:+27-21-555-0199", "+27-21-555-0199"),
        ("tel:+1-555-0100;ext=12", "+1-555-0100 ext 12"),
        ("+1-555-0100\r\nX-Injected: yes", None),
        ("+000000000", None),
        ("call us", None),
        ("+598 2 5550100 [101]", None),
    ],
)
def test_clean_phone(value: str, expected: str | None) -> None:
    assert clean_phone(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("200.57.128/19", "200.57.128.0/19"),
        ("200.57/16", "200.57.0.0/16"),
        ("203.0.113/24", "203.0.113.0/24"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113/33", None),
        ("203.0.113.7.1/24", None),
        ("203.0.113/", None),
    ],
)
def test_clean_network_lacnic_short_form(value: str, expected: str | None) -> None:
    assert clean_network(value) == expected


@pytest.mark.parametrize(
    ("values", "expected", "doubt"),
    [
        (["abuse@example.net"], "abuse@example.net", False),
        (["jane@example.net", "noc@example.net", "abuse@example.net"], "abuse@example.net", True),
        (["jane@example.net", "security@example.net"], "security@example.net", True),
        (["jane@example.net"], "jane@example.net", True),
        (["hostmaster@nic.ad.jp", "ip-abuse@example.jp"], "ip-abuse@example.jp", False),
        (["abuse@nic.or.kr", "helpdesk@apnic.net", "abuse@registro.br"], None, False),
        (["abuse@example.net\r\nBcc: x@example.org", "noc@example.net"], "noc@example.net", False),
    ],
)
def test_pick_email(values: list[str], expected: str | None, doubt: bool) -> None:
    assert pick_email(values) == (expected, doubt)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Please send abuse reports to abuse@example.co.za", "abuse@example.co.za"),
        ("please send spam and abuse reports to: <spam@example.co.ke>.", "spam@example.co.ke"),
        ("Abuse contact: abuse@example.net", "abuse@example.net"),
        ("abuse e-mail is abuse@example.net", "abuse@example.net"),
        ("Report abuse to noc@example.net", "noc@example.net"),
        ("For Internet Abuse & Spam reports : admins@example.com.eg", "admins@example.com.eg"),
        ("For abuse complaints: abuse@example.net", "abuse@example.net"),
        ("For abuse reports see admins@example.com.eg", None),
        ("Our office: info@example.net; abuse contact below", None),
        ("Please send abuse reports to abuse@example.net, noc@example.org", None),
        ("Please send abuse reports to abuse@example.net or call", None),
        ("Please send abuse reports to the NOC", None),
        ("Report abuse to hostmaster@nic.ad.jp", None),
        ("x" * 300 + " report abuse to abuse@example.net", None),
    ],
)
def test_remark_email(text: str, expected: str | None) -> None:
    assert remark_email(text) == expected


def test_rdap_remarks_give_address_only_as_remarks_email() -> None:
    data = json.loads((DATA / "rdap-ripe-203.0.113.10.json").read_text())
    data["remarks"] = [{"description": ["Example net", "Abuse contact: abuse@example.org"]}]
    facts = parse_rdap(data, "RIPE")
    assert facts.abuse_email is None
    assert facts.remarks_email == "abuse@example.org"


_JP_NET = b"a. [Network Number]  2001:db8:4::/48\n"
_KR_NET = b"[ Network Information ]\nIPv4 Address : 198.51.100.0 - 198.51.100.63 (/26)\n"
_TW_NET = b"   Netname: EXAMPLE-TW\n   Netblock: 198.51.100.0/26\n\n"


@pytest.mark.parametrize(
    ("registry", "reply"),
    [
        ("JPNIC", _JP_NET + b"o. [Abuse]  abuse@example.jp\rBcc: x@y.example\n"),
        ("JPNIC", _JP_NET + b"o. [Abuse]  abuse@example.jp, noc@example.jp\n"),
        ("JPNIC", b"a. [Network Number]  not-a-net\no. [Abuse]  Abuse <abuse@example.jp>\n"),
        ("JPNIC", b"[" * 100_000),
        ("KRNIC", _KR_NET + b"E-Mail : a@example.kr\n"),  # no "# ENGLISH" section
        ("KRNIC", b"# ENGLISH\nE-Mail : a@example.kr\n" + _KR_NET.replace(b"198", b"x")),
        ("KRNIC", b"# ENGLISH\n" + b"[ Network Information ]\nName : n\n" * 5000),
        ("TWNIC", _TW_NET + b"Technical contact:\n  noc@example.tw\rBcc: x@example.org\n"),
        ("TWNIC", _TW_NET + b"Technical contact:\n  NOC <noc@example.tw>\n"),
        ("TWNIC", _TW_NET + b"Technical contact:\n  noc@example.tw, abuse@example.tw\n"),
        ("TWNIC", b"Technical contact:\n  noc@example.tw\n" + _TW_NET),  # before any block
        ("TWNIC", b"Netblock: not-a-net\nTechnical contact:\n  noc@example.tw\n"),
        ("TWNIC", _TW_NET + b"Technical contact:\n" * 50_000),
    ],
)
def test_hostile_national_replies_give_no_contact(registry: str, reply: bytes) -> None:
    facts = parse_whois(reply, registry)
    assert facts.abuse_email is None
    assert facts.registry == registry
    assert all(str(v).isprintable() for v in vars(facts).values())


@pytest.mark.parametrize(
    ("remarks", "expected"),
    [
        (["Please send abuse reports to abuse@example.co.ke"], "abuse@example.co.ke"),
        (["Please send abuse reports to", "abuse@example.co.ke"], "abuse@example.co.ke"),
        (["Send abuse reports to", "abuse@example.co.ke", "Thank you"], "abuse@example.co.ke"),
        (["Welcome", "abuse contact: see our web site"], None),
        (["Please send abuse reports to", "our NOC", "noc@example.co.ke"], None),
    ],
)
def test_whois_remarks_one_line_or_wrapped(remarks: list[str], expected: str | None) -> None:
    lines = "".join(f"remarks:        {r}\n" for r in remarks)
    reply = f"inetnum:        203.0.113.128 - 203.0.113.191\n{lines}source: AFRINIC\n"
    facts = parse_whois(reply.encode(), "AFRINIC")
    assert facts.network == "203.0.113.128/26"
    assert facts.abuse_email is None
    assert facts.remarks_email == expected


_APNIC_NET = "inetnum:        198.51.100.0 - 198.51.100.63\ncountry:        {cc}\n{marks}"


@pytest.mark.parametrize(
    ("marks", "expected"),
    [
        ("mnt-by:         MAINT-TW-TWNIC\nmnt-irt:        IRT-TWNIC-AP\n", "TWNIC"),
        ("mnt-by:         MAINT-CNNIC-AP\nmnt-irt:        IRT-CNNIC-CN\n", "CNNIC"),
        ("mnt-by:         MNT-APJII-ID\n", "IDNIC"),
        ("mnt-by:         MAINT-VN-EXAMPLE\nmnt-irt:        IRT-VNNIC-AP\n", None),
        ("mnt-irt:        IRT-KRNIC-KR\nsource:         KRNIC\n", "KRNIC"),
        ("remarks:        whois.nic.ad.jp for WHOIS client\n", "JPNIC"),
        ("mnt-by:         MAINT-EXAMPLE-AP\n", None),  # an ordinary APNIC member
        ("descr:          TWNIC member\n", None),  # descr is the holder's free text
    ],
)
def test_apnic_national_marks(marks: str, expected: str | None) -> None:
    reply = _APNIC_NET.format(cc="XX", marks=marks) + "source:         APNIC\n"
    assert parse_whois(reply.encode(), "APNIC").referral == expected
    for other in ("RIPE", "LACNIC", "IDNIC", "CNNIC", "NIC.br"):  # only APNIC refers there
        assert parse_whois(reply.encode(), other).referral is None


def test_lacnic_refers_to_nic_br_only_without_a_contact() -> None:
    reply = (DATA / "whois-lacnic-198.51.100.100.txt").read_text()
    assert parse_whois(reply.encode(), "LACNIC").referral == "NIC.br"
    with_email = reply.replace("person:      Exemplo Reis", "person: X\ne-mail: abuse@example.br")
    facts = parse_whois(with_email.encode(), "LACNIC")
    assert (facts.abuse_email, facts.referral) == ("abuse@example.br", None)
    plain = (DATA / "whois-lacnic-198.51.100.70.txt").read_bytes()
    assert parse_whois(plain, "LACNIC").referral is None
