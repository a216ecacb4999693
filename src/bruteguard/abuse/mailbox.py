"""Read the replies and bounces that come back to the abuse desk, without touching the mailbox.

The desk's mailbox usually belongs to the administrator, who also reads it. So this module
only ever reads: files are opened read-only (without updating their access time where the
kernel allows, so a mail client's "new mail" marker stays), an mbox is read under a shared
``fcntl`` lock (the one MDAs take to append), and IMAP folders are opened with EXAMINE and
read with ``BODY.PEEK`` so no ``\\Seen`` flag changes. What was already handled is the
caller's bookkeeping: each message comes with a stable key and ``seen(key)`` decides.

A message larger than ``max_bytes`` is not skipped (it would then be read again on every
run): it is yielded cut to its first ``max_bytes`` bytes at a line end, with
``truncated=True``, after a logged warning. Headers and the first body parts (where a
delivery report puts its human text and its ``message/delivery-status``) survive the cut.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import errno
import fcntl
import hashlib
import imaplib
import logging
import math
import os
import re
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from bruteguard.errors import BruteguardError, ConfigError
from bruteguard.safe_text import printable

__all__ = ["Fetched", "MailboxConfig", "MailboxError", "fetch"]

log = logging.getLogger(__name__)

_KINDS = ("maildir", "mbox", "imap")
_TLS = ("implicit", "starttls", "off")
_READ_CHUNK = 1 << 16
_SEARCH_WINDOW = 10_000  # messages per UID SEARCH: keeps each reply line well under imaplib's cap
_FETCH_COUNT = 100  # messages per UID FETCH of bodies
_SIZE_COUNT = 1000  # messages per UID FETCH of sizes
_FETCH_BYTES = 32 << 20  # and at most this many bytes of them
_LOCK_POLL = 0.05


class MailboxError(BruteguardError):
    """The mailbox could not be read: path missing or unreadable, server down, login refused."""


@dataclass(frozen=True)
class MailboxConfig:
    """Where the desk's replies arrive: a Maildir, an mbox file or an IMAP folder.

    ``timeout`` bounds each network operation (IMAP) or the wait for an mbox lock. The
    password is kept out of ``repr`` and of every error message, and is never sent without
    TLS: ``tls="off"`` is accepted only without credentials (a PREAUTH server).
    """

    kind: Literal["maildir", "mbox", "imap"]
    path: str = ""
    host: str = ""
    port: int = 993
    tls: Literal["implicit", "starttls", "off"] = "implicit"
    username: str = ""
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None  # None: system CAs with hostname checking

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"mailbox kind must be one of {', '.join(_KINDS)}, not {self.kind!r}")
        if not isinstance(self.timeout, int | float) or not (
            math.isfinite(self.timeout) and self.timeout > 0
        ):
            raise ConfigError("mailbox timeout must be a positive number of seconds")
        if self.kind == "imap":
            self._check_imap()
            return
        if not self.path or "\0" in self.path:
            raise ConfigError(f"{self.kind} mailbox needs a path")
        if self.host or self.username or self.password:
            raise ConfigError(f"{self.kind} mailbox {self.path!r} takes no host, user or password")

    def _check_imap(self) -> None:
        if not self.host or len(self.host) > 253 or not self.host.isprintable() or " " in self.host:
            raise ConfigError("imap mailbox needs a host name or address")
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise ConfigError(f"imap mailbox port {self.port!r} is out of range")
        if self.tls not in _TLS:
            raise ConfigError(f"imap tls must be one of {', '.join(_TLS)}, not {self.tls!r}")
        if bool(self.username) != bool(self.password):
            raise ConfigError(
                f"imap mailbox {self.host}: give both username and password, or neither"
            )
        for value, what in ((self.username, "username"), (self.password, "password")):
            if any(char in value for char in "\r\n\0"):  # cannot be sent in an IMAP string
                raise ConfigError(f"imap mailbox {self.host}: the {what} has CR, LF or NUL")
        if self.password and self.tls == "off":
            raise ConfigError(f"imap mailbox {self.host}: a password is never sent without TLS")
        if not self.folder or not self.folder.isascii() or not self.folder.isprintable():
            raise ConfigError(
                f"imap folder {printable(self.folder)!r} must be a non-empty ASCII name"
            )


@dataclass(frozen=True)
class Fetched:
    """One message not yet seen, and the key to remember it by.

    ``key`` is stable for the life of the message in its mailbox: for a Maildir the unique
    part of the file name (before ``:``, so it survives flag changes and the move from new/
    to cur/); for an mbox the SHA-256 of its bytes (an mbox has no ids, and offsets shift
    when a client rewrites the file); for IMAP ``"UIDVALIDITY:UID"``.
    """

    key: str
    message: email.message.Message
    truncated: bool = False


def fetch(
    config: MailboxConfig,
    seen: Callable[[str], bool],
    *,
    limit: int = 500,
    max_bytes: int = 10 << 20,
) -> list[Fetched]:
    """The oldest ``limit`` messages whose key is not ``seen(key)`` (blocking; read-only).

    Run it in a thread from asyncio (``asyncio.to_thread``). Raises :class:`MailboxError`
    when the mailbox cannot be read at all; one bad message never stops the others.
    """
    if limit < 0 or max_bytes < 1:
        raise ValueError("limit must be >= 0 and max_bytes >= 1")
    if limit == 0:
        return []
    reader = {"maildir": _fetch_maildir, "mbox": _fetch_mbox, "imap": _fetch_imap}[config.kind]
    return reader(config, seen, limit, max_bytes)


# --- shared ----------------------------------------------------------------------------------


def _parse(raw: bytes) -> email.message.Message:
    """Parse leniently; if even that fails, keep the bytes as the body of an empty message."""
    try:
        return email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # the email package is lenient; this guards against its rare bugs
        log.debug("message failed to parse with policy.default", exc_info=True)
    message = email.message.EmailMessage(policy=email.policy.default)
    message.set_payload(raw.decode("ascii", "surrogateescape"))
    return message


def _result(where: str, key: str, raw: bytes, size: int, max_bytes: int) -> Fetched:
    """``raw`` parsed; cut at its last line end within ``max_bytes`` if it is longer."""
    if size <= max_bytes and len(raw) <= max_bytes:
        return Fetched(key, _parse(raw))
    head = raw[:max_bytes]
    end = head.rfind(b"\n")
    if end > 0:
        head = head[: end + 1]
    log.warning(
        "%s: message %s is %d bytes, over max_bytes=%d: kept its first %d bytes",
        where,
        printable(key),
        size,
        max_bytes,
        len(head),
    )
    return Fetched(key, _parse(head), truncated=True)


def _open_readonly(path: str, *, follow: bool) -> int:
    """A read-only descriptor of a regular file, not updating its atime when allowed.

    O_NONBLOCK keeps a FIFO planted in a Maildir from hanging the open; O_NOFOLLOW (for
    files inside a Maildir) keeps a symlink from making root read files the mailbox's owner
    could not.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    noatime = getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags | noatime)
    except PermissionError as err:
        if not noatime or err.errno != errno.EPERM:
            raise
        fd = os.open(path, flags)  # O_NOATIME needs the file's owner (or CAP_FOWNER)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = str(err.args[0]) if err.args else str(err)
    if isinstance(err.args[0] if err.args else None, bytes):
        text = err.args[0].decode("utf-8", "replace")
    return printable(text)[:300] or type(err).__name__


# --- Maildir ---------------------------------------------------------------------------------


def _fetch_maildir(
    config: MailboxConfig, seen: Callable[[str], bool], limit: int, max_bytes: int
) -> list[Fetched]:
    where = f"maildir {printable(config.path)}"
    found: dict[str, tuple[int, str]] = {}  # key → (mtime_ns, path)
    for sub in ("new", "cur"):
        directory = os.path.join(config.path, sub)
        try:
            entries = os.scandir(directory)
        except OSError as err:
            raise MailboxError(f"{where}: cannot read {sub}/: {_reason(err)}") from None
        with entries:
            for entry in entries:
                key = entry.name.split(":", 1)[0]
                if entry.name.startswith(".") or key in found or not _good_key(key):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # moved by the admin's client since the listing: next run finds it
                if stat.S_ISREG(info.st_mode):
                    found[key] = (info.st_mtime_ns, entry.path)
    # A Maildir's delivery order is the files' mtime (what Dovecot reports as INTERNALDATE).
    order = sorted(found.items(), key=lambda item: (item[1][0], item[0]))
    results: list[Fetched] = []
    for key, (_mtime, path) in order:
        if len(results) >= limit:
            break
        if seen(key):
            continue
        try:
            raw, size = _read_head(path, max_bytes)
        except FileNotFoundError:
            continue  # moved new/ → cur/ or deleted meanwhile
        except OSError as err:
            log.warning("%s: cannot read message %s: %s", where, printable(key), _reason(err))
            continue
        results.append(_result(where, key, raw, size, max_bytes))
    return results


def _good_key(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(key) and key.isprintable()


def _read_head(path: str, max_bytes: int) -> tuple[bytes, int]:
    """The first ``max_bytes + 1`` bytes of a message file, and its size."""
    fd = _open_readonly(path, follow=False)
    with open(fd, "rb", closefd=True) as file:
        size = os.fstat(file.fileno()).st_size
        return file.read(max_bytes + 1), size


# --- mbox ------------------------------------------------------------------------------------


def _fetch_mbox(
    config: MailboxConfig, seen: Callable[[str], bool], limit: int, max_bytes: int
) -> list[Fetched]:
    where = f"mbox {printable(config.path)}"
    try:
        fd = _open_readonly(config.path, follow=True)
    except OSError as err:
        raise MailboxError(f"{where}: cannot open: {_reason(err)}") from None
    unseen: list[tuple[str, bytes, int]] = []
    with open(fd, "rb", closefd=True) as file:  # closing drops the lock too
        _lock_shared(file.fileno(), config.timeout, where)
        try:
            for key, raw, size in _mbox_messages(file, max_bytes):
                if not seen(key):
                    unseen.append((key, raw, size))
                    if len(unseen) >= limit:
                        break
        except OSError as err:
            raise MailboxError(f"{where}: read failed: {_reason(err)}") from None
    # Parsed after the lock is released: deliveries wait only for the reading.
    return [_result(where, key, raw, size, max_bytes) for key, raw, size in unseen]


def _lock_shared(fd: int, timeout: float, where: str) -> None:
    """Wait (up to ``timeout``) for the read lock that keeps an MDA from appending meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                log.debug("%s: no fcntl lock (%s); reading unlocked", where, err)
                return
        if time.monotonic() >= deadline:
            raise MailboxError(f"{where}: locked by another program for over {timeout:g} s")
        time.sleep(_LOCK_POLL)


class _Collector:
    """One message's bytes: all hashed, the first ``max_bytes`` kept."""

    def __init__(self, max_bytes: int) -> None:
        self.digest = hashlib.sha256()
        self.head = bytearray()
        self.size = 0
        self.max_bytes = max_bytes

    def add(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.size += len(chunk)
        room = self.max_bytes + 1 - len(self.head)
        if room > 0:
            self.head += chunk[:room]

    def done(self) -> tuple[str, bytes, int]:
        return self.digest.hexdigest(), bytes(self.head), self.size


def _mbox_messages(file: BinaryIO, max_bytes: int) -> Iterator[tuple[str, bytes, int]]:
    """(sha256, first bytes, size) of each message, split exactly as :class:`mailbox.mbox` does.

    A line starting with ``From `` opens a message (text before the first one is ignored);
    the From_ line is not part of the message, and neither is the empty line before the next
    From_ line or the end of the file. Lines are read in bounded chunks, so a huge line or
    message never sits in memory whole.
    """
    readline = file.readline
    current: _Collector | None = None
    pending_empty = False  # an empty line that may be the separator before the next From_
    at_line_start = True
    while True:
        chunk = readline(_READ_CHUNK)
        if not chunk:
            break
        starts_line, at_line_start = at_line_start, chunk.endswith(b"\n")
        if starts_line and chunk.startswith(b"From "):
            if current is not None:
                yield current.done()
            current = _Collector(max_bytes)
            pending_empty = False
            while not chunk.endswith(b"\n"):  # the rest of a very long From_ line
                chunk = readline(_READ_CHUNK)
                if not chunk:
                    break
            at_line_start = True
            continue
        if current is None:
            continue
        if pending_empty:
            current.add(b"\n")
            pending_empty = False
        if starts_line and chunk == b"\n":
            pending_empty = True
        else:
            current.add(chunk)
    if current is not None:
        yield current.done()


# --- IMAP ------------------------------------------------------------------------------------

_SEQ_RE = re.compile(rb"\A\d+ \(")
_UID_RE = re.compile(rb"(?:\A|[(\s])UID (\d+)(?=[\s)]|\Z)")
_SIZE_RE = re.compile(rb"(?:\A|[(\s])RFC822\.SIZE (\d+)(?=[\s)]|\Z)")
_NUMBERS_RE = re.compile(rb"\A\d+(?: \d+)*\Z")


def _quoted(text: str) -> str:
    """An IMAP quoted string (RFC 3501): the caller has refused CR, LF and NUL already."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fetch_imap(
    config: MailboxConfig, seen: Callable[[str], bool], limit: int, max_bytes: int
) -> list[Fetched]:
    user = f"{printable(config.username)}@" if config.username else ""
    host = f"[{config.host}]" if ":" in config.host else printable(config.host)
    where = f"imap {user}{host}:{config.port}/{config.folder}"

    def failed(what: str, err: BaseException) -> MailboxError:
        text = _reason(err)
        if config.password:
            text = text.replace(config.password, "***")
        return MailboxError(f"{where}: {what}: {text}")

    try:
        imap = _connect(config, where)
    except MailboxError:
        raise
    except ssl.SSLError as err:
        raise failed("TLS failed", err) from None
    except (OSError, EOFError, imaplib.IMAP4.error) as err:
        raise failed("cannot connect", err) from None
    try:
        _login(imap, config, where, failed)
        typ, data = imap.select(_quoted(config.folder), readonly=True)
        if typ != "OK":
            raise failed("cannot open the folder", imaplib.IMAP4.error(_first(data)))
        uidvalidity = _number(imap.response("UIDVALIDITY")[1])
        exists = _number(data)
        if uidvalidity is None or exists is None:
            raise MailboxError(f"{where}: the server sent no UIDVALIDITY/EXISTS for the folder")
        wanted = []
        for uid in _all_uids(imap, exists):
            if not seen(f"{uidvalidity}:{uid}"):
                wanted.append(uid)
                if len(wanted) >= limit:
                    break
        return _fetch_messages(imap, wanted, uidvalidity, max_bytes, where)
    except MailboxError:
        raise
    except ssl.SSLError as err:
        raise failed("TLS failed", err) from None
    except (OSError, EOFError, imaplib.IMAP4.error) as err:
        raise failed("failed", err) from None
    finally:
        with contextlib.suppress(OSError, EOFError, imaplib.IMAP4.error):
            imap.logout()  # after EXAMINE nothing is expunged: logout is only goodbye


def _connect(config: MailboxConfig, where: str) -> imaplib.IMAP4:
    context = config.ssl_context or ssl.create_default_context()
    if config.tls == "implicit":
        return imaplib.IMAP4_SSL(
            config.host, config.port, ssl_context=context, timeout=config.timeout
        )
    imap = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
    if config.tls == "starttls":
        if "STARTTLS" not in imap.capabilities or imap.state != "NONAUTH":
            imap.shutdown()
            raise MailboxError(f"{where}: the server does not offer STARTTLS (required)")
        try:
            imap.starttls(ssl_context=context)
        except BaseException:
            with contextlib.suppress(OSError):  # a failed handshake leaves no socket to shut
                imap.shutdown()
            raise
    return imap


def _login(
    imap: imaplib.IMAP4,
    config: MailboxConfig,
    where: str,
    failed: Callable[[str, BaseException], MailboxError],
) -> None:
    if imap.state == "AUTH":
        return  # PREAUTH greeting: the server already knows who we are
    if not config.username:
        raise MailboxError(f"{where}: the server asks for a login; no username is configured")
    if not isinstance(imap.sock, ssl.SSLSocket):
        raise MailboxError(f"{where}: no TLS, so the password is not sent")
    user, password = config.username, config.password
    try:
        if user.isascii() and password.isascii() and "LOGINDISABLED" not in imap.capabilities:
            imap.login(_quoted(user), password)
        elif "AUTH=PLAIN" in imap.capabilities:
            secret = f"\0{user}\0{password}".encode()
            imap.authenticate("PLAIN", lambda _challenge: secret)
        else:
            raise MailboxError(f"{where}: the server offers no login this client can use")
    except imaplib.IMAP4.error as err:
        if isinstance(err, imaplib.IMAP4.abort):
            raise
        raise failed(f"the server refused the login for {printable(user)!r}", err) from None


def _first(data: list[object] | None) -> bytes:
    item = data[0] if data else b""
    return item if isinstance(item, bytes) else b""


def _number(data: list[object] | None) -> int | None:
    text = _first(data).strip()
    return int(text) if text.isdigit() else None


def _all_uids(imap: imaplib.IMAP4, exists: int) -> Iterator[int]:
    """Every UID in the folder, ascending, asked for in windows of message numbers."""
    for low in range(1, exists + 1, _SEARCH_WINDOW):
        high = min(low + _SEARCH_WINDOW - 1, exists)
        typ, data = imap.uid("SEARCH", f"{low}:{high}")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"UID SEARCH failed: {_first(data)!r}")
        text = b" ".join(item for item in data if isinstance(item, bytes) and item.strip())
        if text and not _NUMBERS_RE.match(text.strip()):
            raise imaplib.IMAP4.error("UID SEARCH returned something other than numbers")
        yield from sorted(int(uid) for uid in text.split())


def _uid_set(uids: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1:3,7"``: short commands (servers cap a command line, ~64 KiB)."""
    runs: list[str] = []
    start = previous = None
    for uid in sorted(uids):
        if previous is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            runs.append(f"{start}:{previous}" if previous != start else str(start))
        start = previous = uid
    if start is not None:
        runs.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(runs)


def _fetch_messages(
    imap: imaplib.IMAP4, wanted: list[int], uidvalidity: int, max_bytes: int, where: str
) -> list[Fetched]:
    sizes: dict[int, int] = {}
    for start in range(0, len(wanted), _SIZE_COUNT):
        batch = wanted[start : start + _SIZE_COUNT]
        typ, data = imap.uid("FETCH", _uid_set(batch), "(RFC822.SIZE)")
        if typ != "OK":
            raise imaplib.IMAP4.error(f"UID FETCH RFC822.SIZE failed: {_first(data)!r}")
        for item in data:
            if isinstance(item, bytes) and _SEQ_RE.match(item):
                uid, size = _UID_RE.search(item), _SIZE_RE.search(item)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
    present = [uid for uid in wanted if uid in sizes]  # the rest were expunged meanwhile
    bodies: dict[int, bytes] = {}
    small = [uid for uid in present if sizes[uid] <= max_bytes]
    large = [uid for uid in present if sizes[uid] > max_bytes]
    bodies.update(_fetch_bodies(imap, small, sizes, "BODY.PEEK[]"))
    capped = {uid: max_bytes for uid in large}
    bodies.update(_fetch_bodies(imap, large, capped, f"BODY.PEEK[]<0.{max_bytes}>"))
    results = []
    for uid in present:
        if uid not in bodies:
            log.warning("%s: UID %d sent no body; left for the next run", where, uid)
            continue
        key = f"{uidvalidity}:{uid}"
        results.append(_result(where, key, bodies[uid], sizes[uid], max_bytes))
    return results


def _fetch_bodies(
    imap: imaplib.IMAP4, uids: list[int], sizes: dict[int, int], item: str
) -> dict[int, bytes]:
    """Bodies by UID, asked for in batches bounded in count and bytes."""
    bodies: dict[int, bytes] = {}
    batch: list[int] = []
    total = 0
    for index, uid in enumerate(uids):
        batch.append(uid)
        total += sizes[uid]
        last = index == len(uids) - 1
        if last or len(batch) >= _FETCH_COUNT or total + sizes[uids[index + 1]] > _FETCH_BYTES:
            typ, data = imap.uid("FETCH", _uid_set(batch), f"({item})")
            if typ != "OK":
                raise imaplib.IMAP4.error(f"UID FETCH failed: {_first(data)!r}")
            asked = set(batch)
            bodies.update((got, body) for got, body in _literals(data) if got in asked)
            batch, total = [], 0
    return bodies


def _literals(data: list[object]) -> Iterator[tuple[int, bytes]]:
    """(UID, literal) from a UID FETCH reply as imaplib gives it.

    Each message arrives as a ``(b"SEQ (UID n BODY[] {size}", literal)`` tuple followed by the
    rest of its line (``b")"``, or ``b" UID n)"`` from servers that send the UID last).
    """
    for index, entry in enumerate(data):
        if not isinstance(entry, tuple) or len(entry) != 2:
            continue
        prefix, literal = entry
        if not isinstance(prefix, bytes) or not isinstance(literal, bytes):
            continue
        match = _UID_RE.search(prefix)
        if match is None and index + 1 < len(data):
            tail = data[index + 1]
            if isinstance(tail, bytes) and not _SEQ_RE.match(tail):
                match = _UID_RE.search(tail)
        if match is not None:
            yield int(match.group(1)), literal
