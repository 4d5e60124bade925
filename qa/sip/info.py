"""DTMF digits carried in SIP INFO bodies: one decoder for every witness.

The carrier hears the digits a customer sends by INFO and the analyzer reads them from the
capture; both call :func:`info_digit`, so the same bytes are the same digit to both.

Two body formats are in use (neither is a standard: RFC 6086 §1 left DTMF to INFO
packages that vendors never agreed on):

* ``application/dtmf-relay`` (Cisco, SIPp, most SBCs): lines ``Signal=5`` /
  ``Duration=160``. The signal is a digit (``0-9 * # A-D``, case-insensitive) or its
  RFC 4733 §3.2 event code (``10`` is ``*``, ``11`` is ``#``, ``12``-``15`` are ``A``-``D``).
* ``application/dtmf``: the body is the signal alone, in the same two spellings.

Anything else (another content type, a signal out of range, two signals on one line) is
no digit: ``None``, never an exception.
"""

from __future__ import annotations

__all__ = ["EVENT_DIGITS", "info_digit"]

#: RFC 4733 §3.2 event codes 0-15, in order. (``qa.rtp.dtmf.EVENT_DIGITS`` is the same
#: table for RTP events; the protocol packages do not import each other, a test pins both.)
EVENT_DIGITS = "0123456789*#ABCD"


def _signal(value: str) -> str | None:
    """A ``Signal`` value: one digit character, or an event code 0-15."""
    value = value.strip()
    if len(value) == 1 and value.upper() in EVENT_DIGITS:
        return value.upper()
    if value.isascii() and value.isdigit() and len(value) <= 2 and int(value) < len(EVENT_DIGITS):
        return EVENT_DIGITS[int(value)]
    return None


def info_digit(content_type: str | None, body: bytes) -> str | None:
    """The digit an INFO request's body carries, or None (see the module docstring)."""
    if not content_type or not body:
        return None
    ctype = content_type.split(";", 1)[0].strip().lower()
    text = body.decode("latin-1")
    if ctype == "application/dtmf":
        return _signal(text)
    if ctype != "application/dtmf-relay":
        return None
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip().lower() == "signal":
            return _signal(value)
    return None
