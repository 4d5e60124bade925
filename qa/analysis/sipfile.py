"""``voipqa sip check``: strict RFC 3261 / RFC 8866 check of raw SIP message files.

One SIP message per file, exact bytes (as in the RFC 4475 torture corpus). Each file
gets :func:`qa.sip.strict.check_message` and, when its body is ``application/sdp``,
:func:`qa.sdp.strict.check_sdp` with offsets shifted into the message. Findings use the
schema shared with ``voipqa pcap check`` (:class:`qa.analysis.findings.Finding`;
``frame`` and ``time`` are ``None`` for a file).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from qa.analysis.findings import Finding
from qa.errors import BadInput
from qa.sdp.strict import check_sdp
from qa.sip import lenient
from qa.sip.strict import check_message

__all__ = ["FileReport", "check_bytes", "check_files"]


@dataclass
class FileReport:
    """The findings for one message file."""

    path: Path
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Findings of severity ``error`` (what makes the command exit 1)."""
        return sum(1 for f in self.findings if f.severity == "error")

    def to_json(self) -> dict[str, object]:
        return {"file": str(self.path), "findings": [f.to_json() for f in self.findings]}


def check_bytes(data: bytes) -> list[Finding]:
    """Strict SIP findings plus SDP findings of an ``application/sdp`` body, by offset."""
    msg = lenient.read(data)
    call_id = msg.call_id if msg is not None else None
    findings = [Finding(None, None, call_id, p.severity, p.rule, p.reason, p.offset)
                for p in check_message(data)]
    if msg is not None and msg.content_type == "application/sdp" and msg.body:
        base = msg.body_offset
        findings += [Finding(None, None, call_id, p.severity, p.rule, p.reason, base + p.offset)
                     for p in check_sdp(msg.body)]
    findings.sort(key=lambda f: f.offset or 0)
    return findings


def _read(path: Path) -> bytes:
    """The file's bytes; ``BadInput`` (one line naming the file) if it cannot be a message."""
    if path.is_dir():
        raise BadInput(f"{path}: is a directory, not a SIP message file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not data:
        raise BadInput(f"{path}: empty file, not a SIP message")
    return data


def check_files(paths: Iterable[str | Path]) -> list[FileReport]:
    """Check each file (all are read first, so a bad path fails before any output)."""
    loaded = [(Path(p), _read(Path(p))) for p in paths]
    return [FileReport(path, check_bytes(data)) for path, data in loaded]
