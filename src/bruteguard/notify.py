"""Tell the administrator what bruteguard did: a ban, who runs the attacker's network, an
abuse-desk escalation, by mail or webhook through apprise.

apprise is optional (``pip install 'bruteguard[notify]'``) and imported only when a URL is
configured. Every URL is checked when the notifier is built, so a typo fails at start-up with
the URL named (secrets masked), not silently at the first ban. Sending never raises: a
notification that cannot go out is logged, and banning carries on.

The messages quote values from registry replies and logs, which the attacker may write:
every value is shown escaped (no CR/LF, ANSI or bidi controls) and cut to a bounded length,
and apprise is told the text is plain (no Markdown or HTML interpretation, no emoji or
backslash-escape expansion).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bruteguard.abuse.contact import NetworkContact
from bruteguard.duration import describe_duration
from bruteguard.errors import BruteguardError
from bruteguard.model import Ban
from bruteguard.safe_text import printable

__all__ = ["Notifier", "NotifyError", "ban_message", "escalation_message", "redact_url"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'bruteguard[notify]'"

_NAME_LIMIT = 100  # a network or organisation name
_FIELD_LIMIT = 120  # any other single value
_LINE_LIMIT = 300  # one line of an escalation message
_TITLE_LIMIT = 200
_MAX_LINES = 60  # lines of an escalation message shown before "... more"
_BODY_LIMIT = 16_000  # whatever reaches send()
_GRACE = 0.5  # seconds past ``timeout`` before send() stops waiting on apprise itself

_SOURCES = {
    "rdap": "RDAP",
    "whois": "whois",
    "remarks": "the network's whois/RDAP remarks",
    "rfc2142": "RFC 2142 guess: abuse@ the network's domain",
}


class NotifyError(BruteguardError):
    """A notification URL is invalid or apprise is missing (found at configuration time)."""


def _text(value: object, limit: int = _FIELD_LIMIT) -> str:
    """``value`` as one printable line of at most ``limit`` characters."""
    raw = value if isinstance(value, str) else str(value)
    shown = printable(raw[:limit])  # escaping can only lengthen it
    if len(shown) > limit or len(raw) > limit:
        return shown[: limit - 3] + "..."
    return shown


def _utc(seconds: float) -> str:
    if math.isinf(seconds) and seconds > 0:
        return "never"
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "unknown"


def _row(label: str, value: object, limit: int = _FIELD_LIMIT) -> str:
    return f"  {label:<10}{_text(value, limit)}"


def ban_message(
    ban: Ban,
    contact: NetworkContact | None,
    case_id: str | None = None,
    case_state: str | None = None,
) -> tuple[str, str]:
    """``(title, body)`` for one ban, readable at a glance in a mail client or chat."""
    ip, jail = _text(ban.ip, 64), _text(ban.jail, 40)
    title = f"bruteguard: banned {ip} ({jail})"
    until = _utc(ban.until)
    length = ban.until - ban.start
    if until not in ("never", "unknown") and math.isfinite(length) and length > 0:
        until += f" ({describe_duration(length)} ban)"
    lines = [
        f"bruteguard banned {ip} in jail {jail}.",
        "",
        _row("until", until),
        _row("failures", ban.failures),
    ]
    if ban.reason:
        lines.append(_row("reason", ban.reason))
    lines.append(_row("step", ban.step))
    lines.append("")
    lines.extend(_contact_lines(contact, ban.ip))
    if case_id:
        case = _text(case_id, 64) + (f" ({_text(case_state, 32)})" if case_state else "")
        lines += ["", f"  {'case':<10}{case}"]
    return title, "\n".join(lines)


def _contact_lines(contact: NetworkContact | None, ip: str) -> list[str]:
    """The lookup summary; every value here came from a registry reply (attacker-writable)."""
    if contact is None:
        return ["Network owner: not looked up."]
    lines = ["Who runs the network:"]
    if contact.address and contact.address != ip:
        lines.append(_row("looked up", contact.address, 64))
    for label, value, limit in (
        ("network", contact.network, _FIELD_LIMIT),
        ("name", contact.name, _NAME_LIMIT),
        ("country", contact.country, 8),
        ("ASN", f"AS{contact.asn}" if contact.asn is not None else None, 16),
        ("registry", contact.registry, 32),
    ):
        if value:
            lines.append(_row(label, value, limit))
    if contact.abuse_email and contact.source != "none":
        source = _SOURCES.get(contact.source, _text(contact.source, 16))
        lines.append(f"  {'abuse':<10}{_text(contact.abuse_email, 254)} (from {source})")
    else:
        lines.append(_row("abuse", "no usable abuse contact"))
    if contact.abuse_phone:
        lines.append(_row("phone", contact.abuse_phone, 40))
    if contact.looked_up:
        lines.append(_row("as of", _utc(contact.looked_up)))
    return lines


def escalation_message(title: str, lines: Sequence[str]) -> tuple[str, str]:
    """``(title, body)`` for an abuse-desk event; ``lines`` may quote registry replies."""
    shown = _text(title, _TITLE_LIMIT - 12)
    if not shown.startswith("bruteguard"):
        shown = f"bruteguard: {shown}"
    body = [_text(line, _LINE_LIMIT) for line in list(lines)[:_MAX_LINES]]
    if len(lines) > _MAX_LINES:
        body.append(f"... {len(lines) - _MAX_LINES} more lines not shown")
    return shown, "\n".join(body)


# --- URL checks ---------------------------------------------------------------------------

_SCHEME = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]{0,31}\Z")
_HOST = re.compile(
    r"\A(?:(?:[A-Za-z0-9_-]{1,63}\.)+[A-Za-z0-9-]{1,63}|[A-Za-z0-9_-]{1,15}|\[[0-9A-Fa-f:.]+\])\Z"
)
_PLAIN = re.compile(
    r"\A(?:[A-Za-z._-]{1,32}|[0-9]{1,12}|[A-Za-z0-9._+-]{1,64}@[A-Za-z0-9.-]{1,190})\Z"
)
_KEY = re.compile(r"\A[A-Za-z0-9_:+-]{1,32}\Z")
# Query options that configure a plugin rather than authenticate to it.
_OPTIONS = frozenset(
    {"format", "overflow", "mode", "smtp", "from", "to", "method", "verify", "rto", "cto"}
    | {"retry", "wait", "optional", "emojis", "tz", "name", "cc", "bcc", "reply"}
)


def _mask(word: str) -> str:
    return f"{word[:1]}..." if word else ""


def redact_url(url: str) -> str:
    """``url`` with what may be a secret masked, to name it in an error or a log line.

    apprise URLs carry credentials anywhere (``user:password@``, a token as the host or a
    path segment, ``?token=``), so only plain-looking parts are kept: scheme, user name,
    host names, short words and numbers, e-mail addresses and known option names.
    """
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.match(scheme):
        return _text(_mask(text), 40)
    rest, _, fragment = rest.partition("#")
    rest, qmark, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    auth = ""
    if at:
        user, colon, _password = userinfo.partition(":")
        auth = (user if _PLAIN.match(user) else _mask(user)) + (":****" if colon else "") + "@"
    if hostport.startswith("[") and "]:" in hostport:  # [2001:db8::1]:8080
        host, _, port = hostport.partition("]:")
        host, colon = host + "]", ":"
    elif hostport.count(":") == 1:
        host, colon, port = hostport.partition(":")
    else:
        host, colon, port = hostport, "", ""
    host = host if _HOST.match(host) else _mask(host)
    port = port if port.isdigit() and len(port) <= 5 else _mask(port)
    segments = [seg if _PLAIN.match(seg) else _mask(seg) for seg in path.split("/")]
    params = []
    for pair in query.split("&") if query else ():
        key, equals, value = pair.partition("=")
        keep = key.lower() in _OPTIONS and _PLAIN.match(value)
        params.append(
            (key if _KEY.match(key) else _mask(key)) + equals + (value if keep else "****")
        )
    shown = f"{scheme}://{auth}{host}{colon}{port}{slash}{'/'.join(segments)}"
    shown += qmark + "&".join(params) + ("#..." if fragment else "")
    return _text(shown, _TITLE_LIMIT)


def _load_apprise() -> Any:
    try:
        import apprise  # optional dependency: loaded only when a URL is configured
    except ImportError:
        return None
    return apprise


class Notifier:
    """Sends ``(title, body)`` to every configured apprise URL (mail, webhooks, chat).

    ``host`` names this machine in every title, so an admin of several servers sees which
    one acted. Without URLs the notifier does nothing (``enabled`` is false).
    """

    def __init__(
        self, urls: Sequence[str], *, timeout: float = 10.0, host: str | None = None
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise NotifyError(f"notify timeout must be a number of seconds, got {timeout!r}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise NotifyError(f"notify timeout must be positive seconds, got {timeout!r}")
        self._timeout = float(timeout)
        self._prefix = f"[{_text(host, 64)}] " if host else ""
        self._apprise: Any = None
        self._apprise_mod: Any = None
        if isinstance(urls, str):
            urls = [urls]
        urls = list(urls)
        if not urls:
            return
        apprise = _load_apprise()
        if apprise is None:
            raise NotifyError(
                f"notification URLs are configured but apprise is missing: {INSTALL_HINT}"
            )
        asset = apprise.AppriseAsset(
            app_id="bruteguard",
            app_desc="bruteguard",
            body_format=apprise.NotifyFormat.TEXT,
            interpret_emojis=False,
            interpret_escapes=False,
            storage_mode="memory",  # nothing written to apprise's cache directories
            service_timeout=self._timeout,
        )
        sender = apprise.Apprise(asset=asset)
        for index, url in enumerate(urls, start=1):
            if not isinstance(url, str) or not url.strip():
                raise NotifyError(f"notify URL #{index} is empty or not text")
            plugin = apprise.Apprise.instantiate(url.strip(), asset=asset)
            if plugin is None:
                raise NotifyError(
                    f"notify URL #{index} {redact_url(url)!r} is not a usable apprise URL "
                    "(unknown service, a missing or malformed part, or a plugin this system "
                    "cannot run)"
                )
            # A silent server must not hold a worker thread past our own deadline.
            for name in ("socket_connect_timeout", "socket_read_timeout"):
                current = getattr(plugin, name, None)
                if isinstance(current, int | float) and current > self._timeout:
                    setattr(plugin, name, self._timeout)
            sender.add(plugin)
        self._apprise = sender
        self._apprise_mod = apprise

    @property
    def enabled(self) -> bool:
        """Whether any URL is configured (otherwise :meth:`send` does nothing)."""
        return self._apprise is not None

    async def send(self, title: str, body: str) -> bool:
        """Deliver to every URL; ``False`` (and a warning) if any failed. Never raises.

        Bounded by ``timeout``; apprise runs each delivery in its own worker threads, so the
        event loop is never blocked. With no URLs there is nothing to fail: ``True``.
        """
        if self._apprise is None:
            return True
        title = self._prefix + _text(title, _TITLE_LIMIT)
        text = body if isinstance(body, str) else str(body)
        text = "\n".join(_text(line, 1000) for line in text[:_BODY_LIMIT].split("\n"))
        apprise = self._apprise_mod
        try:
            async with asyncio.timeout(self._timeout + _GRACE):
                result = await self._apprise.async_notify(
                    body=text or "-",
                    title=title,
                    body_format=apprise.NotifyFormat.TEXT,
                    timeout=self._timeout,
                )
        except TimeoutError:
            log.warning("notification %r not delivered within %.1fs", title, self._timeout)
            return False
        except Exception as exc:  # a plugin bug must not stop banning
            log.warning("notification %r failed: %s", title, _text(exc))
            return False
        try:
            if result:
                return True
            failed = [
                f"{_text(entry.name, 40)} {_text(entry.url, _TITLE_LIMIT)} "
                f"({entry.status.name.lower()})"
                for entry in result
                if entry.status != apprise.AppriseResultStatus.SUCCESS
            ]
            log.warning(
                "notification %r failed: %s",
                title,
                "; ".join(failed) or result.status.name.lower(),
            )
            return False
        finally:
            result.close()
