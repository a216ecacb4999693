"""The findings about sshd's settings: how passwords are asked, who may log in as root,
whether failures are logged at all, and whether the sshd jails ban every port sshd uses.

The settings themselves are read by ``bruteguard.sshd_config``; this module only judges them.
"""

from __future__ import annotations

from collections.abc import Sequence

from bruteguard.config import Config, JailConfig
from bruteguard.doctor.findings import Finding, not_checked, running_as_root
from bruteguard.sources.select import AUTH_LOGS
from bruteguard.sshd_config import SshdSettings

__all__ = ["check_sshd"]

_ROOT_ADVICE = "run bruteguard doctor as root for sshd's own answer (sshd -T)"
_SAFE_ROOT = ("no", "prohibit-password", "forced-commands-only")
_SILENT_LEVELS = ("quiet", "fatal", "error")
_AUTH_FACILITIES = ("auth", "authpriv")


def _sshd_jails(config: Config) -> list[JailConfig]:
    return [jail for jail in config.enabled_jails() if jail.filter == "sshd"]


def _ports_text(ports: Sequence[int]) -> str:
    return ", ".join(map(str, ports))


def check_sshd(settings: SshdSettings | None, how: str, config: Config) -> list[Finding]:
    """Findings about sshd's settings (``settings`` None: they could not be read)."""
    if settings is None:
        if not _sshd_jails(config):
            return [Finding(check="sshd", status="ok", detail=f"no sshd here ({how})")]
        return [
            not_checked(
                "sshd",
                f"cannot read sshd's settings: {how}",
                "run bruteguard doctor as root on the host where sshd runs",
            )
        ]
    return [
        _origin(settings, how),
        _password(settings),
        _kbdinteractive(settings),
        _root_login(settings),
        _usedns(settings),
        _loglevel(settings),
        _facility(settings),
        *_ports(settings, config),
    ]


def _origin(settings: SshdSettings, how: str) -> Finding:
    notes = "; ".join(settings.notes)
    match = ""
    if settings.match_blocks:
        match = (
            f"; {settings.match_blocks} Match block(s) not included: they may change these "
            "settings for some users or addresses"
        )
    if settings.origin == "sshd -T":
        return Finding(
            check="sshd.settings", status="ok", detail=f"read with sshd -T{match}", advice=notes
        )
    return Finding(
        check="sshd.settings",
        status="ok",
        detail=f"read from {settings.origin} ({how}); unset keywords have OpenSSH's "
        f"defaults{match}",
        advice=notes or ("" if running_as_root() else _ROOT_ADVICE),
    )


def _password(settings: SshdSettings) -> Finding:
    if settings.get("passwordauthentication") == "no":
        return Finding(
            check="sshd.passwordauthentication", status="ok", detail="PasswordAuthentication no"
        )
    return Finding(
        check="sshd.passwordauthentication",
        status="advice",
        detail="PasswordAuthentication yes: passwords can be guessed, keys cannot",
        advice="log in with keys only: once your key works, set PasswordAuthentication no",
    )


def _kbdinteractive(settings: SshdSettings) -> Finding:
    check = "sshd.kbdinteractiveauthentication"
    value = settings.get("kbdinteractiveauthentication")
    if value == "yes" and settings.get("usepam") == "yes":
        return Finding(
            check=check,
            status="advice",
            detail="KbdInteractiveAuthentication yes with UsePAM yes: PAM asks for the "
            "password this way even with PasswordAuthentication no",
            advice="set KbdInteractiveAuthentication no (ChallengeResponseAuthentication "
            "no before OpenSSH 8.7)",
        )
    return Finding(
        check=check,
        status="ok",
        detail=f"KbdInteractiveAuthentication {value}, UsePAM {settings.get('usepam')}",
    )


def _root_login(settings: SshdSettings) -> Finding:
    value = settings.get("permitrootlogin")
    if value in _SAFE_ROOT:
        return Finding(check="sshd.permitrootlogin", status="ok", detail=f"PermitRootLogin {value}")
    return Finding(
        check="sshd.permitrootlogin",
        status="advice",
        detail=f"PermitRootLogin {value}: root is the name every attacker tries",
        advice="set PermitRootLogin no (or prohibit-password: root with a key only)",
    )


def _usedns(settings: SshdSettings) -> Finding:
    if settings.get("usedns") != "yes":
        return Finding(check="sshd.usedns", status="ok", detail="UseDNS no")
    return Finding(
        check="sshd.usedns",
        status="advice",
        detail="UseDNS yes: pam's rhost= then carries the client's name, chosen by whoever "
        "runs its reverse DNS, instead of its address",
        advice="set UseDNS no; meanwhile bruteguard ties such names to a connection through "
        "the socket table and the kernel firewall log, never DNS alone",
    )


def _loglevel(settings: SshdSettings) -> Finding:
    value = settings.get("loglevel")
    if value in _SILENT_LEVELS:
        return Finding(
            check="sshd.loglevel",
            status="problem",
            detail=f"LogLevel {value.upper()}: sshd does not log failed logins",
            advice="set LogLevel INFO (or VERBOSE, which also logs key fingerprints)",
        )
    advice = "VERBOSE is enough; DEBUG logs private detail" if value.startswith("debug") else ""
    return Finding(
        check="sshd.loglevel", status="ok", detail=f"LogLevel {value.upper()}", advice=advice
    )


def _facility(settings: SshdSettings) -> Finding:
    value = settings.get("syslogfacility")
    if value in _AUTH_FACILITIES:
        return Finding(
            check="sshd.syslogfacility", status="ok", detail=f"SyslogFacility {value.upper()}"
        )
    return Finding(
        check="sshd.syslogfacility",
        status="advice",
        detail=f"SyslogFacility {value.upper()}: syslog does not put these lines in "
        f"{' or '.join(AUTH_LOGS)}",
        advice="check that the sshd jail's logpath is where syslog writes this facility, "
        "or set SyslogFacility AUTH",
    )


def _ports(settings: SshdSettings, config: Config) -> list[Finding]:
    """sshd's ports against each sshd jail's: a ban on 22 does not stop guesses on 2222."""
    return [_jail_ports(settings, jail) for jail in _sshd_jails(config)]


def _jail_ports(settings: SshdSettings, jail: JailConfig) -> Finding:
    check = f"sshd.ports.{jail.name}"
    covered = set(jail.ports)
    missing = [port for port in settings.ports if covered and port not in covered]
    listening = _ports_text(settings.ports)
    if missing:
        return Finding(
            check=check,
            status="problem",
            detail=f"sshd listens on {listening}, but jail {jail.name} bans only on "
            f"{_ports_text(jail.ports)}: a banned address can still try {_ports_text(missing)}",
            advice=f"set port = [{_ports_text(sorted({*jail.ports, *settings.ports}))}]"
            f" in [jails.{jail.name}]",
        )
    bans = _ports_text(jail.ports) if jail.ports else "every port"
    return Finding(
        check=check,
        status="ok",
        detail=f"sshd listens on {listening}; jail {jail.name} bans on {bans}",
    )
