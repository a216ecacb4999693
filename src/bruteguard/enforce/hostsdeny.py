"""Bans as TCP-wrappers rules: one marked block in /etc/hosts.deny that bruteguard owns.

Daemons linked with libwrap (Debian's sshd and vsftpd, among others) read hosts.allow and
hosts.deny on every connection and refuse a client that matches a deny rule. bruteguard
keeps its rules between two marker lines and never touches a byte outside them::

    # BEGIN bruteguard (managed: do not edit inside this block)
    # jail sshd
    sshd: 203.0.113.9
    sshd: 198.51.100.0/255.255.255.0 EXCEPT 198.51.100.7
    # jail recidive
    ALL: [2001:db8:1::]/64
    # END bruteguard

One line per ban: the jail's daemon list (``daemons`` mapping, ``ALL`` for a jail without
one), then the client pattern in the syntax of hosts_access(5): an IPv4 address, an IPv4
``net/mask`` (the form every libwrap accepts), an IPv6 ``[address]`` or ``[net]/prefixlen``.

"Allow wins" with ``EXCEPT``: a banned network that contains some of the jail's allowed
networks is written ``NET EXCEPT ALLOWED …``, so those hosts do not match the rule.
bruteguard does not write hosts.allow: an entry there *grants* access (it would override
the admin's own hosts.deny rules such as ``ALL: ALL``), which is more than "not banned".
Conversely, an admin's hosts.allow entry that matches a client wins over bruteguard's ban:
libwrap reads hosts.allow first.

Every change rewrites the file atomically: a temporary file in the same directory with the
old file's mode and owner, fsync, rename (a symlinked hosts.deny is written at its target).
A file with a BEGIN marker but no END is refused with what to do. hosts.deny has no
timeouts: the daemon unbans expired bans and reconciles on start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bruteguard.enforce import JailRule
from bruteguard.enforce.command import allow_networks, targets_by_jail
from bruteguard.enforce.nftables import parse_target, validate_name
from bruteguard.errors import EnforcerError
from bruteguard.model import Ban, Network

__all__ = ["HostsDenyEnforcer", "client_pattern", "parse_client_pattern"]

log = logging.getLogger(__name__)

_DAEMON = re.compile(r"\A[A-Za-z0-9_.+-]+(?:@[A-Za-z0-9_.-]+)?\Z")
_DAEMON_SPLIT = re.compile(r"[\s,]+")
_JAIL_LINE = re.compile(r"\A# jail ([A-Za-z_][A-Za-z0-9_-]{0,29})\Z")
_RULE_LINE = re.compile(r"\A([^:#]+): (\S+)(?: EXCEPT (\S+(?: \S+)*))?\Z")

# jail → canonical target text → the rule line as it is in the file
Sections = dict[str, dict[str, str]]


def client_pattern(network: Network) -> str:
    """The hosts_access(5) pattern for an address or network."""
    if network.version == 4:
        if network.num_addresses == 1:
            return str(network.network_address)
        return f"{network.network_address}/{network.netmask}"
    if network.num_addresses == 1:
        return f"[{network.network_address}]"
    return f"[{network.network_address}]/{network.prefixlen}"


def parse_client_pattern(pattern: str) -> str:
    """The canonical target text of a pattern written by ``client_pattern``."""
    text = pattern
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if rest and not rest.startswith("/"):
            raise EnforcerError(f"not a bruteguard client pattern: {pattern!r}")
        text = address + rest
    elif ":" in text:
        raise EnforcerError(f"not a bruteguard client pattern: {pattern!r}")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise EnforcerError(f"not a bruteguard client pattern: {pattern!r}") from None
    return parse_target(str(network)).text


def _daemon_list(value: str, jail: str) -> str:
    words = [word for word in _DAEMON_SPLIT.split(value.strip()) if word]
    if not words or not all(_DAEMON.match(word) for word in words) or "EXCEPT" in words:
        raise EnforcerError(
            f"hosts.deny daemons for jail {jail}: {value!r} is not a daemon list"
            " (process names such as 'sshd' or 'vsftpd', or 'ALL')"
        )
    return ", ".join(words)


@dataclass(frozen=True, slots=True)
class _Jail:
    name: str
    daemons: str
    allow: tuple[Network, ...]


class HostsDenyEnforcer:
    """bruteguard's block in ``path`` (default /etc/hosts.deny); see the module docstring."""

    name = "hosts.deny"
    expires = False  # no timeouts here: the daemon unbans expired bans

    def __init__(
        self,
        path: str = "/etc/hosts.deny",
        *,
        marker: str = "bruteguard",
        daemons: Mapping[str, str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.marker = validate_name(marker, "hosts.deny marker")
        self.daemons = {
            validate_name(jail): _daemon_list(value, jail)
            for jail, value in (daemons or {}).items()
        }
        self.begin = f"# BEGIN {self.marker} (managed: do not edit inside this block)"
        self.end = f"# END {self.marker}"
        self._begin = re.compile(rf"\A# BEGIN {re.escape(self.marker)}(?: .*)?\Z")
        self._end = re.compile(rf"\A# END {re.escape(self.marker)}[ \t]*\Z")
        self._jails: dict[str, _Jail] = {}

    # -- Enforcer protocol ---------------------------------------------------------------

    def setup(self, jails: Sequence[JailRule]) -> None:
        """Create the block if missing; rewrite its lines with today's daemons and allow-lists."""
        specs = {}
        for rule in jails:
            name = validate_name(rule.name)
            specs[name] = _Jail(name, self.daemons.get(name, "ALL"), allow_networks(rule))
        self._jails = specs
        with self._locked():
            before, sections, after = self._read()
            kept = {jail: sorted(targets) for jail, targets in sections.items()}
            self._write(before, self._render_sections(sections, kept), after)

    def reconcile(self, bans: Sequence[Ban], now: float) -> None:
        """The block holds exactly the active ``bans``; lines of unknown jails go too."""
        wanted = self._targets(bans, now)
        with self._locked():
            before, _, after = self._read()
            self._write(before, self._render_sections({}, wanted), after)
        log.info("hosts.deny: reconciled %d bans", sum(map(len, wanted.values())))

    def ban(self, bans: Sequence[Ban], now: float) -> None:
        wanted = self._targets(bans, now)
        if not wanted:
            return
        with self._locked():
            before, sections, after = self._read()
            merged = {jail: list(targets) for jail, targets in sections.items()}
            for jail, targets in wanted.items():
                merged[jail] = list(dict.fromkeys([*merged.get(jail, []), *targets]))
            self._write(before, self._render_sections(sections, merged), after)

    def unban(self, bans: Sequence[Ban]) -> None:
        """Remove the bans' lines; lines that are not there are not an error.

        Jails that are no longer set up may be unbanned too: their bans still expire.
        """
        gone: set[tuple[str, str]] = set()
        for ban in bans:
            gone.add((validate_name(ban.jail), parse_target(ban.ip).text))
        with self._locked():
            before, sections, after = self._read()
            if before is None:
                return
            kept = {
                jail: [target for target in targets if (jail, target) not in gone]
                for jail, targets in sections.items()
            }
            self._write(before, self._render_sections(sections, kept), after)

    def teardown(self) -> None:
        """Remove bruteguard's block (markers included); the rest of the file is unchanged."""
        with self._locked():
            before, _, after = self._read()
            if before is not None:
                self._replace_file(before + after)
        self._jails = {}

    def check(self) -> str | None:
        """Why the file cannot be managed here (unwritable, broken block), or None."""
        directory = os.path.dirname(self._real_path()) or "."
        if not os.path.isdir(directory):
            return f"{directory} does not exist"
        if not os.access(directory, os.W_OK):
            return f"cannot write in {directory}: changing {self.path} needs root"
        try:
            self._read()
        except EnforcerError as error:
            return str(error)
        return None

    # -- the block -----------------------------------------------------------------------

    def _targets(self, bans: Sequence[Ban], now: float) -> dict[str, list[str]]:
        """Active, not-allowed targets per jail (canonical text, in first-seen order)."""
        return targets_by_jail(bans, self._jails, now, "hosts.deny")

    def _rule(self, jail: _Jail, target: str) -> str:
        network = ipaddress.ip_network(target)
        line = f"{jail.daemons}: {client_pattern(network)}"
        excepted = [
            client_pattern(allowed)
            for allowed in jail.allow
            if allowed.version == network.version and allowed.subnet_of(network)
        ]
        return f"{line} EXCEPT {' '.join(excepted)}" if excepted else line

    def _render_sections(self, old: Sections, wanted: Mapping[str, list[str]]) -> list[str]:
        """Block lines for ``wanted``: set-up jails rendered now, others kept as they were."""
        lines = []
        for jail_name in sorted(wanted):
            targets = wanted[jail_name]
            if not targets:
                continue
            lines.append(f"# jail {jail_name}")
            jail = self._jails.get(jail_name)
            for target in targets:
                if jail is not None:
                    lines.append(self._rule(jail, target))
                else:
                    lines.append(old[jail_name][target])
        return lines

    def _read(self) -> tuple[bytes | None, Sections, bytes]:
        """(bytes before the block or None if there is no block, its sections, bytes after)."""
        path = self._real_path()
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None, {}, b""
        except OSError as error:
            raise EnforcerError(f"cannot read {path}: {error.strerror}") from None
        lines = data.splitlines(keepends=True)
        begin = end = None
        for number, raw in enumerate(lines):
            text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if self._begin.match(text):
                if begin is not None:
                    raise EnforcerError(
                        f"{path}: a second '# BEGIN {self.marker}' line (line {number + 1}):"
                        f" remove one of the two bruteguard blocks"
                    )
                begin = number
            elif self._end.match(text):
                if begin is None or end is not None:
                    raise EnforcerError(
                        f"{path}: '# END {self.marker}' on line {number + 1} without its"
                        f" '# BEGIN {self.marker}' line: remove the stray END line"
                    )
                end = number
        if begin is None:
            return None, {}, data
        if end is None:
            raise EnforcerError(
                f"{path}: line {begin + 1} opens the bruteguard block but no '{self.end}'"
                f" line closes it: add '{self.end}' after bruteguard's lines, or delete the"
                " partial block (the daemon restores its bans on start)"
            )
        before = b"".join(lines[:begin])
        after = b"".join(lines[end + 1 :])
        return before, self._parse_block(lines[begin + 1 : end], begin + 2), after

    def _parse_block(self, lines: list[bytes], first_number: int) -> Sections:
        sections: Sections = {}
        current: dict[str, str] | None = None
        for offset, raw in enumerate(lines):
            text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if not text:
                continue
            jail = _JAIL_LINE.match(text)
            rule = _RULE_LINE.match(text)
            try:
                if jail:
                    current = sections.setdefault(jail.group(1), {})
                    continue
                if rule and current is not None:
                    current[parse_client_pattern(rule.group(2))] = text
                    continue
            except EnforcerError:
                pass
            raise EnforcerError(
                f"{self._real_path()}: line {first_number + offset} inside the bruteguard"
                f" block was not written by bruteguard: move {text[:80]!r} above the"
                f" '# BEGIN {self.marker}' line"
            )
        return sections

    def _write(self, before: bytes | None, block: list[str], after: bytes) -> None:
        if before is None:
            before, after = after, b""
            if before and not before.endswith((b"\n", b"\r")):
                before += b"\n"
        text = "".join(f"{line}\n" for line in [self.begin, *block, self.end])
        self._replace_file(before + text.encode("ascii") + after)

    # -- the file ------------------------------------------------------------------------

    def _real_path(self) -> str:
        """The file itself: a symlinked hosts.deny stays a symlink, its target is rewritten."""
        return os.path.realpath(self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write with other bruteguard processes (flock on the dir)."""
        directory = os.path.dirname(self._real_path()) or "."
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as error:
            raise EnforcerError(f"cannot open {directory}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _replace_file(self, data: bytes) -> None:
        """Write ``data`` to a temp file beside the target, then rename it over (atomic)."""
        path = self._real_path()
        directory = os.path.dirname(path) or "."
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        try:
            with open(path, "rb") as file:
                if file.read() == data:
                    return
        except FileNotFoundError:
            pass
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
        except OSError as error:
            raise EnforcerError(
                f"cannot write in {directory}: {error.strerror} (changing {path} needs root)"
            ) from None
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                if current is None:
                    os.fchmod(file.fileno(), 0o644)
                else:
                    os.fchmod(file.fileno(), stat.S_IMODE(current.st_mode))
                    if (current.st_uid, current.st_gid) != (os.geteuid(), os.getegid()):
                        os.fchown(file.fileno(), current.st_uid, current.st_gid)
                os.fsync(file.fileno())
            os.replace(temp, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if error.errno == errno.EBUSY:
                raise EnforcerError(
                    f"cannot replace {path}: it is a mount point (bind-mounted, e.g. into a"
                    " container): point the hosts.deny path at the mounted file's source"
                ) from None
            raise EnforcerError(f"cannot write {path}: {error.strerror}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
