"""The error types every front end turns into one line and an exit code (DESIGN §7).

A ``BadInput`` is the user's to fix (bad file, unknown suite, port taken, tool missing):
exit 2, one line naming the file/field. Anything else that is a ``VoipqaError`` is an
operation that failed (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass


class VoipqaError(Exception):
    """An operation failed; the message is one line a user can act on."""

    exit_code = 1


class BadInput(VoipqaError):
    """The input is wrong: bad YAML, unknown profile/suite, port taken, tool missing."""

    exit_code = 2


class MissingTool(BadInput):
    """An external program voipqa drives is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"{tool} not found: install the Debian package '{package}' "
                         f"(apt-get install {package}) or run ./bootstrap")
        self.tool = tool
        self.package = package


class ConfigError(BadInput):
    """A configuration file is invalid; names the file and the field."""

    def __init__(self, path: object, field: str, problem: str) -> None:
        where = f"{path}: {field}" if field else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.field = field
        self.problem = problem


class ParseError(ValueError):
    """Bytes that do not follow the grammar (SIP, SDP, RTP, pcap).

    The only exception the sans-I/O parsers raise. ``offset`` is the byte position
    where the problem was found, ``reason`` says what the grammar wanted.
    """

    def __init__(self, reason: str, offset: int = 0) -> None:
        super().__init__(f"offset {offset}: {reason}")
        self.reason = reason
        self.offset = offset


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a message that still parsed far enough to be read.

    What the strict checkers (``qa.sip.strict``, ``qa.sdp.strict``) return: ``offset``
    is the byte position in the message, ``rule`` a stable identifier
    (e.g. ``sip.cseq.method-mismatch``), ``reason`` the sentence a user reads.
    """

    offset: int
    rule: str
    reason: str
    severity: str = "error"  # error | warning
