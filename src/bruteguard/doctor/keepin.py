"""Will the admin stay in? The allow list, the knock, and the address of this session.

The nightmare of every ban tool is the admin banned from their own server. So: an sshd jail
with neither an allow list nor a knock is worth a word, and the address this ``doctor`` is
run from over SSH is offered for the allow list (by name when the admin's address changes:
a DNS name in ``ignoreip`` is re-resolved on a schedule).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

from bruteguard.allow import split_allow, ssh_client_addresses
from bruteguard.config import Config
from bruteguard.doctor.findings import Finding
from bruteguard.errors import ConfigError

__all__ = ["check_keepin"]


def check_keepin(config: Config, environ: Mapping[str, str] = os.environ) -> list[Finding]:
    """Findings on keeping the admin in: allow list, knock, this session's address."""
    jails = [jail for jail in config.enabled_jails() if jail.filter == "sshd"]
    if not jails:
        return []
    findings = [_knock_key(config)] if any(jail.knock for jail in jails) else []
    names = split_allow(config.ignoreip)[1]
    dynamic = bool(names or config.ignoreip_file)
    for jail in jails:
        if jail.allow or dynamic or jail.knock:
            what = "a knock" if jail.knock else "an allow list"
            findings.append(
                Finding(check=f"keepin.{jail.name}", status="ok", detail=f"sshd has {what}")
            )
            continue
        findings.append(
            Finding(
                check=f"keepin.{jail.name}",
                status="advice",
                detail=f"jail {jail.name} has no allow list and no knock: a few mistyped"
                " passwords from your own address ban you like anyone else",
                advice="list your addresses (ignoreip, ignoreip_file) or put sshd behind a"
                " knock (knock = true and [knock]; docs/knock.md)",
            )
        )
    findings += _this_session(config, environ)
    return findings


def _knock_key(config: Config) -> Finding:
    from bruteguard.knock.keys import read_key

    path = config.knock.key_file if config.knock is not None else "?"
    try:
        read_key(path)
    except ConfigError as error:
        return Finding(
            check="keepin.knock",
            status="problem",
            detail=f"sshd is closed behind a knock, but {error}",
            advice=f"bruteguard knock --new-key --key {path}, then copy it to your machines",
        )
    return Finding(check="keepin.knock", status="ok", detail=f"knock key {path} is private")


def _this_session(config: Config, environ: Mapping[str, str]) -> list[Finding]:
    """The address this doctor runs from over SSH, offered to the allow list."""
    static = config.ignore_networks
    findings = []
    for address in ssh_client_addresses(environ, who=None):
        packed = ipaddress.ip_address(address)
        if any(packed in network for network in static if network.version == packed.version):
            continue
        during = " (allow_admin keeps it in while you are logged in)" if config.allow_admin else ""
        setting = f'ignoreip = ["{address}"]'
        findings.append(
            Finding(
                check="keepin.this-session",
                status="advice",
                detail=f"you are connected from {address}, which no ignoreip lists{during}",
                advice=f"{config.where_to_set(setting)} (or a DNS name that follows you)",
            )
        )
    return findings
