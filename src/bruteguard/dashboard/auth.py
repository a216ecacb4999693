"""Logging in to the dashboard: scrypt password hashes, tokens, sessions and CSRF tokens.

Every comparison of a secret is constant-time (``hmac.compare_digest``). Sessions live in
the dashboard's memory only: a restart logs everyone out, which is what an admin expects of
a tool that can lift bans.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque

import msgspec

__all__ = ["Login", "Session", "Sessions", "hash_password", "verify_password"]

# scrypt's cost: 2**15 * 8 * 128 bytes = 32 MiB and ~0.1 s a try (OWASP's minimum is 2**17
# with r=8 and p=1 at 128 MiB; a login is rare and 32 MiB stays kind to a small server).
_N, _R, _P = 1 << 15, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """``scrypt$N$r$p$SALT$HASH`` (URL-safe base64), for ``[dashboard] password_hash``."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` hashes to ``stored``; False for a malformed hash."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        got = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


class Login:
    """What a login form's secret is checked against: a password hash, a token, or both."""

    def __init__(self, password_hash: str = "", token: str = "") -> None:
        if not (password_hash or token):
            raise ValueError("no password_hash and no token: nobody could log in")
        self._hash = password_hash
        self._token = hashlib.sha256(token.encode()).digest() if token else b""

    def accepts(self, secret: str) -> bool:
        """Both checks always run, so the time taken says nothing about which one is set."""
        token_ok = bool(self._token) and hmac.compare_digest(
            hashlib.sha256(secret.encode()).digest(), self._token
        )
        password_ok = bool(self._hash) and verify_password(secret, self._hash)
        return token_ok or password_ok


class Session(msgspec.Struct):
    """One logged-in browser: its cookie's value is the key, ``csrf`` goes with each action."""

    csrf: str
    expires: float


class Sessions:
    """The logged-in sessions, and a bound on failed logins (a password is slow to guess
    through scrypt, and slower still at ``max_failures`` a minute)."""

    def __init__(self, ttl: float, max_failures: int = 20, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.max_failures = max_failures
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._failures: deque[float] = deque()

    def open(self) -> tuple[str, Session]:
        key = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), expires=self._clock() + self.ttl)
        self._sessions[key] = session
        return key, session

    def get(self, key: str | None) -> Session | None:
        if not key:
            return None
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[key]
            return None
        return session

    def close(self, key: str | None) -> None:
        if key:
            self._sessions.pop(key, None)

    def throttled(self) -> bool:
        """Whether too many logins failed in the last minute to try another now."""
        now = self._clock()
        while self._failures and self._failures[0] < now - 60:
            self._failures.popleft()
        return len(self._failures) >= self.max_failures

    def failed(self) -> None:
        self._failures.append(self._clock())

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
