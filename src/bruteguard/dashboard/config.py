"""``[dashboard]``: where the web UI listens and how an admin logs in (docs/dashboard.md).

The dashboard can lift bans, so it is reachable from loopback only unless it speaks TLS
itself (``tls_cert`` + ``tls_key``) or the admin says plainly that something else does
(``plain_http_remote = true``: a TLS reverse proxy in front of it). Secrets never sit in the
file as they are: a scrypt hash of the password, or a token read from a root-only file.
"""

from __future__ import annotations

import ipaddress

import msgspec

from bruteguard.bounds import check_absolute, check_duration, split_listen
from bruteguard.duration import Seconds

__all__ = ["DEFAULT_LISTEN", "DashboardConfig"]

DEFAULT_LISTEN = "127.0.0.1:8780"


class DashboardConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[dashboard]``: ``bruteguard dashboard`` (web) reads it; ``top`` needs none of it."""

    listen: str = DEFAULT_LISTEN
    # Log in with either: `bruteguard dashboard --hash-password` prints the hash.
    password_hash: str = ""
    token_file: str = ""  # its first line is the token (keep the file mode 0600)
    tls_cert: str = ""
    tls_key: str = ""
    # Listen beyond loopback over plain HTTP: only behind a TLS-terminating proxy.
    plain_http_remote: bool = False
    session_ttl: Seconds = Seconds(12 * 3600)
    refresh: Seconds = Seconds(1)  # how often the live view is pushed

    def __post_init__(self) -> None:
        host, _port = split_listen(self.listen)
        check_absolute("token_file", self.token_file)
        check_absolute("tls_cert", self.tls_cert)
        check_absolute("tls_key", self.tls_key)
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert: needs tls_key beside it (and tls_key needs tls_cert)")
        if not (ipaddress.ip_address(host).is_loopback or self.tls or self.plain_http_remote):
            raise ValueError(
                f"listen: {host} is not loopback: the dashboard lifts bans, so beyond loopback"
                " it needs tls_cert and tls_key, or plain_http_remote = true behind a TLS proxy"
            )
        if self.password_hash and not self.password_hash.startswith("scrypt$"):
            raise ValueError(
                "password_hash: not a scrypt hash (make one with"
                " `bruteguard dashboard --hash-password`)"
            )
        check_duration("session_ttl", self.session_ttl, 30 * 86400.0)
        check_duration("refresh", self.refresh, 60.0)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)
