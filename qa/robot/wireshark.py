"""Wireshark display filters as assertions over the run's capture: thin keywords over
:class:`qa.analysis.wireshark.LiveCapture`.

Each keyword takes a call (the record ``Place Call`` returns, or a Call-ID) or ``run`` for
the whole capture, and a display filter as Wireshark writes it. Only the call's frames are
dissected, once they have all reached the capture file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword

from qa.analysis.wireshark import BadFilter, LiveCapture, NoCallFrames

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
        self._live: LiveCapture | None = None

    def _capture(self) -> LiveCapture:
        path = Path(os.environ.get("VOIPQA_CAPTURE") or self.ctx.output_dir() / CAPTURE_FILE)
        if not path.is_file():
            raise AssertionError(f"no capture at {path}: run the suite with `voipqa run` (capture on)")
        if self._live is None or self._live.path != path:
            self._live = LiveCapture(path, Path(self._tmp.name))
        return self._live

    def _run(self, action: str, call: Any, *args: Any) -> Any:
        try:
            return getattr(self._capture(), action)(call_id_of(call), *args)
        except (BadFilter, NoCallFrames) as exc:
            raise AssertionError(str(exc)) from None

    @keyword
    def capture_should_match(self, call: Any, display_filter: str, count: int | None = None) -> None:
        """At least one frame of ``call`` (``run``: the whole capture) matches ``display_filter``;
        exactly ``count`` frames when given.

        Example: ``Capture Should Match    ${call}    sip.Method == "INVITE" && sdp.media.format contains "PCMA"    count=1``
        """
        found = self._run("should_match", call, display_filter, count)
        logger.info(f"{display_filter}: frames {', '.join(str(m.frame) for m in found[:20])}")

    @keyword
    def capture_should_not_match(self, call: Any, display_filter: str) -> None:
        """No frame of ``call`` (``run``: the whole capture) matches ``display_filter``.

        Example: ``Capture Should Not Match    ${call}    sip.Status-Code >= 500``
        """
        self._run("should_not_match", call, display_filter)

    @keyword
    def wireshark_fields(self, call: Any, field: str, display_filter: str | None = None) -> list[str]:
        """Every value of the Wireshark field ``field`` in the frames of ``call`` (those matching
        ``display_filter`` when given), in frame order.

        Example: ``${transports}=    Wireshark Fields    ${call}    sip.Via.transport``
        """
        values: list[str] = self._run("fields", call, field, display_filter)
        logger.info(f"{field}: {values[:50]}")
        return values

    @keyword
    def wireshark_field_should_be(self, call: Any, field: str, expected: str) -> None:
        """The first value of ``field`` in the frames of ``call`` is ``expected``.

        Example: ``Wireshark Field Should Be    ${call}    rtpevent.event_id    1``
        """
        self._run("field_should_be", call, field, expected)
