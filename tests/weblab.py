"""A real nginx (Debian's nginx-light) inside a Lab, writing the access log production has.

``NginxLab`` is a ``servicelab.ServiceLab``: ``tests/servicelab-launch.sh`` starts, as PID 1 of
private mount and PID namespaces in the lab's server namespace, rsyslogd and then nginx in
the foreground (``daemon off``), listening on port 80 for IPv4 and IPv6. nginx writes its
``combined`` access log into the work directory: the file the ``wordpress`` and
``web-scanner`` jails read.

The site stands in for a WordPress whose every login fails: ``/`` and ``/about/`` answer
200, ``/wp-login.php`` answers a ``GET`` with the form and a ``POST`` with the form again (200,
as WordPress answers a wrong password); every other path is 404. Only nginx's own
``return`` and ``if`` are used: nothing but nginx runs, nothing is served from disk.
Clients make plain HTTP/1.1 requests with Python's ``http.client`` in a child
process in their namespace; method, path and body arrive as argv, never as code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import ClassVar, Literal

from netns import Host
from servicelab import ServiceLab

__all__ = ["NGINX", "NginxLab", "Request"]

NGINX = "/usr/sbin/nginx"
RUN = "/run/weblab"  # inside the launcher's private /run

# (method, path, body): one request.
Request = tuple[str, str, str]

# Each request on its own connection; prints one JSON list: the status of each, or
# "unreachable" when the connection failed (refused, dropped: the firewall's answer).
_CLIENT_SCRIPT = """
import http.client, json, sys
addr, port, timeout, requests = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
results = []
for i in range(0, len(requests), 3):
    method, path, body = requests[i:i + 3]
    connection = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        headers = {"User-Agent": "Mozilla/5.0 (bruteguard weblab)"}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body.encode() if method == "POST" else None,
                           headers=headers)
        results.append(connection.getresponse().status)
    except OSError as exc:
        results.append("unreachable")
    finally:
        connection.close()
print(json.dumps(results))
"""


class NginxLab(ServiceLab):
    """nginx serving a stand-in WordPress on port 80; ``jail_log`` is its access log."""

    PREFIX = "bgweb"
    PORT = 80
    PROTOCOL: ClassVar[Literal["ftp", "imap"]] = "imap"  # unused: HTTP clients are ours
    SERVICE_LOG = "access.log"
    SYSLOG_SELECTOR = "local7.*"  # nginx logs to files here; rsyslog only runs
    READY = "nginx listening on port 80 (IPv4 and IPv6)"
    DIAGNOSED = ("access.log", "error.log")

    def _daemon_argv(self) -> list[str]:
        return [
            NGINX,
            "-c",
            str(self.workdir / "nginx.conf"),
            "-e",
            str(self.workdir / "error.log"),
        ]

    def _run_dirs(self) -> list[tuple[str, str, int]]:
        return [(RUN, "0755", 0)]

    def _write_service_config(self) -> None:
        work = self.workdir
        temp = "".join(
            f"    {kind}_temp_path {RUN}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (work / "nginx.conf").write_text(
            "daemon off;\n"
            "worker_processes 1;\n"
            f"pid {RUN}/nginx.pid;\n"
            f"error_log {work}/error.log notice;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"    access_log {work}/access.log combined;\n"
            f"{temp}"
            "    default_type text/plain;\n"
            "    server {\n"
            "        listen 80;\n"
            "        listen [::]:80;\n"
            '        location = / { return 200 "welcome\\n"; }\n'
            '        location = /about/ { return 200 "about us\\n"; }\n'
            "        location = /wp-login.php {\n"
            '            if ($request_method != POST) { return 200 "login form\\n"; }\n'
            '            return 200 "login form: wrong password\\n";\n'
            "        }\n"
            "        location / { return 404; }\n"
            "    }\n"
            "}\n"
        )

    def requests(
        self, from_host: Host | str, address: str, requests: Sequence[Request], timeout: float = 3
    ) -> list[int | str]:
        """Make ``requests`` from ``from_host`` to nginx at ``address``, one connection each;
        the status of each, or ``"unreachable"``."""
        host = self._host(from_host)
        argv = [sys.executable, "-c", _CLIENT_SCRIPT, address, str(self.PORT), str(timeout)]
        for method, path, body in requests:
            argv += [method, path, body]
        result = host.run(argv, check=False, stdin=subprocess.DEVNULL, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"the HTTP client failed: {result.stderr}")
        outcomes = json.loads(result.stdout)
        self._log_client(f"{host.name} → {address}: {list(requests)} → {outcomes}")
        return outcomes

    def failed_login(self) -> Request:
        """A login with a wrong password, as a browser posts WordPress's form."""
        return ("POST", "/wp-login.php", f"log={self.user}&pwd=wrong-{self.password}")
