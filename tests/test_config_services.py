"""Service jails in the configuration: built-in ones switch themselves on where their log is,
fail2ban filters can be named as a jail's filter, and mistakes in either are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bruteguard.config import BUILTIN_JAILS, RECIDIVE_JAIL, load_config
from bruteguard.errors import ConfigError
from bruteguard.match.signatures import FILTERS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bruteguard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_built_in_filter_has_a_built_in_jail() -> None:
    jails = {settings["filter"] for name, settings in BUILTIN_JAILS.items() if name != "recidive"}
    assert jails == set(FILTERS)


def test_service_jails_are_on_only_where_their_log_is(tmp_path: Path) -> None:
    present = tmp_path / "present.log"
    present.write_text("")
    services = [
        name
        for name, settings in BUILTIN_JAILS.items()
        if settings.get("enabled") == "auto" and name != RECIDIVE_JAIL
    ]
    assert services, "service jails default to enabled = auto"
    on, off = services[0], services[1:]
    text = f'[jails.{on}]\nlogpath = "{present}"\n' + "".join(
        f'[jails.{name}]\nlogpath = "{tmp_path}/absent-{name}.log"\n' for name in off
    )
    config = load_config(write(tmp_path, text))
    assert config.jails[on].enabled
    assert not any(config.jails[name].enabled for name in off)
    assert config.jails["sshd"].enabled and config.jails["sshd-ddos"].enabled


def test_auto_follows_globs_and_an_explicit_choice_wins(tmp_path: Path) -> None:
    (tmp_path / "site-a.error.log").write_text("")
    text = f"""
[jails.mine]
filter = "sshd"
enabled = "auto"
logpath = ["{tmp_path}/*.error.log"]

[jails.waiting]
filter = "sshd"
enabled = true
logpath = "{tmp_path}/not-yet.log"

[jails.elsewhere]
filter = "sshd"
enabled = "auto"
logpath = "{tmp_path}/nothing-*.log"
"""
    config = load_config(write(tmp_path, text))
    assert config.jails["mine"].enabled
    assert config.jails["waiting"].enabled  # said so: it waits for the file
    assert not config.jails["elsewhere"].enabled


def test_a_directory_is_neither_a_log_nor_an_installed_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/var/log/pure-ftpd outlives the package: a directory of a log's or a service file's
    name turns no jail on; the file does."""
    marker = tmp_path / "pure-ftpd"
    marker.mkdir()
    monkeypatch.setitem(BUILTIN_JAILS["pure-ftpd"], "installed", [str(marker)])
    (tmp_path / "app.log").mkdir()
    text = f'[jails.mine]\nfilter = "sshd"\nenabled = "auto"\nlogpath = "{tmp_path}/app.log"\n'
    config = load_config(write(tmp_path, text))
    assert not config.jails["pure-ftpd"].enabled
    assert not config.jails["mine"].enabled
    marker.rmdir()
    marker.write_text("")  # the service's binary
    (tmp_path / "app.log").rmdir()
    (tmp_path / "app.log").write_text("")
    config = load_config(write(tmp_path, text))
    assert config.jails["pure-ftpd"].enabled
    assert config.jails["mine"].enabled


def test_enabled_takes_true_false_or_auto_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"jails\.sshd\.enabled"):
        load_config(write(tmp_path, '[jails.sshd]\nenabled = "sometimes"\n'))


def test_sshd_ddos_is_stricter_than_sshd(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    sshd, ddos = config.jails["sshd"], config.jails["sshd-ddos"]
    assert ddos.filter == "sshd-ddos" and ddos.ports == sshd.ports
    assert ddos.maxretry < sshd.maxretry and ddos.bantime > sshd.bantime


def test_a_jail_can_name_a_fail2ban_filter(tmp_path: Path) -> None:
    text = """
[jails.f2b-sshd]
filter = "fail2ban:sshd[mode=aggressive]"
logpath = "/var/log/auth.log"
backend = "file"
"""
    jail = load_config(write(tmp_path, text)).jails["f2b-sshd"]
    assert jail.filter == "fail2ban:sshd[mode=aggressive]"
    # fail2ban's journalmatch ("A + B") comes along when the jail names none
    assert jail.journalmatch == ["_SYSTEMD_UNIT=sshd.service + _COMM=sshd"]


def test_a_fail2ban_filter_file_by_path(tmp_path: Path) -> None:
    own = tmp_path / "myapp.conf"
    own.write_text("[Definition]\nfailregex = ^login failed from <HOST>$\n")
    text = f'[jails.myapp]\nfilter = "{own}"\nlogpath = "{tmp_path}/myapp.log"\n'
    assert load_config(write(tmp_path, text)).jails["myapp"].filter == str(own)


@pytest.mark.parametrize(
    ("filter_name", "message"),
    [
        ("fail2ban:no-such-filter", r"jails\.bad\.filter: .*no-such-filter"),
        ("postfixx", r"jails\.bad\.filter: unknown filter 'postfixx'"),
    ],
)
def test_unknown_filters_are_named(tmp_path: Path, filter_name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, f'[jails.bad]\nfilter = "{filter_name}"\n'))


def test_a_broken_fail2ban_filter_file_names_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text("[Definition]\nfailregex = ^(unclosed <HOST>\n")
    with pytest.raises(ConfigError, match=r"jails\.bad\.filter: .*broken\.conf"):
        load_config(write(tmp_path, f'[jails.bad]\nfilter = "{broken}"\n'))
