"""The allow list: addresses, names, files and the admin's sessions, as networks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from bruteguard.allow import AllowList, split_allow, ssh_client_addresses
from bruteguard.config import config_from_dict


def test_entries_are_networks_or_names_and_nothing_else() -> None:
    networks, names = split_allow(["192.0.2.7", "2001:db8::/64", "Admin.Example.org."])
    assert networks == [
        ipaddress.ip_network("192.0.2.7/32"),
        ipaddress.ip_network("2001:db8::/64"),
    ]
    assert names == ["admin.example.org"]
    for bad in ("192.0.2", "x y", "-bad.example", "203.0.113.0/33", "a" * 64 + ".org"):
        with pytest.raises(ValueError, match="ignoreip"):
            split_allow([bad])


def test_names_files_and_sessions_join_the_list_and_an_outage_keeps_them(tmp_path: Path) -> None:
    listed = tmp_path / "admins.txt"
    listed.write_text("# office\n198.51.100.0/28\n\n2001:db8:1::5  # laptop\n")
    answers = {"admin.example.org": ["203.0.113.9"]}

    def resolve(name: str) -> list[str]:
        if name not in answers:
            raise OSError("no answer")
        return answers[name]

    allowed = AllowList(
        ["192.0.2.7", "admin.example.org"],
        [str(listed)],
        admin=True,
        resolve=resolve,
        sessions=lambda: ["192.0.2.200"],
    )
    assert allowed.refresh()
    assert allowed.texts == [
        "192.0.2.7/32",
        "192.0.2.200/32",
        "198.51.100.0/28",
        "203.0.113.9/32",
        "2001:db8:1::5/128",
    ]
    assert not allowed.refresh()  # nothing moved
    answers.clear()
    listed.unlink()
    assert not allowed.refresh()  # DNS down and the file gone: kept, not dropped
    answers["admin.example.org"] = ["203.0.113.10"]
    assert allowed.refresh()
    assert "203.0.113.10/32" in allowed.texts and "203.0.113.9/32" not in allowed.texts
    assert str(allowed.covering("192.0.2.0/24")) == "192.0.2.7/32"
    assert str(allowed.covering("203.0.113.10")) == "203.0.113.10/32"
    assert allowed.covering("198.51.100.64/26") is None


def test_a_bad_line_in_a_file_keeps_the_last_good_read(tmp_path: Path) -> None:
    listed = tmp_path / "admins.txt"
    listed.write_text("198.51.100.1\n")
    allowed = AllowList([], [str(listed)])
    allowed.refresh()
    listed.write_text("198.51.100.2\nrm -rf /\n")
    assert not allowed.refresh()
    assert allowed.texts == ["198.51.100.1/32"]


def test_the_admins_ssh_client_address_comes_from_the_environment_and_who(
    tmp_path: Path,
) -> None:
    who = tmp_path / "who"
    who.write_text(
        "#!/bin/sh\n"
        "echo 'alice    pts/0        2026-12-05 21:00 (203.0.113.5)'\n"
        "echo 'bob      pts/1        2026-12-05 21:01 (x from 198.51.100.9)'\n"
        "echo 'carol    tty1         2026-12-05 21:02'\n"
    )
    who.chmod(0o755)
    environ = {"SSH_CONNECTION": "2001:db8::77 50022 2001:db8::1 22"}
    assert ssh_client_addresses(environ, [str(who)]) == ["2001:db8::77", "203.0.113.5"]
    assert ssh_client_addresses({"SSH_CLIENT": "junk 1 2"}, None) == []


def test_the_config_takes_names_and_files_and_jails_get_only_networks() -> None:
    config = config_from_dict(
        {"ignoreip": ["192.0.2.7", "admin.example.org"], "ignoreip_file": ["/etc/admins"]}
    )
    assert config.ignore_networks == [ipaddress.ip_network("192.0.2.7/32")]
    assert config.jails["sshd"].allow == (ipaddress.ip_network("192.0.2.7/32"),)
