"""The ``bruteguard`` command itself: help, bad usage, version, and life without a daemon.

Every test runs the real console script as a child process, as an administrator would, and
looks only at its exit status and what it printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bruteguard import __version__
from bruteguard.model import Ban
from bruteguard.store.sqlite import SqliteStore

SUBCOMMANDS = {
    "run": "daemon",
    "scan": "replay logs",
    "report": "top offenders",
    "status": "daemon watches",
    "ban": "ban an address",
    "unban": "lift a ban",
    "bans": "active bans",
    "stop": "stop the daemon",
    "doctor": "sshd's settings",
    "version": "version",
}


def bruteguard(exe: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "FORCE_COLOR"}
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "200", "TZ": "UTC"},
        stdin=subprocess.DEVNULL,
    )


def assert_usage_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr that names the problem, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bruteguard"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in done.stderr


def assert_clean_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 1 with one ``bruteguard: …`` line on stderr naming the problem, no traceback."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bruteguard: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# -- help and version ----------------------------------------------------------------------


def test_top_level_help_lists_every_command_and_what_it_does(bruteguard_exe: Path) -> None:
    done = bruteguard(bruteguard_exe, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: bruteguard")
    assert "bans at the firewall" in done.stdout
    for name, purpose in SUBCOMMANDS.items():
        row = re.search(rf"^\s+{name}\s+(.+)$", done.stdout, re.MULTILINE)
        assert row is not None, f"{name} missing from --help"
        assert purpose in row.group(1), (name, row.group(1))


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_each_subcommand_has_help_saying_what_it_does(bruteguard_exe: Path, name: str) -> None:
    done = bruteguard(bruteguard_exe, name, "--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith(f"usage: bruteguard {name}")
    assert SUBCOMMANDS[name] in done.stdout
    assert "--config FILE" in done.stdout


def test_help_describes_the_arguments_of_the_commands_that_take_them(bruteguard_exe: Path) -> None:
    scan = bruteguard(bruteguard_exe, "scan", "--help").stdout
    assert "LOG" in scan and "stdin" in scan and "--json" in scan and "--jail" in scan
    report = bruteguard(bruteguard_exe, "report", "--help").stdout
    assert "--top N" in report and "users tried" in report
    ban = bruteguard(bruteguard_exe, "ban", "--help").stdout
    assert "--for DURATION" in ban and "1h" in ban and "TARGET" in ban and "CIDR" in ban
    run = bruteguard(bruteguard_exe, "run", "--help").stdout
    assert "--since DURATION" in run
    stop = bruteguard(bruteguard_exe, "stop", "--help").stdout
    assert "--unban" in stop


def test_version_command_and_flag_print_the_package_version(bruteguard_exe: Path) -> None:
    done = bruteguard(bruteguard_exe, "version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"bruteguard {__version__}\n", "")
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", __version__)
    flag = bruteguard(bruteguard_exe, "--version")
    assert (flag.returncode, flag.stdout) == (0, f"bruteguard {__version__}\n")


# -- bad usage: exit 2, one clear line -----------------------------------------------------


def test_no_subcommand_is_bad_usage(bruteguard_exe: Path) -> None:
    assert_usage_error(bruteguard(bruteguard_exe), "required", "COMMAND", "--help")


def test_unknown_subcommand_is_bad_usage(bruteguard_exe: Path) -> None:
    assert_usage_error(bruteguard(bruteguard_exe, "frobnicate"), "invalid choice", "frobnicate")


def test_unknown_option_is_bad_usage(bruteguard_exe: Path, tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    assert_usage_error(bruteguard(bruteguard_exe, "scan", "--frob", str(log)), "--frob")


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("scan",), "LOG"),
        (("scan", "--json"), "LOG"),
        (("report",), "LOG"),
        (("ban",), "TARGET"),
        (("unban",), "TARGET"),
        (("ban", "--for"), "--for"),
        (("scan", "--config"), "--config"),
    ],
)
def test_missing_argument_is_bad_usage(
    bruteguard_exe: Path, args: tuple[str, ...], what: str
) -> None:
    done = bruteguard(bruteguard_exe, *args)
    assert_usage_error(done, what, f"bruteguard {args[0]}")


@pytest.mark.parametrize("duration", ["5 parsecs", "10x", "-1h", "0", "h", ""])
def test_bad_ban_duration_is_bad_usage_before_any_daemon_is_asked(
    bruteguard_exe: Path, make_config: Callable[..., Path], duration: str
) -> None:
    config = make_config()
    done = bruteguard(bruteguard_exe, "ban", "198.51.100.7", f"--for={duration}", "-c", str(config))
    assert_usage_error(done, "--for", "duration")
    assert "not running" not in done.stderr


def test_bad_since_duration_is_bad_usage(bruteguard_exe: Path) -> None:
    assert_usage_error(bruteguard(bruteguard_exe, "run", "--since", "yesterday"), "--since")


@pytest.mark.parametrize(
    "address",
    ["not-an-address", "198.51.100.256", "2001:db8::g", "198.51.100.0/33", "", "1.2.3", "::/x"],
)
@pytest.mark.parametrize("command", ["ban", "unban"])
def test_bad_ip_is_bad_usage(
    bruteguard_exe: Path, make_config: Callable[..., Path], command: str, address: str
) -> None:
    done = bruteguard(bruteguard_exe, command, address, "-c", str(make_config()))
    assert_usage_error(done, "not an IP address or CIDR network", repr(address))


@pytest.mark.parametrize("top", ["0", "-3", "ten", "1.5"])
def test_bad_report_top_is_bad_usage(bruteguard_exe: Path, tmp_path: Path, top: str) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    done = bruteguard(bruteguard_exe, "report", str(log), "--top", top)
    assert_usage_error(done, "--top", repr(top))


# Every command that reads the configuration, with what it needs besides.
CONFIGURED = [
    ("run",),
    ("scan", "LOG"),
    ("report", "LOG"),
    ("status",),
    ("bans",),
    ("ban", "192.0.2.9"),
    ("unban", "192.0.2.9"),
    ("stop",),
    ("doctor",),
    ("abuse", "lookup", "192.0.2.9"),
    ("abuse", "cases"),
    ("abuse", "show", "x"),
    ("abuse", "send", "x"),
    ("abuse", "followups"),
    ("abuse", "poll"),
]


@pytest.mark.parametrize("args", CONFIGURED, ids=" ".join)
def test_config_may_come_before_the_command(
    bruteguard_exe: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """README: every command takes --config; `bruteguard -c FILE status` as well as
    `bruteguard status -c FILE` (there the command's own wins)."""
    log = tmp_path / "auth.log"
    log.write_text("")
    args = tuple(str(log) if arg == "LOG" else arg for arg in args)
    missing = tmp_path / "nowhere.toml"
    for argv in (("-c", str(missing), *args), ("--config", str(missing), *args)):
        done = bruteguard(bruteguard_exe, *argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr == f"bruteguard: {missing}: no such configuration file\n"
    other = tmp_path / "other.toml"
    done = bruteguard(bruteguard_exe, "-c", str(other), *args, "--config", str(missing))
    assert done.stderr == f"bruteguard: {missing}: no such configuration file\n"


def test_status_with_config_first_reads_that_file(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    done = bruteguard(bruteguard_exe, "-c", str(make_config()), "status")
    assert_clean_error(done, "not running", str(tmp_path / "bruteguard.sock"))


def test_every_option_of_every_command_says_what_it_does() -> None:
    from bruteguard.cli import build_parser

    def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    silent = [
        f"{parser.prog} {action.option_strings or action.dest}"
        for parser in parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert silent == []


def test_help_lists_every_command_once_in_the_order_of_its_group(bruteguard_exe: Path) -> None:
    """The commands' modules are imported only when needed: help still lists them all."""
    done = bruteguard(bruteguard_exe, "--help")
    listed = re.findall(r"^    (\S+)\s", done.stdout, re.MULTILINE)
    assert listed == [
        *("run", "status", "bans", "ban", "unban", "stop", "scan", "report", "doctor", "test"),
        *("abuse", "install", "uninstall", "fleet", "knock", "dashboard", "top", "version"),
    ]


@pytest.mark.parametrize(
    ("argv", "group"),
    [(["scan", "/dev/null"], "scan"), (["version"], None), (["knock", "--help"], "knock")],
)
def test_a_command_imports_no_other_commands_module(argv: list[str], group: str | None) -> None:
    """A command imports only its own group's module, not the abuse desk's, the fleet's or
    the daemon's commands: with their parsers, ~10 % of a replay's start-up."""
    code = (
        "import sys\n"
        "from bruteguard.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "cli = sorted(m for m in sys.modules if m.startswith('bruteguard.cli.'))\n"
        "print(' '.join(cli), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = done.stderr.split()
    assert loaded == sorted(
        ["bruteguard.cli.group", *([f"bruteguard.cli.{group}"] if group else [])]
    )


def test_without_a_config_file_errors_say_so_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No file was read: no error names a file called `<defaults>`."""
    from bruteguard.cli import main
    from bruteguard.config import root as config_root

    monkeypatch.setattr(config_root, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    assert main(["abuse", "send", "x"]) == 1
    error = capsys.readouterr().err
    assert error == (
        "bruteguard: the abuse desk is not enabled: no configuration file was read (built-in"
        f" defaults): write [abuse] enabled = true to {tmp_path / 'absent.toml'} (or a file"
        " given with --config)\n"
    )
    plain = tmp_path / "plain.toml"
    plain.write_text('enforcers = ["dry-run"]\n')
    assert main(["abuse", "send", "x", "-c", str(plain)]) == 1
    assert f"set [abuse] enabled = true in {plain}\n" in capsys.readouterr().err
    # The same words wherever a message says where the settings came from.
    from bruteguard.cli.scan import _pick_jails
    from bruteguard.config import config_from_dict
    from bruteguard.errors import ConfigError
    from conftest import only_these_jails

    nothing = only_these_jails({name: {"enabled": False} for name in ("sshd", "recidive")})
    with pytest.raises(ConfigError) as raised:
        _pick_jails(config_from_dict({"jails": nothing}), None)
    assert str(raised.value) == (
        "no jail is enabled (built-in defaults: no configuration file was read)"
    )


def test_missing_config_file_is_named(bruteguard_exe: Path, tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    missing = tmp_path / "nowhere.toml"
    done = bruteguard(bruteguard_exe, "scan", str(log), "--config", str(missing))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"bruteguard: {missing}: no such configuration file\n"


def test_invalid_config_names_file_key_and_problem(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = make_config(jails={"sshd": {"findtime": "5 parsecs"}})
    log = tmp_path / "auth.log"
    log.write_text("")
    done = bruteguard(bruteguard_exe, "scan", str(log), "--config", str(config))
    assert done.returncode == 2 and done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"bruteguard: {config}: jails.sshd.findtime: ")
    assert "5 parsecs" in line


# -- no daemon running ---------------------------------------------------------------------


def test_bans_without_daemon_or_store_says_there_are_none(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = make_config(enforcers=["dry-run"])
    done = bruteguard(bruteguard_exe, "bans", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no active bans\n"
    assert "not running" in done.stderr
    as_json = bruteguard(bruteguard_exe, "bans", "--json", "--config", str(config))
    assert (as_json.returncode, as_json.stdout) == (0, "[]\n")
    assert not (tmp_path / "bruteguard.db").exists(), "listing bans must not create a store"


def _store_with_bans(path: Path, now: float) -> None:
    with SqliteStore(path) as store:
        store.add_bans(
            [
                Ban("203.0.113.5", "sshd", now - 60, now + 3540, 5, "5 failures in 2m"),
                Ban("2001:db8::66", "sshd", now - 30, now + 600, 0, "banned by hand"),
                Ban("198.51.100.7", "sshd", now - 7200, now - 3600, 5, "5 failures in 1m"),
            ]
        )


def test_bans_without_daemon_reads_the_store(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = make_config(enforcers=["dry-run"])
    now = time.time()
    _store_with_bans(tmp_path / "bruteguard.db", now)

    done = bruteguard(bruteguard_exe, "bans", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    bans = {ban["ip"]: ban for ban in json.loads(done.stdout)}
    assert set(bans) == {"203.0.113.5", "2001:db8::66"}, "the expired ban is not active"
    assert bans["203.0.113.5"]["jail"] == "sshd"
    assert bans["203.0.113.5"]["reason"] == "5 failures in 2m"
    assert bans["203.0.113.5"]["until"] == pytest.approx(now + 3540)
    assert 3400 < bans["203.0.113.5"]["remaining"] <= 3540
    assert bans["2001:db8::66"]["failures"] == 0

    table = bruteguard(bruteguard_exe, "bans", "--config", str(config))
    assert table.returncode == 0
    assert "not running" in table.stderr and str(tmp_path / "bruteguard.db") in table.stderr
    rows = table.stdout.splitlines()
    assert rows[0].split() == [
        "ADDRESS",
        "OR",
        "NETWORK",
        "JAIL",
        "FAILURES",
        "STEP",
        "UNTIL",
        "WHY",
    ]
    until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 3540))
    assert any(
        row.split()[:2] == ["203.0.113.5", "sshd"] and until in row and "5 failures in 2m" in row
        for row in rows
    ), table.stdout
    assert any(row.startswith("2001:db8::66 ") for row in rows)
    assert "198.51.100.7" not in table.stdout


def test_stop_unban_without_daemon_lifts_the_stored_bans(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = make_config(enforcers=["dry-run"])
    _store_with_bans(tmp_path / "bruteguard.db", time.time())
    done = bruteguard(bruteguard_exe, "stop", "--unban", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "not running" in done.stdout and "lifted every ban" in done.stdout
    after = bruteguard(bruteguard_exe, "bans", "--json", "--config", str(config))
    assert after.stdout == "[]\n"


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("status", "sshd"),
        ("status", "--json"),
        ("ban", "198.51.100.7"),
        ("ban", "2001:db8::1", "--for", "1h"),
        ("unban", "198.51.100.7"),
        ("stop",),
    ],
)
def test_daemon_commands_without_daemon_say_it_is_not_running(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path, args: tuple[str, ...]
) -> None:
    config = make_config(enforcers=["dry-run"])
    done = bruteguard(bruteguard_exe, *args, "--config", str(config))
    assert_clean_error(done, "not running", str(tmp_path / "bruteguard.sock"), "bruteguard run")
    assert done.stdout == ""


def test_status_with_a_stale_socket_file_says_not_running(
    bruteguard_exe: Path, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    """A daemon killed with SIGKILL leaves its socket file behind: nobody listens on it."""
    path = tmp_path / "bruteguard.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    assert path.exists()
    done = bruteguard(bruteguard_exe, "status", "--config", str(make_config()))
    assert_clean_error(done, "not running", str(path))


@pytest.mark.parametrize(
    "zone",
    ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe"],
)
def test_report_times_are_local_time_to_the_second(local_zone, zone: str) -> None:
    """The report's cached stamps agree with strftime, across DST changes and in zones whose
    offset is not a whole hour (St. John's -3:30, Kathmandu +5:45, Lord Howe's 30-min DST)."""
    from bruteguard.cli import scan as cli

    local_zone(zone)
    cli._QUARTERS.clear()
    start = datetime(2026, 3, 28, tzinfo=UTC).timestamp()  # spans the spring changes
    moments = [start + step * 997.3 for step in range(0, 6000)]  # about 70 days
    moments += [start + 0.999, start - 0.001, 0.0, 1.5]
    for moment in moments:
        expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))
        assert cli._local(moment) == expected, moment
    cli._QUARTERS.clear()  # cached in this zone: not for the next test
