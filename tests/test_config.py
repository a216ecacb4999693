"""The configuration file: defaults that protect sshd, and errors that name file, key and fault.

Every file here is a real TOML file read by the project's loader; the CLI cases run the real
console script, because "exit 2 with one clear line" is what an administrator sees.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest

from bruteguard.config import BUILTIN_JAILS, load_config, parse_networks
from bruteguard.config import root as config_root
from bruteguard.errors import ConfigError
from bruteguard.sources.select import AUTH_LOGS, resolve_sources


def write(tmp_path: Path, text: str, name: str = "bruteguard.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults ------------------------------------------------------------------------------


def test_no_config_file_at_all_protects_sshd(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(config_root, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    config = load_config()
    assert list(config.jails) == list(BUILTIN_JAILS)
    sshd = config.jails["sshd"]
    # sshd always; every other service where its log (or the service) is on this host
    expected = {
        name
        for name, settings in BUILTIN_JAILS.items()
        if settings.get("enabled", True) is True
        or any(Path(p).is_file() for p in settings.get("installed", settings.get("logpath", [])))
    }
    assert {jail.name for jail in config.enabled_jails()} == expected
    assert {"sshd", "sshd-ddos", "recidive"} <= expected
    assert "recidive" not in {jail.name for jail in config.log_jails()}
    recidive = config.jails["recidive"]
    assert (recidive.maxretry, recidive.findtime, recidive.bantime) == (5, 86400, 7 * 86400)
    assert recidive.ports == ()  # every port
    assert sshd.filter == "sshd"
    assert sshd.maxretry == 5
    assert sshd.findtime == 600
    assert sshd.bantime == 3600
    assert sshd.ports == (22,)
    assert sshd.backend == "auto"
    assert sshd.logpath == []
    assert config.enforcers == ["nftables"]
    # Source auto-detected: the journal when it can be read, else the distribution's auth log.
    journal = resolve_sources(sshd, journal=True)
    assert [spec.kind for spec in journal] == ["journal"]
    assert "_COMM=sshd" in journal[0].matches
    # The first auth log present; with neither present, both are watched (either may appear).
    files = resolve_sources(sshd, journal=False)
    present = [log for log in AUTH_LOGS if Path(log).exists()]
    assert [(spec.kind, spec.path) for spec in files] == [
        ("file", log) for log in (present[:1] or AUTH_LOGS)
    ]


def test_default_file_is_read_when_present(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, "[jails.sshd]\nmaxretry = 3\n")
    monkeypatch.setattr(config_root, "DEFAULT_CONFIG_PATH", path)
    config = load_config()
    assert config.jails["sshd"].maxretry == 3
    assert config.source_path == str(path)


def test_explicit_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert str(caught.value) == f"{missing}: no such configuration file"


def test_a_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
store = "/tmp/bg-test.db"
enforcers = ["dry-run"]
ignoreip = ["192.0.2.0/24", "2001:db8:1::/48", "198.51.100.9"]

[defaults]
bantime = "7d"
findtime = "90s"

[jails.sshd]
maxretry = 3
findtime = "10m"
port = ["ssh", 2222]
logpath = "/var/log/auth.log"
ignoreip = ["203.0.113.7", "2001:db8::/32"]

[jails.ssh-alt]
filter = "sshd"
bantime = "1h"
port = 2200
enabled = false
""",
    )
    config = load_config(path)
    assert config.source_path == str(path)
    assert config.store == "/tmp/bg-test.db"
    assert config.enforcers == ["dry-run"]
    assert parse_networks(config.ignoreip) == [
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("2001:db8:1::/48"),
        ipaddress.ip_network("198.51.100.9/32"),
    ]
    sshd = config.jails["sshd"]
    assert (sshd.maxretry, sshd.findtime, sshd.bantime) == (3, 600, 7 * 86400)
    assert sshd.ports == (22, 2222)
    assert sshd.logpath == ["/var/log/auth.log"]
    assert sshd.ignoreip == ["203.0.113.7", "2001:db8::/32"]
    alt = config.jails["ssh-alt"]
    assert (alt.maxretry, alt.findtime, alt.bantime) == (5, 90, 3600)  # built-in, defaults, own
    assert alt.ports == (2200,)
    enabled = [jail.name for jail in config.enabled_jails()]
    assert "ssh-alt" not in enabled and {"sshd", "sshd-ddos", "recidive"} <= set(enabled)


def test_ipv4_mapped_ignoreip_is_the_ipv4_network() -> None:
    # Addresses reach the detector canonical, so ::ffff:192.0.2.0/120 must mean 192.0.2.0/24.
    assert parse_networks(["::ffff:192.0.2.0/120", "::ffff:198.51.100.7"]) == [
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("198.51.100.7/32"),
    ]
    assert parse_networks(["192.0.2.77/24"]) == [ipaddress.ip_network("192.0.2.0/24")]


# -- errors: file, key path, and what is wrong -------------------------------------------------

LONG_NAME = "j" * 31  # one more than the rule allows
ERRORS = [
    pytest.param("bogus = 1\n", "bogus", "unknown setting", id="unknown-top-level-key"),
    pytest.param(
        "[jails.sshd]\nmaxretri = 3\n",
        "jails.sshd.maxretri",
        "unknown setting (did you mean 'maxretry'?)",
        id="unknown-jail-key",
    ),
    pytest.param(
        "[defaults]\nbogus = 1\n", "defaults.bogus", "unknown setting", id="unknown-default"
    ),
    pytest.param(
        '[jails.sshd]\nmaxretry = "five"\n',
        "jails.sshd.maxretry",
        "expected `int`, got `str`",
        id="wrong-type",
    ),
    pytest.param(
        "[jails.sshd]\nmaxretry = true\n", "jails.sshd.maxretry", "got `bool`", id="bool-not-int"
    ),
    pytest.param(
        '[jails.sshd]\nenabled = "yes"\n', "jails.sshd.enabled", "expected `bool`", id="enabled"
    ),
    pytest.param("store = 3\n", "store", "expected `str`, got `int`", id="wrong-type-top-level"),
    pytest.param(
        '[jails.sshd]\nignoreip = "192.0.2.1"\n',
        "jails.sshd.ignoreip",
        "expected `array`, got `str`",
        id="ignoreip-not-a-list",
    ),
    pytest.param(
        '[jails.sshd]\nfindtime = "10 minutes"\n',
        "jails.sshd.findtime",
        "expected a duration like 90s, 10m, 1h or 7d, got '10 minutes'",
        id="bad-duration",
    ),
    pytest.param(
        '[jails.sshd]\nbantime = "0s"\n', "jails.sshd.bantime", "must be positive", id="zero-dur"
    ),
    pytest.param("[jails.sshd]\nbantime = nan\n", "jails.sshd.bantime", "finite", id="nan-dur"),
    pytest.param(
        '[defaults]\nbantime = "forever"\n', "defaults.bantime", "got 'forever'", id="dur-default"
    ),
    pytest.param(
        "[jails.sshd]\nmaxretry = 0\n",
        "jails.sshd.maxretry",
        "must be 1 to 10000, got 0",
        id="zero-maxretry",
    ),
    pytest.param(
        "[jails.sshd]\nmaxretry = -3\n",
        "jails.sshd.maxretry",
        "must be 1 to 10000, got -3",
        id="negative-maxretry",
    ),
    pytest.param(
        "[defaults]\nmaxretry = 0\n", "defaults.maxretry", "1 to 10000", id="maxretry-default"
    ),
    pytest.param(
        '[jails.sshd]\nignoreip = ["192.0.2.1", "192.0.2.300"]\n',
        "jails.sshd.ignoreip",
        "'192.0.2.300' is not an IP address or CIDR network",
        id="bad-ignoreip-entry",
    ),
    pytest.param(
        'ignoreip = ["2001:db8::/129"]\n',
        "ignoreip",
        "'2001:db8::/129' is not an IP address, CIDR network or DNS name",
        id="bad-global-ignoreip",
    ),
    pytest.param(
        '[defaults]\nignoreip = ["office"]\n',
        "defaults.ignoreip",
        "'office' is not an IP address",
        id="bad-default-ignoreip",
    ),
    pytest.param(
        '[jails.sshd]\nfilter = "sshd-typo"\n',
        "jails.sshd.filter",
        "unknown filter 'sshd-typo' (built-in filters: apache-auth, apache-http-flood,",
        id="unknown-filter",
    ),
    pytest.param(
        '[jails.web]\nlogpath = "/var/log/web.log"\n',
        "jails.web.filter",
        "unknown filter 'web'",
        id="new-jail-without-a-known-filter",
    ),
    pytest.param(
        'enforcers = ["nftables", "firewalld"]\n',
        "enforcers[1]",
        "unknown enforcer 'firewalld' (known: command, dry-run, hosts.deny, ipfw, ipset,"
        " iptables, nftables, pf, route)",
        id="unknown-enforcer",
    ),
    pytest.param(
        '[jails.sshd]\nport = ["no-such-service"]\n',
        "jails.sshd.port",
        "unknown service name 'no-such-service'",
        id="unknown-port-name",
    ),
    pytest.param(
        "[jails.sshd]\nport = [70000]\n", "jails.sshd.port", "got 70000", id="port-out-of-range"
    ),
    pytest.param(
        '[jails.sshd]\nbackend = "syslog"\n',
        "jails.sshd.backend",
        "invalid enum value 'syslog'",
        id="unknown-backend",
    ),
    pytest.param("jails = 3\n", "jails", "must be a table", id="jails-not-a-table"),
    pytest.param("[jails]\nsshd = 3\n", "jails.sshd", "must be a table", id="jail-not-a-table"),
    pytest.param('source_path = "x"\n', "source_path", "unknown setting", id="internal-field"),
    pytest.param(
        "[jails.sshd]\nbreakin_weight = -1\n",
        "jails.sshd.breakin_weight",
        "must be 0 to 1000",
        id="breakin-weight",
    ),
    pytest.param(
        '[identity]\nnameservers = ["ns.example.test"]\n',
        "identity.nameservers",
        "'ns.example.test' is not an IP address",
        id="nameserver-not-an-address",
    ),
    pytest.param(
        "[identity]\nfirewall_log_group = 7301\n",
        "identity.firewall_log_group",
        "removed: no nflog group is used any more",
        id="removed-nflog-group",
    ),
    pytest.param(
        '[identity]\nwindow = "30s"\n',
        "identity.window",
        "removed: each service's own logging delay is used",
        id="removed-window",
    ),
    pytest.param(
        "[jails.sshd]\nwindow = 1\n", "jails.sshd.window", "unknown setting", id="window-elsewhere"
    ),
    pytest.param(
        '[identity]\ndns_timeout = "1m"\n', "identity.dns_timeout", "at most 30s", id="dns-timeout"
    ),
    pytest.param("[identity]\nresolver = 1\n", "identity.resolver", "unknown setting", id="id-key"),
    pytest.param(
        '[jails.sshd]\nratelimit = "lots"\n',
        "jails.sshd.ratelimit",
        "expected HITS/DURATION like 4/3m",
        id="ratelimit",
    ),
    pytest.param(
        '[jails.sshd]\nbantime = "2d"\nmaxtime = "1d"\n',
        "jails.sshd.maxtime",
        "must be at least bantime",
        id="maxtime-below-bantime",
    ),
    pytest.param(
        "[jails.sshd]\nbantime_factor = 0.5\n",
        "jails.sshd.bantime_factor",
        "must be 1 to 100",
        id="factor",
    ),
    pytest.param(
        "[jails.sshd]\nipv6_prefix = 8\n", "jails.sshd.ipv6_prefix", "16 to 128", id="v6-prefix"
    ),
    pytest.param('[blocklists.drop]\nbantime = "1d"\n', "blocklists.drop", "path", id="bl-path"),
    # Every number has bounds: counts, durations, ports, prefix lengths, table numbers.
    pytest.param(
        f"[jails.sshd]\nmaxretry = {2**62}\n",
        "jails.sshd.maxretry",
        f"must be 1 to 10000, got {2**62}",
        id="huge-maxretry",
    ),
    pytest.param(
        "[jails.sshd]\nsubnet_maxretry = 10001\n",
        "jails.sshd.subnet_maxretry",
        "must be 0 to 10000, got 10001",
        id="huge-subnet-maxretry",
    ),
    pytest.param(
        '[jails.sshd]\nfindtime = "366d"\n',
        "jails.sshd.findtime",
        "must be 1s to 365d, got 31622400.0 seconds",
        id="long-findtime",
    ),
    pytest.param(
        "[jails.sshd]\nfindtime = 0.5\n", "jails.sshd.findtime", "must be 1s to 365d", id="short"
    ),
    pytest.param(
        "[jails.sshd]\nbantime = 1e300\n", "jails.sshd.bantime", "must be 1s to 3650d", id="ban"
    ),
    pytest.param(
        '[jails.sshd]\nmaxtime = "3651d"\n',
        "jails.sshd.maxtime",
        "must be 0 or 1s to 3650d",
        id="long-maxtime",
    ),
    pytest.param(
        '[jails.sshd]\nsubnet_findtime = "400d"\n',
        "jails.sshd.subnet_findtime",
        "must be 1s to 365d",
        id="subnet-findtime",
    ),
    pytest.param(
        '[blocklists.drop]\npath = "/etc/drop.txt"\nbantime = "5000d"\n',
        "blocklists.drop.bantime",
        "must be 1s to 3650d",
        id="blocklist-bantime",
    ),
    pytest.param(
        '[abuse.smtp]\ntimeout = "1h"\n', "abuse.smtp.timeout", "must be 1s to 10m", id="smtp-t"
    ),
    pytest.param(
        '[abuse.lookup]\ncache = "400d"\n', "abuse.lookup.cache", "must be 1s to 365d", id="cache"
    ),
    pytest.param('[abuse]\nhold = "2d"\n', "abuse.hold", "must be 0 or 1s to 1d", id="abuse-hold"),
    pytest.param(
        '[abuse]\ndead_contact_block = "4000d"\n',
        "abuse.dead_contact_block",
        "must be 0 or 1s to 3650d",
        id="dead-contact-block",
    ),
    pytest.param(
        "[jails.sshd]\nmaxtime = 0.5\n", "jails.sshd.maxtime", "0 or 1s to", id="maxtime-half"
    ),
    pytest.param("[jails.sshd]\nport = [0]\n", "jails.sshd.port", "got 0", id="port-zero"),
    pytest.param(
        "[abuse.smtp]\nport = 65536\n", "abuse.smtp.port", "must be 1 to 65535", id="smtp-port"
    ),
    pytest.param(
        '[abuse.mailbox]\nkind = "imap"\nhost = "localhost"\nport = 0\n',
        "abuse.mailbox.port",
        "must be 1 to 65535, got 0",
        id="mailbox-port",
    ),
    pytest.param(
        "[identity]\ndns_port = 70000\n", "identity.dns_port", "must be 1 to 65535", id="dns-port"
    ),
    pytest.param(
        "[jails.sshd]\nipv4_prefix = 33\n", "jails.sshd.ipv4_prefix", "8 to 32", id="v4-prefix"
    ),
    pytest.param(
        "[abuse]\nlargest_block_ipv6 = 129\n",
        "abuse.largest_block_ipv4",
        "largest_block_ipv6: 16 to 128",
        id="largest-block",
    ),
    pytest.param(
        "ipfw_table_base = 65535\n", "ipfw_table_base", "must be 0 to 65534", id="ipfw-base"
    ),
    pytest.param(
        "[ipfw_tables]\nsshd = -1\n", "ipfw_tables.sshd", "must be 0 to 65534", id="ipfw-table"
    ),
    # Paths are absolute: the daemon runs in / (systemd), not where the admin stood.
    pytest.param(
        '[jails.sshd]\nlogpath = "auth.log"\n',
        "jails.sshd.logpath",
        "must be an absolute path (starting with /), got 'auth.log'",
        id="relative-logpath",
    ),
    pytest.param(
        '[defaults]\nlogpath = ["logs/*.log"]\n',
        "defaults.logpath",
        "absolute path",
        id="relative-glob",
    ),
    pytest.param('store = "bg.db"\n', "store", "absolute path", id="relative-store"),
    pytest.param('socket = "bg.sock"\n', "socket", "absolute path", id="relative-socket"),
    pytest.param(
        'hostsdeny_path = "hosts.deny"\n', "hostsdeny_path", "absolute path", id="hostsdeny"
    ),
    pytest.param(
        '[blocklists.drop]\npath = "drop.txt"\n',
        "blocklists.drop.path",
        "absolute path",
        id="relative-blocklist",
    ),
    pytest.param(
        '[abuse.smtp]\nusername = "u"\npassword_file = "secret"\n',
        "abuse.smtp.password_file",
        "absolute path",
        id="relative-password-file",
    ),
    pytest.param(
        '[jails.app]\nfilter = "filter.d/app.conf[mode=aggressive]"\n',
        "jails.app.filter",
        "must be an absolute path (starting with /), got 'filter.d/app.conf'",
        id="relative-filter-file",
    ),
    pytest.param(
        '[abuse.mailbox]\nkind = "maildir"\npath = "Maildir"\n',
        "abuse.mailbox.path",
        "absolute path",
        id="relative-maildir",
    ),
    # A jail's name ends up in firewall set names: checked at load, not first at `run`.
    pytest.param(
        '[jails."a b; flush ruleset"]\nfilter = "sshd"\n',
        "jails.'a b; flush ruleset'",
        "a jail name is 1-30 letters, digits, '_' or '-', starting with a letter or '_'",
        id="jail-name-injection",
    ),
    pytest.param(
        f'[jails.{LONG_NAME}]\nfilter = "sshd"\n', f"jails.'{LONG_NAME}'", "1-30", id="long-name"
    ),
    pytest.param('[jails.1st]\nfilter = "sshd"\n', "jails.'1st'", "starting", id="digit-first"),
]


@pytest.mark.parametrize(("text", "key", "problem"), ERRORS)
def test_errors_name_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message
    assert "\n" not in message


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'store = "/tmp/x.db"\n\n[jails.sshd\nmaxretry = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 3" in message
    assert "\n" not in message


def test_duplicate_key_is_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[jails.sshd]\nmaxretry = 3\nmaxretry = 4\n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 3"):
        load_config(path)


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"store = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read: "):
        load_config(path)
    with pytest.raises(ConfigError, match=rf"^{tmp_path}: cannot read: "):
        load_config(tmp_path)  # a directory


# -- the command line: exit 2, one clear line ----------------------------------------------


@pytest.fixture
def run_cli(bruteguard_exe: Path, tmp_path: Path):
    """The real console script, run in ``tmp_path``."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bruteguard_exe), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )

    return run


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[jails.sshd]\nmaxretry = 0\n", "jails.sshd.maxretry"),
        ('[jails.sshd]\nfilter = "nope"\n', "jails.sshd.filter"),
        ('enforcers = ["firewalld"]\n', "enforcers[0]"),
        ("[jails.sshd\n", "not valid TOML"),
        ('[jails."a b; flush ruleset"]\nfilter = "sshd"\n', "jails.'a b; flush ruleset'"),
        ("[jails.sshd]\nmaxretry = 100000\n", "jails.sshd.maxretry"),
        ('[jails.sshd]\nlogpath = "auth.log"\n', "jails.sshd.logpath"),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["scan", "x.log"]])
def test_cli_bad_config_exits_2_with_one_line(
    tmp_path: Path, run_cli, text: str, key: str, command: list[str]
) -> None:
    path = write(tmp_path, text, "bad.toml")
    (tmp_path / "x.log").write_text("")
    done = run_cli(command[0], "--config", str(path), *command[1:])
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"bruteguard: {path}: ")
    assert key in lines[0]


@pytest.mark.parametrize("command", [["run"], ["scan", "x.log"]])
def test_cli_missing_config_file_exits_2(tmp_path: Path, run_cli, command: list[str]) -> None:
    missing = tmp_path / "missing.toml"
    done = run_cli(command[0], "--config", str(missing), *command[1:])
    assert done.returncode == 2
    assert done.stderr == f"bruteguard: {missing}: no such configuration file\n"


@pytest.mark.parametrize(
    "args",
    [[], ["frobnicate"], ["--frobnicate"], ["scan"], ["scan", "--bogus", "x.log"], ["run", "x"]],
)
def test_cli_bad_usage_exits_2(run_cli, args: list[str]) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert "bruteguard" in done.stderr


def test_a_new_jail_without_port_covers_every_port(tmp_path: Path) -> None:
    path = tmp_path / "bruteguard.toml"
    path.write_text('[jails.ssh2]\nfilter = "sshd"\nlogpath = ["/var/log/auth.log"]\n')
    config = load_config(path)
    assert config.jails["ssh2"].ports == ()
    assert config.jails["sshd"].ports == (22,)


def test_a_bad_journalmatch_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bruteguard.toml"
    path.write_text('[jails.sshd]\njournalmatch = ["_COMM=sshd + sshd"]\n')
    with pytest.raises(ConfigError, match=r"jails\.sshd.*journalmatch: 'sshd' is not FIELD=value"):
        load_config(path)


def test_identity_settings(tmp_path: Path) -> None:
    text = (
        '[identity]\nnameservers = ["192.0.2.53", "2001:db8::53"]\ndns_port = 5353\n'
        "dns_timeout = 0.5\nconntrack = false\n"
        "[jails.sshd]\nbreakin_weight = 2\n"
    )
    config = load_config(write(tmp_path, text))
    identity = config.identity
    assert identity.nameservers == ["192.0.2.53", "2001:db8::53"]
    assert (identity.dns_port, identity.dns_timeout, identity.conntrack) == (5353, 0.5, False)
    assert config.jails["sshd"].breakin_weight == 2
    defaults = load_config(write(tmp_path, ""))
    assert (defaults.identity.conntrack, defaults.identity.dns_timeout) == (True, 2.0)
    assert defaults.jails["sshd"].breakin_weight == 0


def test_escalation_settings_and_ratelimit(tmp_path: Path) -> None:
    text = (
        'ignoreip = ["192.0.2.0/24"]\n'
        "[jails.sshd]\n"
        'ratelimit = "4/3m"\nbantime_factor = 3\nmaxtime = "2d"\nsubnet_maxretry = 0\n'
        'ignoreip = ["2001:db8::/32"]\n'
        '[blocklists.drop]\npath = "/etc/bruteguard/drop.txt"\n'
    )
    config = load_config(write(tmp_path, text))
    sshd = config.jails["sshd"]
    assert sshd.rate == (4, 180.0)
    assert (sshd.bantime_factor, sshd.longest_ban, sshd.subnet_maxretry) == (3.0, 172800.0, 0)
    assert [str(n) for n in sshd.allow] == ["192.0.2.0/24", "2001:db8::/32"]  # global + own
    assert config.blocklists["drop"].bantime == 30 * 86400
    defaults = load_config(write(tmp_path, "")).jails["sshd"]
    assert (defaults.rate, defaults.bantime_factor, defaults.longest_ban) == (None, 2.0, 604800.0)


_DESK = '[abuse]\nenabled = true\nsender = "bg@example.org"\norg = "Example"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[abuse]\nenabled = true\n", "abuse.sender: the abuse desk needs sender and org"),
        (_DESK.replace("bg@example.org", "bg@x\\r\\nBcc: y@z.example"), "abuse: sender"),
        (_DESK + 'block_jail = "nope"\n', "abuse.block_jail: 'nope' is not an enabled jail"),
        (_DESK + 'call_first = ["usa"]\n', "abuse.call_first: 'usa' is not an ISO country"),
        (_DESK + "[abuse.smtp]\nusername = 'u'\npassword = 'p'\nstarttls = 'off'\n",
         "abuse.smtp.starttls: a password is never sent without STARTTLS"),
        (_DESK + "[abuse.lookup]\nwhois = { ARIN = 'whois.arin.net' }\n",
         "abuse.lookup.whois: the entry ARIN = 'whois.arin.net' is not host:port"),
        (_DESK + "[abuse.lookup]\nrdap = { JPNIC = 'https://rdap.example.net/' }\n",
         "abuse.lookup: rdap/whois: unknown registry 'JPNIC'"),
        (_DESK + "[abuse.mailbox]\nkind = 'maildir'\n", "abuse.mailbox.path: a maildir needs"),
        (_DESK + "hold = '-1m'\n", "abuse.hold"),
        ("[jails.sshd]\nabuse = 'always'\n", "jails.sshd.abuse"),
    ],
)  # fmt: skip
def test_abuse_desk_settings_are_checked(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bruteguard.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}: " + message.replace("(", r"\(")[:60]):
        load_config(path)


def test_abuse_lookup_national_whois_override(tmp_path: Path) -> None:
    path = tmp_path / "bruteguard.toml"
    path.write_text(_DESK + "[abuse.lookup]\nwhois = { KRNIC = '127.0.0.1:4343' }\n")
    assert load_config(path).abuse.lookup.whois == {"KRNIC": "127.0.0.1:4343"}
    path.write_text(_DESK + "[abuse.lookup]\nwhois = { TWNIC = 'h:43', 'NIC.br' = 'b:43' }\n")
    assert load_config(path).abuse.lookup.whois == {"TWNIC": "h:43", "NIC.br": "b:43"}


def test_abuse_desk_zero_means_never_and_jails_choose_their_mode(tmp_path: Path) -> None:
    path = tmp_path / "bruteguard.toml"
    path.write_text(_DESK + "hold = '0s'\ndead_contact_block = 0\n[jails.sshd]\nabuse = 'send'\n")
    config = load_config(path)
    assert config.abuse.hold == 0 and config.abuse.dead_contact_block == 0
    assert config.abuse.mode == "draft" and config.jails["sshd"].abuse == "send"
    assert config.abuse.mailbox is None and config.abuse.period == 86400
