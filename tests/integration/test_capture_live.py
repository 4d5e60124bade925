"""Live capture on lo with dumpcap and tcpdump, read back with the capture reader."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa import tools
from qa.capture import Capture, CaptureUnavailable, Payload, build_bpf, read_payloads
from qa.errors import MissingTool
from qa.ports import allocate_ports

SIP = (b"OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n"
       b"Call-ID: live-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def _tool_works(name: str) -> bool:
    return tools.have_tool(name) and os.geteuid() == 0


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


CRASHER = """
import sys, time
from qa.capture import Capture
cap = Capture(sys.argv[1], ports=[int(sys.argv[2])]).start()
print(cap.proc.pid, flush=True)
time.sleep(60)
"""


def _send_udp(port: int, payloads: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", port))
        for data in payloads:
            tx.sendto(data, ("127.0.0.1", port))


def _send_tcp(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(1)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as cli:
            conn, _ = srv.accept()
            with conn:
                cli.sendall(data[:30])
                time.sleep(0.05)
                cli.sendall(data[30:] + data)  # the rest, then a second copy
                got = b""
                while len(got) < 2 * len(data):
                    got += conn.recv(65536)


# -- no processes ------------------------------------------------------------------------------

def test_build_bpf() -> None:
    assert build_bpf([5060, 5070]) == "udp port 5060 or tcp port 5060 or udp port 5070 or tcp port 5070"
    assert build_bpf([5060], (20000, 20099)) == "udp port 5060 or tcp port 5060 or udp portrange 20000-20099"
    assert build_bpf([]) == ""
    with pytest.raises(ValueError):
        build_bpf(["5060; rm -rf /"])  # type: ignore[list-item]


def test_missing_tools_make_capture_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def missing(name: str) -> str:
        raise MissingTool(name, "tshark")
    monkeypatch.setattr(tools, "require_tool", missing)
    with pytest.raises(CaptureUnavailable, match="capture unavailable: dumpcap nor tcpdump") as exc:
        Capture(tmp_path / "x.pcap", ports=[5060]).start()
    assert "\n" not in str(exc.value) and exc.value.exit_code == 1


# -- real captures on lo -------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("tool, suffix", [("dumpcap", ".pcapng"), ("tcpdump", ".pcap")])
def test_capture_udp_and_tcp_on_lo(tmp_path: Path, tool: str, suffix: str) -> None:
    if not _tool_works(tool):
        pytest.skip(f"{tool} cannot capture here")
    udp_port, tcp_port = allocate_ports(2)
    cap = Capture(tmp_path / "run.pcap", ports=[udp_port, tcp_port], tool=tool, start_timeout=30)
    with cap:
        pid = cap.proc.pid  # type: ignore[union-attr]
        assert cap.running
        _send_udp(udp_port, [b"one", b"two", b"three"])
        _send_tcp(tcp_port, SIP)
    assert _gone(pid) and not cap.running
    assert cap.files == [tmp_path / f"run{suffix}"]
    got = [p for p in read_payloads(cap.files[0]) if isinstance(p, Payload)]
    udp = [p.data for p in got if p.transport == "udp" and p.dport == udp_port]
    tcp = [p for p in got if p.transport == "tcp"]
    assert udp == [b"one", b"two", b"three"]
    assert [p.data for p in tcp] == [SIP, SIP] and tcp[0].dport == tcp_port


@pytest.mark.integration
@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump"])
def test_ring_buffer_rotates(tmp_path: Path, tool: str) -> None:
    if not _tool_works(tool):
        pytest.skip(f"{tool} cannot capture here")
    (port,) = allocate_ports(1)
    cap = Capture(tmp_path / "ring.pcap", ports=[port], ring=(1, 3), tool=tool, start_timeout=30)
    with cap:
        for _ in range(6):  # ~3 MB in bursts the kernel buffer can absorb
            _send_udp(port, [b"x" * 1400] * 400)
            time.sleep(0.1)
    assert 2 <= len(cap.files) <= 3, cap.files
    assert all(f.stat().st_size > 0 for f in cap.files)
    frames = sum(1 for f in cap.files for p in read_payloads(f) if isinstance(p, Payload))
    assert frames > 0


@pytest.mark.integration
def test_bad_interface_is_capture_unavailable(tmp_path: Path) -> None:
    if not (_tool_works("dumpcap") or _tool_works("tcpdump")):
        pytest.skip("no capture tool")
    cap = Capture(tmp_path / "x.pcap", interface="voipqa-no-such-if0", ports=[5060], start_timeout=30)
    with pytest.raises(CaptureUnavailable, match="voipqa-no-such-if0"):
        cap.start()
    assert cap.proc is None


@pytest.mark.integration
def test_capture_dies_with_its_parent(tmp_path: Path) -> None:
    if not (_tool_works("dumpcap") or _tool_works("tcpdump")):
        pytest.skip("no capture tool")
    (port,) = allocate_ports(1)
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", CRASHER, str(tmp_path / "c.pcap"), str(port)],
                              cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()  # type: ignore[union-attr]
        child = int(line)
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        parent.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    died = _gone(child)
    if not died:
        os.kill(child, signal.SIGKILL)  # do not leave a capture running
    assert died
