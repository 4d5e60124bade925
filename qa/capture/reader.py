"""The capture layer's front door: a file in, payloads and problems out (DESIGN §9).

One streaming pass, bounded memory (fragment, TCP and SCTP state only for what is in
flight), never raising once open: whatever is wrong with the bytes becomes a
:class:`CaptureProblem` in the stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from qa.capture.decode import Decoder
from qa.capture.model import CaptureProblem, CaptureStats, Payload
from qa.capture.pcapfile import FrameSource
from qa.capture.sink import Sink

Item = Payload | CaptureProblem


class CaptureReader:
    """A pcap/pcapng file read as payloads: ``for item in CaptureReader(path): ...``.

    The constructor checks the file header and raises :class:`PcapError` (a
    ``BadInput``: one line naming the file, exit 2) if it is not a capture. ``stats``
    is filled while iterating (packets/bytes every 4096 frames, for progress) and
    complete when iteration ends.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.source = FrameSource(self.path)
        self.stats = CaptureStats()

    def __iter__(self) -> Iterator[Item]:
        return self._run()

    def _run(self) -> Iterator[Item]:
        stats = self.stats = CaptureStats()
        sink = Sink(stats)
        out = sink.out
        decoder = Decoder(sink)
        decode = decoder.frame
        linktypes: dict[int, int] = stats.linktypes
        n = size = 0
        ts = 0.0
        try:
            for rec in self.source:
                if rec.__class__ is not tuple:  # damage in the file itself: capped like the rest
                    sink.problem(rec.frame, rec.time, rec.rule, rec.reason, rec.severity)  # type: ignore[union-attr]
                    yield from out
                    out.clear()
                    continue
                n, ts, lt, data = rec  # type: ignore[misc]
                size += len(data)
                if not n & 0xFFF:  # now and then, for progress bars
                    stats.packets, stats.bytes, stats.last_time = n, size, ts
                if n == 1:
                    stats.first_time = ts
                linktypes[lt] = linktypes.get(lt, 0) + 1
                try:
                    payload = decode(n, ts, lt, data)
                except Exception as exc:  # noqa: BLE001 - the reader must never crash
                    payload = None
                    sink.problem(n, ts, "capture.internal-error",
                                 f"frame {n}: not decoded ({type(exc).__name__}: {exc})", "error")
                if payload is not None:
                    yield payload
                if out:
                    yield from out
                    out.clear()
            decoder.finish(n, ts)
            yield from out
            out.clear()
            yield from sink.summary(n, ts)
        finally:
            stats.packets, stats.bytes = n, size
            if n:
                stats.last_time = ts


def read_payloads(path: str | Path) -> Iterator[Item]:
    """Every payload and problem of the capture at ``path``, in one streaming pass.

    Raises :class:`PcapError` at once (not on first ``next``) if the file is not a capture.
    """
    return iter(CaptureReader(path))
