"""``[abuse]`` and its tables (``smtp``, ``lookup``, ``mailbox``): the abuse desk's settings."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from bruteguard.abuse.national_servers import NATIONAL_WHOIS
from bruteguard.bounds import (
    MAX_BAN,
    MAX_NETWORK_WAIT,
    MAX_PORT,
    MAX_WINDOW,
    check_absolute,
    check_duration,
    check_range,
)
from bruteguard.config.jail import RECIDIVE_JAIL
from bruteguard.duration import Seconds, SecondsOrNever

__all__ = ["AbuseConfig", "LookupConfig", "MailboxSettings", "SmtpConfig"]


class SmtpConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The relay complaints leave by (``abuse.smtp.Relay``); a password only over STARTTLS.

    ``password_file`` keeps the secret out of a file many people may read.
    """

    host: str = "localhost"
    port: int = 25
    starttls: Literal["required", "optional", "off"] = "required"
    username: str = ""
    password: str = ""
    password_file: str = ""
    timeout: Seconds = Seconds(30)

    def __post_init__(self) -> None:
        check_range("port", self.port, 1, MAX_PORT)
        check_absolute("password_file", self.password_file)
        if self.password and self.password_file:
            raise ValueError("password: give password or password_file, not both")
        if (self.password or self.password_file) and not self.username:
            raise ValueError("username: a password needs a username")
        if self.username and self.starttls == "off":
            raise ValueError("starttls: a password is never sent without STARTTLS")
        check_duration("timeout", self.timeout, MAX_NETWORK_WAIT)


class LookupConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where abuse-contact lookups go (``abuse.lookup.Servers``) and how long answers count.

    ``rdap``: registry → RDAP base URL; ``whois``: registry → ``host:port``, overriding
    the registries' own servers (tests, or a local mirror).
    """

    bootstrap: str = "https://data.iana.org/rdap/"
    rdap: dict[str, str] = {}
    whois: dict[str, str] = {}
    timeout: Seconds = Seconds(10)
    deadline: Seconds = Seconds(30)
    cache: Seconds = Seconds(7 * 86400)  # a registry's answer
    cache_fallback: Seconds = Seconds(86400)  # an RFC 2142 guess or "no contact"
    cache_failure: Seconds = Seconds(3600)  # nothing learnt at all (network trouble)

    def __post_init__(self) -> None:
        registries = {"ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC"}
        national = set(NATIONAL_WHOIS)  # whois only: APNIC/LACNIC refer there
        for key in (*self.rdap, *self.whois):
            if key not in registries | (national if key in self.whois else set()):
                raise ValueError(f"rdap/whois: unknown registry {key!r} (one of ARIN, RIPE, ...)")
        for registry, endpoint in self.whois.items():
            host, colon, port = endpoint.rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"whois: the entry {registry} = {endpoint!r} is not host:port")
        check_duration("timeout", self.timeout, MAX_NETWORK_WAIT)
        check_duration("deadline", self.deadline, MAX_NETWORK_WAIT)
        check_duration("cache", self.cache, MAX_WINDOW)
        check_duration("cache_fallback", self.cache_fallback, MAX_WINDOW)
        check_duration("cache_failure", self.cache_failure, MAX_WINDOW)


class MailboxSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where replies and bounces to complaints arrive (``abuse.mailbox``)."""

    kind: Literal["maildir", "mbox", "imap"]
    path: str = ""
    host: str = ""
    port: int = 993
    tls: Literal["implicit", "starttls", "off"] = "implicit"
    username: str = ""
    password: str = ""
    password_file: str = ""
    folder: str = "INBOX"

    def __post_init__(self) -> None:
        check_range("port", self.port, 1, MAX_PORT)
        check_absolute("path", self.path)
        check_absolute("password_file", self.password_file)


class AbuseConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The abuse desk (docs/abuse.md): report banned addresses to their network's abuse
    contact, read what comes back, escalate against networks nobody answers for.

    ``mode`` "draft" writes each complaint to its case for ``bruteguard abuse show`` and
    ``abuse send``; "send" mails it. A jail's own ``abuse`` setting beats ``mode``.
    """

    enabled: bool = False
    mode: Literal["draft", "send"] = "draft"
    sender: str = ""
    org: str = ""
    contact: str = ""
    phone: str = ""
    name: str = ""
    # One complaint per address per period; a contact hears from us at most once a period.
    period: Seconds = Seconds(86400)
    # How long a new case collects further addresses of the same contact before it is sent.
    hold: SecondsOrNever = SecondsOrNever(600)
    # The jail whose (every-port) set holds the desk's network blocks.
    block_jail: str = RECIDIVE_JAIL
    dead_contact_block: SecondsOrNever = SecondsOrNever(
        30 * 86400
    )  # 0: never block for a dead contact
    # A first full-mailbox bounce: no complaint to that contact this long, nothing blocked.
    mailbox_full_pause: SecondsOrNever = SecondsOrNever(30 * 86400)
    call_first: list[str] = msgspec.field(default_factory=lambda: ["US", "CA"])
    postmaster_notice: bool = True
    # A network block never spans more than this; wider registry ranges are cut to the
    # prefix of this size around the address.
    largest_block_ipv4: int = 16
    largest_block_ipv6: int = 32
    poll_interval: Seconds = Seconds(300)
    smtp: SmtpConfig = msgspec.field(default_factory=SmtpConfig)
    lookup: LookupConfig = msgspec.field(default_factory=LookupConfig)
    mailbox: MailboxSettings | None = None

    def __post_init__(self) -> None:
        if self.enabled and (not self.sender or not self.org):
            raise ValueError("sender: the abuse desk needs sender and org to sign complaints")
        for country in self.call_first:
            if not re.fullmatch(r"[A-Z]{2}", country):
                raise ValueError(f"call_first: {country!r} is not an ISO country code like US")
        if not 8 <= self.largest_block_ipv4 <= 32 or not 16 <= self.largest_block_ipv6 <= 128:
            raise ValueError("largest_block_ipv4: must be 8 to 32 (largest_block_ipv6: 16 to 128)")
        check_duration("period", self.period, MAX_WINDOW)
        check_duration("poll_interval", self.poll_interval, 86400)
        check_duration("hold", self.hold, 86400, zero=True)
        check_duration("dead_contact_block", self.dead_contact_block, MAX_BAN, zero=True)
        check_duration("mailbox_full_pause", self.mailbox_full_pause, MAX_BAN, zero=True)
