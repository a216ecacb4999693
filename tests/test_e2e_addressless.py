"""A TLS error line that names no client, tied to the one real connection that ended with it.

Plesk's older sw-cp-server (lighttpd with OpenSSL 0.9.8/1.0) wrote failed TLS handshakes as
``2009-06-03 22:37:08: (connections.c.299) SSL: 1 error:140780E5:SSL
routines:SSL23_READ:ssl handshake failure``: no client at all. That lighttpd is packaged
nowhere any more, so the lab runs a real TLS server that reports its failures the same way:
``openssl s_server`` on port 8443 in the server namespace, whose report of each failed
handshake (an OpenSSL error line, with no client either) is written as that lighttpd line,
stamped when s_server reports it. The server, its failures, the connections and the kernel's
connection tracking are all real; only the line's layout is lighttpd's.

A prober speaks plain HTTP to the TLS port again and again while an innocent browser-like
client keeps making real TLS requests at the same time. The real ``bruteguard run`` (the
``sw-cp-server`` jail) bans the prober, proven by a refused connection, and never the
innocent, who keeps its TLS requests working.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgdaemon import Bruteguard
from netns import Lab
from sshlab import poll_until

pytestmark = pytest.mark.netns

PORT = 8443
MAXRETRY = 3
PROBES = 15  # bounded: the prober is banned long before
# A person's browser: a page every couple of seconds, while the prober hammers away.
INNOCENT_REQUESTS = 10

# In the server namespace: s_server on PORT, each OpenSSL error it reports rewritten as old
# lighttpd wrote it, into LOG, stamped now. Prints "ready" once s_server listens.
_TLS_SERVER = """
import datetime, re, subprocess, sys
cert, key, log = sys.argv[1:4]
server = subprocess.Popen(
    ["openssl", "s_server", "-accept", "8443", "-cert", cert, "-key", key, "-www"],
    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
error = re.compile(r"^[0-9A-F]+:error:([0-9A-F]{8}):SSL routines:([A-Za-z0-9_]*):([a-z ]+):")
with open(log, "a", buffering=1) as out:
    for line in server.stdout:
        if line.startswith("ACCEPT"):
            print("ready", flush=True)
        found = error.match(line)
        if found:
            stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
            code, function, reason = found.groups()
            out.write(f"{stamp}: (connections.c.299) SSL: 1 error:{code}:SSL routines:"
                      f"{function}:{reason}\\n")
"""

# From a client namespace: COUNT plain-HTTP requests to the TLS port, PAUSE apart; prints
# how many got a connection at all (a banned prober gets none).
_PROBER = """
import socket, sys, time
address, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
connected = 0
for _ in range(count):
    try:
        with socket.create_connection((address, 8443), timeout=2) as probe:
            connected += 1
            probe.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            probe.recv(100)
    except OSError:
        pass
    time.sleep(pause)
print(connected)
"""

# From a client namespace: COUNT real TLS requests, PAUSE apart; prints how many succeeded.
_BROWSER = """
import socket, ssl, sys, time
address, count, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
done = 0
for _ in range(count):
    try:
        with context.wrap_socket(socket.create_connection((address, 8443), timeout=5)) as tls:
            tls.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            if tls.recv(12).startswith(b"HTTP/1.0 200"):
                done += 1
    except OSError:
        pass
    time.sleep(pause)
print(done)
"""


@pytest.fixture
def tls_lab(netns_root: None, tmp_path: Path) -> Iterator[tuple[Lab, Path]]:
    """The lab, with s_server running in the server namespace; yields the lab and its log."""
    cert, key, log = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "error_log"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=panel.lab.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    log.touch()
    with Lab(("prober", "innocent"), prefix="bgtls") as lab:
        server = lab.server.popen(
            [sys.executable, "-c", _TLS_SERVER, str(cert), str(key), str(log)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stdout is not None
        readable, _, _ = select.select([server.stdout], [], [], 20)
        if not readable or server.stdout.readline().strip() != "ready":
            server.kill()
            pytest.fail(f"s_server did not start: {server.communicate(timeout=10)[1]}")
        yield lab, log


def test_a_plain_http_prober_is_banned_by_lines_that_name_no_client(
    tls_lab: tuple[Lab, Path],
    tmp_path: Path,
    bruteguard_exe: Path,
    make_config: Callable[..., Path],
) -> None:
    lab, log = tls_lab
    config = make_config(
        jails={
            "sshd": {"enabled": False},
            "sw-cp-server": {
                "backend": "file",
                "logpath": [str(log)],
                "port": [PORT],
                "maxretry": MAXRETRY,
                "findtime": "10m",
                "bantime": "600s",
            },
        },
    )
    daemon = Bruteguard(bruteguard_exe, config, lab.server, tmp_path / "bruteguard.log")
    daemon.start()
    evidence = json.loads(daemon.cli("status", "--json").stdout)["identity"]
    assert evidence["evidence"] == "conntrack", evidence
    prober, innocent = lab.clients["prober"], lab.clients["innocent"]
    address = lab.server.ipv4

    browsed: list[str] = []

    def browse() -> None:
        argv = [sys.executable, "-c", _BROWSER, address, str(INNOCENT_REQUESTS), "2.0"]
        browsed.append(innocent.run(argv, timeout=120).stdout.strip())

    browser = threading.Thread(target=browse)
    browser.start()
    time.sleep(0.2)
    probes = prober.run([sys.executable, "-c", _PROBER, address, str(PROBES), "0.7"], timeout=120)
    browser.join(timeout=150)
    assert not browser.is_alive()

    def banned() -> bool:
        return daemon.ban_of(prober.ipv4) is not None

    poll_until(banned, 20, "a ban of the prober", lambda: f"{daemon.log()}\n{log.read_text()}")
    assert int(probes.stdout) < PROBES, "the prober was never refused"
    assert not prober.tcp_connect(address, PORT), "the prober still connects"
    assert daemon.ban_of(innocent.ipv4) is None, daemon.log()
    assert browsed == [str(INNOCENT_REQUESTS)], "every TLS request of the innocent worked"
    assert innocent.tcp_connect(address, PORT)
    lines = log.read_text().splitlines()
    assert len(lines) >= MAXRETRY and all("(connections.c.299) SSL: 1 error:" in x for x in lines)
    assert not any(prober.ipv4 in line for line in lines), "the lines name no client"
