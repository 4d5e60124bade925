"""The capture reader: formats, link types, IP/TCP/SCTP/WS decoding, the corpus vs tshark."""

from __future__ import annotations

import collections
import re
import struct
from pathlib import Path

import pytest

from qa.capture import CaptureProblem, CaptureReader, Payload, PcapError, read_payloads
from qa.capture.model import CaptureStats
from qa.capture.sink import Sink
from qa.capture.tcp import TcpReassembler
from qa.capture.writer import (
    LINKTYPE_ETHERNET, LINKTYPE_RAW, ethernet, fragment_ipv4, fragment_ipv6, ipv4_packet,
    ipv6_packet, tcp_packet, udp_packet, write_pcap, write_pcapng,
)
from tests.corpus import CORPUS, corpus_params

CORPUS = CORPUS / "pcaps"
T0 = 1_700_000_000.25
A, B = "192.0.2.1", "192.0.2.2"
A6, B6 = "2001:db8::1", "2001:db8::2"


def sip(n: int = 1, body: bytes = b"", method: bytes = b"OPTIONS") -> bytes:
    return (method + b" sip:b@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK%d\r\nCall-ID: c%d\r\n"
            b"CSeq: %d " % (n, n, n) + method + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def items(path: Path) -> tuple[list[Payload], list[CaptureProblem]]:
    out = list(read_payloads(path))
    return ([p for p in out if isinstance(p, Payload)],
            [p for p in out if isinstance(p, CaptureProblem)])


def pcap(tmp_path: Path, frames: list[bytes], linktype: int = LINKTYPE_RAW, **kw: object) -> Path:
    path = tmp_path / "t.pcap"
    write_pcap(path, [(T0 + i, f) for i, f in enumerate(frames)], linktype, **kw)
    return path


# -- file formats -----------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, order: str, nanosecond: bool) -> None:
    path = pcap(tmp_path, [udp_packet(A, 5060, B, 5070, b"hello")] * 3,
                byteorder=order, nanosecond=nanosecond)
    got, problems = items(path)
    assert not problems
    assert [p.frame for p in got] == [1, 2, 3]
    assert got[1].time == pytest.approx(T0 + 1, abs=1e-6)
    assert (got[0].src, got[0].sport, got[0].dst, got[0].dport) == (A, 5060, B, 5070)
    assert got[0].data == b"hello" and got[0].transport == "udp" and got[0].ip_version == 4


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_two_interfaces_of_different_link_types(tmp_path: Path, order: str) -> None:
    path = tmp_path / "t.pcapng"
    pkts = [(0, T0, ethernet(udp_packet(A, 1, B, 2, b"eth"))),
            (1, T0 + 0.5, udp_packet(A6, 3, B6, 4, b"raw6")),
            (0, T0 + 1, ethernet(udp_packet(A, 1, B, 2, b"eth2"), vlans=[10]))]
    write_pcapng(path, pkts, [LINKTYPE_ETHERNET, LINKTYPE_RAW], byteorder=order, tsresol=9)
    reader = CaptureReader(path)
    got = list(reader)
    assert [(p.frame, p.data, p.ip_version) for p in got] == [(1, b"eth", 4), (2, b"raw6", 6), (3, b"eth2", 4)]
    assert got[1].time == pytest.approx(T0 + 0.5, abs=1e-6)
    assert got[1].src == A6
    assert reader.stats.linktypes == {1: 2, 101: 1}
    assert reader.stats.packets == 3 and reader.stats.first_time == pytest.approx(T0)


def _block(btype: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def test_pcapng_spb_opb_unknown_blocks_and_sections(tmp_path: Path) -> None:
    pkt = udp_packet(A, 1, B, 2, b"x")
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, 0))
    spb = _block(3, struct.pack("<I", len(pkt)) + pkt)
    opb = _block(2, struct.pack("<HHIIII", 0, 0, 0, 1_000_000, len(pkt), len(pkt)) + pkt)
    unknown = _block(0x0BAD, b"whatever")
    # a second section, big-endian, whose interface 0 is Ethernet
    shb2 = _block(0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1), ">")
    idb2 = _block(1, struct.pack(">HHI", LINKTYPE_ETHERNET, 0, 0), ">")
    eth = ethernet(pkt)
    epb2 = _block(6, struct.pack(">IIIII", 0, 0, 3_000_000, len(eth), len(eth)) + eth, ">")
    bad_if = _block(6, struct.pack(">IIIII", 7, 0, 0, len(eth), len(eth)) + eth, ">")
    path = tmp_path / "t.pcapng"
    path.write_bytes(shb + idb + spb + unknown + opb + shb2 + idb2 + epb2 + bad_if)
    got, problems = items(path)
    assert [p.frame for p in got] == [1, 2, 3]
    assert got[1].time == pytest.approx(1.0) and got[2].time == pytest.approx(3.0)
    assert [p.rule for p in problems] == ["pcapng.no-interface"]


def test_truncated_last_record_is_a_problem_not_an_error(tmp_path: Path) -> None:
    path = pcap(tmp_path, [udp_packet(A, 1, B, 2, b"abc" * 10)] * 3)
    path.write_bytes(path.read_bytes()[:-5])
    got, problems = items(path)
    assert [p.frame for p in got] == [1, 2]
    assert [(p.rule, p.frame) for p in problems] == [("pcap.truncated", 3)]


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    write_pcapng(path, [(0, T0, udp_packet(A, 1, B, 2, b"a")), (0, T0, udp_packet(A, 1, B, 2, b"b"))])
    path.write_bytes(path.read_bytes()[:-3])
    got, problems = items(path)
    assert [p.data for p in got] == [b"a"]
    assert [(p.rule, p.frame) for p in problems] == [("pcap.truncated", 2)]


def test_absurd_record_length_stops_cleanly(tmp_path: Path) -> None:
    path = pcap(tmp_path, [udp_packet(A, 1, B, 2, b"a")])
    path.write_bytes(path.read_bytes() + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30) + b"junk")
    got, problems = items(path)
    assert len(got) == 1 and [p.rule for p in problems] == ["pcap.bad-record"]


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"\x00\x01\x02\x03rest of it", "not a pcap or pcapng file (magic 0x00010203)"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\xff\xff\xff\xff", "byte-order magic"),
])
def test_not_a_capture_raises_pcap_error_naming_the_file(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(PcapError) as exc:
        read_payloads(path)  # at open, not on first next()
    assert str(path) in str(exc.value) and reason in str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in str(exc.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(PcapError, match="no such file"):
        CaptureReader(tmp_path / "nope.pcap")
    with pytest.raises(PcapError, match="is a directory"):
        CaptureReader(tmp_path)


def test_gzipped_pcap(tmp_path: Path) -> None:
    import gzip
    path = pcap(tmp_path, [udp_packet(A, 1, B, 2, b"zz")])
    gz = tmp_path / "t.pcap.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert [p.data for p in read_payloads(gz)] == [b"zz"]


# -- link types --------------------------------------------------------------------------------

IP4 = udp_packet(A, 5060, B, 5060, b"payload4")
IP6 = udp_packet(A6, 5060, B6, 5060, b"payload6")


def _sll(ip: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, 0x86DD if ip[0] >> 4 == 6 else 0x0800) + ip


def _sll2(ip: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x86DD if ip[0] >> 4 == 6 else 0x0800, 0, 1, 772, 0, 6, b"\0" * 8) + ip


@pytest.mark.parametrize("linktype, wrap", [
    (0, lambda ip: struct.pack("<I", 2 if ip[0] >> 4 == 4 else 24) + ip),
    (0, lambda ip: struct.pack(">I", 2 if ip[0] >> 4 == 4 else 30) + ip),
    (108, lambda ip: struct.pack(">I", 2 if ip[0] >> 4 == 4 else 28) + ip),
    (1, ethernet),
    (1, lambda ip: ethernet(ip, vlans=[100])),
    (1, lambda ip: ethernet(ip, vlans=[100, 200])),
    (1, lambda ip: ethernet(ip) + b"\0" * 30),  # trailing padding/FCS is ignored
    (113, _sll),
    (276, _sll2),
    (101, lambda ip: ip),
    (12, lambda ip: ip),
    (14, lambda ip: ip),
])
@pytest.mark.parametrize("ip", [IP4, IP6], ids=["v4", "v6"])
def test_link_types(tmp_path: Path, linktype: int, wrap, ip: bytes) -> None:  # type: ignore[no-untyped-def]
    got, problems = items(pcap(tmp_path, [wrap(ip)], linktype))
    assert not problems
    assert [p.data for p in got] == [b"payload4" if ip is IP4 else b"payload6"]


def test_raw_ipv4_and_ipv6_only_link_types(tmp_path: Path) -> None:
    assert [p.data for p in items(pcap(tmp_path, [IP4], 228))[0]] == [b"payload4"]
    assert [p.data for p in items(pcap(tmp_path, [IP6], 229))[0]] == [b"payload6"]


def test_pppoe_session_on_ethernet(tmp_path: Path) -> None:
    frame = b"\x02" * 12 + b"\x88\x64" + struct.pack("!BBHHH", 0x11, 0, 1, len(IP4) + 2, 0x21) + IP4
    assert [p.data for p in items(pcap(tmp_path, [frame], 1))[0]] == [b"payload4"]


def test_unknown_link_type_is_one_problem(tmp_path: Path) -> None:
    got, problems = items(pcap(tmp_path, [IP4, IP4, IP4], 147))
    assert not got
    assert [(p.rule, p.frame) for p in problems] == [("pcap.linktype", 1)]


def test_non_ip_frames_are_skipped_silently(tmp_path: Path) -> None:
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 28
    reader = CaptureReader(pcap(tmp_path, [arp, ethernet(IP4)], 1))
    assert [p.data for p in reader] == [b"payload4"]
    assert reader.stats.non_ip == 1


# -- IP ----------------------------------------------------------------------------------------

def test_bad_ipv4_header_and_lengths(tmp_path: Path) -> None:
    bad_ihl = bytes([0x42]) + IP4[1:]
    too_long = ipv4_packet(A, B, 17, IP4[20:], total_length=900)
    tso = ipv4_packet(A, B, 17, IP4[20:], total_length=0)
    bad_udp = ipv4_packet(A, B, 17, struct.pack("!HHHH", 1, 2, 400, 0) + b"x")
    got, problems = items(pcap(tmp_path, [bad_ihl, too_long, tso, bad_udp]))
    assert [p.data for p in got] == [b"payload4"]
    assert [p.rule for p in problems] == ["ip.bad-header", "ip.truncated", "udp.bad-length"]


def test_ipv4_fragments_out_of_order_are_reassembled(tmp_path: Path) -> None:
    big = sip(1, b"v=0\r\n" * 300).replace(b"TCP", b"UDP")
    frags = fragment_ipv4(udp_packet(A, 5060, B, 5060, big, ident=77), 600)
    assert len(frags) >= 3
    reader = CaptureReader(pcap(tmp_path, [frags[1], frags[0], *frags[2:]]))
    got = list(reader)
    assert [(p.frame, p.data) for p in got] == [(len(frags), big)]
    assert reader.stats.ip_fragments_reassembled == 1


def test_ipv4_fragment_overlap_duplicate_and_incomplete(tmp_path: Path) -> None:
    frags = fragment_ipv4(udp_packet(A, 1, B, 2, b"x" * 100, ident=5), 48)
    overlap = ipv4_packet(A, B, 17, b"y" * 40, ident=5, flags_offset=0x2000 | 2)
    lonely = fragment_ipv4(udp_packet(A, 1, B, 2, b"z" * 100, ident=9), 48)[0]
    got, problems = items(pcap(tmp_path, [frags[0], frags[0], overlap, lonely]))
    assert not got
    assert [p.rule for p in problems] == ["ip.frag.overlap", "ip.frag.incomplete"]


def test_ipv4_fragment_timeout_and_oversize(tmp_path: Path) -> None:
    first = fragment_ipv4(udp_packet(A, 1, B, 2, b"x" * 100, ident=5), 48)[0]
    other = udp_packet(A, 1, B, 2, b"late")
    huge = ipv4_packet(A, B, 17, b"h" * 16, ident=6, flags_offset=0x2000 | 8190)
    path = tmp_path / "t.pcap"
    write_pcap(path, [(T0, first), (T0 + 31, fragment_ipv4(udp_packet(A, 1, B, 2, b"q" * 100, ident=7), 48)[0]),
                      (T0 + 32, other), (T0 + 33, huge)])
    got, problems = items(path)
    assert [p.data for p in got] == [b"late"]
    rules = [p.rule for p in problems]
    assert rules[:2] == ["ip.frag.timeout", "ip.frag.oversize"] and "ip.frag.incomplete" in rules


def test_ipv6_extension_headers_and_fragments(tmp_path: Path) -> None:
    udp = udp_packet(A6, 5060, B6, 5060, b"six" * 500)
    frags = fragment_ipv6(udp, 512, ident=0xABCD)
    # hop-by-hop (PadN) + destination options in front of the UDP header
    hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0])
    dst = bytes([17, 0, 1, 4, 0, 0, 0, 0])
    with_ext = ipv6_packet(A6, B6, 0, hbh + dst + udp[40:])
    atomic = ipv6_packet(A6, B6, 44, struct.pack("!BBHI", 17, 0, 0, 1) + udp[40:])
    got, problems = items(pcap(tmp_path, [frags[2], frags[0], frags[1], *frags[3:], with_ext, atomic]))
    assert not problems
    assert [p.data for p in got] == [b"six" * 500] * 3
    assert got[0].src == A6 and got[0].ip_version == 6


# -- TCP ---------------------------------------------------------------------------------------

def tcp_frames(chunks: list[tuple[int, bytes]], isn: int = 1000, syn: bool = True,
               src: str = A, dst: str = B) -> list[bytes]:
    """Segments at (relative sequence, payload); a SYN first when ``syn``."""
    out = [tcp_packet(src, 40000, dst, 5060, seq=isn, flags="S")] if syn else []
    out += [tcp_packet(src, 40000, dst, 5060, data, seq=isn + 1 + rel) for rel, data in chunks]
    return out


def tcp_messages(tmp_path: Path, frames: list[bytes]) -> tuple[list[Payload], list[CaptureProblem]]:
    return items(pcap(tmp_path, frames))


def test_tcp_several_messages_per_segment(tmp_path: Path) -> None:
    stream = sip(1) + sip(2, b"body") + b"\r\n\r\n" + sip(3)
    got, problems = tcp_messages(tmp_path, tcp_frames([(0, stream)]))
    assert not problems
    assert [p.data for p in got] == [sip(1), sip(2, b"body"), sip(3)]
    assert {p.transport for p in got} == {"tcp"} and got[0].frame == 2


def test_tcp_one_message_over_three_segments(tmp_path: Path) -> None:
    m = sip(1, b"x" * 50)
    got, _ = tcp_messages(tmp_path, tcp_frames([(0, m[:20]), (20, m[20:60]), (60, m[60:])]))
    assert [(p.frame, p.data) for p in got] == [(4, m)]


def test_tcp_out_of_order_and_retransmission(tmp_path: Path) -> None:
    s = sip(1) + sip(2)
    cut = len(sip(1)) + 10
    frames = tcp_frames([(cut, s[cut:]), (0, s[:cut]), (0, s[:cut]), (cut - 5, s[cut - 5:])])
    reader = CaptureReader(pcap(tmp_path, frames))
    got = list(reader)
    assert [(p.frame, p.data) for p in got] == [(3, sip(1)), (3, sip(2))]
    assert reader.stats.tcp_retransmissions == 2


def test_tcp_gap_is_reported_and_stream_resyncs() -> None:
    sink = Sink(CaptureStats())
    tcp = TcpReassembler(sink, max_buffer=200)
    seg = lambda rel, data: tcp_packet(A, 40000, B, 5060, data, seq=1001 + rel)  # noqa: E731
    m1, m2, m3 = sip(1), sip(2, b"y" * 100), sip(3)
    at = len(m1) + 80  # m2[40:80] is never captured
    frames = [tcp_packet(A, 40000, B, 5060, seq=1000, flags="S"), seg(0, m1 + m2[:40]),
              seg(at, m2[80:]), seg(at + len(m2) - 80, m3)]
    for n, f in enumerate(frames, 1):
        tcp.segment(n, 0.0, A, B, 4, f, 20, len(f))
    msgs = [p for p in sink.out if isinstance(p, Payload)]
    assert [p.data for p in msgs] == [m1, m3]
    assert [p.rule for p in sink.out if isinstance(p, CaptureProblem)] == ["tcp.gap"]


def test_tcp_framing_error_resyncs_at_next_message(tmp_path: Path) -> None:
    no_cl = b"OPTIONS sip:b@h SIP/2.0\r\nCall-ID: bad\r\n\r\n"
    got, problems = tcp_messages(tmp_path, tcp_frames([(0, sip(1) + no_cl + sip(2))]))
    assert [p.data for p in got] == [sip(1), sip(2)]
    assert [p.rule for p in problems] == ["tcp.sip.framing"]


def test_tcp_midstream_pickup_hunts_for_a_start_line(tmp_path: Path) -> None:
    tail = sip(1)[30:]
    got, _ = tcp_messages(tmp_path, tcp_frames([(0, tail), (len(tail), sip(2))], syn=False))
    assert [p.data for p in got] == [sip(2)]


def test_tcp_non_sip_stream_and_pure_acks_keep_no_messages(tmp_path: Path) -> None:
    tls = tcp_frames([(0, b"\x16\x03\x01\x02\x00" + b"\x01" * 500)])
    acks = [tcp_packet(B, 5060, A, 40000, seq=9, flags="A")] * 5
    reader = CaptureReader(pcap(tmp_path, tls + acks))
    assert list(reader) == []
    assert reader.stats.tcp_streams == 1


def test_tcp_fin_rst_and_new_connection_on_same_ports(tmp_path: Path) -> None:
    first = tcp_frames([(0, sip(1))]) + [tcp_packet(A, 40000, B, 5060, seq=1001 + len(sip(1)), flags="FA")]
    second = tcp_frames([(0, sip(2)[:30])], isn=5000) + [tcp_packet(B, 5060, A, 40000, seq=1, flags="R")]
    third = tcp_frames([(0, sip(3))], isn=9000)
    got, problems = tcp_messages(tmp_path, first + second + third)
    assert [p.data for p in got] == [sip(1), sip(3)] and not problems


def test_sip_over_websocket(tmp_path: Path) -> None:
    upgrade = (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: x\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n")
    m = sip(1)
    key = b"\x01\x02\x03\x04"
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(m))
    frame = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(m)) + key + masked
    half = bytes([0x01, len(b"SIP/2.0 ")]) + b"SIP/2.0 "  # text, not final (unmasked)
    rest = b"200 OK\r\nContent-Length: 0\r\n\r\n"
    cont = bytes([0x80, len(rest)]) + rest
    ping = bytes([0x89, 0])
    stream = upgrade + frame + ping + half + cont
    got, problems = tcp_messages(tmp_path, tcp_frames([(0, stream[:100]), (100, stream[100:])]))
    assert not problems
    assert [(p.transport, p.data) for p in got] == [("ws", m), ("ws", b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")]


def test_plain_http_and_non_sip_websocket_are_ignored(tmp_path: Path) -> None:
    http = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n" + bytes([0x81, 3]) + b"abc"
    assert items(pcap(tmp_path, tcp_frames([(0, http)])))[0] == []


# -- SCTP --------------------------------------------------------------------------------------

def _sctp(chunks: bytes) -> bytes:
    return ipv4_packet(A, B, 132, struct.pack("!HHII", 5060, 5060, 1, 0) + chunks)


def _data_chunk(tsn: int, flags: int, data: bytes) -> bytes:
    length = 16 + len(data)
    return struct.pack("!BBHIHHI", 0, flags, length, tsn, 0, 0, 0) + data + b"\0" * (-length % 4)


def test_sctp_data_chunks_fragmented_and_retransmitted(tmp_path: Path) -> None:
    m = sip(1, b"z" * 33)
    frames = [_sctp(_data_chunk(1, 2, m[:50])), _sctp(_data_chunk(2, 1, m[50:])),
              _sctp(_data_chunk(2, 1, m[50:])), _sctp(_data_chunk(3, 3, sip(2)) + _data_chunk(4, 3, b"\x01binary"))]
    got, problems = items(pcap(tmp_path, frames))
    assert not problems
    assert [(p.transport, p.frame, p.data) for p in got] == [("sctp", 2, m), ("sctp", 4, sip(2))]


# -- the corpus, compared with tshark ------------------------------------------------------------

def _tshark_counts() -> dict[str, collections.Counter[str]]:
    counts: dict[str, collections.Counter[str]] = {}
    rows = (CORPUS / "INDEX.tsv").read_text().splitlines()
    for row in rows[1:]:
        cols = row.split("\t")
        counts[cols[0]] = collections.Counter(
            {m.group(1): int(m.group(2)) for m in re.finditer(r"([A-Z0-9]+)x(\d+)", cols[7])})
    return counts


_START = re.compile(rb"([A-Za-z]+) \S+ SIP/2\.0\r?\n|SIP/2\.0 (\d{3})")

CORPUS_FILES = corpus_params(lambda: sorted(p.name for p in CORPUS.glob("*") if p.suffix in (".pcap", ".cap", ".pcapng")),
                             "pcaps")
#: Files tshark reads that we do not; see the report.
NOT_PCAP = {"c07-sip-r2.cap": "Microsoft NetMon 2.x"}


@pytest.mark.corpus("pcaps")
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_sip_messages_match_tshark(name: str) -> None:
    path = CORPUS / name
    if name in NOT_PCAP:
        with pytest.raises(PcapError, match=NOT_PCAP[name]):
            CaptureReader(path)
        return
    reader = CaptureReader(path)
    seen: collections.Counter[str] = collections.Counter()
    problems = []
    for item in reader:
        if isinstance(item, CaptureProblem):
            problems.append(item)
            continue
        m = _START.match(item.data)
        if m:
            seen[(m.group(1) or m.group(2)).decode()] += 1
    assert not problems
    assert seen == _tshark_counts()[name]
    assert reader.stats.packets > 0


# -- bounded state and output -------------------------------------------------------------------

def test_tcp_state_does_not_grow_with_the_number_of_connections() -> None:
    sink = Sink(CaptureStats())
    tcp = TcpReassembler(sink, max_streams=50)
    n = 0
    for port in range(1000, 1400):
        m = sip(port)
        segs = [tcp_packet(A, port, B, 5060, seq=0, flags="S"), tcp_packet(A, port, B, 5060, m, seq=1),
                tcp_packet(A, port, B, 5060, seq=1 + len(m), flags="FA")]
        if port % 2:  # half never close: the stream table evicts them
            segs.pop()
        for seg in segs:
            n += 1
            tcp.segment(n, float(n), A, B, 4, seg, 20, len(seg))
    assert len(tcp.streams) <= 50
    assert sink.stats.tcp_messages == 400 and sink.stats.tcp_streams == 400


def test_pending_fragments_are_bounded() -> None:
    from qa.capture.decode import Reassembler
    sink = Sink(CaptureStats())
    frags = Reassembler(sink, max_pending=10)
    for ident in range(100):
        frags.add((b"k", ident, 17), ident, 0.0, 0, b"x" * 8, True)
    assert len(frags.pending) == 10
    assert sum(1 for p in sink.out if p.rule == "ip.frag.overflow") == 90


def test_repeated_problems_are_capped_and_summed_up(tmp_path: Path) -> None:
    bad = bytes([0x41]) + IP4[1:]
    reader = CaptureReader(pcap(tmp_path, [bad] * 150))
    problems = list(reader)
    assert len(problems) == 101
    assert problems[-1].rule == "capture.suppressed" and "50 more 'ip.bad-header'" in problems[-1].reason
    assert reader.stats.problems == 150 and reader.stats.packets == 150
