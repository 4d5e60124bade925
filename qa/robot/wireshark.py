"""Wireshark display filters as assertions over the run's capture (:mod:`qa.analysis.wireshark`).

Each keyword takes a call (the record ``Place Call`` returns, or a Call-ID) or ``run`` for
the whole capture, and a display filter as Wireshark writes it. Only the call's frames are
dissected. The run's capture is being written while the cases run: the keyword waits
until the call's frames stop changing (the capture tool hands packets over in blocks,
about a second late) before it matches, so an assertion never judges half a call.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

#: how long a keyword waits for a call's frames to reach the capture file, and how long
#: they must stay the same to count as all there
SETTLE_TIMEOUT_S = 15.0
SETTLE_QUIET_S = 1.5
CAPTURE_FILE = "capture.pcapng"


def call_id_of(call: Any) -> str | None:
    """The Call-ID of a call record (object or dictionary) or of a string; None for ``run``."""
    if isinstance(call, str):
        return None if call.lower() == "run" else call
    value = call.get("call_id") if isinstance(call, dict) else getattr(call, "call_id", None)
    if not value:
        raise ValueError(f"not a call (no call_id): {call!r}")
    return str(value)


class WiresharkKeywords:
    """Wireshark display filters over one call of the run's capture, or the whole run."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._tmp = tempfile.TemporaryDirectory(prefix="voipqa-wireshark-")
        self._settled: dict[str, Any] = {}   # Call-ID -> its frames, once they stopped changing

    def _capture(self) -> Path:
        path = Path(os.environ.get("VOIPQA_CAPTURE") or self.ctx.output_dir() / CAPTURE_FILE)
        if not path.is_file():
            raise AssertionError(f"no capture at {path}: run the suite with `voipqa run` (capture on)")
        return path

    def _scope(self, call: Any):  # noqa: ANN202 - qa.analysis.wireshark.CallCapture
        from qa.analysis.wireshark import NoCallFrames, call_capture, whole_capture

        call_id = call_id_of(call)
        path = self._capture()
        if call_id is None:
            return whole_capture(path)
        if call_id in self._settled:
            return self._settled[call_id]
        deadline, last, since = time.monotonic() + SETTLE_TIMEOUT_S, None, time.monotonic()
        while True:
            try:
                scope = call_capture(path, call_id, self._tmp.name)
            except NoCallFrames:
                scope = None
            frames = tuple(scope.frames or ()) if scope else ()
            if frames != last:
                last, since = frames, time.monotonic()
            elif scope is not None and time.monotonic() - since >= SETTLE_QUIET_S:
                self._settled[call_id] = scope
                return scope
            if time.monotonic() > deadline:
                if scope is None:
                    raise AssertionError(f"no frames for call {call_id} in {path}")
                return scope
            time.sleep(0.3)

    def _match(self, call: Any, expression: str, fields: tuple[str, ...] = ()) -> tuple[Any, list[Any]]:
        from qa.analysis.wireshark import BadFilter, match

        scope = self._scope(call)
        try:
            found = match(scope, expression, fields)
        except BadFilter as exc:
            raise AssertionError(str(exc)) from None
        logger.info(f"{expression}: {len(found)} frame(s) of {scope.describe()} "
                    f"({', '.join(str(m.frame) for m in found[:20])})")
        return scope, found

    @keyword
    def capture_should_match(self, call: Any, display_filter: str, count: int | None = None) -> None:
        """At least one frame of ``call`` (``run``: the whole capture) matches ``display_filter``;
        exactly ``count`` frames when given.

        Example: ``Capture Should Match    ${call}    sip.Method == "INVITE" && sdp.media.format contains "PCMA"    count=1``
        """
        scope, found = self._match(call, display_filter)
        if (count is None and not found) or (count is not None and len(found) != int(count)):
            want = "at least 1" if count is None else str(count)
            raise AssertionError(f"{display_filter}: {len(found)} frame(s) of {scope.describe()} match, "
                                 f"expected {want}")

    @keyword
    def capture_should_not_match(self, call: Any, display_filter: str) -> None:
        """No frame of ``call`` (``run``: the whole capture) matches ``display_filter``.

        Example: ``Capture Should Not Match    ${call}    sip.Status-Code >= 500``
        """
        scope, found = self._match(call, display_filter)
        if found:
            raise AssertionError(f"{display_filter}: frame(s) {', '.join(str(m.frame) for m in found[:10])} of "
                                 f"{scope.describe()} match, expected none")

    @keyword
    def wireshark_fields(self, call: Any, field: str, display_filter: str | None = None) -> list[str]:
        """Every value of the Wireshark field ``field`` in the frames of ``call`` (those matching
        ``display_filter`` when given), in frame order.

        Example: ``${transports}=    Wireshark Fields    ${call}    sip.Via.transport``
        """
        _, found = self._match(call, display_filter or field, (field,))
        return [v for m in found for v in m.fields[field]]

    @keyword
    def wireshark_field_should_be(self, call: Any, field: str, expected: str) -> None:
        """The first value of ``field`` in the frames of ``call`` is ``expected``.

        Example: ``Wireshark Field Should Be    ${call}    rtpevent.event_id    1``
        """
        values = self.wireshark_fields(call, field)
        if not values:
            raise AssertionError(f"{field}: in no frame of call {call_id_of(call) or 'run'}")
        if values[0] != str(expected):
            raise AssertionError(f"{field}: first value {values[0]!r}, expected {str(expected)!r}")
