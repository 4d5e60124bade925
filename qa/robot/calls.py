"""Keywords that place customer calls."""

from __future__ import annotations

from concurrent.futures import Future

from robot.api import logger
from robot.api.deco import keyword
from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError
from robot.utils import timestr_to_secs

from qa.cases import CallRecord, CallSpec, Expectation


def _test_name() -> str | None:
    """The running Robot test's name: the case name in calls.jsonl."""
    try:
        return BuiltIn().get_variable_value("${TEST NAME}")
    except RobotNotRunningError:
        return None


def _expectation(expect: str | int | None, carrier_sees: str | bool | None) -> Expectation:
    code = None if expect in (None, "", "any", "ANY") else int(expect)
    sees = carrier_sees if isinstance(carrier_sees, bool) or carrier_sees is None else (
        str(carrier_sees).lower() in ("true", "yes", "1"))
    return Expectation(final_code=code, carrier_sees=sees)


class CallKeywords:
    """Start, place and wait for calls; calls started together run concurrently."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._pending: dict[str, Future[CallRecord]] = {}

    @keyword
    def connect_to_platform(self, env: str | None = None) -> None:
        """Use environment ``env`` (default: the running native lab)."""
        self.ctx.connect(env)

    def _spec(self, case: str, caller: str, callee: str, password: str | None, transport: str,
              duration: str, expect: str | int | None, carrier_sees: str | bool | None) -> CallSpec:
        return CallSpec(case=case, from_user=str(caller), to=str(callee), password=password,
                        transport=transport.lower(), duration_s=timestr_to_secs(duration),
                        expect=_expectation(expect, carrier_sees))

    @keyword
    def start_call(self, alias: str, caller: str, callee: str, password: str | None = None,
                   transport: str = "udp", duration: str = "1s", expect: str | int | None = 200,
                   carrier_sees: str | bool | None = None) -> None:
        """Start a call from account ``caller`` to number ``callee`` and return at once.

        Collect it with `Wait For Call` using the same ``alias``. ``expect`` is the final
        response the customer should get (``any`` to not judge it); ``carrier_sees``
        says whether the INVITE should reach the carrier.
        """
        if alias in self._pending:
            raise ValueError(f"a call named {alias!r} is already running")
        spec = self._spec(alias, caller, callee, password, transport, duration, expect, carrier_sees)
        self._pending[alias] = self.ctx.session.start(spec)

    @keyword
    def wait_for_call(self, alias: str, timeout: str = "60s") -> CallRecord:
        """Wait for the call started as ``alias`` and return its call record."""
        try:
            future = self._pending.pop(alias)
        except KeyError:
            raise ValueError(f"no call named {alias!r} was started "
                             f"(running: {', '.join(self._pending) or 'none'})") from None
        record = future.result(timeout=timestr_to_secs(timeout))
        logger.info(self.ctx.mask(record.to_json()))
        return record

    @keyword
    def place_call(self, caller: str, callee: str, password: str | None = None, transport: str = "udp",
                   duration: str = "1s", expect: str | int | None = 200,
                   carrier_sees: str | bool | None = None, case: str | None = None) -> CallRecord:
        """Place a call, wait for it to end and return its call record."""
        spec = self._spec(case or _test_name() or f"{caller}->{callee}", caller, callee, password, transport,
                          duration, expect, carrier_sees)
        record = self.ctx.session.place(spec)
        logger.info(self.ctx.mask(record.to_json()))
        return record
