"""Single packet authorization: one HMAC-signed UDP packet opens a jail's port for its sender.

See docs/knock.md. ``packet`` is the wire format, ``keys`` the shared secret, ``replay``
the memory of packets already used, ``listener`` the daemon's side, ``client`` the admin's.
"""

from bruteguard.knock.config import KnockConfig
from bruteguard.knock.packet import Knock, KnockRefused, sign, verify

__all__ = ["Knock", "KnockConfig", "KnockRefused", "sign", "verify"]
