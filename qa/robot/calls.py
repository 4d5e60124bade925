"""Keywords that place customer calls (and REGISTERs) through the platform."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import timedelta
from typing import Literal

from robot.api import logger
from robot.api.deco import keyword
from robot.utils import timestr_to_secs

from qa.cases import CallRecord, CallSpec
from qa.cases.api import call_spec
from qa.robot.running import running_test, test_name



Transport = Literal["udp", "tcp", "tls"]
DtmfMode = Literal["rfc4733", "info", "inband"]
MediaExpectation = Literal["both", "early", "any"]


def _seconds(value: timedelta | str | float) -> float:
    """Robot time (``3s``, ``1 min``) or a timedelta, in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else timestr_to_secs(value)


class CallKeywords:
    """Start, place and wait for calls; calls started together run concurrently."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._pending: dict[str, Future[CallRecord]] = {}

    @keyword
    def connect_to_platform(self, env: str | None = None) -> None:
        """Use environment ``env`` (default: the running native lab)."""
        self.ctx.connect(env)

    def _spec(self, case: str | None, caller: str, callee: str, *, expect: int | str | None = 200,
              carrier_sees: bool | None = None, password: str | None = None, transport: Transport = "udp",
              duration: timedelta | str = "1s", timeout: timedelta | str = "30s", codecs: str | None = None,
              kind: str = "call", local_ip: str | None = None, dtmf: str = "", dtmf_mode: DtmfMode = "rfc4733",
              media: str | None = None, session_expires: int | None = None, padding: int = 0,
              cancel_after: timedelta | str | None = None, expect_media: MediaExpectation | None = None) -> CallSpec:
        return call_spec(case or test_name() or f"{caller}->{callee}", caller, callee, test=running_test(),
                         expect=expect, carrier_sees=carrier_sees, password=password, transport=transport,
                         duration_s=_seconds(duration), timeout_s=_seconds(timeout), codecs=codecs, kind=kind,
                         local_ip=local_ip, dtmf=dtmf, dtmf_mode=dtmf_mode, media=media,
                         session_expires=session_expires, padding=padding,
                         cancel_after_s=_seconds(cancel_after) if cancel_after else None,
                         expect_media=expect_media)

    def _log(self, record: CallRecord) -> CallRecord:
        logger.info(self.ctx.mask(record.to_json()))
        return record

    @keyword
    def place_call(self, caller: str, callee: str, expect: int | str | None = 200, carrier_sees: bool | None = None,
                   case: str | None = None, *, password: str | None = None, transport: Transport = "udp",
                   duration: timedelta | str = "1s", timeout: timedelta | str = "30s", codecs: str | None = None,
                   dtmf: str = "", dtmf_mode: DtmfMode = "rfc4733", media: str | None = None,
                   expect_media: MediaExpectation | None = None, session_expires: int | None = None,
                   padding: int = 0, cancel_after: timedelta | str | None = None,
                   local_ip: str | None = None) -> CallRecord:
        """Place a call from account ``caller`` to ``callee``, wait for it to end, return its record.

        - ``expect``: the final response the customer should get (``any``: not judged).
        - ``carrier_sees``: whether the INVITE should reach the carrier (default: when ``expect`` is 2xx).
        - ``case``: the name in calls.jsonl (default: the test's name).
        - ``password``: default the environment's for ``caller``.
        - ``transport``: ``udp``, ``tcp`` or ``tls``.
        - ``duration``: talk time after the answer (Robot time: ``3s``); ``timeout``: the whole call.
        - ``codecs``: the offer, e.g. ``PCMA,telephone-event``.
        - ``dtmf`` digits sent with ``dtmf_mode`` ``rfc4733``, ``info`` or ``inband``.
        - ``media``: by default an answered call carries RTP from the customer for its
          duration on the codec the answer chose (PCMU, PCMA, G722; another codec plays
          nothing and the record's ``media_sent`` says why); ``media=PCMA`` plays that codec,
          ``media=none`` no RTP at all (cases that test the absence of media).
        - ``expect_media``: what the wire witness expects of the RTP: ``both`` ways, ``early``
          (from the carrier before the 200 OK) or ``any`` (not judged).
        - ``session_expires``: RFC 4028 Session-Expires, seconds.
        - ``padding``: bytes added to the INVITE (over the UDP limit: TCP).
        - ``cancel_after``: CANCEL this long after ringing starts.
        - ``local_ip``: bind the customer here (allow-list cases).

        Example: ``${call}=    Place Call    1001    15550001234    codecs=PCMA    duration=3s``
        """
        spec = self._spec(case, caller, callee, expect=expect, carrier_sees=carrier_sees, password=password,
                          transport=transport, duration=duration, timeout=timeout, codecs=codecs, dtmf=dtmf,
                          dtmf_mode=dtmf_mode, media=media, expect_media=expect_media,
                          session_expires=session_expires, padding=padding, cancel_after=cancel_after,
                          local_ip=local_ip)
        return self._log(self.ctx.session.place(spec))

    @keyword
    def start_call(self, alias: str, caller: str, callee: str, expect: int | str | None = 200,
                   carrier_sees: bool | None = None, *, password: str | None = None, transport: Transport = "udp",
                   duration: timedelta | str = "1s", timeout: timedelta | str = "30s", codecs: str | None = None,
                   dtmf: str = "", dtmf_mode: DtmfMode = "rfc4733", media: str | None = None,
                   expect_media: MediaExpectation | None = None, session_expires: int | None = None,
                   padding: int = 0, cancel_after: timedelta | str | None = None,
                   local_ip: str | None = None) -> None:
        """Like `Place Call` (same options), but return at once; collect it with `Wait For Call`.
        Calls started together run concurrently."""
        if alias in self._pending:
            raise ValueError(f"a call named {alias!r} is already running")
        spec = self._spec(alias, caller, callee, expect=expect, carrier_sees=carrier_sees, password=password,
                          transport=transport, duration=duration, timeout=timeout, codecs=codecs, dtmf=dtmf,
                          dtmf_mode=dtmf_mode, media=media, expect_media=expect_media,
                          session_expires=session_expires, padding=padding, cancel_after=cancel_after,
                          local_ip=local_ip)
        self._pending[alias] = self.ctx.session.start(spec)

    @keyword
    def wait_for_call(self, alias: str, timeout: str = "180s") -> CallRecord:
        """Wait for the call started as ``alias`` and return its call record."""
        try:
            future = self._pending.pop(alias)
        except KeyError:
            raise ValueError(f"no call named {alias!r} was started "
                             f"(running: {', '.join(self._pending) or 'none'})") from None
        return self._log(future.result(timeout=timestr_to_secs(timeout)))

    @keyword
    def register(self, user: str, expect: str | int | None = 200, password: str | None = None,
                 transport: str = "udp") -> CallRecord:
        """REGISTER ``user`` (digest auth) and return the record (``final_code``, challenges)."""
        spec = self._spec(None, user, user, expect=expect, password=password, transport=transport, kind="register")
        return self._log(self.ctx.session.place(spec))

    @keyword
    def replay_credentials(self, caller: str, callee: str) -> CallRecord:
        """Place an authenticated call, then send a new request with its old credentials."""
        spec = self._spec(None, caller, callee, expect=200, kind="replay")
        return self._log(self.ctx.session.place(spec))
