"""Port allocation never hands out a taken port; missing tools name their package."""

import socket

import pytest

from qa.errors import BadInput, MissingTool
from qa.ports import allocate_ports, allocate_rtp_port, port_is_free, require_free
from qa.tools import require_tool


def test_allocated_ports_are_distinct_and_free():
    ports = allocate_ports(10)
    assert len(set(ports)) == 10
    assert all(port_is_free(p) for p in ports)


def test_taken_port_is_bad_input():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(BadInput, match=f"127.0.0.1:{port} is already taken"):
            require_free(port, what="kamailio sip")


def test_rtp_port_is_even_with_free_rtcp():
    port = allocate_rtp_port()
    assert port % 2 == 0
    for p in (port, port + 1):  # RTP and RTCP both bindable
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", p))


def test_missing_tool_names_the_debian_package(monkeypatch):
    monkeypatch.setattr("qa.tools.PACKAGES", {"sipp-nonexistent": "sip-tester"})
    with pytest.raises(MissingTool) as exc:
        require_tool("sipp-nonexistent")
    assert "apt-get install sip-tester" in str(exc.value)
    assert exc.value.exit_code == 2


def test_listeners_come_from_above_the_ephemeral_range():
    """An ephemeral port checked free can be taken by any outgoing connection before the
    listener binds it; ports above the kernel's range cannot."""
    from qa.ports import ephemeral_range, listen_pool

    pool = listen_pool()
    if pool is None:
        pytest.skip(f"this machine's ephemeral range {ephemeral_range()} leaves no room above it")
    assert all(pool[0] <= p < pool[1] and p > ephemeral_range()[1] for p in allocate_ports(20))
