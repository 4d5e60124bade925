"""SIPp's exit codes, mapped to an :class:`Outcome` with a one-line description.

The codes are SIPp's own (``screen.hpp`` in SIPp 3.6): 0 all calls succeeded, 1 at least
one call failed, 95 stopped manually, 96 killed, 97 exit on an internal command (or
interrupted), 98 result unknown, 99 normal exit without any call processed, and the
fatal ones -1/255, -2/254 (could not bind a socket), -3/253 (system error),
252 (bad argument). SIPp 3.6.1 here also returns 255 when ``-timeout`` fires with
``-timeout_error``; the error log then says ``timed out after``, which we report as
:attr:`Outcome.TIMED_OUT` (as we do when voipqa itself had to stop a SIPp that overran).
"""

from __future__ import annotations

import enum


class Outcome(enum.Enum):
    """How a SIPp run ended, judged from its exit code (and, for 255, its error log)."""

    OK = "ok"
    CALLS_FAILED = "calls_failed"
    STOPPED = "stopped"
    KILLED = "killed"
    INTERNAL_EXIT = "internal_exit"
    UNKNOWN_RESULT = "unknown_result"
    NO_CALLS = "no_calls"
    TIMED_OUT = "timed_out"
    FATAL = "fatal"
    BIND_ERROR = "bind_error"
    SYSTEM_ERROR = "system_error"
    ARGUMENT_ERROR = "argument_error"
    SIGNALLED = "signalled"
    OTHER = "other"

    def describe(self) -> str:
        """One line a user can read, e.g. ``exit 1: at least one call failed``."""
        return _DESCRIPTIONS[self]

    @property
    def ok(self) -> bool:
        """True only when SIPp says every call succeeded."""
        return self is Outcome.OK

    @property
    def fatal(self) -> bool:
        """SIPp could not run the scenario at all (no call results to trust)."""
        return self in (Outcome.FATAL, Outcome.BIND_ERROR, Outcome.SYSTEM_ERROR,
                        Outcome.ARGUMENT_ERROR)

    @classmethod
    def from_exit(cls, code: int | None, errors: list[str] | tuple[str, ...] = ()) -> Outcome:
        """Map a process exit status (as asyncio/subprocess report it) to an Outcome.

        ``code`` may be negative: SIPp's ``exit(-1)`` arrives as 255, but a process killed
        by signal N is reported by Python as ``-N``.
        """
        if code is None:
            return cls.OTHER
        if code < 0 and code not in (-1, -2, -3):
            return cls.SIGNALLED
        code &= 0xFF
        if code == 255 and any("timed out after" in line for line in errors):
            return cls.TIMED_OUT
        return EXIT_CODES.get(code, cls.OTHER)


#: SIPp exit code (0..255) -> Outcome
EXIT_CODES: dict[int, Outcome] = {
    0: Outcome.OK,
    1: Outcome.CALLS_FAILED,
    95: Outcome.STOPPED,
    96: Outcome.KILLED,
    97: Outcome.INTERNAL_EXIT,
    98: Outcome.UNKNOWN_RESULT,
    99: Outcome.NO_CALLS,
    255: Outcome.FATAL,
    254: Outcome.BIND_ERROR,
    253: Outcome.SYSTEM_ERROR,
    252: Outcome.ARGUMENT_ERROR,
}

_DESCRIPTIONS: dict[Outcome, str] = {
    Outcome.OK: "exit 0: all calls succeeded",
    Outcome.CALLS_FAILED: "exit 1: at least one call failed",
    Outcome.STOPPED: "exit 95: stopped manually",
    Outcome.KILLED: "exit 96: killed",
    Outcome.INTERNAL_EXIT: "exit 97: exit on an internal command (or interrupted)",
    Outcome.UNKNOWN_RESULT: "exit 98: result unknown",
    Outcome.NO_CALLS: "exit 99: normal exit without any call processed",
    Outcome.TIMED_OUT: "timed out: the global timeout was reached before the calls ended",
    Outcome.FATAL: "exit 255: fatal error",
    Outcome.BIND_ERROR: "exit 254: could not bind a socket (port already taken?)",
    Outcome.SYSTEM_ERROR: "exit 253: system error",
    Outcome.ARGUMENT_ERROR: "exit 252: bad command-line argument",
    Outcome.SIGNALLED: "terminated by a signal",
    Outcome.OTHER: "unexpected exit status",
}
