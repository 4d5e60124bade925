"""Where the decoders put what they produce: payloads and (rate-limited) problems."""

from __future__ import annotations

from qa.capture.model import CaptureProblem, CaptureStats, Payload

#: Problems of one rule reported individually before the rest are only counted.
PROBLEM_CAP = 100


class Sink:
    """Collects the output of one frame's decoding, in order, for the reader to yield.

    A damaged capture can raise the same problem on every packet (a small snaplen, a
    stream of garbage); after ``cap`` records of one rule the rest are counted and
    summed up by :meth:`summary` at the end, so the output stays bounded.
    """

    __slots__ = ("out", "stats", "cap", "_counts")

    def __init__(self, stats: CaptureStats, cap: int = PROBLEM_CAP) -> None:
        self.out: list[Payload | CaptureProblem] = []
        self.stats = stats
        self.cap = cap
        self._counts: dict[str, int] = {}

    def problem(self, frame: int, time: float, rule: str, reason: str,
                severity: str = "warning") -> None:
        """Record one problem (kept if fewer than ``cap`` of its rule were kept)."""
        count = self._counts.get(rule, 0) + 1
        self._counts[rule] = count
        self.stats.problems += 1
        if count <= self.cap:
            self.out.append(CaptureProblem(frame, time, rule, reason, severity))

    def summary(self, frame: int, time: float) -> list[CaptureProblem]:
        """One record per rule whose problems were only counted."""
        return [CaptureProblem(frame, time, "capture.suppressed",
                               f"{count - self.cap} more '{rule}' problems not listed "
                               f"({count} in all)", "warning")
                for rule, count in self._counts.items() if count > self.cap]
