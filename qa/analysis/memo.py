"""What keeps a long streaming pass cheap: a bounded memo for pure functions of bytes
(strict checks, SDP parsing) and a garbage collector that runs less often.

Equal bytes give equal results (the functions memoised here read nothing but their
argument), so a hit is provably the same answer: SIP retransmissions (RFC 3261 §17)
and the SDP bodies a load generator repeats call after call are checked once. The table
is cleared when full, so memory stays bounded.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable, Generic, TypeVar

__all__ = ["Memo", "fewer_collections"]

T = TypeVar("T")


class Memo(Generic[T]):
    """``Memo(func, size)(data)`` is ``func(data)``, remembered for up to ``size`` inputs."""

    __slots__ = ("func", "size", "table", "hits")

    def __init__(self, func: Callable[[bytes], T], size: int = 512) -> None:
        self.func = func
        self.size = size
        self.table: dict[bytes, T] = {}
        self.hits = 0

    def __call__(self, data: bytes) -> T:
        table = self.table
        try:
            result = table[data]
        except KeyError:
            result = self.func(data)
            if len(table) >= self.size:
                table.clear()
            table[data] = result
            return result
        self.hits += 1
        return result


@contextmanager
def fewer_collections(threshold0: int = 50_000) -> Iterator[None]:
    """Run the cyclic GC less often while a capture streams through.

    Every message allocates many short-lived objects that reference counting frees
    (few cycles); with the default threshold (700) the collector runs every few messages
    and its full collections re-scan every kept summary, ~15 % of the CPU time on a
    200k-packet capture. Cycles are still collected, every ``threshold0`` allocations;
    the previous thresholds are restored afterwards.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], threshold0), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
