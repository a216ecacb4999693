"""Hand a complaint to the configured SMTP relay, saying whether a retry can help.

The queue needs exactly one distinction: :class:`RelayUnavailable` (try again later: relay
down, timeout, 4xx) versus :class:`Rejected` (5xx: retrying would send the same refusal).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum

from bruteguard.abuse.complaint import BadContact, check_mailbox
from bruteguard.errors import BruteguardError, ConfigError

__all__ = [
    "Rejected",
    "Relay",
    "RelayUnavailable",
    "SmtpError",
    "StartTLS",
    "send",
    "send_async",
]


class StartTLS(StrEnum):
    """Whether the connection to the relay must, may or must not be upgraded to TLS."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    OFF = "off"


class SmtpError(BruteguardError):
    """Sending a complaint failed."""


class RelayUnavailable(SmtpError):
    """The relay could not take the message now (down, timeout, 4xx, no TLS): retry later."""


class Rejected(SmtpError):
    """The relay or recipient refused the message permanently (5xx): do not retry as is."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Relay:
    """Where and how complaints leave this host."""

    host: str = "localhost"
    port: int = 25
    starttls: StartTLS = StartTLS.REQUIRED
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None  # None: system CAs, hostname checked
    local_hostname: str | None = None  # EHLO name; None: the host's FQDN

    def __post_init__(self) -> None:
        object.__setattr__(self, "starttls", StartTLS(self.starttls))
        if not 0 < self.port < 65536:
            raise ConfigError(f"smtp relay port {self.port} is out of range")
        if self.timeout <= 0:
            raise ConfigError("smtp relay timeout must be positive")
        if (self.username is None) != (self.password is None):
            raise ConfigError("smtp relay needs both username and password, or neither")
        if self.username is not None and self.starttls is StartTLS.OFF:
            raise ConfigError("smtp relay: a password is never sent without STARTTLS")


def _code_error(what: str, code: int, reply: bytes | str) -> SmtpError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"{what}: {code} {text}".strip()
    if 400 <= code < 500:
        return RelayUnavailable(message)
    return Rejected(message, code)


def _check_envelope(message: EmailMessage) -> tuple[str, str]:
    """The one sender and one recipient, checked again: the last gate before the wire."""
    senders = message.get_all("From") or []
    recipients = (message.get_all("To") or []) + (message.get_all("Cc") or [])
    if message.get_all("Bcc") or len(senders) != 1 or len(recipients) != 1:
        raise BadContact("a complaint has exactly one From and one To and no Cc/Bcc")
    pairs = []
    for header, what in ((senders[0], "sender"), (recipients[0], "recipient")):
        addresses = getattr(header, "addresses", None)
        if not addresses or len(addresses) != 1:
            raise BadContact(f"{what} is not exactly one address")
        pairs.append(check_mailbox(addresses[0].addr_spec, what))
    return pairs[0], pairs[1]


def _session(relay: Relay, smtp: smtplib.SMTP) -> None:
    smtp.ehlo()
    if relay.starttls is not StartTLS.OFF:
        if smtp.has_extn("starttls"):
            context = relay.ssl_context or ssl.create_default_context()
            smtp.starttls(context=context)
            smtp.ehlo()
        elif relay.starttls is StartTLS.REQUIRED:
            raise RelayUnavailable(
                f"smtp relay {relay.host}:{relay.port} does not offer STARTTLS (required)"
            )
    if relay.username is not None and relay.password is not None:
        if smtp.sock is None or not isinstance(smtp.sock, ssl.SSLSocket):
            raise RelayUnavailable("smtp relay offered no TLS; the password is not sent in clear")
        smtp.login(relay.username, relay.password)


def send(message: EmailMessage, relay: Relay, *, now: datetime | None = None) -> None:
    """Deliver ``message`` to its one recipient through ``relay`` (blocking).

    ``Date:`` is set to ``now`` (default: the present), the moment it is sent: a draft may
    wait days for the admin, and RFC 5322 wants the time the message was ready to go.
    Raises :class:`RelayUnavailable` when a later retry may succeed, :class:`Rejected` when it
    will not, and :class:`BadContact` (before connecting) if the envelope is not one sender
    and one recipient.
    """
    sender, recipient = _check_envelope(message)
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the Date: header needs a zone")
    del message["Date"]
    message["Date"] = format_datetime(moment.astimezone(UTC))
    where = f"smtp relay {relay.host}:{relay.port}"
    try:
        with smtplib.SMTP(
            relay.host, relay.port, local_hostname=relay.local_hostname, timeout=relay.timeout
        ) as smtp:
            _session(relay, smtp)
            refused = smtp.send_message(message, from_addr=sender, to_addrs=[recipient])
    except smtplib.SMTPRecipientsRefused as err:
        code, reply = err.recipients.get(recipient, (550, b"recipient refused"))
        raise _code_error(f"{where} refused {recipient}", code, reply) from None
    except smtplib.SMTPSenderRefused as err:
        raise _code_error(
            f"{where} refused sender {sender}", err.smtp_code, err.smtp_error
        ) from None
    except smtplib.SMTPAuthenticationError as err:
        raise _code_error(f"{where} refused the login", err.smtp_code, err.smtp_error) from None
    except smtplib.SMTPResponseException as err:  # DATA refused, HELO refused, 421 …
        raise _code_error(where, err.smtp_code, err.smtp_error) from None
    except smtplib.SMTPNotSupportedError as err:
        raise Rejected(f"{where}: {err}") from None
    except smtplib.SMTPServerDisconnected as err:
        raise RelayUnavailable(f"{where} closed the connection: {err}") from None
    except ssl.SSLError as err:
        raise RelayUnavailable(f"{where}: TLS failed: {err}") from None
    except OSError as err:  # refused, unreachable, timeout, name not found
        raise RelayUnavailable(f"{where} is unreachable: {err}") from None
    if refused:
        code, reply = refused.get(recipient, (550, b"refused"))
        raise _code_error(f"{where} refused {recipient}", code, reply)


async def send_async(message: EmailMessage, relay: Relay, *, now: datetime | None = None) -> None:
    """:func:`send` in a worker thread, so the daemon's event loop never waits on a relay."""
    await asyncio.to_thread(send, message, relay, now=now)
