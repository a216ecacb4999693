"""The findings about the enforcers: can each one ban here? It asks (``nft --check``);
it never changes the firewall."""

from __future__ import annotations

from bruteguard.config import Config
from bruteguard.doctor.findings import Finding, not_checked, running_as_root
from bruteguard.enforce import Enforcer
from bruteguard.errors import BruteguardError

__all__ = ["check_enforcers"]

_NO_ENFORCERS = Finding(
    check="enforcers",
    status="problem",
    detail="no enforcer configured: offenders are counted but never banned",
    advice='set enforcers = ["nftables"]',
)


def check_enforcers(config: Config) -> list[Finding]:
    """Whether each configured enforcer can work here; asks, never changes the firewall."""
    from bruteguard.enforce.factory import make_enforcers

    try:
        enforcers = make_enforcers(config)
    except BruteguardError as error:
        return [Finding(check="enforcers", status="problem", detail=str(error))]
    if not enforcers:
        return [_NO_ENFORCERS]
    return [_enforcer_finding(enforcer) for enforcer in enforcers]


def _enforcer_finding(enforcer: Enforcer) -> Finding:
    check = f"enforcer.{enforcer.name}"
    probe = getattr(enforcer, "check", None)
    if probe is None:
        return Finding(
            check=check,
            status="advice",
            detail=f"{enforcer.name} changes no firewall: offenders are logged, not banned",
            advice='use enforcers = ["nftables"] once the configuration is right',
        )
    try:
        why = probe()
    except (BruteguardError, OSError) as error:
        why = str(error)
    if why is None:
        return Finding(check=check, status="ok", detail=f"{enforcer.name} works here")
    if "not permitted" in why and not running_as_root():
        return not_checked(check, why, "run bruteguard doctor as root to check the firewall")
    return Finding(
        check=check,
        status="problem",
        detail=why,
        advice="bans cannot be enforced until this is fixed",
    )
