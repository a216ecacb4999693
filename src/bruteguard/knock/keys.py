"""The knock key: 32 random bytes shared by the server and its admins, kept in a 0600 file."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat

from bruteguard.errors import ConfigError

__all__ = ["KEY_SIZE", "new_key", "read_key"]

KEY_SIZE = 32


def new_key(path: str) -> None:
    """Write a fresh key to ``path`` (base64, one line), readable by its owner only.

    Never overwrites: a new key locks out every admin holding the old one, so replacing
    one is a deliberate ``rm`` first. Created 0600 from the start (no moment where another
    user could open it).
    """
    text = base64.b64encode(secrets.token_bytes(KEY_SIZE)) + b"\n"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: remove it first to make a new knock key") from None
    except OSError as error:
        raise ConfigError(f"cannot create knock key {path}: {error.strerror}") from None
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask made of the mode
        os.write(descriptor, text)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_key(path: str) -> bytes:
    """The key in ``path``; ConfigError if it is missing, malformed, or readable by others
    (a key others can read is no secret: refuse it, as ssh refuses such private keys)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise ConfigError(
            f"cannot read knock key {path}: {error.strerror}"
            " (make one with `bruteguard knock --new-key`)"
        ) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"knock key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"knock key {path} is readable by others (mode {info.st_mode & 0o777:o}):"
                " chmod 600 it"
            )
        text = os.read(descriptor, 4096)
    finally:
        os.close(descriptor)
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        raise ConfigError(f"knock key {path} is not {KEY_SIZE} bytes of base64")
    return key
