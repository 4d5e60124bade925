"""A bounded memo for pure functions of bytes (strict checks, SDP parsing).

Equal bytes give equal results (the functions memoised here read nothing but their
argument), so a hit is provably the same answer: SIP retransmissions (RFC 3261 §17)
and the SDP bodies a load generator repeats call after call are checked once. The table
is cleared when full, so memory stays bounded.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

__all__ = ["Memo"]

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
