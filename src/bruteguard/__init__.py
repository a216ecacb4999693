"""bruteguard: read logs, find the real attacker, ban at the firewall."""

__all__ = ["__version__"]
__version__ = "0.1.0"
