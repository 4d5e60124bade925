"""The call API both front ends share: a :class:`CallSpec` from plain Python values.

The Robot keywords (``Place Call``) and the pytest plugin (``place_call``) take the same
options; each turns its own notation (Robot time strings, Python numbers) into seconds and
calls :func:`call_spec`, so a case means the same in both.
"""

from __future__ import annotations

from qa.cases.checks import Expectation
from qa.cases.customers import CallSpec

#: the offer when a case names no codecs
DEFAULT_CODECS: tuple[str, ...] = CallSpec.__dataclass_fields__["codecs"].default  # type: ignore[assignment]


def expectation(expect: str | int | None, carrier_sees: str | bool | None, check_cdr: bool = True,
                media: str | None = None) -> Expectation:
    """``expect``: a final code, or ``any``/None (not judged); ``carrier_sees``: a bool or its text."""
    code = None if expect in (None, "", "any", "ANY") else int(expect)
    sees = carrier_sees if isinstance(carrier_sees, bool) or carrier_sees is None else (
        str(carrier_sees).lower() in ("true", "yes", "1"))
    return Expectation(final_code=code, carrier_sees=sees, check_cdr=check_cdr, media=media or None)


def codec_list(codecs: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"PCMA,telephone-event"`` or a list, as the offer's codecs (None: the default offer)."""
    if not codecs:
        return DEFAULT_CODECS
    items = codecs.split(",") if isinstance(codecs, str) else codecs
    return tuple(c.strip() for c in items if c.strip())


def call_spec(case: str, caller: str, callee: str, *, expect: int | str | None = 200,
              carrier_sees: bool | str | None = None, password: str | None = None, transport: str = "udp",
              duration_s: float = 1.0, timeout_s: float = 30.0, codecs: str | list[str] | None = None,
              kind: str = "call", local_ip: str | None = None, dtmf: str = "", dtmf_mode: str = "rfc4733",
              media: str | None = None, session_expires: int | str | None = None, padding: int = 0,
              cancel_after_s: float | None = None, expect_media: str | None = None,
              test: str | None = None) -> CallSpec:
    """One call as a case asks for it (the options are ``Place Call``'s)."""
    return CallSpec(case=case, test=test, from_user=str(caller), to=str(callee), password=password,
                    transport=transport.lower(), duration_s=float(duration_s), timeout_s=float(timeout_s),
                    codecs=codec_list(codecs), kind=kind,
                    expect=expectation(expect, carrier_sees, check_cdr=kind != "register", media=expect_media),
                    local_ip=local_ip, dtmf=str(dtmf), dtmf_mode=dtmf_mode.lower(), media=media,
                    session_expires=int(session_expires) if session_expires not in (None, "") else None,
                    padding=int(padding), cancel_after_s=cancel_after_s)
