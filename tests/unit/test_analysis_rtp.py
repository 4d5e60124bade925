"""RTP stream statistics (RFC 3550), the E-model (ITU-T G.107) and RFC 4733 digits,
against hand-computed values."""

import pytest

from qa.analysis import mos
from qa.analysis.rtp import MediaRegistry, MediaTarget, RtpStream, is_rtcp, looks_like_rtp
from qa.rtp import DtmfEvent, RtpPacket

PCMU_TE = {0: ("PCMU", 8000), 101: ("telephone-event", 8000)}


def stream(rtpmap=None, direction="forward") -> RtpStream:
    return RtpStream("10.0.0.1:4000", "10.0.0.2:5000", 0x1234,
                     MediaTarget("c1", direction, rtpmap or PCMU_TE, 20))


def pkt(seq: int, ts: int = 0, pt: int = 0, payload: bytes = b"\xff" * 160) -> bytes:
    return bytes(RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=0x1234, payload=payload))


def feed(st: RtpStream, seqs, step=0.02) -> RtpStream:
    for i, seq in enumerate(seqs):
        st.feed(i + 1, 100.0 + i * step, pkt(seq, seq * 160))
    return st


def test_jitter_hand_computed():
    # arrivals 0, 20, 45, 60 ms; timestamps every 160 (20 ms): D = 0, +40, -40 units
    st = stream()
    for i, t in enumerate((0.0, 0.020, 0.045, 0.060)):
        st.feed(i + 1, 1000.0 + t, pkt(i, i * 160))
    # J1 = 0; J2 = 40/16 = 2.5; J3 = 2.5 + (40 - 2.5)/16 = 4.84375 units of 1/8000 s
    assert st.jitter == pytest.approx(4.84375)
    assert st.jitter_ms == pytest.approx(4.84375 / 8)
    assert st.summary().max_jitter_ms == pytest.approx(0.605, abs=1e-3)


def test_jitter_uses_the_payload_types_clock_rate():
    st = stream({9: ("G722", 8000), 96: ("opus", 48000)})
    for i, t in enumerate((0.0, 0.020, 0.045)):
        st.feed(i + 1, t + 5, pkt(i, i * 960, pt=96))
    assert st.jitter == pytest.approx(240 / 16)       # D = 0.025*48000 - 960 = 240
    assert st.jitter_ms == pytest.approx(15 / 48)


def test_loss_and_expected():
    st = feed(stream(), [0, 1, 2, 4, 5])
    assert (st.total_expected, st.received, st.lost, st.seq_errors) == (6, 5, 1, 0)
    assert st.loss_percent == pytest.approx(100 / 6)


def test_sequence_wrap_is_not_loss():
    st = feed(stream(), [65534, 65535, 0, 1])
    assert (st.total_expected, st.lost, st.seq_errors) == (4, 0, 0)


def test_duplicate_and_reorder_are_sequence_errors():
    dup = feed(stream(), [1, 2, 2, 3])
    assert (dup.lost, dup.seq_errors) == (0, 1)
    late = feed(stream(), [1, 3, 2, 4])
    assert (late.lost, late.seq_errors) == (0, 1)


def test_large_jump_restarts_the_count():
    st = feed(stream(), [10, 11, 13, 20000, 20001])
    assert st.seq_errors == 1
    assert st.lost == 1 and st.total_expected == 6


def test_dtmf_digits_and_unexpected_payload_type():
    st = stream()
    n = 0
    for ts, digit in ((8000, "1"), (16000, "2")):
        for k, end in enumerate((False, False, True, True, True)):
            n += 1
            ev = bytes(DtmfEvent.for_digit(digit, end=end, duration=160 * (k + 1)))
            st.feed(n, 200.0 + n * 0.02, pkt(n, ts, pt=101, payload=ev))
    n += 1
    st.feed(n, 200.0 + n * 0.02, pkt(n, 99999, pt=18))
    s = st.summary()
    assert s.dtmf == "12"
    assert s.unexpected_payload_types == [18]
    assert s.payload_types == {101: 10, 18: 1}


def test_summary_codec_and_mos():
    s = feed(stream(), range(100)).summary()
    assert s.codec == "PCMU" and s.packets == 100 and s.lost == 0
    assert s.mos == pytest.approx(4.39, abs=0.01)


def test_sniffers():
    assert looks_like_rtp(pkt(1)) and not looks_like_rtp(b"INVITE sip:a SIP/2.0\r\n")
    assert is_rtcp(b"\x80\xc8\x00\x06" + bytes(24)) and not is_rtcp(pkt(1))


def test_registry_symmetric_rtp_and_forget():
    reg = MediaRegistry()
    key = reg.learn("10.0.0.2", 5000, MediaTarget("c1", "forward", PCMU_TE))
    assert reg.lookup("10.0.0.2", 5000, "x", 1).direction == "forward"
    # a packet *from* the announced address flows the other way (RFC 4961)
    assert reg.lookup("10.9.9.9", 7000, "10.0.0.2", 5000).direction == "backward"
    reg.learn("10.0.0.2", 5000, MediaTarget("c2", "forward", PCMU_TE))
    reg.forget("c1", [key])   # c2 took the address over: kept
    assert reg.lookup("10.0.0.2", 5000, "x", 1).call_id == "c2"
    reg.forget("c2", [key])
    assert reg.lookup("10.0.0.2", 5000, "x", 1) is None and len(reg) == 0


# -- E-model ------------------------------------------------------------------------------
def test_r_to_mos_g107_annex_b():
    assert mos.mos_from_r(93.2) == pytest.approx(4.4093, abs=1e-4)
    assert mos.mos_from_r(-5) == 1.0 and mos.mos_from_r(120) == 4.5
    assert mos.mos_from_r(50) == pytest.approx(1 + 1.75 + 50 * -10 * 50 * 7e-6)


def test_packet_loss_impairment_g711_plc():
    # Ie,eff = 0 + 95 * 5 / (5 + 25.1) = 15.7807; R = 93.2 - 15.7807
    assert mos.r_factor(5.0, 0.0, "PCMA") == pytest.approx(77.4193, abs=1e-3)
    assert mos.mos_from_r(77.4193) == pytest.approx(3.9228, abs=1e-3)


def test_delay_impairment():
    # Id(200) = 0.024*200 + 0.11*(200-177.3) = 7.297
    assert mos.r_factor(0.0, 200.0, "PCMU") == pytest.approx(93.2 - 7.297, abs=1e-3)
    assert mos.r_factor(0.0, 100.0, "PCMU") == pytest.approx(93.2 - 2.4)


def test_codec_impairments_and_unknown_codec():
    assert mos.r_factor(0.0, 0.0, "G729") == pytest.approx(93.2 - 11)
    assert mos.impairment("speex").bpl == 4.3          # G.711 without PLC: conservative
    assert mos.mos(0.0, 0.0, "PCMU") == pytest.approx(4.39, abs=0.005)  # 40 ms delay estimate
    assert mos.mos(20.0, 0.0, "PCMU") < 3.0
