"""``--second-opinion tshark`` on the shared corpus: tshark runs, the comparison is sane.

Facts from corpus/pcaps/INDEX.tsv: tshark 4.0.17 flags frame 2 of sip_sctp.pcap
("Trailing stray characters" on the SIP-I multipart body) and nothing at the SIP layer of
the others (its T.38, TCP and DNS warnings are not SIP frames).
"""

import json
import time

import pytest

from qa.analysis.engine import analyze
from qa.analysis.tshark import parse_fields, second_opinion, tshark_argv
from qa.capture import PcapError
from qa.cli import main
from qa.tools import have_tool
from tests.corpus import CORPUS

CORPUS = CORPUS / "pcaps"
FILES = sorted(p for p in CORPUS.glob("*") if p.suffix in (".pcap", ".pcapng", ".cap"))

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not have_tool("tshark"), reason="tshark not installed")]


def test_parse_fields_drops_tcp_sequence_experts():
    text = ("2\t6291456\x1f6291456\t83886080\x1f33554432\tTrailing stray characters\x1fPrevious segment not captured\t\n"
            "7\t6291456\t33554432\tRetransmission\t\n9\t\t\t\tMalformed\n")
    assert parse_fields(text) == {2: ["Trailing stray characters"], 9: ["Malformed Packet"]}


def test_argv_decodes_voipqa_sip_ports_as_sip():
    argv = tshark_argv("x.pcap", [5060, 6060])
    assert argv[argv.index("-d") + 1] == "udp.port==6060,sip" and "tcp.port==6060,sip" in argv
    assert "tcp.port==5060,sip" not in argv


@pytest.mark.corpus("pcaps")
def test_corpus_second_opinion():
    started = time.monotonic()
    seen = {}
    for path in FILES:
        try:
            report = analyze(path)
        except PcapError:
            continue
        comparison = second_opinion(report, timeout=120)
        seen[path.name] = comparison
        assert not (comparison.both.keys() & comparison.only_tshark.keys())
        assert not (comparison.both.keys() & comparison.only_voipqa.keys())
    assert 2 in seen["sip_sctp.pcap"].only_tshark or 2 in seen["sip_sctp.pcap"].both
    for clean in ("sip-rtp-g711.pcap", "sip-over-tcp.pcap", "register-invite-reinvite-bye.pcap"):
        assert not seen[clean].only_tshark and not seen[clean].only_voipqa and not seen[clean].both
    assert time.monotonic() - started < 120


@pytest.mark.corpus("pcaps")
def test_cli_second_opinion_json(capsys):
    code = main(["pcap", "check", str(CORPUS / "sip_sctp.pcap"), "--json", "--second-opinion", "tshark"])
    doc = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert set(doc["second_opinion"]) == {"file", "only_voipqa", "only_tshark", "both"}
