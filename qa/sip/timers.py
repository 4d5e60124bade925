"""What sans-I/O SIP state machines hand to their I/O shell: send bytes, start or cancel
a timer. The carrier (UAS) and the customer (UAC) share these types and the RFC 3261
timer values.

The transaction machines of RFC 3261 §17 (Timers A-K) and the dialog timers above them
never sleep: they return ``StartTimer``/``CancelTimer`` actions, and the shell calls
their ``on_timer(key, now)`` when one fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

__all__ = ["Action", "Addr", "CancelTimer", "Send", "StartTimer", "T1", "T2", "T4"]

Addr = tuple[str, int]

# RFC 3261 §17.1.1.1 and Table 4
T1 = 0.5     # RTT estimate
T2 = 4.0     # maximum retransmit interval of non-INVITE requests and INVITE responses
T4 = 5.0     # maximum time a message stays in the network


@dataclass(frozen=True)
class Send:
    """Put ``data`` on the wire towards ``addr``: over ``transport`` ("udp"/"tcp"), or,
    when None, over the shell's one connection (the customer's UDP socket or stream)."""

    data: bytes
    addr: Addr
    transport: str | None = None


@dataclass(frozen=True)
class StartTimer:
    """Call ``on_timer(key)`` after ``delay`` seconds (replaces a pending timer of that key)."""

    key: Hashable
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    """Forget the pending timer ``key``."""

    key: Hashable


#: What a transaction hands its shell (the carrier's and the customer's own actions add to it).
Action = Send | StartTimer | CancelTimer
