"""The lab itself: clients reach the server over IPv4 and IPv6, and nothing is left behind."""

import pytest

from netns import Lab, existing_namespaces, require_root_netns

pytestmark = pytest.mark.netns

PORT = 2222


def test_clients_reach_server_over_v4_and_v6_and_lab_cleans_up() -> None:
    require_root_netns()
    with Lab(prefix="bgtest") as lab:
        names = set(lab.namespaces)
        assert len(names) == 3
        assert names <= existing_namespaces()
        lab.server.listen_tcp(PORT)
        for client in lab.clients.values():
            assert client.tcp_connect(lab.server.ipv4, PORT)
            assert client.tcp_connect(lab.server.ipv6, PORT)
        # A closed port is refused, so tcp_connect can say False.
        assert not lab.clients["attacker"].tcp_connect(lab.server.ipv4, PORT + 1)
        assert lab.clients["innocent"].ipv4 == "192.0.2.11"
        assert lab.clients["innocent"].ipv6 == "2001:db8::b"
    assert not names & existing_namespaces()


def test_namespaces_are_deleted_when_the_test_body_fails() -> None:
    require_root_netns()
    with pytest.raises(RuntimeError, match="boom"), Lab(clients=("solo",)) as lab:
        names = set(lab.namespaces)
        lab.server.listen_tcp(PORT)
        raise RuntimeError("boom")
    assert not names & existing_namespaces()


def test_two_labs_at_once_do_not_collide() -> None:
    require_root_netns()
    with Lab(clients=("a",)) as first, Lab(clients=("a",)) as second:
        assert not set(first.namespaces) & set(second.namespaces)
        second.server.listen_tcp(PORT)
        assert second.clients["a"].tcp_connect(second.server.ipv4, PORT)
        assert not first.clients["a"].tcp_connect(first.server.ipv4, PORT)
