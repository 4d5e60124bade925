"""Timer requests that sans-I/O SIP state machines hand to their I/O shell.

The transaction machines of RFC 3261 §17 (Timers A-K) and the dialog timers above them
never sleep: they return ``StartTimer``/``CancelTimer`` actions, and the shell calls
their ``on_timer(key, now)`` when one fires. The carrier (UAS) and the customer (UAC)
share these two types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable


@dataclass(frozen=True)
class StartTimer:
    """Call ``on_timer(key)`` after ``delay`` seconds (replaces a pending timer of that key)."""

    key: Hashable
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    """Forget the pending timer ``key``."""

    key: Hashable
