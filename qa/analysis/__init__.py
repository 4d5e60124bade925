"""Capture analysis (DESIGN §9): one streaming pass, rules over SIP, SDP and RTP.

``qa.analysis.engine.analyze(path) -> Report``; findings and their severity table in
:mod:`qa.analysis.findings`; JSON in :mod:`qa.report.pcap` (``docs/pcap-json.md``).
"""
