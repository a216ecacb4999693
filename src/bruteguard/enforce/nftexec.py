"""How an nft script reaches the kernel: libnftables in this process, or the ``nft`` command.

Why two paths: the library call costs 0.05 ms where starting ``nft -f -`` costs about 3 ms
of CPU, so every ban, unban and setup goes through the library when it can be loaded
(``libnft.py``). The command stays for what the library cannot do, or should not:

- the library is missing or too old (the daemon says so once in its log, then runs nft);
- a caller names another ``nft`` binary or an ``argv_prefix`` other than
  ``ip netns exec NS`` (e.g. ``setpriv`` in a test): that is a request to run a command;
- a transaction that grows beyond ``SPILL_BYTES`` of script (a restart's million bans, a
  blocklist): nft holds about 400 bytes per element while it builds the batch, which would
  stay in this process's peak memory (1 M bans: +420 MB); a child gives it back when it ends.

Both paths take the same script text, so they build the same ruleset, and both apply a
script as one transaction: all of it or nothing. A ban round of elements alone skips the
script when the library path is in use: the enforcer sends it as one nfnetlink batch on
the socket ``netlink()`` gives (``nfnetlink.py``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence

from bruteguard.enforce.libnft import LIBRARY, Libnftables, LibraryMissing, nft_failure
from bruteguard.enforce.nfnetlink import SetElementChannel
from bruteguard.errors import EnforcerError

__all__ = ["SPILL_BYTES", "NftRunner", "NftStream", "Transaction", "run_nft"]

log = logging.getLogger(__name__)

SPILL_BYTES = 1 << 20  # script bytes a transaction keeps in process (~30,000 elements)
_STDERR_LIMIT = 2000
_told_missing: set[str] = set()  # libraries whose absence the log has already been told


def run_nft(
    argv_prefix: Sequence[str], nft: str, args: list[str], script: str | None, timeout: float
) -> str:
    """Run ``nft ARGS`` (``script`` on stdin); its stdout, or an ``EnforcerError`` that says
    what to do (install nftables, run as root) or what nft said."""
    # Imported here: command.py imports nftables.py (parse_target), which imports this.
    from bruteguard.enforce.command import run_argv

    return run_argv(
        [nft, *args],
        script,
        timeout=timeout,
        package="the Debian package nftables or choose another enforcer",
        argv_prefix=argv_prefix,
        label="nft",
    )


def _netns_of(argv_prefix: Sequence[str]) -> str | None:
    """``NS`` of an ``ip netns exec NS`` prefix, "" for no prefix, None for anything else."""
    if not argv_prefix:
        return ""
    is_ip = bool(argv_prefix) and argv_prefix[0].rsplit("/", 1)[-1] == "ip"
    if is_ip and len(argv_prefix) == 4 and list(argv_prefix[1:3]) == ["netns", "exec"]:
        return argv_prefix[3]
    return None


class NftRunner:
    """Runs scripts for one enforcer: through libnftables when it can, else ``nft -f -``.

    ``library=None`` always runs the command. The library is loaded at the first call; if
    it cannot be, the log says why once (per library name) and the command runs instead.
    """

    def __init__(
        self,
        nft: str = "nft",
        argv_prefix: Sequence[str] = (),
        timeout: float = 60.0,
        library: str | None = LIBRARY,
    ) -> None:
        self.nft = nft
        self.argv_prefix = tuple(argv_prefix)
        self.timeout = timeout
        netns = _netns_of(self.argv_prefix)
        # Another binary, or a prefix that is more than a namespace: run the command.
        self._wanted = library if nft == "nft" and netns is not None else None
        self._netns = netns or None
        self._library: Libnftables | None = None
        self._netlink: SetElementChannel | None = None
        self._lock = threading.Lock()

    @property
    def in_process(self) -> bool:
        """True when scripts run through libnftables (loading it now if not yet tried)."""
        return self.library() is not None

    def library(self) -> Libnftables | None:
        with self._lock:
            if self._library is None and self._wanted is not None:
                # The command is needed all the same (big transactions): missing, it is the
                # same clear error at the first call as without the library.
                _nft_argv(self.argv_prefix, self.nft, [])
                try:
                    self._library = Libnftables(self._netns, self._wanted)
                except LibraryMissing as error:
                    if self._wanted not in _told_missing:
                        _told_missing.add(self._wanted)
                        log.warning(
                            "nftables: libnftables is not available (%s): running the nft"
                            " command for every change instead (install Debian's"
                            " libnftables1 to save a process per change)",
                            error,
                        )
                    self._wanted = None
            return self._library

    def netlink(self) -> SetElementChannel | None:
        """The socket for element-only rounds (``nfnetlink.py``) in the library's namespace,
        opened at its first use; None on the command path (no library, or a caller who
        asked for a command: that request covers every change)."""
        if self.library() is None:
            return None
        with self._lock:
            if self._netlink is None:
                self._netlink = SetElementChannel(self._netns, self.timeout)
            return self._netlink

    def run(self, script: str, *, check: bool = False) -> str:
        """Apply ``script`` (or only ``check`` it) as one transaction; what nft printed."""
        library = self.library()
        if library is not None:
            return library.run(script, check=check)
        flags = ["--check"] if check else []
        return run_nft(self.argv_prefix, self.nft, [*flags, "-f", "-"], script, self.timeout)

    def list_json(self, words: list[str], *, elements: bool = False) -> str:
        """``nft -t -j list WORDS``: the listing as JSON, set elements left out unless
        ``elements`` (``-j`` alone). (Not a script for ``nft -j -f -``: nft 1.0.6 then
        reads its input as JSON.)"""
        library = self.library()
        if library is not None:
            return library.run(" ".join(["list", *words]) + "\n", json=True, terse=not elements)
        flags = ["-j"] if elements else ["-t", "-j"]
        return run_nft(self.argv_prefix, self.nft, [*flags, "list", *words], None, self.timeout)

    def generation(self) -> int | None:
        """The namespace's ruleset generation id (``libnft.ruleset_generation``), read from
        the library's thread (so in its namespace); None on the command path, which has no
        way to ask (then nothing can prove the ruleset unchanged)."""
        library = self.library()
        if library is None:
            return None
        return library.generation()

    def transaction(self) -> Transaction:
        """A script written line by line and applied as one transaction at ``finish``."""
        return Transaction(self)

    def close(self) -> None:
        with self._lock:
            library, self._library = self._library, None
            netlink, self._netlink = self._netlink, None
        if library is not None:
            library.close()
        if netlink is not None:
            netlink.close()


class Transaction:
    """One transaction written in pieces: kept in process while small and run through the
    runner at ``finish``; once it passes ``SPILL_BYTES``, streamed to ``nft -f -`` (what was
    kept first), so the script and nft's batch are never in this process whole.

    Nothing is applied before ``finish``: leaving the ``with`` block early (an invalid
    entry, any exception) drops what was written (and kills nft, if it was started).
    """

    def __init__(self, runner: NftRunner, spill_bytes: int = SPILL_BYTES) -> None:
        self._runner = runner
        self._spill = spill_bytes
        self._kept: list[str] = []
        self._size = 0
        self._stream: NftStream | None = None

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            self._stream.__exit__(*exc_info)
        self._kept = []

    @property
    def streamed(self) -> bool:
        """True once the script went to an ``nft`` process."""
        return self._stream is not None

    def write(self, lines: list[str]) -> None:
        lines = [line for line in lines if line]
        if not lines:
            return
        if self._stream is not None:
            self._stream.write(lines)
            return
        self._kept += lines
        self._size += sum(map(len, lines)) + len(lines)
        if self._size > self._spill:
            runner = self._runner
            self._stream = NftStream(runner.argv_prefix, runner.nft, runner.timeout)
            kept, self._kept = self._kept, []
            self._stream.write(kept)

    def finish(self) -> None:
        """Apply the whole script as one transaction, or raise what nft said."""
        if self._stream is not None:
            self._stream.finish()
            return
        kept, self._kept = self._kept, []
        if kept:
            self._runner.run("\n".join(kept) + "\n")


def _nft_argv(argv_prefix: Sequence[str], nft: str, args: list[str]) -> list[str]:
    if shutil.which(nft) is None:
        raise EnforcerError(
            f"nftables command {nft!r} not found: install the 'nftables' package"
            " or choose another enforcer"
        )
    return [*argv_prefix, nft, *args]


class NftStream:
    """``nft -f -`` fed line by line while the caller builds the script.

    nft parses the whole script before it sends one batch to the kernel, so killing it
    before stdin is closed (an invalid entry, any exception) applies nothing. stderr goes to
    a temporary file, not a pipe, so nft can never block on it while we block on stdin; a
    timer kills nft at ``timeout`` so a stuck nft cannot hang the caller's writes.
    """

    def __init__(self, argv_prefix: Sequence[str], nft: str, timeout: float) -> None:
        argv = _nft_argv(argv_prefix, nft, ["-f", "-"])
        self._timeout = timeout
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
        try:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr
            )
        except OSError as error:
            self._stderr.close()
            raise EnforcerError(f"cannot run {argv[0]!r}: {error.strerror}") from None
        self._expired = False
        self._broken = False
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self._expired = True
        self._process.kill()

    def __enter__(self) -> NftStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        if self._process.poll() is None:
            self._process.kill()  # only reached on an error: nothing was applied
        self._process.wait()
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        self._stderr.close()

    def write(self, lines: list[str]) -> None:
        if self._broken or not lines:
            return
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(("\n".join(lines) + "\n").encode("ascii"))
        except BrokenPipeError:
            self._broken = True  # nft has exited; finish() reports why

    def finish(self) -> None:
        """Close stdin (nft now applies the batch) and raise what went wrong, if anything."""
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        try:
            returncode = self._process.wait(self._timeout)
        except subprocess.TimeoutExpired:
            self._expired = True
        self._timer.cancel()
        if self._expired:
            raise EnforcerError(f"nft did not finish within {self._timeout:g}s")
        if returncode != 0:
            self._stderr.seek(0)
            stderr = self._stderr.read(_STDERR_LIMIT * 2).decode("utf-8", "replace")
            raise nft_failure(returncode, stderr)
