"""``bruteguard doctor`` against a real sshd, real log files, real journal files and nft.

sshd's settings come from the real ``sshd -T -f FILE -h KEY`` (it needs root, a host key and
the directory /run/sshd, which it gets in a private mount namespace made by ``unshare``, so
the host's /run is untouched), and the fallback parser must give the same answers on the
same files. Journals are genuine ``.journal`` files written by systemd-journal-remote. The
nftables check runs ``nft --check`` inside a fresh network namespace, never the host's.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bruteguard.cli import main
from bruteguard.config import config_from_dict
from bruteguard.doctor import ATTRIBUTION, Finding, run_doctor
from bruteguard.doctor.sources import TAIL_BYTES
from bruteguard.sshd_config import (
    MAX_INCLUDE_DEPTH,
    MAX_INCLUDED_FILES,
    parse_sshd_config,
    read_sshd_settings,
)
from conftest import only_these_jails
from netns import require_root_netns

DATA = Path(__file__).parent / "data" / "sshd"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"

# Runs its arguments (sshd -T …) with a private, empty /run holding only /run/sshd. A fixed
# script: the command arrives as argv ("$@"), never as code.
_PRIVATE_RUN = 'mount -t tmpfs -o mode=0755 doctor-run /run && mkdir -m 0755 /run/sshd && exec "$@"'

# Keywords whose global value doctor reports; the parser must agree with sshd -T on each.
KEYWORDS = (
    "usedns",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "usepam",
    "permitrootlogin",
    "loglevel",
    "syslogfacility",
)


@pytest.fixture
def host_key(tmp_path: Path) -> Path:
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "doctor", "-f", str(key)],
        check=True,
        timeout=30,
    )
    return key


def sshd_t(config: Path, key: Path) -> tuple[str, ...]:
    """The argv of a real ``sshd -T`` on ``config``, runnable without a running sshd."""
    return ("unshare", "--mount", "--propagation", "private", "/bin/bash", "-c", _PRIVATE_RUN,
            "doctor-sshd", "/usr/sbin/sshd", "-T", "-f", str(config), "-h", str(key))  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def doctor(config: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """run_doctor with --json into a buffer: (exit status, the parsed report)."""
    kwargs.setdefault("sshd_argv", ("/nonexistent/sshd", "-T"))
    kwargs.setdefault("sshd_config", "/nonexistent/sshd_config")
    out = io.StringIO()
    status = run_doctor(config, as_json=True, out=out, **kwargs)
    text = out.getvalue()
    assert text.count("\n") == 1, text  # one JSON object, one line
    return status, json.loads(text)


def findings(report: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [item for item in report["findings"] if item["check"].startswith(prefix)]


def one(report: dict[str, Any], check: str) -> dict[str, Any]:
    found = [item for item in report["findings"] if item["check"] == check]
    assert len(found) == 1, (check, report["findings"])
    return found[0]


def file_jail_config(logpath: Path | str, **top: Any) -> Any:
    return config_from_dict(
        {
            "enforcers": ["dry-run"],
            "jails": only_these_jails({"sshd": {"backend": "file", "logpath": [str(logpath)]}}),
            **top,
        }
    )


# -- sshd's settings: sshd -T and the fallback parser on the same files -------------------

# name → (main file, included files, what sshd must answer: ports and some values)
CONFIGS: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
    "include-and-match": (
        "Port 2222\n"
        "port 22\n"
        "Include {dir}/conf.d/*.conf\n"
        "UseDNS yes\n"
        "PasswordAuthentication no\n"
        "Match User bob\n"
        "    PasswordAuthentication yes\n"
        "    PermitRootLogin yes\n",
        {
            "conf.d/10-first.conf": "permitrootlogin=yes\nLogLevel VERBOSE\n",
            "conf.d/20-second.conf": "PermitRootLogin no\nSyslogFacility LOCAL3\n",
            "conf.d/ignored.txt": "UsePAM yes\n",
        },
        {
            "ports": [22, 2222],
            "permitrootlogin": "yes",
            "syslogfacility": "local3",
            "usepam": "no",
            "passwordauthentication": "no",
        },
    ),
    "match-ends-with-its-file": (
        "Include {dir}/a.conf\nInclude {dir}/b.conf\n",
        {
            "a.conf": "Match User bob\n    PasswordAuthentication no\n",
            "b.conf": "UseDNS yes\nPermitRootLogin no\n",
        },
        {"ports": [22], "usedns": "yes", "permitrootlogin": "no", "passwordauthentication": "yes"},
    ),
    "debian-like": (
        "Include {dir}/sshd_config.d/*.conf\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM yes\n"
        "AcceptEnv LANG LC_*  # trailing comment\n"
        "Subsystem\tsftp\t/usr/lib/openssh/sftp-server\n",
        {"sshd_config.d/50-cloud.conf": "PasswordAuthentication yes\n"},
        {"ports": [22], "permitrootlogin": "prohibit-password", "usedns": "no", "usepam": "yes"},
    ),
    "listen-addresses": (
        "ListenAddress 127.0.0.1:2022\n"
        "ListenAddress [::1]:2023\n"
        "ListenAddress 127.0.0.2\n"  # no port of its own: every Port
        "Port 2200\n"
        "LOGLEVEL quiet\n"
        "ChallengeResponseAuthentication no\n",
        {},
        {"ports": [2022, 2023, 2200], "loglevel": "quiet", "kbdinteractiveauthentication": "no"},
    ),
}


@pytest.mark.netns
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parser_agrees_with_real_sshd_t(name: str, tmp_path: Path, host_key: Path) -> None:
    require_root_netns()
    main_text, included, expected = CONFIGS[name]
    config = write(tmp_path / "sshd_config", main_text.format(dir=tmp_path))
    for relative, text in included.items():
        write(tmp_path / relative, text)

    effective, why = read_sshd_settings(sshd_t(config, host_key), str(config))
    assert effective is not None and why == "", why
    assert effective.origin == "sshd -T"
    parsed = parse_sshd_config(config)
    assert parsed.origin == str(config)

    for settings in (effective, parsed):
        assert sorted(settings.ports) == expected["ports"], settings.origin
        for keyword, value in expected.items():
            if keyword != "ports":
                assert settings.get(keyword) == value, (settings.origin, keyword)
    for keyword in KEYWORDS:
        assert parsed.get(keyword) == effective.get(keyword), keyword
    blocks = sum(text.count("Match ") for text in [main_text, *included.values()])
    assert parsed.match_blocks == effective.match_blocks == blocks


def test_parser_include_depth_match_scope_and_first_value(tmp_path: Path) -> None:
    # A file that includes itself stops at the depth limit with a note, not a crash.
    loop = write(tmp_path / "loop.conf", f"Include {tmp_path}/loop.conf\n")
    assert parse_sshd_config(loop).notes == [f"{loop}: Include nested too deep; not followed"]

    # Two files that include both of them branch at every level: the file count stops it.
    branching = tmp_path / "branch"
    for name in ("a.conf", "b.conf"):
        write(branching / name, f"Include {branching}/*.conf\n")
    notes = parse_sshd_config(branching / "a.conf").notes
    assert notes[-1].endswith(f"more than {MAX_INCLUDED_FILES} included files; rest skipped")

    # A Match block inside an included file ends with that file; the parent goes on globally.
    write(tmp_path / "inc" / "a.conf", "Match Address 192.0.2.0/24\nPasswordAuthentication yes\n")
    main_file = write(
        tmp_path / "sshd_config",
        "Include inc/*.conf\n"  # relative: to the main file's directory
        "PasswordAuthentication no\n"
        "UseDNS = yes\n"
        "usedns no\n"  # the first value wins
        'PermitRootLogin "no"\n'
        "Include missing/*.conf\n"  # a glob that matches nothing is fine
        "Match User carol\n"
        "Include inc/*.conf\n"  # conditional: not part of the global answer
        "UsePAM yes\n",
    )
    settings = parse_sshd_config(main_file)
    assert settings.get("passwordauthentication") == "no"
    assert settings.get("usedns") == "yes"
    assert settings.get("permitrootlogin") == "no"
    assert settings.get("usepam") == "no"  # only inside Match: OpenSSH's default stands
    assert settings.match_blocks == 2
    assert settings.ports == [22]
    assert MAX_INCLUDE_DEPTH == 16


@pytest.mark.netns
def test_sshd_findings_from_real_sshd_t(tmp_path: Path, host_key: Path) -> None:
    """Port not covered by the jail and LogLevel QUIET are problems; the rest is advice."""
    require_root_netns()
    config = write(
        tmp_path / "sshd_config",
        "Port 22\nPort 2222\nUseDNS yes\nPermitRootLogin yes\nUsePAM yes\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\nLogLevel QUIET\n",
    )
    log = write(tmp_path / "auth.log", (DATA / "openssh9_debian12.log").read_text())
    status, report = doctor(
        file_jail_config(log), sshd_argv=sshd_t(config, host_key), sshd_config=str(config)
    )
    assert status == 1
    assert one(report, "sshd.settings")["detail"].startswith("read with sshd -T")
    ports = one(report, "sshd.ports.sshd")
    assert ports["status"] == "problem"
    assert "still try 2222" in ports["detail"]
    assert ports["advice"] == "set port = [22, 2222] in [jails.sshd]"
    assert one(report, "sshd.loglevel")["status"] == "problem"
    for check in ("passwordauthentication", "kbdinteractiveauthentication", "permitrootlogin"):
        assert one(report, f"sshd.{check}")["status"] == "advice", check
    usedns = one(report, "sshd.usedns")
    assert usedns["status"] == "advice" and usedns["advice"].startswith("set UseDNS no")
    names = one(report, "names.sshd")
    assert names["status"] == "advice" and ATTRIBUTION in names["detail"]
    assert report["counts"]["problem"] == 2 and report["ok"] is False

    # Fixed: keys only, no root, no DNS, ports covered → no problem, no advice about sshd.
    write(
        config,
        "Port 22\nPort 2222\nUseDNS no\nPermitRootLogin no\nUsePAM yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
    )
    fixed = file_jail_config(log)
    fixed.jails["sshd"].port = [22, 2222]
    status, report = doctor(fixed, sshd_argv=sshd_t(config, host_key), sshd_config=str(config))
    assert [f for f in findings(report, "sshd") if f["status"] != "ok"] == []
    assert one(report, "names.sshd")["status"] == "ok"
    assert status == 0, report


def test_sshd_t_failing_falls_back_to_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "sshd_config", "Port 2222\nUseDNS yes\n")
    missing = str(tmp_path / "no-such-sshd")
    settings, why = read_sshd_settings((missing, "-T"), str(config))
    assert settings is not None and settings.origin == str(config)
    assert why == f"{missing!r} not found"
    assert settings.ports == [2222] and settings.get("usedns") == "yes"

    # A jail without ports bans on every port: nothing sshd listens on is left open.
    every_port = file_jail_config(tmp_path / "auth.log")
    every_port.jails["sshd"].port = []
    _, report = doctor(every_port, sshd_argv=(missing, "-T"), sshd_config=str(config))
    ports = one(report, "sshd.ports.sshd")
    assert ports["status"] == "ok" and ports["detail"].endswith("bans on every port")

    # sshd exists but -T fails (here: no such -f file): its message is kept.
    settings, why = read_sshd_settings(("sshd", "-T", "-f", str(tmp_path / "absent")), str(config))
    assert settings is not None and why.startswith("sshd -T -f ") and "absent" in why

    # Neither works: a finding that says so, never a traceback; with an sshd jail: unknown.
    _, report = doctor(
        file_jail_config(tmp_path / "auth.log"),
        sshd_argv=(missing, "-T"),
        sshd_config=str(tmp_path / "absent_config"),
    )
    sshd = one(report, "sshd")
    assert sshd["status"] == "unknown"
    assert "not found" in sshd["detail"] and "No such file" in sshd["detail"]
    assert findings(report, "sshd.") == []


# -- sources ------------------------------------------------------------------------------


def test_cli_file_source_with_and_without_sshd_lines(
    tmp_path: Path, make_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "auth.log"
    config = make_config(
        enforcers=["dry-run"], jails={"sshd": {"backend": "file", "logpath": [str(log)]}}
    )
    sample = (DATA / "openssh98_sshd_session.log").read_bytes()
    program = re.compile(rb"^\S+ \S+ (?:sshd|sshd-session|sshd-auth)\[[0-9]+\]: ")
    expected = sum(1 for line in sample.splitlines() if program.match(line))
    assert expected > 10
    # Only the last MiB is looked at, and only whole lines: the line cut by that boundary
    # ends like an sshd line here and must not count, nor must anything before it.
    cut = b"a sshd[9]: Invalid user x from 203.0.113.9 port 1\n"
    filler = b"2026-11-23T08:00:00+01:00 bastion CRON[1]: "
    filler += b"x" * (TAIL_BYTES - len(cut) - len(sample) - len(filler) - 1) + b"\n"
    head = b"2026-11-23T07:00:00+01:00 bastion sshd[8]: Invalid user y from 203.0.113.8 port 2\n"
    log.write_bytes(head * 100 + b"2026-11-23T07:59:00+01:00 bastion CRON[1]: " + cut)
    with log.open("ab") as file:
        file.write(filler + sample)
    assert log.stat().st_size - TAIL_BYTES == len(head) * 100 + 43

    status = main(["doctor", "--config", str(config), "--json"])
    report = json.loads(capsys.readouterr().out)
    source = one(report, "source.sshd")
    assert source["status"] == "ok"
    assert source["detail"].startswith(
        f"file {log}: {expected} sshd/sshd-session/sshd-auth/sshd(pam_unix) lines"
    )
    assert one(report, "enforcer.dry-run")["status"] == "advice"
    assert status == (1 if report["counts"]["problem"] else 0)
    assert report["ok"] is (status == 0)

    # A log that only other programs write to (or a forged-looking user name inside one).
    log.write_text(
        "2026-11-23T08:15:01+01:00 bastion CRON[77]: (root) CMD (run-parts /etc/cron.hourly)\n"
        "2026-11-23T08:15:02+01:00 bastion logger[78]: sshd[1]: Failed password for x\n"
    )
    main(["doctor", "--config", str(config), "--json"])
    source = one(json.loads(capsys.readouterr().out), "source.sshd")
    assert source["status"] == "advice"
    assert source["advice"].startswith("bruteguard's source has no sshd lines")

    # No file at all: the jail bans no one, a problem, exit 1.
    log.unlink()
    assert main(["doctor", "--config", str(config), "--json"]) == 1
    source = one(json.loads(capsys.readouterr().out), "source.sshd")
    assert source["status"] == "problem" and "does not exist" in source["detail"]


def test_directory_logpath_and_no_enabled_jail(tmp_path: Path) -> None:
    status, report = doctor(file_jail_config(tmp_path))
    assert one(report, "source.sshd")["status"] == "problem"
    assert status == 1

    fifo = tmp_path / "auth.fifo"  # opening a FIFO to read would wait for a writer forever
    os.mkfifo(fifo)
    status, report = doctor(file_jail_config(fifo))
    source = one(report, "source.sshd")
    assert status == 1 and source["status"] == "problem"
    assert f"{fifo} is a FIFO (named pipe), not a regular file: refused" in source["detail"]

    config = config_from_dict(
        {"enforcers": ["dry-run"], "jails": only_these_jails({"sshd": {"enabled": False}})}
    )
    status, report = doctor(config, sshd_argv=("/nonexistent",), sshd_config=str(tmp_path / "x"))
    assert one(report, "jails")["status"] == "problem"
    assert one(report, "sshd")["status"] == "ok"  # no sshd and no sshd jail: nothing to say
    assert status == 1


def export(fields: dict[str, str]) -> bytes:
    """One entry in journal export format (text values only)."""
    return b"".join(f"{name}={value}\n".encode() for name, value in fields.items()) + b"\n"


# _COMM → the kernel-set fields of a real process of that name (journald records them).
PROCESSES = {
    "sshd": {"_UID": "0", "_EXE": "/usr/sbin/sshd"},
    "sshd-session": {"_UID": "0", "_EXE": "/usr/lib/openssh/sshd-session"},
    "cron": {"_UID": "0", "_EXE": "/usr/sbin/cron"},
    "logger": {"_UID": "1000", "_EXE": "/usr/bin/logger"},
}
FORGED = {"_UID": "1000", "_EXE": "/home/mallory/sshd"}  # a user's own binary named sshd


def write_journal(directory: Path, comms: list[str], forged: int = 0) -> None:
    """A real journal file with one entry per ``_COMM`` (and ``forged`` entries of a user's
    program that calls itself sshd), stamped within the last minutes."""
    processes = [(comm, PROCESSES[comm]) for comm in comms] + [("sshd", FORGED)] * forged
    directory.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1_000_000)
    entries = b"".join(
        export(
            {
                "__REALTIME_TIMESTAMP": str(now - (len(processes) - i) * 1_000_000),
                "__MONOTONIC_TIMESTAMP": str(1000 + i),
                "_BOOT_ID": "0123456789abcdef0123456789abcdef",
                "_HOSTNAME": "web1",
                "_COMM": comm,
                **fields,
                "_PID": str(4000 + i),
                "_SYSTEMD_UNIT": "ssh.service",
                "MESSAGE": "Invalid user admin from 203.0.113.5 port 39120",
            }
        )
        for i, (comm, fields) in enumerate(processes)
    )
    subprocess.run(
        [JOURNAL_REMOTE, "-o", str(directory / "remote.journal"), "-"],
        input=entries,
        check=True,
        timeout=30,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_journal_source_counts_entries_of_the_filters_programs(tmp_path: Path) -> None:
    config = config_from_dict(
        {"enforcers": ["dry-run"], "jails": only_these_jails({"sshd": {"backend": "journal"}})}
    )

    journal = tmp_path / "journal"
    write_journal(journal, ["sshd", "sshd-session", "sshd", "cron"])
    status, report = doctor(config, journal_directories=[str(journal)])
    source = one(report, "source.sshd")
    assert source["status"] == "ok", source
    # The unit matches every entry here; _COMM (the kernel's word) picks sshd's own.
    assert (
        ": 3 sshd/sshd-session/sshd-auth/sshd(pam_unix) entries in the last 7 days"
        in source["detail"]
    )

    # The unit's entries all come from another program (logger -t sshd would be one).
    other = tmp_path / "other"
    write_journal(other, ["logger", "logger"])
    _, report = doctor(config, journal_directories=[str(other)])
    source = one(report, "source.sshd")
    assert source["status"] == "advice" and "(2 other entries)" in source["detail"]

    # A user's program named sshd: _COMM says sshd, _UID and _EXE say otherwise. Alone it
    # means the jail sees nothing (a problem); beside real entries, advice.
    forged = tmp_path / "forged"
    write_journal(forged, ["cron"], forged=2)
    status, report = doctor(config, journal_directories=[str(forged)])
    source = one(report, "source.sshd")
    assert source["status"] == "problem", source
    assert (
        ": 0 sshd/sshd-session/sshd-auth/sshd(pam_unix) entries in the last 7 days, and 2 more"
        in (source["detail"])
    )
    assert status == 1
    mixed = tmp_path / "mixed"
    write_journal(mixed, ["sshd"], forged=1)
    _, report = doctor(config, journal_directories=[str(mixed)])
    source = one(report, "source.sshd")
    assert source["status"] == "advice" and ": 1 sshd/" in source["detail"]

    empty = tmp_path / "empty"
    empty.mkdir()
    status, report = doctor(config, journal_directories=[str(empty)])
    assert one(report, "source.sshd")["status"] == "problem"
    assert status == 1


# Run in a fresh interpreter where the systemd bindings cannot import, as in a venv made by
# a plain `pip install .`: the config's jail tables are argv[2] (JSON), the journal argv[1].
_WITHOUT_BINDINGS = """
import io, json, sys
sys.modules["systemd"] = None
from bruteguard.config import config_from_dict
from bruteguard.doctor import run_doctor
config = config_from_dict({"enforcers": ["dry-run"], "jails": json.loads(sys.argv[2])})
out = io.StringIO()
status = run_doctor(config, as_json=True, out=out, sshd_argv=("/nonexistent/sshd", "-T"),
                    sshd_config="/nonexistent/sshd_config", journal_directories=[sys.argv[1]])
print(json.dumps({"status": status, "report": json.loads(out.getvalue())}))
"""


def doctor_without_bindings(
    journal: Path, jails: dict[str, Any], path: str | None = None, as_nobody: bool = False
) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    argv = [sys.executable, "-c", _WITHOUT_BINDINGS, str(journal), json.dumps(jails)]
    if as_nobody:  # util-linux's setpriv: a user who may not read root's journal files
        argv = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    return answer["status"], answer["report"]


def test_without_the_bindings_the_journal_is_read_with_journalctl(tmp_path: Path) -> None:
    """A venv without systemd-python: doctor reads the journal as the daemon will (with
    journalctl), says so, and does not ask for a package a venv cannot use."""
    journal = tmp_path / "journal"
    write_journal(journal, ["sshd", "sshd-session", "sshd", "cron"], forged=1)
    auto = only_these_jails({"sshd": {}})
    status, report = doctor_without_bindings(journal, auto)
    source = one(report, "source.sshd")
    assert source["status"] == "advice", source  # the forged entry: advice, not a problem
    assert source["detail"].startswith("journal (_SYSTEMD_UNIT=ssh.service or ")
    assert (
        " via journalctl: 3 sshd/sshd-session/sshd-auth/sshd(pam_unix) entries"
        in (source["detail"])
    )
    assert "and 1 more whose _UID/_EXE do not vouch" in source["detail"]
    assert "python3-systemd" not in json.dumps(report)

    clean = tmp_path / "clean"
    write_journal(clean, ["sshd"])
    status, report = doctor_without_bindings(clean, only_these_jails({"sshd": {}}))
    source = one(report, "source.sshd")
    assert source["status"] == "ok", source
    assert "via journalctl: 1 sshd/" in source["detail"]
    # The faster reader is optional, and offered the way that works for this Python.
    in_venv = sys.prefix != sys.base_prefix
    how = "pip install 'bruteguard[journal]' into this venv" if in_venv else "apt-get install"
    assert source["advice"].startswith("optional: systemd-python reads the journal faster")
    assert how in source["advice"], source

    # A user who may not read the journal (the suite runs as root, to become nobody): not
    # checked, since the daemon runs as root; not a problem.
    with tempfile.TemporaryDirectory() as visible:  # pytest's tmp_path is root's alone
        os.chmod(visible, 0o755)
        write_journal(Path(visible) / "journal", ["sshd"])  # the file: root's, mode 0640
        jails = only_these_jails({"sshd": {}})
        _, report = doctor_without_bindings(Path(visible) / "journal", jails, as_nobody=True)
    source = one(report, "source.sshd")
    assert source["status"] == "unknown", source
    assert (
        "journalctl exited with status 1: Failed to open files: Permission denied"
        in (source["detail"])
    )

    # Neither journalctl nor the bindings: a jail forced to the journal reads nothing.
    forced = only_these_jails({"sshd": {"backend": "journal"}})
    status, report = doctor_without_bindings(clean, forced, path=str(tmp_path))
    source = one(report, "source.sshd")
    assert source["status"] == "problem" and status == 1
    assert "no journalctl to read it with" in source["detail"], source


def test_file_source_beside_a_journal_is_advised_against(tmp_path: Path) -> None:
    log = write(tmp_path / "auth.log", (DATA / "openssh9_debian12.log").read_text())
    write(tmp_path / "syslog", "")
    journal = tmp_path / "journal"
    write_journal(journal, ["sshd"])

    _, report = doctor(file_jail_config(log), journal_directories=[str(journal)])
    trust = one(report, "source.sshd.trust")
    assert trust["status"] == "advice" and "logger -t sshd" in trust["detail"]

    # auto with a journalmatch picks the journal itself, so there is nothing to advise.
    auto = config_from_dict(
        {"enforcers": ["dry-run"], "jails": only_these_jails({"sshd": {"logpath": [str(log)]}})}
    )
    _, report = doctor(auto, journal_directories=[str(journal)])
    assert one(report, "source.sshd")["detail"].startswith("journal (")
    assert findings(report, "source.sshd.trust") == []

    # No journal on the host: the file is the best there is.
    _, report = doctor(file_jail_config(log), journal_directories=[])
    assert findings(report, "source.sshd.trust") == []


def test_advice_names_the_program_and_the_services_own_logs(tmp_path: Path) -> None:
    """The sshd-ddos jail reads sshd's lines: a forger would run `logger -t sshd`, not
    `logger -t sshd-ddos`; a missing pure-ftpd log is looked for among pure-ftpd's own log
    files and the journal, never among the auth logs."""
    log = write(tmp_path / "auth.log", (DATA / "openssh9_debian12.log").read_text())
    write(tmp_path / "syslog", "")
    journal = tmp_path / "journal"
    write_journal(journal, ["sshd"])
    jails = {
        "sshd": {"enabled": False},
        "sshd-ddos": {"backend": "file", "logpath": [str(log)]},
        "pure-ftpd": {
            "enabled": True,
            "backend": "file",
            "logpath": [str(tmp_path / "ftp.log"), str(tmp_path / "syslog")],
        },
    }
    config = config_from_dict({"enforcers": ["dry-run"], "jails": only_these_jails(jails)})
    _, report = doctor(config, journal_directories=[str(journal)])
    trust = one(report, "source.sshd-ddos.trust")
    assert "logger -t sshd …" in trust["detail"] and "sshd-ddos" not in trust["detail"]
    missing = findings(report, "source.pure-ftpd")
    assert missing[0]["status"] == "problem"
    assert missing[0]["advice"] == (
        f"point logpath at the file pure-ftpd really writes (look at {tmp_path / 'syslog'},"
        ' the journal (backend = "journal"))'
    )
    assert "auth.log" not in missing[0]["advice"]


def test_advice_for_a_missing_log_never_points_at_another_missing_one(tmp_path: Path) -> None:
    """Neither auth log and no journal (a host without rsyslog whose journald keeps
    nothing): each finding says that nothing keeps sshd's lines, not "look at" the other
    missing file."""
    jails = {
        "sshd": {
            "backend": "file",
            "logpath": [str(tmp_path / "auth.log"), str(tmp_path / "secure")],
        },
    }
    config = config_from_dict({"enforcers": ["dry-run"], "jails": only_these_jails(jails)})
    _, report = doctor(config, journal_directories=[str(tmp_path / "no-journal")])
    missing = findings(report, "source.sshd")
    assert [item["status"] for item in missing] == ["problem", "problem"]
    for item in missing:
        assert "look at" not in item["advice"]
        assert "install a syslog daemon" in item["advice"]
        assert "journald" in item["advice"]


# -- enforcers ----------------------------------------------------------------------------


def test_cli_unavailable_enforcer_is_a_problem(
    tmp_path: Path,
    make_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = write(tmp_path / "auth.log", (DATA / "openssh9_debian12.log").read_text())
    config = make_config(jails={"sshd": {"backend": "file", "logpath": [str(log)]}})
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a host without nft, as far as bruteguard sees

    assert main(["doctor", "--config", str(config), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    enforcer = one(report, "enforcer.nftables")
    assert enforcer["status"] == "problem"
    assert "'nft' not found" in enforcer["detail"]
    assert report["ok"] is False


@pytest.mark.netns
def test_nftables_check_passes_in_a_fresh_namespace(
    tmp_path: Path, make_config: Callable[..., Path], bruteguard_exe: Path
) -> None:
    require_root_netns()
    log = write(tmp_path / "auth.log", (DATA / "openssh9_debian12.log").read_text())
    config = make_config(jails={"sshd": {"backend": "file", "logpath": [str(log)]}})
    done = subprocess.run(
        ["unshare", "--net", str(bruteguard_exe), "doctor", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    enforcer = one(report, "enforcer.nftables")
    assert enforcer == {
        "check": "enforcer.nftables",
        "status": "ok",
        "detail": "nftables works here",
        "advice": "",
    }
    assert done.returncode == (1 if report["counts"]["problem"] else 0)


@pytest.mark.netns
def test_unprivileged_user_gets_unknowns_not_tracebacks(bruteguard_exe: Path) -> None:
    """Run as nobody: what needs root is "not checked", not a problem and not a crash."""
    require_root_netns()
    with tempfile.TemporaryDirectory(prefix="bruteguard-doctor-") as name:
        shared = Path(name)
        shared.chmod(0o755)  # nobody reads the config, not the log
        log = write(shared / "auth.log", (DATA / "openssh9_debian12.log").read_text())
        log.chmod(0o600)
        config = write(
            shared / "bruteguard.toml",
            f'enforcers = ["nftables"]\n[jails.sshd]\nbackend = "file"\nlogpath = ["{log}"]\n',
        )
        done = subprocess.run(
            ["unshare", "--net", "setpriv", "--reuid", "65534", "--regid", "65534",
             "--clear-groups", str(bruteguard_exe), "doctor", "--config", str(config), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert done.stderr == ""
    report = json.loads(done.stdout)
    source = one(report, "source.sshd")
    assert source["status"] == "unknown" and source["detail"].endswith("permission denied")
    enforcer = one(report, "enforcer.nftables")
    assert enforcer["status"] == "unknown" and "operation not permitted" in enforcer["detail"]
    assert report["counts"]["unknown"] >= 2
    assert done.returncode == (1 if report["counts"]["problem"] else 0)


# -- services that log names, and the text rendering --------------------------------------


def test_name_logging_without_sshd_settings(tmp_path: Path) -> None:
    """Unknown UseDNS: the finding explains attribution rather than claiming either way."""
    log = write(tmp_path / "auth.log", "")
    _, report = doctor(
        file_jail_config(log), sshd_argv=("/nonexistent",), sshd_config=str(tmp_path / "none")
    )
    names = one(report, "names.sshd")
    assert names["status"] == "advice"
    assert names["detail"].startswith(
        "sshd may log client names instead of addresses in pam's rhost= when UseDNS is yes"
    )
    assert "connection tracking" in names["detail"] and "unattributed" in names["detail"]
    assert names["advice"] == "turn name resolution off: UseDNS no in /etc/ssh/sshd_config"


def test_text_report_is_plain_and_quotes_paths_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per finding, to look at whole paths
    log = tmp_path / "[bold]auth[/bold].log"  # rich markup in a path must stay text
    sshd_config = write(tmp_path / "sshd_config", "Port 2222\n")
    out = io.StringIO()
    status = run_doctor(
        file_jail_config(log),
        sshd_argv=("/nonexistent",),
        sshd_config=str(sshd_config),
        journal_directories=[],
        out=out,
    )
    text = out.getvalue()
    assert status == 1
    assert "\x1b[" not in text  # no colour codes when not writing to a terminal
    lines = text.splitlines()
    # "[" also makes the path a glob, which matches nothing here: said, and shown as written.
    assert f"PROBLEM  source.sshd: no file matches logpath {log}" in lines, text
    assert any(line.startswith("PROBLEM  sshd.ports.sshd: ") for line in lines), text
    assert lines[-1].startswith("2 problems, ")
    assert all(line == line.rstrip() for line in lines)


def test_finding_is_a_frozen_value() -> None:
    finding = Finding(check="x", status="ok", detail="d")
    with pytest.raises(AttributeError):
        finding.status = "problem"  # type: ignore[misc]


# -- whether hostnames can be attributed here ---------------------------------------------


def _identity(tmp_path: Path, resolv: str, **identity: Any) -> dict[str, dict[str, Any]]:
    from bruteguard.doctor import check_identity

    conf = write(tmp_path / "resolv.conf", resolv)
    log = write(tmp_path / "auth.log", "")
    config = file_jail_config(log, identity=identity)
    return {
        f.check: {"status": f.status, "detail": f.detail, "advice": f.advice}
        for f in check_identity(config, conf)
    }


def test_connection_tracking_off_is_a_problem_where_names_are_logged(tmp_path: Path) -> None:
    found = _identity(tmp_path, "nameserver 127.0.0.53\n", conntrack=False)
    assert found["identity.conntrack"]["status"] == "problem"
    assert "never be attributed" in found["identity.conntrack"]["detail"]


def test_connection_tracking_is_readable_as_root(tmp_path: Path) -> None:
    require_root_netns()
    found = _identity(tmp_path, "nameserver 127.0.0.53\n")
    assert found["identity.conntrack"] == {
        "status": "ok", "detail": "connection tracking events can be read", "advice": "",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("resolv", "identity", "status", "words"),
    [
        ("nameserver 127.0.0.53\noptions edns0\n", {}, "ok", "on this host (127.0.0.53)"),
        ("nameserver ::1\nnameserver 127.0.0.1\n", {}, "ok", "on this host"),
        ("# DHCP\nnameserver 198.51.100.53\n", {}, "advice", "(198.51.100.53) is not on"),
        ("", {}, "advice", "(none) is not on this host"),
        ("nameserver 127.0.0.1\n", {"nameservers": ["192.0.2.53"]}, "advice",
         "identity.nameservers is 192.0.2.53"),
    ],
)  # fmt: skip
def test_the_resolver_should_be_the_services_own(
    tmp_path: Path, resolv: str, identity: dict[str, Any], status: str, words: str
) -> None:
    found = _identity(tmp_path, resolv, **identity)["identity.resolver"]
    assert found["status"] == status and words in found["detail"], found


def test_no_identity_findings_where_no_service_logs_names(tmp_path: Path) -> None:
    from bruteguard.doctor import check_identity

    config = config_from_dict(
        {
            "enforcers": ["dry-run"],
            "jails": only_these_jails({"sshd": {"enabled": False}, "vsftpd": {"logpath": ["/x"]}}),
        }
    )
    assert check_identity(config, write(tmp_path / "resolv.conf", "")) == []


def test_doctor_warns_when_sshd_has_no_allow_list_nor_knock_and_offers_this_session(
    tmp_path: Path,
) -> None:
    from bruteguard.config import config_from_dict
    from bruteguard.doctor import check_keepin
    from bruteguard.knock.keys import new_key

    session = {"SSH_CONNECTION": "203.0.113.5 50000 192.0.2.1 22"}
    bare = {f.check: f for f in check_keepin(config_from_dict({}), session)}
    assert bare["keepin.sshd"].status == "advice"
    assert "no allow list and no knock" in bare["keepin.sshd"].detail
    assert bare["keepin.this-session"].status == "advice"
    assert 'ignoreip = ["203.0.113.5"]' in bare["keepin.this-session"].advice
    listed = config_from_dict({"ignoreip": ["203.0.113.0/24"]})
    found = {f.check: f for f in check_keepin(listed, session)}
    assert found["keepin.sshd"].status == "ok" and "keepin.this-session" not in found
    key = tmp_path / "knock.key"
    knock = {"knock": {"key_file": str(key)}, "jails": {"sshd": {"knock": True}}}
    missing = {f.check: f for f in check_keepin(config_from_dict(knock), {})}
    assert missing["keepin.knock"].status == "problem"
    new_key(str(key))
    made = {f.check: f for f in check_keepin(config_from_dict(knock), {})}
    assert made["keepin.knock"].status == "ok" and made["keepin.sshd"].status == "ok"
