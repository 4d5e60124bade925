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


@pytest.mark.parametrize("kernel_range, pool", [((32768, 60999), (61000, 65536)),   # Linux default
                                                ((1024, 65000), None)])              # no room above
def test_listeners_come_from_above_the_ephemeral_range(monkeypatch, kernel_range, pool):
    """An ephemeral port checked free can be taken by any outgoing connection before the
    listener binds it; ports above the kernel's range cannot. Where the range leaves no
    room above it, the kernel picks (free ports still, only not protected)."""
    import qa.ports as ports

    monkeypatch.setattr(ports, "ephemeral_range", lambda: kernel_range)
    assert ports.listen_pool() == pool
    got = allocate_ports(20)
    assert len(set(got)) == 20 and all(port_is_free(p) for p in got)
    if pool is not None:
        assert all(pool[0] <= p < pool[1] for p in got)


def test_threads_allocating_at_once_never_get_the_same_port(monkeypatch):
    """Concurrent allocations in one process (the BYO suite starts several SIPp at once)
    drew the same port now and then: the second SIPp failed to bind its control socket.
    A small pool makes a duplicate certain without the process's hold."""
    import threading

    import qa.ports as ports

    monkeypatch.setattr(ports, "listen_pool", lambda: (62000, 62040))
    monkeypatch.setattr(ports, "_HANDED_OUT", {})
    got: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        mine = allocate_ports(2)
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=grab) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 20 and len(set(got)) == 20, sorted(got)
    # the hold expires: a port may be handed out again after HOLD_S
    monkeypatch.setattr(ports, "HOLD_S", 0.0)
    assert len(allocate_ports(30)) == 30
