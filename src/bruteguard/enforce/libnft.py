"""libnftables in this process: nft scripts run without starting an ``nft`` process each.

Why: every round of bans used to start ``nft -f -``, and a fork and exec of nft costs
about 3 ms of CPU (16 ms of wall time on a busy host) where the library call itself takes
0.05 ms; at twenty rounds of bans a second that was most of the daemon's CPU. This is the
approach of nftables' own Python binding (``ctypes`` over Debian's ``libnftables1``), cut
down to what the enforcer needs: run a script, read what nft printed, say what went wrong
as nft would. The script language is the same as ``nft -f``'s, so the two paths build the
same ruleset from the same text.

A context is not thread-safe and nft keeps a cache in it, so every call takes the
context's lock. ``netns``: the context lives in a thread of its own that first enters
``/run/netns/<netns>`` (the tests' namespaces, which this process is not in); netlink
sockets belong to the namespace of the thread that opens them.

A call into the library cannot be interrupted (``nft -f`` could be killed at a timeout):
it waits on the kernel's netlink answer only, which the kernel gives for every message.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import re
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from bruteguard.errors import EnforcerError

__all__ = [
    "LIBRARY",
    "Libnftables",
    "LibraryMissing",
    "enter_netns",
    "nft_failure",
    "ruleset_generation",
]

LIBRARY = "libnftables.so.1"  # Debian's libnftables1 (nftables 0.9.x to 1.1.x)

# include/nftables/libnftables.h
_OUTPUT_JSON = 1 << 4
_OUTPUT_TERSE = 1 << 11
_CLONE_NEWNET = 0x40000000
_STDERR_LIMIT = 2000

T = TypeVar("T")


class LibraryMissing(EnforcerError):
    """libnftables cannot be loaded here (not installed, or too old): use the nft command."""


def _load(name: str) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(name)
    except OSError as error:
        raise LibraryMissing(f"{name} cannot be loaded: {error}") from None
    c_ctx = ctypes.c_void_p
    signatures: dict[str, tuple[object, list[object]]] = {
        "nft_ctx_new": (c_ctx, [ctypes.c_uint32]),
        "nft_ctx_free": (None, [c_ctx]),
        "nft_ctx_buffer_output": (ctypes.c_int, [c_ctx]),
        "nft_ctx_buffer_error": (ctypes.c_int, [c_ctx]),
        "nft_ctx_get_output_buffer": (ctypes.c_char_p, [c_ctx]),
        "nft_ctx_get_error_buffer": (ctypes.c_char_p, [c_ctx]),
        "nft_ctx_output_get_flags": (ctypes.c_uint, [c_ctx]),
        "nft_ctx_output_set_flags": (None, [c_ctx, ctypes.c_uint]),
        "nft_ctx_set_dry_run": (None, [c_ctx, ctypes.c_bool]),
        "nft_run_cmd_from_filename": (ctypes.c_int, [c_ctx, ctypes.c_char_p]),
    }
    for symbol, (restype, argtypes) in signatures.items():
        try:
            function = getattr(lib, symbol)
        except AttributeError:
            raise LibraryMissing(f"{name} has no {symbol} (too old)") from None
        function.restype = restype
        function.argtypes = argtypes
    return lib


def enter_netns(netns: str) -> None:
    """Move the calling thread into ``/run/netns/<netns>`` (``ip netns`` names)."""
    if not netns or "/" in netns or netns in (".", ".."):
        raise EnforcerError(f"not a network namespace name: {netns!r}")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise EnforcerError(f"cannot enter network namespace {netns}: {os.strerror(error)}")
    finally:
        os.close(fd)


class Libnftables:
    """One libnftables context: ``run(script)`` is ``nft -f -`` without the process."""

    def __init__(self, netns: str | None = None, library: str = LIBRARY) -> None:
        self._lib = _load(library)
        self._lock = threading.Lock()
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        if netns is not None:
            self._thread = concurrent.futures.ThreadPoolExecutor(
                1, f"libnftables-{netns}", enter_netns, (netns,)
            )
        try:
            self._ctx: int | None = self._call(self._new)
        except BaseException:
            if self._thread is not None:
                self._thread.shutdown(wait=False)
            raise
        # A reload builds new enforcers and drops the old ones without a call: the context
        # (and its netlink socket) is freed when this object goes, if close() did not.
        self._finalizer = weakref.finalize(self, _release, self._lib, self._ctx, self._thread)

    def _new(self) -> int:
        ctx = self._lib.nft_ctx_new(0)
        if not ctx:
            raise EnforcerError("libnftables: nft_ctx_new failed")
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)
        return int(ctx)

    def _call(self, function: Callable[[], T]) -> T:
        if self._thread is None:
            return function()
        try:
            return self._thread.submit(function).result()
        except RuntimeError as error:  # the thread was shut down: closed
            raise EnforcerError(f"libnftables: {error}") from None

    def run(
        self, script: str, *, json: bool = False, terse: bool = False, check: bool = False
    ) -> str:
        """Run ``script`` as one transaction and return what nft printed; EnforcerError
        with nft's own message if it refused (then nothing of the script was applied).
        ``json``/``terse`` are ``nft -j``/``-t``; ``check`` is ``nft --check``."""
        data = script.encode("ascii")  # scripts are built from validated ASCII only
        with self._lock:
            if self._ctx is None:
                raise EnforcerError("libnftables: the context is closed")
            return self._call(lambda: self._run(data, json, terse, check))

    def _run(self, data: bytes, json: bool, terse: bool, check: bool) -> str:
        lib, ctx = self._lib, self._ctx
        flags = lib.nft_ctx_output_get_flags(ctx)
        wanted = flags | (_OUTPUT_JSON if json else 0) | (_OUTPUT_TERSE if terse else 0)
        lib.nft_ctx_output_set_flags(ctx, wanted)
        lib.nft_ctx_set_dry_run(ctx, check)
        # From a file, not nft_run_cmd_from_buffer: nft 1.0.6 points its error messages at
        # the first line of a buffer, whatever line was wrong; from a file they name the line.
        script = os.memfd_create("nft-script", os.MFD_CLOEXEC)
        try:
            written = 0
            while written < len(data):
                written += os.write(script, data[written:])
            returncode = lib.nft_run_cmd_from_filename(ctx, f"/proc/self/fd/{script}".encode())
        finally:
            os.close(script)
            lib.nft_ctx_output_set_flags(ctx, flags)
            lib.nft_ctx_set_dry_run(ctx, False)
            # Reading a buffer empties it: both are read after every run.
            output = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode("utf-8", "replace")
            error = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode("utf-8", "replace")
        if returncode != 0:
            # The file's name as the nft command names its input (stdin).
            error = re.sub(r"^/proc/self/fd/\d+:", "/dev/stdin:", error, flags=re.MULTILINE)
            raise nft_failure(1, error)  # the exit status nft gives for it
        return output

    def generation(self) -> int:
        """The ruleset generation of this context's namespace (``ruleset_generation``)."""
        with self._lock:
            if self._ctx is None:
                raise EnforcerError("libnftables: the context is closed")
            return self._call(ruleset_generation)

    def close(self) -> None:
        """Free the context (and end its thread); later calls raise EnforcerError."""
        with self._lock:
            self._ctx = None
            self._finalizer()


def _release(
    lib: ctypes.CDLL, ctx: int, thread: concurrent.futures.ThreadPoolExecutor | None
) -> None:
    """Free a context (from any thread: the namespace mattered when its socket was opened)."""
    lib.nft_ctx_free(ctx)
    if thread is not None:
        thread.shutdown(wait=False)


def ruleset_generation() -> int:
    """The calling thread's namespace's nftables generation id (``NFT_MSG_GETGEN``): the
    kernel counts up with every committed transaction there, by anyone (nft, firewalld,
    an admin's ``nft flush set``); listing, element timeouts and a meter's updates from the
    packet path leave it alone. Equal ids at two moments prove the ruleset did not change
    in between."""
    try:
        from pyroute2.netlink import NLM_F_REQUEST
        from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETGEN, NFTSocket, nft_gen_msg

        sock = NFTSocket()
        try:
            request = nft_gen_msg()
            request["nfgen_family"] = 0
            replies = sock.request_get(request, NFT_MSG_GETGEN, NLM_F_REQUEST)
            ids = [reply.get_attr("NFTA_GEN_ID") for reply in replies]
        finally:
            sock.close()
    except Exception as error:  # netlink, pyroute2's own: no id, so no proof
        raise EnforcerError(f"cannot read the nftables generation: {error}") from None
    if len(ids) != 1 or not isinstance(ids[0], int):
        raise EnforcerError(f"cannot read the nftables generation: {ids!r}")
    return ids[0]


def nft_failure(returncode: int, stderr: str) -> EnforcerError:
    """What nft said when it refused a script, worded the same from the library and from
    the command (a missing privilege says what to do)."""
    stderr = stderr.strip()
    if "Operation not permitted" in stderr:
        return EnforcerError(
            "nft: operation not permitted: changing the firewall needs root (or CAP_NET_ADMIN)"
        )
    if len(stderr) > _STDERR_LIMIT:
        stderr = stderr[:_STDERR_LIMIT] + " …"
    return EnforcerError(f"nft failed (exit {returncode}): {stderr}")
