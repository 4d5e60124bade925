"""Capture: pcap/pcapng reading (one streaming pass) and live capture (DESIGN §9).

The analysis engine uses :func:`read_payloads` / :class:`CaptureReader`: UDP datagrams
(after IP reassembly) and complete SIP messages from TCP, SCTP and WebSocket streams,
as :class:`Payload`, with :class:`CaptureProblem` records in-line for damage found.
"""

from qa.capture.live import Capture, build_bpf
from qa.capture.model import CaptureProblem, CaptureStats, CaptureUnavailable, Payload, PcapError
from qa.capture.reader import CaptureReader, read_payloads

__all__ = [
    "Capture", "CaptureProblem", "CaptureReader", "CaptureStats", "CaptureUnavailable",
    "Payload", "PcapError", "build_bpf", "read_payloads",
]
