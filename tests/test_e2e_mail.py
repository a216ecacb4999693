"""Issue 15's servers end to end: their real failure lines become bans.

Each test builds a ``maillab`` lab (the real server and rsyslogd in the server namespace,
an attacker and an innocent client in their own), starts the real ``bruteguard run`` in the
server namespace with the server's built-in jail reading the log the server really writes,
and judges by behaviour: after ``maxretry`` refused logins the attacker cannot connect to
the service any more (not even with the right password), while the innocent client, on
the same network, still logs in. Every lab is taken down afterwards, and nothing of it may
be left.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bgdaemon import Bruteguard
from e2e_lab import LabDaemons, address, banned, counted, service_jail
from labkit import poll_until
from maillab import (
    BindLab,
    CyrusLab,
    MailLab,
    NginxMailLab,
    OpenSmtpdLab,
    SambaLab,
    SendmailLab,
)
from netns import Host

pytestmark = pytest.mark.netns

MAXRETRY = 3


@pytest.fixture
def start_lab(lab_daemons: LabDaemons, tmp_path: Path) -> Callable[..., tuple[Any, Bruteguard]]:
    """Start a lab and bruteguard with ``jail`` (built in) on the lab's log."""

    def start(kind: type[MailLab], jail: str, **settings: Any) -> tuple[Any, Bruteguard]:
        lab = kind(tmp_path / kind.__name__.lower())
        jails = {"sshd": {"enabled": False}, jail: service_jail(lab.jail_log, MAXRETRY, **settings)}
        return lab_daemons.start(lab, jails, f"{jail}-bg.log")

    return start


def sendmail_address(ip: str) -> str:
    """``ip`` as Sendmail writes it: IPv6 as ``IPv6:`` and every group, unpadded."""
    if ipaddress.ip_address(ip).version == 4:
        return ip
    return "IPv6:" + ":".join(
        f"{int(part, 16):x}" for part in ipaddress.IPv6Address(ip).exploded.split(":")
    )


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_cyrus_failed_logins_ban_the_attacker(start_lab, family: str) -> None:
    """Cyrus imapd's ``badlogin:`` lines (mail.log via syslog): MAXRETRY - 1 wrong
    passwords ban no one, one more does; the attacker's IMAP and POP3 connections are then
    refused, the innocent neighbour still logs in."""
    lab, daemon = start_lab(CyrusLab, "cyrus-imap")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    failed = rf"^.* cyrus/(?:imap|pop3)\[\d+\]: badlogin: \S+ \[{re.escape(attacker_ip)}\] "

    assert lab.fail_logins(attacker, server, MAXRETRY - 2) == ["rejected"] * (MAXRETRY - 2)
    assert lab.fail_logins(attacker, server, 1, protocol="pop3", port=lab.POP3_PORT) == ["rejected"]
    lab.wait_for_log(failed, count=MAXRETRY - 1)
    counted(daemon, "cyrus-imap", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.fail_logins(attacker, server, 1) == ["rejected"]
    ban = banned(lab, daemon, attacker_ip, "cyrus-imap")
    poll_until(lambda: not lab.connects(attacker, server), 10, "the firewall", daemon.log)
    assert lab.attempts(attacker, server, lab.user, lab.password, timeout=3) == ["unreachable"]
    assert not attacker.tcp_connect(server, lab.POP3_PORT, timeout=1.5), ban
    assert lab.login(innocent, server), f"the innocent client was locked out\n{daemon.log()}"
    assert daemon.ban_of(address(innocent, family)) is None, daemon.log()
    counted(daemon, "cyrus-imap", MAXRETRY)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_sendmail_failed_auth_bans_the_attacker(start_lab, family: str) -> None:
    """Sendmail's ``AUTH failure`` lines (one per refused AUTH; each connection also
    writes a ``did not issue MAIL`` close, which must not add to it): MAXRETRY - 1 refused
    AUTHs ban no one, one more does; then the attacker's SMTP connections are refused and
    the innocent neighbour still authenticates."""
    lab, daemon = start_lab(SendmailLab, "sendmail")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    written = sendmail_address(attacker_ip)
    failed = (
        rf"^.* sm-mta\[\d+\]: \w+: AUTH failure \(PLAIN\): .*, relay=\S+ \[{re.escape(written)}\]$"
    )
    closed = rf"^.* sm-mta\[\d+\]: \w+: \S+ \[{re.escape(written)}\] did not issue "

    assert lab.fail_logins(attacker, server, MAXRETRY - 1) == ["rejected"] * (MAXRETRY - 1)
    lab.wait_for_log(failed, count=MAXRETRY - 1)
    lab.wait_for_log(closed, count=MAXRETRY - 1)
    counted(daemon, "sendmail", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.fail_logins(attacker, server, 1) == ["rejected"]
    ban = banned(lab, daemon, attacker_ip, "sendmail")
    poll_until(lambda: not lab.connects(attacker, server), 10, "the firewall", daemon.log)
    assert lab.attempts(attacker, server, lab.user, lab.password, timeout=3) == ["unreachable"]
    assert lab.login(innocent, server), f"the innocent client was locked out\n{daemon.log()}"
    assert daemon.ban_of(address(innocent, family)) is None, (ban, daemon.log())


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_opensmtpd_failed_auth_bans_the_attacker(start_lab, family: str) -> None:
    """OpenSMTPD's session lines (the address only on a session's ``connected`` line; a
    refused AUTH writes ``result=permfail`` and then its 535, one attempt): MAXRETRY - 1
    refused AUTHs after STARTTLS on one connection ban no one, one more on another
    connection does; then the attacker's submission connections are refused, the right
    password too, and the innocent neighbour still authenticates."""
    lab, daemon = start_lab(OpenSmtpdLab, "opensmtpd")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    written = attacker_ip if family == "ipv4" else f"[{attacker_ip}]"
    session = r"^.* smtpd\[\d+\]: [0-9a-f]{16} smtp "
    connected = rf"{session}connected address={re.escape(written)} host=attacker\.example\.net$"
    refused = rf"{session}authentication user={re.escape(lab.user)} result=permfail$"
    answered = rf'{session}failed-command command="AUTH PLAIN \(\.\.\.\)" result="535 [^"]*"$'

    assert lab.fail_logins(attacker, server, MAXRETRY - 1, mode="session") == ["rejected"] * (
        MAXRETRY - 1
    )
    lab.wait_for_log(answered, count=MAXRETRY - 1)
    assert len(lab.find_lines(connected)) == 1
    assert len(lab.find_lines(refused)) == MAXRETRY - 1
    counted(daemon, "opensmtpd", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.fail_logins(attacker, server, 1) == ["rejected"]
    ban = banned(lab, daemon, attacker_ip, "opensmtpd")
    poll_until(lambda: not lab.connects(attacker, server), 10, "the firewall", daemon.log)
    assert lab.attempts(attacker, server, lab.user, lab.password, timeout=3) == ["unreachable"]
    assert lab.login(innocent, server), f"the innocent client was locked out\n{daemon.log()}"
    assert daemon.ban_of(address(innocent, family)) is None, (ban, daemon.log())
    counted(daemon, "opensmtpd", MAXRETRY)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_sendmail_reject_bans_a_relay_attempt_in_the_opt_in_jail(start_lab, family: str) -> None:
    """The opt-in sendmail-reject jail, turned on: Sendmail's ``ruleset=check_rcpt …
    reject=550 5.7.1 <RCPT>... Relaying denied`` lines, one per refused recipient elsewhere
    (the real 8.17 wording); MAXRETRY - 1 ban no one, one more does; then the attacker's SMTP
    connections are refused and the innocent neighbour still authenticates."""
    lab, daemon = start_lab(SendmailLab, "sendmail-reject")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    written = sendmail_address(attacker_ip)
    refused = (
        r"^.* sm-mta\[\d+\]: \w+: ruleset=check_rcpt, arg1=<x@elsewhere\.test>,"
        rf" relay=\S+ \[{re.escape(written)}\], reject=550 5\.7\.1 <x@elsewhere\.test>\.\.\."
        r" Relaying denied"
    )

    def relay(host: Host, count: int) -> list[str]:
        sender, recipient = f"{lab.user}@mail.example.org", "x@elsewhere.test"
        return lab.attempts(host, server, sender, recipient, count, protocol="relay")

    assert relay(attacker, MAXRETRY - 1) == ["rejected"] * (MAXRETRY - 1)
    lab.wait_for_log(refused, count=MAXRETRY - 1)
    counted(daemon, "sendmail-reject", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert relay(attacker, 1) == ["rejected"]
    banned(lab, daemon, attacker_ip, "sendmail-reject")
    poll_until(lambda: not lab.connects(attacker, server), 10, "the firewall", daemon.log)
    assert lab.login(innocent, server), f"the innocent client was locked out\n{daemon.log()}"
    assert daemon.ban_of(address(innocent, family)) is None, daemon.log()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_nginx_mail_refused_logins_ban_the_attacker(start_lab, family: str) -> None:
    """nginx's mail proxy (its error log at level info): logins its auth_http server refuses,
    over IMAP and POP3, one line each; MAXRETRY - 1 ban no one, one more does; then the
    attacker's IMAP and POP3 connections are refused while the innocent neighbour's are
    still answered (the lab's auth server refuses every login, so "served" is the greeting)."""
    lab, daemon = start_lab(NginxMailLab, "nginx-mail")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    client = re.escape(attacker_ip)
    failed = rf'^.* client login failed: ".*" while in http auth state, client: {client}, '

    assert lab.fail_logins(attacker, server, MAXRETRY - 2) == ["rejected"] * (MAXRETRY - 2)
    assert lab.fail_logins(attacker, server, 1, protocol="pop3", port=lab.POP3_PORT) == ["rejected"]
    lab.wait_for_jail_log(failed, count=MAXRETRY - 1)
    counted(daemon, "nginx-mail", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.fail_logins(attacker, server, 1) == ["rejected"]
    banned(lab, daemon, attacker_ip, "nginx-mail")
    poll_until(lambda: not lab.connects(attacker, server), 10, "the firewall", daemon.log)
    assert not attacker.tcp_connect(server, lab.POP3_PORT, timeout=1.5)
    assert lab.fail_logins(innocent, server, 1) == ["rejected"], "the innocent was not served"
    assert daemon.ban_of(address(innocent, family)) is None, daemon.log()
    counted(daemon, "nginx-mail", MAXRETRY + 1)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_named_refused_queries_ban_udp(start_lab, family: str) -> None:
    """named's ``query (cache) … denied`` lines (syslog), for queries over UDP: the built-in
    jail bans DNS over UDP (its protocol); MAXRETRY - 1 refused queries ban no one, one more
    does; then the attacker's UDP queries go unanswered while the innocent neighbour's are
    answered. TCP is another jail's business: the attacker's TCP queries are still answered."""
    lab, daemon = start_lab(BindLab, "named-refused")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    denied = rf"^.* named\[\d+\]: client @0x[0-9a-f]+ {re.escape(attacker_ip)}#\d+ .* denied"

    for _ in range(MAXRETRY - 1):
        assert lab.dig(attacker, server, "x.test", "A") == "REFUSED"
    lab.wait_for_log(denied, count=MAXRETRY - 1)
    counted(daemon, "named-refused", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.dig(attacker, server, "x.test", "ANY") == "REFUSED"
    ban = banned(lab, daemon, attacker_ip, "named-refused")
    poll_until(
        lambda: lab.dig(attacker, server, "www.example.org", "A") == "unreachable",
        10,
        "the firewall to drop the attacker's UDP queries",
        daemon.log,
    )
    assert lab.dig(innocent, server, "www.example.org", "A") == "NOERROR", daemon.log()
    assert lab.dig(attacker, server, "www.example.org", "A", tcp=True) == "NOERROR", ban
    assert daemon.ban_of(address(innocent, family)) is None, daemon.log()


def test_named_refused_transfers_ban_tcp_in_a_tcp_jail(start_lab) -> None:
    """The same filter in a jail with ``protocol = "tcp"``: refused zone transfers (AXFR is
    TCP only, its source address proven by the handshake) ban the attacker's TCP to port
    53; the innocent neighbour's TCP queries are still answered."""
    lab, daemon = start_lab(BindLab, "named-tcp", filter="named-refused", port=[53], protocol="tcp")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server = lab.server.ipv4
    denied = rf"^.* named\[\d+\]: client @0x[0-9a-f]+ {re.escape(attacker.ipv4)}#\d+ .* denied"

    for _ in range(MAXRETRY - 1):
        assert lab.dig(attacker, server, "example.org", "AXFR", tcp=True) == "REFUSED"
    lab.wait_for_log(denied, count=MAXRETRY - 1)
    counted(daemon, "named-tcp", MAXRETRY - 1)
    assert daemon.ban_of(attacker.ipv4) is None, daemon.log()

    assert lab.dig(attacker, server, "example.org", "AXFR", tcp=True) == "REFUSED"
    banned(lab, daemon, attacker.ipv4, "named-tcp")
    poll_until(lambda: not lab.connects(attacker, server), 10, "the firewall", daemon.log)
    assert lab.dig(innocent, server, "www.example.org", "A", tcp=True) == "NOERROR"
    assert daemon.ban_of(innocent.ipv4) is None, daemon.log()


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_samba_failed_logins_ban_the_attacker(start_lab, family: str) -> None:
    """smbd's auth audit in syslog (its human-readable and JSON lines for each attempt,
    counted once): MAXRETRY - 1 wrong passwords ban no one, one more does; then the
    attacker's SMB connections are refused, the right password too, while the innocent
    neighbour still logs in."""
    lab, daemon = start_lab(SambaLab, "samba")
    attacker, innocent = lab.clients["attacker"], lab.clients["innocent"]
    server, attacker_ip = address(lab.server, family), address(attacker, family)
    audited = rf"^.* smbd\[\d+\]:   Auth: .* remote host \[ipv[46]:{re.escape(attacker_ip)}:\d+\] "

    for _ in range(MAXRETRY - 1):
        assert lab.smb(attacker, server, lab.user, "wrong-password") == "rejected"
    lab.wait_for_log(audited, count=MAXRETRY - 1)
    counted(daemon, "samba", MAXRETRY - 1)
    assert daemon.ban_of(attacker_ip) is None, daemon.log()

    assert lab.smb(attacker, server, "nosuchuser", "x") == "rejected"
    banned(lab, daemon, attacker_ip, "samba")
    poll_until(lambda: not lab.connects(attacker, server), 10, "the firewall", daemon.log)
    assert lab.smb(attacker, server, lab.user, lab.password) == "unreachable"
    assert lab.smb(innocent, server, lab.user, lab.password) == "accepted", daemon.log()
    assert daemon.ban_of(address(innocent, family)) is None, daemon.log()
    counted(daemon, "samba", MAXRETRY)
