"""Common types of the transports."""

from __future__ import annotations

from typing import Callable, Protocol

Addr = tuple[str, int]


class Transport(Protocol):
    name: str
    local: Addr

    def send(self, data: bytes, addr: Addr) -> None: ...

    async def close(self) -> None: ...


Handler = Callable[[bytes, Addr, "Transport"], None]
