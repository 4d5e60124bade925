"""Reading and strict checking in a second process, correlation in this one (DESIGN §9).

Why: on a SIP-heavy capture the strict RFC 3261 check (:func:`qa.sip.strict.check_message`)
is about half of the CPU time and reading the file a tenth; both are pure functions of the
bytes, while the rest (lenient read, SDP check, call correlation, media) must see the
messages in capture order. So a worker process reads the capture and checks every
payload that may be SIP, and the engine, in this process, takes payloads and problems in
order: two cores give about twice the packets per second, and the report is the one a
single process writes (tests/unit/test_analysis_parallel.py compares them).

The worker speculates: it checks every payload the engine could read as SIP (all of a
stream transport's, and UDP that is not RTP- or STUN-shaped: :func:`may_be_sip`); when the
engine reads as SIP a payload the worker did not check, it checks it itself, so the guess
costs time only, never a finding.

Lifetime: the worker is a daemon that ignores SIGINT (Ctrl-C reaches the engine, which
stops it), and it exits when the engine closes the pipe. It starts by ``fork`` when this
process has one thread (fast: nothing is imported again), else by ``spawn``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from qa.analysis.memo import Memo
from qa.analysis.sniff import is_keepalive, start_line_is_sip
from qa.capture.model import CaptureProblem, CaptureStats, Payload
from qa.errors import Problem, VoipqaError

__all__ = ["checked_items", "may_be_sip", "worth_parallel"]

#: Items per message on the pipe: large enough that pickling is cheap per item, small
#: enough that the worker runs ahead of the engine while the engine works.
BATCH = 1024
#: Captures smaller than this are read in one process: starting a worker costs more.
MIN_BYTES = 4 << 20

Checked = tuple[Payload | CaptureProblem, list[Problem] | None]


def may_be_sip(item: Payload) -> bool:
    """Could the engine read this payload as SIP? A superset of what it reads as SIP:
    every stream-transport payload (framed SIP already), and UDP that is not media- or
    STUN-shaped (``qa.analysis.sniff.SipPorts.classify`` without the port test)."""
    if item.transport != "udp":
        return True
    data = item.data
    if not data or is_keepalive(data):
        return False
    return start_line_is_sip(data) or data[0] >> 6 in (1, 3)


def worth_parallel(path: Path) -> bool:
    """A second process pays off: a big enough file and a second CPU to run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return cpus > 1 and path.stat().st_size >= MIN_BYTES


def checked_items(path: Path, progress: Callable[[int], None] | None = None
                  ) -> Iterator[Checked | CaptureStats]:
    """(item, its strict problems or None when not checked) in capture order, then the
    :class:`CaptureStats`; ``progress`` gets the bytes read so far with every batch.

    The caller has opened the file once already (``CaptureReader(path)``), so an
    unreadable file has been reported before the worker starts.
    """
    ctx = multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_work, args=(str(path), sender), daemon=True,
                         name="voipqa-pcap-reader")
    worker.start()
    sender.close()
    try:
        while True:
            try:
                kind, body, nbytes = receiver.recv()
            except EOFError:
                raise VoipqaError(f"{path}: the capture reader process ended early "
                                  f"(exit {worker.exitcode})") from None
            if kind == "items":
                yield from map(_item, body)
                if progress is not None:
                    progress(nbytes)
            elif kind == "end":
                yield body
                return
            else:
                raise VoipqaError(f"{path}: the capture reader process failed: {body}")
    finally:
        receiver.close()
        if worker.is_alive():
            worker.terminate()
        worker.join(5)


def _item(row: tuple) -> Checked:
    if len(row) == 2:           # (CaptureProblem, None)
        return row
    return Payload(*row[:9]), row[9]


def _work(path: str, conn: Connection) -> None:
    """The worker: read, check what may be SIP, send batches; never raises."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from qa.capture import CaptureReader
    from qa.sip.strict import check_message

    check = Memo(check_message)
    try:
        reader = CaptureReader(path)
        batch: list[tuple] = []
        for item in reader:
            if type(item) is Payload:
                batch.append((item.frame, item.time, item.src, item.sport, item.dst, item.dport,
                              item.transport, item.data, item.ip_version,
                              check(item.data) if may_be_sip(item) else None))
            else:
                batch.append((item, None))
            if len(batch) >= BATCH:
                conn.send(("items", batch, reader.stats.bytes))
                batch = []
        conn.send(("items", batch, reader.stats.bytes))
        conn.send(("end", reader.stats, reader.stats.bytes))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the engine stopped listening (Ctrl-C, an error): nothing to tell
    except Exception as exc:  # noqa: BLE001 - said to the engine, which raises it
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}", 0))
        except OSError:
            pass
    finally:
        conn.close()
