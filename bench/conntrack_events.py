"""What reading conntrack events costs: our parser beside pyroute2's decoder, and how much
the kernel-side port filter keeps away from bruteguard.

1. Parsing: the same kernel-shaped messages (an IPv4 and an IPv6 event with status and TCP
   state, encoded by pyroute2) decoded N times by ``identity.conntrack.parse_messages``
   and by pyroute2's ``nfct_msg.decode`` plus the attribute reads bruteguard needs.
2. Filtering (root; a network namespace it creates and deletes): a burst of connections
   to a port no jail watches and a few to a watched one; what reached a socket with the
   BPF filter and one without, and the CPU time the filtered reader spent.

    .venv/bin/python bench/conntrack_events.py --messages 200000 --burst 3000
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import time

from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

from bruteguard.identity.conntrack import parse_messages


def _message(family: int, src: str, dst: str) -> bytes:
    v = "V4" if family == socket.AF_INET else "V6"
    message = nfct_msg()
    message["header"]["type"] = (1 << 8) | 0
    message["nfgen_family"] = family
    message["attrs"] = [
        ["CTA_TUPLE_ORIG", {"attrs": [
            ["CTA_TUPLE_IP", {"attrs": [[f"CTA_IP_{v}_SRC", src], [f"CTA_IP_{v}_DST", dst]]}],
            ["CTA_TUPLE_PROTO", {"attrs": [["CTA_PROTO_NUM", 6], ["CTA_PROTO_SRC_PORT", 40000],
                                           ["CTA_PROTO_DST_PORT", 21]]}],
        ]}],
        ["CTA_STATUS", 14],
        ["CTA_PROTOINFO", {"attrs": [["CTA_PROTOINFO_TCP", {"attrs": [
            ["CTA_PROTOINFO_TCP_STATE", 3]]}]]}],
    ]  # fmt: skip
    message.encode()
    return bytes(message.data)


def bench_parse(count: int) -> dict[str, float]:
    messages = [
        _message(socket.AF_INET, "192.0.2.10", "192.0.2.1"),
        _message(socket.AF_INET6, "2001:db8::10", "2001:db8::1"),
    ]
    started = time.perf_counter()
    for n in range(count):
        for _ in parse_messages(messages[n & 1]):
            pass
    ours = (time.perf_counter() - started) / count * 1e6
    started = time.perf_counter()
    for n in range(count):
        decoded = nfct_msg(messages[n & 1])
        decoded.decode()
        tuple_orig = decoded.get_attr("CTA_TUPLE_ORIG")
        tuple_orig.get_attr("CTA_TUPLE_IP")
        tuple_orig.get_attr("CTA_TUPLE_PROTO").get_attr("CTA_PROTO_DST_PORT")
        decoded.get_attr("CTA_STATUS")
        decoded.get_attr("CTA_PROTOINFO").get_attr("CTA_PROTOINFO_TCP")
    theirs = (time.perf_counter() - started) / count * 1e6
    return {"bruteguard_us": round(ours, 2), "pyroute2_us": round(theirs, 2)}


# Inside the server namespace: a filtered reader (ours) and an unfiltered raw socket
# subscribed to the same groups; counts what reached each after the burst.
_READERS = """
import json, resource, select, socket, sys, time
from bruteguard.identity.conntrack import ConntrackEvents
from bruteguard.identity.tracking_rule import TrackingRule
TrackingRule().setup([21, 8080])
events = ConntrackEvents([21])
events.open()
raw = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
raw.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)
raw.bind((0, 7))
raw.setblocking(False)
print("ready", flush=True)
sys.stdin.readline()
cpu = 0.0
raw_messages = ours = 0
quiet = time.monotonic()
while time.monotonic() - quiet < 2.0:
    ready, _, _ = select.select([events.fileno(), raw], [], [], 0.2)
    if events.fileno() in ready:
        before = resource.getrusage(resource.RUSAGE_SELF)
        got, _ = events.read_events()
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        ours += len(got)
        quiet = time.monotonic()
    if raw in ready:
        try:
            while True:
                data = raw.recv(65536)
                offset = 0
                while offset + 16 <= len(data):
                    length = int.from_bytes(data[offset:offset + 4], sys.byteorder)
                    if length < 16:
                        break
                    raw_messages += 1
                    offset += (length + 3) & ~3
        except BlockingIOError:
            pass
        quiet = time.monotonic()
print(json.dumps({"unfiltered": raw_messages, "delivered": events.received + events.malformed,
                  "events": ours, "overruns": events.overruns, "cpu_s": cpu}), flush=True)
"""

_BURST = """
import socket, sys
address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    try:
        socket.create_connection((address, port), timeout=2).close()
    except OSError:
        pass
"""

_LISTEN = """
import socket
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(__import__("sys").argv[1])))
server.listen(512)
print("ready", flush=True)
while True:
    server.accept()[0].close()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def bench_filter(burst: int) -> dict[str, float]:
    tag = secrets.token_hex(3)
    server, client = f"bgct-{tag}-s", f"bgct-{tag}-c"
    try:
        _ip("netns", "add", server)
        _ip("netns", "add", client)
        _ip("-n", server, "link", "add", "veth0", "type", "veth", "peer", "name", "eth0",
            "netns", client)  # fmt: skip
        _ip("-n", server, "addr", "add", "192.0.2.1/24", "dev", "veth0")
        _ip("-n", client, "addr", "add", "192.0.2.10/24", "dev", "eth0")
        for ns, dev in ((server, "veth0"), (client, "eth0"), (server, "lo"), (client, "lo")):
            _ip("-n", ns, "link", "set", dev, "up")
        run = ["ip", "netns", "exec"]
        listeners = [
            subprocess.Popen(
                [*run, server, sys.executable, "-c", _LISTEN, str(port)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for port in (21, 8080)
        ]
        for listener in listeners:
            assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        readers = subprocess.Popen(
            [*run, server, sys.executable, "-c", _READERS],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert readers.stdout is not None and readers.stdout.readline().strip() == "ready"
        subprocess.run([*run, client, sys.executable, "-c", _BURST, "192.0.2.1", "8080",
                        str(burst)], check=True, timeout=300)  # fmt: skip
        subprocess.run([*run, client, sys.executable, "-c", _BURST, "192.0.2.1", "21", "10"],
                       check=True, timeout=60)  # fmt: skip
        stdout, _ = readers.communicate("go\n", timeout=120)
        for listener in listeners:
            listener.kill()
            listener.wait(timeout=10)
        return json.loads(stdout)
    finally:
        for ns in (client, server):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--burst", type=int, default=3000)
    args = parser.parse_args()
    report = {"parse": bench_parse(args.messages)}
    if os.geteuid() == 0:
        report["filter"] = bench_filter(args.burst)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
