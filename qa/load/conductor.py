"""The master's clock of a load run: the offered rate each second, when the load ends,
and the drain that lets every call finish before the run is closed.

States: ``waiting`` (workers joining) → ``running`` (the profile's shape, second by
second) → ``draining`` (rate 0, every SIPp finishes its calls and sends a final report)
→ ``done`` (files closed, ``end`` event written; the Locust shape then returns None and
Locust quits). The load ends at the shape's end, at the first broken window when the
profile says ``stop_on_break``, when every SIPp has stopped, or on request (Ctrl-C or
SIGTERM to ``voipqa load run`` reaches the master as SIGUSR1).

Plain Python with an injected ``send`` and clock: the Locust glue wires it to
``runner.send_message`` and a greenlet; tests drive it with lists.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from qa.load import model
from qa.load.aggregate import Aggregator
from qa.load.criteria import BreakWatch, plan
from qa.load.profile import LoadProfile
from qa.load.shape import Shape

#: Extra seconds a drain may take beyond the longest call (hold + call timeout).
DRAIN_MARGIN_S = 10.0
#: How long the SIPps of the run may take to start.
READY_WAIT_S = 60.0
#: Seconds kept in memory beyond the longest judged window (late seconds, settle).
KEEP_SLACK_S = 30

Send = Callable[[str, dict[str, Any]], None]


class Conductor:
    """Turns the profile's shape into per-SIPp rates and decides when the load is over."""

    def __init__(self, run_dir: Path, profile: LoadProfile, *, total_sipps: int, send: Send,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir = Path(run_dir)
        self.profile = profile
        self.shape: Shape = profile.shape()
        self.total_sipps = total_sipps
        self.send = send
        self.clock = clock
        self.state = "waiting"
        self.t0: float | None = None
        self.drain_started: float | None = None
        self.stop_reason: str | None = None
        self.errors: list[str] = []
        self.ready_sipps: set[str] = set()
        self.created = clock()
        self.watch = BreakWatch(profile) if profile.judging.stop_on_break else None
        self.aggregator = Aggregator(self.run_dir, self._offered, keep_s=self._kept(profile))

    def _kept(self, profile: LoadProfile) -> int:
        """Seconds the live judge needs in memory: its longest window and some slack (none
        without stop_on_break)."""
        if self.watch is None:
            return 0
        return max((w.end - w.start for w in plan(profile)), default=0) + KEEP_SLACK_S

    # -- events -----------------------------------------------------------------------------
    def event(self, name: str, *, at: float | None = None, **data: Any) -> None:
        model.append_event(self.run_dir / model.EVENTS_FILE, self.elapsed() if at is None else at, name, **data)

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else self.clock() - self.t0

    def _offered(self, t: int) -> float:
        """The mean offered rate of the second that ends at ``t``."""
        return self.shape.mean_rate(max(0.0, t - 1.0), float(t))

    # -- inputs -----------------------------------------------------------------------------
    def ready(self, sipp: str) -> None:
        """A SIPp has started (at rate 0) and waits for the run's clock; from now on every
        second waits for its report."""
        self.ready_sipps.add(sipp)
        self.aggregator.sipps.add(sipp)

    def start(self) -> None:
        self.t0 = self.clock()
        self.state = "running"
        self.event("start", sipps=self.total_sipps, duration_s=self.shape.duration_s)
        self.send("voipqa:start", {})
        self._send_rate(0)

    def on_report(self, report: dict[str, Any]) -> None:
        self.aggregator.add(report)

    def on_error(self, message: str, worker: str) -> None:
        """A SIPp that could not start or died: recorded; all of them gone ends the load."""
        self.errors.append(message)
        self.event("generator-error", worker=worker, message=message)

    def request_stop(self, reason: str) -> None:
        if self.state in ("waiting", "running"):
            self.stop_reason = reason
            self.event("stop-requested", reason=reason)
            if self.state == "waiting":
                self.state = "done"
                self._close()
            else:
                self._drain(reason)

    # -- the clock --------------------------------------------------------------------------
    def tick(self) -> list[model.Second]:
        """Called about once a second (more often while waiting); returns the seconds
        written by this tick."""
        if self.state == "waiting":
            self._waiting()
            return []
        if self.state == "done":
            return []
        now = self.elapsed()
        written = self.aggregator.flush(int(now))
        if self.state == "running":
            self._running(now, written)
        elif self.state == "draining":
            self._draining()
        return written

    def _waiting(self) -> None:
        """Start when every SIPp is ready; after READY_WAIT_S with the ones that are; end
        the run when none could start."""
        late = self.clock() - self.created > READY_WAIT_S
        settled = len(self.ready_sipps) + len(self.errors) >= self.total_sipps  # nobody else will come
        if len(self.ready_sipps) >= self.total_sipps or ((late or settled) and self.ready_sipps):
            if len(self.ready_sipps) < self.total_sipps:
                self.event("start-partial", ready=len(self.ready_sipps), expected=self.total_sipps)
            self.start()
        elif settled or late:
            self.request_stop("no SIPp could start: " + (self.errors[-1] if self.errors else "none was ready"))

    def _running(self, now: float, written: list[model.Second]) -> None:
        broken = self.watch.update(self.aggregator.written, self.aggregator.histograms) if self.watch else None
        if broken is not None:
            self.event("break", start=broken.start, end=broken.end, offered_cps=broken.offered_cps,
                       criteria=list(broken.broken))
            self._drain(f"a criterion broke at {broken.offered_cps:.0f} calls/s (t={broken.start}-{broken.end} s)")
        elif now >= self.shape.duration_s:
            self._drain("the profile's time is over")
        elif len(self.errors) >= self.total_sipps:
            self._drain("every SIPp stopped: " + self.errors[-1])
        else:
            self._send_rate(int(now) + 1 if now - int(now) > 0.5 else int(now))

    def _send_rate(self, t: int) -> None:
        """The second's rate split over the SIPps placing calls now (one that could not start
        or has stopped leaves its share to the others: the profile's rate is what is offered)."""
        rate = self.shape.mean_rate(float(t), float(t) + 1.0)
        active = len(self.ready_sipps - self.aggregator.finished) or self.total_sipps
        self.send("voipqa:rate", {"per_sipp": rate / active, "total": rate})

    def _drain(self, reason: str) -> None:
        self.state = "draining"
        self.drain_started = self.clock()
        self.stop_reason = self.stop_reason or reason
        self.event("drain", reason=reason)
        self.send("voipqa:drain", {})

    def _draining(self) -> None:
        agg = self.aggregator
        limit = self.profile.scenario.hold + self.profile.scenario.call_timeout + DRAIN_MARGIN_S
        all_final = agg.sipps and agg.finished >= agg.sipps
        if all_final or self.clock() - (self.drain_started or 0.0) > limit:
            if not all_final:
                self.event("drain-timeout", missing=sorted(agg.sipps - agg.finished))
            self.state = "done"
            self._close()

    def _close(self) -> None:
        """The ``end`` event's ``t`` is the load's length (the drain is not load)."""
        self.aggregator.close()
        load_s = (self.drain_started - self.t0) if self.drain_started and self.t0 is not None else self.elapsed()
        self.event("end", at=load_s, reason=self.stop_reason, calls=self.aggregator.totals.created,
                   drain_s=round(self.elapsed() - load_s, 3))

    @property
    def done(self) -> bool:
        return self.state == "done"
